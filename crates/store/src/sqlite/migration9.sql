-- Version 9: statistics. Events keep their malware family beside the other indexed columns,
-- and two rollups count each source address once per UTC day, classification type, family
-- and TLP: host_days (with the address's AS and country) and host_orgs (the same per
-- organization of its networks). The writer appends a batch's new events to them, grouped, in
-- the batch's own transaction, each row marked with its report: processing a report again
-- deletes its rows with its events, and rerouting appends a correction (-1 for the old
-- organizations, +1 for the new). A key counts where its events sum above zero; distinct
-- addresses over any period are counted from the rows of its days, exactly. (Version 13 made
-- the two one, and counts the events already stored.) population holds the denominators
-- operators load.
ALTER TABLE events ADD COLUMN family TEXT;

CREATE TABLE host_days (
    report_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    -- As events.source_ip: IPv4 as an integer, IPv6 as a 16-byte blob.
    ip NOT NULL,
    -- classification.type's code, -1 for none; the family, '' for none; TLP 0 (CLEAR) to 4 (RED).
    type INTEGER NOT NULL,
    family TEXT NOT NULL,
    tlp INTEGER NOT NULL,
    asn INTEGER,
    cc TEXT,
    events INTEGER NOT NULL
);
CREATE INDEX host_days_day ON host_days(day);
CREATE INDEX host_days_report ON host_days(report_id);

CREATE TABLE host_orgs (
    report_id INTEGER NOT NULL,
    org INTEGER NOT NULL,
    day INTEGER NOT NULL,
    ip NOT NULL,
    type INTEGER NOT NULL,
    family TEXT NOT NULL,
    tlp INTEGER NOT NULL,
    asn INTEGER,
    cc TEXT,
    events INTEGER NOT NULL
);
CREATE INDEX host_orgs_org ON host_orgs(org, day);
CREATE INDEX host_orgs_report ON host_orgs(report_id);

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
