//! Ed25519 signing keys of the log, their ids, and what exactly they sign.
//!
//! - A key id is the first 16 bytes of `blake3("docket/key-id/v1\n" || public key)`, as hex.
//! - An event signature covers `"docket/event-signature/v1\n" || event hash` (32 raw bytes).
//! - When a key hands over to the next, the incoming key signs
//!   `"docket/key-acceptance/v1\n" || previous key id || "\n" || next key id`, proving that
//!   whoever introduced it holds it.
//! - A backup archive's manifest is signed as `"docket/backup-manifest/v1\n" || blake3(manifest)`.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use super::envelope::{EventHash, SIGNATURE_LEN};

const KEY_ID_DOMAIN: &[u8] = b"docket/key-id/v1\n";
const EVENT_SIGNATURE_DOMAIN: &[u8] = b"docket/event-signature/v1\n";
const KEY_ACCEPTANCE_DOMAIN: &[u8] = b"docket/key-acceptance/v1\n";
const MANIFEST_DOMAIN: &[u8] = b"docket/backup-manifest/v1\n";

/// A key id: 32 lowercase hex characters derived from the public key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    pub fn of(public: &VerifyingKey) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(KEY_ID_DOMAIN);
        hasher.update(public.as_bytes());
        KeyId(hex::encode(&hasher.finalize().as_bytes()[..16]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The message an event signature covers.
pub fn event_signature_message(hash: &EventHash) -> [u8; 58] {
    let mut message = [0u8; 58];
    message[..26].copy_from_slice(EVENT_SIGNATURE_DOMAIN);
    message[26..].copy_from_slice(hash);
    message
}

/// The message an incoming key signs to accept a handover.
pub fn key_acceptance_message(previous: &str, next: &str) -> Vec<u8> {
    [
        KEY_ACCEPTANCE_DOMAIN,
        previous.as_bytes(),
        b"\n",
        next.as_bytes(),
    ]
    .concat()
}

/// What signs a backup manifest: a domain of its own and the manifest's blake3 (32 raw bytes);
/// its domain tells it apart from an event's message and a handover's, and a note's text ends
/// with a newline after longer text.
pub fn manifest_signature_message(manifest: &[u8]) -> Vec<u8> {
    [
        MANIFEST_DOMAIN,
        blake3::hash(manifest).as_bytes().as_slice(),
    ]
    .concat()
}

/// Whether `signature` is `key`'s signature of the backup manifest `manifest`.
pub fn verify_manifest_signature(key: &VerifyingKey, manifest: &[u8], signature: &[u8]) -> bool {
    let Ok(signature) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify_strict(&manifest_signature_message(manifest), &signature)
        .is_ok()
}

/// Parses a public key written as 64 lowercase hex digits; `None` when it is not that, not a
/// valid point encoding, or a weak (small-order) key, under which forged signatures could pass
/// batch verification.
pub fn parse_public_key(text: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(text).ok()?.try_into().ok()?;
    if hex::encode(bytes) != text {
        return None;
    }
    VerifyingKey::from_bytes(&bytes)
        .ok()
        .filter(|key| !key.is_weak())
}

/// Strict single verification of one event signature.
pub fn verify_event_signature(key: &VerifyingKey, hash: &EventHash, signature: &[u8; 64]) -> bool {
    let signature = Signature::from_bytes(signature);
    key.verify_strict(&event_signature_message(hash), &signature)
        .is_ok()
}

/// The private half of a log key. Its `Debug` shows only the key id.
pub struct LogSigner {
    key: SigningKey,
    id: KeyId,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSigner")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl LogSigner {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut())?;
        Ok(Self::from_seed(&seed))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let id = KeyId::of(&key.verifying_key());
        LogSigner { key, id }
    }

    /// The 32-byte seed, for writing the key file; zeroised when dropped.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    pub fn sign_event(&self, hash: &EventHash) -> [u8; SIGNATURE_LEN] {
        self.key.sign(&event_signature_message(hash)).to_bytes()
    }

    /// Signs the text of a signed note (a checkpoint). A note's text ends with a newline and
    /// is longer than any event-signature message, and a key-acceptance message never ends with
    /// a newline, so no note can be mistaken for either.
    pub fn sign_note_text(&self, text: &str) -> [u8; SIGNATURE_LEN] {
        self.key.sign(text.as_bytes()).to_bytes()
    }

    /// Signs a backup archive's manifest (docs/backup-format.md): the message is
    /// [`manifest_signature_message`], which neither an event, a note nor a handover can be.
    pub fn sign_manifest(&self, manifest: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.key
            .sign(&manifest_signature_message(manifest))
            .to_bytes()
    }

    /// Signs the acceptance of a handover from `previous` to this key.
    pub fn accept_handover(&self, previous: &KeyId) -> [u8; SIGNATURE_LEN] {
        self.key
            .sign(&key_acceptance_message(previous.as_str(), self.id.as_str()))
            .to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_derived_from_the_public_key() {
        let signer = LogSigner::from_seed(&[1; 32]);
        assert_eq!(signer.id().as_str().len(), 32);
        assert_eq!(signer.id(), &KeyId::of(&signer.verifying_key()));
        assert_ne!(signer.id(), LogSigner::from_seed(&[2; 32]).id());
    }

    #[test]
    fn signatures_verify_only_for_their_hash_and_key() {
        let signer = LogSigner::from_seed(&[1; 32]);
        let signature = signer.sign_event(&[5; 32]);
        assert!(verify_event_signature(
            &signer.verifying_key(),
            &[5; 32],
            &signature
        ));
        assert!(!verify_event_signature(
            &signer.verifying_key(),
            &[6; 32],
            &signature
        ));
        let other = LogSigner::from_seed(&[2; 32]);
        assert!(!verify_event_signature(
            &other.verifying_key(),
            &[5; 32],
            &signature
        ));
    }

    #[test]
    fn weak_or_non_canonical_public_keys_are_refused() {
        let identity = format!("01{}", "00".repeat(31));
        assert!(
            parse_public_key(&identity).is_none(),
            "the identity point is a small-order key"
        );
        let good = LogSigner::from_seed(&[3; 32]).public_key_hex();
        assert!(parse_public_key(&good).is_some());
        assert!(parse_public_key(&good.to_uppercase()).is_none());
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let signer = LogSigner::from_seed(&[0xab; 32]);
        let shown = format!("{signer:?}");
        assert!(!shown.contains(&hex::encode([0xab; 32])));
        assert!(shown.contains(signer.id().as_str()));
    }
}
