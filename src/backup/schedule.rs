//! Scheduled backups inside `serve`: one archive every interval, read back and checked, then
//! retention. Retention keeps the newest `keep` complete archives and deletes older complete
//! ones; it never deletes an incomplete archive (one still being written has no manifest yet)
//! and never runs after a backup that failed, so the archives kept are always verified ones.

use std::time::Duration;

use super::BackupError;
use super::target::Target;
use super::writer::write_backup;
use crate::store::LogOptions;

/// What `serve` backs up, where, how often and how many archives it keeps.
#[derive(Debug, Clone)]
pub struct BackupSchedule {
    /// A directory or URL (see [`Target::parse`]).
    pub to: String,
    pub interval: Duration,
    /// How many complete archives to keep; 0 keeps all.
    pub keep: usize,
}

/// Deletes the oldest complete archives beyond the newest `keep` (none when `keep` is 0);
/// returns the names deleted.
pub async fn apply_retention(target: &Target, keep: usize) -> Result<Vec<String>, BackupError> {
    if keep == 0 {
        return Ok(Vec::new());
    }
    let complete: Vec<String> = target
        .archives()
        .await?
        .into_iter()
        .filter(|archive| archive.complete)
        .map(|archive| archive.name)
        .collect();
    let excess = complete.len().saturating_sub(keep);
    let mut deleted = Vec::new();
    for name in complete.into_iter().take(excess) {
        target.delete_archive(&name).await?;
        deleted.push(name);
    }
    Ok(deleted)
}

/// One scheduled run: a backup, then retention. Failures are logged at error level.
pub async fn run_once(options: &LogOptions, schedule: &BackupSchedule) {
    let target = match Target::parse(&schedule.to) {
        Ok(target) => target,
        Err(error) => {
            tracing::error!(code = error.code(), error = %error, "scheduled backup failed");
            return;
        }
    };
    match write_backup(options, &target).await {
        Ok(report) => {
            tracing::info!(
                archive = %report.name,
                target = %report.target,
                head = report.head,
                access_head = report.access_head,
                bytes = report.parts.iter().map(|part| part.bytes).sum::<u64>(),
                "scheduled backup written and verified"
            );
            match apply_retention(&target, schedule.keep).await {
                Ok(deleted) if !deleted.is_empty() => tracing::info!(
                    deleted = deleted.len(),
                    kept = schedule.keep,
                    "old backup archives deleted"
                ),
                Ok(_) => {}
                Err(error) => tracing::error!(
                    code = error.code(),
                    error = %error,
                    "backup retention failed"
                ),
            }
        }
        Err(error) => {
            tracing::error!(code = error.code(), error = %error, "scheduled backup failed")
        }
    }
}

/// Backs up every `schedule.interval` (the first one interval after start), or never when the
/// interval is zero.
pub fn spawn(
    options: LogOptions,
    schedule: Option<BackupSchedule>,
) -> Option<tokio::task::JoinHandle<()>> {
    let schedule = schedule.filter(|schedule| !schedule.interval.is_zero())?;
    Some(tokio::spawn(async move {
        let start = tokio::time::Instant::now() + schedule.interval;
        let mut ticks = tokio::time::interval_at(start, schedule.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            run_once(&options, &schedule).await;
        }
    }))
}
