//! Reloading the certificate without a restart: on SIGHUP, and when either file's modification
//! time or length changes (checked every [`RELOAD_POLL`]), as certificate renewal tools and
//! mounted secrets replace them.
//!
//! A change seen while the files are half-written (a new certificate beside the old key) fails
//! to load and is reported; the next change (the key written) loads. A failure never replaces
//! the certificate in force.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use super::CertificateStore;
use crate::config::TlsFiles;

/// How often `serve` looks at the certificate files for a change.
pub const RELOAD_POLL: Duration = Duration::from_secs(5);

/// What identifies one version of the files: each one's modification time and length (`None`
/// while unreadable). Metadata follows symbolic links, so a swapped link counts as a change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Option<(SystemTime, u64)>, Option<(SystemTime, u64)>);

impl Stamp {
    fn of(files: &TlsFiles) -> Stamp {
        let one = |path: &std::path::Path| {
            let metadata = std::fs::metadata(path).ok()?;
            Some((metadata.modified().ok()?, metadata.len()))
        };
        Stamp(one(&files.cert), one(&files.key))
    }
}

/// Reloads `store` and logs the outcome: success at info, failure as a warning naming the
/// files and the kind of failure (never their contents); the certificate in force stays.
fn reload_and_report(store: &CertificateStore, cause: &'static str) {
    match store.reload() {
        Ok(()) => tracing::info!(
            cause,
            cert = %store.files().cert.display(),
            "TLS certificate reloaded"
        ),
        Err(error) => tracing::warn!(
            cause,
            error = %error,
            "TLS certificate reload failed; the certificate in force is kept"
        ),
    }
}

/// Watches for SIGHUP and for the files changing (every `poll`) and reloads `store` on either,
/// until the returned task is aborted. Must be called inside the runtime; without a SIGHUP
/// handler (it cannot be installed) only the file check runs, and that is logged.
pub fn spawn_reloader(store: Arc<CertificateStore>, poll: Duration) -> JoinHandle<()> {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => Some(hangups),
        Err(error) => {
            tracing::warn!(error = %error, "no SIGHUP handler; TLS reloads on file changes only");
            None
        }
    };
    let mut seen = Stamp::of(store.files());
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let hangup = async {
                match hangups.as_mut() {
                    Some(hangups) => hangups.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = hangup => {
                    if received.is_none() {
                        // The signal stream ended; keep checking the files.
                        hangups = None;
                        continue;
                    }
                    seen = Stamp::of(store.files());
                    reload_and_report(&store, "SIGHUP");
                }
                _ = ticks.tick() => {
                    let now = Stamp::of(store.files());
                    if now != seen {
                        // Remember it before loading: a failed version is reported once, and
                        // the next change is tried afresh.
                        seen = now;
                        reload_and_report(&store, "files changed");
                    }
                }
            }
        }
    })
}
