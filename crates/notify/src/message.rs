//! Writing a digest: the templates (shipped in English and Portuguese, each replaceable by the
//! operator), the attachment, and the MIME message.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use farol_model::Tlp;
use farol_model::export::{csv_header, csv_row};
use farol_model::incident::Incident;
use farol_model::org::{Contact, NotifyFormat, OrgId};
use farol_store::NewMessage;
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use minijinja::{Environment, UndefinedBehavior, context};
use serde::Serialize;

use crate::{Digest, Settings, Signer};

/// The shipped templates: per language, the subject, the digest, and a section per
/// classification type (`default` for the types without one).
const SHIPPED: &[(&str, &str)] = &[
    ("en/subject.txt", include_str!("../templates/en/subject.txt")),
    ("en/digest.txt", include_str!("../templates/en/digest.txt")),
    ("en/incident.txt", include_str!("../templates/en/incident.txt")),
    ("en/types/default.txt", include_str!("../templates/en/types/default.txt")),
    ("en/types/infected-system.txt", include_str!("../templates/en/types/infected-system.txt")),
    ("en/types/c2-server.txt", include_str!("../templates/en/types/c2-server.txt")),
    ("en/types/malware-distribution.txt", include_str!("../templates/en/types/malware-distribution.txt")),
    ("en/types/phishing.txt", include_str!("../templates/en/types/phishing.txt")),
    ("en/types/scanner.txt", include_str!("../templates/en/types/scanner.txt")),
    ("en/types/brute-force.txt", include_str!("../templates/en/types/brute-force.txt")),
    ("en/types/vulnerable-system.txt", include_str!("../templates/en/types/vulnerable-system.txt")),
    ("en/types/ddos-amplifier.txt", include_str!("../templates/en/types/ddos-amplifier.txt")),
    ("en/types/spam.txt", include_str!("../templates/en/types/spam.txt")),
    ("pt/subject.txt", include_str!("../templates/pt/subject.txt")),
    ("pt/digest.txt", include_str!("../templates/pt/digest.txt")),
    ("pt/incident.txt", include_str!("../templates/pt/incident.txt")),
    ("pt/types/default.txt", include_str!("../templates/pt/types/default.txt")),
    ("pt/types/infected-system.txt", include_str!("../templates/pt/types/infected-system.txt")),
    ("pt/types/c2-server.txt", include_str!("../templates/pt/types/c2-server.txt")),
    ("pt/types/malware-distribution.txt", include_str!("../templates/pt/types/malware-distribution.txt")),
    ("pt/types/phishing.txt", include_str!("../templates/pt/types/phishing.txt")),
    ("pt/types/scanner.txt", include_str!("../templates/pt/types/scanner.txt")),
    ("pt/types/brute-force.txt", include_str!("../templates/pt/types/brute-force.txt")),
    ("pt/types/vulnerable-system.txt", include_str!("../templates/pt/types/vulnerable-system.txt")),
    ("pt/types/ddos-amplifier.txt", include_str!("../templates/pt/types/ddos-amplifier.txt")),
    ("pt/types/spam.txt", include_str!("../templates/pt/types/spam.txt")),
];

/// The shipped templates by name, to start an operator's own from.
pub fn shipped_templates() -> impl Iterator<Item = (&'static str, &'static str)> {
    SHIPPED.iter().copied()
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    #[error("notification template {name}: {source}")]
    Render { name: String, source: minijinja::Error },
    #[error("cannot read the notification templates in {dir}: {source}")]
    Read { dir: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Message(String),
}

/// The notification templates: the operator's (files under a directory, by the same names as
/// the shipped ones, `en/digest.txt`) where they exist, else the shipped ones.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// The names that exist, shipped or the operator's.
    names: Vec<String>,
}

/// What writes messages: the templates, and the center's key when messages are signed.
#[derive(Debug)]
pub struct Writer {
    /// Shared with the portal's preview.
    pub templates: std::sync::Arc<Templates>,
    pub signer: Option<Signer>,
}

/// A digest written out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub attachment_name: String,
    pub attachment_type: &'static str,
    pub attachment: Vec<u8>,
}

impl Templates {
    /// The shipped templates, overridden and extended by the files under `dir` (if it exists).
    /// Every template is compiled here, so that a syntax error stops start-up, not a send.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_trim_blocks(true);
        let mut sources: BTreeMap<String, String> =
            SHIPPED.iter().map(|(name, text)| ((*name).to_owned(), (*text).to_owned())).collect();
        if let Some(dir) = dir.filter(|d| d.is_dir()) {
            read_dir(dir, dir, &mut sources)?;
        }
        let names: Vec<String> = sources.keys().cloned().collect();
        for (name, text) in sources {
            env.add_template_owned(name.clone(), text).map_err(|source| TemplateError::Render { name, source })?;
        }
        Ok(Templates { env, names })
    }

    /// The language of a contact's messages: its language when there are templates for it,
    /// else English.
    fn language(&self, wanted: &str) -> String {
        let lang = wanted.get(..2).unwrap_or_default().to_ascii_lowercase();
        if self.has(&format!("{lang}/digest.txt")) { lang } else { "en".to_owned() }
    }

    fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// Writes a digest with a ticket number.
    pub fn render(&self, settings: &Settings, digest: &Digest, ticket: &str) -> Result<Rendered, TemplateError> {
        let lang = self.language(&digest.contact.language);
        let mut groups: BTreeMap<&str, (Group, BTreeSet<IpAddr>)> = BTreeMap::new();
        let mut tlp = Tlp::Clear;
        for e in &digest.events {
            let kind = e.event.classification_type.map_or("undetermined", |t| t.as_str());
            let (group, addresses) = groups.entry(kind).or_insert_with(|| {
                let group = Group {
                    kind: kind.to_owned(),
                    taxonomy: e.event.classification_type.map(|t| t.taxonomy().as_str().to_owned()).unwrap_or_default(),
                    template: String::new(),
                    count: 0,
                    addresses: 0,
                    identifiers: Vec::new(),
                };
                (group, BTreeSet::new())
            });
            group.count += 1;
            addresses.extend(e.event.source_ip);
            if let Some(id) = e.event.classification_identifier.as_deref() {
                match group.identifiers.iter_mut().find(|(name, _)| name == id) {
                    Some((_, n)) => *n += 1,
                    None => group.identifiers.push((id.to_owned(), 1)),
                }
            }
            tlp = tlp.max(e.event.tlp.unwrap_or(Tlp::Amber));
        }
        let mut groups: Vec<Group> =
            groups.into_values().map(|(g, addresses)| Group { addresses: addresses.len(), ..g }).collect();
        for g in &mut groups {
            let own = format!("{lang}/types/{}.txt", g.kind);
            g.template = if self.has(&own) { own } else { format!("{lang}/types/default.txt") };
            g.identifiers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        }
        groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
        let times = digest.events.iter().map(|e| e.filed);
        let (first, last) = (times.clone().min(), times.max());
        let extension = match digest.contact.format {
            NotifyFormat::Csv => "csv",
            NotifyFormat::Json => "json",
        };
        let attachment_name = format!("{}-{ticket}.{extension}", slug(&settings.center));
        let ctx = context! {
            center => settings.center,
            org => digest.org_name,
            ticket,
            tlp => tlp.label(),
            total => digest.events.len(),
            truncated => digest.truncated,
            max_events => settings.max_events,
            muted => digest.muted,
            first => first.map(|t| t.to_string()),
            last => last.map(|t| t.to_string()),
            since => digest.last_sent.map(|t| t.to_string()),
            groups,
            attachment => attachment_name,
            format => extension,
        };
        let render = |name: String| {
            self.env
                .get_template(&name)
                .and_then(|t| t.render(&ctx))
                .map_err(|source| TemplateError::Render { name, source })
        };
        let subject = render(format!("{lang}/subject.txt"))?;
        let text = render(format!("{lang}/digest.txt"))?;
        let (attachment_type, attachment) = attachment(digest);
        Ok(Rendered {
            subject: one_line(&subject),
            text: text.replace("\r\n", "\n"),
            attachment_name,
            attachment_type,
            attachment,
        })
    }
}

/// A classification type's part of a digest, as templates see it.
#[derive(Debug, Serialize)]
struct Group {
    #[serde(rename = "type")]
    kind: String,
    taxonomy: String,
    /// The template of its section.
    template: String,
    count: usize,
    /// Distinct source addresses.
    addresses: usize,
    /// `classification.identifier`s with their counts, most frequent first.
    identifiers: Vec<(String, usize)>,
}

fn read_dir(root: &Path, dir: &Path, into: &mut BTreeMap<String, String>) -> Result<(), TemplateError> {
    let err = |source| TemplateError::Read { dir: root.to_owned(), source };
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let path = entry.map_err(err)?.path();
        if path.is_dir() {
            read_dir(root, &path, into)?;
        } else if path.extension().is_some_and(|e| e == "txt") {
            let name = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            into.insert(name, std::fs::read_to_string(&path).map_err(err)?);
        }
    }
    Ok(())
}

/// The events as the contact wants them: CSV (formula-safe cells) or a JSON array of IntelMQ
/// objects.
fn attachment(digest: &Digest) -> (&'static str, Vec<u8>) {
    match digest.contact.format {
        NotifyFormat::Csv => {
            let mut text = csv_header();
            text.push_str("\r\n");
            for e in &digest.events {
                text.push_str(&csv_row(&e.event));
                text.push_str("\r\n");
            }
            ("text/csv; charset=utf-8", text.into_bytes())
        }
        NotifyFormat::Json => {
            let events: Vec<_> = digest.events.iter().map(|e| e.event.to_intelmq()).collect();
            let mut json = serde_json::to_vec_pretty(&events).unwrap_or_default();
            json.push(b'\n');
            ("application/json", json)
        }
    }
}

/// A subject line: whitespace and control characters folded into single spaces.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A name for files: lower-case letters, digits and dashes.
fn slug(s: &str) -> String {
    let slug: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let slug = slug.split('-').filter(|w| !w.is_empty()).collect::<Vec<_>>().join("-");
    if slug.is_empty() { "farol".to_owned() } else { slug }
}

/// An attachment's body in base64: the events' lines (JSON, CSV with `extra`) can be longer than
/// SMTP allows a line to be.
fn base64(bytes: Vec<u8>) -> Body {
    Body::new_with_encoding(bytes, ContentTransferEncoding::Base64).unwrap_or_else(Body::new)
}

/// The sender's mailbox, checked.
pub(crate) fn mailbox(s: &str) -> Result<Mailbox, TemplateError> {
    s.parse().map_err(|e| TemplateError::Address(format!("{s:?} is not an e-mail address: {e}")))
}

/// The whole message for a digest with a ticket number, ready for the outbox: the text and the
/// attachment, signed (PGP/MIME, RFC 3156) when there is a key.
pub(crate) fn build(
    writer: &Writer,
    settings: &Settings,
    digest: &Digest,
    ticket: &str,
) -> Result<NewMessage, TemplateError> {
    let r = writer.templates.render(settings, digest, ticket)?;
    let content_type = ContentType::parse(r.attachment_type).map_err(|e| TemplateError::Message(e.to_string()))?;
    let content = MultiPart::mixed()
        .singlepart(SinglePart::plain(r.text))
        .singlepart(Attachment::new(r.attachment_name).body(base64(r.attachment), content_type));
    let recipients = vec![digest.contact.email.clone()];
    let message_id = format!("{ticket}.{}", digest.org);
    let message = assemble(writer, settings, &recipients, &r.subject, &message_id, content)?;
    Ok(NewMessage { org: digest.org, events: digest.events.len() as u64, ..message })
}

/// A message from the center to an organization's contacts about an incident.
#[derive(Debug, Clone)]
pub struct IncidentMessage<'a> {
    pub incident: &'a Incident,
    pub org: OrgId,
    pub org_name: &'a str,
    /// The contacts written to; the first one's language is the message's.
    pub contacts: &'a [Contact],
    /// What the analyst wrote.
    pub text: &'a str,
}

/// An incident's ticket, which replies carry in their subject: `INC-42`.
pub fn incident_ticket(id: i64) -> String {
    format!("INC-{id}")
}

impl Writer {
    /// The whole message about an incident, ready for the outbox as its `id`: the analyst's
    /// words in the language's template, with the incident's ticket and TLP in the subject.
    pub fn incident_message(
        &self,
        settings: &Settings,
        m: &IncidentMessage<'_>,
        id: i64,
    ) -> Result<NewMessage, TemplateError> {
        let i = m.incident;
        let lang = self.templates.language(m.contacts.first().map_or("en", |c| c.language.as_str()));
        let ticket = incident_ticket(i.id);
        let ctx = context! {
            center => settings.center, org => m.org_name, ticket, tlp => i.tlp.label(), id => i.id,
            title => i.title, text => m.text.trim(),
        };
        let name = format!("{lang}/incident.txt");
        let text = self
            .templates
            .env
            .get_template(&name)
            .and_then(|t| t.render(&ctx))
            .map_err(|source| TemplateError::Render { name, source })?;
        let subject = one_line(&format!("[{}] [{} #{ticket}] {}", i.tlp.label(), settings.center, i.title));
        let recipients: Vec<String> = m.contacts.iter().map(|c| c.email.clone()).collect();
        let content = MultiPart::mixed().singlepart(SinglePart::plain(text.replace("\r\n", "\n")));
        let message = assemble(self, settings, &recipients, &subject, &format!("{ticket}.{id}"), content)?;
        Ok(NewMessage { org: m.org, ..message })
    }
}

/// The message around `content`: headers, and the signature when there is a key. Its
/// Message-ID is `<local@the sender's domain>`.
fn assemble(
    writer: &Writer,
    settings: &Settings,
    recipients: &[String],
    subject: &str,
    local: &str,
    content: MultiPart,
) -> Result<NewMessage, TemplateError> {
    let from = mailbox(&settings.from)?;
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject)
        .message_id(Some(format!("<{local}@{}>", from.email.domain())));
    for r in recipients {
        builder = builder.to(mailbox(r)?);
    }
    if let Some(reply_to) = &settings.reply_to {
        builder = builder.reply_to(mailbox(reply_to)?);
    }
    let body = match &writer.signer {
        None => content,
        Some(signer) => {
            // The signature covers the part exactly as it goes out: headers and body, CRLF.
            let signature = signer.sign(&content.formatted()).map_err(TemplateError::Message)?;
            let signature_type = ContentType::parse("application/pgp-signature; name=\"signature.asc\"")
                .map_err(|e| TemplateError::Message(e.to_string()))?;
            MultiPart::signed("application/pgp-signature".into(), "pgp-sha256".into())
                .multipart(content)
                .singlepart(SinglePart::builder().header(signature_type).body(signature))
        }
    };
    let message = builder.multipart(body).map_err(|e| TemplateError::Message(e.to_string()))?;
    Ok(NewMessage {
        org: OrgId(0),
        sender: from.email.to_string(),
        recipients: recipients.to_vec(),
        subject: subject.to_owned(),
        events: 0,
        message: message.formatted(),
    })
}
