//! Users, sessions, API tokens and the audit log.

use farol_model::Timestamp;
use farol_model::org::OrgId;
use rusqlite::{Connection, OptionalExtension, params};

use super::constituency::conflict;
use crate::accounts::{AuditEntry, Session, Token, TokenScope, User};
use crate::{Result, StoreError, stored_time, time};

const USER_COLUMNS: &str =
    "u.id, u.email, u.org_id, u.role, u.password, u.totp, u.disabled, u.failures, u.locked_until, u.created_at";

fn user_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(3)?;
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        org: OrgId(r.get(2)?),
        role: role
            .parse()
            .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into()))?,
        password: r.get(4)?,
        totp: r.get(5)?,
        disabled: r.get(6)?,
        failures: r.get(7)?,
        locked_until: time(r.get(8)?),
        created_at: stored_time(r.get(9)?),
    })
}

fn token_from(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Token> {
    let scope: String = r.get(first + 3)?;
    Ok(Token {
        id: r.get(first)?,
        user: r.get(first + 1)?,
        name: r.get(first + 2)?,
        scope: scope.parse().unwrap_or(TokenScope::Read),
        created_at: stored_time(r.get(first + 4)?),
        expires_at: time(r.get(first + 5)?),
        revoked_at: time(r.get(first + 6)?),
        used_at: time(r.get(first + 7)?),
    })
}

const TOKEN_COLUMNS: &str = "t.id, t.user_id, t.name, t.scope, t.created_at, t.expires_at, t.revoked_at, t.used_at";

pub(super) fn add_user(conn: &Connection, user: &User) -> Result<User> {
    conn.execute(
        "INSERT INTO users (email, org_id, role, password, totp, disabled, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            user.email,
            user.org.0,
            user.role.as_str(),
            user.password,
            user.totp,
            user.disabled,
            user.created_at.micros()
        ],
    )
    .map_err(|e| conflict(e, || format!("a user {:?} exists", user.email)))?;
    let id = conn.last_insert_rowid();
    Ok(User { id, ..user.clone() })
}

pub(super) fn update_user(conn: &Connection, user: &User) -> Result<()> {
    let changed = conn.execute(
        "UPDATE users SET email = ?2, org_id = ?3, role = ?4, password = ?5, totp = ?6, disabled = ?7, failures = ?8,
         locked_until = ?9 WHERE id = ?1",
        params![
            user.id,
            user.email,
            user.org.0,
            user.role.as_str(),
            user.password,
            user.totp,
            user.disabled,
            user.failures,
            user.locked_until.map(Timestamp::micros)
        ],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("no user {}", user.id)));
    }
    if user.disabled {
        conn.execute("DELETE FROM sessions WHERE user_id = ?1", [user.id])?;
    }
    Ok(())
}

pub(super) fn user(conn: &Connection, id: i64) -> Result<Option<User>> {
    Ok(conn.query_row(&format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"), [id], user_from).optional()?)
}

pub(super) fn user_by_email(conn: &Connection, email: &str) -> Result<Option<User>> {
    Ok(conn
        .query_row(&format!("SELECT {USER_COLUMNS} FROM users u WHERE u.email = ?1"), [email], user_from)
        .optional()?)
}

pub(super) fn users(conn: &Connection, org: Option<OrgId>) -> Result<Vec<User>> {
    let mut stmt = conn
        .prepare(&format!("SELECT {USER_COLUMNS} FROM users u WHERE ?1 IS NULL OR u.org_id = ?1 ORDER BY u.email"))?;
    let users = stmt.query_map([org.map(|o| o.0)], user_from)?.collect::<rusqlite::Result<_>>()?;
    Ok(users)
}

pub(super) fn add_session(conn: &Connection, hash: &[u8], user: i64, csrf: &str, now: Timestamp) -> Result<()> {
    conn.execute(
        "INSERT INTO sessions (hash, user_id, csrf, created_at, seen_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![hash, user, csrf, now.micros()],
    )?;
    Ok(())
}

pub(super) fn session(conn: &Connection, hash: &[u8]) -> Result<Option<Session>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {USER_COLUMNS}, s.csrf, s.created_at, s.seen_at FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.hash = ?1"
            ),
            [hash],
            |r| {
                Ok(Session {
                    user: user_from(r)?,
                    csrf: r.get(10)?,
                    created_at: stored_time(r.get(11)?),
                    seen_at: stored_time(r.get(12)?),
                })
            },
        )
        .optional()?)
}

pub(super) fn touch_session(conn: &Connection, hash: &[u8], now: Timestamp) -> Result<()> {
    conn.execute("UPDATE sessions SET seen_at = ?2 WHERE hash = ?1", params![hash, now.micros()])?;
    Ok(())
}

pub(super) fn remove_session(conn: &Connection, hash: &[u8]) -> Result<()> {
    conn.execute("DELETE FROM sessions WHERE hash = ?1", [hash])?;
    Ok(())
}

pub(super) fn add_token(conn: &Connection, hash: &[u8], token: &Token) -> Result<Token> {
    conn.execute(
        "INSERT INTO tokens (hash, user_id, name, scope, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            hash,
            token.user,
            token.name,
            token.scope.as_str(),
            token.created_at.micros(),
            token.expires_at.map(Timestamp::micros)
        ],
    )?;
    Ok(Token { id: conn.last_insert_rowid(), ..token.clone() })
}

/// The token with this hash and its user; marks it used.
pub(super) fn token(conn: &Connection, hash: &[u8], now: Timestamp) -> Result<Option<(Token, User)>> {
    let found = conn
        .query_row(
            &format!("SELECT {USER_COLUMNS}, {TOKEN_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1"),
            [hash],
            |r| Ok((token_from(r, 10)?, user_from(r)?)),
        )
        .optional()?;
    if let Some((t, _)) = &found {
        conn.execute("UPDATE tokens SET used_at = ?2 WHERE id = ?1", params![t.id, now.micros()])?;
    }
    Ok(found)
}

pub(super) fn tokens(conn: &Connection, user: i64) -> Result<Vec<Token>> {
    let mut stmt = conn.prepare(&format!("SELECT {TOKEN_COLUMNS} FROM tokens t WHERE t.user_id = ?1 ORDER BY t.id"))?;
    let tokens = stmt.query_map([user], |r| token_from(r, 0))?.collect::<rusqlite::Result<_>>()?;
    Ok(tokens)
}

pub(super) fn revoke_token(conn: &Connection, id: i64, user: i64, now: Timestamp) -> Result<bool> {
    let sql = "UPDATE tokens SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL";
    Ok(conn.execute(sql, params![id, user, now.micros()])? > 0)
}

pub(super) fn audit(conn: &Connection, e: &AuditEntry) -> Result<()> {
    conn.execute(
        "INSERT INTO audit (at, user_id, org_id, action, target, ip, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![e.at.micros(), e.user, e.org.map(|o| o.0), e.action, e.target, e.ip, e.detail],
    )?;
    Ok(())
}

pub(super) fn audit_log(conn: &Connection, org: Option<OrgId>, limit: usize) -> Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare(
        "SELECT at, user_id, org_id, action, target, ip, detail FROM audit WHERE ?1 IS NULL OR org_id = ?1
         ORDER BY id DESC LIMIT ?2",
    )?;
    let entries = stmt
        .query_map(params![org.map(|o| o.0), i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(AuditEntry {
                at: stored_time(r.get(0)?),
                user: r.get(1)?,
                org: r.get::<_, Option<i64>>(2)?.map(OrgId),
                action: r.get(3)?,
                target: r.get(4)?,
                ip: r.get(5)?,
                detail: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(entries)
}
