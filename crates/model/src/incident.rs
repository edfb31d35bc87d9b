//! Incidents: what the center handles, from report to resolution, with its timeline.

use crate::org::OrgId;
use crate::{ClassificationType, Timestamp, Tlp};

named_enum!(
    /// How bad an incident is; it sets the deadlines.
    Severity, "severity" {
        Low "low" "little impact; handled as time allows",
        Medium "medium" "limited impact",
        High "high" "serious impact on an organization",
        Critical "critical" "serious impact on essential services or many organizations",
    }
);

named_enum!(
    /// Where an incident is.
    Status, "status" {
        New "new" "reported; nobody has answered yet",
        Open "open" "being handled",
        Stalled "stalled" "waiting for someone outside the center",
        Resolved "resolved" "handled",
        Rejected "rejected" "not an incident, a duplicate, or not the center's",
    }
);

impl Status {
    /// Whether the incident still needs work.
    pub fn is_open(self) -> bool {
        matches!(self, Status::New | Status::Open | Status::Stalled)
    }

    /// Whether an incident may go from this status to `to`: any open status to any other;
    /// a closed one only back to open (reopening); nothing returns to new.
    pub fn may_become(self, to: Status) -> bool {
        self != to && to != Status::New && (self.is_open() || to == Status::Open)
    }
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: i64,
    pub title: String,
    /// Its class in the reference taxonomy (RSIT).
    pub class: ClassificationType,
    pub severity: Severity,
    pub tlp: Tlp,
    pub status: Status,
    /// The user handling it.
    pub assignee: Option<i64>,
    /// The organizations it concerns.
    pub orgs: Vec<OrgId>,
    /// The events it stands on.
    pub events: Vec<i64>,
    pub created: Timestamp,
    /// When it first left "new".
    pub first_response: Option<Timestamp>,
    /// When it was last resolved or rejected.
    pub closed: Option<Timestamp>,
    /// The incident it was merged into.
    pub merged_into: Option<i64>,
}

/// Time allowed, per severity, for the first response and for resolution (`[incidents]` in
/// `farol.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Seconds to the first response, by severity (low, medium, high, critical).
    pub first_response: [i64; 4],
    /// Seconds to resolution, by severity.
    pub resolution: [i64; 4],
}

impl Default for Deadlines {
    fn default() -> Deadlines {
        const HOUR: i64 = 3600;
        const DAY: i64 = 86_400;
        Deadlines { first_response: [3 * DAY, DAY, 4 * HOUR, HOUR], resolution: [30 * DAY, 7 * DAY, 3 * DAY, DAY] }
    }
}

/// Which deadline an open incident has missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdue {
    FirstResponse,
    Resolution,
}

impl Incident {
    /// A new incident: not yet stored (id 0), new, unassigned, with no organizations or events.
    pub fn new(title: &str, class: ClassificationType, severity: Severity, tlp: Tlp, created: Timestamp) -> Incident {
        Incident {
            id: 0,
            title: title.to_owned(),
            class,
            severity,
            tlp,
            status: Status::New,
            assignee: None,
            orgs: Vec::new(),
            events: Vec::new(),
            created,
            first_response: None,
            closed: None,
            merged_into: None,
        }
    }

    /// Moves to a status (which [`Status::may_become`] allows), keeping the first response and
    /// the closing time: leaving "new" is the first response; reopening clears the closing.
    pub fn set_status(&mut self, to: Status, now: Timestamp) {
        if self.status == Status::New {
            self.first_response.get_or_insert(now);
        }
        self.closed = if to.is_open() { None } else { Some(now) };
        self.status = to;
    }

    /// The deadline this incident has missed at `now`, if any (closed incidents have none).
    pub fn overdue(&self, deadlines: &Deadlines, now: Timestamp) -> Option<Overdue> {
        if !self.status.is_open() {
            return None;
        }
        let i = self.severity as usize;
        let late = |secs: i64| self.created.add_secs(secs).is_some_and(|due| now > due);
        if self.first_response.is_none() && late(deadlines.first_response[i]) {
            Some(Overdue::FirstResponse)
        } else if late(deadlines.resolution[i]) {
            Some(Overdue::Resolution)
        } else {
            None
        }
    }
}

/// A title as given: one line of 1 to 200 characters, trimmed.
pub fn check_title(title: &str) -> Result<String, String> {
    let t = title.trim();
    if t.is_empty() || t.chars().count() > 200 || t.chars().any(char::is_control) {
        return Err("a title is one line of 1 to 200 characters".to_owned());
    }
    Ok(t.to_owned())
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub at: Timestamp,
    /// Who (a user id); `None` for the command line and farol itself.
    pub user: Option<i64>,
    pub kind: EntryKind,
    pub text: String,
}

named_enum!(
    /// What a timeline entry records.
    EntryKind, "entry kind" {
        Created "created" "the incident was opened",
        Comment "comment" "a comment",
        Change "change" "a change of status, severity, TLP, assignee or organizations",
        Link "link" "events linked",
        Merge "merge" "incidents merged",
        Correspondence "correspondence" "a message received about it",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_move_forward_and_reopen() {
        use Status::*;
        let allowed: Vec<(Status, Status)> = Status::ALL
            .iter()
            .flat_map(|&a| Status::ALL.iter().map(move |&b| (a, b)))
            .filter(|(a, b)| a.may_become(*b))
            .collect();
        let expected = [
            (New, Open),
            (New, Stalled),
            (New, Resolved),
            (New, Rejected),
            (Open, Stalled),
            (Open, Resolved),
            (Open, Rejected),
            (Stalled, Open),
            (Stalled, Resolved),
            (Stalled, Rejected),
            (Resolved, Open),
            (Rejected, Open),
        ];
        assert_eq!(allowed, expected);
    }

    #[test]
    fn deadlines_follow_the_severity() {
        let created = Timestamp::parse("2026-11-29T10:00:00Z").unwrap();
        let mut i = Incident::new("t", ClassificationType::InfectedSystem, Severity::High, Tlp::Amber, created);
        let d = Deadlines::default();
        let at = |h: i64| created.add_secs(h * 3600).unwrap();
        assert_eq!(i.overdue(&d, at(4)), None);
        assert_eq!(i.overdue(&d, at(5)), Some(Overdue::FirstResponse));
        i.first_response = Some(at(1));
        assert_eq!(i.overdue(&d, at(5)), None);
        assert_eq!(i.overdue(&d, at(73)), Some(Overdue::Resolution));
        i.set_status(Status::Resolved, at(73));
        assert_eq!(i.overdue(&d, at(74)), None);
        i.set_status(Status::Open, at(80));
        assert_eq!((i.first_response, i.closed), (Some(at(1)), None), "reopening keeps the first response");
        let mut critical = Incident::new("c", ClassificationType::Ddos, Severity::Critical, Tlp::Amber, created);
        assert_eq!(critical.overdue(&d, at(2)), Some(Overdue::FirstResponse));
        critical.set_status(Status::Rejected, at(3));
        assert_eq!((critical.first_response, critical.closed), (Some(at(3)), Some(at(3))));
    }
}
