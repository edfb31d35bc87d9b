//! The OpenAPI 3 document of `/api/v1`, built from the same tables the handlers read: the
//! event filters are [`FILTERS`], the routes [`ROUTES`].

use farol_model::org::Role;
use serde_json::{Map, Value, json};

/// The query parameters of `GET /events`, with what each accepts.
pub(crate) const FILTERS: &[(&str, &str)] = &[
    ("since", "Events at or after: a date, an RFC 3339 time, or how long ago (30m, 12h, 7d, 2w)"),
    ("until", "Events before, in the same forms"),
    ("ip", "One source address"),
    ("cidr", "A source network, such as 192.0.2.0/24"),
    ("asn", "source.asn, with or without AS"),
    ("cc", "source.geolocation.cc, two letters"),
    ("taxonomy", "classification.taxonomy (RSIT)"),
    ("type", "classification.type (RSIT; IntelMQ 2.x names are accepted)"),
    ("feed", "feed.name"),
    ("org", "An organization's id: events in its networks"),
    ("scope", "Where routing placed them: org, national, outside, unrouted"),
    ("after", "The `next` cursor of the previous page"),
    ("limit", "Events per page, 1 to 1000 (default 100)"),
    ("format", "json (default), csv, or intelmq (one IntelMQ JSON object per line)"),
];

/// Method, path, summary, whether it writes, and its answers besides errors.
pub(crate) const ROUTES: &[(&str, &str, &str, bool, &str)] = &[
    ("get", "/events", "Search events, newest first, as the caller may see them", false, "EventPage"),
    ("get", "/events/{id}", "One event; 404 when it does not exist or the caller may not see it", false, "Event"),
    ("get", "/reports", "The newest reports (national center only)", false, "Reports"),
    (
        "post",
        "/reports",
        "Upload a report's raw bytes for a feed (?feed=NAME&name=FILE); 202 once stored and processed, 200 when the same bytes were stored before",
        true,
        "Report",
    ),
    ("get", "/reports/{id}/rejects", "A report's rejected records (national center only)", false, "Rejects"),
    ("get", "/feeds", "Each feed's health (national center only)", false, "Feeds"),
    ("get", "/orgs", "The organizations the caller may see", false, "Orgs"),
    ("get", "/orgs/{id}", "One organization", false, "Org"),
    ("get", "/users", "The users the caller may see", false, "Users"),
    (
        "post",
        "/users",
        "Add a user (admins anywhere; an org-admin to its organization as org-admin or org-member); without a password, one is made and is in the answer, once",
        true,
        "NewUser",
    ),
    ("patch", "/users/{id}", "Change another user's role, or disable or enable it", true, "User"),
    ("get", "/me", "The caller, and the CSRF token its session's writes need", false, "User"),
    ("get", "/tokens", "The caller's API tokens", false, "Tokens"),
    ("post", "/tokens", "Make an API token; its secret is in the answer, once", true, "NewToken"),
    ("delete", "/tokens/{id}", "Revoke one of the caller's tokens", true, ""),
    ("get", "/audit", "The audit log (admins; an org-admin sees its organization's)", false, "Audit"),
    ("get", "/incidents", "The incidents the caller may see, newest first", false, "Incidents"),
    (
        "post",
        "/incidents",
        "Report an incident; an organization's report concerns that organization",
        true,
        "NewIncident",
    ),
    (
        "get",
        "/incidents/{id}",
        "One incident with the timeline entries the caller may see; 404 otherwise",
        false,
        "IncidentDetail",
    ),
    ("post", "/incidents/{id}/comments", "Comment on an incident the caller may see, with files", true, "NewComment"),
    (
        "patch",
        "/incidents/{id}",
        "Change an incident (national center only): status, severity, TLP, class (its playbook's tasks are added), title, assignee, organizations",
        true,
        "Changes",
    ),
    (
        "post",
        "/incidents/{id}/events",
        "Link events to an incident (national center only): by id, by a saved search, or by a query as GET /events takes it (at most 1000)",
        true,
        "Linked",
    ),
    ("post", "/incidents/{id}/merge", "Merge an incident into another (national center only)", true, "Merged"),
    (
        "post",
        "/incidents/{id}/tasks/{n}",
        "Tick or clear a task of the incident's playbook, numbered from 1 (national center only)",
        true,
        "Task",
    ),
    (
        "post",
        "/incidents/{id}/messages",
        "Write to the contacts of the organizations the incident concerns (national center only): one message per organization, queued in the outbox and noted in the timeline; replies join the incident",
        true,
        "Queued",
    ),
    (
        "get",
        "/incidents/{id}/files/{file}",
        "A file of a timeline entry the caller may see, always as an attachment; 404 otherwise",
        false,
        "File",
    ),
    (
        "get",
        "/indicators",
        "The indicators the caller may have (valid ones unless all=true): a page of JSON, or all of them as a blocklist, CSV, Suricata or Snort rules, an RPZ zone or a STIX 2.1 bundle",
        false,
        "Indicators",
    ),
    ("get", "/searches", "The saved event searches (national center only)", false, "Searches"),
    ("post", "/searches", "Save an event search by name, replacing one of that name (national center only)", true, ""),
    ("delete", "/searches/{name}", "Remove a saved search (national center only)", true, ""),
];

fn object(props: &[(&str, Value)]) -> Value {
    let props: Map<String, Value> = props.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    json!({ "type": "object", "properties": props })
}

fn list(key: &str, item: &str) -> Value {
    object(&[(key, json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } }))])
}

/// A required JSON request body with this schema.
fn json_body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

/// The document served at `/api/v1/openapi.json`.
pub(crate) fn document() -> Value {
    let text = json!({ "type": "string" });
    let int = json!({ "type": "integer" });
    let opt_text = json!({ "type": ["string", "null"] });
    let error = json!({ "description": "What is wrong, and what to do", "content": { "application/json": {
        "schema": { "$ref": "#/components/schemas/Error" } } } });
    let roles = json!({ "enum": Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>() });
    let mut paths = Map::new();
    for (method, path, summary, writes, answer) in ROUTES {
        let mut responses = Map::new();
        let ok = match (*method, *answer) {
            ("delete", _) | (_, "") => ("204", json!({ "description": "Done" })),
            (_, "File") => (
                "200",
                json!({ "description": "The file", "content": { "*/*": { "schema": { "type": "string", "format": "binary" } } } }),
            ),
            (_, made @ ("NewToken" | "NewUser" | "NewComment" | "NewIncident" | "Queued")) => (
                "201",
                json!({ "description": "Made", "content": { "application/json": {
                "schema": { "$ref": format!("#/components/schemas/{made}") } } } }),
            ),
            (_, answer) => {
                let status = if *path == "/reports" && *method == "post" { "202" } else { "200" };
                (
                    status,
                    json!({ "description": "OK", "content": { "application/json": {
                    "schema": { "$ref": format!("#/components/schemas/{answer}") } } } }),
                )
            }
        };
        responses.insert(ok.0.to_owned(), ok.1);
        if *path == "/reports" && *method == "post" {
            responses.insert(
                "200".into(),
                json!({ "description": "Already ingested", "content": { "application/json": {
                "schema": { "type": "object" } } } }),
            );
            responses.insert("422".into(), error.clone());
        }
        if *path == "/events" {
            responses.insert(
                "200".into(),
                json!({ "description": "OK", "content": {
                "application/json": { "schema": { "$ref": "#/components/schemas/EventPage" } },
                "text/csv": { "schema": { "type": "string" } },
                "application/x-ndjson": { "schema": { "type": "string" } } } }),
            );
        }
        for status in ["400", "401", "403", "404"] {
            responses.insert(status.to_owned(), error.clone());
        }
        let mut parameters: Vec<Value> = Vec::new();
        for name in path.split('/').filter_map(|p| p.strip_prefix('{')?.strip_suffix('}')) {
            let kind = if name == "name" { "string" } else { "integer" };
            parameters.push(json!({ "name": name, "in": "path", "required": true, "schema": { "type": kind } }));
        }
        if *path == "/incidents/{id}" && *method == "get" {
            parameters.push(json!({ "name": "format", "in": "query", "required": false,
                "description": "json (default), or stix: a STIX 2.1 bundle of the incident and the addresses of its events",
                "schema": { "enum": ["json", "stix"] } }));
            responses.insert(
                "200".into(),
                json!({ "description": "OK", "content": {
                "application/json": { "schema": { "$ref": "#/components/schemas/IncidentDetail" } },
                "application/stix+json": { "schema": { "type": "object" } } } }),
            );
        }
        if *path == "/incidents" && *method == "get" {
            for (name, description) in
                [("open", "New, open and stalled ones only"), ("overdue", "Open ones past a deadline only")]
            {
                parameters.push(json!({ "name": name, "in": "query", "required": false, "description": description,
                    "schema": { "type": "boolean" } }));
            }
        }
        if *path == "/events" {
            parameters.extend(FILTERS.iter().map(|(name, description)| {
                let schema = match *name {
                    "limit" => json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
                    "org" => json!({ "type": "integer" }),
                    "format" => json!({ "enum": ["json", "csv", "intelmq"] }),
                    "scope" => json!({ "enum": ["org", "national", "outside", "unrouted"] }),
                    _ => json!({ "type": "string" }),
                };
                json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
            }));
        }
        if *path == "/indicators" {
            let kinds: Vec<&str> = farol_model::indicator::IndicatorKind::ALL.iter().map(|k| k.as_str()).collect();
            let mut formats = vec!["json"];
            formats.extend(farol_share::export::Format::ALL.iter().map(|(name, _, _)| *name));
            for (name, description, schema) in [
                ("kind", "Only this kind", json!({ "enum": kinds })),
                ("all", "Expired and revoked ones too", json!({ "type": "boolean" })),
                ("search", "Only those whose value contains this text", json!({ "type": "string" })),
                ("format", "json (a page), or every one in this format", json!({ "enum": formats })),
                (
                    "limit",
                    "Indicators per JSON page, 1 to 1000 (default 100)",
                    json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
                ),
                ("after", "The `next` of the previous JSON page", json!({ "type": "string" })),
            ] {
                parameters.push(json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema }));
            }
            responses.insert(
                "200".into(),
                json!({ "description": "OK", "content": {
                "application/json": { "schema": { "$ref": "#/components/schemas/Indicators" } },
                "text/plain": { "schema": { "type": "string" } },
                "text/csv": { "schema": { "type": "string" } },
                "text/dns": { "schema": { "type": "string" } },
                "application/stix+json": { "schema": { "type": "object" } } } }),
            );
        }
        if *path == "/reports" {
            parameters.push(
                json!({ "name": "feed", "in": "query", "required": *method == "post", "schema": { "type": "string" } }),
            );
            if *method == "post" {
                parameters
                    .push(json!({ "name": "name", "in": "query", "required": false, "schema": { "type": "string" } }));
            }
        }
        let mut op = json!({ "summary": summary, "parameters": parameters, "responses": responses });
        if *writes {
            op["description"] = json!("Needs a token with the write scope, or a session and its X-CSRF-Token header.");
        }
        if *path == "/reports" && *method == "post" {
            op["requestBody"] = json!({ "required": true, "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } });
        }
        if *path == "/tokens" && *method == "post" {
            op["requestBody"] = json_body(
                json!({ "type": "object", "required": ["name"], "additionalProperties": false,
                "properties": { "name": { "type": "string", "minLength": 1, "maxLength": 100 }, "scope": { "enum": ["read", "write"] }, "expires_days": { "type": "integer", "minimum": 1, "maximum": 3650 } } }),
            );
        }
        if *path == "/users" && *method == "post" {
            op["requestBody"] =
                json_body(json!({ "type": "object", "required": ["email", "role"], "additionalProperties": false,
                "properties": { "email": { "type": "string" }, "role": roles, "org": { "type": "integer" },
                    "password": { "type": "string", "minLength": 12 } } }));
            op["responses"]["409"] = error.clone();
        }
        let files = json!({ "type": "array", "maxItems": 10, "description": "Files, within the center's size and type limits",
            "items": { "type": "object", "required": ["name", "data"], "additionalProperties": false, "properties": {
                "name": { "type": "string" }, "content_type": { "type": "string" },
                "data": { "type": "string", "contentEncoding": "base64" } } } });
        let body = match (*method, *path) {
            ("post", "/incidents") => Some(json!({ "type": "object", "required": ["title", "description"],
                "additionalProperties": false, "properties": {
                    "title": { "type": "string", "minLength": 1, "maxLength": 200 },
                    "description": { "type": "string", "minLength": 1, "maxLength": 10000 },
                    "class": { "type": "string", "description": "An RSIT classification type" },
                    "affected": { "type": "array", "maxItems": 1000, "items": { "type": "string" },
                        "description": "IP addresses, networks, domains and http(s) URLs" },
                    "files": files } })),
            ("post", "/incidents/{id}/comments") => Some(json!({ "type": "object", "required": ["text"],
                "additionalProperties": false, "properties": {
                    "text": { "type": "string", "minLength": 1, "maxLength": 10000 }, "files": files } })),
            ("patch", "/incidents/{id}") => {
                Some(json!({ "type": "object", "additionalProperties": false, "properties": {
                "status": { "enum": ["new", "open", "stalled", "resolved", "rejected"] },
                "severity": { "enum": ["low", "medium", "high", "critical"] },
                "tlp": { "enum": ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"] },
                "class": { "type": "string", "description": "An RSIT classification type" },
                "title": { "type": "string" },
                "assignee": { "type": ["string", "null"], "description": "An analyst's e-mail address; null unassigns" },
                "add_orgs": { "type": "array", "items": { "type": "integer" } },
                "remove_orgs": { "type": "array", "items": { "type": "integer" } },
                "note": { "type": "string", "description": "Why: kept with the change in the timeline" } } }))
            }
            ("post", "/incidents/{id}/events") => {
                Some(json!({ "type": "object", "additionalProperties": false, "properties": {
                "events": { "type": "array", "items": { "type": "integer" } },
                "search": { "type": "string", "description": "A saved search's name" },
                "query": { "type": "string", "description": "Filters as GET /events takes them: asn=64500&type=phishing" } } }))
            }
            ("post", "/incidents/{id}/merge") => Some(json!({ "type": "object", "required": ["into"],
                "additionalProperties": false, "properties": { "into": { "type": "integer" } } })),
            ("post", "/incidents/{id}/tasks/{n}") => Some(json!({ "type": "object", "required": ["done"],
                "additionalProperties": false, "properties": { "done": { "type": "boolean" } } })),
            ("post", "/incidents/{id}/messages") => Some(json!({ "type": "object", "required": ["text"],
                "additionalProperties": false, "properties": { "text": { "type": "string", "minLength": 1, "maxLength": 10000 } } })),
            ("post", "/searches") => Some(json!({ "type": "object", "required": ["name", "query"],
                "additionalProperties": false, "properties": { "name": { "type": "string", "minLength": 1, "maxLength": 100 },
                    "query": { "type": "string", "description": "Filters as GET /events takes them" } } })),
            _ => None,
        };
        if let Some(body) = body {
            op["requestBody"] = json_body(body);
        }
        if *path == "/users/{id}" {
            op["requestBody"] = json_body(json!({ "type": "object", "additionalProperties": false,
                "properties": { "role": roles, "disabled": { "type": "boolean" } } }));
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    let event = object(&[
        ("id", int.clone()),
        ("feed", text.clone()),
        ("event", json!({ "type": "object", "description": "The event in IntelMQ's flat field names" })),
        ("orgs", json!({ "type": "array", "items": { "type": "integer" } })),
        ("scope", text.clone()),
        ("report", int.clone()),
        ("aggregate", json!({ "type": "object" })),
    ]);
    let token = object(&[
        ("id", int.clone()),
        ("name", text.clone()),
        ("scope", text.clone()),
        ("created_at", text.clone()),
        ("expires_at", opt_text.clone()),
        ("revoked_at", opt_text.clone()),
        ("used_at", opt_text.clone()),
    ]);
    let user = object(&[
        ("id", int.clone()),
        ("email", text.clone()),
        ("org", int.clone()),
        ("role", text.clone()),
        ("disabled", json!({ "type": "boolean" })),
    ]);
    let file = object(&[
        ("id", int.clone()),
        ("name", text.clone()),
        ("type", text.clone()),
        ("size", int.clone()),
        ("sha256", text.clone()),
    ]);
    let entry = object(&[
        ("at", text.clone()),
        ("kind", text.clone()),
        ("by", text.clone()),
        ("text", text.clone()),
        ("files", json!({ "type": "array", "items": file })),
    ]);
    let incident = object(&[
        ("id", int.clone()),
        ("title", text.clone()),
        ("class", text.clone()),
        ("severity", json!({ "enum": ["low", "medium", "high", "critical"] })),
        ("tlp", text.clone()),
        ("status", json!({ "enum": ["new", "open", "stalled", "resolved", "rejected"] })),
        ("created", text.clone()),
        ("first_response", opt_text.clone()),
        ("closed", opt_text.clone()),
        ("orgs", json!({ "type": "array", "items": { "type": "integer" } })),
        ("events", json!({ "type": "array", "items": { "type": "integer" } })),
        ("assignee", json!({ "type": ["integer", "null"], "description": "National center only" })),
        ("merged_into", json!({ "type": ["integer", "null"], "description": "National center only" })),
        ("overdue", json!({ "enum": ["first_response", "resolution", null], "description": "National center only" })),
        (
            "tasks",
            json!({ "type": "array", "description": "The playbook's tasks; national center only",
            "items": object(&[("text", text.clone()), ("done", opt_text.clone()), ("by", json!({ "type": ["integer", "null"] }))]) }),
        ),
    ]);
    let changes = object(&[("changes", json!({ "type": "array", "items": { "type": "string" } }))]);
    let linked = object(&[("linked", int.clone()), ("more", json!({ "type": "boolean" }))]);
    let merged = object(&[("merged_into", int.clone())]);
    let task = object(&[("task", int.clone()), ("done", json!({ "type": "boolean" }))]);
    let recipients =
        object(&[("org", text.clone()), ("recipients", json!({ "type": "array", "items": { "type": "string" } }))]);
    let queued = object(&[
        ("queued", json!({ "type": "array", "items": recipients })),
        ("sent", json!({ "type": "boolean", "description": "Whether this server sends what is queued" })),
    ]);
    let search = object(&[("name", text.clone()), ("query", text.clone())]);
    let searches = object(&[("searches", json!({ "type": "array", "items": search }))]);
    let mut incident_detail = incident.clone();
    incident_detail["properties"]["timeline"] = json!({ "type": "array", "items": entry });
    let mut new_user = user.clone();
    new_user["properties"]["password"] = json!({ "type": "string", "description": "The password made for the user when none was given, shown this once" });
    let mut new_token = token.clone();
    new_token["properties"]["token"] = json!({ "type": "string", "description": "The secret, shown this once" });
    let indicator = object(&[
        ("id", int.clone()),
        ("kind", text.clone()),
        ("value", text.clone()),
        ("category", text.clone()),
        ("family", opt_text.clone()),
        ("tlp", text.clone()),
        ("distribution", text.clone()),
        ("confidence", int.clone()),
        ("valid_from", text.clone()),
        ("valid_until", opt_text.clone()),
        ("first_seen", text.clone()),
        ("last_seen", text.clone()),
        ("sightings", int.clone()),
        ("origin", text.clone()),
        ("revoked", json!({ "type": "boolean" })),
        ("modified", text.clone()),
    ]);
    let indicators = object(&[
        ("indicators", json!({ "type": "array", "items": { "$ref": "#/components/schemas/Indicator" } })),
        ("next", opt_text.clone()),
    ]);
    json!({
        "openapi": "3.1.0",
        "info": { "title": "farol API", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Events, reports, organizations and accounts of a farol server. Every answer holds only what the caller may see." },
        "servers": [{ "url": "/api/v1" }],
        "security": [{ "token": [] }, { "session": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": { "type": "http", "scheme": "bearer", "description": "An API token from `farol user token` or the portal" },
                "session": { "type": "apiKey", "in": "cookie", "name": crate::auth::SESSION_COOKIE },
            },
            "schemas": {
                "Error": object(&[("error", text.clone())]),
                "Event": event,
                "EventPage": object(&[
                    ("events", json!({ "type": "array", "items": { "$ref": "#/components/schemas/Event" } })),
                    ("next", opt_text.clone()),
                ]),
                "Report": { "type": "object" },
                "Reports": list("reports", "Report"),
                "Rejects": { "type": "object" },
                "Feeds": { "type": "object" },
                "Org": { "type": "object" },
                "Orgs": list("orgs", "Org"),
                "User": user,
                "NewUser": new_user,
                "Users": list("users", "User"),
                "Token": token,
                "NewToken": new_token,
                "Tokens": list("tokens", "Token"),
                "Audit": { "type": "object" },
                "Incident": incident.clone(),
                "Incidents": list("incidents", "Incident"),
                "IncidentDetail": incident_detail,
                "NewComment": entry.clone(),
                "NewIncident": incident.clone(),
                "Changes": changes,
                "Linked": linked,
                "Merged": merged,
                "Task": task,
                "Queued": queued,
                "Searches": searches,
                "Indicator": indicator,
                "Indicators": indicators,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    /// Every route the API serves is in the document, and nothing else.
    #[test]
    fn the_document_lists_the_routes() {
        let doc = super::document();
        let paths = doc["paths"].as_object().unwrap_or_else(|| panic!("no paths"));
        let documented: usize = paths.values().map(|p| p.as_object().map_or(0, |m| m.len())).sum();
        assert_eq!(documented, super::ROUTES.len());
        assert_eq!(paths["/events"]["get"]["parameters"].as_array().map(Vec::len), Some(super::FILTERS.len()));
    }
}
