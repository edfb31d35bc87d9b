-- Version 14: the rollup's rows are found through runs of consecutive rowids instead of three
-- indexes of their own. A report's rows are appended sorted by organization and day, so an
-- organization's rows of a day are one run; a run is a row here, a rollup row no index entry
-- at all. Each run's rows have the run's report, organization and day. migrate() counts the
-- events already stored anew, runs and all.
DROP INDEX host_days_day;
DROP INDEX host_days_org;
DROP INDEX host_days_report;
DELETE FROM host_days;

CREATE TABLE host_day_runs (
    report_id INTEGER NOT NULL,
    org INTEGER,
    day INTEGER NOT NULL,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL
);
CREATE INDEX host_day_runs_day ON host_day_runs(day);
CREATE INDEX host_day_runs_org ON host_day_runs(org, day) WHERE org IS NOT NULL;
CREATE INDEX host_day_runs_report ON host_day_runs(report_id);
