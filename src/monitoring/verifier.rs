//! The background verifier: while `serve` runs, every `verify_interval_secs` it re-checks what
//! was appended since its last run, in the event log and in the access chain (hash, both chain
//! links, stream versions, keys and signatures, then the recorded head: the verifier of
//! src/log/verify.rs, continued from where it stopped), and the latest signed checkpoint (its
//! root recomputed from the events' hashes and its signature, as `verify --against` checks a
//! saved one, and the stored Merkle tree's root at its size).
//!
//! Invariants:
//! - The first run after start verifies each chain from its genesis, and recomputes the latest
//!   checkpoint's root from position 1, so a restart re-checks everything once; later runs read
//!   only new events, and continue the root from the last checkpoint checked (a checkpoint
//!   smaller than that one is checked from position 1 again).
//! - A chain that failed stays failed: it is not fed again (what follows a break proves
//!   nothing), each later run counts it `failed`, and its alert is raised once. A restart
//!   verifies it from scratch again.
//! - A checkpoint failure is raised once per checkpoint size and reason, and counted `failed`
//!   on every run while it lasts.
//! - A run that cannot read counts `error` and changes nothing: the next run resumes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::log::verify::{FailureReason, Verifier, VerifyFailure};
use crate::store::{LogStore, StoreError};
use crate::transparency::LogTree;
use crate::transparency::against::{
    LatestCheckpoint, SignatureCheck, TreeCheck, check_latest_checkpoint_from,
};
use crate::transparency::leaves::LeafScan;
use crate::verification::verify_new_events;

use super::alerts::{Alert, AlertKind, AlertSink};
use crate::metrics::VerificationResult;

/// What one check came to in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// It holds; for a chain, how many events are verified in all, for a checkpoint its size
    /// (0 when none was signed yet).
    Holds(u64),
    /// It does not hold (now or since an earlier run).
    Failed(Alert),
    /// It could not be read this time.
    Unreadable,
}

impl CheckOutcome {
    fn result(&self) -> VerificationResult {
        match self {
            CheckOutcome::Holds(_) => VerificationResult::Ok,
            CheckOutcome::Failed(_) => VerificationResult::Failed,
            CheckOutcome::Unreadable => VerificationResult::Error,
        }
    }
}

/// What one run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub log: CheckOutcome,
    /// `None` when the verifier watches no access chain.
    pub access_chain: Option<CheckOutcome>,
    pub checkpoint: CheckOutcome,
}

/// One chain, verified a little further at each run.
struct ChainCheck {
    name: &'static str,
    kind: AlertKind,
    store: Arc<dyn LogStore>,
    verifier: Arc<Mutex<Verifier>>,
    failed: Option<Alert>,
}

impl ChainCheck {
    fn new(name: &'static str, kind: AlertKind, store: Arc<dyn LogStore>) -> Self {
        ChainCheck {
            name,
            kind,
            store,
            verifier: Arc::new(Mutex::new(Verifier::new(false, None))),
            failed: None,
        }
    }

    async fn run(&mut self, sink: &dyn AlertSink) -> CheckOutcome {
        if let Some(alert) = &self.failed {
            return CheckOutcome::Failed(alert.clone());
        }
        match verify_new_events(&self.store, &self.verifier).await {
            Ok(Ok(verified)) => CheckOutcome::Holds(verified),
            Ok(Err(failure)) => {
                let alert = chain_alert(self.kind, &failure);
                sink.raise(&alert);
                self.failed = Some(alert.clone());
                CheckOutcome::Failed(alert)
            }
            Err(error) => {
                tracing::warn!(check = self.name, %error, "background verification could not read");
                CheckOutcome::Unreadable
            }
        }
    }
}

fn chain_alert(kind: AlertKind, failure: &VerifyFailure) -> Alert {
    Alert {
        kind,
        position: Some(failure.position),
        event_id: failure.event_id.clone(),
        reason: reason_code(failure.reason),
        detail: failure.detail.clone(),
    }
}

/// The stable name of a failure reason, as `docket verify --json` writes it.
fn reason_code(reason: FailureReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The latest checkpoint, checked at each run.
struct CheckpointCheck {
    store: Arc<dyn LogStore>,
    tree: LogTree,
    /// The events' hashes read by earlier runs, up to the last checkpoint checked: each run
    /// reads only the hashes after it.
    leaves: LeafScan,
    /// The size and reason last alerted, so one failure is raised once.
    alerted: Option<(Option<u64>, String)>,
}

impl CheckpointCheck {
    async fn run(&mut self, sink: &dyn AlertSink) -> CheckOutcome {
        match self.check().await {
            Ok(None) => {
                self.alerted = None;
                let size = match self.store.tree().latest_checkpoint().await {
                    Ok(latest) => latest.map_or(0, |checkpoint| checkpoint.tree_size),
                    Err(_) => return CheckOutcome::Unreadable,
                };
                CheckOutcome::Holds(size)
            }
            Ok(Some(alert)) => {
                let key = (alert.position, alert.reason.clone());
                if self.alerted.as_ref() != Some(&key) {
                    sink.raise(&alert);
                    self.alerted = Some(key);
                }
                CheckOutcome::Failed(alert)
            }
            Err(error) => {
                tracing::warn!(check = "checkpoint", %error, "background verification could not read");
                CheckOutcome::Unreadable
            }
        }
    }

    /// `None` when the latest checkpoint holds (or none was signed yet).
    async fn check(&mut self) -> Result<Option<Alert>, StoreError> {
        let alert = |position: u64, reason: &str, detail: String| Alert {
            kind: AlertKind::CheckpointMismatch,
            position: Some(position),
            event_id: None,
            reason: reason.to_owned(),
            detail,
        };
        let latest = check_latest_checkpoint_from(self.store.as_ref(), None, &mut self.leaves)
            .await
            .map_err(|crate::transparency::against::AgainstError::Store(error)| error)?;
        let finding = match latest {
            LatestCheckpoint::Absent => return Ok(None),
            LatestCheckpoint::Malformed { size, detail } => {
                return Ok(Some(alert(size, "malformed_checkpoint", detail)));
            }
            LatestCheckpoint::Checked(finding) => finding,
        };
        let size = finding.size;
        if let SignatureCheck::Invalid { .. } = finding.signature {
            let detail = "the checkpoint's signature does not verify under the log's key".into();
            return Ok(Some(alert(size, "bad_checkpoint_signature", detail)));
        }
        match &finding.tree {
            TreeCheck::Matches => {}
            TreeCheck::RootDiffers { .. } => {
                let detail = "the root recomputed from the events differs".into();
                return Ok(Some(alert(size, "root_differs", detail)));
            }
            TreeCheck::LogTooShort { log_size } => {
                let detail = format!("the log holds {log_size} events, fewer than the checkpoint");
                return Ok(Some(alert(size, "log_too_short", detail)));
            }
        }
        // The stored tree serves the proofs: it must agree with what was signed.
        match self.tree.root(size).await {
            Ok(root) if hex::encode(root) == finding.root => Ok(None),
            Ok(_) => Ok(Some(alert(
                size,
                "stored_tree_differs",
                "the stored Merkle tree's root differs from the checkpoint's".into(),
            ))),
            Err(crate::transparency::TreeError::Store(error)) => Err(error),
            Err(error) => Ok(Some(alert(
                size,
                "stored_tree_unreadable",
                error.to_string(),
            ))),
        }
    }
}

/// Re-checks the log, the access chain and the latest checkpoint, a run at a time.
pub struct BackgroundVerifier {
    log: ChainCheck,
    access_chain: Option<ChainCheck>,
    checkpoint: CheckpointCheck,
    sink: Arc<dyn AlertSink>,
}

impl BackgroundVerifier {
    /// A verifier of the log in `store` (and of the access chain in `access`, when given) that
    /// raises alerts through `sink`. Nothing is read until the first run.
    pub fn new(
        store: Arc<dyn LogStore>,
        access: Option<Arc<dyn LogStore>>,
        sink: Arc<dyn AlertSink>,
    ) -> Self {
        BackgroundVerifier {
            log: ChainCheck::new("log", AlertKind::LogIntegrity, store.clone()),
            access_chain: access.map(|access| {
                ChainCheck::new("access_chain", AlertKind::AccessChainIntegrity, access)
            }),
            checkpoint: CheckpointCheck {
                tree: LogTree::new(store.clone()),
                store,
                leaves: LeafScan::default(),
                alerted: None,
            },
            sink,
        }
    }

    /// Runs every check once, counts each result in `docket_verifications_total` and raises
    /// what newly fails.
    pub async fn run_once(&mut self) -> RunReport {
        let sink = self.sink.as_ref();
        let log = self.log.run(sink).await;
        let access_chain = match &mut self.access_chain {
            Some(check) => Some(check.run(sink).await),
            None => None,
        };
        let checkpoint = self.checkpoint.run(sink).await;
        let metrics = crate::metrics::global();
        metrics.verification("log", log.result());
        if let Some(outcome) = &access_chain {
            metrics.verification("access_chain", outcome.result());
        }
        metrics.verification("checkpoint", checkpoint.result());
        RunReport {
            log,
            access_chain,
            checkpoint,
        }
    }

    /// Runs every `interval` (the first run at once) until the task is aborted; `None` for a
    /// zero interval (the verifier is off).
    pub fn spawn(mut self, interval: Duration) -> Option<tokio::task::JoinHandle<()>> {
        if interval.is_zero() {
            return None;
        }
        Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let report = self.run_once().await;
                tracing::debug!(
                    log = ?report.log,
                    checkpoint = ?report.checkpoint,
                    "background verification run"
                );
            }
        }))
    }
}
