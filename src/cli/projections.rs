//! `docket projections`: the read models' health, and rebuilding them from the log.
//!
//! Both work beside a running `docket serve` on the same data: status only reads, and a rebuild
//! fills a fresh generation of the tables and swaps it in with a compare-and-set, after which
//! the server's projector carries on from the new checkpoint.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use serde_json::json;

use super::fail;
use crate::config::Settings;
use crate::projection::rebuild::RebuildReport;
use crate::projection::{ProjectionStatus, Projector, ReadDb};
use crate::store::{StoreError, open_existing_store};
use crate::vault::Vault;

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Each projection's status, checkpoint, lag behind the log and generation; exit 0 when
    /// all are ok, 1 when any has stopped on an event.
    Status {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild one projection (or all) from the whole log, then swap it in. Safe while
    /// `docket serve` runs on the same data.
    Rebuild {
        /// The projection to rebuild [default: all of them].
        name: Option<String>,
        /// Print one JSON object per projection instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: &Settings, command: ProjectionsCommand) -> ExitCode {
    let projector = match open(settings).await {
        Ok(projector) => projector,
        Err(error) => return fail(error),
    };
    match command {
        ProjectionsCommand::Status { json } => status(&projector, json).await,
        ProjectionsCommand::Rebuild { name, json } => rebuild_named(&projector, name, json).await,
    }
}

/// Opens the read models over an existing log (never creating one).
async fn open(settings: &Settings) -> Result<Arc<Projector>, StoreError> {
    let options = settings.log_options();
    let store = open_existing_store(&options).await?;
    let db = ReadDb::open(&options.data_dir, options.database_url.as_deref()).await?;
    let vault = Vault::open_configured(store.clone(), &options.data_dir)
        .await
        .map_err(crate::app::vault_unavailable)?;
    Projector::open(db, store, vault).await
}

async fn status(projector: &Projector, as_json: bool) -> ExitCode {
    let head = match projector.log().head().await {
        Ok(head) => head.position,
        Err(error) => return fail(error),
    };
    let statuses = match projector.status().await {
        Ok(statuses) => statuses,
        Err(error) => return fail(error),
    };
    let healthy = statuses.iter().all(|status| status.status == "ok");
    if as_json {
        println!(
            "{}",
            json!({ "head": head, "ok": healthy, "projections": statuses })
        );
    } else {
        print!("{}", status_table(head, &statuses));
    }
    if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn status_table(head: u64, statuses: &[ProjectionStatus]) -> String {
    let width = statuses
        .iter()
        .map(|status| status.name.len())
        .max()
        .unwrap_or(0)
        .max("projection".len());
    let mut out = format!(
        "{:<width$}  {:<6}  {:>10}  {:>8}  generation\n",
        "projection", "status", "position", "lag"
    );
    for status in statuses {
        out.push_str(&format!(
            "{:<width$}  {:<6}  {:>10}  {:>8}  {}\n",
            status.name, status.status, status.position, status.lag, status.generation
        ));
        if status.status != "ok" {
            out.push_str(&format!(
                "{:<width$}  stopped at position {}: {}\n",
                "",
                status
                    .failed_position
                    .map_or_else(|| "?".to_owned(), |p| p.to_string()),
                status.error.as_deref().unwrap_or("no reason recorded")
            ));
        }
    }
    out.push_str(&format!("log head: position {head}\n"));
    out
}

async fn rebuild_named(projector: &Projector, name: Option<String>, as_json: bool) -> ExitCode {
    let chosen: Vec<_> = match &name {
        None => projector.projections().to_vec(),
        Some(name) => match projector.projections().iter().find(|p| p.name() == name) {
            Some(projection) => vec![projection.clone()],
            None => {
                let known: Vec<&str> = projector.projections().iter().map(|p| p.name()).collect();
                return fail(format!(
                    "no projection named {name} (known: {})",
                    known.join(", ")
                ));
            }
        },
    };
    let mut failed = false;
    for projection in chosen {
        match projector.rebuild(projection.as_ref()).await {
            Ok(report) => {
                if as_json {
                    println!("{}", json!({ "status": "rebuilt", "report": report }));
                } else {
                    println!("{}", rebuilt_line(&report));
                }
            }
            Err(error) => {
                failed = true;
                if as_json {
                    println!(
                        "{}",
                        json!({ "status": "failed", "name": projection.name(), "error": error.to_string() })
                    );
                } else {
                    eprintln!("docket: {}: rebuild failed: {error}", projection.name());
                }
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn rebuilt_line(report: &RebuildReport) -> String {
    format!(
        "{}: {} events in {:.2} s ({:.0} events/s), generation {}, position {}",
        report.name,
        report.events,
        report.seconds,
        report.events_per_second,
        report.generation,
        report.position
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_the_stopped_event_and_its_reason() {
        let statuses = vec![
            ProjectionStatus {
                name: "matters".into(),
                status: "ok".into(),
                position: 10,
                lag: 0,
                generation: 1,
                failed_position: None,
                error: None,
            },
            ProjectionStatus {
                name: "notes".into(),
                status: "failed".into(),
                position: 6,
                lag: 4,
                generation: 1,
                failed_position: Some(7),
                error: Some("payload does not match".into()),
            },
        ];
        let table = status_table(10, &statuses);
        assert!(
            table.contains("stopped at position 7: payload does not match"),
            "{table}"
        );
        assert!(table.ends_with("log head: position 10\n"));
        assert_eq!(table.lines().count(), 5);
    }
}
