-- Version 3: IP data, organizations and their assets, routing of events, aggregation.

-- Each load of an IP data file is a new version of its dataset; the newest version of each
-- name is the active one. `data` is the dataset's compact encoding, zstd-compressed.
CREATE TABLE ipdata (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    format TEXT NOT NULL,
    priority INTEGER NOT NULL,
    description TEXT NOT NULL,
    source TEXT NOT NULL,
    sha256 BLOB NOT NULL,
    loaded_at INTEGER NOT NULL,
    ranges INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    active INTEGER NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (name, version)
);

CREATE TABLE orgs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    sector TEXT NOT NULL,
    handle TEXT UNIQUE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE org_assets (
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    -- asn, prefix, domain
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (org_id, kind, value)
) WITHOUT ROWID;

CREATE TABLE org_contacts (
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    language TEXT NOT NULL,
    interval TEXT NOT NULL,
    format TEXT NOT NULL,
    PRIMARY KEY (org_id, email)
) WITHOUT ROWID;

-- Routing: the organizations an event concerns (a varint list, NULL for none) and its scope
-- (0 not routed, 1 an organization's, 2 national without an organization, 3 outside).
ALTER TABLE events ADD COLUMN orgs BLOB;
ALTER TABLE events ADD COLUMN scope INTEGER NOT NULL DEFAULT 0;
-- Set for events that aggregate several observations (their counts are in event_parts).
ALTER TABLE events ADD COLUMN aggregated INTEGER;

-- Events by organization, hour first within each organization as the other indexes.
CREATE TABLE event_orgs (
    org_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    event_id INTEGER NOT NULL,
    PRIMARY KEY (org_id, hour, event_id)
) WITHOUT ROWID;

-- Observations an aggregated event stands for, per report that saw them: processing a report
-- again replaces its own part, so counts never double.
CREATE TABLE event_parts (
    report_id INTEGER NOT NULL,
    hash INTEGER NOT NULL,
    count INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (report_id, hash)
) WITHOUT ROWID;
CREATE INDEX event_parts_hash ON event_parts(hash);
