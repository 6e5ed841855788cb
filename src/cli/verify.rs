//! `docket verify`: checks the event log and the access chain beside it (when there is one).
//! Exit 0 when both are intact, 1 with the first failure when either is broken, 2 when either
//! cannot be read at all.
//!
//! The text report has the event log's lines first, then the access chain's. The JSON report
//! is one object: `status` (`intact`, `broken` or `unreadable`, for both chains together), the
//! event log's `summary` or `failure` and `seconds` as before, and `access` with the access
//! chain's `status` (`intact`, `broken`, `absent`, `unreadable` or `skipped`) and its `summary`,
//! `failure` or `error`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};

use super::fail;
use crate::access::chain::open_existing_access_store;
use crate::config::Settings;
use crate::log::verify::{VerifyFailure, VerifySummary};
use crate::store::{LogStore, StoreError, open_existing_store};
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
    let log = if args.access_only {
        Outcome::Skipped
    } else {
        let store = match open_existing_store(&options).await {
            Ok(store) => store,
            Err(error) => return fail(error),
        };
        let verify = VerifyOptions {
            strict: args.strict,
            genesis_key: args.genesis_key.clone(),
        };
        match check(store, verify, args.json).await {
            Outcome::Unreadable(error) => return fail(error),
            outcome => outcome,
        }
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

    if args.json {
        println!("{}", json_report(&log, &access));
    } else {
        print_log(&log);
        print_access(&access);
    }
    ExitCode::from(log.exit_code().max(access.exit_code()))
}

/// Verifies one chain with a progress bar (hidden for JSON).
async fn check(store: Arc<dyn LogStore>, options: VerifyOptions, json: bool) -> Outcome {
    let total = store.head().await.map(|head| head.position).unwrap_or(0);
    let bar = ProgressBar::new(total);
    if json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
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

fn json_report(log: &Outcome, access: &Outcome) -> Value {
    let status = if matches!(log, Outcome::Broken(_)) || matches!(access, Outcome::Broken(_)) {
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
    Value::Object(report)
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
