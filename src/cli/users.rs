//! `docket users`: the operator's way to add the first admin and to administer users from the
//! machine that holds the data directory. Each change is an event in the log (actor `system`)
//! and an access record (`cli users ...`), exactly as through the API.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use super::fail;
use crate::access::chain::AccessChain;
use crate::access::record::{AccessEntry, AccessRecord, Decision};
use crate::config::Settings;
use crate::domain::identity::Role;
use crate::identity::Identity;
use crate::log::Actor;
use crate::store::EventLog;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user and print their one-time enrolment token (it expires in 72 hours).
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// admin, partner, attorney, paralegal, staff or auditor.
        #[arg(long)]
        role: String,
        /// A practice area the user is assigned to (repeatable).
        #[arg(long = "practice-area")]
        practice_areas: Vec<String>,
        /// The user's id [default: the email's local part, made unique].
        #[arg(long)]
        id: Option<String>,
    },
    /// List users with their role, status and last login.
    List,
    /// Unlock an account locked by failed logins.
    Unlock { user_id: String },
    /// Issue a fresh enrolment token (withdraws the password, authenticator and sessions).
    Reenrol { user_id: String },
    /// Disable a user and end their sessions.
    Disable {
        user_id: String,
        #[arg(long)]
        reason: String,
    },
}

pub async fn run(settings: &Settings, command: UsersCommand) -> ExitCode {
    let options = settings.log_options();
    let log = match EventLog::open(&options).await {
        Ok(log) => Arc::new(log),
        Err(error) => return fail(error),
    };
    let identity = match Identity::open(log, &options).await {
        Ok(identity) => identity,
        Err(error) => return fail(error),
    };
    let access = match AccessChain::open(&options).await {
        Ok(access) => access,
        Err(error) => return fail(error),
    };
    let actor = Actor::system();
    let (operation, target) = match &command {
        UsersCommand::Add { email, .. } => ("cli users add", email.to_lowercase()),
        UsersCommand::List => ("cli users list", String::new()),
        UsersCommand::Unlock { user_id } => ("cli users unlock", user_id.clone()),
        UsersCommand::Reenrol { user_id } => ("cli users reenrol", user_id.clone()),
        UsersCommand::Disable { user_id, .. } => ("cli users disable", user_id.clone()),
    };
    // The operator's action is recorded before it is carried out.
    let record = AccessRecord {
        principal: "system".into(),
        session: None,
        operation: operation.into(),
        request_id: None,
        client_address: None,
        entries: vec![AccessEntry {
            matter: None,
            target: "user".into(),
            target_id: (!target.is_empty()).then_some(target),
            fields: vec!["directory".into()],
            decision: Decision::Allowed,
            reason: "operator".into(),
        }],
    };
    if let Err(error) = access.record(&record).await {
        return fail(format!("the access record could not be written: {error}"));
    }
    let result = match command {
        UsersCommand::Add {
            email,
            name,
            role,
            practice_areas,
            id,
        } => {
            let Some(role) = Role::parse(&role.to_lowercase()) else {
                return fail(format!(
                    "unknown role {role}; use admin, partner, attorney, paralegal, staff or auditor"
                ));
            };
            identity
                .add_user(
                    &actor,
                    None,
                    &email,
                    &name,
                    role,
                    &practice_areas,
                    id.as_deref(),
                )
                .await
                .map(|added| {
                    println!("user {} added ({})", added.user_id, role.as_str());
                    println!("enrolment token (shown once, single use):");
                    println!("  {}", added.enrolment_token.as_str());
                    println!(
                        "it expires at {}; the user enrols with the beginEnrolment and \
                         completeEnrolment mutations",
                        crate::log::time::format_timestamp(added.expires_at)
                    );
                })
        }
        UsersCommand::List => {
            let directory = identity.directory();
            println!(
                "{:<24} {:<10} {:<9} {:<28} email",
                "id", "role", "status", "last login"
            );
            for user in directory.users.values() {
                println!(
                    "{:<24} {:<10} {:<9} {:<28} {}",
                    user.user_id,
                    user.role.as_str(),
                    user.status.as_str(),
                    user.last_login_at.as_deref().unwrap_or("never"),
                    user.email
                );
            }
            Ok(())
        }
        UsersCommand::Unlock { user_id } => identity
            .unlock_user(&actor, None, &user_id)
            .await
            .map(|()| println!("user {user_id} unlocked")),
        UsersCommand::Reenrol { user_id } => identity
            .reissue_enrolment(&actor, None, &user_id)
            .await
            .map(|added| {
                println!("enrolment token for {user_id} (shown once, single use):");
                println!("  {}", added.enrolment_token.as_str());
            }),
        UsersCommand::Disable { user_id, reason } => identity
            .disable_user(&actor, None, &user_id, &reason)
            .await
            .map(|()| println!("user {user_id} disabled; their sessions ended")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.is_user_error() => fail(error),
        Err(error) => fail(format!("the change failed: {error}")),
    }
}
