//! `farol incident`: open, follow and close incidents from the command line.

use std::path::Path;

use anyhow::Result;
use farol_model::incident::{Entry, EntryKind, Incident, Overdue, Severity, Status, check_title};
use farol_model::{ClassificationType, Timestamp, Tlp};
use farol_store::{IncidentFilter, Store, Visibility};

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
  farol incident show 7                      fields, deadlines, events and timeline

Statuses: new, open, stalled, resolved, rejected; a closed incident can be opened again.
Deadlines per severity are in [incidents] in farol.toml.";

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
}

pub fn run(dir: &Path, args: Args) -> Result<()> {
    let (config, store) = super::open(dir)?;
    let now = Timestamp::now();
    let entry = |kind: EntryKind, text: String| Entry { at: now, user: None, kind, text };
    match args.command {
        Command::New { title, class, severity, tlp, org, event, assign, note } => {
            let class = ClassificationType::parse(&class).map(|c| c.value()).ok_or_else(|| {
                Usage(format!(
                    "unknown class {class:?}: a classification type such as phishing, infected-system or ddos"
                ))
            })?;
            let title = check_title(&title).map_err(Usage)?;
            let mut incident = Incident::new(&title, class, severity, tlp, now);
            incident.assignee = assign.as_deref().map(|a| analyst(&store, a)).transpose()?;
            incident.orgs = org.iter().map(|o| super::org::find(&store, o).map(|o| o.id)).collect::<Result<_>>()?;
            add_events(&store, &mut incident, &event)?;
            let mut text = format!("opened: {} ({}, {})", incident.title, incident.class, incident.severity);
            if let Some(note) = note {
                text = format!("{text}\n{note}");
            }
            let incident = store.add_incident(&incident, &entry(EntryKind::Created, text))?;
            println!("incident {} opened", incident.id);
        }
        Command::List { open, overdue, status, org, limit } => {
            let org = org.map(|o| super::org::find(&store, &o)).transpose()?;
            let filter = IncidentFilter { org: org.map(|o| o.id), status, open: open || overdue, limit };
            let names = super::org::names(&store)?;
            let mut table =
                Table::new(&["id", "opened", "severity", "status", "class", "tlp", "organizations", "late", "title"]);
            for i in store.incidents(&filter)? {
                let late = i.overdue(&config.deadlines, now);
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
            let i = find(&store, id)?;
            let names = super::org::names(&store)?;
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
            if let Some(late) = i.overdue(&config.deadlines, now) {
                println!("  overdue    {}", late_text(late));
            }
            println!("  orgs       {}", i.orgs.iter().map(|o| names(*o)).collect::<Vec<_>>().join(", "));
            println!("  events     {}", i.events.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "));
            println!("timeline:");
            for e in store.timeline(i.id)? {
                let head = format!("  {}  {:<14} {:<22} ", e.at, e.kind.as_str(), user(e.user)?);
                for (n, line) in e.text.lines().enumerate() {
                    let lead = if n == 0 { head.clone() } else { " ".repeat(head.chars().count()) };
                    println!("{lead}{line}");
                }
            }
        }
        Command::Set { id, status, severity, tlp, title, assign, unassign, org, remove_org, note } => {
            let before = find(&store, id)?;
            if let Some(into) = before.merged_into {
                anyhow::bail!(Usage(format!("incident {id} was merged into incident {into}: change that one")));
            }
            let mut i = before.clone();
            let mut changes = Vec::new();
            if let Some(to) = status {
                if !i.status.may_become(to) {
                    anyhow::bail!(Usage(format!(
                        "incident {id} is {}: it cannot become {to} (closed incidents can only be opened again)",
                        i.status
                    )));
                }
                i.set_status(to, now);
                changes.push(format!("status: {} → {to}", before.status));
            }
            if let Some(s) = severity.filter(|s| *s != i.severity) {
                changes.push(format!("severity: {} → {s}", i.severity));
                i.severity = s;
            }
            if let Some(t) = tlp.filter(|t| *t != i.tlp) {
                changes.push(format!("TLP: {} → {t}", i.tlp.as_str()));
                i.tlp = t;
            }
            if let Some(t) = title {
                i.title = check_title(&t).map_err(Usage)?;
                changes.push(format!("title: {}", i.title));
            }
            if let Some(a) = assign {
                i.assignee = Some(analyst(&store, &a)?);
                changes.push(format!("assigned to {a}"));
            } else if unassign {
                i.assignee = None;
                changes.push("unassigned".into());
            }
            for o in org {
                let o = super::org::find(&store, &o)?;
                if !i.orgs.contains(&o.id) {
                    i.orgs.push(o.id);
                    changes.push(format!("concerns {}", o.name));
                }
            }
            for o in remove_org {
                let o = super::org::find(&store, &o)?;
                if i.orgs.contains(&o.id) {
                    i.orgs.retain(|x| *x != o.id);
                    changes.push(format!("no longer concerns {}", o.name));
                }
            }
            if changes.is_empty() {
                anyhow::bail!(Usage("nothing to change: give --status, --severity, --tlp, --assign, --org ...".into()));
            }
            let mut text = changes.join("; ");
            if let Some(note) = note {
                text = format!("{text}\n{note}");
            }
            store.update_incident(&i, &entry(EntryKind::Change, text))?;
            println!("incident {id}: {}", changes.join("; "));
        }
        Command::Comment { id, text } => {
            find(&store, id)?;
            if text.trim().is_empty() {
                anyhow::bail!(Usage("the comment is empty".into()));
            }
            store.add_entry(id, &entry(EntryKind::Comment, text))?;
            println!("comment added to incident {id}");
        }
        Command::Link { id, events } => {
            let mut i = find(&store, id)?;
            let (before_events, before_orgs) = (i.events.len(), i.orgs.len());
            add_events(&store, &mut i, &events)?;
            let text = format!(
                "{} event(s) linked: {}",
                i.events.len() - before_events,
                events.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            );
            store.update_incident(&i, &entry(EntryKind::Link, text.clone()))?;
            println!("incident {id}: {text}; {} more organization(s)", i.orgs.len() - before_orgs);
        }
        Command::Merge { from, into } => {
            if from == into {
                anyhow::bail!(Usage("an incident cannot be merged into itself".into()));
            }
            let mut source = find(&store, from)?;
            let mut target = find(&store, into)?;
            if source.merged_into.is_some() || !target.status.is_open() {
                anyhow::bail!(Usage(format!(
                    "incident {from} must not be merged already, and incident {into} must be open"
                )));
            }
            for o in &source.orgs {
                if !target.orgs.contains(o) {
                    target.orgs.push(*o);
                }
            }
            add_events(&store, &mut target, &source.events)?;
            target.tlp = target.tlp.max(source.tlp);
            target.severity = target.severity.max(source.severity);
            store.update_incident(
                &target,
                &entry(EntryKind::Merge, format!("incident {from} merged in: {}", source.title)),
            )?;
            source.merged_into = Some(into);
            if source.status.is_open() {
                source.set_status(Status::Rejected, now);
            }
            store.update_incident(&source, &entry(EntryKind::Merge, format!("merged into incident {into}")))?;
            println!("incident {from} merged into {into}");
        }
    }
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

/// Adds events (which must exist) and the organizations of their networks.
fn add_events(store: &dyn Store, i: &mut Incident, events: &[i64]) -> Result<()> {
    for &id in events {
        let e = store.event(id, &Visibility::All)?.ok_or_else(|| Missing(format!("no event {id}")))?;
        if !i.events.contains(&id) {
            i.events.push(id);
        }
        for o in e.routing.orgs {
            if !i.orgs.contains(&o) {
                i.orgs.push(o);
            }
        }
    }
    Ok(())
}

fn late_text(late: Overdue) -> &'static str {
    match late {
        Overdue::FirstResponse => "first response",
        Overdue::Resolution => "resolution",
    }
}
