//! `docket verify`: exit 0 when the log is intact, 1 with the first failure otherwise,
//! 2 when the log cannot be read at all.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::fail;
use crate::config::Settings;
use crate::store::open_existing_store;
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
}

pub async fn run(settings: &Settings, args: VerifyArgs) -> ExitCode {
    let store = match open_existing_store(&settings.log_options()).await {
        Ok(store) => store,
        Err(error) => return fail(error),
    };
    let total = store.head().await.map(|head| head.position).unwrap_or(0);
    let bar = ProgressBar::new(total);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let started = Instant::now();
    let options = VerifyOptions {
        strict: args.strict,
        genesis_key: args.genesis_key,
    };
    let outcome = verify_log(store, options, |done| bar.set_position(done)).await;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    match outcome {
        Err(error) => fail(error),
        Ok(Ok(summary)) => {
            let rate = summary.events as f64 / seconds.max(1e-9);
            if args.json {
                println!(
                    "{}",
                    json!({ "status": "intact", "summary": summary, "seconds": seconds })
                );
            } else {
                println!(
                    "intact: {} events, {} streams, {} key rotations, head {} ({:.0} events/s)",
                    summary.events,
                    summary.streams,
                    summary.key_rotations,
                    summary.head_hash.as_deref().unwrap_or("-"),
                    rate
                );
                println!(
                    "log {} genesis key {} current key {}",
                    summary.log_id.as_deref().unwrap_or("-"),
                    summary.genesis_key_id.as_deref().unwrap_or("-"),
                    summary.current_key_id.as_deref().unwrap_or("-"),
                );
            }
            ExitCode::SUCCESS
        }
        Ok(Err(failure)) => {
            if args.json {
                println!("{}", json!({ "status": "broken", "failure": failure }));
            } else {
                println!(
                    "BROKEN at position {} (event {}): {} - {}",
                    failure.position,
                    failure.event_id.as_deref().unwrap_or("-"),
                    serde_json::to_value(failure.reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    failure.detail
                );
            }
            ExitCode::from(1)
        }
    }
}
