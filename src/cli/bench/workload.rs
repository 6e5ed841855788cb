//! The benchmark's append workloads.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::report::Measurement;
use crate::log::{Actor, EventDraft, StreamId};
use crate::store::{AppendError, AppendRequest, EventLog, StoreError};

/// A payload of about `bytes` bytes once encoded.
pub fn payload(sequence: u64, bytes: usize) -> serde_json::Value {
    json!({ "matter": "2026-0042", "sequence": sequence, "kind": "note", "text": filler(bytes) })
}

/// Text of about `bytes` bytes, made once per size so that making payloads costs little.
fn filler(bytes: usize) -> String {
    static FILLER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = FILLER.get_or_init(|| {
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(1 + 1024 * 1024 / 57)
    });
    text[..bytes.saturating_sub(80).min(text.len())].to_owned()
}

/// The stream and actor a benchmark writer appends as.
fn writer_ids(stream: &str) -> Result<(StreamId, Actor), StoreError> {
    let invalid = |e: crate::log::envelope::ValidationError| StoreError::Database {
        detail: e.to_string(),
    };
    Ok((
        StreamId::parse(stream).map_err(invalid)?,
        Actor::parse("user:bench").map_err(invalid)?,
    ))
}

fn to_store_error(error: AppendError) -> StoreError {
    match error {
        AppendError::Store(error) => error,
        other => StoreError::Database {
            detail: other.to_string(),
        },
    }
}

/// `writers` tasks append one event at a time to their own streams, `events` in all.
pub async fn appends(
    log: &Arc<EventLog>,
    writers: u64,
    events: u64,
    bytes: usize,
) -> Result<Measurement, StoreError> {
    let per_writer = (events / writers).max(1);
    let log = log.clone();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let (stream, actor) = writer_ids(&format!("matter:bench-{writers}-{writer}"))?;
            let mut latencies = Vec::with_capacity(per_writer as usize);
            for sequence in 0..per_writer {
                let draft = EventDraft::new("matter.noted", payload(sequence, bytes));
                let request = AppendRequest::new(stream.clone(), actor.clone(), vec![draft]);
                let sent = Instant::now();
                log.append(request).await.map_err(to_store_error)?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, StoreError>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        let mine = task.await.map_err(|_| StoreError::Database {
            detail: "writer task failed".into(),
        })??;
        latencies.extend(mine);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Measurement::with_latencies(writers, latencies, seconds))
}

/// Bulk appends of 100 events each from 8 writers until the log holds `target` events.
pub async fn fill(
    log: &Arc<EventLog>,
    target: u64,
    bytes: usize,
) -> Result<Option<Measurement>, StoreError> {
    let head = log.head().await?.position;
    if head >= target {
        return Ok(None);
    }
    let missing = target - head;
    let writers = 8;
    let per_append = 100;
    let appends_per_writer = missing.div_ceil(per_append * writers);
    let log = log.clone();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let (stream, actor) = writer_ids(&format!("matter:fill-{writer}"))?;
            for append in 0..appends_per_writer {
                let drafts = (0..per_append)
                    .map(|n| {
                        EventDraft::new("matter.noted", payload(append * per_append + n, bytes))
                    })
                    .collect();
                let request = AppendRequest::new(stream.clone(), actor.clone(), drafts);
                log.append(request).await.map_err(to_store_error)?;
            }
            Ok::<_, StoreError>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|_| StoreError::Database {
            detail: "fill task failed".into(),
        })??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let written = appends_per_writer * per_append * writers;
    Ok(Some(Measurement::throughput(written, seconds)))
}
