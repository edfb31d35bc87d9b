//! The web portal: server-rendered pages (templates escape everything they print), forms
//! protected by CSRF tokens, and the same policy as the API behind every page.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Multipart, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use farol_model::org::{OrgId, Role};
use farol_model::{Field, Timestamp};
use farol_pipeline::Ingested;
use farol_policy::{Action, may};
use farol_store::{StoredEvent, TokenScope};
use minijinja::{Environment, Value, context};

use crate::accounts::{Change, NewUser};
use crate::api::event_query;
use crate::auth::{self, Credential, Principal};
use crate::{App, Failure, cookie};

const LOGIN_COOKIE: &str = "farol_login";

pub(crate) fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, text) in [
        ("base.html", include_str!("../templates/base.html")),
        ("login.html", include_str!("../templates/login.html")),
        ("dashboard.html", include_str!("../templates/dashboard.html")),
        ("events.html", include_str!("../templates/events.html")),
        ("event.html", include_str!("../templates/event.html")),
        ("upload.html", include_str!("../templates/upload.html")),
        ("orgs.html", include_str!("../templates/orgs.html")),
        ("tokens.html", include_str!("../templates/tokens.html")),
        ("users.html", include_str!("../templates/users.html")),
        ("password.html", include_str!("../templates/password.html")),
        ("audit.html", include_str!("../templates/audit.html")),
        ("notifications.html", include_str!("../templates/notifications.html")),
        ("notification.html", include_str!("../templates/notification.html")),
        ("incidents.html", include_str!("../templates/incidents.html")),
        ("incident.html", include_str!("../templates/incident.html")),
        ("error.html", include_str!("../templates/error.html")),
        ("stats.html", include_str!("../templates/stats.html")),
        ("sharing.html", include_str!("../templates/sharing.html")),
    ] {
        env.add_template(name, text).unwrap_or_else(|e| panic!("template {name}: {e}"));
    }
    env
}

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(dashboard))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/events", get(events))
        .route("/events.csv", get(export))
        .route("/events/{id}", get(event))
        .route("/upload", get(upload_page).post(upload))
        .route("/orgs", get(orgs))
        .route("/password", get(password_page).post(change_password))
        .route("/users", get(users).post(add_user))
        .route("/users/{id}/{change}", post(change_user))
        .route("/tokens", get(tokens).post(new_token))
        .route("/tokens/{id}/revoke", post(revoke_token))
        .route("/audit", get(audit))
        .route("/notifications", get(notifications))
        .route("/stats", get(stats))
        .route("/sharing", get(sharing))
        .route("/communities", post(add_community))
        .route("/indicators", post(share_indicator))
        .route("/communities/{id}/{change}", post(change_community))
        .route("/incidents", get(incidents).post(report_incident))
        .route("/incidents/{id}", get(incident))
        .route("/incidents/{id}/comments", post(comment))
        .route("/incidents/{id}/change", post(change_incident))
        .route("/incidents/{id}/events", post(link_events))
        .route("/incidents/{id}/merge", post(merge))
        .route("/incidents/{id}/tasks/{n}", post(task))
        .route("/incidents/{id}/messages", post(write_to_orgs))
        .route("/incidents/{id}/files/{file}", get(incident_file))
        .route("/searches", post(save_search))
        .route("/notifications/preview", get(notification_preview))
        .route(
            "/static/farol.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], include_str!("../static/farol.css")) }),
        )
}

/// A page: its template rendered with what every page needs.
fn page(app: &App, name: &str, who: Option<&Principal>, ctx: Value) -> Response {
    let common = context! {
        center => app.config.center,
        user => who.map(|p| context! { email => p.user.email, role => p.user.role.as_str() }),
        csrf => who.map(Principal::csrf),
        center_role => who.is_some_and(|p| p.user.role.is_center()),
        can_audit => who.is_some_and(|p| may(&p.viewer, Action::ReadAudit(farol_policy::audit_scope(&p.viewer)))),
        can_users => who.is_some_and(|p| may(&p.viewer, Action::ReadUsers(p.user.org))),
        can_notifications => who.is_some_and(|p| may(&p.viewer, Action::ReadNotifications)),
    };
    match app.templates.get_template(name).and_then(|t| t.render(context! { ..common, ..ctx })) {
        Ok(html) => Html(html).into_response(),
        Err(e) => Failure::internal(format!("template {name}: {e}")).into_response(),
    }
}

fn error_page(app: &App, who: Option<&Principal>, f: Failure) -> Response {
    let status = f.status;
    let mut r = page(app, "error.html", who, context! { status => status.to_string(), message => f.message });
    *r.status_mut() = status;
    r
}

/// The logged-in user of a page; a request without a session goes to the login page.
struct Portal(Principal);

impl FromRequestParts<Arc<App>> for Portal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Portal, Response> {
        match app.principal(&parts.headers).await {
            Ok(Some(p)) => Ok(Portal(p)),
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(f) => Err(error_page(app, None, f)),
        }
    }
}

/// The refusal of a form that does not carry the session's CSRF token.
fn refused(app: &App, p: &Principal, csrf: &str) -> Option<Response> {
    (!p.may_write(Some(csrf)))
        .then(|| error_page(app, Some(p), Failure::new(StatusCode::FORBIDDEN, "The form expired; reload the page.")))
}

fn cookie_header(app: &App, name: &str, value: &str, max_age: i64, same_site: &str) -> HeaderValue {
    let secure = if app.config.tls.is_some() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn login_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Ok(Some(_)) = app.principal(&headers).await {
        return Redirect::to("/").into_response();
    }
    login_form(&app, "", None)
}

/// The login form with a fresh double-submit token in a cookie and in the form.
fn login_form(app: &App, email: &str, error: Option<&str>) -> Response {
    let token = auth::secret();
    let mut r = page(app, "login.html", None, context! { login_csrf => token, email => email, error => error });
    r.headers_mut().append(header::SET_COOKIE, cookie_header(app, LOGIN_COOKIE, &token, 3600, "Strict"));
    if error.is_some() {
        *r.status_mut() = StatusCode::UNAUTHORIZED;
    }
    r
}

#[derive(serde::Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    csrf: String,
    /// The one-time code, for users with a second factor.
    #[serde(default)]
    code: String,
}

async fn login(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let from = addr.ip().to_string();
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !auth::same(&form.csrf, &expected) {
        return login_form(&app, &form.email, Some("The form expired; please try again."));
    }
    if !app.attempt(&from) {
        let mut r = login_form(&app, &form.email, Some("Too many attempts from your address; wait a minute."));
        *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return r;
    }
    let now = Timestamp::now();
    let email = form.email.trim().to_owned();
    let user = match app.blocking(move |s| s.user_by_email(&email)).await {
        Ok(u) => u,
        Err(f) => return error_page(&app, None, f),
    };
    let wrong = "The e-mail address, the password or the one-time code is wrong, or the account is \
                 locked (for 15 minutes after 5 failed attempts).";
    let Some(mut user) = user else {
        auth::verify_nobody(&form.password);
        app.audit(None, addr, "login-failed", Some(form.email.clone())).await;
        return login_form(&app, &form.email, Some(wrong));
    };
    let locked = user.locked_until.is_some_and(|t| t > now);
    let ok = password_matches(&user, &form.password).await
        && user.totp.as_deref().is_none_or(|secret| crate::totp::verify(secret, &form.code, now.secs()));
    if !ok || locked || user.disabled {
        if !ok {
            count_failure(&mut user, now);
            let u = user.clone();
            if let Err(f) = app.blocking(move |s| s.update_user(&u)).await {
                return error_page(&app, None, f);
            }
        }
        app.audit(Some(&user), addr, "login-failed", Some(user.email.clone())).await;
        return login_form(&app, &form.email, Some(wrong));
    }
    user.failures = 0;
    user.locked_until = None;
    // A new session id at every login: an id planted before login is worth nothing.
    let (id, csrf) = (auth::secret(), auth::secret());
    let hash = auth::digest(&id);
    let u = user.clone();
    if let Err(f) = app
        .blocking(move |s| {
            s.update_user(&u)?;
            s.add_session(&hash, u.id, &csrf, now)
        })
        .await
    {
        return error_page(&app, None, f);
    }
    app.audit(Some(&user), addr, "login", None).await;
    let mut r = Redirect::to("/").into_response();
    let h = r.headers_mut();
    h.append(header::SET_COOKIE, cookie_header(&app, auth::SESSION_COOKIE, &id, auth::ABSOLUTE_TIMEOUT_SECS, "Lax"));
    h.append(header::SET_COOKIE, cookie_header(&app, LOGIN_COOKIE, "", 0, "Strict"));
    r
}

/// Whether `password` is the user's (argon2 runs off the async threads).
pub(crate) async fn password_matches(user: &farol_store::User, password: &str) -> bool {
    let (hash, password) = (user.password.clone(), password.to_owned());
    tokio::task::spawn_blocking(move || hash.is_some_and(|h| auth::verify_password(&h, &password)))
        .await
        .unwrap_or(false)
}

/// Counts a wrong password: the fifth in a row locks the account's logins for a while.
pub(crate) fn count_failure(user: &mut farol_store::User, now: Timestamp) {
    user.failures += 1;
    if user.failures >= auth::LOCKOUT_AFTER {
        user.locked_until = now.add_secs(auth::LOCKOUT_SECS);
        user.failures = 0;
    }
}

async fn password_page(State(app): State<Arc<App>>, Portal(p): Portal) -> Response {
    page(&app, "password.html", Some(&p), context! {})
}

#[derive(serde::Deserialize)]
struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    repeat: String,
}

/// A user changes its own password, giving the current one (a wrong one counts towards the
/// lockout, as at login).
async fn change_password(
    State(app): State<Arc<App>>,
    Portal(p): Portal,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    axum::Form(form): axum::Form<PasswordForm>,
) -> Response {
    if let Some(r) = refused(&app, &p, &form.csrf) {
        return r;
    }
    let again = |message: &str| page(&app, "password.html", Some(&p), context! { error => message });
    let now = Timestamp::now();
    // As at login: while locked, not even the right password is tried.
    if p.user.locked_until.is_some_and(|t| t > now) {
        return again("Too many wrong passwords: try again in 15 minutes.");
    }
    let mut user = p.user.clone();
    if !password_matches(&user, &form.current).await {
        count_failure(&mut user, now);
        if let Err(f) = app.blocking(move |s| s.update_user(&user)).await {
            return error_page(&app, Some(&p), f);
        }
        app.audit(Some(&p.user), addr, "password-change-failed", Some(p.user.email.clone())).await;
        return again("The current password is wrong.");
    }
    if form.new != form.repeat {
        return again("The two new passwords differ.");
    }
    let new = form.new.clone();
    user.password = match tokio::task::spawn_blocking(move || auth::hash_password(&new)).await {
        Ok(Ok(hash)) => Some(hash),
        Ok(Err(e)) => return again(&format!("The new password cannot be used: {e}.")),
        Err(e) => return error_page(&app, Some(&p), Failure::internal(e.to_string())),
    };
    user.failures = 0;
    if let Err(f) = app.blocking(move |s| s.update_user(&user)).await {
        return error_page(&app, Some(&p), f);
    }
    app.audit(Some(&p.user), addr, "password-change", Some(p.user.email.clone())).await;
    page(&app, "password.html", Some(&p), context! { changed => true })
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(State(app): State<Arc<App>>, Portal(p): Portal, axum::Form(form): axum::Form<CsrfForm>) -> Response {
    if let Some(r) = refused(&app, &p, &form.csrf) {
        return r;
    }
    if let Credential::Session { hash, .. } = p.credential
        && let Err(f) = app.blocking(move |s| s.remove_session(&hash)).await
    {
        return error_page(&app, None, f);
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(header::SET_COOKIE, cookie_header(&app, auth::SESSION_COOKIE, "", 0, "Lax"));
    r
}

/// The dashboard: over the last 24 hours for the center, over the last 7 days (with their trend)
/// for an organization's users.
async fn dashboard(State(app): State<Arc<App>>, Portal(p): Portal) -> Response {
    let center = p.user.role.is_center();
    let since = if center { "24h" } else { "7d" };
    let params = BTreeMap::from([("since".to_owned(), since.to_owned())]);
    let q = match event_query(&params, &p) {
        Ok(q) => q,
        Err(f) => return error_page(&app, Some(&p), f),
    };
    let feeds = async { if center { app.blocking(|s| s.feed_health(Timestamp::now())).await } else { Ok(Vec::new()) } };
    let incidents = async { if center { app.incident_figures().await.map(Some) } else { Ok(None) } };
    let (figures, feeds, incidents) = match tokio::try_join!(app.figures(since, q), feeds, incidents) {
        Ok(v) => v,
        Err(f) => return error_page(&app, Some(&p), f),
    };
    let (t, names) = (&figures.tally, &figures.names);
    let name = |id: &OrgId| names.get(id).cloned().unwrap_or_else(|| format!("organization {id}"));
    let by_type: Vec<(&str, u64)> = top(&t.by_type).into_iter().map(|(k, n)| (k.as_str(), n)).collect();
    // Other organizations' names are the center's to see (an event can be in several networks).
    let by_org = if center { top(&t.by_org) } else { Vec::new() };
    let top_orgs: Vec<Value> =
        by_org.into_iter().map(|(id, n)| context! { id => id.0, name => name(&id), events => n }).collect();
    let feeds: Vec<Value> = feeds
        .iter()
        .map(|f| {
            context! {
                feed => f.feed, last_success => f.last_success.map(|t| t.to_rfc3339()),
                last_error => f.last_error.as_ref().map(|(t, e)| format!("{}: {e}", t.to_rfc3339())),
                events_24h => f.events_24h, rejects_24h => f.rejects_24h,
            }
        })
        .collect();
    page(
        &app,
        "dashboard.html",
        Some(&p),
        context! {
            total => t.events, by_type => by_type, by_asn => top(&t.by_asn), top_orgs => top_orgs,
            trend => trend(t, 7), since => since, feeds => feeds, org_name => name(&p.user.org),
            incidents => incidents.map(Value::from_serialize),
        },
    )
}

/// The ten largest counts, largest first.
fn top<K: Ord + Copy>(counts: &BTreeMap<K, u64>) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = counts.iter().map(|(k, n)| (*k, *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(10);
    v
}

/// The last `days` days' counts as bars of an inline SVG chart (the counts are in the table
/// beside it): day, count, bar height in percent of the largest.
fn trend(t: &farol_store::Tally, days: i64) -> Vec<Value> {
    let today = Timestamp::now().micros().div_euclid(86_400_000_000);
    let counts: Vec<(Timestamp, u64)> = (today - days + 1..=today)
        .filter_map(|d| Timestamp::from_micros(d * 86_400_000_000))
        .map(|day| (day, t.by_day.get(&day).copied().unwrap_or(0)))
        .collect();
    let max = counts.iter().map(|c| c.1).max().unwrap_or(0).max(1);
    counts
        .into_iter()
        .enumerate()
        .map(|(i, (day, n))| {
            let height = n * 100 / max;
            context! { day => day.to_rfc3339()[..10].to_owned(), events => n, x => i * 40 + 4, height => height, y => 100 - height }
        })
        .collect()
}

/// The filter form's fields, echoed back.
const FILTERS: [&str; 6] = ["since", "until", "cidr", "asn", "type", "feed"];

fn query_string(params: &BTreeMap<String, String>) -> String {
    let mut s = String::new();
    for (k, v) in params.iter().filter(|(k, v)| k.as_str() != "after" && !v.is_empty()) {
        if !s.is_empty() {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                s.push(b as char);
            } else {
                s.push_str(&format!("%{b:02X}"));
            }
        }
    }
    s
}

async fn events(
    State(app): State<Arc<App>>,
    Portal(p): Portal,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let echo: BTreeMap<&str, String> =
        FILTERS.iter().map(|k| (*k, params.get(*k).cloned().unwrap_or_default())).collect();
    let mut params = params.clone();
    params.entry("limit".into()).or_insert_with(|| "50".into());
    let (events, next, error) = match event_query(&params, &p) {
        Ok(q) => {
            let limit = q.limit;
            match app.blocking(move |s| s.events(&q)).await {
                Ok(page) => {
                    let next = (page.len() == limit).then(|| page.last().map(|e| e.cursor().to_string())).flatten();
                    (page, next, None)
                }
                Err(f) => return error_page(&app, Some(&p), f),
            }
        }
        Err(f) => (Vec::new(), None, Some(f.message)),
    };
    let text = |e: &StoredEvent, f: Field| e.event.get(f).map(|v| v.to_text()).unwrap_or_default();
    let rows: Vec<Value> = events
        .iter()
        .map(|e| {
            context! {
                id => e.id, time => e.event.time().map(|t| t.to_rfc3339()).unwrap_or_default(),
                type => text(e, Field::ClassificationType), ip => text(e, Field::SourceIp),
                port => text(e, Field::SourcePort), asn => text(e, Field::SourceAsn),
                cc => text(e, Field::SourceGeolocationCc), identifier => text(e, Field::ClassificationIdentifier),
                tlp => text(e, Field::Tlp),
            }
        })
        .collect();
    page(
        &app,
        "events.html",
        Some(&p),
        context! { events => rows, next => next, error => error, q => echo, query_string => query_string(&params),
        search => query_string(&echo.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()) },
    )
}

async fn export(
    State(app): State<Arc<App>>,
    Portal(p): Portal,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(mut params): Query<BTreeMap<String, String>>,
) -> Response {
    params.insert("limit".into(), crate::api::MAX_PAGE.to_string());
    let mut q = match event_query(&params, &p) {
        Ok(q) => q,
        Err(f) => return error_page(&app, Some(&p), f),
    };
    // The whole selection, page by page, through the same visibility.
    let out = app
        .blocking(move |s| {
            let mut out = farol_model::export::csv_header();
            out.push('\n');
            loop {
                let page = s.events(&q)?;
                for e in &page {
                    out.push_str(&farol_model::export::csv_row(&e.event));
                    out.push('\n');
                }
                if page.len() < q.limit {
                    return Ok(out);
                }
                q.after = page.last().map(StoredEvent::cursor);
            }
        })
        .await;
    match out {
        Ok(csv) => {
            app.audit(Some(&p.user), addr, "export", Some(query_string(&params))).await;
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (header::CONTENT_DISPOSITION, "attachment; filename=\"events.csv\""),
                ],
                csv,
            )
                .into_response()
        }
        Err(f) => error_page(&app, Some(&p), f),
    }
}

async fn event(State(app): State<Arc<App>>, Portal(p): Portal, Path(raw): Path<String>) -> Response {
    let Ok(id) = raw.parse::<i64>() else { return error_page(&app, Some(&p), Failure::not_found()) };
    let visible = farol_policy::events(&p.viewer);
    let center = p.user.role.is_center();
    let found = app
        .blocking(move |s| {
            let Some(e) = s.event(id, &visible)? else { return Ok(None) };
            // The raw record is the center's: it may hold what the feed said about others.
            let raw = if center { Some(raw_record(s, &e)?) } else { None };
            let orgs = s.orgs()?;
            Ok(Some((e, raw, orgs)))
        })
        .await;
    let (e, raw, orgs) = match found {
        Ok(Some(v)) => v,
        Ok(None) => return error_page(&app, Some(&p), Failure::not_found()),
        Err(f) => return error_page(&app, Some(&p), f),
    };
    let provenance = e.event.extra.get("enrichment").cloned().unwrap_or_default();
    let mut fields: Vec<(String, String, String)> = Vec::new();
    e.event.for_each(|f, v| {
        let from = provenance.get(f.name()).and_then(|v| v.as_str()).map_or("feed", |s| s).to_owned();
        fields.push((f.name().to_owned(), v.to_text(), from));
    });
    for (k, v) in e.event.extra.iter() {
        let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        fields.push((format!("extra.{k}"), text, "feed".into()));
    }
    let names: Vec<String> = e
        .routing
        .orgs
        .iter()
        .filter(|o| center || **o == p.user.org)
        .filter_map(|o| orgs.iter().find(|x| x.id == *o).map(|x| x.name.clone()))
        .collect();
    page(
        &app,
        "event.html",
        Some(&p),
        context! {
            id => e.id, feed => e.feed, scope => e.routing.scope.as_str(), orgs => names, fields => fields,
            aggregate => e.aggregate.map(|a| context! { count => a.count, first_seen => a.first_seen.to_rfc3339(), last_seen => a.last_seen.to_rfc3339() }),
            raw => raw, report => e.report.0, offset => e.position.offset,
        },
    )
}

/// The bytes an event was read from, as text.
fn raw_record(s: &dyn farol_store::Store, e: &StoredEvent) -> Result<String, farol_store::StoreError> {
    use std::io::Read;
    const MAX: u64 = 64 << 10;
    let mut reader = s.raw(e.report)?;
    std::io::copy(&mut (&mut reader).take(e.position.offset), &mut std::io::sink())?;
    let mut bytes = Vec::new();
    reader.take(e.position.len.min(MAX)).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn upload_page(State(app): State<Arc<App>>, Portal(p): Portal) -> Response {
    upload_form(&app, &p, None, None)
}

fn upload_form(app: &App, p: &Principal, result: Option<String>, error: Option<String>) -> Response {
    if !may(&p.viewer, Action::Upload) {
        return error_page(app, Some(p), Failure::forbidden());
    }
    let feeds: Vec<&String> = app.config.feeds.keys().collect();
    let mut r =
        page(app, "upload.html", Some(p), context! { feeds => feeds, result => result, error => error.clone() });
    if error.is_some() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    r
}

async fn upload(
    State(app): State<Arc<App>>,
    Portal(p): Portal,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    mut form: Multipart,
) -> Response {
    let (mut csrf, mut feed, mut file) = (None, None, None);
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let file_name = field.file_name().map(str::to_owned);
                match field.bytes().await {
                    Ok(bytes) => match name.as_str() {
                        "csrf" => csrf = Some(String::from_utf8_lossy(&bytes).into_owned()),
                        "feed" => feed = Some(String::from_utf8_lossy(&bytes).into_owned()),
                        "file" => file = Some((file_name, bytes)),
                        _ => {}
                    },
                    Err(e) => return upload_form(&app, &p, None, Some(format!("The upload failed: {e}"))),
                }
            }
            Ok(None) => break,
            Err(e) => return upload_form(&app, &p, None, Some(format!("The upload failed: {e}"))),
        }
    }
    if let Some(r) = refused(&app, &p, csrf.as_deref().unwrap_or_default()) {
        return r;
    }
    if !may(&p.viewer, Action::Upload) {
        return error_page(&app, Some(&p), Failure::forbidden());
    }
    let (Some(feed), Some((name, bytes))) = (feed, file) else {
        return upload_form(&app, &p, None, Some("Choose a feed and a file.".into()));
    };
    match crate::api::ingest(&app, &feed, name, bytes).await {
        Ok(ingested) => {
            let message = match &ingested {
                Ingested::Processed(s) => {
                    let (r, c) = (&s.report, &s.report.counts);
                    format!(
                        "Report {}: {} new events, {} duplicates, {} rejected.",
                        r.id, c.events, c.duplicates, c.rejects
                    )
                }
                Ingested::AlreadyIngested(r) => format!("Already ingested as report {}.", r.id),
                Ingested::Queued(r) => format!("Report {}: stored; a worker processes it.", r.id),
            };
            app.audit(Some(&p.user), addr, "upload", Some(format!("feed {feed}"))).await;
            upload_form(&app, &p, Some(message), None)
        }
        Err(f) => upload_form(&app, &p, None, Some(f.message)),
    }
}

async fn orgs(State(app): State<Arc<App>>, Portal(p): Portal) -> Response {
    let all = match app.blocking(|s| s.orgs()).await {
        Ok(o) => o,
        Err(f) => return error_page(&app, Some(&p), f),
    };
    let rows: Vec<Value> = all
        .iter()
        .filter(|o| may(&p.viewer, Action::ReadOrg(o.id)))
        .map(|o| {
            context! {
                id => o.id.0, name => o.name, sector => o.sector.as_str(),
                assets => o.assets.iter().map(ToString::to_string).collect::<Vec<_>>(),
                contacts => o.contacts.iter().map(|c| c.email.clone()).collect::<Vec<_>>(),
            }
        })
        .collect();
    page(&app, "orgs.html", Some(&p), context! { orgs => rows })
}

async fn users(State(app): State<Arc<App>>, Portal(p): Portal) -> Response {
    users_page(&app, &p, None, None).await
}

/// The users the viewer may see, with what it may do to each; `made` is a user just added
/// and the password made for it.
async fn users_page(app: &Arc<App>, p: &Principal, made: Option<(String, String)>, error: Option<String>) -> Response {
    let (users, orgs) = match tokio::try_join!(app.visible_users(p), app.blocking(|s| s.orgs())) {
        Ok(v) => v,
        Err(f) => return error_page(app, Some(p), f),
    };
    let name = |id| orgs.iter().find(|o| o.id == id).map_or_else(|| id.to_string(), |o| o.name.clone());
    let rows: Vec<Value> = users
        .iter()
        .map(|u| {
            let manage = u.id != p.user.id && may(&p.viewer, Action::ManageUser(u.org, u.role));
            context! { id => u.id, email => u.email, org => name(u.org), role => u.role.as_str(),
            disabled => u.disabled, manage => manage }
        })
        .collect();
    // Where the viewer may add users, and as what.
    let targets: Vec<Value> = orgs
        .iter()
        .filter(|o| Role::ALL.iter().any(|&r| may(&p.viewer, Action::ManageUser(o.id, r))))
        .map(|o| context! { id => o.id.0, name => o.name, own => o.id == p.user.org })
        .collect();
    let roles: Vec<&str> = Role::ALL
        .iter()
        .filter(|&&r| orgs.iter().any(|o| may(&p.viewer, Action::ManageUser(o.id, r))))
        .map(|r| r.as_str())
        .collect();
    let made = made.map(|(email, password)| context! { email => email, password => password });
    page(
        app,
        "users.html",
        Some(p),
        context! { users => rows, targets => targets, roles => roles, made => made, error => error },
    )
}

#[derive(serde::Deserialize)]
struct UserForm {
    csrf: String,
    email: String,
    role: String,
    org: Option<i64>,
}

async fn add_user(
    State(app): State<Arc<App>>,
    Portal(p): Portal,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    axum::Form(form): axum::Form<UserForm>,
) -> Response {
    if let Some(r) = refused(&app, &p, &form.csrf) {
        return r;
    }
    let role = match form.role.parse::<Role>() {
        Ok(r) => r,
        Err(e) => return users_page(&app, &p, None, Some(e)).await,
    };
    let new = NewUser { email: form.email, role, org: form.org, password: None };
    match app.add_user(&p, addr, new).await {
        Ok((user, password)) => users_page(&app, &p, Some((user.email, password.unwrap_or_default())), None).await,
        Err(f) if f.status.is_client_error() => users_page(&app, &p, None, Some(f.message)).await,
        Err(f) => error_page(&app, Some(&p), f),
    }
}

async fn change_user(
    State(app): State<Arc<App>>,
    Portal(p): Portal,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path((raw, change)): Path<(String, String)>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Some(r) = refused(&app, &p, &form.csrf) {
        return r;
    }
    let disabled = match change.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return error_page(&app, Some(&p), Failure::not_found()),
    };
    let Ok(id) = raw.parse::<i64>() else { return error_page(&app, Some(&p), Failure::not_found()) };
    match app.change_user(&p, addr, id, Change { role: None, disabled: Some(disabled) }).await {
        Ok(_) => Redirect::to("/users").into_response(),
        Err(f) => error_page(&app, Some(&p), f),
    }
}

async fn tokens(State(app): State<Arc<App>>, Portal(p): Portal) -> Response {
    tokens_page(&app, &p, None, None).await
}

async fn tokens_page(app: &Arc<App>, p: &Principal, new_token: Option<String>, error: Option<String>) -> Response {
    let user = p.user.id;
    let list = match app.blocking(move |s| s.tokens(user)).await {
        Ok(l) => l,
        Err(f) => return error_page(app, Some(p), f),
    };
    let rows: Vec<Value> = list
        .iter()
        .map(|t| {
            context! {
                id => t.id, name => t.name, scope => t.scope.as_str(), created_at => t.created_at.to_rfc3339(),
                expires_at => t.expires_at.map(|t| t.to_rfc3339()), used_at => t.used_at.map(|t| t.to_rfc3339()),
                revoked_at => t.revoked_at.map(|t| t.to_rfc3339()),
            }
        })
        .collect();
    page(app, "tokens.html", Some(p), context! { tokens => rows, new_token => new_token, error => error })
}

#[derive(serde::Deserialize)]
struct TokenForm {
    csrf: String,
    name: String,
    scope: String,
    expires_days: String,
}

async fn new_token(
    State(app): State<Arc<App>>,
    Portal(p): Portal,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    if let Some(r) = refused(&app, &p, &form.csrf) {
        return r;
    }
    let scope = match form.scope.parse::<TokenScope>() {
        Ok(s) => s,
        Err(e) => return tokens_page(&app, &p, None, Some(e)).await,
    };
    let days = match form.expires_days.trim() {
        "" => None,
        d => match d.parse() {
            Ok(d) => Some(d),
            Err(_) => return tokens_page(&app, &p, None, Some("Expires after: a number of days.".into())).await,
        },
    };
    let name = form.name.trim();
    if name.is_empty() || name.len() > 100 {
        return tokens_page(&app, &p, None, Some("Give the token a name of 1 to 100 characters.".into())).await;
    }
    let (secret, token) = match auth::make_token(&p.user, name, scope, days) {
        Ok(t) => t,
        Err(e) => return tokens_page(&app, &p, None, Some(e)).await,
    };
    let hash = auth::digest(&secret);
    match app.blocking(move |s| s.add_token(&hash, &token)).await {
        Ok(t) => {
            app.audit(Some(&p.user), addr, "token-add", Some(format!("token {}", t.id))).await;
            tokens_page(&app, &p, Some(secret), None).await
        }
        Err(f) => error_page(&app, Some(&p), f),
    }
}

async fn revoke_token(
    State(app): State<Arc<App>>,
    Portal(p): Portal,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Some(r) = refused(&app, &p, &form.csrf) {
        return r;
    }
    let Ok(id) = raw.parse::<i64>() else { return error_page(&app, Some(&p), Failure::not_found()) };
    let user = p.user.id;
    let revoked = app.blocking(move |s| s.revoke_token(id, user, Timestamp::now())).await;
    match revoked {
        Ok(true) => {
            app.audit(Some(&p.user), addr, "token-revoke", Some(format!("token {id}"))).await;
            Redirect::to("/tokens").into_response()
        }
        Ok(false) => error_page(&app, Some(&p), Failure::not_found()),
        Err(f) => error_page(&app, Some(&p), f),
    }
}

async fn audit(State(app): State<Arc<App>>, Portal(p): Portal) -> Response {
    let scope = farol_policy::audit_scope(&p.viewer);
    if !may(&p.viewer, Action::ReadAudit(scope)) {
        return error_page(&app, Some(&p), Failure::forbidden());
    }
    let list = match app.blocking(move |s| s.audit_log(scope, 500)).await {
        Ok(l) => l,
        Err(f) => return error_page(&app, Some(&p), f),
    };
    let rows: Vec<Value> = list
        .iter()
        .map(|e| {
            context! { at => e.at.to_rfc3339(), user => e.user, org => e.org.map(|o| o.0), action => e.action,
            target => e.target, ip => e.ip }
        })
        .collect();
    page(&app, "audit.html", Some(&p), context! { entries => rows })
}

/// The digests each contact would get now (whatever its interval), and the outbox.
async fn stats(
    State(app): State<Arc<App>>,
    Portal(p): Portal,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let ask = match crate::stats::ask(&params) {
        Ok(a) => a,
        Err(f) => return error_page(&app, Some(&p), f),
    };
    // The same question by the same kind of viewer is answered from the last minute's figures.
    let key = format!("{:?} {ask:?}", farol_policy::statistics(&p.viewer));
    if let Some(ctx) = app.statistics.get(&key) {
        return page(&app, "stats.html", Some(&p), ctx);
    }
    let (config, viewer) = (app.config.stats.clone(), p.viewer);
    match app.blocking(move |s| crate::stats::view(s, &config, &viewer, &ask)).await {
        Ok(ctx) => {
            app.statistics.put(key, ctx.clone());
            page(&app, "stats.html", Some(&p), ctx)
        }
        Err(f) => error_page(&app, Some(&p), f),
    }
}

async fn notifications(State(app): State<Arc<App>>, Portal(p): Portal) -> Response {
    if !may(&p.viewer, Action::ReadNotifications) {
        return error_page(&app, Some(&p), Failure::not_found());
    }
    let notify = Arc::clone(&app.config.notify);
    let found = app
        .blocking(move |s| {
            let select = farol_notify::Selection { now: true, org: None };
            let digests = farol_notify::digests(s, &notify.settings, Timestamp::now(), select)?;
            let pending: Vec<Value> = digests
                .iter()
                .filter(|d| !d.events.is_empty())
                .map(|d| {
                    let subject = notify.writer.templates.render(&notify.settings, d, "preview").map(|r| r.subject);
                    let preview = format!("org={}&email={}", d.org.0, percent_encode(&d.contact.email));
                    context! {
                        preview, org_name => d.org_name, email => d.contact.email,
                        language => d.contact.language, interval => d.contact.interval.as_str(),
                        events => d.events.len(), truncated => d.truncated, muted => d.muted,
                        subject => subject.unwrap_or_else(|e| e.to_string()),
                    }
                })
                .collect();
            let names: std::collections::HashMap<_, _> = s.orgs()?.into_iter().map(|o| (o.id, o.name)).collect();
            let outbox: Vec<Value> = s
                .outbox(None, 100)?
                .iter()
                .map(|m| {
                    context! {
                        id => m.id, created => m.created.to_rfc3339(),
                        org => m.org.and_then(|o| names.get(&o).cloned()),
                        to => m.recipients.join(", "), subject => m.subject, events => m.events,
                        state => m.state.as_str(), attempts => m.attempts,
                        sent => m.sent_at.map(|t| t.to_rfc3339()), error => m.last_error,
                    }
                })
                .collect();
            Ok((pending, outbox))
        })
        .await;
    match found {
        Ok((pending, outbox)) => page(&app, "notifications.html", Some(&p), context! { pending, outbox }),
        Err(f) => error_page(&app, Some(&p), f),
    }
}

/// A value for a URL's query: every byte but the unreserved ones (RFC 3986) as `%XX`.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Debug, serde::Deserialize)]
struct PreviewQuery {
    org: i64,
    email: String,
}

/// One contact's digest as it would be written now.
async fn notification_preview(
    State(app): State<Arc<App>>,
    Portal(p): Portal,
    Query(q): Query<PreviewQuery>,
) -> Response {
    if !may(&p.viewer, Action::ReadNotifications) {
        return error_page(&app, Some(&p), Failure::not_found());
    }
    let notify = Arc::clone(&app.config.notify);
    let email = q.email.clone();
    let found = app
        .blocking(move |s| {
            let select = farol_notify::Selection { now: true, org: Some(OrgId(q.org)) };
            let digests = farol_notify::digests(s, &notify.settings, Timestamp::now(), select)?;
            Ok(digests
                .into_iter()
                .find(|d| d.contact.email == email)
                .map(|d| (notify.writer.templates.render(&notify.settings, &d, "preview"), d.org_name)))
        })
        .await;
    match found {
        Ok(Some((Ok(r), org))) => page(
            &app,
            "notification.html",
            Some(&p),
            context! { org, to => q.email, subject => r.subject, text => r.text,
            attachment => r.attachment_name, size => r.attachment.len() },
        ),
        Ok(Some((Err(e), _))) => error_page(&app, Some(&p), Failure::internal(e.to_string())),
        Ok(None) => error_page(&app, Some(&p), Failure::not_found()),
        Err(f) => error_page(&app, Some(&p), f),
    }
}

#[derive(serde::Deserialize)]
struct IncidentsShown {
    /// `open` or `overdue`; all when absent.
    #[serde(default)]
    show: String,
}

async fn incidents(State(app): State<Arc<App>>, Portal(p): Portal, Query(q): Query<IncidentsShown>) -> Response {
    incidents_page(&app, &p, &q.show, None).await
}

async fn incidents_page(app: &Arc<App>, p: &Principal, show: &str, error: Option<String>) -> Response {
    let list = match app.visible_incidents(p, show == "open", show == "overdue").await {
        Ok(l) => l,
        Err(f) => return error_page(app, Some(p), f),
    };
    let center = app.deadlines_for(p);
    let rows: Vec<Value> =
        list.iter().map(|i| Value::from_serialize(crate::incidents::incident_json(i, center))).collect();
    let mut r = page(app, "incidents.html", Some(p), context! { incidents => rows, error, show });
    if error.is_some() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    r
}

/// A multipart form: its text fields, and the files chosen in it (name, declared type, data).
struct Fields {
    text: BTreeMap<String, String>,
    files: Vec<crate::incidents::Given>,
}

impl Fields {
    async fn read(mut form: Multipart) -> Result<Fields, String> {
        let mut fields = Fields { text: BTreeMap::new(), files: Vec::new() };
        while let Some(field) = form.next_field().await.map_err(|e| format!("The form could not be read: {e}"))? {
            let name = field.name().unwrap_or_default().to_owned();
            let file = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(str::to_owned);
            let bytes = field.bytes().await.map_err(|e| format!("The form could not be read: {e}"))?;
            match file {
                // A file input left empty still sends a part, without a name or data.
                Some(file) if !file.is_empty() || !bytes.is_empty() => {
                    fields.files.push((file, content_type, bytes.to_vec()))
                }
                Some(_) => {}
                None => {
                    fields.text.insert(name, String::from_utf8_lossy(&bytes).into_owned());
                }
            }
        }
        Ok(fields)
    }

    fn get(&self, key: &str) -> String {
        self.text.get(key).cloned().unwrap_or_default()
    }
}

async fn report_incident(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Portal(p): Portal,
    form: Multipart,
) -> Response {
    let form = match Fields::read(form).await {
        Ok(f) => f,
        Err(e) => return incidents_page(&app, &p, "", Some(e)).await,
    };
    if let Some(r) = refused(&app, &p, &form.get("csrf")) {
        return r;
    }
    let report = crate::incidents::Report {
        title: form.get("title"),
        description: form.get("description"),
        class: Some(form.get("class")),
        affected: form.get("affected").lines().map(str::to_owned).collect(),
        files: Vec::new(),
    };
    match app.report_incident(&p, addr, report, form.files).await {
        Ok(i) => Redirect::to(&format!("/incidents/{}", i.id)).into_response(),
        Err(f) if f.status == StatusCode::BAD_REQUEST => incidents_page(&app, &p, "", Some(f.message)).await,
        Err(f) => error_page(&app, Some(&p), f),
    }
}

async fn incident(State(app): State<Arc<App>>, Portal(p): Portal, Path(raw): Path<String>) -> Response {
    incident_page(&app, &p, &raw, None, None).await
}

/// An incident's page; for the center, with what handling it needs: analysts, organizations,
/// saved searches and the choices of each field.
async fn incident_page(
    app: &Arc<App>,
    p: &Principal,
    raw: &str,
    error: Option<String>,
    done: Option<String>,
) -> Response {
    let Ok(id) = raw.parse::<i64>() else { return error_page(app, Some(p), Failure::not_found()) };
    let view = match app.incident_view(p, id).await {
        Ok(v) => v,
        Err(f) => return error_page(app, Some(p), f),
    };
    let handling = if may(&p.viewer, Action::ManageIncidents) {
        let (users, orgs, searches) = match app.blocking(|s| Ok((s.users(None)?, s.orgs()?, s.searches()?))).await {
            Ok(lists) => lists,
            Err(f) => return error_page(app, Some(p), f),
        };
        let names = |ids: &[farol_model::org::OrgId]| -> Vec<Value> {
            orgs.iter().filter(|o| ids.contains(&o.id)).map(|o| context! { id => o.id.0, name => o.name }).collect()
        };
        let i = &view.incident;
        Some(context! {
            analysts => users.iter().filter(|u| u.role.is_center() && !u.disabled)
                .map(|u| context! { id => u.id, email => u.email }).collect::<Vec<_>>(),
            orgs => names(&i.orgs),
            others => orgs.iter().filter(|o| !i.orgs.contains(&o.id))
                .map(|o| context! { id => o.id.0, name => o.name }).collect::<Vec<_>>(),
            searches => searches.iter().map(|s| context! { name => s.name, query => s.query }).collect::<Vec<_>>(),
            statuses => farol_model::incident::Status::ALL.iter()
                .filter(|s| **s == i.status || i.status.may_become(**s)).map(|s| s.as_str()).collect::<Vec<_>>(),
            severities => farol_model::incident::Severity::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            tlps => farol_model::Tlp::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            sends => app.config.notify.sends,
        })
    } else {
        None
    };
    let mut r = page(
        app,
        "incident.html",
        Some(p),
        context! { i => Value::from_serialize(view.json()), error, done, handling },
    );
    if error.is_some() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    r
}

/// After a form on an incident's page: back to the page, or the page with what was wrong.
async fn after(app: &Arc<App>, p: &Principal, raw: &str, done: Result<Option<String>, Failure>) -> Response {
    match done {
        Ok(None) => Redirect::to(&format!("/incidents/{raw}")).into_response(),
        Ok(Some(message)) => incident_page(app, p, raw, None, Some(message)).await,
        Err(f) if f.status == StatusCode::BAD_REQUEST => incident_page(app, p, raw, Some(f.message), None).await,
        Err(f) => error_page(app, Some(p), f),
    }
}

async fn comment(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Portal(p): Portal,
    Path(raw): Path<String>,
    form: Multipart,
) -> Response {
    let form = match Fields::read(form).await {
        Ok(f) => f,
        Err(e) => return after(&app, &p, &raw, Err(Failure::bad(e))).await,
    };
    if let Some(r) = refused(&app, &p, &form.get("csrf")) {
        return r;
    }
    let Ok(id) = raw.parse::<i64>() else { return error_page(&app, Some(&p), Failure::not_found()) };
    let done = app.comment(&p, addr, id, &form.get("text"), form.files).await.map(|_| None);
    after(&app, &p, &raw, done).await
}

/// The fields of the center's forms on an incident's page.
#[derive(serde::Deserialize)]
struct HandleForm {
    csrf: String,
    #[serde(flatten)]
    fields: BTreeMap<String, String>,
}

impl HandleForm {
    fn get(&self, key: &str) -> Option<String> {
        self.fields.get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }
}

/// Checks the form's CSRF token and the incident id, then runs `act`.
async fn handle_form<F>(app: &Arc<App>, p: &Principal, raw: &str, form: &HandleForm, act: F) -> Response
where
    F: AsyncFnOnce(i64) -> Result<Option<String>, Failure>,
{
    if let Some(r) = refused(app, p, &form.csrf) {
        return r;
    }
    let Ok(id) = raw.parse::<i64>() else { return error_page(app, Some(p), Failure::not_found()) };
    let done = act(id).await;
    after(app, p, raw, done).await
}

async fn change_incident(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Portal(p): Portal,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<HandleForm>,
) -> Response {
    let req = crate::incidents::ChangeRequest {
        status: form.get("status"),
        severity: form.get("severity"),
        tlp: form.get("tlp"),
        class: form.get("class"),
        title: form.get("title"),
        assignee: form.fields.contains_key("assignee").then(|| form.get("assignee")),
        add_orgs: form.get("add_org").and_then(|o| o.parse().ok()).into_iter().collect(),
        remove_orgs: form.get("remove_org").and_then(|o| o.parse().ok()).into_iter().collect(),
        note: form.get("note"),
    };
    handle_form(&app, &p, &raw, &form, async |id| app.change_incident(&p, addr, id, req).await.map(|_| None)).await
}

async fn link_events(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Portal(p): Portal,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<HandleForm>,
) -> Response {
    let events: Result<Vec<i64>, _> = form
        .get("events")
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .map(str::parse)
        .collect();
    handle_form(&app, &p, &raw, &form, async |id| {
        let events = events.map_err(|_| Failure::bad("events: event ids separated by commas or spaces"))?;
        let req = crate::incidents::LinkRequest { events, search: form.get("search"), query: None };
        let (linked, more) = app.link(&p, addr, id, req).await?;
        Ok(Some(if more {
            format!(
                "{linked} event(s) linked: the search finds more than {}; narrow it to link the rest.",
                crate::api::MAX_PAGE
            )
        } else {
            format!("{linked} event(s) linked.")
        }))
    })
    .await
}

async fn merge(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Portal(p): Portal,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<HandleForm>,
) -> Response {
    let into = form.get("into").and_then(|i| i.parse::<i64>().ok());
    handle_form(&app, &p, &raw, &form, async |id| {
        let into = into.ok_or_else(|| Failure::bad("into: the id of the incident to merge into"))?;
        app.merge(&p, addr, id, into).await?;
        Ok(Some(format!("Merged into incident {into}.")))
    })
    .await
}

async fn task(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Portal(p): Portal,
    Path((raw, n)): Path<(String, String)>,
    axum::Form(form): axum::Form<HandleForm>,
) -> Response {
    let done = form.get("done").is_some_and(|d| d == "true");
    let Ok(n) = n.parse::<usize>() else { return error_page(&app, Some(&p), Failure::not_found()) };
    handle_form(&app, &p, &raw, &form, async |id| app.task(&p, addr, id, n, done).await.map(|()| None)).await
}

async fn write_to_orgs(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Portal(p): Portal,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<HandleForm>,
) -> Response {
    let text = form.get("text").unwrap_or_default();
    handle_form(&app, &p, &raw, &form, async |id| {
        let written = app.write_to_orgs(&p, addr, id, text).await?;
        let said: Vec<String> = written
            .iter()
            .map(|w| match &w.recipients[..] {
                [] => format!("{} has no contact that takes e-mail", w.org),
                to => format!("queued for {} ({})", w.org, to.join(", ")),
            })
            .collect();
        Ok(Some(format!("Message {}.", said.join("; "))))
    })
    .await
}

async fn incident_file(State(app): State<Arc<App>>, Portal(p): Portal, Path((id, file)): Path<(i64, i64)>) -> Response {
    match app.incident_file(&p, id, file).await {
        Ok(f) => crate::incidents::download(f),
        Err(f) => error_page(&app, Some(&p), f),
    }
}

async fn save_search(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Portal(p): Portal,
    axum::Form(form): axum::Form<HandleForm>,
) -> Response {
    if let Some(r) = refused(&app, &p, &form.csrf) {
        return r;
    }
    let new = crate::api::NewSearch {
        name: form.get("name").unwrap_or_default(),
        query: form.get("query").unwrap_or_default(),
    };
    let query = new.query.clone();
    match app.save_search(&p, addr, new).await {
        Ok(()) => Redirect::to(&format!("/events?{query}")).into_response(),
        Err(f) => error_page(&app, Some(&p), f),
    }
}

/// Sharing: the indicators the viewer may have with their exports, its TAXII collections, and
/// the communities (the center manages them; an organization sees its own).
async fn sharing(State(app): State<Arc<App>>, Portal(p): Portal) -> Response {
    sharing_page(&app, &p, None).await
}

async fn sharing_page(app: &Arc<App>, p: &Principal, error: Option<String>) -> Response {
    let (communities, orgs) = match app.blocking(|s| Ok((s.communities()?, s.orgs()?))).await {
        Ok(v) => v,
        Err(f) => return error_page(app, Some(p), f),
    };
    let grants = farol_policy::indicators(&p.viewer, &communities);
    let q = farol_store::IndicatorQuery {
        grants,
        valid_at: Some(Timestamp::now()),
        newest_first: true,
        limit: 200,
        ..Default::default()
    };
    let (indicators, collections) =
        match tokio::try_join!(app.blocking(move |s| s.indicators(&q)), crate::taxii::readable(app, p)) {
            Ok(v) => v,
            Err(f) => return error_page(app, Some(p), f),
        };
    let name = |id: OrgId| orgs.iter().find(|o| o.id == id).map_or_else(|| id.to_string(), |o| o.name.clone());
    let manage = may(&p.viewer, Action::ManageOrgs);
    let communities: Vec<Value> = communities
        .iter()
        .filter(|c| manage || c.members.contains(&p.viewer.org))
        .map(|c| {
            let members: Vec<Value> = c.members.iter().map(|&m| context! { id => m.0, name => name(m) }).collect();
            context! { id => c.id, name => c.name, description => c.description, members => members }
        })
        .collect();
    let indicators: Vec<Value> = indicators
        .iter()
        .map(|i| {
            context! {
                kind => i.kind.as_str(), value => i.value, category => i.category.as_str(), family => i.family,
                tlp => i.tlp.label(), confidence => i.confidence, sightings => i.sightings,
                last_seen => i.last_seen.to_rfc3339(), valid_until => i.valid_until.map(Timestamp::to_rfc3339),
                origin => i.origin.to_string(),
            }
        })
        .collect();
    let collections: Vec<Value> = collections
        .iter()
        .map(|d| {
            context! { id => d.id, alias => d.alias, title => d.title, description => d.description,
            can_write => farol_policy::may_write(&p.viewer, d.collection) }
        })
        .collect();
    let formats: Vec<&str> = farol_share::export::Format::ALL.iter().map(|(n, _, _)| *n).collect();
    let kinds: Vec<&str> = farol_model::indicator::IndicatorKind::ALL.iter().map(|k| k.as_str()).collect();
    let orgs: Vec<Value> = orgs.iter().map(|o| context! { id => o.id.0, name => o.name }).collect();
    let ctx = context! { indicators, collections, communities, formats, kinds, manage, orgs, error };
    page(app, "sharing.html", Some(p), ctx)
}

/// The refusal of a community form without the session's CSRF token or from outside the center.
fn may_manage_communities(app: &App, p: &Principal, csrf: &str) -> Option<Response> {
    refused(app, p, csrf)
        .or_else(|| (!may(&p.viewer, Action::ManageOrgs)).then(|| error_page(app, Some(p), Failure::forbidden())))
}

async fn add_community(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Portal(p): Portal,
    axum::Form(form): axum::Form<HandleForm>,
) -> Response {
    if let Some(r) = may_manage_communities(&app, &p, &form.csrf) {
        return r;
    }
    let name = form.get("name").unwrap_or_default();
    if let Err(e) = farol_model::indicator::Community::check_name(&name) {
        return sharing_page(&app, &p, Some(e)).await;
    }
    let c = farol_model::indicator::Community {
        id: 0,
        name: name.clone(),
        description: form.get("description").unwrap_or_default(),
        members: Vec::new(),
    };
    let done = app.blocking(move |s| s.add_community(&c)).await.map(|_| name);
    sharing_changed(&app, &p, addr, "community.add", done).await
}

/// `add` or `remove` a member (the form's `org`), or `delete` the community.
async fn change_community(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Portal(p): Portal,
    Path((id, change)): Path<(i64, String)>,
    axum::Form(form): axum::Form<HandleForm>,
) -> Response {
    if let Some(r) = may_manage_communities(&app, &p, &form.csrf) {
        return r;
    }
    let org = form.get("org").and_then(|o| o.parse::<i64>().ok()).map(OrgId);
    let done = app
        .blocking(move |s| {
            let mut c = (s.communities()?.into_iter().find(|c| c.id == id))
                .ok_or_else(|| farol_store::StoreError::NotFound(format!("no community {id}")))?;
            match (change.as_str(), org) {
                ("delete", _) => {
                    s.remove_community(id)?;
                }
                ("add", Some(o)) if !c.members.contains(&o) => {
                    c.members.push(o);
                    s.update_community(&c)?;
                }
                ("remove", Some(o)) => {
                    c.members.retain(|m| *m != o);
                    s.update_community(&c)?;
                }
                ("add", Some(_)) => {}
                _ => return Err(farol_store::StoreError::NotFound("no such change".into())),
            }
            Ok(format!("{} {change}", c.name))
        })
        .await;
    sharing_changed(&app, &p, addr, "community.change", done).await
}

/// An indicator a user shares through the portal, into a collection it may write to: origin
/// `user:` its e-mail address, shared as the collection shares.
async fn share_indicator(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Portal(p): Portal,
    axum::Form(form): axum::Form<HandleForm>,
) -> Response {
    if let Some(r) = refused(&app, &p, &form.csrf) {
        return r;
    }
    let collections = match crate::taxii::readable(&app, &p).await {
        Ok(c) => c,
        Err(f) => return error_page(&app, Some(&p), f),
    };
    let target = form.get("collection").unwrap_or_default();
    let Some(d) = collections.iter().find(|d| d.id == target && farol_policy::may_write(&p.viewer, d.collection))
    else {
        return sharing_page(&app, &p, Some("Choose a collection you may add to.".into())).await;
    };
    let now = Timestamp::now();
    let checked = (|| -> Result<farol_model::indicator::Indicator, String> {
        let kind: farol_model::indicator::IndicatorKind = form.get("kind").unwrap_or_default().parse()?;
        let value = kind.normalize(&form.get("value").unwrap_or_default())?;
        let category = farol_model::ClassificationType::parse(&form.get("category").unwrap_or_default())
            .map(|r| r.value())
            .ok_or("What it indicates: a classification type such as c2-server or phishing.")?;
        let tlp: farol_model::Tlp = form.get("tlp").unwrap_or_default().parse().map_err(|e| format!("{e}"))?;
        if let Some(why) = d.collection.refuses(tlp) {
            return Err(why);
        }
        let days: u32 = form
            .get("valid_days")
            .unwrap_or_else(|| "30".into())
            .parse()
            .map_err(|_| "Valid for: a number of days.")?;
        let until = now.add_secs(i64::from(days.clamp(1, 3650)) * 86_400);
        let (distribution, community, orgs) = d.collection.sharing();
        Ok(farol_model::indicator::Indicator {
            id: 0,
            kind,
            value,
            category,
            family: form.get("family"),
            tlp,
            distribution,
            community,
            orgs,
            confidence: 75,
            valid_from: now,
            valid_until: until,
            first_seen: now,
            last_seen: now,
            sightings: 0,
            origin: farol_model::indicator::Origin::User(p.user.email.clone()),
            description: form.get("description"),
            created: now,
            modified: now,
            revoked: false,
        })
    })();
    let indicator = match checked {
        Ok(i) => i,
        Err(e) => return sharing_page(&app, &p, Some(e)).await,
    };
    let what = format!("{} {} to {}", indicator.kind, indicator.value, d.alias);
    let done = app.blocking(move |s| s.put_indicator(&indicator, now)).await.map(|_| what);
    sharing_changed(&app, &p, addr, "indicator.share", done).await
}

/// After a change on the Sharing page: audited and back to the page, or the page with why not.
async fn sharing_changed(
    app: &Arc<App>,
    p: &Principal,
    addr: SocketAddr,
    action: &str,
    done: Result<String, Failure>,
) -> Response {
    match done {
        Ok(what) => {
            app.audit(Some(&p.user), addr, action, Some(what)).await;
            Redirect::to("/sharing").into_response()
        }
        Err(f) => sharing_page(app, p, Some(f.message)).await,
    }
}
