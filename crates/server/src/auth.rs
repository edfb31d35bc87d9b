//! Passwords, secrets, sessions and tokens, and who is asking: the [`Principal`] that every
//! handler receives, from an API token or a session cookie, or none.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use farol_model::Timestamp;
use farol_model::org::{Org, Role, Sector};
use farol_policy::Viewer;
use farol_store::{Session, TokenScope, User};
use sha2::{Digest, Sha256};

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 12;
/// A session ends after this long without a request...
pub const IDLE_TIMEOUT_SECS: i64 = 30 * 60;
/// ...and after this long in any case.
pub const ABSOLUTE_TIMEOUT_SECS: i64 = 12 * 60 * 60;
/// Failed logins in a row that lock an account, and for how long.
pub const LOCKOUT_AFTER: u32 = 5;
pub const LOCKOUT_SECS: i64 = 15 * 60;
/// API tokens start with this, so that secret scanners can recognize them.
pub const TOKEN_PREFIX: &str = "farol_";
pub const SESSION_COOKIE: &str = "farol_session";

/// An argon2id hash (the crate's defaults: 19 MiB, 2 passes) in PHC form.
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!("a password needs at least {MIN_PASSWORD} characters"));
    }
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// The work of checking a password against no account, so that the answer for an account
/// that does not exist takes as long as for one that does.
pub fn verify_nobody(password: &str) {
    let nobody = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let _ = verify_password(nobody, password);
}

/// A new user of `org`, checked: an e-mail address, a role that belongs to that kind of
/// organization (the center's roles to the center only), and a password long enough if given.
pub fn new_user(email: &str, org: &Org, role: Role, password: Option<&str>) -> Result<User, String> {
    let email = farol_model::org::check_email(email)?;
    let center = org.sector == Sector::NationalCenter;
    if role.is_center() != center {
        return Err(format!(
            "role {role} belongs to {}; {} is {}the national center",
            if role.is_center() { "the national center" } else { "other organizations" },
            org.name,
            if center { "" } else { "not " }
        ));
    }
    Ok(User {
        id: 0,
        email,
        org: org.id,
        role,
        password: password.map(hash_password).transpose()?,
        totp: None,
        disabled: false,
        failures: 0,
        locked_until: None,
        created_at: Timestamp::now(),
    })
}

/// 32 random bytes, as hex.
pub fn secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).unwrap_or_else(|e| panic!("the system has no random numbers: {e}"));
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new API token, as shown to its owner once.
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", secret())
}

/// A new token for a user, and its secret (shown once); it expires after `expires_days`.
pub fn make_token(
    user: &User,
    name: &str,
    scope: TokenScope,
    expires_days: Option<u32>,
) -> Result<(String, farol_store::Token), String> {
    let now = Timestamp::now();
    let expires_at = match expires_days {
        None => None,
        Some(d @ 1..=3650) => now.add_secs(i64::from(d) * 86_400),
        Some(_) => return Err("expires after: expected 1 to 3650 days".to_owned()),
    };
    let token = farol_store::Token {
        id: 0,
        user: user.id,
        name: name.to_owned(),
        scope,
        created_at: now,
        expires_at,
        revoked_at: None,
        used_at: None,
    };
    Ok((new_token(), token))
}

/// What the store keeps of a session id or a token.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time comparison, for CSRF tokens.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How a request proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Token(TokenScope),
    Session { hash: [u8; 32], csrf: String },
}

/// An authenticated user.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub viewer: Viewer,
    pub credential: Credential,
}

impl Principal {
    pub fn new(user: User, credential: Credential) -> Principal {
        Principal { viewer: Viewer::of(&user), user, credential }
    }

    pub fn csrf(&self) -> &str {
        match &self.credential {
            Credential::Session { csrf, .. } => csrf,
            Credential::Token(_) => "",
        }
    }

    /// Whether a request that changes something may go ahead: tokens need the write scope,
    /// sessions the form's (or the header's) CSRF token.
    pub fn may_write(&self, csrf: Option<&str>) -> bool {
        match &self.credential {
            Credential::Token(scope) => *scope == TokenScope::Write,
            Credential::Session { csrf: expected, .. } => csrf.is_some_and(|c| same(c, expected)),
        }
    }
}

/// Whether a session is still alive at `now`.
pub fn session_alive(s: &Session, now: Timestamp) -> bool {
    let secs = |t: Timestamp| now.secs() - t.secs();
    !s.user.disabled && secs(s.seen_at) < IDLE_TIMEOUT_SECS && secs(s.created_at) < ABSOLUTE_TIMEOUT_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse battery!"));
        assert!(!verify_password("not a hash", "x"));
        assert!(hash_password("short").unwrap_err().contains("12"));
    }

    #[test]
    fn secrets_differ_and_compare_in_constant_time() {
        assert_ne!(secret(), secret());
        assert!(new_token().starts_with("farol_"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
