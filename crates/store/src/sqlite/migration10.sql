-- Version 10: sharing. Communities are groups of organizations; indicators are observables
-- worth sharing, one per kind, value and origin (a feed, a partner, a user). Indicators derived
-- from events keep, per report, how many of its events showed them (indicator_sightings): deriving
-- a report again replaces its count, processing it again removes it. indicator_mark is the last
-- report derived. An indicator's modified time is its version and the TAXII date added: it is
-- unique, so that (modified, id) pages never skip or repeat one.
CREATE TABLE communities (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE community_members (
    community_id INTEGER NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    PRIMARY KEY (community_id, org_id)
) WITHOUT ROWID;

CREATE TABLE indicators (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    -- feed:NAME, partner:NAME or user:EMAIL
    origin TEXT NOT NULL,
    -- classification.type's name
    category TEXT NOT NULL,
    family TEXT,
    -- TLP 0 (CLEAR) to 4 (RED); distribution as farol_model::org::Distribution::code.
    tlp INTEGER NOT NULL,
    distribution INTEGER NOT NULL,
    community_id INTEGER REFERENCES communities(id) ON DELETE SET NULL,
    confidence INTEGER NOT NULL,
    -- Microseconds since 1970, UTC.
    valid_from INTEGER NOT NULL,
    valid_until INTEGER,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    sightings INTEGER NOT NULL DEFAULT 0,
    description TEXT,
    created INTEGER NOT NULL,
    modified INTEGER NOT NULL UNIQUE,
    revoked INTEGER NOT NULL DEFAULT 0,
    UNIQUE (kind, value, origin)
);

CREATE TABLE indicator_orgs (
    indicator_id INTEGER NOT NULL REFERENCES indicators(id) ON DELETE CASCADE,
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    PRIMARY KEY (org_id, indicator_id)
) WITHOUT ROWID;

CREATE TABLE indicator_sightings (
    indicator_id INTEGER NOT NULL REFERENCES indicators(id) ON DELETE CASCADE,
    report_id INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (indicator_id, report_id)
) WITHOUT ROWID;
CREATE INDEX indicator_sightings_report ON indicator_sightings(report_id);

CREATE TABLE indicator_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    report_id INTEGER NOT NULL
);
INSERT INTO indicator_mark (id, report_id) VALUES (1, 0);
