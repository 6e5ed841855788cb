//! `docket checkpoint` and `docket prove`: the log's signed checkpoints and the proofs against
//! them, from the machine that holds the data directory, as JSON on standard output.
//!
//! - `docket checkpoint sign` signs a checkpoint of the log as it is now and prints it;
//! - `docket checkpoint show [--size N] [--note]` prints the latest checkpoint, or the one of
//!   `N` events (`--note`: only its signed note, as `GET /checkpoint` serves it);
//! - `docket checkpoint list [--limit L] [--before N]` prints `{"checkpoints": [...],
//!   "nextBefore": ...}`, largest first;
//! - `docket prove inclusion --position P [--size N]` and `docket prove consistency --first A
//!   --second B` print the proof.
//!
//! The JSON is the shape GraphQL and the HTTP routes give (docs/api.md, "Checkpoints and
//! proofs"). Each use is recorded in the access chain (principal `system`, reason `operator`)
//! before anything is printed. Exit 0 with the answer; 1 with `{"error": {"code", "message"}}`
//! on standard output when the request cannot be answered (`OUT_OF_RANGE`, `NOT_FOUND`...);
//! 2 when the data directory cannot be opened or the access cannot be recorded.

use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;
use serde_json::json;

use super::fail;
use crate::access::chain::AccessChain;
use crate::access::record::{AccessEntry, AccessRecord, Decision};
use crate::api::graphql::transparency::proofs::{self, ProofError};
use crate::api::graphql::transparency::{CHECKPOINTS_FIELD, PROOFS_FIELD};
use crate::config::Settings;
use crate::store::EventLog;
use crate::transparency::{self, Checkpointer};

#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Sign a checkpoint of the log as it is now (prints the latest one when it already
    /// covers every event).
    Sign,
    /// Print the latest checkpoint, or the one of `--size` events.
    Show {
        /// The checkpoint's tree size [default: the latest].
        #[arg(long)]
        size: Option<u64>,
        /// Print only the signed note, not JSON.
        #[arg(long)]
        note: bool,
    },
    /// List the stored checkpoints, largest first.
    List {
        /// Most checkpoints to print (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Only checkpoints smaller than this tree size (a previous page's `nextBefore`).
        #[arg(long)]
        before: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProveCommand {
    /// Prove that the event at a position is in the tree of a checkpoint.
    Inclusion {
        /// The event's log position (from 1).
        #[arg(long)]
        position: u64,
        /// The tree size to prove against [default: the smallest checkpoint covering the
        /// position].
        #[arg(long)]
        size: Option<u64>,
    },
    /// Prove that the tree of `--first` events is a prefix of the tree of `--second` events.
    Consistency {
        #[arg(long)]
        first: u64,
        #[arg(long)]
        second: u64,
    },
}

/// What one use of the commands is recorded as.
struct Use {
    operation: &'static str,
    target: &'static str,
    target_id: Option<String>,
    field: &'static str,
}

pub async fn run_checkpoint(settings: &Settings, command: CheckpointCommand) -> ExitCode {
    let recorded = match &command {
        CheckpointCommand::Sign => Use {
            operation: "cli checkpoint sign",
            target: "checkpoint",
            target_id: None,
            field: CHECKPOINTS_FIELD,
        },
        CheckpointCommand::Show { size, .. } => Use {
            operation: "cli checkpoint show",
            target: "checkpoint",
            target_id: size.map(|size| size.to_string()),
            field: CHECKPOINTS_FIELD,
        },
        CheckpointCommand::List { .. } => Use {
            operation: "cli checkpoint list",
            target: "checkpoints",
            target_id: None,
            field: CHECKPOINTS_FIELD,
        },
    };
    let checkpointer = match open(settings, recorded).await {
        Ok(checkpointer) => checkpointer,
        Err(code) => return code,
    };
    match command {
        CheckpointCommand::Sign => print(proofs::sign_now(&checkpointer).await),
        CheckpointCommand::Show { size, note: true } => {
            match proofs::note(&checkpointer, size).await {
                Ok(note) => {
                    print!("{note}");
                    ExitCode::SUCCESS
                }
                Err(error) => refused(&error),
            }
        }
        CheckpointCommand::Show { size, note: false } => {
            let found = match size {
                Some(size) => proofs::at_size(&checkpointer, size)
                    .await
                    .and_then(|found| found.ok_or(ProofError::NoCheckpoint { size })),
                None => proofs::latest(&checkpointer)
                    .await
                    .and_then(|found| found.ok_or(ProofError::NoCheckpoints)),
            };
            print(found)
        }
        CheckpointCommand::List { limit, before } => {
            print(proofs::page(&checkpointer, before, limit).await)
        }
    }
}

pub async fn run(settings: &Settings, command: ProveCommand) -> ExitCode {
    let recorded = match &command {
        ProveCommand::Inclusion { position, .. } => Use {
            operation: "cli prove inclusion",
            target: "inclusion_proof",
            target_id: Some(position.to_string()),
            field: PROOFS_FIELD,
        },
        ProveCommand::Consistency { first, second } => Use {
            operation: "cli prove consistency",
            target: "consistency_proof",
            target_id: Some(format!("{first}-{second}")),
            field: PROOFS_FIELD,
        },
    };
    let checkpointer = match open(settings, recorded).await {
        Ok(checkpointer) => checkpointer,
        Err(code) => return code,
    };
    match command {
        ProveCommand::Inclusion { position, size } => {
            print(proofs::inclusion(&checkpointer, position, size).await)
        }
        ProveCommand::Consistency { first, second } => {
            print(proofs::consistency(&checkpointer, first, second).await)
        }
    }
}

/// Opens the log's checkpointer, after recording the operator's use durably.
async fn open(
    settings: &Settings,
    recorded: Use,
) -> Result<std::sync::Arc<Checkpointer>, ExitCode> {
    let options = settings.log_options();
    let log = EventLog::open(&options).await.map_err(fail)?;
    let access = AccessChain::open(&options).await.map_err(fail)?;
    let record = AccessRecord {
        principal: "system".into(),
        session: None,
        operation: recorded.operation.into(),
        request_id: None,
        client_address: None,
        entries: vec![AccessEntry {
            matter: None,
            target: recorded.target.into(),
            target_id: recorded.target_id,
            fields: vec![recorded.field.into()],
            decision: Decision::Allowed,
            reason: "operator".into(),
        }],
    };
    if let Err(error) = access.record(&record).await {
        return Err(fail(format!(
            "the access record could not be written: {error}"
        )));
    }
    transparency::open(
        &log,
        settings.checkpoint_origin.as_deref(),
        settings.checkpoints,
    )
    .await
    .map_err(fail)
}

/// Prints the answer as one line of JSON, or the refusal.
fn print<T: Serialize>(answer: Result<T, ProofError>) -> ExitCode {
    match answer.map(|answer| serde_json::to_string(&answer)) {
        Ok(Ok(text)) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Err(error)) => fail(error),
        Err(error) => refused(&error),
    }
}

/// A request that cannot be answered: its code and message as JSON, exit 1.
fn refused(error: &ProofError) -> ExitCode {
    println!(
        "{}",
        json!({ "error": { "code": error.code(), "message": error.to_string() } })
    );
    ExitCode::from(1)
}
