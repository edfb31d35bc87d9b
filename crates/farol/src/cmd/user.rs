//! `farol user`: accounts for the portal and the API.

use std::io::BufRead as _;
use std::path::Path;

use anyhow::Result;
use farol_model::Timestamp;
use farol_model::org::{Role, Sector};
use farol_server::auth;
use farol_store::{TokenScope, User};

use crate::output::Table;
use crate::{Missing, Usage};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Add a user
    #[command(after_help = "Roles: admin and analyst (the national center), org-admin and org-member (an \
        organization), partner (machine access for a partner center).\n\nExamples:\n  \
        echo 'a long passphrase' | farol user add ana@cert.example --role analyst --password-stdin\n  \
        farol user add soc@hospital-x.pt --org \"Hospital X\" --role org-admin --password-stdin < pw.txt")]
    Add {
        email: String,
        /// Its organization, by name or id (default: the national center's)
        #[arg(long)]
        org: Option<String>,
        #[arg(long, value_parser = |s: &str| s.parse::<Role>())]
        role: Role,
        /// Read the password from the first line of standard input (at least 12 characters)
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users
    List,
    /// Set a user's password, read from the first line of standard input
    Passwd { email: String },
    /// Disable a user: its sessions end and its tokens stop working
    Disable { email: String },
    /// Enable a disabled user, and lift a lockout
    Enable { email: String },
    /// Turn on a second factor (TOTP) for a user and print its secret, once; --off turns it off
    #[command(after_help = "The secret and the otpauth:// address go into an authenticator app; from then on the \
        portal asks for its 6-digit code at login.")]
    Totp {
        email: String,
        #[arg(long)]
        off: bool,
    },
    /// Make an API token for a user and print it, once
    Token {
        email: String,
        /// Days until it expires (default: never)
        #[arg(long)]
        expires: Option<u32>,
        /// read, or write (uploads and changes)
        #[arg(long, default_value = "read", value_parser = |s: &str| s.parse::<TokenScope>())]
        scope: TokenScope,
        /// What it is for
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

fn password_from_stdin() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    Ok(password)
}

fn find(store: &dyn farol_store::Store, email: &str) -> Result<User> {
    store.user_by_email(email)?.ok_or_else(|| Missing(format!("no user {email}; see `farol user list`")).into())
}

pub fn run(dir: &Path, args: Args) -> Result<()> {
    let (_, store) = super::open(dir)?;
    match args.command {
        Command::Add { email, org, role, password_stdin } => {
            let org = match &org {
                Some(key) => super::org::find(&*store, key)?,
                None => {
                    store.orgs()?.into_iter().find(|o| o.sector == Sector::NationalCenter).ok_or_else(|| {
                        Usage("no national center organization: run `farol init` or pass --org".into())
                    })?
                }
            };
            let password = if password_stdin { Some(password_from_stdin()?) } else { None };
            let user = auth::new_user(&email, &org, role, password.as_deref()).map_err(Usage)?;
            let user = store.add_user(&user)?;
            println!("user {} added to {} as {}", user.email, org.name, user.role);
            if user.password.is_none() {
                println!("it cannot log in until `farol user passwd {}` sets a password", user.email);
            }
        }
        Command::List => {
            let orgs = store.orgs()?;
            let mut t = Table::new(&["id", "email", "organization", "role", "state"]);
            for u in store.users(None)? {
                let org = orgs.iter().find(|o| o.id == u.org).map_or_else(|| u.org.to_string(), |o| o.name.clone());
                let state = if u.disabled {
                    "disabled"
                } else if u.password.is_none() {
                    "no password"
                } else if u.locked_until.is_some_and(|t| t > Timestamp::now()) {
                    "locked"
                } else {
                    "active"
                };
                t.row(vec![u.id.to_string(), u.email, org, u.role.to_string(), state.to_owned()]);
            }
            print!("{}", t.render());
        }
        Command::Passwd { email } => {
            let mut user = find(&*store, &email)?;
            user.password = Some(auth::hash_password(&password_from_stdin()?).map_err(Usage)?);
            user.failures = 0;
            user.locked_until = None;
            store.update_user(&user)?;
            println!("password of {} changed", user.email);
        }
        Command::Disable { email } => {
            let mut user = find(&*store, &email)?;
            user.disabled = true;
            store.update_user(&user)?;
            println!("{} disabled: its sessions ended and its tokens no longer work", user.email);
        }
        Command::Enable { email } => {
            let mut user = find(&*store, &email)?;
            user.disabled = false;
            user.failures = 0;
            user.locked_until = None;
            store.update_user(&user)?;
            println!("{} enabled", user.email);
        }
        Command::Totp { email, off } => {
            let mut user = find(&*store, &email)?;
            if off {
                user.totp = None;
                store.update_user(&user)?;
                println!("second factor of {} turned off", user.email);
            } else {
                let secret = farol_server::totp::new_secret();
                user.totp = Some(secret.clone());
                store.update_user(&user)?;
                let center = store
                    .orgs()?
                    .into_iter()
                    .find(|o| o.sector == Sector::NationalCenter)
                    .map_or_else(|| "farol".to_owned(), |o| o.name);
                eprintln!("second factor of {} on; put this in an authenticator app (shown only now):", user.email);
                println!("secret: {secret}");
                println!("{}", farol_server::totp::uri(&center, &user.email, &secret));
            }
        }
        Command::Token { email, expires, scope, name } => {
            let user = find(&*store, &email)?;
            let (secret, token) = auth::make_token(&user, &name, scope, expires).map_err(Usage)?;
            let saved = store.add_token(&auth::digest(&secret), &token)?;
            eprintln!(
                "token {} for {} ({}, {}); it is shown only now:",
                saved.id,
                user.email,
                scope.as_str(),
                saved
                    .expires_at
                    .map_or_else(|| "does not expire".to_owned(), |t| format!("expires {}", t.to_rfc3339()))
            );
            println!("{secret}");
        }
    }
    Ok(())
}
