//! The REST API under `/api/v1`: JSON in and out, tokens or sessions, every read through the
//! access policy.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use farol_model::org::OrgId;
use farol_model::{ReportId, Scope, Timestamp, parse};
use farol_pipeline::{Ingested, Input, Quiet};
use farol_policy::{Action, may};
use farol_store::{Cursor, EventQuery, StoredEvent, Token, TokenScope};
use serde_json::{Value, json};

use crate::accounts::{Change, NewUser};
use crate::auth::Principal;
use crate::{App, Failure};

/// The most events one page returns.
pub(crate) const MAX_PAGE: usize = 1000;
/// The largest report accepted in one request.
pub(crate) const MAX_UPLOAD: usize = 256 << 20;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/events", get(events))
        .route("/events/{id}", get(event))
        .route("/reports", get(reports).post(upload))
        .route("/reports/{id}/rejects", get(rejects))
        .route("/feeds", get(feeds))
        .route("/orgs", get(orgs))
        .route("/orgs/{id}", get(org))
        .route("/users", get(users).post(add_user))
        .route("/users/{id}", patch(change_user))
        .route("/me", get(me))
        .route("/tokens", get(tokens).post(new_token))
        .route("/tokens/{id}", delete(revoke_token))
        .route("/audit", get(audit))
        .route("/incidents", get(incidents).post(report_incident))
        .route("/incidents/{id}", get(incident).patch(change_incident))
        .route("/incidents/{id}/comments", post(comment))
        .route("/incidents/{id}/events", post(link_events))
        .route("/incidents/{id}/merge", post(merge))
        .route("/incidents/{id}/tasks/{n}", post(task))
        .route("/incidents/{id}/messages", post(write_to_orgs))
        .route("/incidents/{id}/files/{file}", get(incident_file))
        .route("/searches", get(searches).post(save_search))
        .route("/searches/{name}", delete(remove_search))
        .route("/indicators", get(indicators))
        .route("/openapi.json", get(|| async { Json(crate::openapi::document()) }))
        .fallback(|| async { Failure::new(StatusCode::NOT_FOUND, "no such API route; see /api/v1/openapi.json") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD))
}

/// The principal, or 401.
pub(crate) async fn who(app: &Arc<App>, headers: &HeaderMap) -> Result<Principal, Failure> {
    app.principal(headers).await?.ok_or_else(|| {
        Failure::new(StatusCode::UNAUTHORIZED, "log in, or send an API token as Authorization: Bearer TOKEN")
    })
}

fn require(p: &Principal, action: Action) -> Result<(), Failure> {
    if may(&p.viewer, action) { Ok(()) } else { Err(Failure::forbidden()) }
}

fn csrf(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

/// A request's JSON body; a 400 that says what was `expected` otherwise.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| Failure::bad(format!("expected {expected}: {e}")))
}

fn write_allowed(p: &Principal, headers: &HeaderMap) -> Result<(), Failure> {
    if p.may_write(csrf(headers)) {
        Ok(())
    } else {
        Err(Failure::new(
            StatusCode::FORBIDDEN,
            "this change needs a token with the write scope, or the session's X-CSRF-Token header",
        ))
    }
}

/// Reads the event filters of `farol events` from a query string.
pub(crate) fn event_query(params: &BTreeMap<String, String>, p: &Principal) -> Result<EventQuery, Failure> {
    let mut q = EventQuery { visible: farol_policy::events(&p.viewer), limit: 100, ..EventQuery::default() };
    for (key, value) in params {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let bad = |e: String| Failure::bad(format!("{key}: {e}"));
        match key.as_str() {
            "since" => q.since = Some(parse::time(value).map_err(bad)?),
            "until" => q.until = Some(parse::time(value).map_err(bad)?),
            "ip" | "cidr" => {
                let net = value
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        bad(format!("expected an address or a network such as 192.0.2.0/24, found {value:?}"))
                    })?;
                q.source = Some(net.trunc());
            }
            "asn" => q.asn = Some(parse::asn(value).map_err(bad)?),
            "cc" => {
                if value.len() != 2 || !value.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(bad(format!("expected a two-letter country code such as PT, found {value:?}")));
                }
                q.cc = Some(value.to_ascii_uppercase());
            }
            "taxonomy" => q.taxonomy = Some(parse::taxonomy(value).map_err(bad)?),
            "type" => q.kind = Some(parse::kind(value).map_err(bad)?),
            "feed" => q.feed = Some(value.to_owned()),
            "org" => {
                q.org = Some(OrgId(
                    value.parse().map_err(|_| bad(format!("expected an organization id, found {value:?}")))?,
                ))
            }
            "scope" => q.scope = Some(value.parse::<Scope>().map_err(bad)?),
            "after" => q.after = Some(value.parse::<Cursor>().map_err(bad)?),
            "limit" => {
                let n: usize = value.parse().map_err(|_| bad(format!("expected a number, found {value:?}")))?;
                if n == 0 || n > MAX_PAGE {
                    return Err(bad(format!("expected 1 to {MAX_PAGE}, found {n}")));
                }
                q.limit = n;
            }
            "format" => {}
            other => {
                let known: Vec<&str> = crate::openapi::FILTERS.iter().map(|(name, _)| *name).collect();
                return Err(Failure::bad(format!("unknown parameter {other:?}; the filters are {}", known.join(", "))));
            }
        }
    }
    Ok(q)
}

/// An event as the API shows it to this principal: organizations other than the reader's own
/// stay hidden from organization users.
pub(crate) fn event_json(e: &StoredEvent, p: &Principal) -> Value {
    let center = p.user.role.is_center();
    let orgs: Vec<i64> = e.routing.orgs.iter().filter(|o| center || **o == p.user.org).map(|o| o.0).collect();
    let mut v = json!({
        "id": e.id,
        "feed": e.feed,
        "event": e.event.to_intelmq(),
        "orgs": orgs,
        "scope": e.routing.scope.as_str(),
    });
    if center {
        v["report"] = json!(e.report.0);
    }
    if let Some(a) = &e.aggregate {
        v["aggregate"] =
            json!({ "count": a.count, "first_seen": a.first_seen.to_rfc3339(), "last_seen": a.last_seen.to_rfc3339() });
    }
    v
}

async fn events(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    let q = event_query(&params, &p)?;
    let limit = q.limit;
    let page = app.blocking(move |s| s.events(&q)).await?;
    let next = (page.len() == limit).then(|| page.last().map(|e| e.cursor().to_string())).flatten();
    match params.get("format").map(|f| f.trim()).unwrap_or_default() {
        "json" | "" => {
            let events: Vec<Value> = page.iter().map(|e| event_json(e, &p)).collect();
            Ok(Json(json!({ "events": events, "next": next })).into_response())
        }
        "csv" => {
            let mut out = farol_model::export::csv_header();
            out.push('\n');
            for e in &page {
                out.push_str(&farol_model::export::csv_row(&e.event));
                out.push('\n');
            }
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response())
        }
        "intelmq" => {
            let out: String = page.iter().map(|e| e.event.to_intelmq_json() + "\n").collect();
            Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response())
        }
        other => Err(Failure::bad(format!("format: expected json, csv or intelmq, found {other:?}"))),
    }
}

fn id(raw: &str) -> Result<i64, Failure> {
    raw.parse().map_err(|_| Failure::bad(format!("expected a numeric id, found {raw:?}")))
}

async fn event(State(app): State<Arc<App>>, headers: HeaderMap, Path(raw): Path<String>) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    let id = id(&raw)?;
    let visible = farol_policy::events(&p.viewer);
    let found = app.blocking(move |s| s.event(id, &visible)).await?;
    // Invisible and absent look the same: a 404 tells nothing about other organizations' data.
    let e = found.ok_or_else(Failure::not_found)?;
    Ok(Json(event_json(&e, &p)).into_response())
}

async fn upload(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    require(&p, Action::Upload)?;
    write_allowed(&p, &headers)?;
    let feed = params.get("feed").ok_or_else(|| Failure::bad("feed: name the feed, as in ?feed=NAME"))?;
    let name = params.get("name").cloned();
    let (status, report, body) = match ingest(&app, feed, name, body).await? {
        Ingested::Processed(s) => (StatusCode::ACCEPTED, s.report.id, report_json(&s.report)),
        Ingested::Queued(r) => (StatusCode::ACCEPTED, r.id, report_json(&r)),
        Ingested::AlreadyIngested(r) => {
            (StatusCode::OK, r.id, json!({ "already_ingested": true, "report": report_json(&r) }))
        }
    };
    app.audit(Some(&p.user), addr, "upload", Some(format!("report {report}"))).await;
    Ok((status, Json(body)).into_response())
}

/// Stores and processes a report for a feed, or recognizes bytes stored before.
pub(crate) async fn ingest(app: &Arc<App>, feed: &str, name: Option<String>, body: Bytes) -> Result<Ingested, Failure> {
    let Some(feed) = app.config.feeds.get(feed).cloned() else {
        let known: Vec<&str> = app.config.feeds.keys().map(String::as_str).collect();
        return Err(Failure::bad(format!("feed: unknown feed {feed:?}; declared feeds: {}", known.join(", "))));
    };
    if body.is_empty() {
        return Err(Failure::bad("the report is empty"));
    }
    let experts = (app.config.experts)(&feed);
    let app2 = Arc::clone(app);
    let ingested = tokio::task::spawn_blocking(move || {
        let input = Input { reader: Box::new(std::io::Cursor::new(body)), name, size: None, queue: app2.config.queue };
        farol_pipeline::ingest(app2.store.as_ref(), &feed, input, &experts, &Quiet)
    })
    .await
    .map_err(|e| Failure::internal(e.to_string()))?
    .map_err(|e| Failure::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    if let Ingested::Processed(s) = &ingested {
        app.metrics.uploaded_reports.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        app.metrics.uploaded_events.fetch_add(s.report.counts.events, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(ingested)
}

fn report_json(r: &farol_model::Report) -> Value {
    json!({
        "id": r.id.0, "feed": r.feed, "name": r.name, "format": r.format, "size": r.size, "sha256": r.sha256,
        "received_at": r.received_at.to_rfc3339(), "status": r.status.as_str(), "error": r.error,
        "records": r.counts.records, "events": r.counts.events, "duplicates": r.counts.duplicates,
        "dropped": r.counts.dropped, "rejects": r.counts.rejects,
    })
}

async fn reports(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    require(&p, Action::ReadReports)?;
    let feed = params.get("feed").cloned();
    let list = app.blocking(move |s| s.reports(feed.as_deref(), 100)).await?;
    Ok(Json(json!({ "reports": list.iter().map(report_json).collect::<Vec<_>>() })).into_response())
}

async fn rejects(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    require(&p, Action::ReadReports)?;
    let report = ReportId(id(&raw)?);
    let list = app
        .blocking(move |s| match s.report(report) {
            Ok(_) => s.rejects(report, 1000).map(Some),
            Err(farol_store::StoreError::NoReport(_)) => Ok(None),
            Err(e) => Err(e),
        })
        .await?
        .ok_or_else(Failure::not_found)?;
    let rejects: Vec<Value> = list
        .iter()
        .map(|r| {
            json!({ "line": r.position.line, "offset": r.position.offset, "reason": r.reason,
                    "raw": String::from_utf8_lossy(&r.raw) })
        })
        .collect();
    Ok(Json(json!({ "rejects": rejects })).into_response())
}

async fn feeds(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    require(&p, Action::ReadReports)?;
    let health = app.blocking(|s| s.feed_health(Timestamp::now())).await?;
    let feeds: Vec<Value> = health
        .iter()
        .map(|h| {
            json!({
                "feed": h.feed, "declared": app.config.feeds.contains_key(&h.feed),
                "last_report": h.last_report.map(|t| t.to_rfc3339()),
                "last_success": h.last_success.map(|t| t.to_rfc3339()),
                "last_error": h.last_error.as_ref().map(|(t, e)| json!({ "at": t.to_rfc3339(), "error": e })),
                "reports_24h": h.reports_24h, "events_24h": h.events_24h, "rejects_24h": h.rejects_24h,
            })
        })
        .collect();
    Ok(Json(json!({ "feeds": feeds })).into_response())
}

fn org_json(o: &farol_model::org::Org) -> Value {
    json!({
        "id": o.id.0, "name": o.name, "sector": o.sector.as_str(), "handle": o.handle,
        "assets": o.assets.iter().map(|a| json!({ "kind": a.kind(), "value": a.value() })).collect::<Vec<_>>(),
        "contacts": o.contacts.iter().map(|c| json!({
            "email": c.email, "language": c.language, "interval": c.interval.as_str(), "format": c.format.as_str(),
        })).collect::<Vec<_>>(),
    })
}

async fn orgs(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    let all = app.blocking(|s| s.orgs()).await?;
    let visible: Vec<Value> = all.iter().filter(|o| may(&p.viewer, Action::ReadOrg(o.id))).map(org_json).collect();
    Ok(Json(json!({ "orgs": visible })).into_response())
}

async fn org(State(app): State<Arc<App>>, headers: HeaderMap, Path(raw): Path<String>) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    let id = OrgId(id(&raw)?);
    if !may(&p.viewer, Action::ReadOrg(id)) {
        return Err(Failure::not_found());
    }
    let all = app.blocking(|s| s.orgs()).await?;
    let o = all.iter().find(|o| o.id == id).ok_or_else(Failure::not_found)?;
    Ok(Json(org_json(o)).into_response())
}

fn user_json(u: &farol_store::User) -> Value {
    json!({ "id": u.id, "email": u.email, "org": u.org.0, "role": u.role.as_str(), "disabled": u.disabled,
            "totp": u.totp.is_some(), "created_at": u.created_at.to_rfc3339() })
}

async fn users(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    let visible: Vec<Value> = app.visible_users(&p).await?.iter().map(user_json).collect();
    Ok(Json(json!({ "users": visible })).into_response())
}

async fn add_user(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    write_allowed(&p, &headers)?;
    let new: NewUser = json_body(&body, r#"{"email", "role", "org" (an id), "password" (optional)}"#)?;
    let (user, password) = app.add_user(&p, addr, new).await?;
    let mut v = user_json(&user);
    if let Some(password) = password {
        v["password"] = json!(password);
    }
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn change_user(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    write_allowed(&p, &headers)?;
    let id = id(&raw)?;
    let change: Change = json_body(&body, r#"{"role", "disabled"}, each optional"#)?;
    let user = app.change_user(&p, addr, id, change).await?;
    Ok(Json(user_json(&user)).into_response())
}

async fn me(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    let mut v = user_json(&p.user);
    v["csrf"] = json!(p.csrf());
    Ok(Json(v).into_response())
}

fn token_json(t: &Token) -> Value {
    json!({ "id": t.id, "name": t.name, "scope": t.scope.as_str(), "created_at": t.created_at.to_rfc3339(),
            "expires_at": t.expires_at.map(|t| t.to_rfc3339()), "revoked_at": t.revoked_at.map(|t| t.to_rfc3339()),
            "used_at": t.used_at.map(|t| t.to_rfc3339()) })
}

async fn tokens(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    let user = p.user.id;
    let list = app.blocking(move |s| s.tokens(user)).await?;
    Ok(Json(json!({ "tokens": list.iter().map(token_json).collect::<Vec<_>>() })).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    expires_days: Option<u32>,
}

async fn new_token(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    write_allowed(&p, &headers)?;
    let new: NewToken = json_body(&body, r#"{"name", "scope", "expires_days"}"#)?;
    let scope: TokenScope = new.scope.as_deref().unwrap_or("read").parse().map_err(Failure::bad)?;
    if new.name.trim().is_empty() || new.name.len() > 100 {
        return Err(Failure::bad("name: give the token a name of 1 to 100 characters"));
    }
    let (secret, token) =
        crate::auth::make_token(&p.user, new.name.trim(), scope, new.expires_days).map_err(Failure::bad)?;
    let hash = crate::auth::digest(&secret);
    let saved = app.blocking(move |s| s.add_token(&hash, &token)).await?;
    app.audit(Some(&p.user), addr, "token-add", Some(format!("token {}", saved.id))).await;
    let mut v = token_json(&saved);
    v["token"] = json!(secret);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn revoke_token(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    write_allowed(&p, &headers)?;
    let id = id(&raw)?;
    let user = p.user.id;
    let revoked = app.blocking(move |s| s.revoke_token(id, user, Timestamp::now())).await?;
    if !revoked {
        return Err(Failure::not_found());
    }
    app.audit(Some(&p.user), addr, "token-revoke", Some(format!("token {id}"))).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn audit(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    let scope = farol_policy::audit_scope(&p.viewer);
    require(&p, Action::ReadAudit(scope))?;
    let list = app.blocking(move |s| s.audit_log(scope, 500)).await?;
    let entries: Vec<Value> = list
        .iter()
        .map(|e| {
            json!({ "at": e.at.to_rfc3339(), "user": e.user, "org": e.org.map(|o| o.0), "action": e.action,
                    "target": e.target, "ip": e.ip })
        })
        .collect();
    Ok(Json(json!({ "audit": entries })).into_response())
}

async fn incidents(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    let flag = |key: &str| match params.get(key).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(Failure::bad(format!("{key}: expected true or false, found {other:?}"))),
    };
    if let Some(key) = params.keys().find(|k| !matches!(k.as_str(), "open" | "overdue")) {
        return Err(Failure::bad(format!("unknown parameter {key:?}: open and overdue are known")));
    }
    let list = app.visible_incidents(&p, flag("open")?, flag("overdue")?).await?;
    let center = app.deadlines_for(&p);
    let list: Vec<Value> = list.iter().map(|i| crate::incidents::incident_json(i, center)).collect();
    Ok(Json(json!({ "incidents": list })).into_response())
}

async fn incident(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    let stix = match params.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("stix") => true,
        Some(other) => return Err(Failure::bad(format!("format {other:?}: json or stix"))),
    };
    if let Some(other) = params.keys().find(|k| *k != "format") {
        return Err(Failure::bad(format!("unknown parameter {other:?}; this route takes format")));
    }
    let view = app.incident_view(&p, id(&raw)?).await?;
    if !stix {
        return Ok(Json(view.json()).into_response());
    }
    // The addresses of the events the viewer may see, when and how often.
    let (visible, ids) = (farol_policy::events(&p.viewer), view.incident.events.clone());
    let events = app
        .blocking(move |s| {
            ids.iter().map(|&e| s.event(e, &visible)).filter_map(Result::transpose).collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let mut seen: BTreeMap<String, farol_share::stix::Seen> = BTreeMap::new();
    for e in &events {
        let Some(ip) = e.event.source_ip else { continue };
        let (first, last, count) = e.aggregate.map_or((e.filed, e.filed, 1), |a| (a.first_seen, a.last_seen, a.count));
        let entry = seen.entry(ip.to_string()).or_insert(farol_share::stix::Seen {
            address: ip.to_string(),
            first,
            last,
            count: 0,
        });
        entry.first = entry.first.min(first);
        entry.last = entry.last.max(last);
        entry.count += count;
    }
    let modified = view.timeline.iter().map(|(e, _)| e.at).max().unwrap_or(view.incident.created);
    let producer = farol_share::stix::Producer { name: app.config.center.clone() };
    let seen: Vec<_> = seen.into_values().collect();
    let bundle = producer.incident_bundle(&view.incident, modified, &seen);
    Ok(([(header::CONTENT_TYPE, "application/stix+json;version=2.1")], bundle.to_string()).into_response())
}

/// The principal of a request that changes something, and its JSON body.
async fn change<T: serde::de::DeserializeOwned>(
    app: &Arc<App>,
    headers: &HeaderMap,
    body: &[u8],
    expected: &str,
) -> Result<(Principal, T), Failure> {
    let p = who(app, headers).await?;
    write_allowed(&p, headers)?;
    Ok((p, json_body(body, expected)?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewComment {
    text: String,
    #[serde(default)]
    files: Vec<crate::incidents::Upload>,
}

async fn comment(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let (p, new): (_, NewComment) =
        change(&app, &headers, &body, r#"{"text", "files" (optional: [{"name", "content_type", "data" (base64)}])}"#)
            .await?;
    let files = crate::incidents::uploads(new.files)?;
    let e = app.comment(&p, addr, id(&raw)?, &new.text, files).await?;
    Ok((StatusCode::CREATED, Json(crate::incidents::entry_json(&e, &p.user.email))).into_response())
}

async fn report_incident(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let expected = r#"{"title", "description", "class" (optional), "affected" (a list, optional), "files" (optional)}"#;
    let (p, report): (_, crate::incidents::Report) = change(&app, &headers, &body, expected).await?;
    let incident = app.report_incident(&p, addr, report, Vec::new()).await?;
    let center = app.deadlines_for(&p);
    Ok((StatusCode::CREATED, Json(crate::incidents::incident_json(&incident, center))).into_response())
}

async fn change_incident(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let expected = r#"{"status", "severity", "tlp", "class", "title", "assignee", "add_orgs", "remove_orgs", "note"}"#;
    let (p, req) = change(&app, &headers, &body, expected).await?;
    let changes = app.change_incident(&p, addr, id(&raw)?, req).await?;
    Ok(Json(json!({ "changes": changes })).into_response())
}

async fn link_events(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let expected = r#"{"events": [ids], "search": "saved search", "query": "asn=64500&type=phishing"}"#;
    let (p, req) = change(&app, &headers, &body, expected).await?;
    let (linked, more) = app.link(&p, addr, id(&raw)?, req).await?;
    Ok(Json(json!({ "linked": linked, "more": more })).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeRequest {
    into: i64,
}

async fn merge(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let (p, req): (_, MergeRequest) = change(&app, &headers, &body, r#"{"into": incident id}"#).await?;
    app.merge(&p, addr, id(&raw)?, req.into).await?;
    Ok(Json(json!({ "merged_into": req.into })).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskRequest {
    done: bool,
}

async fn task(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((raw, n)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, Failure> {
    let (p, req): (_, TaskRequest) = change(&app, &headers, &body, r#"{"done": true or false}"#).await?;
    let n = usize::try_from(id(&n)?).map_err(|_| Failure::bad("tasks are numbered from 1"))?;
    app.task(&p, addr, id(&raw)?, n, req.done).await?;
    Ok(Json(json!({ "task": n, "done": req.done })).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageRequest {
    text: String,
}

async fn write_to_orgs(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Failure> {
    let (p, req): (_, MessageRequest) = change(&app, &headers, &body, r#"{"text"}"#).await?;
    let written = app.write_to_orgs(&p, addr, id(&raw)?, req.text).await?;
    let written: Vec<Value> = written.iter().map(|w| json!({ "org": w.org, "recipients": w.recipients })).collect();
    Ok((StatusCode::CREATED, Json(json!({ "queued": written, "sent": app.config.notify.sends }))).into_response())
}

async fn incident_file(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((raw, file)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    let f = app.incident_file(&p, id(&raw)?, id(&file)?).await?;
    Ok(crate::incidents::download(f))
}

/// Indicators the caller may have, through the access policy: a page of JSON, or every valid
/// one in a format defenders load (a partner never gets back what it sent).
async fn indicators(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Response, Failure> {
    use farol_share::export::Format;
    let p = who(&app, &headers).await?;
    let mut q = farol_store::IndicatorQuery { limit: 100, valid_at: Some(Timestamp::now()), ..Default::default() };
    let mut format = None;
    for (key, value) in &params {
        let bad = |e: String| Failure::bad(format!("{key}: {e}"));
        match key.as_str() {
            "kind" => q.kinds = vec![value.parse().map_err(bad)?],
            "all" => {
                q.valid_at =
                    (!value.parse::<bool>().map_err(|_| bad("true or false".into()))?).then_some(Timestamp::now())
            }
            "search" => q.search = Some(value.clone()),
            "format" if value == "json" => {}
            "format" => format = Some(value.parse::<Format>().map_err(bad)?),
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| bad(format!("1 to {MAX_PAGE}")))?
            }
            "after" => {
                let (m, id) = value.split_once('_').ok_or_else(|| bad("the `next` of the previous page".into()))?;
                let parsed = m.parse().ok().zip(id.parse().ok());
                let (modified, id) = parsed.ok_or_else(|| bad("the `next` of the previous page".into()))?;
                q.after = Some(farol_store::Version { modified, id });
            }
            other => return Err(Failure::bad(format!("unknown parameter {other:?}; see /api/v1/openapi.json"))),
        }
    }
    let communities = app.blocking(|s| s.communities()).await?;
    q.grants = farol_policy::indicators(&p.viewer, &communities);
    if format.is_some() {
        q.limit = usize::MAX;
        q.after = None;
    }
    let own = crate::taxii::partner_origin(&app, &p).await?;
    let limit = q.limit;
    let list = app.blocking(move |s| s.indicators(&q)).await?;
    let more = list.len() == limit;
    let list: Vec<_> = list.into_iter().filter(|i| own.as_ref() != Some(&i.origin)).collect();
    if let Some(format) = format {
        let producer = farol_share::stix::Producer { name: app.config.center.clone() };
        let text = farol_share::export::write(format, &list, &producer, Timestamp::now());
        return Ok(([(header::CONTENT_TYPE, format.media_type())], text).into_response());
    }
    let items: Vec<Value> = list
        .iter()
        .map(|i| {
            json!({ "id": i.id, "kind": i.kind.as_str(), "value": i.value, "category": i.category.as_str(),
                "family": i.family, "tlp": i.tlp.as_str(), "distribution": i.distribution.as_str(),
                "confidence": i.confidence, "valid_from": i.valid_from.to_rfc3339(),
                "valid_until": i.valid_until.map(Timestamp::to_rfc3339), "first_seen": i.first_seen.to_rfc3339(),
                "last_seen": i.last_seen.to_rfc3339(), "sightings": i.sightings, "origin": i.origin.to_string(),
                "revoked": i.revoked, "modified": i.modified.to_rfc3339() })
        })
        .collect();
    let next = list.last().filter(|_| more).map(|i| format!("{}_{}", i.modified.micros(), i.id));
    Ok(Json(json!({ "indicators": items, "next": next })).into_response())
}

/// Revoked indicators stay in the MISP feed this long, marked not for detection, so that
/// subscribers learn of the revocation.
const MISP_REVOKED_SECS: i64 = 30 * 86_400;

/// The MISP feed of the indicators the caller may have (`manifest.json`, `hashes.csv`,
/// `UUID.json`): valid ones, and those revoked in the last 30 days.
pub(crate) async fn misp_feed(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    let communities = app.blocking(|s| s.communities()).await?;
    let grants = farol_policy::indicators(&p.viewer, &communities);
    let own = crate::taxii::partner_origin(&app, &p).await?;
    let q = farol_store::IndicatorQuery { grants, limit: usize::MAX, ..Default::default() };
    let now = Timestamp::now();
    let all = app.blocking(move |s| s.indicators(&q)).await?;
    let kept: Vec<_> = all
        .into_iter()
        .filter(|i| own.as_ref() != Some(&i.origin))
        .filter(|i| i.is_valid(now) || (i.revoked && now.secs() - i.modified.secs() < MISP_REVOKED_SECS))
        .collect();
    let feed = farol_share::misp::feed(&farol_share::stix::Producer { name: app.config.center.clone() }, &kept);
    match file.as_str() {
        "manifest.json" => Ok(Json(feed.manifest).into_response()),
        "hashes.csv" => Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], feed.hashes).into_response()),
        name => {
            let event = name.strip_suffix(".json").and_then(|uuid| feed.events.get(uuid));
            event.map(|e| Json(e.clone()).into_response()).ok_or_else(Failure::not_found)
        }
    }
}

async fn searches(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    require(&p, Action::ManageIncidents)?;
    let list = app.blocking(|s| s.searches()).await?;
    let list: Vec<Value> = list.iter().map(|s| json!({ "name": s.name, "query": s.query })).collect();
    Ok(Json(json!({ "searches": list })).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSearch {
    pub(crate) name: String,
    pub(crate) query: String,
}

async fn save_search(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Failure> {
    let (p, new): (_, NewSearch) =
        change(&app, &headers, &body, r#"{"name", "query": "asn=64500&type=phishing"}"#).await?;
    app.save_search(&p, addr, new).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_search(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, Failure> {
    let p = who(&app, &headers).await?;
    write_allowed(&p, &headers)?;
    require(&p, Action::ManageIncidents)?;
    if !app.blocking(move |s| s.remove_search(&name)).await? {
        return Err(Failure::not_found());
    }
    app.audit(Some(&p.user), addr, "search-remove", None).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
