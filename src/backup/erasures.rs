//! Erasures made after an archive was taken, found so that a restore never brings an erased
//! subject's data back: from every later archive in the same target (each lists the subjects
//! erased when it was taken), from the restored log itself (`subject.erased` events whose key
//! destruction had not finished), and from any surviving log (a data directory or database
//! that outlived the failure: its erased data keys and its `subject.erased` events).
//!
//! An erasure is the safe direction (it can only make data unreadable), so a later archive's
//! list is taken even when that archive is otherwise unusable (a damaged part, a manifest whose
//! signature fails): refusing it would let a damaged archive resurrect data.

use std::collections::BTreeSet;

use futures::StreamExt;

use super::BackupError;
use super::format::{MANIFEST_FILE, Manifest};
use super::target::Target;
use crate::domain::events::DomainEvent;
use crate::domain::records::{ErasureBasis, SubjectErased};
use crate::keyring::Keyring;
use crate::log::{Actor, StreamId};
use crate::store::pages::{PAGE_SIZE, log_pages};
use crate::store::{AppendRequest, EventLog, LogOptions, StoreError, open_existing_store};

/// Where later erasures were found.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct LaterErasures {
    pub subjects: BTreeSet<String>,
    /// The later archives read.
    pub later_archives: usize,
    /// The surviving logs read.
    pub surviving_logs: usize,
}

/// Every subject erased in an archive of `target` newer than `manifest`'s.
pub async fn from_later_archives(
    target: &Target,
    manifest: &Manifest,
    found: &mut LaterErasures,
) -> Result<(), BackupError> {
    for archive in target.archives().await? {
        if archive.name <= manifest.name || !archive.complete {
            continue;
        }
        let Ok(bytes) = target.get(&archive.name, MANIFEST_FILE).await else {
            continue;
        };
        let Ok(later) = serde_json::from_slice::<Manifest>(&bytes) else {
            continue;
        };
        if later.log_id != manifest.log_id {
            continue;
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
