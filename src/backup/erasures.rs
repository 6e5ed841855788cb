//! Erasures made after an archive was taken, found so that a restore never brings an erased
//! subject's data back: from every later archive in the same target (each lists the subjects
//! erased when it was taken), from the restored log itself (`subject.erased` events whose key
//! destruction had not finished), and from any surviving log (a data directory or database
//! that outlived the failure: its erased data keys and its `subject.erased` events).
//!
//! A later archive's list is taken when its manifest's signature verifies under a key of the
//! log: one the restored log introduced, or one a surviving log did (a key rotated in after the
//! archive being restored). Its parts are not read, so a later archive that is otherwise
//! damaged still counts. A list that cannot be vouched for (a signature that fails, a signer the
//! log does not know) is neither taken nor passed over in silence: the restore stops and names
//! the archive, since taking it would let whoever can write to the target destroy data at
//! restore, and ignoring it could bring an erased subject's data back. The operator either moves
//! the archive out of the target or accepts its list (`--accept-unverified-erasures`), and the
//! report names every list taken that way.

use std::collections::BTreeSet;

use futures::StreamExt;

use super::BackupError;
use super::format::{MANIFEST_FILE, Manifest};
use super::reader::read_manifest;
use super::target::Target;
use crate::domain::events::DomainEvent;
use crate::domain::records::{ErasureBasis, SubjectErased};
use crate::keyring::Keyring;
use crate::log::{Actor, StreamId};
use crate::store::pages::{PAGE_SIZE, log_pages};
use crate::store::{
    AppendRequest, EventLog, LogOptions, LogStore, StoreError, open_existing_store,
};
use crate::transparency::keys::KeyHistory;

/// Where later erasures were found.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct LaterErasures {
    pub subjects: BTreeSet<String>,
    /// The later archives read.
    pub later_archives: usize,
    /// Later archives whose list was taken without a signature of the log's to vouch for it
    /// (only when the operator accepted such lists).
    pub unverified_archives: Vec<String>,
    /// The surviving logs read.
    pub surviving_logs: usize,
    /// The log's keys known from the restored log and the surviving logs, as (key id, public
    /// key in hex): a later archive's manifest must be signed by one of them.
    #[serde(skip)]
    pub log_keys: BTreeSet<(String, String)>,
}

impl LaterErasures {
    /// Adds every key `store`'s log introduced to those a later archive may be signed by.
    pub async fn trust_keys_of(&mut self, store: &dyn LogStore) -> Result<(), StoreError> {
        let history = KeyHistory::load(store).await?;
        self.log_keys.extend(
            history
                .keys()
                .iter()
                .map(|key| (key.key_id.clone(), hex::encode(key.public_key.as_bytes()))),
        );
        Ok(())
    }
}

/// Every subject erased in an archive of `target` newer than `manifest`'s, from manifests
/// signed by one of `found.log_keys` (call [`LaterErasures::trust_keys_of`] first). A later
/// archive of this log whose manifest cannot be vouched for stops the restore, unless
/// `accept_unverified`; a manifest that does not parse, or names another log, is passed over.
pub async fn from_later_archives(
    target: &Target,
    manifest: &Manifest,
    accept_unverified: bool,
    found: &mut LaterErasures,
) -> Result<(), BackupError> {
    for archive in target.archives().await? {
        if archive.name <= manifest.name || !archive.complete {
            continue;
        }
        // The signed reading first; only a manifest whose signature fails is read again, as
        // plain JSON, to learn whether it is this log's.
        let (later, unverified) = match read_manifest(target, &archive.name).await {
            Ok(signed) => {
                let signer = &signed.manifest.signer;
                let known = found
                    .log_keys
                    .contains(&(signer.key_id.clone(), signer.public_key.clone()));
                let reason = (!known).then_some("its signer is not a key of this log");
                (signed.manifest, reason)
            }
            Err(_) => {
                let Ok(bytes) = target.get(&archive.name, MANIFEST_FILE).await else {
                    continue;
                };
                let Ok(later) = serde_json::from_slice::<Manifest>(&bytes) else {
                    continue;
                };
                (later, Some("its manifest's signature does not verify"))
            }
        };
        if later.log_id != manifest.log_id {
            continue;
        }
        if let Some(reason) = unverified {
            if !accept_unverified {
                return Err(BackupError::UnverifiedLaterArchive {
                    name: archive.name,
                    reason,
                });
            }
            found.unverified_archives.push(archive.name.clone());
        }
        found.subjects.extend(later.erased_subjects);
        found.later_archives += 1;
    }
    Ok(())
}

/// Every subject a surviving log of the same log id knows as erased.
pub async fn from_surviving_log(
    options: &LogOptions,
    manifest: &Manifest,
    found: &mut LaterErasures,
) -> Result<(), BackupError> {
    let store = open_existing_store(options).await?;
    let first = store.read_page(1, 1).await?;
    let log_id = first
        .first()
        .and_then(|event| serde_json::from_str::<serde_json::Value>(&event.payload).ok())
        .and_then(|payload| payload.get("log_id")?.as_str().map(str::to_owned));
    if log_id.as_deref() != Some(manifest.log_id.as_str()) {
        return Err(BackupError::Inconsistent {
            what: "erasure source's log id",
        });
    }
    found.trust_keys_of(store.as_ref()).await?;
    let mut after = String::new();
    loop {
        let page = store.archive().data_keys_page(&after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.key_id.clone();
        found.subjects.extend(
            page.into_iter()
                .filter(|key| key.erased_at.is_some())
                .map(|key| key.subject),
        );
    }
    let mut pages = std::pin::pin!(log_pages(store.clone(), 1, PAGE_SIZE));
    while let Some(page) = pages.next().await {
        for event in page? {
            if event.event_type != "subject.erased" {
                continue;
            }
            if let Ok(payload) = serde_json::from_str::<serde_json::Value>(&event.payload)
                && let Some(subject) = payload.get("subject").and_then(|s| s.as_str())
            {
                found.subjects.insert(subject.to_owned());
            }
        }
    }
    found.surviving_logs += 1;
    Ok(())
}

/// Records each re-applied erasure in the restored log as a `subject.erased` event by
/// `system` (requested and confirmed by `system:restore`), so the restored records say erased.
/// `false`, with nothing appended, when the data directory lacks the signing key in force.
pub async fn record_reapplied(
    into: &LogOptions,
    archive: &str,
    subjects: &[String],
) -> Result<bool, BackupError> {
    if subjects.is_empty() {
        return Ok(true);
    }
    let store = open_existing_store(into).await?;
    let head = store.head().await?;
    let signing = head.key_id.as_deref().is_some_and(|key| {
        Keyring::open(&into.data_dir)
            .and_then(|ring| ring.get(key))
            .is_ok()
    });
    if !signing {
        return Ok(false);
    }
    let log = EventLog::open(into).await?;
    for subject in subjects {
        let key_id = store
            .keys()
            .subject_key(subject)
            .await?
            .map(|key| key.key_id);
        let mut erased = vec!["client_data".to_owned()];
        erased.push(if subject.starts_with("matter:") {
            "document_contents".to_owned()
        } else {
            "blind_indexes".to_owned()
        });
        let event = DomainEvent::SubjectErased(SubjectErased {
            request_id: uuid::Uuid::now_v7().to_string(),
            subject: subject.clone(),
            key_id,
            reason: format!("re-applied by the restore of archive {archive}"),
            basis: ErasureBasis::Request,
            requested_by: RESTORE_ACTOR.to_owned(),
            confirmed_by: RESTORE_ACTOR.to_owned(),
            erased,
        });
        let unrecordable = |_| BackupError::Inconsistent {
            what: "a re-applied erasure's subject",
        };
        let draft = event.to_draft().map_err(unrecordable)?;
        let stream = StreamId::parse(subject).map_err(|_| BackupError::Inconsistent {
            what: "a re-applied erasure's subject",
        })?;
        log.append(AppendRequest::new(stream, Actor::system(), vec![draft]))
            .await
            .map_err(|error| {
                BackupError::Store(StoreError::Database {
                    detail: error.to_string(),
                })
            })?;
    }
    Ok(true)
}

/// Who re-applied an erasure at restore.
const RESTORE_ACTOR: &str = "system:restore";
