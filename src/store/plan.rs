//! Planning one group commit: pure logic shared by both backends.
//!
//! Given the log head and the state of the streams and idempotency keys the batch touches
//! (read under the log lock, or remembered by the sequencer), [`plan_unsigned`] decides each
//! request's fate and assigns positions, stream versions, both chain links and hashes;
//! [`UnsignedPlan::sign`] then signs the new events, here or on another thread. The backend
//! writes exactly what the plan says, or nothing: it refuses a plan whose view of the log's end
//! is stale.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use super::LogHead;
use super::append::{AppendOutcome, PreparedAppend, SystemAppend};
use super::error::{AppendError, StoreError};
use crate::keyring::Keyring;
use crate::log::LogSigner;
use crate::log::canonical::{canonical_json, compute_hash};
use crate::log::envelope::{Event, EventHash};
use crate::log::system_events::{FORMAT, Genesis, KeyRotated};
use crate::log::time::now_timestamp;

/// Batches of at least this many events are signed on all cores.
const PARALLEL_SIGNING_THRESHOLD: usize = 4;

/// A stream's version and last hash, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTip {
    pub version: u64,
    pub hash: EventHash,
}

/// What an idempotency key was first used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub key: String,
    pub digest: [u8; 32],
    pub stream: String,
    pub first_position: u64,
    pub last_position: u64,
    pub first_version: u64,
    pub last_version: u64,
}

/// Everything the backend must write for one batch, and each request's answer.
#[derive(Debug, Default)]
pub struct BatchPlan {
    pub events: Vec<Event>,
    pub stream_tips: HashMap<String, StreamTip>,
    pub idempotency: Vec<IdempotencyRecord>,
    pub head: Option<LogHead>,
    pub outcomes: Vec<Result<AppendOutcome, AppendError>>,
    /// New subjects' data keys, written with the events sealed under them.
    pub data_keys: Vec<super::keys::StoredDataKey>,
}

/// The log state a plan starts from.
pub struct PlanInput<'a> {
    pub head: LogHead,
    pub tips: HashMap<String, StreamTip>,
    pub idempotency: HashMap<String, IdempotencyRecord>,
    /// The key named by the head; `None` only before genesis.
    pub signer: Option<Arc<LogSigner>>,
    pub recorded_at: &'a str,
    /// Makes each new event's id; [`new_event_id`] outside of test vectors.
    pub new_event_id: fn() -> String,
}

/// Plans a batch from a given state, with the key the head names.
pub fn plan_from_state(
    head: LogHead,
    tips: HashMap<String, StreamTip>,
    idempotency: HashMap<String, IdempotencyRecord>,
    keys: &Keyring,
    batch: &[PreparedAppend],
) -> Result<BatchPlan, StoreError> {
    Ok(unsigned_from_state(head, tips, idempotency, keys, batch)?.sign())
}

/// [`plan_from_state`] up to the signatures.
pub fn unsigned_from_state(
    head: LogHead,
    tips: HashMap<String, StreamTip>,
    idempotency: HashMap<String, IdempotencyRecord>,
    keys: &Keyring,
    batch: &[PreparedAppend],
) -> Result<UnsignedPlan, StoreError> {
    let signer = head.key_id.as_deref().map(|id| keys.get(id)).transpose()?;
    let recorded_at = now_timestamp();
    let input = PlanInput {
        head,
        tips,
        idempotency,
        signer,
        recorded_at: &recorded_at,
        new_event_id,
    };
    Ok(plan_unsigned(input, batch))
}

/// The distinct streams and the idempotency keys of a batch.
pub fn batch_keys(batch: &[PreparedAppend]) -> (Vec<String>, Vec<String>) {
    let mut streams: Vec<String> = batch.iter().map(|r| r.stream.as_str().to_owned()).collect();
    streams.sort_unstable();
    streams.dedup();
    let keys = batch
        .iter()
        .filter_map(|r| r.idempotency_key.clone())
        .collect();
    (streams, keys)
}

/// A fresh UUIDv7: time-ordered, so ids sort roughly by position.
pub fn new_event_id() -> String {
    Uuid::now_v7().to_string()
}

/// Plans a batch. Refused requests get their error and leave no trace in the plan.
pub fn plan_batch(input: PlanInput<'_>, batch: &[PreparedAppend]) -> BatchPlan {
    plan_unsigned(input, batch).sign()
}

/// Plans a batch up to its signatures.
pub fn plan_unsigned(input: PlanInput<'_>, batch: &[PreparedAppend]) -> UnsignedPlan {
    let PlanInput {
        head,
        mut tips,
        mut idempotency,
        mut signer,
        recorded_at,
        new_event_id,
    } = input;
    let mut plan = BatchPlan::default();
    let mut position = head.position;
    let mut last_hash = head.hash;
    let mut signers: Vec<Arc<LogSigner>> = Vec::new();

    for request in batch {
        // An idempotency key seen before answers with the first result, or refuses.
        if let Some(key) = &request.idempotency_key
            && let Some(record) = idempotency.get(key)
        {
            let outcome = if record.digest == request.digest {
                Ok(AppendOutcome {
                    stream: record.stream.clone(),
                    first_position: record.first_position,
                    last_position: record.last_position,
                    first_version: record.first_version,
                    last_version: record.last_version,
                    replayed: true,
                })
            } else {
                Err(AppendError::IdempotencyKeyReused)
            };
            plan.outcomes.push(outcome);
            continue;
        }

        // Optimistic concurrency against the stream as it stands, earlier requests included.
        let stream = request.stream.as_str();
        let tip = tips.get(stream).copied();
        let actual = tip.map_or(0, |tip| tip.version);
        if !request.expected_version.admits(actual) {
            plan.outcomes.push(Err(AppendError::VersionConflict {
                stream: request.stream.clone(),
                expected: request.expected_version,
                actual,
            }));
            continue;
        }

        // System events: genesis only on an empty log; rotation only after it.
        let (system_event, event_signer, next_signer) =
            match system_payload(request, position, signer.as_ref()) {
                Ok(resolved) => resolved,
                Err(error) => {
                    plan.outcomes.push(Err(error));
                    continue;
                }
            };

        // Build the events, each hashed over its predecessor in the log and in the stream.
        let first_position = position + 1;
        let mut stream_hash = tip.map(|tip| tip.hash);
        let mut version = actual;
        for event in &request.events {
            let payload_text = match &system_event {
                Some(text) => text.as_str(),
                None => event.payload_text.as_str(),
            };
            position += 1;
            version += 1;
            let mut built = Event {
                position,
                id: event.id.clone().unwrap_or_else(new_event_id),
                stream: stream.to_owned(),
                stream_version: version,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                payload: payload_text.to_owned(),
                actor: request.actor.as_str().to_owned(),
                request_id: request.request_id.clone(),
                occurred_at: event
                    .occurred_at
                    .clone()
                    .unwrap_or_else(|| recorded_at.to_owned()),
                recorded_at: recorded_at.to_owned(),
                correlation_id: request.correlation_id.clone(),
                causation_id: event.causation_id.clone(),
                idempotency_key: request.idempotency_key.clone(),
                prev_hash: last_hash,
                stream_prev_hash: stream_hash,
                key_id: event_signer.id().to_string(),
                hash: [0; 32],
                signature: [0; 64],
            };
            built.hash = compute_hash(&built);
            last_hash = Some(built.hash);
            stream_hash = Some(built.hash);
            plan.events.push(built);
            signers.push(event_signer.clone());
        }

        let outcome = AppendOutcome {
            stream: stream.to_owned(),
            first_position,
            last_position: position,
            first_version: actual + 1,
            last_version: version,
            replayed: false,
        };
        if let Some(key) = &request.idempotency_key {
            let record = IdempotencyRecord {
                key: key.clone(),
                digest: request.digest,
                stream: stream.to_owned(),
                first_position,
                last_position: position,
                first_version: outcome.first_version,
                last_version: version,
            };
            idempotency.insert(key.clone(), record.clone());
            plan.idempotency.push(record);
        }
        if let Some(hash) = stream_hash {
            let tip = StreamTip { version, hash };
            tips.insert(stream.to_owned(), tip);
            plan.stream_tips.insert(stream.to_owned(), tip);
        }
        if let Some(next) = next_signer {
            signer = Some(next);
        }
        plan.data_keys.extend(request.data_keys.iter().cloned());
        plan.outcomes.push(Ok(outcome));
    }

    if !plan.events.is_empty() {
        plan.head = Some(LogHead {
            position,
            hash: last_hash,
            key_id: signer.map(|signer| signer.id().to_string()),
        });
    }
    UnsignedPlan { plan, signers }
}

/// A plan whose events are hashed and linked but not yet signed. The chain is fixed, so the
/// signatures can be made in any order and on any thread.
pub struct UnsignedPlan {
    pub plan: BatchPlan,
    signers: Vec<Arc<LogSigner>>,
}

impl UnsignedPlan {
    /// Signs every event with the key in force at its position.
    pub fn sign(self) -> BatchPlan {
        let UnsignedPlan { mut plan, signers } = self;
        sign_events(&mut plan.events, &signers);
        plan
    }

    /// Splits the plan from its events and their signers, to be signed elsewhere.
    pub fn into_parts(self) -> (BatchPlan, Vec<Event>, Vec<Arc<LogSigner>>) {
        let UnsignedPlan { mut plan, signers } = self;
        let events = std::mem::take(&mut plan.events);
        (plan, events, signers)
    }
}

/// Signs events with their signers, on all cores when there are enough of them.
pub fn sign_events(events: &mut [Event], signers: &[Arc<LogSigner>]) {
    if events.len() >= PARALLEL_SIGNING_THRESHOLD {
        events
            .par_iter_mut()
            .zip(signers.par_iter())
            .for_each(|(event, signer)| {
                event.signature = signer.sign_event(&event.hash);
            });
    } else {
        for (event, signer) in events.iter_mut().zip(signers) {
            event.signature = signer.sign_event(&event.hash);
        }
    }
}

/// A system event's payload, completed at commit, as canonical text.
type SystemPayload = Option<String>;

/// What a request resolves to at commit: its system payload (if any), the key that signs it,
/// and for a rotation the key in force after it.
type Resolved = (SystemPayload, Arc<LogSigner>, Option<Arc<LogSigner>>);

/// The payload a system request gets at commit, the key that signs the request, and for a
/// rotation the key in force after it.
fn system_payload(
    request: &PreparedAppend,
    position: u64,
    signer: Option<&Arc<LogSigner>>,
) -> Result<Resolved, AppendError> {
    let encode =
        |value: Value| -> SystemPayload { Some(canonical_json(&value).unwrap_or_default()) };
    match (&request.system, signer) {
        (
            Some(SystemAppend::Genesis {
                log_id,
                signer: first,
            }),
            _,
        ) => {
            if position != 0 {
                return Err(AppendError::AlreadyInitialised);
            }
            let genesis = Genesis {
                format: FORMAT.to_owned(),
                log_id: log_id.clone(),
                key_id: first.id().to_string(),
                public_key: first.public_key_hex(),
            };
            let value = serde_json::to_value(genesis).unwrap_or_default();
            Ok((encode(value), first.clone(), Some(first.clone())))
        }
        (Some(SystemAppend::KeyRotation { next }), Some(current)) => {
            let rotation = KeyRotated {
                previous_key_id: current.id().to_string(),
                next_key_id: next.id().to_string(),
                next_public_key: next.public_key_hex(),
                acceptance_signature: hex::encode(next.accept_handover(current.id())),
            };
            let value = serde_json::to_value(rotation).unwrap_or_default();
            Ok((encode(value), current.clone(), Some(next.clone())))
        }
        (Some(SystemAppend::KeyRotation { .. }), None) | (None, None) => {
            Err(AppendError::NotInitialised)
        }
        (None, Some(current)) => Ok((None, current.clone(), None)),
    }
}
