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
use crate::store::pages::{PAGE_SIZE, log_pages};
use crate::store::{LogOptions, open_existing_store};

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
