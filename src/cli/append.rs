//! `docket append`: append requests read as JSON lines on standard input.
//!
//! Each input line is one append request (stream, expected_version, events, actor, optional
//! request, correlation and idempotency ids). Each result is written as one JSON line as soon as
//! it is durable, with the input line number: `{"line":3,"outcome":{...}}` or
//! `{"line":3,"error":{"code":"VERSION_CONFLICT","message":"..."}}`. With `--concurrency N`,
//! up to N requests are in flight and results may come out of input order.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Semaphore, mpsc};

use super::fail;
use crate::config::Settings;
use crate::store::{AppendRequest, EventLog};

#[derive(Debug, Args)]
pub struct AppendArgs {
    /// Requests in flight at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
}

pub async fn run(settings: &Settings, args: AppendArgs) -> ExitCode {
    let log = match EventLog::open(&settings.log_options()).await {
        Ok(log) => Arc::new(log),
        Err(error) => return fail(error),
    };

    // One writer of standard output, flushing every line: a line printed is a durable append.
    let (results, mut printer_inbox) = mpsc::unbounded_channel::<String>();
    let printer = tokio::task::spawn_blocking(move || {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        while let Some(line) = printer_inbox.blocking_recv() {
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                break;
            }
        }
    });

    let slots = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut number = 0u64;
    let mut failures = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(error) => return fail(format!("cannot read standard input: {error}")),
        };
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let request: AppendRequest = match serde_json::from_str(&line) {
            Ok(request) => request,
            Err(error) => {
                failures += 1;
                let message = format!("not an append request: {error}");
                let _ = results.send(error_line(number, "INVALID_JSON", &message));
                continue;
            }
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (log, results) = (log.clone(), results.clone());
        tasks.spawn(async move {
            let _permit = permit;
            match log.append(request).await {
                Ok(outcome) => {
                    let _ = results.send(json!({ "line": number, "outcome": outcome }).to_string());
                    true
                }
                Err(error) => {
                    let _ = results.send(error_line(number, error.code(), &error.public_message()));
                    false
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        if !matches!(done, Ok(true)) {
            failures += 1;
        }
    }
    drop(results);
    let _ = printer.await;
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn error_line(line: u64, code: &str, message: &str) -> String {
    json!({ "line": line, "error": { "code": code, "message": message } }).to_string()
}
