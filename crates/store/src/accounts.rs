//! Accounts as the store keeps them: users, sessions, API tokens and the audit log. Secrets
//! (passwords, session ids, tokens) arrive here already hashed; the store never sees one.

use farol_model::Timestamp;
use farol_model::org::{OrgId, Role};

/// A user of the portal or the API; belongs to one organization.
#[derive(Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub org: OrgId,
    pub role: Role,
    /// An argon2id hash in PHC form.
    pub password: Option<String>,
    /// The TOTP secret, base32, when the second factor is on.
    pub totp: Option<String>,
    pub disabled: bool,
    /// Failed logins since the last success.
    pub failures: u32,
    pub locked_until: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for User {
    /// Without the password hash and the TOTP secret, so that no log ever holds them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("org", &self.org)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// A logged-in browser.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub user: User,
    /// The token every form of this session must carry.
    pub csrf: String,
    pub created_at: Timestamp,
    pub seen_at: Timestamp,
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope {
    Read,
    Write,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Write => "write",
        }
    }
}

impl std::str::FromStr for TokenScope {
    type Err = String;
    fn from_str(s: &str) -> Result<TokenScope, String> {
        match s {
            "read" => Ok(TokenScope::Read),
            "write" => Ok(TokenScope::Write),
            other => Err(format!("unknown token scope {other:?}; one of: read, write")),
        }
    }
}

/// An API token (its secret is shown once, when it is made, and never stored).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub id: i64,
    pub user: i64,
    pub name: String,
    pub scope: TokenScope,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub used_at: Option<Timestamp>,
}

impl Token {
    pub fn is_valid(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// One line of the audit log: who did what, from where, when.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub user: Option<i64>,
    pub org: Option<OrgId>,
    /// `login`, `login-failed`, `upload`, `export`, `user-add`, ...
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}
