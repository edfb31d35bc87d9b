//! `farol notify`: digests of new events to the organizations' contacts, the outbox, and the
//! shipped templates; `farol inhibition`: mute rules.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use farol_model::Timestamp;
use farol_model::org::Asset;
use farol_notify::{Mailer, Selection, Signer, Templates, Writer};
use farol_store::{Inhibition, Store};

use crate::config::{Config, SIGNING_PASSPHRASE_ENV, SMTP_URL_ENV};
use crate::output::{Table, count};
use crate::{Missing, Usage};

const NOTIFY_HELP: &str = "\
Examples:
  farol notify --dry-run             what would be sent now, per contact
  farol notify --dry-run --show      ... with each message's text
  farol notify                       queue the digests that are due and send the outbox
  farol notify --now --org \"Hospital X\"   everything pending for one organization, whatever its interval
  farol notify outbox                what was sent, what waits, what failed

Each contact of an organization (farol org add --abuse-email ... --interval daily --language pt)
gets a digest of the new events in the organization's networks at its interval: immediately
(every round), hourly, daily or weekly (at [notify] daily_hour UTC; Mondays), never.
`farol serve` runs a round every minute.";

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, after_help = NOTIFY_HELP)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Show what would be queued, without queueing or sending anything
    #[arg(long)]
    dry_run: bool,
    /// Everything pending, whatever each contact's interval (contacts set to never aside)
    #[arg(long)]
    now: bool,
    /// Only this organization (name or id)
    #[arg(long)]
    org: Option<String>,
    /// With --dry-run: print each message's subject and text
    #[arg(long, requires = "dry_run")]
    show: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the outbox: queued, sent and failed messages, newest first
    Outbox {
        /// Only this organization (name or id)
        #[arg(long)]
        org: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Write the shipped templates into the templates directory, to edit them
    Templates,
}

pub fn run(dir: &Path, args: Args) -> Result<()> {
    let (config, store) = super::open(dir)?;
    match args.command {
        Some(Command::Outbox { org, limit }) => outbox(&*store, org.as_deref(), limit),
        Some(Command::Templates) => write_templates(&config),
        None => {
            let org = args.org.as_deref().map(|o| super::org::find(&*store, o)).transpose()?;
            let select = Selection { now: args.now, org: org.map(|o| o.id) };
            if args.dry_run {
                dry_run(&config, &*store, &templates(&config)?, select, args.show)
            } else {
                send(&config, &*store, &writer(&config)?, select)
            }
        }
    }
}

fn dry_run(config: &Config, store: &dyn Store, templates: &Templates, select: Selection, show: bool) -> Result<()> {
    let now = Timestamp::now();
    let digests = farol_notify::digests(store, &config.notify.settings, now, select)?;
    let mut table = Table::new(&["organization", "contact", "language", "format", "events", "muted", "subject"]);
    let mut total = 0;
    for d in digests.iter().filter(|d| !d.events.is_empty()) {
        let r = templates.render(&config.notify.settings, d, "preview")?;
        total += d.events.len() as u64;
        if show {
            println!(
                "To: {}\nSubject: {}\nAttachment: {} ({} bytes)\n\n{}",
                d.contact.email,
                r.subject,
                r.attachment_name,
                r.attachment.len(),
                r.text
            );
            println!("{}", "-".repeat(72));
        }
        let events =
            if d.truncated { format!("{}+", count(d.events.len() as u64)) } else { count(d.events.len() as u64) };
        table.row(vec![
            d.org_name.clone(),
            d.contact.email.clone(),
            d.contact.language.clone(),
            d.contact.format.to_string(),
            events,
            count(d.muted as u64),
            r.subject,
        ]);
    }
    if table.is_empty() {
        println!("nothing to send now: no contact that is due has new events (--now ignores intervals)");
    } else {
        print!("{}", table.render());
        println!("{} message(s), {} event(s); nothing was queued or sent (dry run)", table.len(), count(total));
    }
    Ok(())
}

/// The notification templates: the shipped ones and the operator's.
pub fn templates(config: &Config) -> Result<Templates> {
    Ok(Templates::load(Some(&config.notify.templates)).map_err(|e| Usage(e.to_string()))?)
}

/// What writes the center's messages: its templates, and its key when it signs.
pub fn writer(config: &Config) -> Result<Writer> {
    Ok(Writer { templates: Arc::new(templates(config)?), signer: signer(config)? })
}

/// The signing key, when one is configured; checked by signing with it.
pub fn signer(config: &Config) -> Result<Option<Signer>> {
    let Some(path) = &config.notify.signing_key else { return Ok(None) };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let passphrase = std::env::var(SIGNING_PASSPHRASE_ENV).ok();
    let signer = Signer::from_armored(&text, passphrase.as_deref())
        .map_err(|e| Usage(format!("notify.signing_key {}: {e}", path.display())))?;
    Ok(Some(signer))
}

/// The mailer for an SMTP URL, trusting `[notify] smtp_ca` too when it is set.
pub fn mailer(config: &Config, url: &str) -> Result<Mailer> {
    let ca = config.notify.smtp_ca.as_ref().map(std::fs::read).transpose().context("cannot read notify.smtp_ca")?;
    Ok(Mailer::from_url(url, ca.as_deref()).map_err(|e| Usage(e.to_string()))?)
}

fn send(config: &Config, store: &dyn Store, writer: &Writer, select: Selection) -> Result<()> {
    let notify = &config.notify;
    if !notify.has_sender {
        anyhow::bail!(Usage("set [notify] from in farol.toml (the sender of notifications) before sending".into()));
    }
    let url = notify.smtp_url.as_deref().ok_or_else(|| {
        Usage(format!("no SMTP server: set [notify] smtp_url in farol.toml or {SMTP_URL_ENV} (smtp://host:25)"))
    })?;
    let mailer = mailer(config, url)?;
    let _lock = store.lock(LOCK, true)?;
    let round = farol_notify::run(store, writer, &notify.settings, &mailer, select, Timestamp::now())?;
    let d = &round.delivered;
    println!(
        "{} message(s) queued ({} event(s), {} muted); {} sent, {} to retry, {} failed",
        round.queued.messages.len(),
        count(round.queued.events),
        count(round.queued.muted),
        d.sent,
        d.retrying,
        d.failed
    );
    for (id, error) in &d.errors {
        eprintln!("outbox {id}: {error}");
    }
    if d.failed > 0 || d.retrying > 0 {
        eprintln!("`farol notify outbox` lists them; retries happen at later rounds");
    }
    Ok(())
}

/// The store's lock that keeps notification rounds apart: one at a time, on any machine.
pub const LOCK: &str = "notify";

fn outbox(store: &dyn Store, org: Option<&str>, limit: usize) -> Result<()> {
    let org = org.map(|o| super::org::find(store, o)).transpose()?;
    let names = super::org::names(store)?;
    let mut table = Table::new(&[
        "id",
        "queued",
        "organization",
        "to",
        "events",
        "state",
        "attempts",
        "sent / last error",
        "subject",
    ]);
    for m in store.outbox(org.map(|o| o.id), limit)? {
        let org = m.org.map_or_else(|| "(removed)".into(), &names);
        let outcome = match (m.sent_at, &m.last_error) {
            (Some(t), _) => t.to_string(),
            (None, Some(e)) => e.clone(),
            (None, None) => String::new(),
        };
        table.row(vec![
            m.id.to_string(),
            m.created.to_string(),
            org,
            m.recipients.join(", "),
            count(m.events),
            m.state.as_str().to_owned(),
            m.attempts.to_string(),
            outcome,
            m.subject,
        ]);
    }
    if table.is_empty() {
        println!("the outbox is empty");
    } else {
        print!("{}", table.render());
    }
    Ok(())
}

fn write_templates(config: &Config) -> Result<()> {
    let dir = &config.notify.templates;
    let mut written = 0;
    for (name, text) in farol_notify::shipped_templates() {
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        std::fs::create_dir_all(path.parent().unwrap_or(dir))
            .with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written += 1;
    }
    println!(
        "{written} template(s) written to {} (existing files kept); edit them, then check with `farol notify --dry-run --show`",
        dir.display()
    );
    Ok(())
}

const INHIBITION_HELP: &str = "\
Examples:
  farol inhibition add --org \"ISP A\" --prefix 192.0.2.0/24 --classification infected-system \\
    --reason \"the ISP's own sinkhole\" --expires 2027-06-30
  farol inhibition add --asn 64500 --classification open-dns --reason \"accepted risk\" --expires 90d
  farol inhibition list
  farol inhibition remove 3

Muted events stay in the store and the portal; they are only left out of notifications.";

#[derive(Debug, clap::Args)]
#[command(after_help = INHIBITION_HELP)]
pub struct InhibitionArgs {
    #[command(subcommand)]
    command: InhibitionCommand,
}

#[derive(Debug, clap::Subcommand)]
enum InhibitionCommand {
    /// Add a mute rule: every condition given must match
    Add {
        /// Only this organization's notifications (name or id); all when omitted
        #[arg(long)]
        org: Option<String>,
        /// Events from this network
        #[arg(long, group = "asset")]
        prefix: Option<String>,
        /// Events from this AS
        #[arg(long, group = "asset")]
        asn: Option<String>,
        /// Events naming this domain or a name under it
        #[arg(long, group = "asset")]
        domain: Option<String>,
        /// Events of this classification taxonomy, type or identifier
        #[arg(long)]
        classification: Option<String>,
        /// Why (shown in `farol inhibition list`)
        #[arg(long)]
        reason: String,
        /// When the rule ends: a date (2027-06-30) or a duration from now (90d, 12w)
        #[arg(long)]
        expires: Option<String>,
    },
    /// List mute rules
    List,
    /// Remove a mute rule
    Remove { id: i64 },
}

pub fn inhibition(dir: &Path, args: InhibitionArgs) -> Result<()> {
    let (_config, store) = super::open(dir)?;
    match args.command {
        InhibitionCommand::Add { org, prefix, asn, domain, classification, reason, expires } => {
            let org = org.map(|o| super::org::find(&*store, &o)).transpose()?;
            let asset = [("prefix", prefix), ("asn", asn), ("domain", domain)]
                .into_iter()
                .find_map(|(kind, v)| v.map(|v| Asset::parse_kind(kind, &v)))
                .transpose()
                .map_err(Usage)?;
            let now = Timestamp::now();
            let expires = expires.map(|e| expiry(&e, now)).transpose()?;
            if org.is_none() && asset.is_none() && classification.is_none() {
                anyhow::bail!(Usage(
                    "a rule that matches everything would mute every notification: give --org, an asset or --classification"
                        .into()
                ));
            }
            let rule = Inhibition {
                id: 0,
                org: org.map(|o| o.id),
                asset,
                classification: classification.map(|c| c.trim().to_ascii_lowercase()),
                reason,
                created: now,
                created_by: std::env::var("USER").ok(),
                expires,
            };
            let rule = store.add_inhibition(&rule)?;
            println!("mute rule {} added", rule.id);
        }
        InhibitionCommand::List => {
            let names = super::org::names(&*store)?;
            let now = Timestamp::now();
            let mut table = Table::new(&["id", "organization", "asset", "classification", "expires", "reason"]);
            for r in store.inhibitions()? {
                let expires = match r.expires {
                    Some(t) if t <= now => format!("{t} (expired)"),
                    Some(t) => t.to_string(),
                    None => "never".into(),
                };
                table.row(vec![
                    r.id.to_string(),
                    r.org.map_or_else(|| "(all)".into(), &names),
                    r.asset.map_or_else(|| "(any)".into(), |a| a.to_string()),
                    r.classification.unwrap_or_else(|| "(any)".into()),
                    expires,
                    r.reason,
                ]);
            }
            if table.is_empty() {
                println!("no mute rules: `farol inhibition add --help` shows how to add one");
            } else {
                print!("{}", table.render());
            }
        }
        InhibitionCommand::Remove { id } => {
            if !store.remove_inhibition(id)? {
                anyhow::bail!(Missing(format!("no mute rule {id}: `farol inhibition list` shows them")));
            }
            println!("mute rule {id} removed");
        }
    }
    Ok(())
}

/// An expiry as people give it: a date or time, or a duration from now.
fn expiry(s: &str, now: Timestamp) -> Result<Timestamp> {
    Timestamp::parse(s)
        .or_else(|| crate::config::parse_duration(s).ok().and_then(|secs| now.add_secs(secs)))
        .ok_or_else(|| {
            Usage(format!("--expires: expected a date (2027-06-30) or a duration (90d), found {s:?}")).into()
        })
}
