//! Routing: which organizations an event concerns. The most specific prefix an organization
//! owns wins over an AS number; domain suffixes route events that carry a name or a URL.

use std::collections::HashMap;
use std::net::IpAddr;

use farol_model::org::{Asset, Org, OrgId};
use farol_model::{Event, Routing, Scope};
use ipnet::IpNet;

use crate::range::{Addr, RangeMap};

/// The constituency as routing sees it: who owns what, and the national scope.
#[derive(Debug, Default)]
pub struct Constituency {
    v4: RangeMap<u32, u32>,
    v6: RangeMap<u128, u32>,
    /// The owners of each distinct prefix (several organizations may declare the same one).
    owners: Vec<Vec<OrgId>>,
    asns: HashMap<u32, Vec<OrgId>>,
    domains: HashMap<String, Vec<OrgId>>,
    /// The country of the national scope, upper case.
    country: Option<[u8; 2]>,
    orgs: usize,
}

impl Constituency {
    pub fn new(orgs: &[Org], country: Option<[u8; 2]>) -> Constituency {
        let mut by_prefix: HashMap<IpNet, Vec<OrgId>> = HashMap::new();
        let mut asns: HashMap<u32, Vec<OrgId>> = HashMap::new();
        let mut domains: HashMap<String, Vec<OrgId>> = HashMap::new();
        for org in orgs {
            for asset in &org.assets {
                let list = match asset {
                    Asset::Prefix(p) => by_prefix.entry(*p).or_default(),
                    Asset::Asn(n) => asns.entry(*n).or_default(),
                    Asset::Domain(d) => domains.entry(d.clone()).or_default(),
                };
                if !list.contains(&org.id) {
                    list.push(org.id);
                }
            }
        }
        let mut owners = Vec::new();
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        let mut prefixes: Vec<(IpNet, Vec<OrgId>)> = by_prefix.into_iter().collect();
        prefixes.sort();
        for (net, ids) in prefixes {
            let i = owners.len() as u32;
            owners.push(ids);
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()), i)),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()), i)),
            }
        }
        Constituency {
            v4: RangeMap::build(v4),
            v6: RangeMap::build(v6),
            owners,
            asns,
            domains,
            country: country.map(|c| [c[0].to_ascii_uppercase(), c[1].to_ascii_uppercase()]),
            orgs: orgs.len(),
        }
    }

    /// The organizations whose most specific prefix holds the address.
    pub fn by_address(&self, ip: IpAddr) -> &[OrgId] {
        let found = match Addr::from(ip) {
            Addr::V4(k) => self.v4.get(k).map(|f| f.value),
            Addr::V6(k) => self.v6.get(k).map(|f| f.value),
        };
        found.map_or(&[], |i| &self.owners[i as usize])
    }

    pub fn by_asn(&self, asn: u32) -> &[OrgId] {
        self.asns.get(&asn).map_or(&[], Vec::as_slice)
    }

    /// The organizations of the longest declared domain that is the name or a parent of it.
    pub fn by_domain(&self, name: &str) -> &[OrgId] {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mut rest = name.as_str();
        loop {
            if let Some(ids) = self.domains.get(rest) {
                return ids;
            }
            match rest.split_once('.') {
                Some((_, parent)) => rest = parent,
                None => return &[],
            }
        }
    }

    pub fn country(&self) -> Option<[u8; 2]> {
        self.country
    }

    /// Routes an event by its source: the address's most specific prefix, else its AS number;
    /// and the domains of its name and URL.
    pub fn route(&self, event: &Event) -> Routing {
        let by_ip = event.source_ip.map(|ip| self.by_address(ip)).unwrap_or_default();
        let mut orgs = if by_ip.is_empty() {
            event.source_asn.map(|a| self.by_asn(a)).unwrap_or_default().to_vec()
        } else {
            by_ip.to_vec()
        };
        let host = event.source_url.as_deref().and_then(url_host);
        for name in event.source_fqdn.as_deref().into_iter().chain(host) {
            orgs.extend_from_slice(self.by_domain(name));
        }
        orgs.sort_unstable();
        orgs.dedup();
        let scope = if !orgs.is_empty() {
            Scope::Org
        } else if let Some(country) = self.country {
            let cc = event.source_geolocation_cc.as_deref().map(str::as_bytes);
            let tld = format!(".{}", String::from_utf8_lossy(&country).to_ascii_lowercase());
            let national_name = event.source_fqdn.as_deref().into_iter().chain(host).any(|n| n.ends_with(&tld));
            if cc == Some(&country[..]) || national_name { Scope::National } else { Scope::Outside }
        } else if self.orgs > 0 {
            Scope::Outside
        } else {
            Scope::Unrouted
        };
        Routing { orgs, scope }
    }
}

/// The host of a URL: what lies between `://` and the next `/`, `:` or `?`.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    let host = if host.starts_with('[') { host } else { host.split(':').next().unwrap_or(host) };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use farol_model::org::Sector;

    fn org(id: i64, assets: &[&str]) -> Org {
        Org {
            id: OrgId(id),
            name: format!("org {id}"),
            sector: Sector::Private,
            handle: None,
            assets: assets
                .iter()
                .map(|a| {
                    let kind = if a.contains('/') {
                        "prefix"
                    } else if a.starts_with("AS") {
                        "asn"
                    } else {
                        "domain"
                    };
                    Asset::parse_kind(kind, a).unwrap()
                })
                .collect(),
            contacts: vec![],
        }
    }

    fn event(pairs: &[(&str, &str)]) -> Event {
        let mut e = Event::default();
        for (k, v) in pairs {
            e.set(k, v).unwrap();
        }
        e
    }

    #[test]
    fn the_most_specific_prefix_wins_over_the_asn() {
        let isp = org(1, &["AS64500", "192.0.2.0/24"]);
        let hospital = org(2, &["192.0.2.128/25", "hospital-x.pt"]);
        let c = Constituency::new(&[isp, hospital], Some(*b"pt"));
        let route = |pairs: &[(&str, &str)]| c.route(&event(pairs));
        assert_eq!(route(&[("source.ip", "192.0.2.200"), ("source.asn", "64500")]).orgs, [OrgId(2)]);
        assert_eq!(route(&[("source.ip", "192.0.2.20")]).orgs, [OrgId(1)]);
        // No prefix holds it: the AS number decides.
        assert_eq!(route(&[("source.ip", "198.51.100.1"), ("source.asn", "64500")]).orgs, [OrgId(1)]);
        // A name under a declared domain adds its owner.
        let r = route(&[("source.ip", "192.0.2.20"), ("source.url", "https://mail.Hospital-X.pt:8443/login")]);
        assert_eq!((r.orgs, r.scope), (vec![OrgId(1), OrgId(2)], Scope::Org));
        // In the country, in no organization's networks.
        assert_eq!(route(&[("source.ip", "203.0.113.1"), ("source.geolocation.cc", "PT")]).scope, Scope::National);
        assert_eq!(route(&[("source.fqdn", "shop.example.pt")]).scope, Scope::National);
        assert_eq!(route(&[("source.ip", "203.0.113.1"), ("source.geolocation.cc", "ES")]).scope, Scope::Outside);
        assert_eq!(Constituency::new(&[], None).route(&event(&[("source.ip", "192.0.2.1")])).scope, Scope::Unrouted);
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(url_host("http://user@example.pt:80/x"), Some("example.pt"));
        assert_eq!(url_host("example.pt/path?q"), Some("example.pt"));
        assert_eq!(url_host("https://[2001:db8::1]/x"), Some("[2001:db8::1]"));
        assert_eq!(url_host("http:///x"), None);
    }
}
