//! Organizations of the constituency: who owns which networks, and how to reach them.

use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// An organization's id in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OrgId(pub i64);

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($variant:ident $text:literal $desc:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn description(self) -> &'static str {
                match self { $($name::$variant => $desc),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<$name, String> {
                let s = s.trim().to_ascii_lowercase().replace('_', "-");
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    format!(concat!("unknown ", $what, " {:?}; one of: {}"), s,
                        $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                <String as serde::Deserialize>::deserialize(d)?.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

named_enum!(
    /// What kind of organization: the sectors of NIS2's annexes I and II, and the kinds a
    /// national center deals with besides.
    Sector, "sector" {
        Government "government" "central government: ministries, agencies",
        PublicAdministration "public-administration" "regional and local public administration (NIS2 annex I)",
        Energy "energy" "electricity, district heating, oil, gas, hydrogen (NIS2 annex I)",
        Transport "transport" "air, rail, water and road transport (NIS2 annex I)",
        Banking "banking" "credit institutions (NIS2 annex I)",
        FinancialMarket "financial-market" "trading venues and central counterparties (NIS2 annex I)",
        Health "health" "healthcare providers, laboratories, pharmaceuticals (NIS2 annex I)",
        DrinkingWater "drinking-water" "drinking water supply (NIS2 annex I)",
        WasteWater "waste-water" "waste water collection and treatment (NIS2 annex I)",
        DigitalInfrastructure "digital-infrastructure" "IXPs, DNS, TLD registries, cloud, data centres, CDNs, trust services, telecoms (NIS2 annex I)",
        IctServices "ict-services" "managed ICT and security service providers (NIS2 annex I)",
        Space "space" "ground-based space infrastructure (NIS2 annex I)",
        Postal "postal" "postal and courier services (NIS2 annex II)",
        WasteManagement "waste-management" "waste management (NIS2 annex II)",
        Chemicals "chemicals" "manufacture and distribution of chemicals (NIS2 annex II)",
        Food "food" "production, processing and distribution of food (NIS2 annex II)",
        Manufacturing "manufacturing" "medical devices, electronics, machinery, vehicles (NIS2 annex II)",
        DigitalProviders "digital-providers" "online marketplaces, search engines, social networks (NIS2 annex II)",
        Research "research" "research organisations (NIS2 annex II)",
        Academic "academic" "universities and schools",
        Isp "isp" "Internet service providers",
        Private "private" "other companies",
        NationalCenter "national-center" "the national CERT/CSIRT itself",
        InternationalPartner "international-partner" "a partner center abroad",
        Unclassified "unclassified" "not yet classified (imported from a registry)",
    }
);

named_enum!(
    /// How often an organization is told about new events in its networks.
    Interval, "interval" {
        Immediately "immediately" "as soon as events arrive",
        Hourly "hourly" "once an hour",
        Daily "daily" "once a day",
        Weekly "weekly" "once a week",
        Never "never" "not notified",
    }
);

named_enum!(
    /// The attachment format of notifications.
    NotifyFormat, "format" {
        Csv "csv" "CSV",
        Json "json" "JSON (IntelMQ field names)",
    }
);

named_enum!(
    /// Who may receive an object besides the national center, on top of what its TLP allows
    /// (in increasing reach).
    Distribution, "distribution" {
        Producer "producer" "the organization that produced it only",
        Affected "affected" "the organizations whose networks it concerns",
        Community "community" "a sharing community",
        Constituents "constituents" "every organization of the constituency",
        Partners "partners" "the constituency and partner centers abroad",
    }
);

impl Distribution {
    /// Its place in the order of reach, as the store keeps it.
    pub fn code(self) -> u8 {
        self as u8
    }
}

named_enum!(
    /// What a user may do. Admins and analysts belong to the national center.
    Role, "role" {
        Admin "admin" "the national center's administrators: everything, and accounts",
        Analyst "analyst" "the national center's analysts: all data",
        OrgAdmin "org-admin" "an organization's administrator: its data and its users",
        OrgMember "org-member" "a member of an organization: its data",
        Partner "partner" "machine access for a partner center",
    }
);

impl Role {
    /// Whether the role belongs to the national center and sees all data.
    pub fn is_center(self) -> bool {
        matches!(self, Role::Admin | Role::Analyst)
    }
}

/// A resource an organization owns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Asset {
    Asn(u32),
    Prefix(IpNet),
    /// A domain and everything under it.
    Domain(String),
}

impl Asset {
    pub fn kind(&self) -> &'static str {
        match self {
            Asset::Asn(_) => "asn",
            Asset::Prefix(_) => "prefix",
            Asset::Domain(_) => "domain",
        }
    }

    /// Reads an asset of a known kind.
    pub fn parse_kind(kind: &str, value: &str) -> Result<Asset, String> {
        let value = value.trim();
        match kind {
            "asn" => {
                let digits = value.strip_prefix("AS").or_else(|| value.strip_prefix("as")).unwrap_or(value);
                digits.parse().map(Asset::Asn).map_err(|_| format!("{value:?} is not an AS number (64500 or AS64500)"))
            }
            "prefix" => value
                .parse::<IpNet>()
                .or_else(|_| value.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(|n| Asset::Prefix(n.trunc()))
                .map_err(|_| format!("{value:?} is not a network (192.0.2.0/24 or 2001:db8::/32)")),
            "domain" => {
                let d = value.trim_end_matches('.').to_ascii_lowercase();
                let ok = !d.is_empty()
                    && d.len() <= 253
                    && d.split('.').all(|l| {
                        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    });
                if ok { Ok(Asset::Domain(d)) } else { Err(format!("{value:?} is not a domain name")) }
            }
            other => Err(format!("unknown asset kind {other:?}: asn, prefix or domain")),
        }
    }

    pub fn value(&self) -> String {
        match self {
            Asset::Asn(n) => n.to_string(),
            Asset::Prefix(p) => p.to_string(),
            Asset::Domain(d) => d.clone(),
        }
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Asset::Asn(n) => write!(f, "AS{n}"),
            Asset::Prefix(p) => write!(f, "{p}"),
            Asset::Domain(d) => f.write_str(d),
        }
    }
}

/// Where and how an organization is told about its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub email: String,
    /// ISO 639-1: `pt`, `en`.
    pub language: String,
    pub interval: Interval,
    pub format: NotifyFormat,
}

impl Contact {
    pub fn new(email: &str) -> Result<Contact, String> {
        Ok(Contact {
            email: check_email(email)?,
            language: "en".into(),
            interval: Interval::Daily,
            format: NotifyFormat::Csv,
        })
    }
}

/// A plausible e-mail address (one `@`, a dotted domain, no spaces or angle brackets),
/// lower-cased domain.
pub fn check_email(s: &str) -> Result<String, String> {
    let s = s.trim();
    let ok = s.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
            && domain.matches('@').count() == 0
    });
    match (ok, s.split_once('@')) {
        (true, Some((local, domain))) => Ok(format!("{local}@{}", domain.to_ascii_lowercase())),
        _ => Err(format!("{s:?} is not an e-mail address")),
    }
}

/// An organization of the constituency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub sector: Sector,
    /// An outside identifier, for re-imports (a RIPE organisation handle, `ORG-EX1-RIPE`).
    pub handle: Option<String>,
    pub assets: Vec<Asset>,
    pub contacts: Vec<Contact>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_read_and_print() {
        assert_eq!(Asset::parse_kind("asn", "AS64500").unwrap(), Asset::Asn(64500));
        assert_eq!(Asset::parse_kind("prefix", "192.0.2.7/24").unwrap().to_string(), "192.0.2.0/24");
        assert_eq!(Asset::parse_kind("prefix", "2001:db8::1").unwrap().to_string(), "2001:db8::1/128");
        assert_eq!(Asset::parse_kind("domain", "Hospital-X.pt.").unwrap(), Asset::Domain("hospital-x.pt".into()));
        assert!(Asset::parse_kind("domain", "a..pt").is_err());
        assert!(Asset::parse_kind("asn", "4294967296").is_err());
    }

    #[test]
    fn names_and_addresses() {
        assert_eq!("health".parse::<Sector>().unwrap(), Sector::Health);
        assert_eq!("Drinking_Water".parse::<Sector>().unwrap(), Sector::DrinkingWater);
        assert!("hospitals".parse::<Sector>().unwrap_err().contains("health"));
        assert_eq!(check_email("soc@Hospital-X.PT").unwrap(), "soc@hospital-x.pt");
        for bad in ["soc", "soc@", "@x.pt", "a b@x.pt", "a@x", "a@b@x.pt", "<a@x.pt>"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
