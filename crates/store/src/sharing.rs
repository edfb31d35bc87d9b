//! What the store needs to know to keep and read indicators.

use farol_model::indicator::{IndicatorKind, Origin};
use farol_model::org::{Distribution, OrgId};
use farol_model::{ClassificationType, Timestamp, Tlp};

/// A report's evidence for one indicator: what its events said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub kind: IndicatorKind,
    pub value: String,
    pub origin: Origin,
    pub category: ClassificationType,
    pub family: Option<String>,
    /// The most restrictive TLP of the events.
    pub tlp: Tlp,
    /// The least reach of the events' distribution.
    pub distribution: Distribution,
    pub community: Option<i64>,
    /// The organizations of the events' networks.
    pub orgs: Vec<OrgId>,
    pub confidence: u8,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// How long after it was last seen the indicator holds.
    pub valid_for: Option<i64>,
    /// Events of the report that showed it.
    pub count: u64,
}

/// One audience's share of the indicators: who may read what, up to which TLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Every indicator (the national center).
    All,
    /// Those in this organization's networks whose distribution reaches the affected
    /// organizations, up to this TLP.
    Inside(OrgId, Tlp),
    /// Those shared with this community, up to this TLP.
    Community(i64, Tlp),
    /// Those whose distribution reaches at least this far, up to this TLP.
    Reach(Distribution, Tlp),
}

/// Where a listing of indicators resumes: after this version (modified time) and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub modified: i64,
    pub id: i64,
}

/// Which indicators to read, oldest version first unless asked otherwise. What no grant allows is never returned;
/// no grant at all returns nothing.
#[derive(Debug, Clone, Default)]
pub struct IndicatorQuery {
    /// Their union is what may be read.
    pub grants: Vec<Grant>,
    /// Only these kinds (all when empty).
    pub kinds: Vec<IndicatorKind>,
    /// Only these ids (all when empty).
    pub ids: Vec<i64>,
    /// Only those valid (not revoked, not expired) at this time.
    pub valid_at: Option<Timestamp>,
    /// Only versions after this one.
    pub after: Option<Version>,
    /// Only those whose value contains this text.
    pub search: Option<String>,
    /// The newest versions first (for people; `after` pages oldest first).
    pub newest_first: bool,
    pub limit: usize,
}
