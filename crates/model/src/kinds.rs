//! Value kinds of the harmonization fields: how a value is sanitized from text or JSON, what it
//! is stored as, and how it is shown. Each kind follows the IntelMQ type of the same name.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use compact_str::CompactString;
use ipnet::IpNet;
use serde_json::Value;

use crate::taxonomy::{ClassificationType, Taxonomy};
use crate::time::Timestamp;
use crate::tlp::Tlp;

/// A borrowed view of one field's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    Ip(IpAddr),
    Net(IpNet),
    Time(Timestamp),
    Json(&'a Value),
}

impl FieldValue<'_> {
    /// The value as IntelMQ's JSON carries it.
    pub fn to_json(self) -> Value {
        match self {
            FieldValue::Str(s) => Value::String(s.to_owned()),
            FieldValue::Int(i) => Value::from(i),
            FieldValue::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            FieldValue::Bool(b) => Value::Bool(b),
            FieldValue::Ip(ip) => Value::String(ip.to_string()),
            FieldValue::Net(net) => Value::String(net.to_string()),
            FieldValue::Time(t) => Value::String(t.to_string()),
            FieldValue::Json(v) => v.clone(),
        }
    }

    /// The value as text, for tables, CSV and hashing.
    pub fn to_text(self) -> String {
        match self {
            FieldValue::Str(s) => s.to_owned(),
            FieldValue::Json(Value::String(s)) => s.clone(),
            FieldValue::Json(v) => v.to_string(),
            other => other.to_string(),
        }
    }
}

impl std::fmt::Display for FieldValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldValue::Str(s) => f.write_str(s),
            FieldValue::Int(i) => write!(f, "{i}"),
            FieldValue::Float(x) => write!(f, "{x}"),
            FieldValue::Bool(b) => write!(f, "{b}"),
            FieldValue::Ip(ip) => write!(f, "{ip}"),
            FieldValue::Net(net) => write!(f, "{net}"),
            FieldValue::Time(t) => write!(f, "{t}"),
            FieldValue::Json(v) => write!(f, "{v}"),
        }
    }
}

/// A field kind: sanitizes input into its stored type.
pub trait FieldKind {
    type Value;
    /// What a valid value looks like, for error messages.
    const EXPECTED: &'static str;

    fn parse(s: &str) -> Option<Self::Value>;

    /// Accepts strings through [`FieldKind::parse`]; kinds that take numbers or booleans override.
    fn from_json(v: &Value) -> Option<Self::Value> {
        match v {
            Value::String(s) => Self::parse(s),
            Value::Number(n) => Self::parse(&n.to_string()),
            Value::Bool(b) => Self::parse(if *b { "true" } else { "false" }),
            _ => None,
        }
    }

    fn view(v: &Self::Value) -> FieldValue<'_>;

    /// Makes a value cheap to copy into many events (see [`shared`]); only text needs it.
    fn share(_: &mut Self::Value) {}
}

/// The text, kept once for the life of the process so that copies of the result cost no
/// allocation. For what configuration sets on every event of a feed or report type (a feed's
/// provider, a report's documentation URL): the texts are few, and each is kept only once.
pub fn shared(s: &str) -> CompactString {
    static POOL: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    let kept = match pool.get(s) {
        Some(kept) => *kept,
        None => {
            let kept: &'static str = Box::leak(s.into());
            pool.insert(kept);
            kept
        }
    };
    CompactString::const_new(kept)
}

fn text(s: &str) -> Option<CompactString> {
    (!s.is_empty()).then(|| CompactString::from(s))
}

/// Lower-cased text; ASCII (nearly every value) is lowered in place, without a heap copy.
fn lower(s: &str) -> CompactString {
    if s.is_ascii() {
        let mut c = CompactString::from(s);
        c.make_ascii_lowercase();
        c
    } else {
        CompactString::from(s.to_lowercase())
    }
}

fn printable(s: &str) -> bool {
    s.bytes().all(|b| (b' '..=b'~').contains(&b))
}

fn view_text(v: &CompactString) -> FieldValue<'_> {
    FieldValue::Str(v.as_str())
}

macro_rules! text_kind {
    ($(#[$doc:meta])* $name:ident, $expected:literal, |$s:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl FieldKind for $name {
            type Value = CompactString;
            const EXPECTED: &'static str = $expected;
            fn parse($s: &str) -> Option<CompactString> {
                $body
            }
            fn view(v: &CompactString) -> FieldValue<'_> {
                view_text(v)
            }
            fn share(v: &mut CompactString) {
                if v.is_heap_allocated() {
                    *v = shared(v);
                }
            }
        }
    };
}

text_kind!(
    /// Any non-empty text.
    Text, "non-empty text", |s| text(s));
text_kind!(
    /// Text stored in lower case.
    Lower, "non-empty text", |s| (!s.is_empty()).then(|| lower(s)));
text_kind!(
/// Printable ASCII in lower case (malware names, application protocols).
LowerPrintable, "printable ASCII text", |s| {
    (printable(s) && !s.is_empty()).then(|| lower(s))
});
text_kind!(
    /// Printable ASCII (versions, file hashes).
    Printable, "printable ASCII text", |s| printable(s).then(|| text(s)).flatten());
text_kind!(
/// An ISO 3166-1 alpha-2 country code, stored in upper case.
CountryCode, "a two-letter country code such as PT", |s| {
    let s = s.trim();
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| CompactString::from(s.to_ascii_uppercase()))
});
text_kind!(
/// A DNS name: lower case, without a final dot, no spaces, slashes or colons, not an IP address.
Fqdn, "a domain name such as host.example.pt", |s| {
    let s = lower(s.trim().trim_end_matches('.'));
    let ok = !s.is_empty()
        && s.len() <= 253
        && !s.contains(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '/' | ':' | '@'))
        && s.parse::<IpAddr>().is_err();
    ok.then_some(s)
});
text_kind!(
    /// A URL with a scheme and a host; `hxxp` is defanged back and a missing scheme becomes http.
    Url, "a URL such as http://example.pt/path", |s| sanitize_url(s).map(CompactString::from));
text_kind!(
/// The five regional internet registries.
Registry, "one of AFRINIC, APNIC, ARIN, LACNIC, RIPE", |s| {
    let upper = s.trim().to_ascii_uppercase();
    let name = if upper == "RIPE-NCC" || upper == "RIPENCC" { "RIPE" } else { upper.as_str() };
    matches!(name, "AFRINIC" | "APNIC" | "ARIN" | "LACNIC" | "RIPE").then(|| CompactString::from(name))
});
text_kind!(
/// An IP transport protocol name such as tcp, udp or icmp.
Transport, "a transport protocol such as tcp or udp", |s| {
    let s = s.trim().to_ascii_lowercase();
    (!s.is_empty() && s.len() <= 11 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-+./".contains(&b)))
        .then(|| CompactString::from(s))
});
text_kind!(
/// A UUID in lower case, as MISP writes it.
Uuid, "a UUID such as 5e0e1c2a-0b6c-4c5e-9f4a-0a1b2c3d4e5f", |s| {
    let s = s.trim().to_ascii_lowercase();
    let b = s.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| if [8, 13, 18, 23].contains(&i) { c == b'-' } else { c.is_ascii_hexdigit() });
    ok.then(|| CompactString::from(s))
});
text_kind!(
/// Base64 text (the `raw` field).
Base64, "base64 text", |s| {
    use base64::Engine as _;
    let s = s.trim();
    base64::engine::general_purpose::STANDARD.decode(s).ok().map(|_| CompactString::from(s))
});
text_kind!(
/// IntelMQ's `event_hash`: upper-case hexadecimal.
HashText, "hexadecimal text", |s| {
    let s = s.trim().to_ascii_uppercase();
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b'/'))
        .then(|| CompactString::from(s))
});

/// Turns `hxxp://x`, `x.pt/path` and `HTTP://X/` into a URL with a scheme; rejects what has no host.
pub fn sanitize_url(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let mut url = match s.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("hxxp") => format!("http{}", &s[4..]),
        _ => s.to_owned(),
    };
    let scheme_end = match url.find("://") {
        Some(i) if i > 0 && url[..i].bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) => i,
        Some(_) => return None,
        None => {
            url.insert_str(0, "http://");
            4
        }
    };
    let scheme = url[..scheme_end].to_ascii_lowercase();
    url.replace_range(..scheme_end, &scheme);
    let rest = &url[scheme_end + 3..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    (!host.is_empty() && host != ":").then_some(url)
}

#[derive(Debug)]
pub struct Ip;
impl FieldKind for Ip {
    type Value = IpAddr;
    const EXPECTED: &'static str = "an IPv4 or IPv6 address";
    fn parse(s: &str) -> Option<IpAddr> {
        let s = s.trim();
        let s = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(s);
        parse_ipv4(s.as_bytes()).map(IpAddr::V4).or_else(|| s.parse().ok())
    }
    fn view(v: &IpAddr) -> FieldValue<'_> {
        FieldValue::Ip(*v)
    }
}

/// Reads a dotted quad (`192.0.2.1`) several times faster than `str::parse`, which it agrees
/// with: it accepts a subset of what `Ipv4Addr::from_str` accepts (no leading zeros), and the
/// caller falls back to `parse` for anything else.
pub fn parse_ipv4(s: &[u8]) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (n, octet) in octets.iter_mut().enumerate() {
        if n > 0 {
            if s.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut value: u32 = 0;
        while let Some(d) = s.get(i).filter(|b| b.is_ascii_digit()) {
            value = value * 10 + u32::from(d - b'0');
            i += 1;
            if i - start > 3 {
                return None;
            }
        }
        if i == start || (i - start > 1 && s[start] == b'0') {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
    }
    (i == s.len()).then_some(std::net::Ipv4Addr::from(octets))
}

#[derive(Debug)]
pub struct Network;
impl FieldKind for Network {
    type Value = IpNet;
    const EXPECTED: &'static str = "a network in CIDR notation such as 192.0.2.0/24";
    fn parse(s: &str) -> Option<IpNet> {
        let s = s.trim();
        s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from)).map(|n| n.trunc())
    }
    fn view(v: &IpNet) -> FieldValue<'_> {
        FieldValue::Net(*v)
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    s.parse::<i64>().ok().or_else(|| {
        // "80.0" from spreadsheets and float-typed JSON.
        let f: f64 = s.parse().ok()?;
        (f.fract() == 0.0 && f.abs() < 9e15).then_some(f as i64)
    })
}

#[derive(Debug)]
pub struct Port;
impl FieldKind for Port {
    type Value = u16;
    const EXPECTED: &'static str = "a port number from 0 to 65535";
    fn parse(s: &str) -> Option<u16> {
        parse_int(s).and_then(|i| u16::try_from(i).ok())
    }
    fn view(v: &u16) -> FieldValue<'_> {
        FieldValue::Int(i64::from(*v))
    }
}

#[derive(Debug)]
pub struct Asn;
impl FieldKind for Asn {
    type Value = u32;
    const EXPECTED: &'static str = "an AS number such as 3243 or AS3243";
    fn parse(s: &str) -> Option<u32> {
        let s = s.trim();
        let s = s.get(..2).filter(|p| p.eq_ignore_ascii_case("as")).map_or(s, |_| &s[2..]);
        parse_int(s).and_then(|i| u32::try_from(i).ok())
    }
    fn view(v: &u32) -> FieldValue<'_> {
        FieldValue::Int(i64::from(*v))
    }
}

#[derive(Debug)]
pub struct Integer;
impl FieldKind for Integer {
    type Value = i64;
    const EXPECTED: &'static str = "an integer";
    fn parse(s: &str) -> Option<i64> {
        parse_int(s)
    }
    fn view(v: &i64) -> FieldValue<'_> {
        FieldValue::Int(*v)
    }
}

#[derive(Debug)]
pub struct Float;
impl FieldKind for Float {
    type Value = f64;
    const EXPECTED: &'static str = "a number";
    fn parse(s: &str) -> Option<f64> {
        s.trim().parse::<f64>().ok().filter(|f| f.is_finite())
    }
    fn view(v: &f64) -> FieldValue<'_> {
        FieldValue::Float(*v)
    }
}

#[derive(Debug)]
pub struct Accuracy;
impl FieldKind for Accuracy {
    type Value = f64;
    const EXPECTED: &'static str = "a number from 0 to 100";
    fn parse(s: &str) -> Option<f64> {
        Float::parse(s).filter(|f| (0.0..=100.0).contains(f))
    }
    fn from_json(v: &Value) -> Option<f64> {
        match v {
            Value::Bool(b) => Some(if *b { 100.0 } else { 0.0 }),
            Value::Number(n) => n.as_f64().filter(|f| (0.0..=100.0).contains(f)),
            Value::String(s) => Accuracy::parse(s),
            _ => None,
        }
    }
    fn view(v: &f64) -> FieldValue<'_> {
        FieldValue::Float(*v)
    }
}

#[derive(Debug)]
pub struct Boolean;
impl FieldKind for Boolean {
    type Value = bool;
    const EXPECTED: &'static str = "true or false";
    fn parse(s: &str) -> Option<bool> {
        match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" | "enabled" => Some(true),
            "false" | "no" | "n" | "0" | "disabled" => Some(false),
            _ => None,
        }
    }
    fn view(v: &bool) -> FieldValue<'_> {
        FieldValue::Bool(*v)
    }
}

#[derive(Debug)]
pub struct Time;
impl FieldKind for Time {
    type Value = Timestamp;
    const EXPECTED: &'static str = "a date and time such as 2024-06-01T10:12:44+00:00";
    fn parse(s: &str) -> Option<Timestamp> {
        Timestamp::parse(s)
    }
    fn view(v: &Timestamp) -> FieldValue<'_> {
        FieldValue::Time(*v)
    }
}

#[derive(Debug)]
pub struct TaxonomyKind;
impl FieldKind for TaxonomyKind {
    type Value = Taxonomy;
    const EXPECTED: &'static str = "an RSIT taxonomy such as malicious-code";
    fn parse(s: &str) -> Option<Taxonomy> {
        Taxonomy::parse(s).map(|r| r.value())
    }
    fn view(v: &Taxonomy) -> FieldValue<'_> {
        FieldValue::Str(v.as_str())
    }
}

#[derive(Debug)]
pub struct TypeKind;
impl FieldKind for TypeKind {
    type Value = ClassificationType;
    const EXPECTED: &'static str = "an RSIT classification type such as infected-system";
    fn parse(s: &str) -> Option<ClassificationType> {
        ClassificationType::parse(s).map(|r| r.value())
    }
    fn view(v: &ClassificationType) -> FieldValue<'_> {
        FieldValue::Str(v.as_str())
    }
}

#[derive(Debug)]
pub struct TlpKind;
impl FieldKind for TlpKind {
    type Value = Tlp;
    const EXPECTED: &'static str = "a TLP label: CLEAR, GREEN, AMBER, AMBER+STRICT or RED";
    fn parse(s: &str) -> Option<Tlp> {
        s.parse().ok()
    }
    fn view(v: &Tlp) -> FieldValue<'_> {
        FieldValue::Str(v.as_str())
    }
}

/// Any JSON value (IntelMQ's `output`).
#[derive(Debug)]
pub struct Json;
impl FieldKind for Json {
    type Value = Value;
    const EXPECTED: &'static str = "a JSON value";
    fn parse(s: &str) -> Option<Value> {
        Some(Value::String(s.to_owned()))
    }
    fn from_json(v: &Value) -> Option<Value> {
        (!v.is_null()).then(|| v.clone())
    }
    fn view(v: &Value) -> FieldValue<'_> {
        FieldValue::Json(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_ipv4_reader_agrees_with_the_standard_one() {
        for s in [
            "0.0.0.0",
            "192.0.2.1",
            "255.255.255.255",
            "10.0.0.01",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.",
            "1..2.3",
            "1.2.3.4x",
            "",
            "1234.1.1.1",
            "01.2.3.4",
            "1.2.3.-4",
            "::1",
            "1.2.3.4 ",
        ] {
            if let Some(ip) = parse_ipv4(s.as_bytes()) {
                assert_eq!(Some(ip), s.parse().ok(), "{s}");
            }
        }
        assert_eq!(parse_ipv4(b"192.0.2.1"), Some(std::net::Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(parse_ipv4(b"1.2.3.400"), None);
    }

    proptest::proptest! {
        #[test]
        fn the_fast_ipv4_reader_never_disagrees(s in "[0-9.]{0,17}") {
            let standard: Option<std::net::Ipv4Addr> = s.parse().ok();
            proptest::prop_assert!(parse_ipv4(s.as_bytes()).is_none_or(|ip| Some(ip) == standard));
            // Every quad without leading zeros is read by the fast path.
            if standard.is_some() && !s.split('.').any(|o| o.len() > 1 && o.starts_with('0')) {
                proptest::prop_assert_eq!(parse_ipv4(s.as_bytes()), standard);
            }
        }
    }

    #[test]
    fn sanitizers() {
        assert_eq!(Fqdn::parse("WWW.Example.PT.").as_deref(), Some("www.example.pt"));
        assert_eq!(Fqdn::parse("10.0.0.1"), None);
        assert_eq!(Fqdn::parse("10.0.0.1:8080"), None);
        assert_eq!(Fqdn::parse("a b"), None);
        assert_eq!(Url::parse("hxxp://evil.example/x").as_deref(), Some("http://evil.example/x"));
        assert_eq!(Url::parse("evil.example/x").as_deref(), Some("http://evil.example/x"));
        assert_eq!(Url::parse("HTTPS://Evil.example/X").as_deref(), Some("https://Evil.example/X"));
        assert_eq!(Url::parse("http:///x"), None);
        assert_eq!(Url::parse("://x"), None);
        assert_eq!(Url::parse("http://a b"), None);
        assert_eq!(Asn::parse("AS3243"), Some(3243));
        assert_eq!(Asn::parse("4294967296"), None);
        assert_eq!(Port::parse("443.0"), Some(443));
        assert_eq!(Port::parse("65536"), None);
        assert_eq!(Port::parse("-1"), None);
        assert_eq!(Ip::parse("[2001:db8::1]"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(Network::parse("192.0.2.7/24").unwrap().to_string(), "192.0.2.0/24");
        assert_eq!(Network::parse("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(CountryCode::parse("pt").as_deref(), Some("PT"));
        assert_eq!(CountryCode::parse("PRT"), None);
        assert_eq!(Registry::parse("ripe-ncc").as_deref(), Some("RIPE"));
        assert_eq!(Accuracy::parse("100.5"), None);
        assert_eq!(Accuracy::from_json(&Value::Bool(true)), Some(100.0));
        assert_eq!(Float::parse("NaN"), None);
        assert_eq!(Boolean::parse("Yes"), Some(true));
        assert_eq!(LowerPrintable::parse("Andromeda"), Some("andromeda".into()));
        assert_eq!(LowerPrintable::parse("caf\u{e9}"), None);
        assert_eq!(
            Uuid::parse("5E0E1C2A-0B6C-4C5E-9F4A-0A1B2C3D4E5F").as_deref(),
            Some("5e0e1c2a-0b6c-4c5e-9f4a-0a1b2c3d4e5f")
        );
        assert_eq!(Base64::parse("aGVsbG8="), Some("aGVsbG8=".into()));
        assert_eq!(Base64::parse("not base64!"), None);
        assert_eq!(Text::parse(""), None);
    }
}
