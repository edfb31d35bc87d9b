-- Version 8: what incident handling needs beyond version 7: playbook tasks, files attached to
-- timeline entries, saved event searches, and the e-mails already taken in.
CREATE TABLE incident_tasks (
    incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    text TEXT NOT NULL,
    done_at INTEGER,
    done_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    PRIMARY KEY (incident_id, n)
) WITHOUT ROWID;
CREATE TABLE incident_files (
    id INTEGER PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES incident_timeline(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    -- Hex SHA-256 of the data.
    sha256 TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX incident_files_entry ON incident_files(entry_id);
-- Event searches kept by name, in the query language of GET /api/v1/events.
CREATE TABLE searches (
    name TEXT PRIMARY KEY,
    query TEXT NOT NULL,
    created INTEGER NOT NULL,
    created_by INTEGER REFERENCES users(id) ON DELETE SET NULL
);
-- Each e-mail taken in from the Maildir, by Message-ID (or a digest of the message when it has
-- none), so that a message seen again after a crash is not taken twice.
CREATE TABLE mail_received (
    message_id TEXT PRIMARY KEY,
    incident_id INTEGER NOT NULL,
    at INTEGER NOT NULL
);
