//! TAXII 2.1 at `/taxii2/`: discovery, one API root (`/taxii2/api/`), and a collection per
//! audience of the access policy (the constituency, partners, each community, each
//! organization's own networks). Each indicator is served as its STIX objects (indicator,
//! observable, observed-data, sighting, and the malware family it indicates), after the center's
//! identity and the TLP 2.0 markings. An object's date added is its indicator's version, so
//! `added_after` polling sees every change.
//!
//! Authentication: HTTP Basic (a user's e-mail and password; refused for accounts with a second
//! factor, which use a token), or an API token as `Bearer` or `Token`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use farol_model::Timestamp;
use farol_model::indicator::{Indicator, Origin};
use farol_model::org::Role;
use farol_policy::Collection;
use farol_share::stix::{self, Producer};
use farol_store::{IndicatorQuery, Store, Version};
use serde_json::{Value, json};

use crate::auth::{self, Credential, Principal};
use crate::{App, Failure};

pub(crate) const TAXII: &str = "application/taxii+json;version=2.1";
const STIX: &str = "application/stix+json;version=2.1";
/// The largest body a POST may have.
const MAX_CONTENT_LENGTH: usize = 10 << 20;
/// Objects a page holds when the client asks for none or for more.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// Indicators read from the store at a time while filling a page.
const BATCH: usize = 500;
/// Statuses of POSTs kept for their clients to read.
const STATUSES: usize = 1000;

pub(crate) fn routes() -> Router<Arc<App>> {
    // Not nested: TAXII's paths end in `/`, the discovery's too.
    let c = "/taxii2/api/collections/{id}";
    Router::new()
        .route("/taxii2/", get(discovery))
        .route("/taxii2/api/", get(api_root))
        .route("/taxii2/api/status/{status}", get(status))
        .route("/taxii2/api/status/{status}/", get(status))
        .route("/taxii2/api/collections/", get(collections))
        .route(&format!("{c}/"), get(collection))
        .route(&format!("{c}/objects/"), get(objects).post(add_objects))
        .route(&format!("{c}/manifest/"), get(manifest))
        .route(&format!("{c}/objects/{{object}}/"), get(object).delete(delete_object))
        .route(&format!("{c}/objects/{{object}}/versions/"), get(versions))
}

/// Statuses of the POSTs, newest last: (status id, user, the status resource).
#[derive(Debug, Default)]
pub(crate) struct Statuses(Mutex<VecDeque<(String, i64, Value)>>);

/// A TAXII error: the status and the error resource.
#[derive(Debug)]
pub(crate) struct TaxiiError(StatusCode, String);

impl From<Failure> for TaxiiError {
    fn from(f: Failure) -> TaxiiError {
        TaxiiError(f.status, f.message)
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let title = self.0.canonical_reason().unwrap_or("Error");
        let body = json!({ "title": title, "description": self.1, "http_status": self.0.as_u16().to_string() });
        let mut r = taxii(self.0, &body);
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"farol TAXII\""));
        }
        r
    }
}

type Answer = Result<Response, TaxiiError>;

fn bad(message: impl Into<String>) -> TaxiiError {
    TaxiiError(StatusCode::BAD_REQUEST, message.into())
}

fn not_found(what: &str) -> TaxiiError {
    TaxiiError(StatusCode::NOT_FOUND, format!("no {what} here, or not one you may read"))
}

fn taxii(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, TAXII)], body.to_string()).into_response()
}

/// Who is asking (every TAXII request must say), after checking that it accepts TAXII 2.1.
async fn who(app: &Arc<App>, headers: &HeaderMap) -> Result<Principal, TaxiiError> {
    let accepts = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_none_or(|accept| {
        accept.split(',').any(|a| {
            let a = a.split(";q=").next().unwrap_or_default().replace(' ', "").to_ascii_lowercase();
            matches!(a.as_str(), "application/taxii+json" | "application/taxii+json;version=2.1" | "*/*")
        })
    });
    if !accepts {
        return Err(TaxiiError(StatusCode::NOT_ACCEPTABLE, format!("this server speaks {TAXII}: send it in Accept")));
    }
    let unauthorized = |m: &str| TaxiiError(StatusCode::UNAUTHORIZED, m.to_owned());
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(value) = value else {
        return Err(unauthorized("authenticate with HTTP Basic (e-mail and password) or an API token"));
    };
    if let Some(token) = value.strip_prefix("Token ").or_else(|| value.strip_prefix("Bearer ")) {
        let hash = auth::digest(token.trim());
        let now = Timestamp::now();
        return match app.blocking(move |s| s.token(&hash, now)).await? {
            Some((t, user)) if t.is_valid(now) && !user.disabled => {
                Ok(Principal::new(user, Credential::Token(t.scope)))
            }
            _ => Err(unauthorized("the token is unknown, expired or revoked")),
        };
    }
    let basic = value.strip_prefix("Basic ").ok_or_else(|| unauthorized("expected Basic, Bearer or Token"))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(basic.trim()).ok();
    let (email, password) = decoded
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|d| d.split_once(':').map(|(e, p)| (e.to_owned(), p.to_owned())))
        .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
    let user = app.blocking(move |s| s.user_by_email(&email)).await?;
    let now = Timestamp::now();
    let wrong = || unauthorized("wrong e-mail or password, or the account is locked (15 minutes after 5 failures)");
    let Some(mut user) = user.filter(|u| !u.disabled) else {
        let _ = tokio::task::spawn_blocking(move || auth::verify_nobody(&password)).await;
        return Err(wrong());
    };
    if user.locked_until.is_some_and(|t| t > now) {
        return Err(wrong());
    }
    if !crate::portal::password_matches(&user, &password).await {
        crate::portal::count_failure(&mut user, now);
        let u = user.clone();
        app.blocking(move |s| s.update_user(&u)).await?;
        return Err(wrong());
    }
    if user.failures > 0 {
        user.failures = 0;
        let u = user.clone();
        app.blocking(move |s| s.update_user(&u)).await?;
    }
    if user.totp.is_some() {
        return Err(unauthorized("this account has a second factor: use an API token (Authorization: Token ...)"));
    }
    // Basic credentials are the account's own: they may write where the account may.
    Ok(Principal::new(user, Credential::Token(farol_store::TokenScope::Write)))
}

async fn discovery(State(app): State<Arc<App>>, headers: HeaderMap) -> Answer {
    who(&app, &headers).await?;
    let center = &app.config.center;
    Ok(taxii(
        StatusCode::OK,
        &json!({
            "title": format!("{center} TAXII"),
            "description": format!("Indicators shared by {center} under TLP 2.0, one collection per audience"),
            "default": "/taxii2/api/",
            "api_roots": ["/taxii2/api/"],
        }),
    ))
}

async fn api_root(State(app): State<Arc<App>>, headers: HeaderMap) -> Answer {
    who(&app, &headers).await?;
    Ok(taxii(
        StatusCode::OK,
        &json!({
            "title": format!("{} indicators", app.config.center),
            "versions": [TAXII],
            "max_content_length": MAX_CONTENT_LENGTH,
        }),
    ))
}

/// A collection as the principal sees it.
pub(crate) struct Described {
    pub(crate) collection: Collection,
    pub(crate) id: String,
    pub(crate) alias: String,
    pub(crate) title: String,
    pub(crate) description: String,
}

/// The collections the principal may read.
pub(crate) async fn readable(app: &Arc<App>, p: &Principal) -> Result<Vec<Described>, Failure> {
    let (communities, orgs) = app.blocking(|s| Ok((s.communities()?, s.orgs()?))).await?;
    let ids: Vec<_> = orgs.iter().map(|o| o.id).collect();
    let center = app.config.center.clone();
    Ok(farol_policy::collections(&p.viewer, &communities, &ids)
        .into_iter()
        .map(|c| {
            let (alias, title, description) = match c {
                Collection::Constituency => (
                    "constituency".to_owned(),
                    "Constituency".to_owned(),
                    "Indicators for every organization of the constituency (up to TLP:GREEN)".to_owned(),
                ),
                Collection::Partners => (
                    "partners".to_owned(),
                    "Partner centers".to_owned(),
                    "Indicators for partner centers abroad (up to TLP:GREEN)".to_owned(),
                ),
                Collection::Community(id) => {
                    let name = communities.iter().find(|k| k.id == id).map_or("", |k| k.name.as_str());
                    (
                        format!("community-{name}"),
                        format!("Community {name}"),
                        format!("Indicators shared in {name} (up to TLP:GREEN)"),
                    )
                }
                Collection::Org(id) => {
                    let name = orgs.iter().find(|o| o.id == id).map_or("", |o| o.name.as_str());
                    (
                        format!("org-{id}"),
                        format!("{name}: own networks"),
                        format!("Indicators in the networks of {name} (up to TLP:AMBER+STRICT)"),
                    )
                }
            };
            let id = stix::farol_uuid(&format!("{center}\0collection\0{alias}"));
            Described { collection: c, id, alias, title, description }
        })
        .collect())
}

fn describe(d: &Described, p: &Principal) -> Value {
    json!({
        "id": d.id,
        "title": d.title,
        "description": d.description,
        "alias": d.alias,
        "can_read": true,
        "can_write": farol_policy::may_write(&p.viewer, d.collection),
        "media_types": [STIX],
    })
}

async fn collections(State(app): State<Arc<App>>, headers: HeaderMap) -> Answer {
    let p = who(&app, &headers).await?;
    let all: Vec<Value> = readable(&app, &p).await?.iter().map(|d| describe(d, &p)).collect();
    Ok(taxii(StatusCode::OK, &if all.is_empty() { json!({}) } else { json!({ "collections": all }) }))
}

/// The collection of that id, if the principal may read it.
async fn find(app: &Arc<App>, p: &Principal, id: &str) -> Result<Described, TaxiiError> {
    readable(app, p).await?.into_iter().find(|d| d.id == id).ok_or_else(|| not_found("collection"))
}

async fn collection(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> Answer {
    let p = who(&app, &headers).await?;
    let d = find(&app, &p, &id).await?;
    Ok(taxii(StatusCode::OK, &describe(&d, &p)))
}

/// The query parameters of the listing endpoints, checked.
#[derive(Debug, Default)]
struct Filter {
    added_after: Option<Timestamp>,
    limit: usize,
    next: Option<(i64, i64, usize)>,
    ids: Vec<String>,
    types: Vec<String>,
    /// `None`: any version (last, first and all are the one farol keeps).
    version: Option<Vec<Timestamp>>,
    /// Whether 2.1 objects are asked for (the only spec version farol serves).
    spec_21: bool,
}

fn filter(query: Option<&str>) -> Result<Filter, TaxiiError> {
    let mut f = Filter { limit: DEFAULT_PAGE, spec_21: true, ..Filter::default() };
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or_default()).map_err(|e| bad(format!("the query string: {e}")))?;
    for (key, value) in pairs {
        let list = || value.split(',').map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect::<Vec<_>>();
        match key.as_str() {
            "added_after" => {
                f.added_after = Some(
                    Timestamp::parse(&value).ok_or_else(|| bad(format!("added_after {value:?} is not a timestamp")))?,
                );
            }
            "limit" => {
                let n: usize = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad("limit: a positive integer"))?;
                f.limit = n.min(MAX_PAGE);
            }
            "next" => {
                let parts: Vec<&str> = value.split('.').collect();
                let parsed = match parts.as_slice() {
                    [m, i, s] => m.parse().ok().zip(i.parse().ok()).zip(s.parse().ok()).map(|((m, i), s)| (m, i, s)),
                    _ => None,
                };
                f.next = Some(parsed.ok_or_else(|| bad(format!("next {value:?} is not one this server gave")))?);
            }
            "match[id]" => f.ids = list(),
            "match[type]" => f.types = list(),
            "match[version]" => {
                let mut times = Vec::new();
                for v in list() {
                    match v.as_str() {
                        // farol keeps one version of each object: it is the first, the last and all.
                        "last" | "first" | "all" => {}
                        t => times
                            .push(Timestamp::parse(t).ok_or_else(|| {
                                bad(format!("match[version] {t:?}: last, first, all or a timestamp"))
                            })?),
                    }
                }
                f.version = (!times.is_empty()).then_some(times);
            }
            "match[spec_version]" => f.spec_21 = list().iter().any(|v| v == "2.1"),
            other => return Err(bad(format!("unknown parameter {other:?}"))),
        }
    }
    Ok(f)
}

/// An object of a collection, where it sits in the collection's order.
struct Item {
    /// (indicator version, indicator id, place among its objects); the prelude is (0, 0, n).
    key: (i64, i64, usize),
    added: Timestamp,
    object: Value,
}

impl Item {
    fn id(&self) -> &str {
        self.object["id"].as_str().unwrap_or_default()
    }

    fn kind(&self) -> &str {
        self.object["type"].as_str().unwrap_or_default()
    }

    /// Its version: `modified`, else `created`, else (an observable) the date it was added.
    fn version(&self) -> String {
        let v = self.object.get("modified").or_else(|| self.object.get("created")).and_then(Value::as_str);
        v.map_or_else(|| stix::time(self.added), str::to_owned)
    }

    fn matches(&self, f: &Filter) -> bool {
        f.spec_21
            && (f.ids.is_empty() || f.ids.iter().any(|i| i == self.id()))
            && (f.types.is_empty() || f.types.iter().any(|t| t == self.kind()))
            && f.added_after.is_none_or(|t| self.added > t)
            && f.version.as_ref().is_none_or(|vs| vs.iter().any(|v| Timestamp::parse(&self.version()) == Some(*v)))
            && f.next.is_none_or(|n| self.key > n)
    }
}

/// A page of a collection's objects that match the filter, and whether more follow.
async fn page(app: &Arc<App>, p: &Principal, d: &Described, f: Filter) -> Result<(Vec<Item>, bool), TaxiiError> {
    let producer = Producer { name: app.config.center.clone() };
    let grant = d.collection.grant();
    // A partner is never served what it sent: nothing goes back where it came from.
    let own = partner_origin(app, p).await?;
    let epoch = Timestamp::from_micros(0).unwrap_or_else(Timestamp::now);
    let mut items: Vec<Item> = std::iter::once(producer.identity())
        .chain(farol_model::Tlp::ALL.into_iter().map(stix::marking))
        .enumerate()
        .map(|(n, object)| Item { key: (0, 0, n), added: epoch, object })
        .filter(|i| i.matches(&f))
        .collect();
    let limit = f.limit;
    // Start after the versions already served or not asked for.
    let mut after = match (f.next, f.added_after) {
        (Some((m, id, _)), _) => Some(Version { modified: m, id: id - 1 }),
        (None, Some(t)) => Some(Version { modified: t.micros(), id: i64::MAX }),
        (None, None) => None,
    };
    while items.len() <= limit {
        let q = IndicatorQuery { grants: vec![grant], after, limit: BATCH, ..Default::default() };
        let batch = app.blocking(move |s: &dyn Store| s.indicators(&q)).await?;
        let Some(last) = batch.last() else { break };
        after = Some(Version { modified: last.modified.micros(), id: last.id });
        let done = batch.len() < BATCH;
        for i in batch.iter().filter(|i| own.as_ref() != Some(&i.origin)) {
            items.extend(items_of(&producer, i).into_iter().filter(|item| item.matches(&f)));
        }
        if done {
            break;
        }
    }
    let more = items.len() > limit;
    items.truncate(limit);
    Ok((items, more))
}

/// What a partner sends is from `partner:` and its organization's name; `None` for others.
pub(crate) async fn partner_origin(app: &Arc<App>, p: &Principal) -> Result<Option<Origin>, Failure> {
    if p.viewer.role != Role::Partner {
        return Ok(None);
    }
    let org = p.viewer.org;
    let orgs = app.blocking(|s| s.orgs()).await?;
    Ok(Some(Origin::Partner(orgs.into_iter().find(|o| o.id == org).map_or_else(|| format!("org-{org}"), |o| o.name))))
}

/// An indicator's objects in the collection's order: the malware family's with the rest.
fn items_of(producer: &Producer, i: &Indicator) -> Vec<Item> {
    let mut all = producer.objects(i);
    if let Some(f) = &i.family {
        all.push(producer.malware(f));
    }
    all.into_iter()
        .enumerate()
        .map(|(n, object)| Item { key: (i.modified.micros(), i.id, n), added: i.modified, object })
        .collect()
}

/// A listing's answer: its body and the dates added of its first and last item.
fn listing(body: Value, items: &[Item]) -> Response {
    let mut r = taxii(StatusCode::OK, &body);
    if let (Some(first), Some(last)) = (items.first(), items.last()) {
        for (name, t) in [("x-taxii-date-added-first", first.added), ("x-taxii-date-added-last", last.added)] {
            if let Ok(v) = HeaderValue::from_str(&stix::time(t)) {
                r.headers_mut().insert(name, v);
            }
        }
    }
    r
}

fn next_token(items: &[Item], more: bool) -> Option<String> {
    let last = items.last().filter(|_| more)?;
    Some(format!("{}.{}.{}", last.key.0, last.key.1, last.key.2))
}

/// The page of a collection's objects a request asks for, as its principal may read it.
async fn asked(
    app: &Arc<App>,
    headers: &HeaderMap,
    id: &str,
    filter: impl FnOnce() -> Result<Filter, TaxiiError>,
) -> Result<(Vec<Item>, bool), TaxiiError> {
    let p = who(app, headers).await?;
    let d = find(app, &p, id).await?;
    page(app, &p, &d, filter()?).await
}

/// A listing's body: `{}` when empty, else `more`, the records of the items, and `next`.
fn body(items: &[Item], more: bool, record: impl Fn(&Item) -> Value) -> Value {
    if items.is_empty() {
        return json!({});
    }
    let mut body = json!({ "more": more, "objects": items.iter().map(record).collect::<Vec<_>>() });
    if let Some(next) = next_token(items, more) {
        body["next"] = next.into();
    }
    body
}

async fn objects(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Answer {
    let (items, more) = asked(&app, &headers, &id, || filter(q.as_deref())).await?;
    Ok(listing(body(&items, more, |i| i.object.clone()), &items))
}

async fn manifest(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Answer {
    let (items, more) = asked(&app, &headers, &id, || filter(q.as_deref())).await?;
    let record = |i: &Item| json!({ "id": i.id(), "date_added": stix::time(i.added), "version": i.version(), "media_type": STIX });
    Ok(listing(body(&items, more, record), &items))
}

/// The filter of an object's endpoints: that object, with the request's other parameters.
fn object_filter(q: Option<&str>, object: &str) -> Result<Filter, TaxiiError> {
    let mut f = filter(q)?;
    if !f.ids.is_empty() || !f.types.is_empty() {
        return Err(bad("match[id] and match[type] do not apply to one object"));
    }
    f.ids = vec![object.to_owned()];
    Ok(f)
}

/// The versions of one object the request asks for; "not found" when there are none.
async fn one(
    app: &Arc<App>,
    headers: &HeaderMap,
    id: &str,
    object: &str,
    q: Option<&str>,
) -> Result<(Vec<Item>, bool), TaxiiError> {
    let (items, more) = asked(app, headers, id, || object_filter(q, object)).await?;
    if items.is_empty() {
        return Err(not_found("object"));
    }
    Ok((items, more))
}

async fn object(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((id, object)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Answer {
    let (items, more) = one(&app, &headers, &id, &object, q.as_deref()).await?;
    Ok(listing(body(&items, more, |i| i.object.clone()), &items))
}

async fn versions(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((id, object)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Answer {
    let (items, more) = one(&app, &headers, &id, &object, q.as_deref()).await?;
    let versions: Vec<String> = items.iter().map(Item::version).collect();
    Ok(listing(json!({ "more": more, "versions": versions }), &items))
}

/// Removes the indicator an `indicator` object stands for (with its other objects).
async fn delete_object(
    State(app): State<Arc<App>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((id, object)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Answer {
    let p = who(&app, &headers).await?;
    let d = find(&app, &p, &id).await?;
    if !farol_policy::may_write(&p.viewer, d.collection) || !p.viewer.role.is_center() || !p.may_write(None) {
        return Err(TaxiiError(StatusCode::FORBIDDEN, "only the center removes objects".into()));
    }
    let mut f = object_filter(q.as_deref(), &object)?;
    f.limit = MAX_PAGE;
    let (items, _) = page(&app, &p, &d, f).await?;
    let Some(item) = items.iter().find(|i| i.kind() == "indicator") else {
        return Err(not_found("indicator (observables, sightings and the rest go with their indicator)"));
    };
    let indicator = item.key.1;
    app.blocking(move |s| s.remove_indicator(indicator)).await?;
    app.audit(Some(&p.user), from, "taxii.delete", Some(object.clone())).await;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, TAXII)], "").into_response())
}

/// Takes in an envelope of STIX objects: each indicator of one observable is kept, shared as
/// the collection shares (its TLP as marked, TLP:AMBER when unmarked); other objects are
/// failures with the reason. Done at once: the status is complete.
async fn add_objects(
    State(app): State<Arc<App>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let p = who(&app, &headers).await?;
    let d = find(&app, &p, &id).await?;
    if !farol_policy::may_write(&p.viewer, d.collection) || !p.may_write(None) {
        return Err(TaxiiError(StatusCode::FORBIDDEN, "you may read this collection, not add to it".into()));
    }
    let media = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().replace(' ', "");
    if !matches!(media.to_ascii_lowercase().as_str(), "application/taxii+json;version=2.1" | "application/taxii+json") {
        return Err(TaxiiError(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("send an envelope as {TAXII}")));
    }
    if body.len() > MAX_CONTENT_LENGTH {
        return Err(TaxiiError(StatusCode::PAYLOAD_TOO_LARGE, format!("at most {MAX_CONTENT_LENGTH} bytes")));
    }
    let envelope: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let objects =
        envelope.get("objects").and_then(Value::as_array).ok_or_else(|| bad("an envelope has \"objects\": [...]"))?;
    let now = Timestamp::now();
    let origin = partner_origin(&app, &p).await?.unwrap_or_else(|| Origin::User(p.user.email.clone()));
    let (distribution, community, orgs) = d.collection.sharing();
    let (mut successes, mut failures) = (Vec::new(), Vec::new());
    for o in objects {
        let (oid, version) =
            (o["id"].as_str().unwrap_or_default().to_owned(), o["modified"].as_str().map(str::to_owned));
        let read = stix::read_indicator(o)
            .map(|r| r.into_indicator(origin.clone(), distribution, community, orgs.clone(), now))
            .and_then(|i| d.collection.refuses(i.tlp).map_or(Ok(i), Err));
        let detail = |message: Option<String>| {
            let mut d = json!({ "id": oid, "version": version.clone().unwrap_or_default() });
            if let Some(m) = message {
                d["message"] = m.into();
            }
            d
        };
        match read {
            Ok(i) => match app.blocking(move |s| s.put_indicator(&i, now)).await {
                Ok(_) => successes.push(detail(None)),
                Err(e) => failures.push(detail(Some(e.message))),
            },
            Err(e) => failures.push(detail(Some(e))),
        }
    }
    app.audit(Some(&p.user), from, "taxii.add", Some(format!("{} ({} kept)", d.alias, successes.len()))).await;
    let status_id = uuid4();
    let status = json!({
        "id": status_id,
        "status": "complete",
        "request_timestamp": stix::time(now),
        "total_count": successes.len() + failures.len(),
        "success_count": successes.len(),
        "successes": successes,
        "failure_count": failures.len(),
        "failures": failures,
        "pending_count": 0,
        "pendings": [],
    });
    let mut kept = app.taxii.0.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() >= STATUSES {
        kept.pop_front();
    }
    kept.push_back((status_id, p.user.id, status.clone()));
    drop(kept);
    Ok(taxii(StatusCode::ACCEPTED, &status))
}

async fn status(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> Answer {
    let p = who(&app, &headers).await?;
    let kept = app.taxii.0.lock().unwrap_or_else(|e| e.into_inner());
    let found = kept.iter().find(|(s, user, _)| *s == id && (*user == p.user.id || p.viewer.role.is_center()));
    let status = found.map(|(_, _, s)| s.clone()).ok_or_else(|| not_found("status"))?;
    drop(kept);
    Ok(taxii(StatusCode::OK, &status))
}

/// A random (version 4) UUID.
fn uuid4() -> String {
    let mut b = [0u8; 16];
    for (i, byte) in auth::secret().as_bytes().chunks(2).take(16).enumerate() {
        b[i] = u8::from_str_radix(std::str::from_utf8(byte).unwrap_or("0"), 16).unwrap_or(0);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}
