-- Version 13: one statistics rollup instead of two. host_days and host_orgs held a row each
-- for every routed address; host_days now holds both, one row per address, UTC day,
-- classification type, family, TLP and organization (NULL for none). events is the row's
-- share of the whole's count: each event counts there once, in the row of its first
-- organization (or of none); org_events is its count under the row's organization. Rerouting
-- appends a correction to both; a key counts where its events (or, asked by organization,
-- its org_events) sum above zero. migrate() counts the events already stored into it.
DROP TABLE host_days;
DROP TABLE host_orgs;

CREATE TABLE host_days (
    report_id INTEGER NOT NULL,
    org INTEGER,
    day INTEGER NOT NULL,
    -- As events.source_ip: IPv4 as an integer, IPv6 as a 16-byte blob.
    ip NOT NULL,
    -- classification.type's code, -1 for none; the family, '' for none; TLP 0 (CLEAR) to 4 (RED).
    type INTEGER NOT NULL,
    family TEXT NOT NULL,
    tlp INTEGER NOT NULL,
    asn INTEGER,
    cc TEXT,
    events INTEGER NOT NULL,
    org_events INTEGER NOT NULL
);
CREATE INDEX host_days_day ON host_days(day);
CREATE INDEX host_days_org ON host_days(org, day) WHERE org IS NOT NULL;
CREATE INDEX host_days_report ON host_days(report_id);
