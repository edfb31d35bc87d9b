//! Incidents as the API and the portal show them: what a viewer may see of each, and comments.

use std::net::SocketAddr;
use std::sync::Arc;

use farol_model::incident::{Entry, EntryKind, Incident, Severity, Status, check_title};
use farol_model::org::Asset;
use farol_model::{ClassificationType, Timestamp, Tlp};
use farol_store::IncidentFilter;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::{App, Failure};

/// The longest comment, in characters.
const MAX_COMMENT: usize = 10_000;

/// An incident as a viewer sees it: the center all of it; an organization's users without the
/// other organizations and the events they may not see, and with the timeline entries the
/// policy lets through (authors named by e-mail within their own organization, else as the
/// center).
#[derive(Debug)]
pub(crate) struct IncidentView {
    pub(crate) incident: Incident,
    pub(crate) timeline: Vec<(Entry, String)>,
}

impl IncidentView {
    pub(crate) fn json(&self) -> Value {
        let mut v = incident_json(&self.incident);
        v["timeline"] = self.timeline.iter().map(|(e, by)| entry_json(e, by)).collect();
        v
    }
}

/// A timeline entry, with who wrote it as the viewer may know it.
pub(crate) fn entry_json(e: &Entry, by: &str) -> Value {
    json!({ "at": e.at.to_rfc3339(), "kind": e.kind.as_str(), "by": by, "text": e.text })
}

pub(crate) fn incident_json(i: &Incident) -> Value {
    let time = |t: Option<Timestamp>| t.map(|t| t.to_rfc3339());
    json!({
        "id": i.id, "title": i.title, "class": i.class.as_str(), "severity": i.severity.as_str(),
        "tlp": i.tlp.as_str(), "status": i.status.as_str(), "created": i.created.to_rfc3339(),
        "first_response": time(i.first_response), "closed": time(i.closed),
        "orgs": i.orgs.iter().map(|o| o.0).collect::<Vec<_>>(), "events": i.events,
    })
}

/// An incident as reported by a user of an organization or of the center.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Report {
    pub(crate) title: String,
    pub(crate) description: String,
    /// An RSIT classification type; `undetermined` when the reporter does not know.
    #[serde(default)]
    pub(crate) class: Option<String>,
    /// Affected IP addresses, domains and URLs.
    #[serde(default)]
    pub(crate) affected: Vec<String>,
}

/// The most affected addresses, domains and URLs one report may name.
const MAX_AFFECTED: usize = 1000;

impl Report {
    /// The incident and its first entry, or what is wrong with the report.
    fn check(&self, p: &Principal, now: Timestamp) -> Result<(Incident, Entry), Failure> {
        let title = check_title(&self.title).map_err(|e| Failure::bad(format!("title: {e}")))?;
        let description = self.description.trim().replace("\r\n", "\n");
        if description.is_empty() || description.chars().count() > MAX_COMMENT {
            return Err(Failure::bad(format!("description: 1 to {MAX_COMMENT} characters")));
        }
        let class = match self.class.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            None => ClassificationType::Undetermined,
            Some(c) => ClassificationType::parse(c).map(|c| c.value()).ok_or_else(|| {
                Failure::bad(format!("class: unknown classification type {c:?} (phishing, infected-system, ...)"))
            })?,
        };
        if self.affected.len() > MAX_AFFECTED {
            return Err(Failure::bad(format!("affected: at most {MAX_AFFECTED} addresses, domains or URLs")));
        }
        let mut affected = Vec::new();
        for a in self.affected.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
            let ok = a.parse::<std::net::IpAddr>().is_ok()
                || a.parse::<ipnet::IpNet>().is_ok()
                || Asset::parse_kind("domain", a).is_ok()
                || ((a.starts_with("http://") || a.starts_with("https://"))
                    && a.len() <= 2048
                    && !a.contains(char::is_whitespace));
            if !ok {
                return Err(Failure::bad(format!(
                    "affected: {a:?} is not an IP address, network, domain or http(s) URL"
                )));
            }
            affected.push(a.to_owned());
        }
        let mut incident = Incident::new(&title, class, Severity::Medium, Tlp::Amber, now);
        if !p.viewer.role.is_center() {
            incident.orgs.push(p.viewer.org);
        }
        let mut text = description;
        if !affected.is_empty() {
            text = format!("{text}\n\nAffected:\n{}", affected.join("\n"));
        }
        // Correspondence: the reporter's words, which the reporter's organization sees.
        let entry = Entry { at: now, user: Some(p.user.id), kind: EntryKind::Correspondence, text };
        Ok((incident, entry))
    }
}

impl App {
    /// Opens an incident from a user's report: it concerns the reporter's organization (none
    /// for the center's own reports), is new, medium and TLP:AMBER until an analyst says more.
    pub(crate) async fn report_incident(
        self: &Arc<Self>,
        p: &Principal,
        from: SocketAddr,
        report: &Report,
    ) -> Result<Incident, Failure> {
        let (incident, entry) = report.check(p, Timestamp::now())?;
        let saved = self.blocking(move |s| s.add_incident(&incident, &entry)).await?;
        self.audit(Some(&p.user), from, "incident-report", Some(format!("incident {}", saved.id))).await;
        Ok(saved)
    }

    /// The incidents a viewer may see, newest first, as it may see them (without timelines).
    pub(crate) async fn visible_incidents(self: &Arc<Self>, p: &Principal) -> Result<Vec<Incident>, Failure> {
        let viewer = p.viewer;
        let org = (!viewer.role.is_center()).then_some(viewer.org);
        let all =
            self.blocking(move |s| s.incidents(&IncidentFilter { org, limit: 500, ..Default::default() })).await?;
        let center = viewer.role.is_center();
        let visible = all.into_iter().filter(|i| farol_policy::incident(&viewer, i));
        // A listing shows an organization no events: the detail lists those it may see.
        let listed = |mut i: Incident| {
            if !center {
                i.events.clear();
            }
            trimmed(p, i)
        };
        Ok(visible.map(listed).collect())
    }

    /// One incident as a viewer may see it; "not found" when it may not.
    pub(crate) async fn incident_view(self: &Arc<Self>, p: &Principal, id: i64) -> Result<IncidentView, Failure> {
        let viewer = p.viewer;
        let center_name = self.config.center.clone();
        let (incident, timeline) = self
            .blocking(move |s| {
                let Some(i) = s.incident(id)?.filter(|i| farol_policy::incident(&viewer, i)) else {
                    return Ok(None);
                };
                let visible = farol_policy::events(&viewer);
                let mut events = Vec::new();
                for e in &i.events {
                    if s.event(*e, &visible)?.is_some() {
                        events.push(*e);
                    }
                }
                let mut timeline = Vec::new();
                for e in s.timeline(id)? {
                    let author = e.user.map(|u| s.user(u)).transpose()?.flatten();
                    if !farol_policy::entry(&viewer, e.kind, author.as_ref().map(|a| (a.org, a.role))) {
                        continue;
                    }
                    let by = match author {
                        Some(a) if viewer.role.is_center() || a.org == viewer.org => a.email,
                        _ => center_name.clone(),
                    };
                    timeline.push((e, by));
                }
                Ok(Some((Incident { events, ..i }, timeline)))
            })
            .await?
            .ok_or_else(Failure::not_found)?;
        Ok(IncidentView { incident: trimmed(p, incident), timeline })
    }

    /// Adds a viewer's comment to an incident it may see.
    pub(crate) async fn comment(
        self: &Arc<Self>,
        p: &Principal,
        from: SocketAddr,
        id: i64,
        text: &str,
    ) -> Result<Entry, Failure> {
        let text = text.trim().replace("\r\n", "\n");
        if text.is_empty() || text.chars().count() > MAX_COMMENT {
            return Err(Failure::bad(format!("a comment is 1 to {MAX_COMMENT} characters")));
        }
        self.incident_view(p, id).await?;
        let entry = Entry { at: Timestamp::now(), user: Some(p.user.id), kind: EntryKind::Comment, text };
        let saved = entry.clone();
        self.blocking(move |s| s.add_entry(id, &saved)).await?;
        self.audit(Some(&p.user), from, "incident-comment", Some(format!("incident {id}"))).await;
        Ok(entry)
    }
}

/// What an organization's users see of an incident's organizations: their own only.
fn trimmed(p: &Principal, mut i: Incident) -> Incident {
    if !p.viewer.role.is_center() {
        i.orgs.retain(|o| *o == p.viewer.org);
    }
    i
}

/// How many of the newest incidents the dashboard's figures cover.
const FIGURES_OVER: usize = 1000;

impl App {
    /// The center's incident figures over the newest incidents: open ones per class, how many
    /// are overdue, and the median times to first response and to resolution.
    pub(crate) async fn incident_figures(self: &Arc<Self>) -> Result<Value, Failure> {
        let deadlines = self.config.deadlines;
        let all = self.blocking(|s| s.incidents(&IncidentFilter { limit: FIGURES_OVER, ..Default::default() })).await?;
        Ok(figures(&all, &deadlines, Timestamp::now()))
    }
}

fn figures(all: &[Incident], deadlines: &farol_model::incident::Deadlines, now: Timestamp) -> Value {
    let mut open: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for i in all.iter().filter(|i| i.status.is_open()) {
        *open.entry(i.class.as_str()).or_default() += 1;
    }
    let secs = |from: Timestamp, to: Timestamp| (to.micros() - from.micros()) / 1_000_000;
    let response: Vec<i64> = all.iter().filter_map(|i| i.first_response.map(|t| secs(i.created, t))).collect();
    let resolution: Vec<i64> = all
        .iter()
        .filter(|i| i.status == Status::Resolved)
        .filter_map(|i| i.closed.map(|t| secs(i.created, t)))
        .collect();
    json!({
        "incidents": all.len(),
        "open": open.values().sum::<usize>(),
        "open_by_class": open.into_iter().collect::<Vec<_>>(),
        "overdue": all.iter().filter(|i| i.overdue(deadlines, now).is_some()).count(),
        "first_response": median(response).map(duration),
        "resolution": median(resolution).map(duration),
    })
}

fn median(mut v: Vec<i64>) -> Option<i64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// A duration as people read it: `45 min`, `3 h 10 min`, `2 d 4 h`.
fn duration(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => "under a minute".to_owned(),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_center_s_figures_count_open_incidents_and_median_times() {
        let at = |s: &str| Timestamp::parse(s).unwrap();
        let incident = |class, status, created: &str, responded: Option<&str>, closed: Option<&str>| Incident {
            status,
            first_response: responded.map(at),
            closed: closed.map(at),
            ..Incident::new("t", class, Severity::Medium, Tlp::Amber, at(created))
        };
        use ClassificationType::{Phishing, Scanner};
        let all = [
            incident(Phishing, Status::New, "2026-11-29T00:00:00Z", None, None),
            incident(Phishing, Status::Open, "2026-11-29T00:00:00Z", Some("2026-11-29T00:30:00Z"), None),
            incident(Scanner, Status::Stalled, "2026-11-29T00:00:00Z", Some("2026-11-29T02:10:00Z"), None),
            incident(
                Scanner,
                Status::Resolved,
                "2026-11-27T00:00:00Z",
                Some("2026-11-27T00:00:20Z"),
                Some("2026-11-28T04:00:00Z"),
            ),
            incident(
                Scanner,
                Status::Rejected,
                "2026-11-27T00:00:00Z",
                Some("2026-11-27T00:01:00Z"),
                Some("2026-11-27T00:01:00Z"),
            ),
        ];
        let f = figures(&all, &farol_model::incident::Deadlines::default(), at("2026-11-30T12:00:00Z"));
        assert_eq!(f["open"], 3);
        assert_eq!(f["open_by_class"], json!([["phishing", 2], ["scanner", 1]]));
        assert_eq!(f["overdue"], 1, "a day and a half on, only the one never answered (medium: 1 day, then 7)");
        assert_eq!(f["first_response"], "30 min", "the median of 20 s, 1 min, 30 min and 2 h 10 min");
        assert_eq!(f["resolution"], "1 d 4 h", "rejected incidents are not resolutions");
    }
}
