//! Adding and changing users, for the API and the portal alike: the policy decides, the audit
//! log remembers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use farol_model::org::{OrgId, Role};
use farol_policy::{Action, may};
use farol_store::User;

use crate::auth::{self, Principal};
use crate::{App, Failure};

/// A user to add; without a password, one is made and shown once.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    pub(crate) email: String,
    pub(crate) role: Role,
    /// The caller's own organization when absent.
    #[serde(default)]
    pub(crate) org: Option<i64>,
    #[serde(default)]
    pub(crate) password: Option<String>,
}

/// What changes about a user.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Change {
    #[serde(default)]
    pub(crate) role: Option<Role>,
    #[serde(default)]
    pub(crate) disabled: Option<bool>,
}

impl App {
    /// The users `p` may see: itself, and the others the policy shows it.
    pub(crate) async fn visible_users(self: &Arc<Self>, p: &Principal) -> Result<Vec<User>, Failure> {
        let scope = (!p.user.role.is_center()).then_some(p.user.org);
        let mut users = self.blocking(move |s| s.users(scope)).await?;
        users.retain(|u| u.id == p.user.id || may(&p.viewer, Action::ReadUsers(u.org)));
        Ok(users)
    }

    /// Adds a user; returns it with the password made for it, if one was.
    pub(crate) async fn add_user(
        self: &Arc<Self>,
        p: &Principal,
        from: SocketAddr,
        new: NewUser,
    ) -> Result<(User, Option<String>), Failure> {
        let org = new.org.map_or(p.user.org, OrgId);
        if !may(&p.viewer, Action::ManageUser(org, new.role)) {
            // An organization the caller may not see does not exist for it.
            return Err(if may(&p.viewer, Action::ReadOrg(org)) { Failure::forbidden() } else { Failure::not_found() });
        }
        let found = self.blocking(move |s| Ok(s.orgs()?.into_iter().find(|o| o.id == org))).await?;
        let org = found.ok_or_else(|| Failure::new(StatusCode::NOT_FOUND, format!("no organization {org}")))?;
        let made = new.password.is_none().then(|| auth::secret()[..24].to_owned());
        let password = new.password.as_deref().or(made.as_deref());
        let user = auth::new_user(&new.email, &org, new.role, password).map_err(Failure::bad)?;
        let user = self.blocking(move |s| s.add_user(&user)).await?;
        let target = format!("user {} ({}, {})", user.email, org.name, user.role);
        self.audit(Some(&p.user), from, "user-add", Some(target)).await;
        Ok((user, made))
    }

    /// Changes another user's role or state. Users the caller may not see are not found;
    /// nobody changes their own role or disables themselves (another administrator can).
    pub(crate) async fn change_user(
        self: &Arc<Self>,
        p: &Principal,
        from: SocketAddr,
        id: i64,
        change: Change,
    ) -> Result<User, Failure> {
        let found = self.blocking(move |s| s.user(id)).await?;
        let visible = |u: &User| u.id == p.user.id || may(&p.viewer, Action::ReadUsers(u.org));
        let Some(mut user) = found.filter(visible) else { return Err(Failure::not_found()) };
        if user.id == p.user.id {
            return Err(Failure::bad("you cannot change your own role or disable yourself; another administrator can"));
        }
        let role = change.role.unwrap_or(user.role);
        if !may(&p.viewer, Action::ManageUser(user.org, user.role))
            || !may(&p.viewer, Action::ManageUser(user.org, role))
        {
            return Err(Failure::forbidden());
        }
        if role.is_center() != user.role.is_center() {
            return Err(Failure::bad(format!("role {role} does not belong to this user's organization")));
        }
        user.role = role;
        user.disabled = change.disabled.unwrap_or(user.disabled);
        let saved = user.clone();
        self.blocking(move |s| s.update_user(&saved)).await?;
        let state = if user.disabled { "disabled" } else { "active" };
        self.audit(Some(&p.user), from, "user-change", Some(format!("user {} ({}, {state})", user.email, user.role)))
            .await;
        Ok(user)
    }
}
