-- Version 7: incidents, the organizations they concern, the events they stand on, and their
-- timelines.
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    -- classification.type of the reference taxonomy (RSIT).
    class TEXT NOT NULL,
    severity TEXT NOT NULL,
    -- farol_model::Tlp::code
    tlp INTEGER NOT NULL,
    status TEXT NOT NULL,
    assignee INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created INTEGER NOT NULL,
    first_response INTEGER,
    closed INTEGER,
    merged_into INTEGER REFERENCES incidents(id)
);
CREATE TABLE incident_orgs (
    incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    PRIMARY KEY (incident_id, org_id)
) WITHOUT ROWID;
CREATE INDEX incident_orgs_org ON incident_orgs(org_id, incident_id);
-- Events are linked by id, and by hash and report as well: processing a report again gives its
-- events new ids, and the links follow them by hash (see finish_processing).
CREATE TABLE incident_events (
    incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    event_id INTEGER NOT NULL,
    hash INTEGER NOT NULL,
    report_id INTEGER NOT NULL,
    PRIMARY KEY (incident_id, event_id)
) WITHOUT ROWID;
CREATE INDEX incident_events_report ON incident_events(report_id);
CREATE TABLE incident_timeline (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    user_id INTEGER,
    kind TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX incident_timeline_incident ON incident_timeline(incident_id, id);
