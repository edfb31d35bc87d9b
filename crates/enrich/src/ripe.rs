//! Abuse contacts from the RIPE database's split files (`ripe.db.inetnum`, `ripe.db.inet6num`,
//! `ripe.db.aut-num`, `ripe.db.role`, `ripe.db.organisation`): each network's abuse mailbox,
//! found through its `abuse-c` role (or its organisation's), grouped into organizations.
//!
//! RPSL: objects separated by blank lines; `key: value` attributes; a line that starts with a
//! space, a tab or `+` continues the previous value; `%` and `#` lines are comments.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;

use farol_model::org::Asset;
use ipnet::IpNet;

/// One RPSL object: its class (the first attribute's key) and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub attrs: Vec<(String, String)>,
    /// The line the object starts on.
    pub line: u64,
}

impl Object {
    pub fn class(&self) -> &str {
        self.attrs.first().map_or("", |(k, _)| k.as_str())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Reads objects one at a time; lines that are not UTF-8 are read lossily (RIPE's dumps are
/// Latin-1 in places).
pub fn objects(input: impl BufRead, mut each: impl FnMut(Object)) -> std::io::Result<()> {
    let mut current: Option<Object> = None;
    for (line_no, line) in (1u64..).zip(input.split(b'\n')) {
        let line = line?;
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if let Some(o) = current.take() {
                each(o);
            }
            continue;
        }
        if line.starts_with('%') || line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t', '+']) {
            if let Some((_, v)) = current.as_mut().and_then(|o| o.attrs.last_mut()) {
                let more = line[1..].trim();
                if !more.is_empty() {
                    v.push(' ');
                    v.push_str(more);
                }
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else { continue };
        // An end-of-line comment is not part of the value.
        let value = value.split('#').next().unwrap_or("").trim().to_owned();
        current
            .get_or_insert_with(|| Object { attrs: Vec::new(), line: line_no })
            .attrs
            .push((key.trim().to_ascii_lowercase(), value));
    }
    if let Some(o) = current {
        each(o);
    }
    Ok(())
}

/// An organization found in the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The RIPE organisation handle (`ORG-EX1-RIPE`), or `abuse:<mailbox>` for networks with
    /// no organisation.
    pub handle: String,
    pub name: String,
    pub assets: BTreeSet<Asset>,
    pub abuse: BTreeSet<String>,
}

/// Collects what the import needs while objects stream by, then resolves it.
#[derive(Debug, Default)]
pub struct Import {
    country: Option<String>,
    roles: HashMap<String, String>,
    orgs: HashMap<String, (String, Option<String>)>,
    networks: Vec<Network>,
    pub skipped: u64,
    pub problems: Vec<String>,
}

#[derive(Debug)]
struct Network {
    assets: Vec<Asset>,
    name: String,
    org: Option<String>,
    abuse_c: Option<String>,
}

/// The CIDR blocks that cover `first..=last` exactly.
pub fn range_to_prefixes(first: std::net::Ipv4Addr, last: std::net::Ipv4Addr) -> Vec<IpNet> {
    let (mut a, b) = (u64::from(u32::from(first)), u64::from(u32::from(last)));
    let mut out = Vec::new();
    while a <= b {
        // The largest block aligned at `a` that does not pass `b`.
        let mut size = if a == 0 { 1u64 << 32 } else { 1u64 << a.trailing_zeros().min(32) };
        while a + size - 1 > b {
            size >>= 1;
        }
        let len = 32 - size.trailing_zeros() as u8;
        if let Ok(net) = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(a as u32), len) {
            out.push(IpNet::V4(net));
        }
        a += size;
    }
    out
}

impl Import {
    /// Keeps only networks registered in `country` (when given).
    pub fn new(country: Option<&str>) -> Import {
        Import { country: country.map(str::to_ascii_uppercase), ..Import::default() }
    }

    pub fn add(&mut self, o: Object) {
        let class = o.class().to_owned();
        match class.as_str() {
            "role" | "person" => {
                if let (Some(handle), Some(mailbox)) = (o.get("nic-hdl"), o.get("abuse-mailbox")) {
                    self.roles.insert(handle.to_ascii_uppercase(), mailbox.to_owned());
                }
            }
            "organisation" => {
                if let Some(handle) = o.get("organisation") {
                    let name = o.get("org-name").unwrap_or(handle).to_owned();
                    self.orgs
                        .insert(handle.to_ascii_uppercase(), (name, o.get("abuse-c").map(str::to_ascii_uppercase)));
                }
            }
            "inetnum" | "inet6num" | "aut-num" => {
                if class != "aut-num"
                    && let Some(country) = &self.country
                    && !o.get("country").is_some_and(|c| c.eq_ignore_ascii_case(country))
                {
                    self.skipped += 1;
                    return;
                }
                match network_assets(&o) {
                    Ok(assets) => self.networks.push(Network {
                        assets,
                        name: o.get("netname").or_else(|| o.get("as-name")).unwrap_or(o.attrs[0].1.as_str()).to_owned(),
                        org: o.get("org").map(str::to_ascii_uppercase),
                        abuse_c: o.get("abuse-c").map(str::to_ascii_uppercase),
                    }),
                    Err(e) => self.problems.push(format!("line {}: {class} {}: {e}", o.line, o.attrs[0].1)),
                }
            }
            _ => {}
        }
    }

    /// Groups the networks by organisation (or, without one, by abuse mailbox). Networks with
    /// no abuse mailbox to be found are counted in `skipped`; autonomous systems whose
    /// organisation has no network in the country are left out when a country is given.
    pub fn finish(mut self) -> (Vec<Found>, u64, Vec<String>) {
        let mut found: BTreeMap<String, Found> = BTreeMap::new();
        let national: BTreeSet<String> = self
            .networks
            .iter()
            .filter(|n| n.assets.iter().any(|a| matches!(a, Asset::Prefix(_))))
            .filter_map(|n| n.org.clone())
            .collect();
        for n in std::mem::take(&mut self.networks) {
            let is_as = n.assets.iter().all(|a| matches!(a, Asset::Asn(_)));
            if is_as && self.country.is_some() && !n.org.as_ref().is_some_and(|o| national.contains(o)) {
                continue;
            }
            let org = n.org.as_ref().and_then(|h| self.orgs.get(h).map(|o| (h, o)));
            let abuse_c = n.abuse_c.clone().or_else(|| org.and_then(|(_, (_, a))| a.clone()));
            let Some(mailbox) = abuse_c.and_then(|h| self.roles.get(&h).cloned()) else {
                self.skipped += 1;
                continue;
            };
            let (handle, name) = match org {
                Some((h, (name, _))) => (h.clone(), name.clone()),
                None => (format!("abuse:{}", mailbox.to_ascii_lowercase()), n.name.clone()),
            };
            let entry = found.entry(handle.clone()).or_insert_with(|| Found {
                handle,
                name,
                assets: BTreeSet::new(),
                abuse: BTreeSet::new(),
            });
            entry.assets.extend(n.assets);
            entry.abuse.insert(mailbox);
        }
        (found.into_values().collect(), self.skipped, self.problems)
    }
}

fn network_assets(o: &Object) -> Result<Vec<Asset>, String> {
    let value = &o.attrs[0].1;
    match o.class() {
        "inetnum" => {
            let (a, b) = value.split_once('-').ok_or("expected FIRST - LAST")?;
            let (a, b) =
                (a.trim().parse().map_err(|_| "bad first address")?, b.trim().parse().map_err(|_| "bad last address")?);
            if a > b {
                return Err("the range ends before it starts".into());
            }
            Ok(range_to_prefixes(a, b).into_iter().map(Asset::Prefix).collect())
        }
        "inet6num" => {
            value.parse::<IpNet>().map(|n| vec![Asset::Prefix(n.trunc())]).map_err(|_| "expected a prefix".into())
        }
        _ => Asset::parse_kind("asn", value).map(|a| vec![a]),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DUMP: &str = "\
% RIPE database dump
inetnum:        192.0.2.0 - 192.0.3.255
netname:        HOSPITAL-X-NET
country:        PT
org:            ORG-HX1-RIPE
admin-c:        HX1-RIPE
status:         ASSIGNED PA

inetnum:        198.51.100.0 - 198.51.100.127
netname:        SMALL-SHOP
country:        pt # lower case happens
abuse-c:        AR2-RIPE

inetnum:        203.0.113.0 - 203.0.113.255
netname:        ELSEWHERE
country:        ES
abuse-c:        AR2-RIPE

inet6num:       2001:db8::/32
netname:        HOSPITAL-X-V6
country:        PT
org:            ORG-HX1-RIPE

aut-num:        AS64500
as-name:        HOSPITALX
org:            ORG-HX1-RIPE

aut-num:        AS64999
as-name:        FOREIGN
org:            ORG-FO1-RIPE

inetnum:        10.0.0.9 - 10.0.0.1
country:        PT
abuse-c:        AR2-RIPE

organisation:   ORG-HX1-RIPE
org-name:       Hospital X,
                E.P.E.
abuse-c:        AR1-RIPE

role:           Abuse role
nic-hdl:        AR1-RIPE
abuse-mailbox:  soc@hospital-x.pt

role:           Other abuse
nic-hdl:        AR2-RIPE
abuse-mailbox:  abuse@shop.pt
";

    #[test]
    fn networks_are_grouped_with_their_abuse_mailbox() {
        let mut import = Import::new(Some("PT"));
        objects(DUMP.as_bytes(), |o| import.add(o)).unwrap();
        let (found, skipped, problems) = import.finish();
        assert_eq!(problems, ["line 32: inetnum 10.0.0.9 - 10.0.0.1: the range ends before it starts"]);
        assert_eq!(skipped, 1, "the Spanish network");
        assert_eq!(found.len(), 2);
        let hospital = &found[0];
        assert_eq!((hospital.handle.as_str(), hospital.name.as_str()), ("ORG-HX1-RIPE", "Hospital X, E.P.E."));
        assert_eq!(
            hospital.assets.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["AS64500", "192.0.2.0/23", "2001:db8::/32"]
        );
        assert_eq!(hospital.abuse.iter().collect::<Vec<_>>(), ["soc@hospital-x.pt"]);
        assert_eq!(found[1].handle, "abuse:abuse@shop.pt");
        assert_eq!(found[1].name, "SMALL-SHOP");
    }

    #[test]
    fn ranges_become_the_fewest_prefixes() {
        let p = |a: &str, b: &str| {
            range_to_prefixes(a.parse().unwrap(), b.parse().unwrap())
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(p("192.0.2.0", "192.0.2.255"), ["192.0.2.0/24"]);
        assert_eq!(p("192.0.2.0", "192.0.4.255"), ["192.0.2.0/23", "192.0.4.0/24"]);
        assert_eq!(p("10.0.0.1", "10.0.0.6"), ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]);
        assert_eq!(p("0.0.0.0", "255.255.255.255"), ["0.0.0.0/0"]);
    }
}
