//! Filter values as people type them, on the command line and in the API's query strings.

use crate::{ClassificationType, Taxonomy, Timestamp};

/// A time: a date, an RFC 3339 time, or how long ago (`30m`, `12h`, `7d`, `2w`).
pub fn time(s: &str) -> Result<Timestamp, String> {
    let relative = s.strip_suffix(['m', 'h', 'd', 'w']).and_then(|n| n.parse::<i64>().ok()).map(|n| {
        let unit = match s.chars().last() {
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => 7 * 86_400,
        };
        Timestamp::now().add_secs(-n.saturating_mul(unit))
    });
    match relative {
        Some(t) => t.ok_or_else(|| format!("{s:?} is too far back")),
        None => Timestamp::parse(s)
            .ok_or_else(|| format!("expected a time such as 2024-06-01, 2024-06-01T10:00:00Z or 7d, found {s:?}")),
    }
}

/// An AS number, with or without `AS`.
pub fn asn(s: &str) -> Result<u32, String> {
    use crate::kinds::FieldKind as _;
    crate::kinds::Asn::parse(s).ok_or_else(|| format!("expected an AS number such as 3243 or AS3243, found {s:?}"))
}

/// An RSIT taxonomy by name.
pub fn taxonomy(s: &str) -> Result<Taxonomy, String> {
    Taxonomy::parse(s).map(|r| r.value()).ok_or_else(|| {
        let all: Vec<&str> = Taxonomy::ALL.iter().map(|t| t.as_str()).collect();
        format!("expected one of {}", all.join(", "))
    })
}

/// A classification type by name (IntelMQ 2.x names too).
pub fn kind(s: &str) -> Result<ClassificationType, String> {
    ClassificationType::parse(s).map(|r| r.value()).ok_or_else(|| {
        let all: Vec<&str> = ClassificationType::ALL.iter().map(|t| t.as_str()).collect();
        format!("expected one of {}", all.join(", "))
    })
}
