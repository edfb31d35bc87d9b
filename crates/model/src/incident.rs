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
    /// Its playbook's checklist.
    pub tasks: Vec<Task>,
}

/// One task of a playbook's checklist, as an incident keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub text: String,
    /// When it was done, and by whom (`None`: the command line).
    pub done: Option<(Timestamp, Option<i64>)>,
}

impl Incident {
    /// Marks task `n` (numbered from 1) done at a time by someone, or not done (`None`); says
    /// what changed, for the timeline.
    pub fn tick(&mut self, n: usize, done: Option<(Timestamp, Option<i64>)>) -> Result<String, String> {
        let (id, count) = (self.id, self.tasks.len());
        let task = n
            .checked_sub(1)
            .and_then(|i| self.tasks.get_mut(i))
            .ok_or_else(|| format!("incident {id} has {count} task(s), numbered from 1"))?;
        task.done = done;
        Ok(format!("task {n} {}: {}", if done.is_some() { "done" } else { "undone" }, task.text))
    }

    /// Adds the tasks of a playbook that the incident does not have yet (by their text).
    pub fn add_tasks(&mut self, playbook: &[String]) {
        for text in playbook {
            if !self.tasks.iter().any(|t| t.text == *text) {
                self.tasks.push(Task { text: text.clone(), done: None });
            }
        }
    }
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

/// How the center handles incidents (`[incidents]` and `[playbooks]` in `farol.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handling {
    pub deadlines: Deadlines,
    /// Task checklists by classification type (`phishing`).
    pub playbooks: std::collections::BTreeMap<String, Vec<String>>,
    pub files: FileRules,
}

impl Handling {
    /// The tasks of a class's playbook (none when it has no playbook).
    pub fn playbook(&self, class: ClassificationType) -> &[String] {
        self.playbooks.get(class.as_str()).map_or(&[], Vec::as_slice)
    }
}

/// What files may come with a report, a comment or an e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRules {
    /// The largest file, in bytes.
    pub max_bytes: usize,
    /// The most files with one entry.
    pub max_files: usize,
    /// The media types accepted (`application/pdf`).
    pub types: Vec<String>,
}

impl Default for FileRules {
    fn default() -> FileRules {
        let types = [
            "text/plain",
            "text/csv",
            "application/json",
            "application/pdf",
            "image/png",
            "image/jpeg",
            "image/gif",
            "message/rfc822",
            "application/zip",
            "application/gzip",
            "application/vnd.tcpdump.pcap",
        ];
        FileRules { max_bytes: 10 << 20, max_files: 10, types: types.map(str::to_owned).to_vec() }
    }
}

/// The first bytes files of a binary type start with: a file that claims the type must.
const MAGIC: &[(&str, &[&[u8]])] = &[
    ("application/pdf", &[b"%PDF-"]),
    ("image/png", &[b"\x89PNG\r\n\x1a\n"]),
    ("image/jpeg", &[b"\xff\xd8\xff"]),
    ("image/gif", &[b"GIF87a", b"GIF89a"]),
    ("application/zip", &[b"PK\x03\x04", b"PK\x05\x06"]),
    ("application/gzip", &[b"\x1f\x8b"]),
    ("application/vnd.tcpdump.pcap", &[b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a"]),
];

/// Media types by file name extension, for files that come without one.
const BY_EXTENSION: &[(&str, &str)] = &[
    ("txt", "text/plain"),
    ("log", "text/plain"),
    ("csv", "text/csv"),
    ("json", "application/json"),
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("eml", "message/rfc822"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
    ("pcap", "application/vnd.tcpdump.pcap"),
];

impl FileRules {
    /// A file as given (name, declared media type if any, data) checked against the rules: its
    /// name reduced to a plain file name, its type given or known by the extension, accepted,
    /// and matching the data where the type has a signature.
    pub fn check(&self, name: &str, declared: Option<&str>, data: Vec<u8>) -> Result<NewFile, String> {
        let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
        let name: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
        let name = if name.trim().is_empty() { "file".to_owned() } else { name.trim().to_owned() };
        if data.len() > self.max_bytes {
            return Err(format!("{name}: {} bytes, more than the {} allowed", data.len(), self.max_bytes));
        }
        let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        let declared = declared
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty() && t != "application/octet-stream");
        let guessed =
            || BY_EXTENSION.iter().find(|(e, _)| Some(*e) == extension.as_deref()).map(|(_, t)| (*t).to_owned());
        let Some(content_type) = declared.or_else(guessed) else {
            return Err(format!("{name}: unknown file type; accepted: {}", self.types.join(", ")));
        };
        if !self.types.contains(&content_type) {
            return Err(format!(
                "{name}: files of type {content_type} are not accepted; accepted: {}",
                self.types.join(", ")
            ));
        }
        if let Some((_, starts)) = MAGIC.iter().find(|(t, _)| *t == content_type)
            && !starts.iter().any(|s| data.starts_with(s))
        {
            return Err(format!("{name}: the content is not {content_type}"));
        }
        Ok(NewFile { name, content_type, data })
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
            tasks: Vec::new(),
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

/// A change to an incident; `None` and empty lists leave a field as it is. Organizations and
/// the assignee come with the names the timeline shows.
#[derive(Debug, Default, Clone)]
pub struct Change {
    pub status: Option<Status>,
    pub severity: Option<Severity>,
    pub tlp: Option<Tlp>,
    pub class: Option<ClassificationType>,
    pub title: Option<String>,
    /// `Some(None)` unassigns.
    pub assignee: Option<Option<(i64, String)>>,
    pub add_orgs: Vec<(OrgId, String)>,
    pub remove_orgs: Vec<(OrgId, String)>,
}

impl Incident {
    /// Makes a change, saying what changed (for the timeline) or why it cannot be made.
    pub fn apply(&mut self, c: Change, now: Timestamp) -> Result<Vec<String>, String> {
        if let Some(into) = self.merged_into {
            return Err(format!("incident {} was merged into incident {into}: change that one", self.id));
        }
        let mut changes = Vec::new();
        if let Some(to) = c.status.filter(|s| *s != self.status) {
            if !self.status.may_become(to) {
                return Err(format!(
                    "incident {} is {}: it cannot become {to} (a closed incident can only be opened again)",
                    self.id, self.status
                ));
            }
            changes.push(format!("status: {} → {to}", self.status));
            self.set_status(to, now);
        }
        if let Some(s) = c.severity.filter(|s| *s != self.severity) {
            changes.push(format!("severity: {} → {s}", self.severity));
            self.severity = s;
        }
        if let Some(t) = c.tlp.filter(|t| *t != self.tlp) {
            changes.push(format!("TLP: {} → {}", self.tlp.as_str(), t.as_str()));
            self.tlp = t;
        }
        if let Some(k) = c.class.filter(|k| *k != self.class) {
            changes.push(format!("class: {} → {}", self.class.as_str(), k.as_str()));
            self.class = k;
        }
        if let Some(t) = c.title {
            let t = check_title(&t)?;
            if t != self.title {
                changes.push(format!("title: {t}"));
                self.title = t;
            }
        }
        match c.assignee {
            Some(Some((id, name))) if self.assignee != Some(id) => {
                self.assignee = Some(id);
                changes.push(format!("assigned to {name}"));
            }
            Some(None) if self.assignee.is_some() => {
                self.assignee = None;
                changes.push("unassigned".to_owned());
            }
            _ => {}
        }
        for (o, name) in c.add_orgs {
            if !self.orgs.contains(&o) {
                self.orgs.push(o);
                changes.push(format!("concerns {name}"));
            }
        }
        for (o, name) in c.remove_orgs {
            if self.orgs.contains(&o) {
                self.orgs.retain(|x| *x != o);
                changes.push(format!("no longer concerns {name}"));
            }
        }
        Ok(changes)
    }

    /// Merges this incident into `target`, which takes its organizations and events and the
    /// higher of the two severities and TLPs; this one is rejected if it was open.
    pub fn merge_into(&mut self, target: &mut Incident, now: Timestamp) -> Result<(), String> {
        if self.id == target.id {
            return Err("an incident cannot be merged into itself".to_owned());
        }
        if self.merged_into.is_some() || target.merged_into.is_some() || !target.status.is_open() {
            return Err(format!(
                "incident {} must not be merged already, and incident {} must be open and not merged",
                self.id, target.id
            ));
        }
        for o in &self.orgs {
            if !target.orgs.contains(o) {
                target.orgs.push(*o);
            }
        }
        for e in &self.events {
            if !target.events.contains(e) {
                target.events.push(*e);
            }
        }
        target.tlp = target.tlp.max(self.tlp);
        target.severity = target.severity.max(self.severity);
        self.merged_into = Some(target.id);
        if self.status.is_open() {
            self.set_status(Status::Rejected, now);
        }
        Ok(())
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
    /// Files that came with it (as read from the store; written with [`NewFile`]s).
    pub files: Vec<FileInfo>,
}

impl Entry {
    pub fn new(kind: EntryKind, user: Option<i64>, text: impl Into<String>, at: Timestamp) -> Entry {
        Entry { at, user, kind, text: text.into(), files: Vec::new() }
    }
}

/// A file attached to a timeline entry, without its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub id: i64,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the data.
    pub sha256: String,
}

/// A file to attach to a new timeline entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

named_enum!(
    /// What a timeline entry records.
    EntryKind, "entry kind" {
        Created "created" "the incident was opened",
        Comment "comment" "a comment",
        Change "change" "a change of status, severity, TLP, assignee or organizations",
        Link "link" "events linked",
        Merge "merge" "incidents merged",
        Task "task" "a playbook task done or undone",
        Correspondence "correspondence" "a report or reply from a user of the portal or the API",
        Mail "mail" "an e-mail received about it",
        Notification "notification" "an e-mail the center sent about it",
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

    #[test]
    fn changes_say_what_changed_and_refuse_what_cannot_be() {
        let now = Timestamp::parse("2026-11-29T10:00:00Z").unwrap();
        let mut i = Incident::new("t", ClassificationType::Undetermined, Severity::Low, Tlp::Amber, now);
        i.id = 7;
        let change = Change {
            status: Some(Status::Open),
            severity: Some(Severity::Low),
            class: Some(ClassificationType::Phishing),
            assignee: Some(Some((3, "ana@cert.example".into()))),
            add_orgs: vec![(OrgId(1), "Hospital X".into())],
            ..Change::default()
        };
        let said = i.apply(change, now).unwrap();
        assert_eq!(
            said,
            [
                "status: new → open",
                "class: undetermined → phishing",
                "assigned to ana@cert.example",
                "concerns Hospital X"
            ]
        );
        assert_eq!((i.first_response, i.assignee, &i.orgs[..]), (Some(now), Some(3), &[OrgId(1)][..]));
        assert!(i.apply(Change { status: Some(Status::New), ..Change::default() }, now).is_err());
        assert_eq!(
            i.apply(Change { add_orgs: vec![(OrgId(1), "Hospital X".into())], ..Change::default() }, now),
            Ok(vec![])
        );
        assert!(i.apply(Change { title: Some("two\nlines".into()), ..Change::default() }, now).is_err());

        let mut other = Incident::new("o", ClassificationType::Phishing, Severity::High, Tlp::Red, now);
        other.id = 8;
        other.orgs = vec![OrgId(2)];
        other.events = vec![40];
        other.merge_into(&mut i, now).unwrap();
        assert_eq!(
            (i.severity, i.tlp, &i.orgs[..], &i.events[..]),
            (Severity::High, Tlp::Red, &[OrgId(1), OrgId(2)][..], &[40][..])
        );
        assert_eq!((other.merged_into, other.status), (Some(7), Status::Rejected));
        assert!(
            other.apply(Change { status: Some(Status::Open), ..Change::default() }, now).is_err(),
            "merged: change the other"
        );
        assert!(other.merge_into(&mut i, now).is_err(), "merged once only");
        let mut copy = i.clone();
        assert!(i.merge_into(&mut copy, now).is_err(), "not into itself");
    }

    #[test]
    fn files_are_checked_by_size_type_and_signature() {
        let rules = FileRules { max_bytes: 100, ..FileRules::default() };
        let pdf = rules.check("../../report.pdf", None, b"%PDF-1.7 ...".to_vec()).unwrap();
        assert_eq!((pdf.name.as_str(), pdf.content_type.as_str()), ("report.pdf", "application/pdf"));
        let text = rules.check("C:\\logs\\fw.log", Some("text/plain; charset=utf-8"), b"x".to_vec()).unwrap();
        assert_eq!((text.name.as_str(), text.content_type.as_str()), ("fw.log", "text/plain"));
        let refused = [
            rules.check("page.html", Some("text/html"), b"<script>".to_vec()),
            rules.check("fake.pdf", None, b"<html>".to_vec()),
            rules.check("x.png", Some("image/png"), b"GIF89a".to_vec()),
            rules.check("big.txt", None, vec![b'a'; 101]),
            rules.check("tool.exe", None, b"MZ".to_vec()),
            rules.check("blob", Some("application/octet-stream"), b"?".to_vec()),
        ];
        for r in refused {
            assert!(r.is_err(), "{r:?}");
        }
        assert_eq!(rules.check("", Some("text/csv"), b"a,b".to_vec()).unwrap().name, "file");
    }
}
