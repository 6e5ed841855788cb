//! Verifying a stored log end to end: pages are read ahead by one task while the verifier
//! checks the previous page on the blocking pool, so reading and checking overlap.
//!
//! The event log and the access chain (src/access/chain.rs) share the format, so both are
//! verified by [`verify_log`]; [`verify_access_chain`] finds the access chain beside a log.
//! [`verify_new_events`] continues a verifier kept from an earlier run (the background
//! verifier of `serve`), reading only what was appended since.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::access::chain::open_existing_access_store;
use crate::log::verify::{FailureReason, RecordedHead, Verifier, VerifyFailure, VerifySummary};
use crate::store::pages::{PAGE_SIZE, log_pages};
use crate::store::{LogOptions, LogStore, StoreError};

/// How to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Verify every signature strictly, one by one, instead of in batches.
    pub strict: bool,
    /// The key id the genesis event must carry.
    pub genesis_key: Option<String>,
}

/// Verifies the whole log up to the head recorded when verification starts (appends made
/// meanwhile are left for the next run). The outer error is a failure to read; the inner one is
/// the log's.
pub async fn verify_log(
    store: Arc<dyn LogStore>,
    options: VerifyOptions,
    progress: impl Fn(u64) + Send,
) -> Result<Result<VerifySummary, VerifyFailure>, StoreError> {
    let recorded = store.head().await?;

    // Read ahead in its own task so the database and the verifier work at the same time.
    let (pages, mut inbox) = mpsc::channel(3);
    let reader = tokio::spawn({
        let store = store.clone();
        async move {
            let mut stream = std::pin::pin!(log_pages(store, 1, PAGE_SIZE));
            while let Some(page) = stream.next().await {
                if pages.send(page).await.is_err() {
                    break;
                }
            }
        }
    });

    let mut verifier = Verifier::new(options.strict, options.genesis_key);
    let end = recorded.position;
    while let Some(page) = inbox.recv().await {
        let mut page = match page {
            Ok(page) => page,
            Err(StoreError::CorruptRow { position, reason }) => {
                reader.abort();
                return Ok(Err(corrupt_row(position, reason)));
            }
            Err(error) => {
                reader.abort();
                return Err(error);
            }
        };
        let reached_end = page.last().is_some_and(|event| event.position >= end);
        page.retain(|event| event.position <= end);
        let checked = tokio::task::spawn_blocking(move || {
            let result = verifier.check_page(&page);
            (verifier, result)
        })
        .await
        .map_err(|_| StoreError::Database {
            detail: "verifier task failed".into(),
        })?;
        verifier = checked.0;
        if let Err(failure) = checked.1 {
            reader.abort();
            return Ok(Err(failure));
        }
        progress(verifier.verified());
        if reached_end {
            break;
        }
    }
    reader.abort();
    let head = RecordedHead {
        position: recorded.position,
        hash: recorded.hash,
    };
    Ok(verifier.finish(Some(head)))
}

/// Verifies the access chain kept beside the log that `options` describe, as [`verify_log`]
/// does a log. `None` when there is no access chain (nothing was ever recorded); nothing is
/// created.
pub async fn verify_access_chain(
    options: &LogOptions,
    verify: VerifyOptions,
    progress: impl Fn(u64) + Send,
) -> Result<Option<Result<VerifySummary, VerifyFailure>>, StoreError> {
    match open_existing_access_store(options).await? {
        Some(store) => verify_log(store, verify, progress).await.map(Some),
        None => Ok(None),
    }
}

/// A row the store could not decode, as the verifier reports it.
fn corrupt_row(position: i64, reason: &str) -> VerifyFailure {
    VerifyFailure {
        position: u64::try_from(position).unwrap_or(0),
        event_id: None,
        reason: FailureReason::MalformedEvent,
        detail: reason.to_owned(),
    }
}

/// Events read at a time by [`verify_new_events`]. The background verifier runs beside the
/// server's own work every interval: small pages keep the memory a run holds small (a page of
/// 2,000 events with their payloads is several megabytes), at a cost of a few more reads.
const NEW_EVENTS_PAGE: u32 = 500;

/// Feeds `verifier` the events after those it has verified, up to the head the store records
/// when this starts, then checks that head: `Ok(Ok(n))` with the `n` events now verified in
/// all. The outer error is a failure to read (the verifier keeps what it had checked and the
/// next call resumes there); the inner one is the log's, after which the verifier must not be
/// fed again (it has stopped at the failure).
pub async fn verify_new_events(
    store: &Arc<dyn LogStore>,
    verifier: &Arc<Mutex<Verifier>>,
) -> Result<Result<u64, VerifyFailure>, StoreError> {
    let recorded = store.head().await?;
    let end = recorded.position;
    let lock = |verifier: &Mutex<Verifier>| match verifier.lock() {
        Ok(guard) => guard.verified(),
        Err(poisoned) => poisoned.into_inner().verified(),
    };
    let from = lock(verifier) + 1;
    let mut pages = std::pin::pin!(log_pages(store.clone(), from, NEW_EVENTS_PAGE));
    while lock(verifier) < end {
        let mut page = match pages.next().await {
            Some(Ok(page)) => page,
            Some(Err(StoreError::CorruptRow { position, reason })) => {
                return Ok(Err(corrupt_row(position, reason)));
            }
            Some(Err(error)) => return Err(error),
            None => break,
        };
        page.retain(|event| event.position <= end);
        let shared = verifier.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let mut verifier = match shared.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            verifier.check_page(&page)
        })
        .await
        .map_err(|_| StoreError::Database {
            detail: "verifier task failed".into(),
        })?;
        if let Err(failure) = checked {
            return Ok(Err(failure));
        }
    }
    let head = RecordedHead {
        position: recorded.position,
        hash: recorded.hash,
    };
    let verifier = match verifier.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    };
    Ok(verifier.check_head(&head).map(|()| verifier.verified()))
}
