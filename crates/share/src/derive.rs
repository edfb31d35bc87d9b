//! Indicators from events. Rules say which classification types give indicators, from which
//! fields, how sure the center is of them and how long they hold. Reports are derived in order,
//! each once it and every report before it are finished; the store's mark says how far.

use std::collections::HashMap;

use farol_model::indicator::{IndicatorKind, Origin};
use farol_model::org::{Distribution, OrgId};
use farol_model::{ClassificationType, Field, ReportId, Timestamp, Tlp};
use farol_store::{Sighting, Store, StoreError};

/// Which events give indicators, from which fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub types: Vec<ClassificationType>,
    /// Fields that hold an address, a domain, a URL or a file hash.
    pub fields: Vec<Field>,
    /// Used when the feed gives no `feed.accuracy`.
    pub confidence: u8,
    /// How long after it was last seen an indicator holds; forever when `None`.
    pub valid_days: Option<u32>,
}

/// The kind of indicator a field holds; `None` for fields that hold none.
pub fn kind_of(field: Field) -> Option<IndicatorKind> {
    Some(match field {
        Field::SourceIp | Field::DestinationIp => IndicatorKind::Ip,
        Field::SourceFqdn | Field::DestinationFqdn => IndicatorKind::Domain,
        Field::SourceUrl | Field::DestinationUrl => IndicatorKind::Url,
        Field::MalwareHashMd5 => IndicatorKind::Md5,
        Field::MalwareHashSha1 => IndicatorKind::Sha1,
        Field::MalwareHashSha256 => IndicatorKind::Sha256,
        _ => return None,
    })
}

impl Rule {
    /// A rule, or what is wrong with it.
    pub fn new(
        types: Vec<ClassificationType>,
        fields: Vec<Field>,
        confidence: u8,
        valid_days: Option<u32>,
    ) -> Result<Rule, String> {
        if types.is_empty() || fields.is_empty() {
            return Err("a rule needs at least one type and one field".to_owned());
        }
        if let Some(f) = fields.iter().find(|&&f| kind_of(f).is_none()) {
            return Err(format!(
                "{} holds no indicator; fields that do: source.ip, source.fqdn, source.url, their destination.* \
                 twins, malware.hash.md5, malware.hash.sha1, malware.hash.sha256",
                f.name()
            ));
        }
        if confidence > 100 {
            return Err(format!("confidence {confidence} is above 100"));
        }
        Ok(Rule { types, fields, confidence, valid_days })
    }

    /// The rules used when the configuration gives none: command-and-control servers (the
    /// source of a c2-server event is the server), phishing and malware-distribution URLs with
    /// the files they serve, and the addresses of scanners, brute-forcers and spammers, which
    /// change hands quickly and so hold for a week.
    pub fn defaults() -> Vec<Rule> {
        use ClassificationType as T;
        let rule = |types: &[T], fields: &[Field], confidence, days| Rule {
            types: types.to_vec(),
            fields: fields.to_vec(),
            confidence,
            valid_days: Some(days),
        };
        vec![
            rule(&[T::C2Server], &[Field::SourceIp, Field::SourceFqdn, Field::SourceUrl], 80, 30),
            rule(&[T::Phishing], &[Field::SourceUrl], 80, 30),
            rule(&[T::MalwareDistribution], &[Field::SourceUrl], 80, 30),
            rule(
                &[T::MalwareDistribution],
                &[Field::MalwareHashMd5, Field::MalwareHashSha1, Field::MalwareHashSha256],
                80,
                365,
            ),
            rule(&[T::Scanner, T::BruteForce, T::Spam], &[Field::SourceIp], 50, 7),
        ]
    }
}

/// How a feed shares what it brings (from its configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSharing {
    pub distribution: Distribution,
    /// The community, by name, when the distribution is `community`.
    pub community: Option<String>,
}

/// What a derivation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Derived {
    pub reports: u64,
    pub events: u64,
    pub sightings: u64,
}

/// Events read at a time.
const PAGE: usize = 10_000;

/// Derives indicators from the reports finished since the last derivation. `feeds` gives each
/// feed's sharing; a feed not in it shares with the affected organizations. Safe to run at any
/// time and from any process: each report's sightings and the mark move together.
pub fn derive(
    store: &dyn Store,
    rules: &[Rule],
    feeds: &HashMap<String, FeedSharing>,
    now: Timestamp,
) -> Result<Derived, StoreError> {
    let mut done = Derived::default();
    let through = store.finished_through()?;
    let mut mark = store.indicator_mark()?;
    if mark >= through {
        return Ok(done);
    }
    let communities: HashMap<String, i64> = store.communities()?.into_iter().map(|c| (c.name, c.id)).collect();
    let mut types: Vec<ClassificationType> = rules.iter().flat_map(|r| r.types.iter().copied()).collect();
    types.sort_unstable();
    types.dedup();
    while mark < through {
        mark += 1;
        let report = ReportId(mark);
        let mut found: HashMap<(IndicatorKind, String), Sighting> = HashMap::new();
        let mut after = 0;
        loop {
            // A removed report (an abandoned upload) has no events: nothing to derive.
            let page = store.report_events(report, &types, after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.id;
            done.events += page.len() as u64;
            for stored in &page {
                let sharing = feeds.get(&stored.feed);
                let distribution = sharing.map_or(Distribution::Affected, |s| s.distribution);
                let community = sharing.and_then(|s| s.community.as_ref()).and_then(|c| communities.get(c).copied());
                // Shared with a community that does not exist: with nobody but the producer.
                let distribution = match (distribution, community) {
                    (Distribution::Community, None) => Distribution::Producer,
                    (d, _) => d,
                };
                let e = &stored.event;
                let Some(category) = e.classification_type else { continue };
                let seen = e.time().unwrap_or(stored.filed);
                let (first, last_seen, count) =
                    stored.aggregate.map_or((seen, seen, 1), |a| (a.first_seen, a.last_seen, a.count));
                let accuracy = e.feed_accuracy.map(|a| a.clamp(0.0, 100.0).round() as u8);
                let family = e.family().map(String::from).filter(|f| !f.is_empty());
                // As the store files it: an event without a TLP is AMBER.
                let tlp = e.tlp.unwrap_or(Tlp::Amber);
                for rule in rules.iter().filter(|r| r.types.contains(&category)) {
                    for &field in &rule.fields {
                        let (Some(kind), Some(value)) = (kind_of(field), e.get(field)) else { continue };
                        let Ok(value) = kind.normalize(&value.to_string()) else { continue };
                        let s = found.entry((kind, value.clone())).or_insert_with(|| Sighting {
                            kind,
                            value,
                            origin: Origin::Feed(stored.feed.clone()),
                            category,
                            family: family.clone(),
                            tlp,
                            distribution,
                            community,
                            orgs: Vec::new(),
                            confidence: 0,
                            first_seen: first,
                            last_seen,
                            valid_for: rule.valid_days.map(|d| i64::from(d) * 86_400_000_000),
                            count: 0,
                        });
                        merge(
                            s,
                            &Part { tlp, distribution, community, first, last_seen, count, orgs: &stored.routing.orgs },
                        );
                        s.confidence = s.confidence.max(accuracy.unwrap_or(rule.confidence));
                        if s.family.is_none() {
                            s.family.clone_from(&family);
                        }
                    }
                }
            }
            if page.len() < PAGE {
                break;
            }
        }
        let mut sightings: Vec<Sighting> = found.into_values().collect();
        sightings.sort_by(|a, b| (a.kind, &a.value).cmp(&(b.kind, &b.value)));
        done.sightings += sightings.len() as u64;
        done.reports += 1;
        store.add_sightings(report, &sightings, now)?;
    }
    Ok(done)
}

/// One event's share of a sighting.
struct Part<'a> {
    tlp: Tlp,
    distribution: Distribution,
    community: Option<i64>,
    first: Timestamp,
    last_seen: Timestamp,
    count: u64,
    orgs: &'a [OrgId],
}

/// The most restrictive TLP and the least reach win; times widen; counts add.
fn merge(s: &mut Sighting, p: &Part<'_>) {
    s.tlp = s.tlp.max(p.tlp);
    if p.distribution < s.distribution {
        s.distribution = p.distribution;
        s.community = p.community;
    }
    s.first_seen = s.first_seen.min(p.first);
    s.last_seen = s.last_seen.max(p.last_seen);
    s.count += p.count;
    for o in p.orgs {
        if !s.orgs.contains(o) {
            s.orgs.push(*o);
        }
    }
}
