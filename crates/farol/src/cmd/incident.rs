//! `farol incident`: open, follow and close incidents from the command line.

use std::path::Path;

use anyhow::Result;
use farol_model::incident::{Change, Entry, EntryKind, Incident, Overdue, Severity, Status, check_title};
use farol_model::{ClassificationType, Timestamp, Tlp};
use farol_store::{IncidentFilter, Store};

use crate::output::Table;
use crate::{Missing, Usage};

const HELP: &str = "\
Examples:
  farol incident new \"Phishing site imitating Bank X\" --class phishing --severity high \\
    --org \"Hospital X\" --event 4211 --note \"reported by the bank's SOC\"
  farol incident list --open                  open incidents, the overdue marked
  farol incident list --overdue
  farol incident set 7 --status open --assign ana@cert.pt
  farol incident comment 7 \"hosting provider contacted\"
  farol incident link 7 4212 4213            events, and the organizations they concern
  farol incident set 7 --status resolved
  farol incident merge 9 7                   incident 9 becomes part of 7
  farol incident task 7 2                    the second task of its playbook is done
  farol incident write 7 \"Please take the site down\"   to the organizations' contacts
  farol incident show 7                      fields, deadlines, events and timeline

Statuses: new, open, stalled, resolved, rejected; a closed incident can be opened again.
Deadlines per severity are in [incidents] in farol.toml, playbooks in [playbooks].";

#[derive(Debug, clap::Args)]
#[command(after_help = HELP)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Open an incident
    New {
        title: String,
        /// Its class: an RSIT classification type (phishing, infected-system, ddos, ...)
        #[arg(long)]
        class: String,
        #[arg(long, default_value = "medium")]
        severity: Severity,
        #[arg(long, default_value = "AMBER")]
        tlp: Tlp,
        /// An organization it concerns, by name or id (repeatable)
        #[arg(long)]
        org: Vec<String>,
        /// An event it stands on (repeatable); the organizations of its networks are added
        #[arg(long)]
        event: Vec<i64>,
        /// The analyst who handles it (e-mail address)
        #[arg(long)]
        assign: Option<String>,
        /// A first comment
        #[arg(long)]
        note: Option<String>,
    },
    /// List incidents, newest first
    List {
        /// New, open and stalled ones only
        #[arg(long)]
        open: bool,
        /// Open ones past a deadline only
        #[arg(long)]
        overdue: bool,
        #[arg(long)]
        status: Option<Status>,
        /// Those that concern this organization
        #[arg(long)]
        org: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show an incident with its timeline
    Show { id: i64 },
    /// Change an incident
    Set {
        id: i64,
        #[arg(long)]
        status: Option<Status>,
        #[arg(long)]
        severity: Option<Severity>,
        #[arg(long)]
        tlp: Option<Tlp>,
        /// An RSIT classification type; its playbook's tasks are added
        #[arg(long)]
        class: Option<String>,
        #[arg(long)]
        title: Option<String>,
        /// The analyst who handles it (e-mail address)
        #[arg(long, conflicts_with = "unassign")]
        assign: Option<String>,
        #[arg(long)]
        unassign: bool,
        /// Add an organization it concerns (repeatable)
        #[arg(long)]
        org: Vec<String>,
        /// Remove an organization (repeatable)
        #[arg(long)]
        remove_org: Vec<String>,
        /// Why: kept with the change in the timeline
        #[arg(long)]
        note: Option<String>,
    },
    /// Add a comment to an incident's timeline
    Comment { id: i64, text: String },
    /// Link events to an incident (and the organizations of their networks)
    Link {
        id: i64,
        #[arg(required = true)]
        events: Vec<i64>,
    },
    /// Merge an incident into another: its events, organizations and timeline note move there
    Merge { from: i64, into: i64 },
    /// Write to the contacts of the organizations an incident concerns (queued; sent by
    /// `farol notify` or `farol serve`); their replies join the incident
    Write { id: i64, text: String },
    /// Tick a task of the incident's playbook (numbered from 1, as `show` lists them)
    Task {
        id: i64,
        task: usize,
        /// Mark it not done again
        #[arg(long)]
        undo: bool,
    },
}

pub fn run(dir: &Path, args: Args) -> Result<()> {
    let (config, store) = super::open(dir)?;
    let now = Timestamp::now();
    let entry = |kind: EntryKind, text: String| Entry::new(kind, None, text, now);
    match args.command {
        Command::New { title, class, severity, tlp, org, event, assign, note } => {
            let class = class_named(&class)?;
            let title = check_title(&title).map_err(Usage)?;
            let mut incident = Incident::new(&title, class, severity, tlp, now);
            incident.assignee = assign.as_deref().map(|a| analyst(&*store, a)).transpose()?;
            incident.orgs = org.iter().map(|o| super::org::find(&*store, o).map(|o| o.id)).collect::<Result<_>>()?;
            farol_store::link_events(&*store, &mut incident, &event)?;
            incident.add_tasks(config.incidents.playbook(class));
            let mut text = format!("opened: {} ({}, {})", incident.title, incident.class, incident.severity);
            if let Some(note) = note {
                text = format!("{text}\n{note}");
            }
            let incident = store.add_incident(&incident, &entry(EntryKind::Created, text), &[])?;
            println!("incident {} opened", incident.id);
        }
        Command::List { open, overdue, status, org, limit } => {
            let org = org.map(|o| super::org::find(&*store, &o)).transpose()?;
            let filter = IncidentFilter { org: org.map(|o| o.id), status, open: open || overdue, limit };
            let names = super::org::names(&*store)?;
            let mut table =
                Table::new(&["id", "opened", "severity", "status", "class", "tlp", "organizations", "late", "title"]);
            for i in store.incidents(&filter)? {
                let late = i.overdue(&config.incidents.deadlines, now);
                if overdue && late.is_none() {
                    continue;
                }
                table.row(vec![
                    i.id.to_string(),
                    i.created.to_string().get(..16).unwrap_or_default().replace('T', " "),
                    i.severity.to_string(),
                    i.status.to_string(),
                    i.class.as_str().to_owned(),
                    i.tlp.as_str().to_owned(),
                    i.orgs.iter().map(|o| names(*o)).collect::<Vec<_>>().join(", "),
                    late.map_or("", late_text).to_owned(),
                    i.title,
                ]);
            }
            if table.is_empty() {
                println!("no incidents");
            } else {
                print!("{}", table.render());
            }
        }
        Command::Show { id } => {
            let i = find(&*store, id)?;
            let names = super::org::names(&*store)?;
            let user = |id: Option<i64>| -> Result<String> {
                Ok(match id {
                    None => "farol".into(),
                    Some(id) => store.user(id)?.map_or_else(|| format!("user {id}"), |u| u.email),
                })
            };
            println!("incident {}: {}", i.id, i.title);
            println!("  class      {} ({})", i.class, i.class.taxonomy());
            println!("  severity   {}", i.severity);
            println!("  TLP        {}", i.tlp.label());
            println!(
                "  status     {}{}",
                i.status,
                i.merged_into.map(|m| format!(" (merged into {m})")).unwrap_or_default()
            );
            println!("  assignee   {}", if i.assignee.is_some() { user(i.assignee)? } else { "-".into() });
            println!("  opened     {}", i.created);
            println!("  responded  {}", i.first_response.map_or("-".into(), |t| t.to_string()));
            println!("  closed     {}", i.closed.map_or("-".into(), |t| t.to_string()));
            if let Some(late) = i.overdue(&config.incidents.deadlines, now) {
                println!("  overdue    {}", late_text(late));
            }
            println!("  orgs       {}", i.orgs.iter().map(|o| names(*o)).collect::<Vec<_>>().join(", "));
            println!("  events     {}", i.events.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
            if !i.tasks.is_empty() {
                println!("tasks:");
            }
            for (n, t) in i.tasks.iter().enumerate() {
                let done = match t.done {
                    Some((at, by)) => format!("[x] {}  (done {at} by {})", t.text, user(by)?),
                    None => format!("[ ] {}", t.text),
                };
                println!("  {}. {done}", n + 1);
            }
            println!("timeline:");
            for e in store.timeline(i.id)? {
                let head = format!("  {}  {:<14} {:<22} ", e.at, e.kind.as_str(), user(e.user)?);
                for (n, line) in e.text.lines().enumerate() {
                    let lead = if n == 0 { head.clone() } else { " ".repeat(head.chars().count()) };
                    println!("{lead}{line}");
                }
                for f in &e.files {
                    println!(
                        "{}file {}: {} ({}, {} bytes)",
                        " ".repeat(head.chars().count()),
                        f.id,
                        f.name,
                        f.content_type,
                        f.size
                    );
                }
            }
        }
        Command::Set { id, status, severity, tlp, class, title, assign, unassign, org, remove_org, note } => {
            let mut i = find(&*store, id)?;
            let named = |o: &String| super::org::find(&*store, o).map(|o| (o.id, o.name));
            let change = Change {
                status,
                severity,
                tlp,
                class: class.as_deref().map(class_named).transpose()?,
                title,
                assignee: match (assign, unassign) {
                    (Some(a), _) => Some(Some((analyst(&*store, &a)?, a))),
                    (None, true) => Some(None),
                    (None, false) => None,
                },
                add_orgs: org.iter().map(named).collect::<Result<_>>()?,
                remove_orgs: remove_org.iter().map(named).collect::<Result<_>>()?,
            };
            let new_class = change.class;
            let changes = i.apply(change, now).map_err(Usage)?;
            if changes.is_empty() {
                anyhow::bail!(Usage(format!("nothing to change: incident {id} is already so")));
            }
            if let Some(class) = new_class {
                i.add_tasks(config.incidents.playbook(class));
            }
            let mut text = changes.join("; ");
            if let Some(note) = note {
                text = format!("{text}\n{note}");
            }
            store.update_incident(&i, &entry(EntryKind::Change, text))?;
            println!("incident {id}: {}", changes.join("; "));
        }
        Command::Comment { id, text } => {
            find(&*store, id)?;
            if text.trim().is_empty() {
                anyhow::bail!(Usage("the comment is empty".into()));
            }
            store.add_entry(id, &entry(EntryKind::Comment, text), &[])?;
            println!("comment added to incident {id}");
        }
        Command::Link { id, events } => {
            let mut i = find(&*store, id)?;
            let orgs = i.orgs.len();
            let linked = farol_store::link_events(&*store, &mut i, &events)?;
            let text = format!(
                "{linked} event(s) linked: {}",
                events.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            );
            store.update_incident(&i, &entry(EntryKind::Link, text.clone()))?;
            println!("incident {id}: {text}; {} more organization(s)", i.orgs.len() - orgs);
        }
        Command::Merge { from, into } => {
            let mut source = find(&*store, from)?;
            let mut target = find(&*store, into)?;
            source.merge_into(&mut target, now).map_err(Usage)?;
            let merged_in = format!("incident {from} merged in: {}", source.title);
            store.update_incident(&target, &entry(EntryKind::Merge, merged_in))?;
            store.update_incident(&source, &entry(EntryKind::Merge, format!("merged into incident {into}")))?;
            println!("incident {from} merged into {into}");
        }
        Command::Write { id, text } => {
            let i = find(&*store, id)?;
            if text.trim().is_empty() {
                anyhow::bail!(Usage("the message is empty".into()));
            }
            let writer = super::notify::writer(&config)?;
            let written = farol_notify::write_about(&*store, &writer, &config.notify.settings, &i, &text, None, now)
                .map_err(|e| match e {
                    farol_notify::QueueError::Nobody(why) => anyhow::Error::from(Usage(why)),
                    e => e.into(),
                })?;
            for w in written {
                if w.recipients.is_empty() {
                    println!("{}: no contact takes e-mail (`farol org edit` adds one)", w.org);
                } else {
                    println!("{}: queued for {}", w.org, w.recipients.join(", "));
                }
            }
        }
        Command::Task { id, task, undo } => {
            let mut i = find(&*store, id)?;
            let text = i.tick(task, (!undo).then_some((now, None))).map_err(Usage)?;
            store.update_incident(&i, &entry(EntryKind::Task, text.clone()))?;
            println!("incident {id}: {text}");
        }
    }
    Ok(())
}

const INTAKE_HELP: &str = "\
The Maildir is [incidents] maildir in farol.toml: the MTA delivers the center's incident address
into its new/ directory. Each message becomes an incident, or joins one when its subject carries
the incident's ticket ([CENTER #INC-42], as messages about incidents are sent) or it answers such
a message. Taken messages move to cur/; what is not e-mail moves to failed/. `farol serve` does
this every 30 seconds.";

#[derive(Debug, clap::Args)]
#[command(after_help = INTAKE_HELP)]
pub struct IntakeArgs {
    /// The Maildir, instead of the one in farol.toml
    #[arg(long)]
    maildir: Option<std::path::PathBuf>,
}

pub fn intake(dir: &Path, args: IntakeArgs) -> Result<()> {
    let (config, store) = super::open(dir)?;
    let maildir = args
        .maildir
        .or(config.maildir.clone())
        .ok_or_else(|| Usage("no Maildir: set [incidents] maildir in farol.toml, or give --maildir".into()))?;
    let taken =
        farol_notify::intake::take_in(&*store, &maildir, &config.center.name, &config.incidents, Timestamp::now())
            .map_err(|e| Usage(e.to_string()))?;
    for id in &taken.opened {
        println!("incident {id} opened");
    }
    for id in &taken.replies {
        println!("reply added to incident {id}");
    }
    for (path, reason) in &taken.failed {
        eprintln!("{}: {reason}", path.display());
    }
    println!(
        "{} opened, {} replies, {} taken before, {} not e-mail",
        taken.opened.len(),
        taken.replies.len(),
        taken.seen,
        taken.failed.len()
    );
    Ok(())
}

fn find(store: &dyn Store, id: i64) -> Result<Incident> {
    store.incident(id)?.ok_or_else(|| Missing(format!("no incident {id}: `farol incident list` shows them")).into())
}

/// A user of the center who can handle incidents.
fn analyst(store: &dyn Store, email: &str) -> Result<i64> {
    match store.user_by_email(email)? {
        Some(u) if u.role.is_center() && !u.disabled => Ok(u.id),
        Some(_) => Err(Usage(format!("{email} is not an active admin or analyst of the center")).into()),
        None => Err(Missing(format!("no user {email}: `farol user list` shows them")).into()),
    }
}

/// A classification type by name.
fn class_named(class: &str) -> Result<ClassificationType> {
    ClassificationType::parse(class).map(|c| c.value()).ok_or_else(|| {
        Usage(format!("unknown class {class:?}: a classification type such as phishing, infected-system or ddos"))
            .into()
    })
}

fn late_text(late: Overdue) -> &'static str {
    match late {
        Overdue::FirstResponse => "first response",
        Overdue::Resolution => "resolution",
    }
}
