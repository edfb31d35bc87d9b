//! The server: the REST API under `/api/v1`, the web portal, `/healthz` and `/metrics`.
//!
//! Every handler learns who is asking from [`auth::Principal`] and asks `farol-policy` what
//! that principal may see; the store applies the answer. This crate holds no SQL.

mod accounts;
mod api;
pub mod auth;
mod dashboard;
mod incidents;
mod metrics;
mod openapi;
mod portal;
mod stats;
mod taxii;
pub mod tls;
pub mod totp;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use farol_model::Timestamp;
use farol_pipeline::{Experts, Feed};
use farol_store::{AuditEntry, Store, StoreError, User};

use crate::auth::{Credential, Principal};
pub use crate::metrics::Metrics;
pub use crate::stats::StatsConfig;

/// What the server is told by the binary that starts it.
pub struct Config {
    /// The national center's name, shown in the portal.
    pub center: String,
    /// The certificate and key when the server speaks TLS; cookies then get `Secure` and
    /// responses HSTS.
    pub tls: Option<tls::Tls>,
    /// The feeds reports may be uploaded for.
    pub feeds: BTreeMap<String, Feed>,
    pub experts: Experts,
    /// How notifications are written, for their preview in the portal.
    pub notify: Arc<Notify>,
    /// How incidents are handled: deadlines, playbooks, files.
    pub incidents: farol_model::incident::Handling,
    /// The statistics page's nation, peers, marks and IP data.
    pub stats: StatsConfig,
    /// Uploaded reports are only archived: `farol worker` processes process them.
    pub queue: bool,
}

/// The notification settings and writer, as `farol notify` uses them.
#[derive(Debug)]
pub struct Notify {
    pub settings: farol_notify::Settings,
    pub writer: Arc<farol_notify::Writer>,
    /// Whether queued messages are sent (a sender and an SMTP server are configured); else they
    /// wait in the outbox.
    pub sends: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config").field("center", &self.center).field("tls", &self.tls.is_some()).finish_non_exhaustive()
    }
}

/// The state every handler shares.
pub struct App {
    pub store: Arc<dyn Store>,
    pub config: Config,
    pub metrics: Metrics,
    /// Login attempts per client address in the current minute.
    attempts: Mutex<BTreeMap<String, (i64, u32)>>,
    dashboards: dashboard::Cache,
    statistics: stats::Cache,
    taxii: taxii::Statuses,
    templates: minijinja::Environment<'static>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Login attempts allowed per client address and minute.
const ATTEMPTS_PER_MINUTE: u32 = 10;

impl App {
    pub fn new(store: Arc<dyn Store>, config: Config) -> Arc<App> {
        Arc::new(App {
            store,
            config,
            metrics: Metrics::default(),
            attempts: Mutex::new(BTreeMap::new()),
            dashboards: dashboard::Cache::default(),
            statistics: stats::Cache::default(),
            taxii: taxii::Statuses::default(),
            templates: portal::templates(),
        })
    }

    /// Runs store work off the async threads.
    pub(crate) async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, Failure> {
        let app = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(app.store.as_ref()))
            .await
            .map_err(|e| Failure::internal(e.to_string()))?
            .map_err(Failure::from)
    }

    /// Counts a login attempt from `client`; false when it is over the limit.
    pub(crate) fn attempt(&self, client: &str) -> bool {
        let minute = Timestamp::now().secs() / 60;
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        attempts.retain(|_, (m, _)| *m == minute);
        let (_, n) = attempts.entry(client.to_owned()).or_insert((minute, 0));
        *n += 1;
        *n <= ATTEMPTS_PER_MINUTE
    }

    /// Writes an audit entry; a failure to audit is logged, never hidden.
    pub(crate) async fn audit(
        self: &Arc<Self>,
        who: Option<&User>,
        from: SocketAddr,
        action: &str,
        target: Option<String>,
    ) {
        let entry = AuditEntry {
            at: Timestamp::now(),
            user: who.map(|u| u.id),
            org: who.map(|u| u.org),
            action: action.to_owned(),
            target,
            ip: Some(from.ip().to_string()),
            detail: None,
        };
        if let Err(e) = self.blocking(move |s| s.audit(&entry)).await {
            tracing::error!(error = %e.message, "cannot write the audit log");
        }
    }

    /// Who is asking: an API token in `Authorization: Bearer`, or a session cookie.
    pub(crate) async fn principal(self: &Arc<Self>, headers: &HeaderMap) -> Result<Option<Principal>, Failure> {
        let now = Timestamp::now();
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
            let Some(token) = token else {
                return Err(Failure::new(StatusCode::UNAUTHORIZED, "expected Authorization: Bearer TOKEN"));
            };
            let hash = auth::digest(token);
            let found = self.blocking(move |s| s.token(&hash, now)).await?;
            return match found {
                Some((t, user)) if t.is_valid(now) && !user.disabled => {
                    Ok(Some(Principal::new(user, Credential::Token(t.scope))))
                }
                _ => Err(Failure::new(StatusCode::UNAUTHORIZED, "the token is unknown, expired or revoked")),
            };
        }
        let Some(id) = cookie(headers, auth::SESSION_COOKIE) else { return Ok(None) };
        let hash = auth::digest(&id);
        let session = self.blocking(move |s| s.session(&hash)).await?;
        match session {
            Some(s) if auth::session_alive(&s, now) => {
                // A write per request would queue every page behind the store's writer: the
                // idle timeout only needs to know the last minute.
                if now.secs() - s.seen_at.secs() >= 60 {
                    self.blocking(move |st| st.touch_session(&hash, now)).await?;
                }
                Ok(Some(Principal::new(s.user, Credential::Session { hash, csrf: s.csrf })))
            }
            Some(_) => {
                self.blocking(move |st| st.remove_session(&hash)).await?;
                Ok(None)
            }
            None => Ok(None),
        }
    }
}

/// A cookie's value from the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// An error answer: a status and a message that says what to do.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
}

impl Failure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure { status, message: message.into() }
    }

    pub fn bad(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found() -> Failure {
        Failure::new(StatusCode::NOT_FOUND, "not found")
    }

    pub fn forbidden() -> Failure {
        Failure::new(StatusCode::FORBIDDEN, "your role does not allow this")
    }

    pub fn internal(detail: String) -> Failure {
        tracing::error!(%detail, "internal error");
        Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; the server log has the details")
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        match e {
            StoreError::Conflict(m) => Failure::new(StatusCode::CONFLICT, m),
            StoreError::NotFound(m) => Failure::new(StatusCode::NOT_FOUND, m),
            e => Failure::internal(e.to_string()),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, axum::Json(serde_json::json!({ "error": self.message }))).into_response()
    }
}

/// The whole application.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route("/metrics", axum::routing::get(metrics::render))
        .nest("/api/v1", api::routes())
        .merge(taxii::routes())
        .route("/misp/{file}", axum::routing::get(api::misp_feed))
        .merge(portal::routes())
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&app), around))
        .with_state(app)
}

/// Around every request: a request id, security headers, a log line and the latency metric.
async fn around(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = auth::secret()[..16].to_owned();
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    // A handler may have set a stricter one (files for download: a sandbox).
    if !h.contains_key("content-security-policy") {
        set(
            h,
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        );
    }
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "x-request-id", &id);
    if app.config.tls.is_some() {
        set(h, "strict-transport-security", "max-age=31536000; includeSubDomains");
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    app.metrics.request(status, elapsed);
    tracing::info!(request = %id, %method, path, status, ms = elapsed.as_secs_f64() * 1e3, "request");
    response
}

/// Serves until `shutdown` completes, then finishes the requests in flight; over TLS when the
/// configuration has a certificate.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    let tls = app.config.tls.clone();
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => axum::serve(listener, service).with_graceful_shutdown(shutdown).await,
        Some(tls) => {
            // `tap_io` only gives the listener the peer-address plumbing that axum implements
            // for wrapped listeners.
            let listener = tls::TlsListener::new(listener, tls)?.tap_io(|_| {});
            axum::serve(listener, service).with_graceful_shutdown(shutdown).await
        }
    }
}
