-- Version 12: what collectors, partner exchanges and live streams remember between runs, in a
-- table of its own. It was a column of feeds, so that a partner's or a stream's state (keys
-- with a colon: partner:NAME, stream:org:ID) made a feed row that feed lists then showed.
CREATE TABLE states (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO states (key, value) SELECT name, collector_state FROM feeds WHERE collector_state IS NOT NULL;
DELETE FROM feeds WHERE name LIKE '%:%' AND NOT EXISTS (SELECT 1 FROM reports WHERE feed_id = feeds.id);
ALTER TABLE feeds DROP COLUMN collector_state;
