//! Incidents as the API and the portal show them: what a viewer may see of each, and comments.

use std::net::SocketAddr;
use std::sync::Arc;

use farol_model::incident::{Change, Entry, EntryKind, Incident, NewFile, Severity, Status, check_title};
use farol_model::org::{Asset, OrgId};
use farol_model::{ClassificationType, Timestamp, Tlp};
use farol_policy::{Action, may};
use farol_store::{IncidentFilter, StoreError};
use serde::Deserialize;
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
    /// The deadlines, when the viewer is the center's.
    pub(crate) center: Option<farol_model::incident::Deadlines>,
}

impl IncidentView {
    pub(crate) fn json(&self) -> Value {
        let mut v = incident_json(&self.incident, self.center.as_ref());
        v["timeline"] = self.timeline.iter().map(|(e, by)| entry_json(e, by)).collect();
        v
    }
}

/// A timeline entry, with who wrote it as the viewer may know it, and its files.
pub(crate) fn entry_json(e: &Entry, by: &str) -> Value {
    let files: Vec<Value> = e
        .files
        .iter()
        .map(|f| json!({ "id": f.id, "name": f.name, "type": f.content_type, "size": f.size, "sha256": f.sha256 }))
        .collect();
    json!({ "at": e.at.to_rfc3339(), "kind": e.kind.as_str(), "by": by, "text": e.text, "files": files })
}

/// An incident's fields. The center also gets its assignee, merge, overdue deadline and tasks
/// (`deadlines` given); an organization's users do not.
pub(crate) fn incident_json(i: &Incident, center: Option<&farol_model::incident::Deadlines>) -> Value {
    let time = |t: Option<Timestamp>| t.map(|t| t.to_rfc3339());
    let mut v = json!({
        "id": i.id, "title": i.title, "class": i.class.as_str(), "severity": i.severity.as_str(),
        "tlp": i.tlp.as_str(), "status": i.status.as_str(), "created": i.created.to_rfc3339(),
        "first_response": time(i.first_response), "closed": time(i.closed),
        "orgs": i.orgs.iter().map(|o| o.0).collect::<Vec<_>>(), "events": i.events,
    });
    if let Some(deadlines) = center {
        use farol_model::incident::Overdue;
        v["assignee"] = json!(i.assignee);
        v["merged_into"] = json!(i.merged_into);
        v["overdue"] = json!(i.overdue(deadlines, Timestamp::now()).map(|o| match o {
            Overdue::FirstResponse => "first_response",
            Overdue::Resolution => "resolution",
        }));
        v["tasks"] = i
            .tasks
            .iter()
            .map(
                |t| json!({ "text": t.text, "done": t.done.map(|d| d.0.to_rfc3339()), "by": t.done.and_then(|d| d.1) }),
            )
            .collect();
    }
    v
}

/// A file as given: its name, the media type it was declared with, its data.
pub(crate) type Given = (String, Option<String>, Vec<u8>);

/// A file as the API takes it: its data in base64.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Upload {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) content_type: Option<String>,
    pub(crate) data: String,
}

/// Files as given (name, declared type, data), checked against the center's rules.
pub(crate) fn check_files(
    rules: &farol_model::incident::FileRules,
    given: Vec<Given>,
) -> Result<Vec<NewFile>, Failure> {
    if given.len() > rules.max_files {
        return Err(Failure::bad(format!("files: at most {} with one entry", rules.max_files)));
    }
    given
        .into_iter()
        .map(|(name, declared, data)| {
            rules.check(&name, declared.as_deref(), data).map_err(|e| Failure::bad(format!("files: {e}")))
        })
        .collect()
}

/// Decodes the API's base64 files.
pub(crate) fn uploads(list: Vec<Upload>) -> Result<Vec<Given>, Failure> {
    use base64::Engine;
    list.into_iter()
        .map(|u| {
            let data = base64::engine::general_purpose::STANDARD
                .decode(u.data.trim())
                .map_err(|e| Failure::bad(format!("files: {}: data is not base64: {e}", u.name)))?;
            Ok((u.name, u.content_type, data))
        })
        .collect()
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
    #[serde(default)]
    pub(crate) files: Vec<Upload>,
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
            Some(c) => class_named(c)?,
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
        let entry = Entry::new(EntryKind::Correspondence, Some(p.user.id), text, now);
        Ok((incident, entry))
    }
}

impl App {
    /// Opens an incident from a user's report with the files that came with it (the API's
    /// base64 ones are added here): it concerns the reporter's organization (none for the
    /// center's own reports), is new, medium and TLP:AMBER until an analyst says more, and has
    /// its class's playbook.
    pub(crate) async fn report_incident(
        self: &Arc<Self>,
        p: &Principal,
        from: SocketAddr,
        mut report: Report,
        mut files: Vec<Given>,
    ) -> Result<Incident, Failure> {
        let (mut incident, entry) = report.check(p, Timestamp::now())?;
        files.extend(uploads(std::mem::take(&mut report.files))?);
        let files = check_files(&self.config.incidents.files, files)?;
        incident.add_tasks(self.config.incidents.playbook(incident.class));
        let saved = self.blocking(move |s| s.add_incident(&incident, &entry, &files)).await?;
        self.audit(Some(&p.user), from, "incident-report", Some(format!("incident {}", saved.id))).await;
        Ok(saved)
    }

    /// The incidents a viewer may see, newest first, as it may see them (without timelines);
    /// open ones only with `open`, and only those past a deadline with `overdue`.
    pub(crate) async fn visible_incidents(
        self: &Arc<Self>,
        p: &Principal,
        open: bool,
        overdue: bool,
    ) -> Result<Vec<Incident>, Failure> {
        let viewer = p.viewer;
        let org = (!viewer.role.is_center()).then_some(viewer.org);
        let filter = IncidentFilter { org, open: open || overdue, limit: 500, ..Default::default() };
        let mut all = self.blocking(move |s| s.incidents(&filter)).await?;
        if overdue {
            let (deadlines, now) = (self.config.incidents.deadlines, Timestamp::now());
            all.retain(|i| i.overdue(&deadlines, now).is_some());
        }
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
        let center = self.deadlines_for(p).copied();
        Ok(IncidentView { incident: trimmed(p, incident), timeline, center })
    }

    /// The deadlines, for the center's users: what [`incident_json`] shows them beyond what
    /// organizations see.
    pub(crate) fn deadlines_for(&self, p: &Principal) -> Option<&farol_model::incident::Deadlines> {
        p.viewer.role.is_center().then_some(&self.config.incidents.deadlines)
    }

    /// Adds a viewer's comment, with files, to an incident it may see.
    pub(crate) async fn comment(
        self: &Arc<Self>,
        p: &Principal,
        from: SocketAddr,
        id: i64,
        text: &str,
        files: Vec<Given>,
    ) -> Result<Entry, Failure> {
        let text = text.trim().replace("\r\n", "\n");
        if text.is_empty() || text.chars().count() > MAX_COMMENT {
            return Err(Failure::bad(format!("a comment is 1 to {MAX_COMMENT} characters")));
        }
        let files = check_files(&self.config.incidents.files, files)?;
        self.incident_view(p, id).await?;
        let entry = Entry::new(EntryKind::Comment, Some(p.user.id), text, Timestamp::now());
        let saved = entry.clone();
        self.blocking(move |s| s.add_entry(id, &saved, &files)).await?;
        self.audit(Some(&p.user), from, "incident-comment", Some(format!("incident {id}"))).await;
        Ok(entry)
    }

    /// A file of an incident's timeline, when the viewer may see the incident and the entry it
    /// came with; "not found" otherwise.
    pub(crate) async fn incident_file(self: &Arc<Self>, p: &Principal, id: i64, file: i64) -> Result<NewFile, Failure> {
        // The files the viewer may have are those of the timeline it sees.
        let view = self.incident_view(p, id).await?;
        if !view.timeline.iter().any(|(e, _)| e.files.iter().any(|f| f.id == file)) {
            return Err(Failure::not_found());
        }
        let f = self.blocking(move |s| s.file(file)).await?.ok_or_else(Failure::not_found)?;
        Ok(f.file)
    }

    /// Runs an analyst's action on an incident in the store (`act` changes it and stores it),
    /// then audits it: the center only, and the incident must exist.
    async fn handle<T: Send + 'static>(
        self: &Arc<Self>,
        p: &Principal,
        from: SocketAddr,
        id: i64,
        action: &str,
        act: impl FnOnce(&dyn farol_store::Store, Incident, Handled<'_>) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        if !may(&p.viewer, Action::ManageIncidents) {
            return Err(Failure::forbidden());
        }
        let app = Arc::clone(self);
        let user = p.user.id;
        let done = tokio::task::spawn_blocking(move || {
            let store = app.store.as_ref();
            let i = store.incident(id)?.ok_or_else(Failure::not_found)?;
            act(store, i, Handled { rules: &app.config.incidents, user, now: Timestamp::now() })
        })
        .await
        .map_err(|e| Failure::internal(e.to_string()))??;
        self.audit(Some(&p.user), from, action, Some(format!("incident {id}"))).await;
        Ok(done)
    }

    /// Changes an incident, noting the change in its timeline; says what changed.
    pub(crate) async fn change_incident(
        self: &Arc<Self>,
        p: &Principal,
        from: SocketAddr,
        id: i64,
        req: ChangeRequest,
    ) -> Result<Vec<String>, Failure> {
        self.handle(p, from, id, "incident-change", move |s, mut i, h| {
            let orgs = s.orgs()?;
            let named = |o: &i64| -> Result<(OrgId, String), Failure> {
                let org = orgs.iter().find(|x| x.id == OrgId(*o));
                org.map(|x| (x.id, x.name.clone())).ok_or_else(|| Failure::bad(format!("no organization {o}")))
            };
            let assignee = match req.assignee.map(|e| e.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty())) {
                None => None,
                Some(None) => Some(None),
                Some(Some(email)) => match s.user_by_email(&email)? {
                    Some(u) if u.role.is_center() && !u.disabled => Some(Some((u.id, u.email))),
                    _ => return Err(Failure::bad(format!("assignee: {email} is not an active analyst or admin"))),
                },
            };
            let change = Change {
                status: parse_field("status", req.status.as_deref())?,
                severity: parse_field("severity", req.severity.as_deref())?,
                tlp: parse_field("tlp", req.tlp.as_deref())?,
                class: req.class.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(class_named).transpose()?,
                title: req.title,
                assignee,
                add_orgs: req.add_orgs.iter().map(named).collect::<Result<_, _>>()?,
                remove_orgs: req.remove_orgs.iter().map(named).collect::<Result<_, _>>()?,
            };
            let class = change.class;
            let changes = i.apply(change, h.now).map_err(Failure::bad)?;
            if changes.is_empty() {
                return Err(Failure::bad(format!("nothing to change: incident {id} is already so")));
            }
            if let Some(class) = class {
                i.add_tasks(h.rules.playbook(class));
            }
            let mut text = changes.join("; ");
            if let Some(note) = req.note.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                text = format!("{text}\n{note}");
            }
            s.update_incident(&i, &h.entry(EntryKind::Change, text))?;
            Ok(changes)
        })
        .await
    }

    /// Links events to an incident: those named, and those a search finds (a saved one by
    /// name, or a query in the language of `GET /api/v1/events`), at most [`MAX_PAGE`] of
    /// them; says how many were linked and whether the search found more.
    pub(crate) async fn link(
        self: &Arc<Self>,
        p: &Principal,
        from: SocketAddr,
        id: i64,
        req: LinkRequest,
    ) -> Result<(usize, bool), Failure> {
        let principal = p.clone();
        self.handle(p, from, id, "incident-link", move |s, mut i, h| {
            let mut events = req.events;
            let mut more = false;
            let query = match (req.search, req.query) {
                (Some(name), None) => Some(
                    s.searches()?
                        .into_iter()
                        .find(|x| x.name == name)
                        .ok_or_else(|| Failure::bad(format!("search: no saved search {name:?}")))?
                        .query,
                ),
                (None, query) => query,
                (Some(_), Some(_)) => return Err(Failure::bad("give a saved search or a query, not both")),
            };
            if let Some(query) = query {
                let mut q = search_query(&query, &principal)?;
                q.limit = MAX_PAGE + 1;
                let found = s.events(&q)?;
                more = found.len() > MAX_PAGE;
                events.extend(found.iter().take(MAX_PAGE).map(|e| e.id));
            }
            if events.is_empty() {
                return Err(Failure::bad(
                    "no events to link: give event ids, a saved search or a query that finds some",
                ));
            }
            let orgs = i.orgs.len();
            let linked = farol_store::link_events(s, &mut i, &events).map_err(|e| match e {
                StoreError::NotFound(m) => Failure::bad(m),
                e => e.into(),
            })?;
            let text = format!("{linked} event(s) linked, {} more organization(s)", i.orgs.len() - orgs);
            s.update_incident(&i, &h.entry(EntryKind::Link, text))?;
            Ok((linked, more))
        })
        .await
    }

    /// Merges an incident into another.
    pub(crate) async fn merge(
        self: &Arc<Self>,
        p: &Principal,
        from: SocketAddr,
        id: i64,
        into: i64,
    ) -> Result<(), Failure> {
        self.handle(p, from, id, "incident-merge", move |s, mut source, h| {
            let mut target = s.incident(into)?.ok_or_else(|| Failure::bad(format!("no incident {into}")))?;
            source.merge_into(&mut target, h.now).map_err(Failure::bad)?;
            let merged_in = format!("incident {id} merged in: {}", source.title);
            s.update_incident(&target, &h.entry(EntryKind::Merge, merged_in))?;
            s.update_incident(&source, &h.entry(EntryKind::Merge, format!("merged into incident {into}")))?;
            Ok(())
        })
        .await
    }

    /// Ticks a task of an incident's playbook (numbered from 1), or clears it.
    pub(crate) async fn task(
        self: &Arc<Self>,
        p: &Principal,
        from: SocketAddr,
        id: i64,
        n: usize,
        done: bool,
    ) -> Result<(), Failure> {
        self.handle(p, from, id, "incident-task", move |s, mut i, h| {
            let text = i.tick(n, done.then_some((h.now, Some(h.user)))).map_err(Failure::bad)?;
            s.update_incident(&i, &h.entry(EntryKind::Task, text))?;
            Ok(())
        })
        .await
    }

    /// Writes to the contacts of the organizations an incident concerns (each message queued
    /// in the outbox and noted in the timeline); who was written to.
    pub(crate) async fn write_to_orgs(
        self: &Arc<Self>,
        p: &Principal,
        from: SocketAddr,
        id: i64,
        text: String,
    ) -> Result<Vec<farol_notify::Written>, Failure> {
        if text.trim().is_empty() || text.chars().count() > MAX_COMMENT {
            return Err(Failure::bad(format!("a message is 1 to {MAX_COMMENT} characters")));
        }
        let notify = Arc::clone(&self.config.notify);
        self.handle(p, from, id, "incident-message", move |s, i, h| {
            farol_notify::write_about(s, &notify.writer, &notify.settings, &i, &text, Some(h.user), h.now).map_err(
                |e| match e {
                    farol_notify::QueueError::Nobody(why) => Failure::bad(why),
                    e => Failure::internal(e.to_string()),
                },
            )
        })
        .await
    }
}

impl App {
    /// Saves an event search by name (the center only), checked by parsing it.
    pub(crate) async fn save_search(
        self: &Arc<Self>,
        p: &Principal,
        from: SocketAddr,
        new: crate::api::NewSearch,
    ) -> Result<(), Failure> {
        if !may(&p.viewer, Action::ManageIncidents) {
            return Err(Failure::forbidden());
        }
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 || name.contains(|c: char| c.is_control() || c == '/') {
            return Err(Failure::bad("name: 1 to 100 characters, without slashes"));
        }
        search_query(&new.query, p)?;
        let search = farol_store::Search {
            name: name.clone(),
            query: new.query.trim().trim_start_matches('?').to_owned(),
            created: Timestamp::now(),
            created_by: Some(p.user.id),
        };
        self.blocking(move |s| s.save_search(&search)).await?;
        self.audit(Some(&p.user), from, "search-save", Some(format!("search {name}"))).await;
        Ok(())
    }
}

/// A file as it is downloaded: always as an attachment, never rendered in the browser.
pub(crate) fn download(f: NewFile) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;
    let name: String =
        f.name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let content_type =
        HeaderValue::from_str(&f.content_type).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'")),
        ],
        f.data,
    )
        .into_response()
}

/// What an analyst's action on an incident works with.
pub(crate) struct Handled<'a> {
    rules: &'a farol_model::incident::Handling,
    user: i64,
    now: Timestamp,
}

impl Handled<'_> {
    fn entry(&self, kind: EntryKind, text: String) -> Entry {
        Entry::new(kind, Some(self.user), text, self.now)
    }
}

/// An analyst's change to an incident; absent fields stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeRequest {
    pub(crate) status: Option<String>,
    pub(crate) severity: Option<String>,
    pub(crate) tlp: Option<String>,
    pub(crate) class: Option<String>,
    pub(crate) title: Option<String>,
    /// An analyst's e-mail address; null or "" unassigns.
    #[serde(default, deserialize_with = "present")]
    pub(crate) assignee: Option<Option<String>>,
    #[serde(default)]
    pub(crate) add_orgs: Vec<i64>,
    #[serde(default)]
    pub(crate) remove_orgs: Vec<i64>,
    /// Why: kept with the change in the timeline.
    pub(crate) note: Option<String>,
}

/// A field that may be null: present (`Some`), null included, as opposed to absent (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Events to link to an incident.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkRequest {
    #[serde(default)]
    pub(crate) events: Vec<i64>,
    /// A saved search's name.
    pub(crate) search: Option<String>,
    /// A search in the language of `GET /api/v1/events`: `asn=64500&type=phishing`.
    pub(crate) query: Option<String>,
}

/// The event filter a search's query string gives, for this principal.
pub(crate) fn search_query(query: &str, p: &Principal) -> Result<farol_store::EventQuery, Failure> {
    let params: std::collections::BTreeMap<String, String> = serde_urlencoded::from_str(query.trim_start_matches('?'))
        .map_err(|e| Failure::bad(format!("query: expected key=value pairs joined by & ({e})")))?;
    crate::api::event_query(&params, p)
}

fn parse_field<T: std::str::FromStr>(key: &str, value: Option<&str>) -> Result<Option<T>, Failure>
where
    T::Err: std::fmt::Display,
{
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|e| Failure::bad(format!("{key}: {e}"))),
    }
}

fn class_named(class: &str) -> Result<ClassificationType, Failure> {
    ClassificationType::parse(class).map(|c| c.value()).ok_or_else(|| {
        Failure::bad(format!("class: unknown classification type {class:?} (phishing, infected-system, ...)"))
    })
}

use crate::api::MAX_PAGE;

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
        let deadlines = self.config.incidents.deadlines;
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
