//! E-mail intake: an MTA delivers the center's incident address into a Maildir; each new
//! message becomes an incident, or joins one when it carries that incident's ticket (in the
//! subject as `[CERT-PT #INC-42]`, or in In-Reply-To and References as the Message-ID of a
//! message the center sent about it).
//!
//! A message is taken in once: the store records its Message-ID in the transaction that adds
//! it, and only then is the file moved from `new/` to `cur/`; a crash in between leaves a
//! message that the next pass finds already taken, and only moves.

use std::path::{Path, PathBuf};

use farol_model::incident::{Entry, EntryKind, Handling, Incident, NewFile, Severity, check_title};
use farol_model::org::Org;
use farol_model::{ClassificationType, Timestamp, Tlp};
use farol_store::{Mail, Store, StoreError};

/// The longest text kept from a message's body, in characters; the whole message is kept as a
/// file when the rules allow its size.
const MAX_TEXT: usize = 100_000;

/// What one pass over the Maildir did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Incidents opened, by id.
    pub opened: Vec<i64>,
    /// Incidents that replies joined, by id, one per reply.
    pub replies: Vec<i64>,
    /// Messages taken in before (moved only).
    pub seen: usize,
    /// Messages that could not be read as e-mail, moved to `failed/`, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntakeError {
    #[error("the Maildir {dir}: {source} (it needs new/ and cur/; the MTA creates them)")]
    Maildir { dir: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Takes in every message in `maildir/new`, oldest name first. `center` is the name the
/// tickets carry.
pub fn take_in(
    store: &dyn Store,
    maildir: &Path,
    center: &str,
    handling: &Handling,
    now: Timestamp,
) -> Result<Taken, IntakeError> {
    let io = |source| IntakeError::Maildir { dir: maildir.to_owned(), source };
    let mut names: Vec<PathBuf> = std::fs::read_dir(maildir.join("new"))
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    let mut taken = Taken::default();
    // Read once a pass: who the senders of new messages claim to be.
    let orgs = if names.is_empty() { Vec::new() } else { store.orgs()? };
    for path in names {
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
        let mail = match read(store, &orgs, &bytes, center, handling, now) {
            Ok(m) => m,
            Err(reason) => {
                let failed = maildir.join("failed");
                std::fs::create_dir_all(&failed).map_err(io)?;
                move_file(&path, &failed.join(&name)).map_err(io)?;
                taken.failed.push((failed.join(&name), reason));
                continue;
            }
        };
        match store.receive_mail(&mail.0, &mail.1)? {
            None => taken.seen += 1,
            Some(id) if matches!(mail.1, Mail::New { .. }) => taken.opened.push(id),
            Some(id) => taken.replies.push(id),
        }
        // Maildir's "seen" flag: the message was read.
        let seen = if name.contains(":2,") { name } else { format!("{name}:2,S") };
        move_file(&path, &maildir.join("cur").join(seen)).map_err(io)?;
    }
    Ok(taken)
}

/// Moves a file; one that another process moved first is not an error.
fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// A message as the store takes it: its id, and the incident it opens or the reply.
fn read(
    store: &dyn Store,
    orgs: &[Org],
    bytes: &[u8],
    center: &str,
    handling: &Handling,
    now: Timestamp,
) -> Result<(String, Mail), String> {
    let mail = farol_feeds::mail::parse(bytes)?;
    let id = mail.id.clone().unwrap_or_else(|| {
        let digest = <sha2::Sha256 as sha2::Digest>::digest(bytes);
        format!("sha256:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
    });
    let sender = mail.sender.as_deref().unwrap_or("unknown sender");
    let mut text = format!("From: {sender}\nSubject: {}\n", mail.subject);
    if let Some(date) = &mail.date {
        text.push_str(&format!("Date: {date}\n"));
    }
    let body = mail.text.trim();
    text.push('\n');
    text.extend(body.chars().take(MAX_TEXT));
    if body.chars().count() > MAX_TEXT {
        text.push_str("\n[… the text goes on: see message.eml]");
    }
    let mut files = Vec::new();
    let mut refused = Vec::new();
    let whole = ("message.eml".to_owned(), Some("message/rfc822".to_owned()), bytes.to_vec());
    for (name, declared, data) in std::iter::once(whole).chain(mail.attachments) {
        if files.len() == handling.files.max_files {
            refused.push(format!("{name}: more than {} files", handling.files.max_files));
            continue;
        }
        match handling.files.check(&name, declared.as_deref(), data) {
            Ok(f) => files.push(f),
            Err(e) => refused.push(e),
        }
    }
    if !refused.is_empty() {
        text.push_str(&format!("\n\n[files not kept: {}]", refused.join("; ")));
    }
    let entry = Entry::new(EntryKind::Mail, None, text, now);
    let replied = ticket_in(&mail.subject, center).or_else(|| mail.answers.iter().find_map(|r| ticket_in_id(r)));
    if let Some(incident) = replied
        && store.incident(incident).map_err(|e| e.to_string())?.is_some()
    {
        return Ok((id, Mail::Reply { incident, entry, files }));
    }
    Ok((id, new_incident(orgs, sender, &mail.subject, entry, files, handling, now)))
}

/// A new incident from a message, titled by its subject. It concerns no organization until an
/// analyst says so: a From header is easily forged, so the entry only names the organizations
/// whose contact the sender claims to be.
fn new_incident(
    orgs: &[Org],
    sender: &str,
    subject: &str,
    mut entry: Entry,
    files: Vec<NewFile>,
    handling: &Handling,
    now: Timestamp,
) -> Mail {
    let title = check_title(subject).unwrap_or_else(|_| {
        let cut: String = subject.chars().filter(|c| !c.is_control()).take(190).collect();
        if cut.trim().is_empty() { format!("E-mail from {sender}") } else { format!("{}…", cut.trim()) }
    });
    let class = ClassificationType::Undetermined;
    let mut incident = Incident::new(&title, class, Severity::Medium, Tlp::Amber, now);
    let senders: Vec<&str> = orgs
        .iter()
        .filter(|o| o.contacts.iter().any(|c| c.email.eq_ignore_ascii_case(sender)))
        .map(|o| o.name.as_str())
        .collect();
    if !senders.is_empty() {
        entry.text = format!("[the sender is a contact of {} (unverified)]\n{}", senders.join(", "), entry.text);
    }
    incident.add_tasks(handling.playbook(class));
    Mail::New { incident, entry, files }
}

/// The incident whose ticket a subject carries: `[CENTER #INC-42]`.
fn ticket_in(subject: &str, center: &str) -> Option<i64> {
    let tag = format!("[{} #inc-", center.to_lowercase());
    let lower = subject.to_lowercase();
    let at = lower.find(&tag)? + tag.len();
    let rest = &subject[at..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    rest[digits.len()..].starts_with(']').then(|| digits.parse().ok()).flatten()
}

/// The incident of a Message-ID the center made for a message about it: `INC-42.7@domain`.
fn ticket_in_id(id: &str) -> Option<i64> {
    let rest = id.trim_matches(['<', '>']).strip_prefix("INC-")?;
    let (n, _) = rest.split_once('.')?;
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_found_in_subjects_and_message_ids() {
        assert_eq!(ticket_in("Re: [TLP:AMBER] [CERT.PT #INC-42] Phishing", "CERT.PT"), Some(42));
        assert_eq!(ticket_in("RE: [cert.pt #inc-7]", "CERT.PT"), Some(7));
        assert_eq!(ticket_in("[CERT.PT #INC-42 ] x", "CERT.PT"), None);
        assert_eq!(ticket_in("[OTHER #INC-42]", "CERT.PT"), None);
        assert_eq!(ticket_in("[CERT.PT #INC-]", "CERT.PT"), None);
        assert_eq!(ticket_in("[CERT.PT #20261129-000042] digest", "CERT.PT"), None);
        assert_eq!(ticket_in_id("<INC-42.17@cert.pt>"), Some(42));
        assert_eq!(ticket_in_id("INC-9.1@cert.pt"), Some(9));
        assert_eq!(ticket_in_id("<20261129-000042.3@cert.pt>"), None);
    }
}
