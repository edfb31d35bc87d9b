-- Version 5: the index by organization holds runs of consecutive event ids rather than one row
-- per event. A batch is written sorted by hour and address, and an organization's networks are
-- address ranges, so its events of an hour arrive as a few runs: writing one row per run
-- instead of per event took a fifth off ingest with routing on (see BENCHMARKS.md).
-- Every event of a run has the run's hour and comes from one report; an organization's runs
-- never overlap.
CREATE TABLE org_runs (
    org_id INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    PRIMARY KEY (org_id, hour, first_id)
) WITHOUT ROWID;

INSERT INTO org_runs (org_id, hour, first_id, last_id)
SELECT org_id, hour, min(event_id), max(event_id)
FROM (
    SELECT o.org_id, o.hour, o.event_id, e.report_id,
           o.event_id - row_number() OVER (PARTITION BY o.org_id, o.hour, e.report_id ORDER BY o.event_id) AS run
    FROM event_orgs o JOIN events e ON e.id = o.event_id
)
GROUP BY org_id, hour, report_id, run;

DROP TABLE event_orgs;
