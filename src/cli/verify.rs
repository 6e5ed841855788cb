//! `docket verify`: checks the event log and the access chain beside it (when there is one).
//! Exit 0 when both are intact, 1 with the first failure when either is broken, 2 when either
//! cannot be read at all.
//!
//! Beside the event log, the latest checkpoint the log stored is checked against the events (its
//! root recomputed from them, its signature by the key in force at its size); a log with no
//! checkpoint yet is not a failure. With `--against`, checkpoints saved earlier outside the
//! operator's reach are checked the same way, and where the log parts from them is reported
//! ([`crate::transparency::against`]); any that does not hold is a failure.
//!
//! The text report has the event log's lines first, then the access chain's. The JSON report
//! is one object: `status` (`intact`, `broken` or `unreadable`, for everything together), the
//! event log's `summary` or `failure` and `seconds` as before, `checkpoint` (its `status`:
//! `matches`, `broken`, `malformed` or `absent`, and what was found), `against` with `--against`
//! (`status` `holds` or `broken`, one finding per saved checkpoint, `divergence` and `forks`),
//! and `access` with the access chain's `status` (`intact`, `broken`, `absent`, `unreadable` or
//! `skipped`) and its `summary`, `failure` or `error`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};

use super::fail;
use crate::access::chain::open_existing_access_store;
use crate::config::Settings;
use crate::log::checkpoint::SignedCheckpoint;
use crate::log::verify::{VerifyFailure, VerifySummary};
use crate::store::{LogStore, StoreError, open_existing_store};
use crate::transparency::against::{
    AgainstReport, LatestCheckpoint, SavedCheckpoint, check_latest_checkpoint, verify_against,
};
use crate::verification::{VerifyOptions, verify_log};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Verify every signature strictly, one at a time (slower; no batch fast path).
    #[arg(long)]
    strict: bool,
    /// Key id the genesis event must carry; detects a log re-created under another key.
    #[arg(long, value_name = "KEY_ID")]
    genesis_key: Option<String>,
    /// Key id the access chain's genesis event must carry.
    #[arg(long, value_name = "KEY_ID")]
    access_genesis_key: Option<String>,
    /// Verify the event log only, not the access chain.
    #[arg(long, conflicts_with = "access_only")]
    log_only: bool,
    /// Verify the access chain only, not the event log.
    #[arg(long)]
    access_only: bool,
    /// A signed checkpoint saved earlier (a file, as Docket serves it), or a directory of
    /// `*.checkpoint` files such as a witness's state directory: the log must still hold what
    /// each states. Repeatable.
    #[arg(long, value_name = "FILE_OR_DIR", conflicts_with = "access_only")]
    against: Vec<PathBuf>,
}

/// What verifying one chain found.
enum Outcome {
    Intact {
        summary: VerifySummary,
        seconds: f64,
    },
    Broken(VerifyFailure),
    /// There is no access chain (nothing was ever recorded).
    Absent,
    Unreadable(StoreError),
    Skipped,
}

impl Outcome {
    fn exit_code(&self) -> u8 {
        match self {
            Outcome::Intact { .. } | Outcome::Absent | Outcome::Skipped => 0,
            Outcome::Broken(_) => 1,
            Outcome::Unreadable(_) => 2,
        }
    }
}

pub async fn run(settings: &Settings, args: VerifyArgs) -> ExitCode {
    let options = settings.log_options();
    let mut checkpoint = None;
    let mut against = None;
    let log = if args.access_only {
        Outcome::Skipped
    } else {
        let saved = match load_saved(&args.against) {
            Ok(saved) => saved,
            Err(error) => return fail(error),
        };
        let store = match open_existing_store(&options).await {
            Ok(store) => store,
            Err(error) => return fail(error),
        };
        let verify = VerifyOptions {
            strict: args.strict,
            genesis_key: args.genesis_key.clone(),
        };
        let outcome = if saved.is_empty() {
            check(store.clone(), verify, args.json).await
        } else {
            match check_against(store.clone(), &saved, verify, args.json).await {
                Ok((outcome, report)) => {
                    against = Some(report);
                    outcome
                }
                Err(error) => return fail(error),
            }
        };
        if let Outcome::Unreadable(error) = outcome {
            return fail(error);
        }
        match check_latest_checkpoint(store.as_ref(), args.genesis_key.as_deref()).await {
            Ok(latest) => checkpoint = Some(latest),
            Err(error) => return fail(error),
        }
        outcome
    };
    let access = if args.log_only {
        Outcome::Skipped
    } else {
        let verify = VerifyOptions {
            strict: args.strict,
            genesis_key: args.access_genesis_key.clone(),
        };
        match open_existing_access_store(&options).await {
            Ok(Some(store)) => check(store, verify, args.json).await,
            Ok(None) if args.access_only => {
                return fail("no access chain in this data directory or database");
            }
            Ok(None) => Outcome::Absent,
            Err(error) => Outcome::Unreadable(error),
        }
    };

    let checkpoints_hold = checkpoint.as_ref().is_none_or(LatestCheckpoint::holds)
        && against.as_ref().is_none_or(AgainstReport::holds);
    if args.json {
        let mut report = json_report(&log, &access, checkpoints_hold);
        if let Some(latest) = &checkpoint {
            report.insert("checkpoint".into(), checkpoint_json(latest));
        }
        if let Some(against) = &against {
            report.insert("against".into(), against_json(against));
        }
        println!("{}", Value::Object(report));
    } else {
        print_log(&log);
        if let Some(latest) = &checkpoint {
            print_checkpoint(latest);
        }
        if let Some(against) = &against {
            print_against(against);
        }
        print_access(&access);
    }
    let checkpoints_code = if checkpoints_hold { 0 } else { 1 };
    ExitCode::from(
        log.exit_code()
            .max(access.exit_code())
            .max(checkpoints_code),
    )
}

/// The saved checkpoints named by `--against`, ordered by origin and size.
fn load_saved(paths: &[PathBuf]) -> Result<Vec<SavedCheckpoint>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            checkpoint_files(path, 0, &mut files)?;
            if files.len() == before {
                return Err(format!("no *.checkpoint files in {}", path.display()));
            }
        } else {
            files.push(path.clone());
        }
    }
    let mut saved = files
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(file)
                .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
            let checkpoint = SignedCheckpoint::parse(&text).map_err(|error| {
                format!("{} is not a signed checkpoint: {error}", file.display())
            })?;
            Ok(SavedCheckpoint {
                source: file.display().to_string(),
                checkpoint,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    saved.sort_by(|a, b| {
        let key = |s: &SavedCheckpoint| {
            (
                s.checkpoint.checkpoint.origin.clone(),
                s.checkpoint.checkpoint.size,
            )
        };
        key(a).cmp(&key(b)).then_with(|| a.source.cmp(&b.source))
    });
    Ok(saved)
}

/// The `*.checkpoint` files in `dir` and, two levels down, in the per-log folders of a
/// witness's state directory.
fn checkpoint_files(dir: &Path, depth: u8, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let unreadable = |error: std::io::Error| format!("cannot read {}: {error}", dir.display());
    let mut entries = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if depth < 2 {
                checkpoint_files(&path, depth + 1, files)?;
            }
        } else if path
            .extension()
            .is_some_and(|extension| extension == "checkpoint")
        {
            files.push(path);
        }
    }
    Ok(())
}

/// Checks the log against saved checkpoints, with the same progress bar as [`check`].
async fn check_against(
    store: Arc<dyn LogStore>,
    saved: &[SavedCheckpoint],
    options: VerifyOptions,
    json: bool,
) -> Result<(Outcome, AgainstReport), crate::transparency::against::AgainstError> {
    let bar = progress_bar(store.as_ref(), json).await;
    let started = Instant::now();
    let report = verify_against(store, saved, options, |done| bar.set_position(done)).await;
    bar.finish_and_clear();
    let report = report?;
    let outcome = match &report.chain {
        Ok(summary) => Outcome::Intact {
            summary: summary.clone(),
            seconds: started.elapsed().as_secs_f64(),
        },
        Err(failure) => Outcome::Broken(failure.clone()),
    };
    Ok((outcome, report))
}

async fn progress_bar(store: &dyn LogStore, json: bool) -> ProgressBar {
    let total = store.head().await.map(|head| head.position).unwrap_or(0);
    let bar = ProgressBar::new(total);
    if json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Verifies one chain with a progress bar (hidden for JSON).
async fn check(store: Arc<dyn LogStore>, options: VerifyOptions, json: bool) -> Outcome {
    let bar = progress_bar(store.as_ref(), json).await;
    let started = Instant::now();
    let outcome = verify_log(store, options, |done| bar.set_position(done)).await;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    match outcome {
        Err(error) => Outcome::Unreadable(error),
        Ok(Ok(summary)) => Outcome::Intact { summary, seconds },
        Ok(Err(failure)) => Outcome::Broken(failure),
    }
}

fn json_report(log: &Outcome, access: &Outcome, checkpoints_hold: bool) -> Map<String, Value> {
    let status = if matches!(log, Outcome::Broken(_))
        || matches!(access, Outcome::Broken(_))
        || !checkpoints_hold
    {
        "broken"
    } else if matches!(access, Outcome::Unreadable(_)) {
        "unreadable"
    } else {
        "intact"
    };
    let mut report = Map::new();
    report.insert("status".into(), json!(status));
    if !matches!(log, Outcome::Skipped) {
        report.extend(members(log));
    }
    let mut chain = Map::new();
    chain.insert("status".into(), json!(status_name(access)));
    chain.extend(members(access));
    report.insert("access".into(), Value::Object(chain));
    report
}

fn checkpoint_json(latest: &LatestCheckpoint) -> Value {
    match latest {
        LatestCheckpoint::Absent => json!({ "status": "absent" }),
        LatestCheckpoint::Malformed { size, detail } => {
            json!({ "status": "malformed", "size": size, "detail": detail })
        }
        LatestCheckpoint::Checked(finding) => {
            let mut value = json!(finding);
            let status = if finding.holds { "matches" } else { "broken" };
            if let Some(object) = value.as_object_mut() {
                object.insert("status".into(), json!(status));
            }
            value
        }
    }
}

fn against_json(report: &AgainstReport) -> Value {
    let mut value = json!(report);
    let status = if report.holds() { "holds" } else { "broken" };
    if let Some(object) = value.as_object_mut() {
        object.insert("status".into(), json!(status));
    }
    value
}

/// The members describing one chain's outcome, beside its status.
fn members(outcome: &Outcome) -> Map<String, Value> {
    let mut members = Map::new();
    match outcome {
        Outcome::Intact { summary, seconds } => {
            members.insert("summary".into(), json!(summary));
            members.insert("seconds".into(), json!(seconds));
        }
        Outcome::Broken(failure) => {
            members.insert("failure".into(), json!(failure));
        }
        Outcome::Unreadable(error) => {
            members.insert("error".into(), json!(error.to_string()));
        }
        Outcome::Absent | Outcome::Skipped => {}
    }
    members
}

fn status_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Intact { .. } => "intact",
        Outcome::Broken(_) => "broken",
        Outcome::Absent => "absent",
        Outcome::Unreadable(_) => "unreadable",
        Outcome::Skipped => "skipped",
    }
}

fn print_log(outcome: &Outcome) {
    match outcome {
        Outcome::Intact { summary, seconds } => {
            println!(
                "intact: {} events, {} streams, {} key rotations, head {} ({:.0} events/s)",
                summary.events,
                summary.streams,
                summary.key_rotations,
                summary.head_hash.as_deref().unwrap_or("-"),
                rate(summary, *seconds)
            );
            println!(
                "log {} genesis key {} current key {}",
                summary.log_id.as_deref().unwrap_or("-"),
                summary.genesis_key_id.as_deref().unwrap_or("-"),
                summary.current_key_id.as_deref().unwrap_or("-"),
            );
        }
        Outcome::Broken(failure) => println!("BROKEN {}", failure_text(failure)),
        Outcome::Unreadable(error) => eprintln!("docket: {error}"),
        Outcome::Absent | Outcome::Skipped => {}
    }
}

fn print_checkpoint(latest: &LatestCheckpoint) {
    match latest {
        LatestCheckpoint::Absent => println!("checkpoint: none signed yet"),
        LatestCheckpoint::Malformed { size, detail } => {
            println!(
                "BROKEN checkpoint: the stored checkpoint of size {size} is malformed: {detail}"
            )
        }
        LatestCheckpoint::Checked(finding) if finding.holds => println!("{finding}"),
        LatestCheckpoint::Checked(finding) => println!("BROKEN {finding}"),
    }
}

fn print_against(report: &AgainstReport) {
    println!("against {} saved checkpoints:", report.checkpoints.len());
    for finding in &report.checkpoints {
        println!("  {finding}");
    }
    if let Some(position) = report.leaf_chain_break {
        println!("BROKEN the events stop following each other at position {position}");
    }
    if let Some(divergence) = &report.divergence {
        println!("DIVERGENCE {divergence}");
    }
    for fork in &report.forks {
        println!("FORK {fork}");
    }
    if report.holds() {
        println!("against: the log holds every saved checkpoint");
    }
}

fn print_access(outcome: &Outcome) {
    match outcome {
        Outcome::Intact { summary, seconds } => {
            println!(
                "access chain intact: {} events, {} key rotations, head {} ({:.0} events/s)",
                summary.events,
                summary.key_rotations,
                summary.head_hash.as_deref().unwrap_or("-"),
                rate(summary, *seconds)
            );
            println!(
                "access log {} genesis key {} current key {}",
                summary.log_id.as_deref().unwrap_or("-"),
                summary.genesis_key_id.as_deref().unwrap_or("-"),
                summary.current_key_id.as_deref().unwrap_or("-"),
            );
        }
        Outcome::Broken(failure) => println!("access chain BROKEN {}", failure_text(failure)),
        Outcome::Absent => println!("access chain: none (nothing recorded yet)"),
        Outcome::Unreadable(error) => eprintln!("docket: access chain: {error}"),
        Outcome::Skipped => {}
    }
}

fn failure_text(failure: &VerifyFailure) -> String {
    format!(
        "at position {} (event {}): {} - {}",
        failure.position,
        failure.event_id.as_deref().unwrap_or("-"),
        serde_json::to_value(failure.reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        failure.detail
    )
}

fn rate(summary: &VerifySummary, seconds: f64) -> f64 {
    summary.events as f64 / seconds.max(1e-9)
}
