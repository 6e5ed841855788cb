//! The checks a bundle's events undergo, one event at a time: well-formed columns, the hash,
//! the key chain (genesis and rotations), signatures and inclusion proofs.
//!
//! They are the checks of docs/log-format.md sections 10, 11 and 14.3 (steps 2, 3, 7 and 8),
//! applied to events that are not contiguous, so the key in force at a position comes from the
//! bundle's key events rather than from a walk over the whole log. Signatures are checked in
//! parallel batches, with strict single verification to name the first bad one.

use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;

use crate::log::Event;
use crate::log::canonical::compute_hash;
use crate::log::keys::{KeyId, event_signature_message, parse_public_key, verify_event_signature};
use crate::log::merkle::{TreeHash, leaf_hash, verify_inclusion};
use crate::log::system_events::{FORMAT, GENESIS, Genesis, KEY_ROTATED};
use crate::log::time::is_canonical_timestamp;

use super::{BundleFailure, FailureKind};

/// Signatures per batch verification.
const SIGNATURE_BATCH: usize = 1000;

/// A key the log introduced, at the position of the event that introduced it.
#[derive(Debug, Clone)]
pub(super) struct IntroducedKey {
    pub position: u64,
    pub id: KeyId,
    pub key: VerifyingKey,
}

/// The log's keys in the order the key events introduced them; the first is the genesis key.
#[derive(Debug, Clone, Default)]
pub(super) struct KeyChain {
    keys: Vec<IntroducedKey>,
}

impl KeyChain {
    /// The key that must have signed the event at `position`: the genesis key at position 1
    /// (it signs its own introduction), otherwise the last key introduced before `position`.
    pub fn signer_at(&self, position: u64) -> Option<&IntroducedKey> {
        if position == 1 {
            return self.keys.first();
        }
        self.keys.iter().rev().find(|key| key.position < position)
    }

    /// The key in force once the first `size` events exist, which signs a checkpoint of that
    /// size: the last key introduced at a position up to `size`.
    pub fn in_force_after(&self, size: u64) -> Option<&IntroducedKey> {
        self.keys.iter().rev().find(|key| key.position <= size)
    }

    pub fn genesis(&self) -> Option<&IntroducedKey> {
        self.keys.first()
    }

    pub fn rotations(&self) -> u64 {
        self.keys.len().saturating_sub(1) as u64
    }

    pub fn push(&mut self, key: IntroducedKey) {
        self.keys.push(key);
    }
}

/// Step 2 of docs/log-format.md section 14.3: the columns whose format the writer guarantees.
pub(super) fn check_well_formed(event: &Event) -> Result<(), BundleFailure> {
    let malformed =
        |detail: &str| BundleFailure::at(FailureKind::MalformedEvent, event.position, detail);
    let canonical_id = uuid::Uuid::parse_str(&event.id).map(|id| id.hyphenated().to_string());
    if canonical_id.ok().as_deref() != Some(event.id.as_str()) {
        return Err(malformed("event id is not a lowercase hyphenated UUID"));
    }
    if !is_canonical_timestamp(&event.occurred_at) || !is_canonical_timestamp(&event.recorded_at) {
        return Err(malformed("timestamps are not in canonical form"));
    }
    Ok(())
}

/// Step 3: the hash recomputed from the event's fields.
pub(super) fn check_hash(event: &Event) -> Result<(), BundleFailure> {
    if compute_hash(event) == event.hash {
        Ok(())
    } else {
        Err(BundleFailure::at(
            FailureKind::HashMismatch,
            event.position,
            "recomputed hash differs",
        ))
    }
}

/// The position lies in the checkpoint's tree.
pub(super) fn check_within(event: &Event, tree_size: u64) -> Result<(), BundleFailure> {
    if (1..=tree_size).contains(&event.position) {
        Ok(())
    } else {
        Err(BundleFailure::at(
            FailureKind::BeyondCheckpoint,
            event.position,
            format!("position is not in the checkpoint's tree of {tree_size} events"),
        ))
    }
}

/// The event's inclusion proof leads from its hash to the checkpoint's root.
pub(super) fn check_inclusion(
    event: &Event,
    proof: &[TreeHash],
    tree_size: u64,
    root: &TreeHash,
) -> Result<(), BundleFailure> {
    let leaf = leaf_hash(&event.hash);
    let index = event.position.checked_sub(1);
    match index.map(|index| verify_inclusion(index, tree_size, &leaf, proof, root)) {
        Some(Ok(())) => Ok(()),
        _ => Err(BundleFailure::at(
            FailureKind::BadInclusionProof,
            event.position,
            "the inclusion proof does not lead to the checkpoint's root",
        )),
    }
}

/// Docs/log-format.md section 10: the genesis event, whose key becomes the first of the chain;
/// returns the key and the log's id.
pub(super) fn accept_genesis(
    event: &Event,
    trusted: Option<&str>,
) -> Result<(IntroducedKey, String), BundleFailure> {
    let bad = |detail: &str| BundleFailure::at(FailureKind::BadGenesis, 1, detail);
    if event.position != 1
        || event.event_type != GENESIS
        || event.stream != "system"
        || event.stream_version != 1
    {
        return Err(bad(
            "the first key event must be log.genesis at position 1, version 1 of the system stream",
        ));
    }
    let genesis: Genesis =
        parse_object(&event.payload).ok_or_else(|| bad("malformed genesis payload"))?;
    let key = parse_public_key(&genesis.public_key).ok_or_else(|| bad("invalid public key"))?;
    let id = KeyId::of(&key);
    if genesis.format != FORMAT || genesis.key_id != id.as_str() || event.key_id != id.as_str() {
        return Err(bad(
            "genesis key id or format does not match its public key",
        ));
    }
    if let Some(trusted) = trusted
        && trusted != id.as_str()
    {
        return Err(BundleFailure::at(
            FailureKind::UntrustedGenesisKey,
            1,
            format!("genesis key is {id}, expected {trusted}"),
        ));
    }
    let key = IntroducedKey {
        position: 1,
        id,
        key,
    };
    Ok((key, genesis.log_id))
}

/// Docs/log-format.md section 11: a rotation (already known to name the key in force) and the
/// key it introduces.
pub(super) fn accept_rotation(event: &Event) -> Result<IntroducedKey, BundleFailure> {
    let (id, key) = crate::log::verify::rotation_handover(event)
        .map_err(|detail| BundleFailure::at(FailureKind::BadKeyRotation, event.position, detail))?;
    Ok(IntroducedKey {
        position: event.position,
        id,
        key,
    })
}

/// Whether `event` is a key rotation.
pub(super) fn is_rotation(event: &Event) -> bool {
    event.event_type == KEY_ROTATED
}

/// A system payload: a JSON object (not an array) with exactly the expected members, each
/// once (the derived decoder refuses duplicate and unknown members).
fn parse_object<T: serde::de::DeserializeOwned>(payload: &str) -> Option<T> {
    if !payload.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str(payload).ok()
}

/// Strict verification of one event's signature.
pub(super) fn check_signature(event: &Event, key: &VerifyingKey) -> Result<(), BundleFailure> {
    if verify_event_signature(key, &event.hash, &event.signature) {
        Ok(())
    } else {
        Err(bad_signature(event))
    }
}

pub(super) fn bad_signature(event: &Event) -> BundleFailure {
    BundleFailure::at(
        FailureKind::BadSignature,
        event.position,
        format!("signature does not verify under key {}", event.key_id),
    )
}

/// Index (into `signed`) of the first event whose signature fails under its key. Batches are
/// checked in parallel; a failing batch (or every signature, when `strict`) is checked strictly
/// one by one.
pub(super) fn first_bad_signature(
    signed: &[(&Event, VerifyingKey)],
    strict: bool,
) -> Option<usize> {
    signed
        .par_chunks(SIGNATURE_BATCH)
        .enumerate()
        .filter_map(|(chunk, items)| {
            if !strict && verify_chunk(items) {
                return None;
            }
            items
                .iter()
                .position(|(event, key)| {
                    !verify_event_signature(key, &event.hash, &event.signature)
                })
                .map(|index| chunk * SIGNATURE_BATCH + index)
        })
        .min()
}

/// Batch verification: fast, but says only whether every signature of the chunk is good.
fn verify_chunk(items: &[(&Event, VerifyingKey)]) -> bool {
    let messages: Vec<[u8; 58]> = items
        .iter()
        .map(|(event, _)| event_signature_message(&event.hash))
        .collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(|message| message.as_slice()).collect();
    let signatures: Vec<Signature> = items
        .iter()
        .map(|(event, _)| Signature::from_bytes(&event.signature))
        .collect();
    let keys: Vec<VerifyingKey> = items.iter().map(|(_, key)| *key).collect();
    ed25519_dalek::verify_batch(&message_refs, &signatures, &keys).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogSigner;

    fn introduced(position: u64, seed: u8) -> IntroducedKey {
        let signer = LogSigner::from_seed(&[seed; 32]);
        IntroducedKey {
            position,
            id: signer.id().clone(),
            key: signer.verifying_key(),
        }
    }

    #[test]
    fn a_rotation_is_signed_by_the_outgoing_key_and_a_checkpoint_by_the_incoming_one() {
        let mut chain = KeyChain::default();
        chain.push(introduced(1, 1));
        chain.push(introduced(6, 2));
        let id = |key: Option<&IntroducedKey>| key.map(|key| key.position);
        // The genesis event signs its own introduction; the rotation at 6 is the old key's.
        assert_eq!(id(chain.signer_at(1)), Some(1));
        assert_eq!(id(chain.signer_at(6)), Some(1));
        assert_eq!(id(chain.signer_at(7)), Some(6));
        // A checkpoint of size 6 already holds the rotation, so the new key signs it.
        assert_eq!(id(chain.in_force_after(5)), Some(1));
        assert_eq!(id(chain.in_force_after(6)), Some(6));
        assert_eq!(chain.rotations(), 1);
    }
}
