-- Version 9: statistics. Events keep their malware family beside the other indexed columns,
-- and two rollups count, per UTC day, each source address once per classification type and
-- family and TLP: host_days with the address's AS and country, host_orgs per organization of its
-- networks. They are kept by the writer (a batch's new events added), by reprocessing (a
-- report's events taken out) and by rerouting; distinct addresses over any period are counted
-- from them exactly (migrate() fills both from the events already stored). population holds the denominators that operators load.
ALTER TABLE events ADD COLUMN family TEXT;

CREATE TABLE host_days (
    day INTEGER NOT NULL,
    -- As events.source_ip: IPv4 as an integer, IPv6 as a 16-byte blob.
    ip NOT NULL,
    -- classification.type's code, -1 for none; malware.name, '' for none.
    type INTEGER NOT NULL,
    family TEXT NOT NULL,
    -- As events.tlp: 0 (CLEAR) to 4 (RED).
    tlp INTEGER NOT NULL,
    asn INTEGER,
    cc TEXT,
    events INTEGER NOT NULL,
    PRIMARY KEY (day, ip, type, family, tlp)
) WITHOUT ROWID;

CREATE TABLE host_orgs (
    org INTEGER NOT NULL,
    day INTEGER NOT NULL,
    ip NOT NULL,
    type INTEGER NOT NULL,
    family TEXT NOT NULL,
    tlp INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (org, day, ip, type, family, tlp)
) WITHOUT ROWID;

CREATE TABLE population (
    -- country, asn, org or sector; the key is a country code, an AS number, an organization's
    -- name or a sector's name.
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    -- What is counted: internet-users, subscribers, active-hosts, ...
    metric TEXT NOT NULL,
    -- The first UTC day (days since 1970-01-01) the value holds for.
    valid_from INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (scope, key, metric, valid_from)
) WITHOUT ROWID;
