-- Version 4: who may see what, and who did what. Users and their sessions and API tokens,
-- the audit log, and the two facts the access policy filters events by.

-- TLP of each event as 0 (CLEAR) to 4 (RED). Events stored before this version are RED until
-- processed again: only the national center sees them.
ALTER TABLE events ADD COLUMN tlp INTEGER NOT NULL DEFAULT 4;
-- Who besides the center may receive a report's events, as farol_model::org::Distribution's
-- code: 0 producer only (the default until processing sets the feed's), 1 affected orgs,
-- 2 a community, 3 all constituents, 4 partners too.
ALTER TABLE reports ADD COLUMN distribution INTEGER NOT NULL DEFAULT 0;

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    role TEXT NOT NULL,
    -- An argon2id hash in PHC form; NULL until a password is set.
    password TEXT,
    -- A base32 TOTP secret when the second factor is on.
    totp TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX users_org ON users(org_id);

-- Sessions and tokens are kept as the SHA-256 of their secret: the store never holds one that
-- could be used.
CREATE TABLE sessions (
    hash BLOB PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    seen_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- read or write
    scope TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    used_at INTEGER
);
CREATE INDEX tokens_user ON tokens(user_id);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    user_id INTEGER,
    org_id INTEGER,
    action TEXT NOT NULL,
    target TEXT,
    ip TEXT,
    detail TEXT
);
CREATE INDEX audit_org ON audit(org_id, id);
