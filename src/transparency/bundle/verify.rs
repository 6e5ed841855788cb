//! Checking a bundle offline (docs/evidence-bundle.md section 5): no database, no server, only
//! the file and, optionally, the genesis key id and witness keys the verifier trusts.
//!
//! The checks run in the order the specification lists, and the first failure is reported.
//! Within the events section the per-event checks run in parallel and the signatures in batches;
//! the failure reported is still the first in the section's order, and within one event the
//! first in the order of the checks.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;
use rayon::prelude::*;
use serde::Serialize;

use crate::log::Event;
use crate::log::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::log::merkle::TreeHash;
use crate::log::note::{self, COSIGNATURE_V1, ED25519, NoteError};

use super::checks::{self, KeyChain};
use super::format::Scope;
use super::read::{Decoded, read};
use super::scope::{check_scope, check_view};
use super::{BundleFailure, FailureKind};

/// The largest bundle read by default: 1 GiB.
pub const MAX_BUNDLE_BYTES: usize = 1 << 30;

/// What the verifier trusts and how hard it checks.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The key id the log's genesis event must carry; without it the log's identity is taken
    /// from the bundle itself.
    pub genesis_key: Option<String>,
    /// Witnesses each of which must have cosigned the checkpoint.
    pub witness_keys: Vec<WitnessKey>,
    /// Verify every signature strictly, one by one, instead of in batches.
    pub strict: bool,
    /// Refuse files larger than this.
    pub max_bytes: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            genesis_key: None,
            witness_keys: Vec::new(),
            strict: false,
            max_bytes: MAX_BUNDLE_BYTES,
        }
    }
}

/// A witness's verifier key (C2SP `<name>+<key hash>+<base64 of type and key>`).
#[derive(Debug, Clone)]
pub struct WitnessKey {
    pub name: String,
    key_type: u8,
    key: VerifyingKey,
}

impl WitnessKey {
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, key_type, key) = note::parse_verifier_key(text)?;
        Ok(WitnessKey {
            name,
            key_type,
            key,
        })
    }

    fn has_signed(&self, checkpoint: &SignedCheckpoint) -> bool {
        match self.key_type {
            COSIGNATURE_V1 => checkpoint.cosigned_at(&self.name, &self.key).is_some(),
            _ => checkpoint.note().signed_by(&self.name, ED25519, &self.key),
        }
    }
}

/// What an intact bundle establishes, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleReport {
    pub scope: Scope,
    pub events: u64,
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    /// For a matter: the last stream version, which the manifest states is the stream's last.
    pub stream_version: Option<u64>,
    pub origin: String,
    pub tree_size: u64,
    /// The checkpoint's root, hex.
    pub root: String,
    pub log_id: String,
    pub genesis_key_id: String,
    /// Whether the genesis key was the one the verifier was told to trust.
    pub genesis_key_pinned: bool,
    pub key_rotations: u64,
    /// The key that signed the checkpoint: the one in force after `tree_size` events.
    pub checkpoint_key_id: String,
    /// The names on the checkpoint's other signature lines (witnesses), checked or not.
    pub cosigned_by: Vec<String>,
    /// The witnesses whose cosignatures were checked (every one asked for).
    pub witnesses_verified: Vec<String>,
    /// The investigator the view was made for, when there is one.
    pub view_for: Option<String>,
    pub created_at: String,
    pub export_id: String,
    pub access_position: Option<u64>,
    pub warnings: Vec<String>,
}

/// Checks a bundle file's bytes; the first failure, or what the intact bundle establishes.
pub fn verify_bundle(bytes: &[u8], options: &VerifyOptions) -> Result<BundleReport, BundleFailure> {
    // Steps 1 and 2: the file, its format and its digests.
    let Decoded {
        manifest,
        checkpoint,
        keys,
        events,
        view,
    } = read(bytes, options.max_bytes)?;

    // Step 3: the checkpoint, which the manifest must describe.
    let signed = SignedCheckpoint::parse(&checkpoint)
        .map_err(|error| BundleFailure::new(FailureKind::MalformedCheckpoint, error.to_string()))?;
    let tree = &signed.checkpoint;
    if tree.origin != manifest.origin || tree.size != manifest.tree_size {
        return Err(BundleFailure::new(
            FailureKind::ManifestMismatch,
            "the manifest's origin or tree size is not the checkpoint's",
        ));
    }

    // Step 4: the key chain from the genesis event, each key event proven in the tree.
    let (chain, log_id) = check_key_events(&keys, tree, options.genesis_key.as_deref())?;

    // Step 5: the checkpoint is signed by the key in force after its size.
    let signer = chain.in_force_after(tree.size).ok_or_else(|| {
        BundleFailure::new(FailureKind::BadCheckpointSignature, "no key is in force")
    })?;
    if !signed.signed_by_log_key(&signer.key) {
        return Err(BundleFailure::new(
            FailureKind::BadCheckpointSignature,
            format!(
                "the checkpoint is not signed by key {}, in force after {} events",
                signer.id, tree.size
            ),
        ));
    }

    // Step 6: every witness asked for cosigned it.
    for witness in &options.witness_keys {
        if !witness.has_signed(&signed) {
            return Err(BundleFailure::new(
                FailureKind::MissingCosignature,
                format!("no valid cosignature by {}", witness.name),
            ));
        }
    }

    // Steps 7 to 9: the events, the scope, the view.
    check_events(&events, &keys, &chain, tree, options.strict)?;
    check_scope(&manifest, &events)?;
    if let Some(view) = &view {
        check_view(view, &events)?;
    }

    let mut warnings = Vec::new();
    let genesis_key_id = chain
        .genesis()
        .map(|key| key.id.to_string())
        .unwrap_or_default();
    if options.genesis_key.is_none() {
        warnings.push(format!(
            "no --genesis-key given: the log's identity (genesis key {genesis_key_id}) was taken \
             from the bundle itself; compare it with a record kept outside the firm's systems"
        ));
    }
    Ok(BundleReport {
        scope: manifest.scope.clone(),
        events: events.len() as u64,
        first_position: events.first().map(|(event, _)| event.position),
        last_position: events.last().map(|(event, _)| event.position),
        stream_version: manifest.stream_version,
        origin: tree.origin.clone(),
        tree_size: tree.size,
        root: hex::encode(tree.root),
        log_id,
        genesis_key_id,
        genesis_key_pinned: options.genesis_key.is_some(),
        key_rotations: chain.rotations(),
        checkpoint_key_id: signer.id.to_string(),
        cosigned_by: signed
            .signer_names()
            .into_iter()
            .filter(|name| *name != tree.origin)
            .map(str::to_owned)
            .collect(),
        witnesses_verified: options
            .witness_keys
            .iter()
            .map(|w| w.name.clone())
            .collect(),
        view_for: view.map(|view| view.investigator),
        created_at: manifest.created_at,
        export_id: manifest.export_id,
        access_position: manifest.access_position,
        warnings,
    })
}

/// Step 4: the `system` stream's events in order, from the genesis event on, each checked as
/// the log verifier checks it and proven in the checkpoint's tree. Returns the key chain and
/// the log's id.
fn check_key_events(
    keys: &[(Event, Vec<TreeHash>)],
    tree: &Checkpoint,
    trusted: Option<&str>,
) -> Result<(KeyChain, String), BundleFailure> {
    let mut chain = KeyChain::default();
    let mut log_id = String::new();
    let mut previous: Option<&Event> = None;
    if keys.first().is_none_or(|(event, _)| event.position != 1) {
        return Err(BundleFailure::at(
            FailureKind::BadGenesis,
            1,
            "the key events do not start with the genesis event at position 1",
        ));
    }
    for (event, proof) in keys {
        checks::check_within(event, tree.size)?;
        checks::check_well_formed(event)?;
        checks::check_hash(event)?;

        // The system stream's own chain: no key event left out between two others.
        let at = |kind, detail: &str| BundleFailure::at(kind, event.position, detail);
        if previous.is_some_and(|p| event.position <= p.position) {
            return Err(at(
                FailureKind::OutOfOrder,
                "key events must ascend by position",
            ));
        }
        if event.stream != "system" {
            return Err(at(
                FailureKind::OutOfScope,
                "a key event belongs to the system stream",
            ));
        }
        let expected = previous.map_or(1, |p| p.stream_version + 1);
        if event.stream_version != expected {
            return Err(at(
                FailureKind::StreamVersionGap,
                &format!(
                    "expected system stream version {expected}, found {}",
                    event.stream_version
                ),
            ));
        }
        if event.stream_prev_hash != previous.map(|p| p.hash) {
            return Err(at(
                FailureKind::StreamChainBroken,
                "stream_prev_hash is not the previous key event's hash",
            ));
        }

        // The key that signed it, and the key it introduces.
        let signing_key = match previous {
            None => {
                let (genesis, id) = checks::accept_genesis(event, trusted)?;
                log_id = id;
                let key = genesis.key;
                chain.push(genesis);
                key
            }
            Some(_) => {
                let key = signing_key_at(&chain, event)?;
                if checks::is_rotation(event) {
                    chain.push(checks::accept_rotation(event)?);
                }
                key
            }
        };
        checks::check_signature(event, &signing_key)?;
        checks::check_inclusion(event, proof, tree.size, &tree.root)?;
        previous = Some(event);
    }
    Ok((chain, log_id))
}

/// The key in force at the event's position, which its `key_id` must name.
fn signing_key_at(chain: &KeyChain, event: &Event) -> Result<VerifyingKey, BundleFailure> {
    let unknown =
        |detail: String| BundleFailure::at(FailureKind::UnknownSigningKey, event.position, detail);
    let key = chain
        .signer_at(event.position)
        .ok_or_else(|| unknown("no key is in force".into()))?;
    if event.key_id != key.id.as_str() {
        return Err(unknown(format!(
            "signed by key {} but the log's key here is {}",
            event.key_id, key.id
        )));
    }
    Ok(key.key)
}

/// Step 7: each event in the tree, well formed, hashed, signed by the key in force at its
/// position and proven against the root; an event of the `system` stream must be one of the key
/// events. Reports the first failure in the section's order.
fn check_events(
    events: &[(Event, Vec<TreeHash>)],
    keys: &[(Event, Vec<TreeHash>)],
    chain: &KeyChain,
    tree: &Checkpoint,
    strict: bool,
) -> Result<(), BundleFailure> {
    let key_events: HashMap<u64, [u8; 32]> = keys
        .iter()
        .map(|(event, _)| (event.position, event.hash))
        .collect();
    type Checked = (
        Result<VerifyingKey, BundleFailure>,
        Result<(), BundleFailure>,
    );
    let checked: Vec<Checked> = events
        .par_iter()
        .map(|(event, proof)| {
            let before_signature = checks::check_within(event, tree.size)
                .and_then(|()| checks::check_well_formed(event))
                .and_then(|()| checks::check_hash(event))
                .and_then(|()| signing_key_at(chain, event));
            let after_signature = checks::check_inclusion(event, proof, tree.size, &tree.root)
                .and_then(|()| {
                    let listed = key_events.get(&event.position) == Some(&event.hash);
                    if event.stream == "system" && !listed {
                        return Err(BundleFailure::at(
                            FailureKind::KeysIncomplete,
                            event.position,
                            "an event of the system stream is not among the key events",
                        ));
                    }
                    Ok(())
                });
            (before_signature, after_signature)
        })
        .collect();

    // Signatures of the events whose earlier checks passed, in batches.
    let signed: Vec<(usize, (&Event, VerifyingKey))> = events
        .iter()
        .zip(&checked)
        .enumerate()
        .filter_map(|(index, ((event, _), (key, _)))| {
            key.as_ref().ok().map(|key| (index, (event, *key)))
        })
        .collect();
    let pairs: Vec<(&Event, VerifyingKey)> = signed.iter().map(|(_, pair)| *pair).collect();
    let first_bad = checks::first_bad_signature(&pairs, strict).map(|index| signed[index].0);

    for (index, ((event, _), (before, after))) in events.iter().zip(checked).enumerate() {
        before?;
        if first_bad == Some(index) {
            return Err(checks::bad_signature(event));
        }
        after?;
    }
    Ok(())
}
