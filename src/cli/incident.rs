//! `docket incident`: the operator's way to contain an incident from the machine that holds the
//! data directory, without signing in: `lockdown` (every session, API key and pending
//! enrolment of everyone), `revoke --principal ID` (every credential of one user or API
//! client), and `freeze NUMBER` / `unfreeze NUMBER` (a matter read-only, or writable again).
//!
//! Each act is an access record (`cli incident ...`, principal `system`) written before it is
//! carried out, then an event in the log (actor `system`), exactly as through the API.

use std::process::ExitCode;

use clap::Subcommand;

use super::{fail, operator_record};
use crate::app::Docket;
use crate::config::Settings;
use crate::identity::incident::{Revoked, Whose};
use crate::log::Actor;
use crate::service::CommandContext;

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// End every session, revoke every API key and withdraw every pending enrolment token, of
    /// everyone, at once.
    Lockdown {
        #[arg(long)]
        reason: String,
    },
    /// Withdraw every credential of one principal: `user:<id>` (sessions, pending enrolment)
    /// or `api_client:<id>` (sessions, every API key). A bare id means `user:<id>`.
    Revoke {
        #[arg(long)]
        principal: String,
        #[arg(long)]
        reason: String,
    },
    /// Freeze a matter: readable, but every change refused and no erasure, until unfrozen.
    Freeze {
        number: String,
        #[arg(long)]
        reason: String,
    },
    /// Lift a matter's freeze.
    Unfreeze {
        number: String,
        #[arg(long)]
        reason: String,
    },
}

pub async fn run(settings: &Settings, command: IncidentCommand) -> ExitCode {
    let docket = match Docket::open(settings).await {
        Ok(docket) => docket,
        Err(error) => return fail(error),
    };
    let actor = Actor::system();
    match command {
        IncidentCommand::Lockdown { reason } => {
            revoke(
                &docket,
                &actor,
                Whose::Everyone,
                &reason,
                "cli incident lockdown",
            )
            .await
        }
        IncidentCommand::Revoke { principal, reason } => {
            let text = if principal.contains(':') || principal.trim() == "*" {
                principal
            } else {
                format!("user:{}", principal.trim())
            };
            match Whose::parse(&text) {
                Ok(Whose::Everyone) => fail("use `docket incident lockdown` for everyone"),
                Ok(whose) => revoke(&docket, &actor, whose, &reason, "cli incident revoke").await,
                Err(error) => fail(error),
            }
        }
        IncidentCommand::Freeze { number, reason } => {
            freeze(&docket, &actor, &number, &reason, true).await
        }
        IncidentCommand::Unfreeze { number, reason } => {
            freeze(&docket, &actor, &number, &reason, false).await
        }
    }
}

async fn revoke(
    docket: &Docket,
    actor: &Actor,
    whose: Whose,
    reason: &str,
    operation: &str,
) -> ExitCode {
    let (target, target_id) = match &whose {
        Whose::User(id) => ("user", Some(id.clone())),
        Whose::ApiClient(id) => ("api_client", Some(id.clone())),
        Whose::Everyone => ("everyone", None),
    };
    if let Err(code) = operator_record(
        &docket.access,
        operation,
        None,
        target,
        target_id,
        "credentials",
    )
    .await
    {
        return code;
    }
    match docket
        .identity
        .revoke_credentials(actor, None, &whose, reason)
        .await
    {
        Ok(Revoked {
            sessions,
            api_keys,
            enrolments,
        }) => {
            println!(
                "credentials of {} revoked: {sessions} sessions ended, {} API keys revoked, \
                 {enrolments} pending enrolments withdrawn",
                whose.as_principal(),
                api_keys.len()
            );
            ExitCode::SUCCESS
        }
        Err(error) if error.is_user_error() => fail(error),
        Err(error) => fail(format!("the revocation failed: {error}")),
    }
}

async fn freeze(
    docket: &Docket,
    actor: &Actor,
    number: &str,
    reason: &str,
    frozen: bool,
) -> ExitCode {
    let number = number.trim().to_ascii_uppercase();
    let operation = if frozen {
        "cli incident freeze"
    } else {
        "cli incident unfreeze"
    };
    if let Err(code) = operator_record(
        &docket.access,
        operation,
        Some(number.clone()),
        "matter",
        Some(number.clone()),
        "frozen",
    )
    .await
    {
        return code;
    }
    let context = CommandContext::new(actor.clone());
    let result = if frozen {
        docket
            .service
            .freeze_matter(&context, &number, reason)
            .await
    } else {
        docket
            .service
            .unfreeze_matter(&context, &number, reason)
            .await
    };
    match result {
        Ok(committed) => {
            println!(
                "matter {number} {} at position {}",
                if frozen { "frozen" } else { "unfrozen" },
                committed.last_position
            );
            ExitCode::SUCCESS
        }
        Err(error) if error.is_user_error() => fail(error.public_message()),
        Err(error) => fail(format!("the change failed: {}", error.public_message())),
    }
}
