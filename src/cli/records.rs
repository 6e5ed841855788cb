//! `docket retention run|show`: apply the retention policies now, or list them with the legal
//! holds in force. (Holds, policies and erasures are set through the API by authorised users;
//! the retention run acts on the system's authority, as `serve` does on its schedule.)

use std::process::ExitCode;

use chrono::NaiveDate;
use clap::Subcommand;

use super::fail;
use crate::app::Docket;
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Erase every closed matter whose practice area's retention has run out and that no
    /// legal hold covers.
    Run {
        /// Judge expiry as of this day (YYYY-MM-DD) [default: today, UTC].
        #[arg(long)]
        today: Option<String>,
    },
    /// The retention policies and the legal holds in force.
    Show,
}

pub async fn run_retention(settings: &Settings, command: RetentionCommand) -> ExitCode {
    let today = match &command {
        RetentionCommand::Run { today: Some(day) } => {
            match NaiveDate::parse_from_str(day, "%Y-%m-%d") {
                Ok(day) => day,
                Err(_) => return fail("--today must be a date, YYYY-MM-DD"),
            }
        }
        _ => chrono::Utc::now().date_naive(),
    };
    let docket = match Docket::open(settings).await {
        Ok(docket) => docket,
        Err(error) => return fail(error),
    };
    // The run reads closed matters from the read models: bring them up to date first.
    if let Err(error) = docket.projector.catch_up().await {
        return fail(error);
    }
    match command {
        RetentionCommand::Show => match docket.service.governance().await {
            Ok((_, governance)) => {
                for (area, years) in &governance.retention {
                    println!("retention  {area}: {years} years after closing");
                }
                for hold in governance.holds.values() {
                    println!(
                        "hold       {}  {}  placed by {} at {}: {}",
                        hold.hold_id, hold.target, hold.placed_by, hold.placed_at, hold.reason
                    );
                }
                ExitCode::SUCCESS
            }
            Err(error) => fail(error.public_message()),
        },
        RetentionCommand::Run { .. } => match docket.service.run_retention(today).await {
            Ok(run) => {
                for subject in &run.erased {
                    println!("erased     {subject}");
                }
                for (subject, hold_id) in &run.held {
                    println!("held       {subject} (legal hold {hold_id})");
                }
                for subject in &run.frozen {
                    println!("frozen     {subject} (frozen for an incident: kept as evidence)");
                }
                for (subject, code) in &run.failed {
                    println!("failed     {subject} ({code})");
                }
                println!(
                    "retention as of {today}: {} erased, {} held, {} failed",
                    run.erased.len(),
                    run.held.len(),
                    run.failed.len()
                );
                if run.failed.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                }
            }
            Err(error) => fail(error.public_message()),
        },
    }
}
