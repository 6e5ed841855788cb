//! `docket backup` and `docket restore` (docs/operations.md, "Backups and restores").
//!
//! `backup --out DIR|URL` writes one archive of the configured data directory and database and
//! prints its name; `restore --from DIR|URL` restores the newest complete archive (or
//! `--archive NAME`) into the configured data directory and database, which must be empty.
//! Exit codes: 0 done; 1 the archive was refused (signature, hashes, chains, checkpoints,
//! tampering); 2 anything else (unreachable target, missing KEK, non-empty target...).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use crate::backup::{BackupError, RestoreOptions, Target, restore, write_backup};
use crate::config::Settings;
use crate::store::LogOptions;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where the archive goes: a directory, file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "DIR_OR_URL")]
    out: String,
    /// Delete the oldest complete archives beyond this many after the new one verified.
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Where the archives are: a directory, file:///path or s3://bucket/prefix.
    #[arg(long, value_name = "DIR_OR_URL")]
    from: String,
    /// The archive to restore [default: the newest complete one].
    #[arg(long, value_name = "NAME")]
    archive: Option<String>,
    /// A surviving data directory or PostgreSQL URL of the same log, whose erasures are
    /// re-applied (repeatable).
    #[arg(long, value_name = "DIR_OR_URL")]
    erasures_from: Vec<String>,
    /// No data directory or database of the log survives: only later archives are read for
    /// erasures made after the one restored.
    #[arg(long)]
    no_surviving_log: bool,
    /// Apply the erased-subject lists of later archives whose manifest is not signed by a key
    /// of the log (a failed signature, an unknown signer) instead of stopping.
    #[arg(long)]
    accept_unverified_erasures: bool,
    /// Key id the archived log's genesis event must carry.
    #[arg(long, value_name = "KEY_ID")]
    genesis_key: Option<String>,
    /// List the archives in the target and exit.
    #[arg(long)]
    list: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run_backup(settings: &Settings, args: BackupArgs) -> ExitCode {
    let target = match Target::parse(&args.out) {
        Ok(target) => target,
        Err(error) => return failed(&error, args.json),
    };
    let report = match write_backup(&settings.log_options(), &target).await {
        Ok(report) => report,
        Err(error) => return failed(&error, args.json),
    };
    let deleted = match args.keep {
        Some(keep) => match crate::backup::schedule::apply_retention(&target, keep).await {
            Ok(deleted) => deleted,
            Err(error) => return failed(&error, args.json),
        },
        None => Vec::new(),
    };
    if args.json {
        println!(
            "{}",
            json!({ "status": "written", "report": report, "deleted": deleted })
        );
    } else {
        let bytes: u64 = report.parts.iter().map(|part| part.bytes).sum();
        println!(
            "archive {} written to {} and verified: log up to position {}, access chain up to \
             {}, {bytes} bytes",
            report.name, report.target, report.head, report.access_head
        );
        for name in deleted {
            println!("deleted old archive {name}");
        }
    }
    ExitCode::SUCCESS
}

pub async fn run_restore(settings: &Settings, args: RestoreArgs) -> ExitCode {
    let target = match Target::parse(&args.from) {
        Ok(target) => target,
        Err(error) => return failed(&error, args.json),
    };
    if args.list {
        return match target.archives().await {
            Ok(archives) => {
                for archive in archives {
                    let state = if archive.complete {
                        "complete"
                    } else {
                        "incomplete"
                    };
                    println!("{}  {state}", archive.name);
                }
                ExitCode::SUCCESS
            }
            Err(error) => failed(&error, args.json),
        };
    }
    let options = RestoreOptions {
        into: settings.log_options(),
        archive: args.archive,
        erasures_from: args
            .erasures_from
            .iter()
            .map(|source| source_options(source))
            .collect(),
        no_surviving_log: args.no_surviving_log,
        accept_unverified_erasures: args.accept_unverified_erasures,
        genesis_key: args.genesis_key,
    };
    let report = match restore(&target, &options).await {
        Ok(report) => report,
        Err(error) => return failed(&error, args.json),
    };
    if args.json {
        println!("{}", json!({ "status": "restored", "report": report }));
    } else {
        println!(
            "restored {}: log up to position {}, access chain up to {}, {} checkpoints; \
             {} later erasures re-applied (from {} later archives and {} surviving logs); \
             {} projections rebuilt",
            report.archive,
            report.head,
            report.access_head,
            report.checkpoints,
            report.erasures_reapplied.len(),
            report.later_archives_read,
            report.surviving_logs_read,
            report.projections_rebuilt
        );
    }
    for name in &report.unverified_later_archives {
        eprintln!(
            "docket: the erasures listed by later archive {name} were applied although no key \
             of the log vouches for its manifest (--accept-unverified-erasures)"
        );
    }
    if !report.erasures_recorded {
        eprintln!(
            "docket: the re-applied erasures destroyed their keys but are not recorded in the \
             restored log (no signing key): confirm them again once the key is in place"
        );
    }
    if !report.signing_key_present || !report.access_signing_key_present {
        eprintln!(
            "docket: the signing key in force is not in {}/keys (or access/keys): copy it from \
             its separate backup before serving, or nothing can be appended",
            settings.data_dir.display()
        );
    }
    ExitCode::SUCCESS
}

/// A surviving log named by a PostgreSQL URL or a data directory.
fn source_options(source: &str) -> LogOptions {
    if source.starts_with("postgres://") || source.starts_with("postgresql://") {
        let mut options = LogOptions::new(std::env::temp_dir());
        options.database_url = Some(source.to_owned());
        options
    } else {
        LogOptions::new(PathBuf::from(source))
    }
}

fn failed(error: &BackupError, as_json: bool) -> ExitCode {
    if as_json {
        println!(
            "{}",
            json!({ "status": "failed", "code": error.code(), "error": error.to_string() })
        );
    } else {
        eprintln!("docket: {error} ({})", error.code());
    }
    let refused = matches!(
        error,
        BackupError::BadSignature
            | BackupError::UntrustedSigner
            | BackupError::PartHashMismatch { .. }
            | BackupError::ChunkRejected { .. }
            | BackupError::Truncated { .. }
            | BackupError::PartMalformed { .. }
            | BackupError::Inconsistent { .. }
            | BackupError::ChainBroken { .. }
            | BackupError::CheckpointBroken { .. }
            | BackupError::Malformed { .. }
    );
    ExitCode::from(if refused { 1 } else { 2 })
}
