-- Version 4: one statistics rollup instead of two, as in the SQLite store (its version 13):
-- host_days holds one row per address, UTC day, classification type, family, TLP and
-- organization (NULL for none). events is the row's share of the whole's count: each event
-- counts there once, in the row of its first organization (or of none); org_events is its
-- count under the row's organization. Rerouting appends a correction to both; a key counts
-- where its events (or, asked by organization, its org_events) sum above zero.
DROP TABLE host_days;
DROP TABLE host_orgs;

CREATE TABLE host_days (
    report_id bigint NOT NULL,
    org bigint,
    day bigint NOT NULL,
    ip inet NOT NULL,
    -- classification.type's code, -1 for none; the family, '' for none; TLP 0 (CLEAR) to 4 (RED).
    type bigint NOT NULL,
    family text NOT NULL,
    tlp bigint NOT NULL,
    asn bigint,
    cc text,
    events bigint NOT NULL,
    org_events bigint NOT NULL
);
CREATE INDEX host_days_day ON host_days (day);
CREATE INDEX host_days_org ON host_days (org, day) WHERE org IS NOT NULL;
CREATE INDEX host_days_report ON host_days (report_id);

-- The events stored before this version, counted.
INSERT INTO host_days (report_id, org, day, ip, type, family, tlp, asn, cc, events, org_events)
SELECT report_id, o.org, hour / 24, source_ip, coalesce(type, -1), coalesce(family, ''), tlp, min(source_asn),
       min(source_cc), count(*) FILTER (WHERE o.i = 1), count(*)
FROM events, unnest(CASE WHEN cardinality(orgs) > 0 THEN orgs ELSE '{NULL}' END) WITH ORDINALITY AS o(org, i)
WHERE source_ip IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7;
