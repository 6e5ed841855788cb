//! A verified copy of an archive, outside the restore's target: the archived log and access
//! chain are written into SQLite files of a private temporary folder, through the stores'
//! ordinary write path (which refuses any event that does not extend its chain), and verified
//! there with the same code as `docket verify` and `docket verify --against`. Nothing reaches
//! the target until this copy has passed every check; the folder is deleted when it is dropped.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::BackupError;
use super::format::{HeadRecord, Manifest};
use super::reader::PartReader;
use super::records::Record;
use super::target::Target;
use crate::identity::credentials::CredentialRow;
use crate::log::Event;
use crate::log::checkpoint::SignedCheckpoint;
use crate::store::archive::recorded_plan;
use crate::store::plan::IdempotencyRecord;
use crate::store::sqlite::SqliteStore;
use crate::store::{LogHead, LogStore, WriteOutcome};
use crate::transparency::against::{SavedCheckpoint, verify_against};
use crate::transparency::keys::KeyHistory;
use crate::verification::VerifyOptions;

/// Events written to a store per plan.
pub const EVENTS_PER_PLAN: usize = 2_000;

/// The `subject.erased` event type: its payload's `subject` names the subject erased.
const SUBJECT_ERASED: &str = "subject.erased";

/// A private folder, deleted with everything in it when dropped.
struct PrivateDir(PathBuf);

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The archive, decrypted into a private folder and verified.
pub struct Staging {
    pub log: Arc<dyn LogStore>,
    pub access: Arc<dyn LogStore>,
    pub credentials: Vec<CredentialRow>,
    /// Subjects the archived log itself records as erased.
    pub erased_in_log: BTreeSet<String>,
    /// Dropped last: the stores' files are closed before their folder goes.
    _dir: PrivateDir,
}

impl Staging {
    /// Decrypts every part of the archive into a fresh private folder and verifies it: the
    /// chains, their heads against the manifest, the manifest's signer against the log's key in
    /// force at the head, every archived checkpoint, and each part's record count.
    pub async fn load(
        target: &Target,
        manifest: &Manifest,
        data_key: &Zeroizing<[u8; 32]>,
        genesis_key: Option<String>,
    ) -> Result<Staging, BackupError> {
        let dir = std::env::temp_dir().join(format!(
            "docket-restore-{}-{}",
            manifest.archive_id,
            uuid::Uuid::now_v7().simple()
        ));
        create_private_dir(&dir)?;
        let dir = PrivateDir(dir);
        let log: Arc<dyn LogStore> = Arc::new(SqliteStore::open(&dir.0.join("log.db")).await?);
        let access: Arc<dyn LogStore> =
            Arc::new(SqliteStore::open(&dir.0.join("access.db")).await?);
        let mut staging = Staging {
            _dir: dir,
            log,
            access,
            credentials: Vec::new(),
            erased_in_log: BTreeSet::new(),
        };
        let mut checkpoints = Vec::new();
        for part in super::format::PARTS {
            let mut reader = PartReader::open(target, manifest, data_key, part).await?;
            match part {
                "log" => {
                    let store = staging.log.clone();
                    load_chain(&mut reader, store.as_ref(), &mut staging.erased_in_log).await?
                }
                "access" => {
                    let store = staging.access.clone();
                    load_chain(&mut reader, store.as_ref(), &mut BTreeSet::new()).await?
                }
                _ => staging.load_rows(&mut reader, &mut checkpoints).await?,
            }
            if reader.records() != manifest.part(part)?.records {
                return Err(BackupError::Inconsistent {
                    what: "number of records in a part",
                });
            }
        }
        staging.verify(manifest, checkpoints, genesis_key).await?;
        Ok(staging)
    }

    async fn load_rows(
        &mut self,
        reader: &mut PartReader,
        checkpoints: &mut Vec<SavedCheckpoint>,
    ) -> Result<(), BackupError> {
        let rows = self.log.archive();
        while let Some(record) = reader.next().await? {
            match record {
                Record::DataKey(line) => rows.restore_data_key(&line.into_key()?).await?,
                Record::Content(content) => rows.restore_sealed_content(&content).await?,
                Record::Blob(blob) => rows.restore_blob(&blob).await?,
                Record::Checkpoint(line) => {
                    let stored = line.into_checkpoint()?;
                    let signed = SignedCheckpoint::parse(&stored.note).map_err(|_| {
                        BackupError::CheckpointBroken {
                            size: stored.tree_size,
                        }
                    })?;
                    if signed.checkpoint.size != stored.tree_size
                        || signed.checkpoint.root != stored.root
                    {
                        return Err(BackupError::CheckpointBroken {
                            size: stored.tree_size,
                        });
                    }
                    self.log.tree().insert_checkpoint(&stored).await?;
                    checkpoints.push(SavedCheckpoint {
                        source: format!("archived checkpoint {}", stored.tree_size),
                        checkpoint: signed,
                    });
                }
                Record::Credential(row) => self.credentials.push(row),
                Record::Event(_) | Record::Idempotency(_) => {
                    return Err(BackupError::PartMalformed {
                        part: "rows".into(),
                    });
                }
            }
        }
        Ok(())
    }

    async fn verify(
        &self,
        manifest: &Manifest,
        checkpoints: Vec<SavedCheckpoint>,
        genesis_key: Option<String>,
    ) -> Result<(), BackupError> {
        let options = VerifyOptions {
            strict: false,
            genesis_key: genesis_key.clone(),
        };
        let report = verify_against(self.log.clone(), &checkpoints, options, |_| {})
            .await
            .map_err(|crate::transparency::against::AgainstError::Store(error)| error)?;
        if let Err(failure) = &report.chain {
            return Err(BackupError::ChainBroken {
                chain: "log",
                detail: format!("position {}: {:?}", failure.position, failure.reason),
            });
        }
        if !report.holds() {
            let size = report
                .checkpoints
                .iter()
                .find(|finding| !finding.holds)
                .map_or(0, |finding| finding.size);
            return Err(BackupError::CheckpointBroken { size });
        }
        same_head(self.log.as_ref(), &manifest.head, "log head").await?;

        let keys = KeyHistory::load(self.log.as_ref()).await?;
        let in_force = keys
            .in_force_after(manifest.head.position)
            .ok_or(BackupError::UntrustedSigner)?;
        if in_force.key_id != manifest.signer.key_id
            || hex::encode(in_force.public_key.as_bytes()) != manifest.signer.public_key
        {
            return Err(BackupError::UntrustedSigner);
        }
        let genesis = self.log.read_page(1, 1).await?;
        let log_id = genesis
            .first()
            .and_then(|event| serde_json::from_str::<serde_json::Value>(&event.payload).ok())
            .and_then(|payload| payload.get("log_id")?.as_str().map(str::to_owned));
        if log_id.as_deref() != Some(manifest.log_id.as_str()) {
            return Err(BackupError::Inconsistent { what: "log id" });
        }

        if manifest.access_head.position > 0 {
            let options = VerifyOptions {
                strict: false,
                genesis_key: None,
            };
            let checked =
                crate::verification::verify_log(self.access.clone(), options, |_| {}).await?;
            if let Err(failure) = checked {
                return Err(BackupError::ChainBroken {
                    chain: "access chain",
                    detail: format!("position {}: {:?}", failure.position, failure.reason),
                });
            }
        }
        same_head(
            self.access.as_ref(),
            &manifest.access_head,
            "access chain head",
        )
        .await
    }
}

async fn same_head(
    store: &dyn LogStore,
    expected: &HeadRecord,
    what: &'static str,
) -> Result<(), BackupError> {
    let head = store.head().await?;
    if head.position != expected.position || head.hash.map(hex::encode) != expected.hash {
        return Err(BackupError::Inconsistent { what });
    }
    Ok(())
}

/// Writes a part's events (then its idempotency records) into `store`, which must be empty.
async fn load_chain(
    reader: &mut PartReader,
    store: &dyn LogStore,
    erased: &mut BTreeSet<String>,
) -> Result<(), BackupError> {
    let mut head = store.head().await?;
    let mut events = Vec::new();
    let mut idempotency = Vec::new();
    while let Some(record) = reader.next().await? {
        match record {
            Record::Event(event) => {
                let event = *event;
                if !idempotency.is_empty() {
                    return Err(BackupError::PartMalformed { part: "log".into() });
                }
                note_erasure(&event, erased);
                events.push(event);
                if events.len() == EVENTS_PER_PLAN {
                    head =
                        write_events(store, &head, std::mem::take(&mut events), Vec::new()).await?;
                }
            }
            Record::Idempotency(line) => idempotency.push(line.into_record("log")?),
            _ => {
                return Err(BackupError::PartMalformed { part: "log".into() });
            }
        }
    }
    if !events.is_empty() || !idempotency.is_empty() {
        write_events(store, &head, events, idempotency).await?;
    }
    Ok(())
}

fn note_erasure(event: &Event, erased: &mut BTreeSet<String>) {
    if event.event_type == SUBJECT_ERASED
        && let Ok(payload) = serde_json::from_str::<serde_json::Value>(&event.payload)
        && let Some(subject) = payload.get("subject").and_then(|s| s.as_str())
    {
        erased.insert(subject.to_owned());
    }
}

/// Writes recorded events after `head` through the store's ordinary path; returns the new head.
/// A store refuses events that do not extend its log exactly where it ends.
pub async fn write_events(
    store: &dyn LogStore,
    head: &LogHead,
    events: Vec<Event>,
    idempotency: Vec<IdempotencyRecord>,
) -> Result<LogHead, BackupError> {
    let plan = recorded_plan(head, events, idempotency);
    let next = plan.head.clone().unwrap_or_else(|| head.clone());
    match store.write_planned(head, &plan).await? {
        WriteOutcome::Committed => Ok(next),
        WriteOutcome::Stale => Err(BackupError::ChainBroken {
            chain: "log",
            detail: "an archived event does not extend the chain where it ends".into(),
        }),
    }
}

fn create_private_dir(dir: &std::path::Path) -> Result<(), BackupError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|error| BackupError::Target {
            detail: format!("{}: {error}", dir.display()),
        })
}
