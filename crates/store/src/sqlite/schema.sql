-- farol's embedded store, version 1.
--
-- Event rows are written in large batches sorted by (hour, source_ip, hash), and every index
-- except the one on time starts with the hour: inserts then touch a small, hot part of each
-- index instead of random pages across it (see BENCHMARKS.md for the measurements).

CREATE TABLE feeds (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    last_success_at INTEGER,
    last_error_at INTEGER,
    last_error TEXT
);

CREATE TABLE reports (
    id INTEGER PRIMARY KEY,
    feed_id INTEGER NOT NULL REFERENCES feeds(id),
    format TEXT NOT NULL,
    name TEXT,
    -- NULL while the bytes are still arriving.
    sha256 BLOB,
    size INTEGER NOT NULL DEFAULT 0,
    received_at INTEGER NOT NULL,
    -- receiving, stored, processing, done, failed
    status TEXT NOT NULL,
    -- Last sign of life of the process that is archiving the report.
    heartbeat INTEGER NOT NULL,
    records INTEGER NOT NULL DEFAULT 0,
    events INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0,
    rejects INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    processed_at INTEGER,
    -- The range of event ids this report's processing inserted, to remove them on reprocessing.
    first_event INTEGER,
    last_event INTEGER,
    -- The fields every event of the report shares (the feed's defaults, the time received), in
    -- the compact encoding; events store only what differs from it.
    common BLOB
);
CREATE UNIQUE INDEX reports_feed_sha256 ON reports(feed_id, sha256) WHERE sha256 IS NOT NULL;
CREATE INDEX reports_unfinished ON reports(status) WHERE status <> 'done';
CREATE INDEX reports_feed_received ON reports(feed_id, received_at);

CREATE TABLE report_chunks (
    report_id INTEGER NOT NULL REFERENCES reports(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    -- zstd frame of CHUNK_SIZE uncompressed bytes (less for the last one).
    data BLOB NOT NULL,
    PRIMARY KEY (report_id, seq)
);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    hour INTEGER NOT NULL,
    time INTEGER NOT NULL,
    hash INTEGER NOT NULL,
    feed_id INTEGER NOT NULL,
    -- classification.type as its position in farol_model::ClassificationType::ALL.
    type INTEGER,
    -- IPv4 as an integer, IPv6 as a 16-byte blob, none as an empty blob.
    source_ip NOT NULL,
    source_asn INTEGER,
    source_cc TEXT,
    report_id INTEGER NOT NULL,
    raw_offset INTEGER NOT NULL,
    raw_len INTEGER NOT NULL,
    -- The whole event in farol's compact encoding.
    data BLOB NOT NULL
);
-- One row per event hash; also serves lookups by address within a time range.
CREATE UNIQUE INDEX events_dedup ON events(hour, source_ip, hash);
CREATE INDEX events_asn ON events(hour, source_asn);
CREATE INDEX events_class ON events(feed_id, type, hour);
CREATE INDEX events_time ON events(time);

-- The hours that hold events: lets queries seek the hour-prefixed indexes hour by hour.
CREATE TABLE event_hours (hour INTEGER PRIMARY KEY);

CREATE TABLE rejects (
    id INTEGER PRIMARY KEY,
    report_id INTEGER NOT NULL REFERENCES reports(id) ON DELETE CASCADE,
    line INTEGER,
    offset INTEGER NOT NULL,
    len INTEGER NOT NULL,
    reason TEXT NOT NULL,
    raw BLOB NOT NULL
);
CREATE INDEX rejects_report ON rejects(report_id);
