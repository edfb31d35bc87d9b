//! Warninglists: addresses and names that are known not to be what an event says (reserved
//! ranges, public resolvers, big CDNs), in MISP's warninglist format, plus the reserved and
//! special-purpose ranges built in. A match marks the event; it never drops it unless the feed
//! asks for that.

use std::collections::HashSet;
use std::net::IpAddr;

use farol_model::Event;
use ipnet::IpNet;
use serde::Deserialize;

use crate::constituency::url_host;
use crate::range::{Addr, RangeMap};

#[derive(Debug)]
enum Matcher {
    Cidr {
        v4: RangeMap<u32, ()>,
        v6: RangeMap<u128, ()>,
    },
    /// A name or any name under it.
    Hostname(HashSet<String>),
    /// The whole value.
    Exact(HashSet<String>),
    /// Part of the value.
    Substring(Vec<String>),
}

/// One list.
#[derive(Debug)]
pub struct Warninglist {
    pub name: String,
    pub description: String,
    pub version: String,
    pub entries: usize,
    matcher: Matcher,
}

/// A list as MISP publishes it (`lists/<name>/list.json` in misp-warninglists).
#[derive(Debug, Deserialize)]
struct MispList {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    version: serde_json::Value,
    #[serde(rename = "type")]
    kind: String,
    list: Vec<String>,
}

/// The special-purpose ranges of the IANA registries (RFC 6890 and successors).
const RESERVED: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "64:ff9b:1::/48",
    "100::/64",
    "2001:db8::/32",
    "3fff::/20",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

fn cidr(entries: &[String]) -> Result<Matcher, String> {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for e in entries {
        let e = e.trim();
        let net = e
            .parse::<IpNet>()
            .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| format!("{e:?} is not an address or network"))?;
        match net.trunc() {
            IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()), ())),
            IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()), ())),
        }
    }
    Ok(Matcher::Cidr { v4: RangeMap::build(v4), v6: RangeMap::build(v6) })
}

impl Warninglist {
    /// The reserved and special-purpose ranges (loopback, private, documentation, ...).
    pub fn reserved() -> Warninglist {
        let entries: Vec<String> = RESERVED.iter().map(|s| (*s).to_owned()).collect();
        Warninglist {
            name: "reserved-addresses".into(),
            description: "IANA special-purpose address ranges: private, loopback, link-local, documentation, multicast"
                .into(),
            version: "built in".into(),
            entries: entries.len(),
            matcher: cidr(&entries).unwrap_or(Matcher::Exact(HashSet::new())),
        }
    }

    /// Reads a list in MISP's warninglist JSON format (types cidr, hostname, string, substring).
    pub fn from_misp_json(bytes: &[u8]) -> Result<Warninglist, String> {
        let list: MispList = serde_json::from_slice(bytes).map_err(|e| format!("not a MISP warninglist: {e}"))?;
        let lower = || list.list.iter().map(|s| s.trim().trim_end_matches('.').to_ascii_lowercase());
        let matcher = match list.kind.as_str() {
            "cidr" => cidr(&list.list)?,
            "hostname" => Matcher::Hostname(lower().filter(|s| !s.is_empty()).collect()),
            "string" => Matcher::Exact(list.list.iter().map(|s| s.trim().to_owned()).collect()),
            "substring" => Matcher::Substring(lower().filter(|s| !s.is_empty()).collect()),
            other => {
                return Err(format!("warninglist type {other:?} is not supported (cidr, hostname, string, substring)"));
            }
        };
        Ok(Warninglist {
            version: match &list.version {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            },
            entries: list.list.len(),
            name: list.name,
            description: list.description,
            matcher,
        })
    }

    pub fn matches_ip(&self, ip: IpAddr) -> bool {
        match (&self.matcher, Addr::from(ip)) {
            (Matcher::Cidr { v4, .. }, Addr::V4(k)) => v4.get(k).is_some(),
            (Matcher::Cidr { v6, .. }, Addr::V6(k)) => v6.get(k).is_some(),
            (Matcher::Exact(set), _) => set.contains(&ip.to_string()),
            _ => false,
        }
    }

    pub fn matches_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        match &self.matcher {
            Matcher::Hostname(set) => {
                let mut rest = name.as_str();
                loop {
                    if set.contains(rest) {
                        return true;
                    }
                    match rest.split_once('.') {
                        Some((_, parent)) => rest = parent,
                        None => return false,
                    }
                }
            }
            Matcher::Exact(set) => set.contains(&name),
            Matcher::Substring(parts) => parts.iter().any(|p| name.contains(p.as_str())),
            Matcher::Cidr { .. } => name.parse::<IpAddr>().is_ok_and(|ip| self.matches_ip(ip)),
        }
    }

    fn matches_text(&self, text: &str) -> bool {
        match &self.matcher {
            Matcher::Exact(set) => set.contains(text),
            Matcher::Substring(parts) => {
                let lower = text.to_ascii_lowercase();
                parts.iter().any(|p| lower.contains(p.as_str()))
            }
            _ => false,
        }
    }

    /// Whether the event's source (what the event is about) is on this list: its address, its
    /// name, its URL and the URL's host, its file hashes.
    pub fn matches(&self, event: &Event) -> bool {
        event.source_ip.is_some_and(|ip| self.matches_ip(ip))
            || event.source_fqdn.as_deref().is_some_and(|n| self.matches_name(n))
            || event
                .source_url
                .as_deref()
                .is_some_and(|u| self.matches_text(u) || url_host(u).is_some_and(|h| self.matches_name(h)))
            || [&event.malware_hash_md5, &event.malware_hash_sha1, &event.malware_hash_sha256]
                .iter()
                .any(|h| h.as_deref().is_some_and(|h| self.matches_text(h)))
    }
}

/// Every list in use.
#[derive(Debug, Default)]
pub struct Warninglists {
    lists: Vec<Warninglist>,
}

impl Warninglists {
    /// The built-in list and the given ones.
    pub fn new(lists: Vec<Warninglist>) -> Warninglists {
        let mut all = vec![Warninglist::reserved()];
        all.extend(lists);
        Warninglists { lists: all }
    }

    pub fn lists(&self) -> &[Warninglist] {
        &self.lists
    }

    /// The names of the lists the event's source is on.
    pub fn hits(&self, event: &Event) -> Vec<&str> {
        self.lists.iter().filter(|l| l.matches(event)).map(|l| l.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(pairs: &[(&str, &str)]) -> Event {
        let mut e = Event::default();
        for (k, v) in pairs {
            e.set(k, v).unwrap();
        }
        e
    }

    #[test]
    fn reserved_ranges_are_built_in() {
        let lists = Warninglists::new(vec![]);
        assert_eq!(lists.hits(&event(&[("source.ip", "10.1.2.3")])), ["reserved-addresses"]);
        assert_eq!(lists.hits(&event(&[("source.ip", "2001:db8::1")])), ["reserved-addresses"]);
        assert!(lists.hits(&event(&[("source.ip", "193.136.1.1")])).is_empty());
        // Only the source counts: a sinkhole's own address is not the observation.
        assert!(lists.hits(&event(&[("source.ip", "193.136.1.1"), ("destination.ip", "10.0.0.1")])).is_empty());
    }

    #[test]
    fn misp_lists_of_each_type() {
        let hostname = br#"{"name":"List of known Google domains","type":"hostname","version":20240101,
            "description":"Google","matching_attributes":["domain","hostname","url"],"list":["google.com","gstatic.com."]}"#;
        let list = Warninglist::from_misp_json(hostname).unwrap();
        assert_eq!((list.version.as_str(), list.entries), ("20240101", 2));
        assert!(list.matches(&event(&[("source.fqdn", "www.Google.com")])));
        assert!(list.matches(&event(&[("source.url", "https://fonts.gstatic.com/x")])));
        assert!(!list.matches(&event(&[("source.fqdn", "notgoogle.com")])));

        let cidr =
            br#"{"name":"Public DNS resolvers","type":"cidr","list":["8.8.8.8","1.1.1.0/24","2001:4860:4860::8888"]}"#;
        let list = Warninglist::from_misp_json(cidr).unwrap();
        assert!(list.matches(&event(&[("source.ip", "1.1.1.1")])));
        assert!(list.matches(&event(&[("source.ip", "2001:4860:4860::8888")])));

        let substring = br#"{"name":"Sinkholes","type":"substring","list":["sinkhole"]}"#;
        let list = Warninglist::from_misp_json(substring).unwrap();
        assert!(list.matches(&event(&[("source.url", "http://Sinkhole.example.net/")])));

        let string = br#"{"name":"Empty file","type":"string","list":["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}"#;
        let list = Warninglist::from_misp_json(string).unwrap();
        let hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(list.matches(&event(&[("malware.hash.sha256", hash)])));

        assert!(
            Warninglist::from_misp_json(br#"{"name":"x","type":"regex","list":[]}"#).unwrap_err().contains("regex")
        );
        assert!(Warninglist::from_misp_json(br#"{"name":"x","type":"cidr","list":["nope"]}"#).is_err());
        assert!(Warninglist::from_misp_json(b"[]").is_err());
    }
}
