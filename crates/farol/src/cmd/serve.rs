//! `farol serve`: the API and the portal, and the feed schedules, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use farol_store::Store;

use crate::Usage;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  farol serve                          http://127.0.0.1:8080\n  \
    farol serve --listen 0.0.0.0:8443    every interface (with TLS from [server] in farol.toml)\n\n\
    Log in with a user made by `farol user add`; API clients send `Authorization: Bearer TOKEN`\n\
    (a token from `farol user token` or the portal's API tokens page).")]
pub struct Args {
    /// Address and port to listen on; port 0 takes a free one, which it prints [default:
    /// `[server] listen` in farol.toml, else 127.0.0.1:8080]
    #[arg(long, env = "FAROL_LISTEN")]
    listen: Option<SocketAddr>,
    /// How often to look for new IP data, organizations and warninglists (30s, 5m)
    #[arg(long, default_value = "30s", value_parser = |s: &str| crate::config::parse_duration(s)
        .map(|secs| std::time::Duration::from_secs(secs.unsigned_abs())))]
    reload_every: std::time::Duration,
}

impl Args {
    pub fn listening(listen: SocketAddr) -> Args {
        Args { listen: Some(listen), reload_every: std::time::Duration::from_secs(30) }
    }
}

pub fn run(dir: &Path, args: Args) -> Result<()> {
    let (config, store) = super::open(dir)?;
    let config = Arc::new(config);
    let live = Arc::new(farol_enrich::Live::new(crate::enrichment::snapshot(&config, &*store)?));
    let experts = crate::enrichment::experts(Arc::clone(&live));
    if store.users(None)?.is_empty() {
        eprintln!("no users yet: add one with `farol user add EMAIL --role admin --password-stdin`");
    }
    let listen = args.listen.or(config.server.listen).unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
    let tls = (config.server.tls.as_ref())
        .map(|(certificate, key)| farol_server::tls::Tls::from_pem_files(certificate, key))
        .transpose()
        .map_err(|e| Usage(format!("{e} (see [server] in farol.toml)")))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Loaded once: the portal previews and writes with them, the notification rounds too.
    let writer = Arc::new(super::notify::writer(&config)?);
    let server = farol_server::Config {
        center: config.center.name.clone(),
        tls,
        feeds: config.feeds.clone(),
        experts: Arc::clone(&experts),
        notify: Arc::new(farol_server::Notify {
            settings: config.notify.settings.clone(),
            writer: Arc::clone(&writer),
            sends: config.notify.has_sender && config.notify.smtp_url.is_some(),
        }),
        incidents: config.incidents.clone(),
        stats: farol_server::StatsConfig {
            country: config.center.country.clone(),
            peers: config.stats.peers.clone(),
            marks: config.stats.marks.clone(),
            live: Some(Arc::clone(&live)),
        },
        queue: config.queue,
    };
    let app = farol_server::App::new(Arc::clone(&store), server);
    let notifier = notifier(&config, writer)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Usage(format!("cannot listen on {}: {e} (is another farol running? try --listen)", listen)))?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let scheduled: Vec<_> = config.collectors.iter().filter(|c| c.schedule.is_some()).cloned().collect();
        let collectors = if scheduled.is_empty() {
            None
        } else {
            let workdir = config.data_dir.join("tmp");
            let ctx = farol_collect::Context { store: Arc::clone(&store), experts, workdir, queue: config.queue };
            let mut until = stopped.clone();
            Some(tokio::spawn(farol_collect::run_schedules(ctx, scheduled, async move {
                let _ = until.wait_for(|s| *s).await;
            })))
        };
        tokio::spawn(reload(Arc::clone(&config), Arc::clone(&store), live, args.reload_every));
        if let Some(n) = notifier {
            tokio::spawn(notify(n, Arc::clone(&store)));
        }
        tokio::spawn(derive(Arc::clone(&config), Arc::clone(&store)));
        for p in config.partners.iter().filter(|p| p.schedule.is_some()) {
            tokio::spawn(exchange(Arc::clone(&config), Arc::clone(&store), p.clone()));
        }
        if let Some(streams) = config.streams.clone() {
            tokio::spawn(super::stream::rounds(Arc::clone(&store), streams, false));
        }
        if let Some(maildir) = config.maildir.clone() {
            tokio::spawn(intake(Arc::clone(&config), maildir, Arc::clone(&store)));
        }
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        });
        // The address bound: with port 0, the one the system chose.
        let bound = listener.local_addr().unwrap_or(listen);
        println!("farol serving on {scheme}://{bound} (Ctrl-C stops)");
        if config.queue {
            println!(
                "reports are only archived here: `farol worker` processes process them ([processing] in farol.toml)"
            );
        }
        let mut until = stopped;
        farol_server::serve(listener, app, async move {
            let _ = until.wait_for(|s| *s).await;
        })
        .await
        .context("the server stopped")?;
        if let Some(c) = collectors {
            let _ = c.await;
        }
        anyhow::Ok(())
    })
}

/// Swaps in a new snapshot when what it is built from changed (`farol ipdata load` or
/// `farol org ...` in another process): reports that start afterwards use it, those in flight
/// finish with the one they started with.
async fn reload(
    config: Arc<crate::config::Config>,
    store: Arc<dyn Store>,
    live: Arc<farol_enrich::Live>,
    every: std::time::Duration,
) {
    let mut seen = None;
    loop {
        let (c, s, l) = (Arc::clone(&config), Arc::clone(&store), Arc::clone(&live));
        // The first pass only records what the startup snapshot was built from.
        let first = seen.is_none();
        let checked = tokio::task::spawn_blocking(move || {
            let now = crate::enrichment::fingerprint(&c, s.as_ref())?;
            if !first && seen != Some(now) {
                l.replace(crate::enrichment::snapshot(&c, s.as_ref())?);
                tracing::info!("new IP data, organizations or warninglists are in use");
            }
            anyhow::Ok(now)
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
        match checked {
            Ok(now) => seen = Some(now),
            Err(e) => tracing::error!(error = %e, "cannot load new enrichment data; keeping the current"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Takes in the incident Maildir every 30 seconds.
async fn intake(config: Arc<crate::config::Config>, maildir: std::path::PathBuf, store: Arc<dyn Store>) {
    loop {
        let (c, m, s) = (Arc::clone(&config), maildir.clone(), Arc::clone(&store));
        let taken = tokio::task::spawn_blocking(move || {
            let now = farol_model::Timestamp::now();
            farol_notify::intake::take_in(s.as_ref(), &m, &c.center.name, &c.incidents, now)
        })
        .await;
        match taken {
            Ok(Ok(t)) => {
                if !t.opened.is_empty() || !t.replies.is_empty() {
                    tracing::info!(opened = t.opened.len(), replies = t.replies.len(), "e-mail taken in");
                }
                for (path, reason) in &t.failed {
                    tracing::warn!(file = %path.display(), %reason, "e-mail not taken in");
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "e-mail intake failed"),
            Err(e) => tracing::error!(error = %e, "e-mail intake failed"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    }
}

/// Indicators from the reports finished since the last round, every 30 seconds.
async fn derive(config: Arc<crate::config::Config>, store: Arc<dyn Store>) {
    loop {
        let (c, s) = (Arc::clone(&config), Arc::clone(&store));
        let rules = c.indicator_rules.clone();
        let done = tokio::task::spawn_blocking(move || {
            farol_share::derive(s.as_ref(), &rules, &super::share::feed_sharing(&c), farol_model::Timestamp::now())
        })
        .await;
        match done {
            Ok(Ok(d)) if d.reports > 0 => {
                tracing::info!(reports = d.reports, sightings = d.sightings, "indicators derived")
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "deriving indicators failed"),
            Err(e) => tracing::error!(error = %e, "deriving indicators failed"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    }
}

/// Exchanges indicators with a partner center on its schedule.
async fn exchange(config: Arc<crate::config::Config>, store: Arc<dyn Store>, p: crate::config::Partner) {
    let Some(schedule) = p.schedule.clone() else { return };
    loop {
        tokio::time::sleep(schedule.delay(farol_model::Timestamp::now())).await;
        let partner = match super::share::partner(&config, store.as_ref(), &p) {
            Ok(partner) => partner,
            Err(e) => {
                tracing::error!(partner = %p.name, error = %e, "partner exchange not run");
                continue;
            }
        };
        let result = farol_collect::exchange(store.as_ref(), &partner).await;
        match &result {
            Ok(x) => tracing::info!(partner = %p.name, kept = x.kept, pushed = x.pushed, "partner exchange"),
            Err(e) => tracing::warn!(partner = %p.name, error = %e, "partner exchange failed"),
        }
        if let Err(e) = super::share::record(store.as_ref(), &p.name, result.as_ref().err()) {
            tracing::error!(error = %e, "cannot record the partner exchange");
        }
    }
}

/// What the notification rounds need, when notifications are configured.
struct Notifier {
    writer: Arc<farol_notify::Writer>,
    settings: farol_notify::Settings,
    mailer: farol_notify::Mailer,
}

fn notifier(config: &crate::config::Config, writer: Arc<farol_notify::Writer>) -> Result<Option<Notifier>> {
    let n = &config.notify;
    let (true, Some(url)) = (n.has_sender, n.smtp_url.as_deref()) else {
        eprintln!("notifications are off: set [notify] from and smtp_url in farol.toml to send them");
        return Ok(None);
    };
    Ok(Some(Notifier { writer, settings: n.settings.clone(), mailer: super::notify::mailer(config, url)? }))
}

/// A notification round every minute; skipped while another process (`farol notify`) runs one.
async fn notify(n: Notifier, store: Arc<dyn Store>) {
    let n = Arc::new(n);
    loop {
        let (n2, s) = (Arc::clone(&n), Arc::clone(&store));
        let round = tokio::task::spawn_blocking(move || {
            let Some(_lock) = s.lock(super::notify::LOCK, false)? else { return anyhow::Ok(None) };
            let select = farol_notify::Selection::default();
            let now = farol_model::Timestamp::now();
            Ok(Some(farol_notify::run(s.as_ref(), &n2.writer, &n2.settings, &n2.mailer, select, now)?))
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
        match round {
            Ok(Some(r)) => {
                if !r.queued.messages.is_empty() || r.delivered.sent > 0 {
                    tracing::info!(queued = r.queued.messages.len(), sent = r.delivered.sent, "notification round");
                }
                for (id, error) in &r.delivered.errors {
                    tracing::warn!(outbox = id, %error, "notification not sent");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "notification round failed"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
