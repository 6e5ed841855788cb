//! Signed notes (C2SP `signed-note`): a text and the signatures over it, in the form checkpoints
//! and cosignatures take.
//!
//! A note is its text (UTF-8, ending in a newline, no blank line), one blank line, then one line
//! per signature: `"\u{2014} " name " " base64(key hash || signature)`. The key hash is the first
//! four bytes of `SHA-256(name || "\n" || type || public key)`, with type 0x01 for an Ed25519
//! signature over the text and 0x04 for a timestamped `cosignature/v1`. A verifier looks up the
//! key by name and key hash and ignores signatures from keys it does not know.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Key type byte of an Ed25519 note signature.
pub const ED25519: u8 = 0x01;
/// Key type byte of a C2SP `cosignature/v1` (Ed25519 over a timestamped message).
pub const COSIGNATURE_V1: u8 = 0x04;
/// The most signatures a note may carry; the specification asks verifiers to accept 16.
pub const MAX_SIGNATURES: usize = 100;
/// The longest note Docket reads.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";

/// Why a note was refused. Messages name the rule broken, never the note's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("a note is at most {MAX_NOTE_BYTES} bytes")]
    TooLarge,
    #[error("a note's text must be non-empty, end with a newline and contain no blank line")]
    MalformedText,
    #[error("a note needs a blank line and then signature lines")]
    MissingSignatures,
    #[error("signature line {line} is not `\u{2014} <name> <base64>`")]
    MalformedSignature { line: usize },
    #[error("a note carries at most {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("a key name must be non-empty printable text without spaces or `+`")]
    InvalidKeyName,
    #[error("a verifier key must be `<name>+<8 hex>+<base64 of type and key>`")]
    InvalidVerifierKey,
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_hash: [u8; 4],
    /// What follows the key hash: 64 bytes for Ed25519, 8 + 64 for a cosignature.
    pub signature: Vec<u8>,
}

/// A note: its text and signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

/// Whether `name` may name a key: no whitespace, no `+`, not empty.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && name.chars().all(|c| !c.is_whitespace())
}

fn valid_text(text: &str) -> bool {
    !text.is_empty() && text.ends_with('\n') && !text.starts_with('\n') && !text.contains("\n\n")
}

impl Note {
    /// A note with no signatures yet.
    pub fn new(text: String) -> Result<Self, NoteError> {
        if !valid_text(&text) {
            return Err(NoteError::MalformedText);
        }
        Ok(Note {
            text,
            signatures: Vec::new(),
        })
    }

    /// Reads a note; it must carry at least one signature line.
    pub fn parse(encoded: &str) -> Result<Self, NoteError> {
        if encoded.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge);
        }
        let split = encoded.rfind("\n\n").ok_or(NoteError::MissingSignatures)?;
        let text = &encoded[..=split];
        let block = &encoded[split + 2..];
        if !valid_text(text) {
            return Err(NoteError::MalformedText);
        }
        if block.is_empty() || !block.ends_with('\n') {
            return Err(NoteError::MissingSignatures);
        }
        let lines: Vec<&str> = block[..block.len() - 1].split('\n').collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let mut signatures = Vec::with_capacity(lines.len());
        for (number, line) in lines.iter().enumerate() {
            let malformed = NoteError::MalformedSignature { line: number + 1 };
            let rest = line
                .strip_prefix(SIGNATURE_LINE_PREFIX)
                .ok_or(malformed.clone())?;
            let (name, encoded) = rest.split_once(' ').ok_or(malformed.clone())?;
            let bytes = STANDARD.decode(encoded).map_err(|_| malformed.clone())?;
            if !valid_key_name(name) || bytes.len() < 5 {
                return Err(malformed);
            }
            let (hash, signature) = bytes.split_at(4);
            let mut key_hash = [0u8; 4];
            key_hash.copy_from_slice(hash);
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_hash,
                signature: signature.to_vec(),
            });
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature line unless the same key already signed.
    pub fn add_signature(&mut self, signature: NoteSignature) -> Result<(), NoteError> {
        if self
            .signatures
            .iter()
            .any(|s| s.name == signature.name && s.key_hash == signature.key_hash)
        {
            return Ok(());
        }
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        self.signatures.push(signature);
        Ok(())
    }

    /// The note as text: the text, a blank line, the signature lines.
    pub fn encode(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for signature in &self.signatures {
            let mut bytes = signature.key_hash.to_vec();
            bytes.extend_from_slice(&signature.signature);
            out.push_str(SIGNATURE_LINE_PREFIX);
            out.push_str(&signature.name);
            out.push(' ');
            out.push_str(&STANDARD.encode(bytes));
            out.push('\n');
        }
        out
    }

    /// Whether `key` (of `key_type`, under `name`) produced a valid signature on this note.
    pub fn signed_by(&self, name: &str, key_type: u8, key: &VerifyingKey) -> bool {
        let hash = key_hash(name, key_type, key);
        self.signatures
            .iter()
            .filter(|s| s.name == name && s.key_hash == hash)
            .any(|s| match key_type {
                ED25519 => verify_ed25519(key, self.text.as_bytes(), &s.signature),
                COSIGNATURE_V1 => cosignature_time(&self.text, key, &s.signature).is_some(),
                _ => false,
            })
    }
}

/// `SHA-256(name || "\n" || type || public key)[..4]`.
pub fn key_hash(name: &str, key_type: u8, key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([key_type]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn verify_ed25519(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(&bytes))
        .is_ok()
}

/// An Ed25519 signature line over a note's text (the signature itself made by the caller, who
/// holds the key).
pub fn ed25519_signature(name: &str, key: &VerifyingKey, signature: [u8; 64]) -> NoteSignature {
    NoteSignature {
        name: name.to_owned(),
        key_hash: key_hash(name, ED25519, key),
        signature: signature.to_vec(),
    }
}

/// The message a `cosignature/v1` signs: the domain line, the time line, then the note text.
pub fn cosignature_message(text: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{text}")
}

/// A witness's cosignature over a checkpoint text at `timestamp` (seconds since the epoch).
pub fn cosign(name: &str, key: &SigningKey, text: &str, timestamp: u64) -> NoteSignature {
    use ed25519_dalek::Signer;
    let signature = key.sign(cosignature_message(text, timestamp).as_bytes());
    let mut bytes = timestamp.to_be_bytes().to_vec();
    bytes.extend_from_slice(&signature.to_bytes());
    NoteSignature {
        name: name.to_owned(),
        key_hash: key_hash(name, COSIGNATURE_V1, &key.verifying_key()),
        signature: bytes,
    }
}

/// The time a valid cosignature carries, or `None` when it does not verify.
pub fn cosignature_time(text: &str, key: &VerifyingKey, signature: &[u8]) -> Option<u64> {
    if signature.len() != 72 {
        return None;
    }
    let (time, signature) = signature.split_at(8);
    let timestamp = u64::from_be_bytes(time.try_into().ok()?);
    verify_ed25519(
        key,
        cosignature_message(text, timestamp).as_bytes(),
        signature,
    )
    .then_some(timestamp)
}

/// A verifier key in the C2SP form `<name>+<key hash hex>+<base64(type || public key)>`.
pub fn verifier_key(name: &str, key_type: u8, key: &VerifyingKey) -> String {
    let mut encoded = vec![key_type];
    encoded.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{}+{}",
        hex::encode(key_hash(name, key_type, key)),
        STANDARD.encode(encoded)
    )
}

/// Reads a verifier key: its name, key type and public key.
pub fn parse_verifier_key(text: &str) -> Result<(String, u8, VerifyingKey), NoteError> {
    let invalid = NoteError::InvalidVerifierKey;
    // The name holds no `+`, but standard base64 may: only the first two separate fields.
    let mut parts = text.trim().splitn(3, '+');
    let (Some(name), Some(hash), Some(encoded)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid);
    };
    let bytes = STANDARD.decode(encoded).map_err(|_| invalid.clone())?;
    let (&key_type, key) = bytes.split_first().ok_or(invalid.clone())?;
    let key: [u8; 32] = key.try_into().map_err(|_| invalid.clone())?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| invalid.clone())?;
    if !valid_key_name(name)
        || key.is_weak()
        || hex::encode(key_hash(name, key_type, &key)) != hash
        || !matches!(key_type, ED25519 | COSIGNATURE_V1)
    {
        return Err(invalid);
    }
    Ok((name.to_owned(), key_type, key))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn a_signed_note_round_trips_and_verifies() {
        let signer = key(7);
        let mut note = Note::new("example.org/log\n3\nAAAA\n".into()).unwrap();
        let signature = signer.sign(note.text().as_bytes()).to_bytes();
        note.add_signature(ed25519_signature(
            "example.org/log",
            &signer.verifying_key(),
            signature,
        ))
        .unwrap();
        let encoded = note.encode();
        assert!(encoded.contains("\n\n\u{2014} example.org/log "));
        let parsed = Note::parse(&encoded).unwrap();
        assert_eq!(parsed, note);
        assert!(parsed.signed_by("example.org/log", ED25519, &signer.verifying_key()));
        assert!(!parsed.signed_by("example.org/log", ED25519, &key(8).verifying_key()));
        assert!(!parsed.signed_by("other", ED25519, &signer.verifying_key()));

        // A changed text no longer verifies.
        let tampered = encoded.replacen("\n3\n", "\n4\n", 1);
        let tampered = Note::parse(&tampered).unwrap();
        assert!(!tampered.signed_by("example.org/log", ED25519, &signer.verifying_key()));
    }

    #[test]
    fn cosignatures_carry_their_time_and_bind_the_text() {
        let witness = key(9);
        let text = "example.org/log\n3\nAAAA\n";
        let signature = cosign("witness.example", &witness, text, 1_700_000_000);
        assert_eq!(
            cosignature_time(text, &witness.verifying_key(), &signature.signature),
            Some(1_700_000_000)
        );
        assert_eq!(
            cosignature_time(
                "example.org/log\n4\nAAAA\n",
                &witness.verifying_key(),
                &signature.signature
            ),
            None
        );
        let mut forged = signature.signature.clone();
        forged[7] ^= 1;
        assert_eq!(
            cosignature_time(text, &witness.verifying_key(), &forged),
            None
        );
    }

    #[test]
    fn malformed_notes_are_refused_with_the_rule_broken() {
        assert_eq!(
            Note::parse("no signatures\n"),
            Err(NoteError::MissingSignatures)
        );
        assert_eq!(
            Note::parse("text\n\nnot a signature\n"),
            Err(NoteError::MalformedSignature { line: 1 })
        );
        assert_eq!(
            Note::parse("text\n\n\u{2014} name !!!\n"),
            Err(NoteError::MalformedSignature { line: 1 })
        );
        assert_eq!(
            Note::new("no newline".into()),
            Err(NoteError::MalformedText)
        );
        assert_eq!(
            Note::parse(&"x".repeat(MAX_NOTE_BYTES + 1)),
            Err(NoteError::TooLarge)
        );
    }

    #[test]
    fn verifier_keys_round_trip_and_check_their_hash() {
        let signer = key(3);
        let text = verifier_key("example.org/log", ED25519, &signer.verifying_key());
        let (name, key_type, parsed) = parse_verifier_key(&text).unwrap();
        assert_eq!((name.as_str(), key_type), ("example.org/log", ED25519));
        assert_eq!(parsed, signer.verifying_key());
        let wrong_hash = text.replacen('+', "+0", 1);
        assert!(parse_verifier_key(&wrong_hash).is_err());

        // Standard base64 may contain `+`; such keys read back too.
        let with_plus = (0u8..=255)
            .map(|seed| key(seed).verifying_key())
            .map(|key| verifier_key("w", COSIGNATURE_V1, &key))
            .find(|text| text.matches('+').count() > 2)
            .unwrap();
        assert!(parse_verifier_key(&with_plus).is_ok(), "{with_plus}");
    }
}
