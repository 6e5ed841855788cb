//! `docket keys`: the log's signing keys (`rotate [--access]`: hand signing of the event log, or
//! of the access chain, over to a fresh key) and the vault's key-encryption keys (`kek-status`,
//! `rotate-kek`, `retire-kek --version N`).
//!
//! Each rotation is first an access record of the operator (`cli keys rotate`,
//! `cli keys rotate-kek`), as the `rotateSigningKey` and `rotateKek` mutations record theirs.
//!
//! KEK rotation runs online: new data keys are wrapped under the new version at once, and the
//! existing ones are rewrapped in batches while the server keeps serving. Nothing here prints
//! key material: only versions, counts and timings.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Subcommand;

use super::fail;
use crate::access::chain::AccessChain;
use crate::config::Settings;
use crate::store::EventLog;
use crate::vault::{RotationProgress, Vault};

/// Progress is reported each time this many more keys have been rewrapped.
const PROGRESS_EVERY: u64 = 10_000;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate the next signing key and append a rotation event signed by the current one.
    Rotate {
        /// Rotate the access chain's key instead of the event log's.
        #[arg(long)]
        access: bool,
    },
    /// The key-encryption key versions the master-key provider holds, and how many data keys
    /// each one wraps.
    KekStatus,
    /// Add a key-encryption key version and rewrap every data key under it, online.
    RotateKek,
    /// Destroy a key-encryption key version; refused while it wraps any data key or is the
    /// current one. Backups holding keys wrapped under it can no longer be unwrapped.
    RetireKek {
        /// The version to retire (see `docket keys kek-status`).
        #[arg(long)]
        version: u32,
    },
}

pub async fn run(settings: &Settings, command: KeysCommand) -> ExitCode {
    match command {
        KeysCommand::Rotate { access } => rotate_signing_key(settings, access).await,
        KeysCommand::KekStatus => match open_vault(settings).await {
            Ok(vault) => kek_status(&vault).await,
            Err(code) => code,
        },
        KeysCommand::RotateKek => match open_vault(settings).await {
            Ok(vault) => {
                if let Err(code) = record(settings, "cli keys rotate-kek", "kek").await {
                    return code;
                }
                rotate_kek(&vault).await
            }
            Err(code) => code,
        },
        KeysCommand::RetireKek { version } => match open_vault(settings).await {
            Ok(vault) => match vault.retire_kek(version).await {
                Ok(()) => {
                    println!(
                        "key-encryption key version {version} retired: nothing wrapped under it \
                         can be unwrapped any more"
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => fail(error),
            },
            Err(code) => code,
        },
    }
}

/// The operator's access record of a rotation, written before it is made.
async fn record(settings: &Settings, operation: &str, target_id: &str) -> Result<(), ExitCode> {
    let access = AccessChain::open(&settings.log_options())
        .await
        .map_err(fail)?;
    super::operator_record(
        &access,
        operation,
        None,
        "keys",
        Some(target_id.to_owned()),
        "keys",
    )
    .await
}

async fn rotate_signing_key(settings: &Settings, access: bool) -> ExitCode {
    let target = if access {
        "access_signing_key"
    } else {
        "signing_key"
    };
    if let Err(code) = record(settings, "cli keys rotate", target).await {
        return code;
    }
    let options = settings.log_options();
    let rotated = if access {
        match AccessChain::open(&options).await {
            Ok(chain) => chain.log().rotate_key().await,
            Err(error) => return fail(error),
        }
    } else {
        match EventLog::open(&options).await {
            Ok(log) => log.rotate_key().await,
            Err(error) => return fail(error),
        }
    };
    match rotated {
        Ok(rotation) => {
            println!(
                "{} signing key rotated at position {}: {} -> {}",
                if access { "access chain" } else { "event log" },
                rotation.position,
                rotation.previous_key_id,
                rotation.next_key_id
            );
            ExitCode::SUCCESS
        }
        Err(error) => fail(error.public_message()),
    }
}

async fn open_vault(settings: &Settings) -> Result<Arc<Vault>, ExitCode> {
    let log = EventLog::open(&settings.log_options())
        .await
        .map_err(fail)?;
    Vault::open_configured(log.store().clone(), &settings.data_dir)
        .await
        .map_err(fail)
}

/// One line per version the provider holds, then any version that still wraps keys but that
/// the provider no longer holds (those keys cannot be unwrapped).
async fn kek_status(vault: &Vault) -> ExitCode {
    let (versions, usage) = match (vault.master().versions().await, vault.kek_usage().await) {
        (Ok(versions), Ok(usage)) => (versions, usage),
        (Err(error), _) | (_, Err(error)) => return fail(error),
    };
    let current = versions.last().copied();
    let wraps = |version: u32| {
        usage
            .iter()
            .find(|(used, _)| *used == version)
            .map_or(0, |(_, count)| *count)
    };
    println!("key-encryption keys ({}):", vault.master().provider());
    for &version in &versions {
        let mark = if Some(version) == current {
            " (current)"
        } else {
            ""
        };
        println!("  version {version}{mark}: {} data keys", wraps(version));
    }
    let unheld: Vec<_> = usage
        .iter()
        .filter(|(version, _)| !versions.contains(version))
        .collect();
    for (version, count) in &unheld {
        println!("  version {version}: {count} data keys, NOT HELD by the provider");
    }
    if unheld.is_empty() {
        ExitCode::SUCCESS
    } else {
        fail("some data keys are wrapped under versions the provider does not hold")
    }
}

async fn rotate_kek(vault: &Vault) -> ExitCode {
    let reported = AtomicU64::new(0);
    let progress = |step: RotationProgress| {
        let before = reported.swap(step.rewrapped, Ordering::Relaxed);
        if step.rewrapped / PROGRESS_EVERY > before / PROGRESS_EVERY {
            eprintln!("docket: {} data keys rewrapped", step.rewrapped);
        }
    };
    let outcome = match vault.rotate_kek_completely(&progress).await {
        Ok(outcome) => outcome,
        Err(error) => return fail(error),
    };
    let rotation = &outcome.rotation;
    let seconds = rotation.elapsed.as_secs_f64();
    println!(
        "key-encryption key rotated to version {}: {} data keys rewrapped in {seconds:.2} s \
         ({:.0} keys/s)",
        rotation.to_version,
        rotation.rewrapped,
        rotation.rewrapped as f64 / seconds.max(1e-9)
    );
    // Keys created by a process that had not yet seen the new version are caught by a later
    // pass; say so if any were still left when rotation gave up.
    if outcome.remaining > 0 {
        return fail(format!(
            "{} data keys are still wrapped under older versions; \
             run `docket keys rotate-kek` again",
            outcome.remaining
        ));
    }
    ExitCode::SUCCESS
}
