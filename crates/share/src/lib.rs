//! Sharing: indicators derived from events ([`derive`]), STIX 2.1 bundles ([`stix`]), a MISP
//! feed ([`misp`]), and the lists, rules and zones defenders load ([`export`]). What is shared
//! is chosen by the access policy before it gets here; nothing here decides who sees what.

pub mod derive;
pub mod export;
pub mod misp;
pub mod stix;

pub use derive::{Derived, FeedSharing, Rule, derive, kind_of};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use farol_model::indicator::{Indicator, IndicatorKind, Origin};
    use farol_model::org::Distribution;
    use farol_model::{ClassificationType, Timestamp, Tlp};

    /// An AMBER command-and-control indicator seen over a day of October 2026.
    pub(crate) fn indicator(kind: IndicatorKind, value: &str) -> Indicator {
        let t = |d| Timestamp::from_ymd_hms(2026, 10, d, 12, 0, 0).unwrap();
        Indicator {
            id: 1,
            kind,
            value: value.to_owned(),
            category: ClassificationType::C2Server,
            family: None,
            tlp: Tlp::Amber,
            distribution: Distribution::Constituents,
            community: None,
            orgs: Vec::new(),
            confidence: 80,
            valid_from: t(1),
            valid_until: Some(t(30)),
            first_seen: t(1),
            last_seen: t(2),
            sightings: 3,
            origin: Origin::Feed("feodo".into()),
            description: None,
            created: t(2),
            modified: t(2),
            revoked: false,
        }
    }
}
