//! Streaming verification of a whole log.
//!
//! [`Verifier`] takes the log page by page in position order and keeps only what the next page
//! needs: the last hash, the current key, and each stream's version and last hash. Per page it
//! recomputes hashes in parallel, then walks the events in order checking positions, both chain
//! links, stream versions and the key-rotation chain, then checks signatures in parallel: batch
//! verification first, strict single verification to pinpoint a failure (or for every signature
//! when strict mode is asked for). The first failure in position order is reported.

use std::collections::HashMap;

use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;
use serde::Serialize;

use super::canonical::compute_hash;
use super::envelope::{Event, EventHash};
use super::keys::verify_event_signature;
use super::keys::{KeyId, event_signature_message, key_acceptance_message, parse_public_key};
use super::system_events::{FORMAT, GENESIS, Genesis, KEY_ROTATED, KeyRotated};
use super::time::is_canonical_timestamp;

const SIGNATURE_BATCH: usize = 1000;

/// What is wrong at the first failing position. The names are stable (they appear in `--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The log holds no genesis event.
    EmptyLog,
    /// A position is missing or repeated.
    PositionGap,
    /// A stored column cannot be what the writer wrote (an id that is not a canonical UUID, a
    /// time not in canonical form, a row whose columns cannot be decoded).
    MalformedEvent,
    /// The recomputed hash differs from the stored one.
    HashMismatch,
    /// `prev_hash` is not the hash of the previous event.
    ChainBroken,
    /// The stream version is not the previous one plus one.
    StreamVersionGap,
    /// `stream_prev_hash` is not the hash of the stream's previous event.
    StreamChainBroken,
    /// The event names a key other than the log's key at that position.
    UnknownSigningKey,
    /// The signature does not verify under the log's key.
    BadSignature,
    /// Position 1 is not a well-formed genesis event.
    BadGenesis,
    /// The genesis key is not the one the verifier was told to trust.
    UntrustedGenesisKey,
    /// A key rotation is malformed or its incoming key did not accept it.
    BadKeyRotation,
    /// The recorded head of the log does not match its last event.
    HeadMismatch,
}

/// The first failure found, with enough to find it in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyFailure {
    pub position: u64,
    pub event_id: Option<String>,
    pub reason: FailureReason,
    pub detail: String,
}

impl VerifyFailure {
    fn at(event: &Event, reason: FailureReason, detail: impl Into<String>) -> Self {
        VerifyFailure {
            position: event.position,
            event_id: Some(event.id.clone()),
            reason,
            detail: detail.into(),
        }
    }
}

/// What an intact log looks like at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifySummary {
    pub events: u64,
    pub head_hash: Option<String>,
    pub log_id: Option<String>,
    pub genesis_key_id: Option<String>,
    pub current_key_id: Option<String>,
    pub key_rotations: u64,
    pub streams: usize,
}

/// The head the store says it has, checked against the last event seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedHead {
    pub position: u64,
    pub hash: Option<EventHash>,
}

struct StreamTip {
    version: u64,
    hash: EventHash,
}

/// Incremental verifier of one log; feed it every page in position order.
pub struct Verifier {
    strict: bool,
    trusted_genesis_key: Option<String>,
    next_position: u64,
    last_hash: Option<EventHash>,
    streams: HashMap<String, StreamTip>,
    current_key: Option<(KeyId, VerifyingKey)>,
    log_id: Option<String>,
    genesis_key_id: Option<String>,
    key_rotations: u64,
}

impl Verifier {
    /// `strict` checks every signature with strict single verification; `trusted_genesis_key`
    /// pins the key id the log must start with (a log re-created under a new key fails).
    pub fn new(strict: bool, trusted_genesis_key: Option<String>) -> Self {
        Verifier {
            strict,
            trusted_genesis_key,
            next_position: 1,
            last_hash: None,
            streams: HashMap::new(),
            current_key: None,
            log_id: None,
            genesis_key_id: None,
            key_rotations: 0,
        }
    }

    /// Events verified so far.
    pub fn verified(&self) -> u64 {
        self.next_position - 1
    }

    /// Checks the next page of events (in position order).
    pub fn check_page(&mut self, events: &[Event]) -> Result<(), VerifyFailure> {
        // Recompute every hash, and check the columns' formats, in parallel: it is the bulk
        // of the work besides signatures.
        let hashes: Vec<(EventHash, Result<(), VerifyFailure>)> = events
            .par_iter()
            .map(|event| (compute_hash(event), check_well_formed(event)))
            .collect();

        // Walk in order: structure, chain links and the key in force at each position.
        let mut keys = Vec::with_capacity(events.len());
        let mut structural = None;
        for (event, hash) in events.iter().zip(&hashes) {
            match self.check_structure(event, hash) {
                Ok(key) => keys.push(key),
                Err(failure) => {
                    structural = Some(failure);
                    break;
                }
            }
        }

        // Signatures of everything before the first structural failure, in parallel.
        let signed = &events[..keys.len()];
        if let Some(index) = self.first_bad_signature(signed, &keys) {
            let event = &signed[index];
            return Err(VerifyFailure::at(
                event,
                FailureReason::BadSignature,
                format!("signature does not verify under key {}", event.key_id),
            ));
        }
        structural.map_or(Ok(()), Err)
    }

    /// Final checks once every page was fed.
    pub fn finish(self, recorded: Option<RecordedHead>) -> Result<VerifySummary, VerifyFailure> {
        if self.next_position == 1 {
            return Err(VerifyFailure {
                position: 1,
                event_id: None,
                reason: FailureReason::EmptyLog,
                detail: "the log has no genesis event".into(),
            });
        }
        if let Some(head) = recorded {
            self.check_head(&head)?;
        }
        Ok(VerifySummary {
            events: self.verified(),
            head_hash: self.last_hash.map(hex::encode),
            log_id: self.log_id,
            genesis_key_id: self.genesis_key_id,
            current_key_id: self.current_key.map(|(id, _)| id.to_string()),
            key_rotations: self.key_rotations,
            streams: self.streams.len(),
        })
    }

    /// Checks that the store's recorded head is the last event fed so far: a verifier kept
    /// between runs checks it after each one, as [`Verifier::finish`] does at the end.
    pub fn check_head(&self, head: &RecordedHead) -> Result<(), VerifyFailure> {
        if head.position != self.verified() || head.hash != self.last_hash {
            return Err(VerifyFailure {
                position: head.position,
                event_id: None,
                reason: FailureReason::HeadMismatch,
                detail: format!(
                    "recorded head is position {} but the log ends at {}",
                    head.position,
                    self.verified()
                ),
            });
        }
        Ok(())
    }

    /// Checks one event's place in the log and returns the key that must have signed it.
    fn check_structure(
        &mut self,
        event: &Event,
        (computed, well_formed): &(EventHash, Result<(), VerifyFailure>),
    ) -> Result<VerifyingKey, VerifyFailure> {
        use FailureReason::*;

        if event.position != self.next_position {
            // Reported at the position that is missing (or repeated), naming the event found.
            return Err(VerifyFailure {
                position: self.next_position,
                event_id: Some(event.id.clone()),
                reason: PositionGap,
                detail: format!(
                    "expected position {}, found {}",
                    self.next_position, event.position
                ),
            });
        }
        well_formed.clone()?;
        if *computed != event.hash {
            return Err(VerifyFailure::at(
                event,
                HashMismatch,
                "recomputed hash differs",
            ));
        }
        if event.prev_hash != self.last_hash {
            return Err(VerifyFailure::at(
                event,
                ChainBroken,
                "prev_hash is not the previous event's hash",
            ));
        }

        // The stream's own chain: versions 1, 2, ... each linked to the one before.
        let tip = self.streams.get(&event.stream);
        let expected_version = tip.map_or(1, |tip| tip.version + 1);
        if event.stream_version != expected_version {
            return Err(VerifyFailure::at(
                event,
                StreamVersionGap,
                format!(
                    "expected stream version {expected_version}, found {}",
                    event.stream_version
                ),
            ));
        }
        if event.stream_prev_hash != tip.map(|tip| tip.hash) {
            return Err(VerifyFailure::at(
                event,
                StreamChainBroken,
                "stream_prev_hash is not the stream's previous event hash",
            ));
        }

        // The key in force: introduced by genesis, handed over by rotations.
        let signing_key = if event.position == 1 {
            self.accept_genesis(event)?
        } else {
            let Some((id, key)) = &self.current_key else {
                return Err(VerifyFailure::at(event, BadGenesis, "no key in force"));
            };
            if event.key_id != id.as_str() {
                return Err(VerifyFailure::at(
                    event,
                    UnknownSigningKey,
                    format!(
                        "signed by key {} but the log's key here is {id}",
                        event.key_id
                    ),
                ));
            }
            let key = *key;
            if event.event_type == KEY_ROTATED {
                self.accept_rotation(event)?;
            }
            key
        };

        let tip = StreamTip {
            version: event.stream_version,
            hash: event.hash,
        };
        match self.streams.get_mut(&event.stream) {
            Some(known) => *known = tip,
            None => {
                self.streams.insert(event.stream.clone(), tip);
            }
        }
        self.last_hash = Some(event.hash);
        self.next_position += 1;
        Ok(signing_key)
    }

    fn accept_genesis(&mut self, event: &Event) -> Result<VerifyingKey, VerifyFailure> {
        let bad = |detail: &str| VerifyFailure::at(event, FailureReason::BadGenesis, detail);
        if event.event_type != GENESIS || event.stream != "system" || event.stream_version != 1 {
            return Err(bad(
                "position 1 must be log.genesis, version 1 of the system stream",
            ));
        }
        let genesis: Genesis =
            parse_object(&event.payload).ok_or_else(|| bad("malformed genesis payload"))?;
        let key = parse_public_key(&genesis.public_key).ok_or_else(|| bad("invalid public key"))?;
        let id = KeyId::of(&key);
        if genesis.format != FORMAT || genesis.key_id != id.as_str() || event.key_id != id.as_str()
        {
            return Err(bad(
                "genesis key id or format does not match its public key",
            ));
        }
        if let Some(trusted) = &self.trusted_genesis_key
            && trusted != id.as_str()
        {
            return Err(VerifyFailure::at(
                event,
                FailureReason::UntrustedGenesisKey,
                format!("genesis key is {id}, expected {trusted}"),
            ));
        }
        self.log_id = Some(genesis.log_id);
        self.genesis_key_id = Some(id.to_string());
        self.current_key = Some((id, key));
        Ok(key)
    }

    fn accept_rotation(&mut self, event: &Event) -> Result<(), VerifyFailure> {
        let (next_id, next) = rotation_handover(event)
            .map_err(|detail| VerifyFailure::at(event, FailureReason::BadKeyRotation, detail))?;
        self.current_key = Some((next_id, next));
        self.key_rotations += 1;
        Ok(())
    }

    /// Index of the first event whose signature fails, if any.
    fn first_bad_signature(&self, events: &[Event], keys: &[VerifyingKey]) -> Option<usize> {
        let strict = self.strict;
        events
            .par_chunks(SIGNATURE_BATCH)
            .zip(keys.par_chunks(SIGNATURE_BATCH))
            .enumerate()
            .filter_map(|(chunk, (events, keys))| {
                let batch_ok = !strict && verify_chunk(events, keys);
                if batch_ok {
                    return None;
                }
                let bad = events.iter().zip(keys).position(|(event, key)| {
                    !verify_event_signature(key, &event.hash, &event.signature)
                });
                bad.map(|index| chunk * SIGNATURE_BATCH + index)
            })
            .min()
    }
}

/// Batch verification of one chunk: fast, but says only whether all signatures are good.
fn verify_chunk(events: &[Event], keys: &[VerifyingKey]) -> bool {
    let messages: Vec<[u8; 58]> = events
        .iter()
        .map(|event| event_signature_message(&event.hash))
        .collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(|message| message.as_slice()).collect();
    let signatures: Vec<Signature> = events
        .iter()
        .map(|event| Signature::from_bytes(&event.signature))
        .collect();
    ed25519_dalek::verify_batch(&message_refs, &signatures, keys).is_ok()
}

/// A system payload: a JSON object (not an array) with exactly the expected members, each
/// once (the derived decoder refuses duplicate and unknown members).
fn parse_object<T: serde::de::DeserializeOwned>(payload: &str) -> Option<T> {
    if !payload.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str(payload).ok()
}

/// Columns whose format the writer guarantees; anything else was not written by Docket.
fn check_well_formed(event: &Event) -> Result<(), VerifyFailure> {
    let malformed = |detail: &str| VerifyFailure::at(event, FailureReason::MalformedEvent, detail);
    let canonical_id = uuid::Uuid::parse_str(&event.id).map(|id| id.hyphenated().to_string());
    if canonical_id.ok().as_deref() != Some(event.id.as_str()) {
        return Err(malformed("event id is not a lowercase hyphenated UUID"));
    }
    if !is_canonical_timestamp(&event.occurred_at) || !is_canonical_timestamp(&event.recorded_at) {
        return Err(malformed("timestamps are not in canonical form"));
    }
    Ok(())
}

/// Checks a key-rotation event on its own (docs/log-format.md, section 11): on the `system`
/// stream, naming the key that signed it as the previous key, introducing a valid key under its
/// own id, with that key's signature accepting the handover. Returns the key introduced, or the
/// rule broken. Whether the event was signed by the key in force is the caller's check.
pub fn rotation_handover(event: &Event) -> Result<(KeyId, VerifyingKey), &'static str> {
    if event.stream != "system" {
        return Err("key rotations belong to the system stream");
    }
    let rotation: KeyRotated = parse_object(&event.payload).ok_or("malformed rotation payload")?;
    let next = parse_public_key(&rotation.next_public_key).ok_or("invalid next key")?;
    let next_id = KeyId::of(&next);
    if rotation.previous_key_id != event.key_id || rotation.next_key_id != next_id.as_str() {
        return Err("rotation key ids do not match the keys");
    }
    let acceptance: [u8; 64] = hex::decode(&rotation.acceptance_signature)
        .ok()
        .filter(|bytes| hex::encode(bytes) == rotation.acceptance_signature)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("malformed acceptance signature")?;
    let message = key_acceptance_message(&rotation.previous_key_id, next_id.as_str());
    next.verify_strict(&message, &Signature::from_bytes(&acceptance))
        .map_err(|_| "the incoming key did not sign its acceptance")?;
    Ok((next_id, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_payloads_must_be_objects_with_each_member_once() {
        let good = r#"{"format":"f","log_id":"l","key_id":"k","public_key":"p"}"#;
        assert!(parse_object::<Genesis>(good).is_some());
        let array = r#"["f","l","k","p"]"#;
        assert!(parse_object::<Genesis>(array).is_none());
        let twice = r#"{"format":"x","format":"f","log_id":"l","key_id":"k","public_key":"p"}"#;
        assert!(parse_object::<Genesis>(twice).is_none());
        let extra = r#"{"format":"f","log_id":"l","key_id":"k","public_key":"p","x":1}"#;
        assert!(parse_object::<Genesis>(extra).is_none());
    }
}
