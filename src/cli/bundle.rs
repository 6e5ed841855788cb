//! `docket export` writes an evidence bundle; `docket verify-bundle` checks one offline
//! (docs/evidence-bundle.md).
//!
//! `export` exits 0 when the bundle was written, 1 when it was refused (no such matter, a range
//! outside the log, an investigator who may not receive it, or a log that does not bear out its
//! checkpoint), 2 when it failed (the database, the access chain, the file). It never replaces
//! an existing file, writes the bundle readable by its owner only, and writes nothing unless the
//! export was first recorded in the access chain.
//!
//! `verify-bundle` needs no data directory or database. It exits 0 when the bundle is intact, 1
//! with the first failure, 2 when the file cannot be read as a bundle.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{ArgGroup, Args};
use serde_json::json;

use super::fail;
use crate::access::chain::AccessChain;
use crate::config::Settings;
use crate::store::EventLog;
use crate::transparency;
use crate::transparency::bundle::{
    BundleFailure, BundleReport, ExportRequest, ExportScope, VerifyOptions, WitnessKey, export,
    verify_bundle,
};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("scope").required(true).args(["matter", "from"])))]
pub struct ExportArgs {
    /// The matter whose events to export (its number, e.g. 2026-0042).
    #[arg(long, value_name = "NUMBER")]
    matter: Option<String>,
    /// Export the events at positions FROM..=TO instead of a matter.
    #[arg(
        long,
        value_name = "POSITION",
        requires = "to",
        conflicts_with = "matter"
    )]
    from: Option<u64>,
    /// The last position of the range.
    #[arg(long, value_name = "POSITION", requires = "from")]
    to: Option<u64>,
    /// The file to write; it must not exist.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Prove the events against a checkpoint of the whole log signed now, rather than the
    /// smallest stored checkpoint that covers them (the default when none does).
    #[arg(long)]
    checkpoint_now: bool,
    /// The directory user the bundle is for (an active auditor, partner or admin); recorded as
    /// the principal of the export's access record.
    #[arg(long, value_name = "USER_ID")]
    investigator: Option<String>,
    /// Add a view of the decoded payloads (and the matter's folded state) for the investigator.
    #[arg(long, requires = "investigator")]
    with_view: bool,
}

#[derive(Debug, Args)]
pub struct VerifyBundleArgs {
    /// The bundle file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Key id the log's genesis event must carry: pins the log's identity. Without it, the
    /// identity is taken from the bundle itself (a warning says so).
    #[arg(long, value_name = "KEY_ID")]
    genesis_key: Option<String>,
    /// A witness's verifier key (C2SP `name+hash+key`) that must have cosigned the checkpoint;
    /// repeatable.
    #[arg(long = "witness-key", value_name = "VKEY")]
    witness_keys: Vec<String>,
    /// Verify every signature strictly, one at a time (slower; no batch fast path).
    #[arg(long)]
    strict: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run_export(settings: &Settings, args: ExportArgs) -> ExitCode {
    if args.out.exists() {
        return fail(format!("{} exists; it is not replaced", args.out.display()));
    }
    let scope = match (args.matter, args.from, args.to) {
        (Some(number), _, _) => ExportScope::Matter(number),
        (None, Some(from), Some(to)) => ExportScope::Range { from, to },
        _ => return fail("give --matter NUMBER or --from POSITION --to POSITION"),
    };
    let request = ExportRequest {
        scope,
        checkpoint_now: args.checkpoint_now,
        investigator: args.investigator,
        with_view: args.with_view,
    };

    let options = settings.log_options();
    let log = match EventLog::open(&options).await {
        Ok(log) => Arc::new(log),
        Err(error) => return fail(error),
    };
    let checkpointer = match transparency::open(
        &log,
        settings.checkpoint_origin.as_deref(),
        settings.checkpoints,
    )
    .await
    {
        Ok(checkpointer) => checkpointer,
        Err(error) => return fail(error),
    };
    let access = match AccessChain::open(&options).await {
        Ok(access) => access,
        Err(error) => return fail(error),
    };
    let vault =
        match crate::vault::Vault::open_configured(log.store().clone(), &settings.data_dir).await {
            Ok(vault) => vault,
            Err(error) => return fail(error),
        };
    let exported = match export(&log, &checkpointer, &access, &vault, &request).await {
        Ok(exported) => exported,
        Err(error) if error.is_refusal() => {
            eprintln!("docket: {error}");
            return ExitCode::from(1);
        }
        Err(error) => return fail(error),
    };
    if let Err(error) = write_new(&args.out, &exported.bytes) {
        return fail(format!("{}: {error}", args.out.display()));
    }
    let manifest = &exported.bundle.manifest;
    println!(
        "wrote {}: {}, {} events, proven against the checkpoint of tree size {}",
        args.out.display(),
        manifest.scope,
        manifest.events,
        manifest.tree_size
    );
    println!(
        "export {} recorded in the access chain at position {}",
        manifest.export_id,
        manifest.access_position.unwrap_or_default()
    );
    ExitCode::SUCCESS
}

/// Writes `bytes` to a file that must not exist yet, readable by its owner only (a bundle holds
/// client data). A partial file is removed.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

pub async fn run_verify(args: VerifyBundleArgs) -> ExitCode {
    let mut options = VerifyOptions {
        genesis_key: args.genesis_key,
        strict: args.strict,
        ..VerifyOptions::default()
    };
    for text in &args.witness_keys {
        match WitnessKey::parse(text) {
            Ok(key) => options.witness_keys.push(key),
            Err(error) => return fail(format!("--witness-key {text}: {error}")),
        }
    }
    let bytes = match read_limited(&args.file, options.max_bytes) {
        Ok(bytes) => bytes,
        Err(error) => return fail(format!("{}: {error}", args.file.display())),
    };
    let started = Instant::now();
    let outcome = tokio::task::spawn_blocking(move || verify_bundle(&bytes, &options)).await;
    let seconds = started.elapsed().as_secs_f64();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(_) => return fail("the verification task failed"),
    };
    match outcome {
        Ok(report) => {
            if args.json {
                let report = json!({"status": "intact", "report": report, "seconds": seconds});
                println!("{report}");
            } else {
                print_report(&report, seconds);
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            let unreadable = failure.kind.is_unreadable();
            if args.json {
                let status = if unreadable { "unreadable" } else { "broken" };
                println!("{}", json!({"status": status, "failure": failure}));
            } else {
                print_failure(&failure, unreadable);
            }
            ExitCode::from(if unreadable { 2 } else { 1 })
        }
    }
}

/// The file's bytes, refusing to read more than the verifier would accept.
fn read_limited(path: &Path, max_bytes: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn print_report(report: &BundleReport, seconds: f64) {
    let positions = match (report.first_position, report.last_position) {
        (Some(first), Some(last)) => format!("positions {first}-{last}"),
        _ => "no positions".to_owned(),
    };
    let versions = report
        .stream_version
        .map(|version| format!(", stream versions 1-{version}"))
        .unwrap_or_default();
    println!(
        "intact: {}, {} events ({positions}{versions}), verified in {seconds:.3} s",
        report.scope, report.events
    );
    println!(
        "checkpoint: {} at tree size {}, root {}, signed by key {}",
        report.origin, report.tree_size, report.root, report.checkpoint_key_id
    );
    let pinned = if report.genesis_key_pinned {
        " (pinned)"
    } else {
        ""
    };
    let rotations = match report.key_rotations {
        1 => "1 key rotation".to_owned(),
        n => format!("{n} key rotations"),
    };
    println!(
        "log {}, genesis key {}{pinned}, {rotations}",
        report.log_id, report.genesis_key_id
    );
    match report.cosigned_by.as_slice() {
        [] => println!("witnesses: none cosigned the checkpoint"),
        names => println!(
            "witnesses: cosigned by {} ({} checked)",
            names.join(", "),
            report.witnesses_verified.len()
        ),
    }
    if let Some(investigator) = &report.view_for {
        println!(
            "view: made for {investigator}; its payloads match the events (the view itself is \
             not covered by the proofs)"
        );
    }
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
}

fn print_failure(failure: &BundleFailure, unreadable: bool) {
    let at = failure
        .position
        .map(|position| format!(" at position {position}"))
        .unwrap_or_default();
    let label = if unreadable { "UNREADABLE" } else { "BROKEN" };
    println!("{label}{at}: {} - {}", failure.kind, failure.detail);
}
