//! Users, sessions, API tokens and the audit log.

use farol_model::Timestamp;
use farol_model::org::OrgId;
use postgres::{Client, Row};

use super::{conflict, n};
use crate::accounts::{AuditEntry, Session, Token, TokenScope, User};
use crate::{Result, StoreError, stored_time, time};

const USER_COLUMNS: &str =
    "u.id, u.email, u.org_id, u.role, u.password, u.totp, u.disabled, u.failures, u.locked_until, u.created_at";

const TOKEN_COLUMNS: &str = "t.id, t.user_id, t.name, t.scope, t.created_at, t.expires_at, t.revoked_at, t.used_at";

fn user_from(r: &Row) -> Result<User> {
    let role: String = r.get(3);
    Ok(User {
        id: r.get(0),
        email: r.get(1),
        org: OrgId(r.get(2)),
        role: role.parse().map_err(|e: String| StoreError::Corrupt(format!("user {}: {e}", r.get::<_, i64>(0))))?,
        password: r.get(4),
        totp: r.get(5),
        disabled: r.get(6),
        failures: u32::try_from(r.get::<_, i64>(7)).unwrap_or(u32::MAX),
        locked_until: time(r.get(8)),
        created_at: stored_time(r.get(9)),
    })
}

fn token_from(r: &Row, first: usize) -> Token {
    let scope: String = r.get(first + 3);
    Token {
        id: r.get(first),
        user: r.get(first + 1),
        name: r.get(first + 2),
        scope: scope.parse().unwrap_or(TokenScope::Read),
        created_at: stored_time(r.get(first + 4)),
        expires_at: time(r.get(first + 5)),
        revoked_at: time(r.get(first + 6)),
        used_at: time(r.get(first + 7)),
    }
}

pub(super) fn add_user(c: &mut Client, user: &User) -> Result<User> {
    let row = c
        .query_one(
            "INSERT INTO users (email, org_id, role, password, totp, disabled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &user.email,
                &user.org.0,
                &user.role.as_str(),
                &user.password,
                &user.totp,
                &user.disabled,
                &user.created_at.micros(),
            ],
        )
        .map_err(|e| conflict(e, || format!("a user {:?} exists", user.email)))?;
    Ok(User { id: row.get(0), ..user.clone() })
}

pub(super) fn update_user(c: &mut Client, user: &User) -> Result<()> {
    let mut tx = c.transaction()?;
    let changed = tx
        .execute(
            "UPDATE users SET email = $2, org_id = $3, role = $4, password = $5, totp = $6, disabled = $7,
             failures = $8, locked_until = $9 WHERE id = $1",
            &[
                &user.id,
                &user.email,
                &user.org.0,
                &user.role.as_str(),
                &user.password,
                &user.totp,
                &user.disabled,
                &i64::from(user.failures),
                &user.locked_until.map(Timestamp::micros),
            ],
        )
        .map_err(|e| conflict(e, || format!("a user {:?} exists", user.email)))?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("no user {}", user.id)));
    }
    if user.disabled {
        tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user.id])?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn user(c: &mut Client, id: i64) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
    c.query_opt(&sql, &[&id])?.as_ref().map(user_from).transpose()
}

pub(super) fn user_by_email(c: &mut Client, email: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE lower(u.email) = lower($1)");
    c.query_opt(&sql, &[&email])?.as_ref().map(user_from).transpose()
}

pub(super) fn users(c: &mut Client, org: Option<OrgId>) -> Result<Vec<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE $1::bigint IS NULL OR u.org_id = $1 ORDER BY u.email");
    c.query(&sql, &[&org.map(|o| o.0)])?.iter().map(user_from).collect()
}

pub(super) fn add_session(c: &mut Client, hash: &[u8], user: i64, csrf: &str, now: Timestamp) -> Result<()> {
    c.execute(
        "INSERT INTO sessions (hash, user_id, csrf, created_at, seen_at) VALUES ($1, $2, $3, $4, $4)",
        &[&hash, &user, &csrf, &now.micros()],
    )?;
    Ok(())
}

pub(super) fn session(c: &mut Client, hash: &[u8]) -> Result<Option<Session>> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, s.csrf, s.created_at, s.seen_at FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.hash = $1"
    );
    let Some(r) = c.query_opt(&sql, &[&hash])? else { return Ok(None) };
    Ok(Some(Session {
        user: user_from(&r)?,
        csrf: r.get(10),
        created_at: stored_time(r.get(11)),
        seen_at: stored_time(r.get(12)),
    }))
}

pub(super) fn add_token(c: &mut Client, hash: &[u8], token: &Token) -> Result<Token> {
    let row = c.query_one(
        "INSERT INTO tokens (hash, user_id, name, scope, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id",
        &[
            &hash,
            &token.user,
            &token.name,
            &token.scope.as_str(),
            &token.created_at.micros(),
            &token.expires_at.map(Timestamp::micros),
        ],
    )?;
    Ok(Token { id: row.get(0), ..token.clone() })
}

/// The token with this hash and its user; marks it used.
pub(super) fn token(c: &mut Client, hash: &[u8], now: Timestamp) -> Result<Option<(Token, User)>> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, {TOKEN_COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1"
    );
    let Some(r) = c.query_opt(&sql, &[&hash])? else { return Ok(None) };
    let found = (token_from(&r, 10), user_from(&r)?);
    c.execute("UPDATE tokens SET used_at = $2 WHERE id = $1", &[&found.0.id, &now.micros()])?;
    Ok(Some(found))
}

pub(super) fn tokens(c: &mut Client, user: i64) -> Result<Vec<Token>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens t WHERE t.user_id = $1 ORDER BY t.id");
    Ok(c.query(&sql, &[&user])?.iter().map(|r| token_from(r, 0)).collect())
}

pub(super) fn audit(c: &mut Client, e: &AuditEntry) -> Result<()> {
    c.execute(
        "INSERT INTO audit (at, user_id, org_id, action, target, ip, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&e.at.micros(), &e.user, &e.org.map(|o| o.0), &e.action, &e.target, &e.ip, &e.detail],
    )?;
    Ok(())
}

pub(super) fn audit_log(c: &mut Client, org: Option<OrgId>, limit: usize) -> Result<Vec<AuditEntry>> {
    let rows = c.query(
        "SELECT at, user_id, org_id, action, target, ip, detail FROM audit WHERE $1::bigint IS NULL OR org_id = $1
         ORDER BY id DESC LIMIT $2",
        &[&org.map(|o| o.0), &n(limit as u64)],
    )?;
    Ok(rows
        .iter()
        .map(|r| AuditEntry {
            at: stored_time(r.get(0)),
            user: r.get(1),
            org: r.get::<_, Option<i64>>(2).map(OrgId),
            action: r.get(3),
            target: r.get(4),
            ip: r.get(5),
            detail: r.get(6),
        })
        .collect())
}
