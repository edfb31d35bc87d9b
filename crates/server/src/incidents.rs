//! Incidents as the API and the portal show them: what a viewer may see of each, and comments.

use std::net::SocketAddr;
use std::sync::Arc;

use farol_model::Timestamp;
use farol_model::incident::{Entry, EntryKind, Incident};
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
        v["timeline"] = self
            .timeline
            .iter()
            .map(|(e, by)| json!({ "at": e.at.to_rfc3339(), "kind": e.kind.as_str(), "by": by, "text": e.text }))
            .collect();
        v
    }
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

impl App {
    /// The incidents a viewer may see, newest first, as it may see them (without timelines).
    pub(crate) async fn visible_incidents(self: &Arc<Self>, p: &Principal) -> Result<Vec<Incident>, Failure> {
        let viewer = p.viewer;
        let org = (!viewer.role.is_center()).then_some(viewer.org);
        let all =
            self.blocking(move |s| s.incidents(&IncidentFilter { org, limit: 500, ..Default::default() })).await?;
        let center = viewer.role.is_center();
        let visible = all.into_iter().filter(|i| farol_policy::incident(&viewer, i));
        Ok(visible
            .map(|i| Incident { events: if center { i.events.clone() } else { Vec::new() }, ..trimmed(p, i) })
            .collect())
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

/// What an organization's users see of an incident's organizations: their own only; and of its
/// events in a listing, none (the detail lists those they may see).
fn trimmed(p: &Principal, mut i: Incident) -> Incident {
    if !p.viewer.role.is_center() {
        i.orgs.retain(|o| *o == p.viewer.org);
    }
    i
}
