-- Version 6: notifications to network owners.

-- What each contact of an organization has been told: the events of every report up to
-- `last_report` (reports are told about whole, in id order, once every earlier one is finished,
-- so that processing a report again never tells its events twice).
CREATE TABLE notify_marks (
    org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    last_report INTEGER NOT NULL,
    -- When the last message went to the outbox; NULL before the first.
    last_sent INTEGER,
    PRIMARY KEY (org_id, email)
) WITHOUT ROWID;

-- Messages to send, and sent. A message is complete (RFC 5322) before it is queued, so that
-- what is sent is exactly what was queued, however often delivery is tried.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    org_id INTEGER REFERENCES orgs(id) ON DELETE SET NULL,
    created INTEGER NOT NULL,
    sender TEXT NOT NULL,
    -- Comma-separated addresses.
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL,
    events INTEGER NOT NULL,
    message BLOB NOT NULL,
    -- pending, sent, failed
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error TEXT,
    sent_at INTEGER
);
CREATE INDEX outbox_due ON outbox(next_attempt) WHERE state = 'pending';

-- Mute rules: events they match are left out of notifications (they stay in the store and the
-- portal). Every condition given must match; an absent one matches anything.
CREATE TABLE inhibitions (
    id INTEGER PRIMARY KEY,
    org_id INTEGER REFERENCES orgs(id) ON DELETE CASCADE,
    asset_kind TEXT,
    asset TEXT,
    -- A classification taxonomy, type or identifier.
    classification TEXT,
    reason TEXT NOT NULL,
    created INTEGER NOT NULL,
    created_by TEXT,
    expires INTEGER
);
