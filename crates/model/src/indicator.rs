//! Indicators: observables worth sharing (an address, a network, a domain, a URL, a file hash,
//! an e-mail address), derived from events by rules or entered by people, with what they
//! indicate, how sure the center is, how long they hold, and where they came from.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::org::{Distribution, OrgId};
use crate::{ClassificationType, Timestamp, Tlp};

named_enum!(
    /// What an indicator's value is.
    IndicatorKind, "indicator kind" {
        Ip "ip" "an IPv4 or IPv6 address",
        Cidr "cidr" "an IPv4 or IPv6 network",
        Domain "domain" "a domain name",
        Url "url" "a URL",
        Md5 "md5" "a file's MD5 hash",
        Sha1 "sha1" "a file's SHA-1 hash",
        Sha256 "sha256" "a file's SHA-256 hash",
        Email "email" "an e-mail address",
    }
);

impl IndicatorKind {
    /// The value in its one written form (addresses canonical, networks truncated, names and
    /// hashes in lower case), or why it is not one of this kind.
    pub fn normalize(self, value: &str) -> Result<String, String> {
        let v = value.trim();
        let bad = || format!("{v:?} is not {}", self.description());
        match self {
            IndicatorKind::Ip => v.parse::<IpAddr>().map(|ip| ip.to_string()).map_err(|_| bad()),
            IndicatorKind::Cidr => v.parse::<IpNet>().map(|n| n.trunc().to_string()).map_err(|_| bad()),
            IndicatorKind::Domain => {
                let d = v.trim_end_matches('.').to_ascii_lowercase();
                let label = |l: &str| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                };
                (d.contains('.') && d.len() <= 253 && d.split('.').all(label)).then_some(d).ok_or_else(bad)
            }
            IndicatorKind::Url => {
                let scheme = v.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
                let printable = v.bytes().all(|b| b.is_ascii_graphic());
                (printable
                    && v.len() <= 4096
                    && scheme.is_some_and(|s| {
                        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
                    }))
                .then(|| v.to_owned())
                .ok_or_else(bad)
            }
            IndicatorKind::Md5 | IndicatorKind::Sha1 | IndicatorKind::Sha256 => {
                let len = match self {
                    IndicatorKind::Md5 => 32,
                    IndicatorKind::Sha1 => 40,
                    _ => 64,
                };
                (v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| v.to_ascii_lowercase())
                    .ok_or_else(bad)
            }
            IndicatorKind::Email => {
                let (local, domain) = v.rsplit_once('@').ok_or_else(bad)?;
                let domain = IndicatorKind::Domain.normalize(domain).map_err(|_| bad())?;
                let ok = !local.is_empty() && local.len() <= 64 && local.bytes().all(|b| b.is_ascii_graphic());
                ok.then(|| format!("{local}@{domain}")).ok_or_else(bad)
            }
        }
    }

    /// The kind of an address or network value: `Ip` for a single address, `Cidr` otherwise.
    pub fn of_net(net: IpNet) -> (IndicatorKind, String) {
        if net.prefix_len() == net.max_prefix_len() {
            (IndicatorKind::Ip, net.addr().to_string())
        } else {
            (IndicatorKind::Cidr, net.trunc().to_string())
        }
    }
}

/// An indicator as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Indicator {
    pub id: i64,
    pub kind: IndicatorKind,
    pub value: String,
    /// What it indicates, in the taxonomy's words (`c2-server`, `phishing`, `scanner`, ...).
    pub category: ClassificationType,
    /// The malware family, where known.
    pub family: Option<String>,
    pub tlp: Tlp,
    /// Who besides the center may receive it (within its TLP).
    pub distribution: Distribution,
    /// The community it is shared with, when `distribution` is `community`.
    pub community: Option<i64>,
    /// The organizations whose networks it lies in (routing of the events it came from).
    pub orgs: Vec<OrgId>,
    /// 0 to 100, as STIX and IntelMQ's `feed.accuracy` have it.
    pub confidence: u8,
    pub valid_from: Timestamp,
    pub valid_until: Option<Timestamp>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Events (observations) that showed it.
    pub sightings: u64,
    pub origin: Origin,
    pub description: Option<String>,
    pub created: Timestamp,
    /// Its version: changes whenever what is shared about it changes.
    pub modified: Timestamp,
    /// Withdrawn: shared as revoked, left out of blocklists.
    pub revoked: bool,
}

impl Indicator {
    /// Whether it holds at `now`: not revoked, started, not expired.
    pub fn is_valid(&self, now: Timestamp) -> bool {
        !self.revoked && self.valid_from <= now && self.valid_until.is_none_or(|until| now < until)
    }
}

/// Where an indicator came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// Derived from a feed's events.
    Feed(String),
    /// Received from a partner center.
    Partner(String),
    /// Entered by a user (their e-mail address).
    User(String),
}

impl Origin {
    pub fn as_string(&self) -> String {
        match self {
            Origin::Feed(n) => format!("feed:{n}"),
            Origin::Partner(n) => format!("partner:{n}"),
            Origin::User(n) => format!("user:{n}"),
        }
    }

    pub fn parse(s: &str) -> Result<Origin, String> {
        match s.split_once(':') {
            Some(("feed", n)) if !n.is_empty() => Ok(Origin::Feed(n.to_owned())),
            Some(("partner", n)) if !n.is_empty() => Ok(Origin::Partner(n.to_owned())),
            Some(("user", n)) if !n.is_empty() => Ok(Origin::User(n.to_owned())),
            _ => Err(format!("unknown origin {s:?}: feed:NAME, partner:NAME or user:EMAIL")),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_string())
    }
}

/// A sharing community: a group of organizations that share with each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Community {
    pub id: i64,
    /// Unique; also names its TAXII collection.
    pub name: String,
    pub description: String,
    pub members: Vec<OrgId>,
}

impl Community {
    /// A community's name: lower-case letters, digits and `-`, as in `health-isac`.
    pub fn check_name(name: &str) -> Result<(), String> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then_some(()).ok_or_else(|| {
            format!("{name:?} is not a community name: 1 to 64 lower-case letters, digits and '-' (health-isac)")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_normalized_or_refused_with_the_reason() {
        let k = IndicatorKind::Cidr;
        assert_eq!(k.normalize("192.0.2.77/24").unwrap(), "192.0.2.0/24");
        assert_eq!(IndicatorKind::Ip.normalize(" 2001:DB8::1 ").unwrap(), "2001:db8::1");
        assert_eq!(IndicatorKind::Domain.normalize("Evil.Example.").unwrap(), "evil.example");
        assert_eq!(IndicatorKind::Sha256.normalize(&"AB".repeat(32)).unwrap(), "ab".repeat(32));
        assert_eq!(IndicatorKind::Email.normalize("Phish@Bad.Example").unwrap(), "Phish@bad.example");
        assert_eq!(IndicatorKind::Url.normalize("http://x.example/a?b=1").unwrap(), "http://x.example/a?b=1");
        for (kind, bad) in [
            (IndicatorKind::Ip, "192.0.2.0/24"),
            (IndicatorKind::Domain, "localhost"),
            (IndicatorKind::Domain, "a b.example"),
            (IndicatorKind::Url, "x.example/path"),
            (IndicatorKind::Url, "http://x.example/a b"),
            (IndicatorKind::Md5, "abc"),
            (IndicatorKind::Email, "nobody"),
        ] {
            let e = kind.normalize(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        assert_eq!(IndicatorKind::of_net("192.0.2.1/32".parse().unwrap()), (IndicatorKind::Ip, "192.0.2.1".into()));
    }

    #[test]
    fn origins_read_back() {
        for o in [Origin::Feed("ctip".into()), Origin::Partner("cert-es".into()), Origin::User("a@b.pt".into())] {
            assert_eq!(Origin::parse(&o.as_string()).unwrap(), o);
        }
        assert!(Origin::parse("ctip").is_err());
        assert!(Community::check_name("health-isac").is_ok());
        assert!(Community::check_name("Health ISAC").is_err());
    }
}
