//! Checkpoints (C2SP `tlog-checkpoint`): the log's origin, a tree size and the Merkle root at
//! that size, as the text of a signed note.
//!
//! The body is exactly three lines, with no extension lines:
//!
//! ```text
//! <origin>
//! <tree size in decimal>
//! <base64 of the 32-byte SHA-256 root>
//! ```
//!
//! The log signs it under the key name `<origin>` with the Ed25519 key in force after the first
//! `size` events (the key a verifier learns from those events alone). Witnesses add
//! `cosignature/v1` lines under their own names.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;

use super::keys::LogSigner;
use super::merkle::TreeHash;
use super::note::{self, ED25519, Note, NoteError};

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("a checkpoint is three lines: origin, decimal tree size, base64 root hash")]
    MalformedBody,
    #[error(
        "a checkpoint origin is 1-255 printable ASCII characters without spaces or `+`, \
         and not `cosignature/v1`"
    )]
    InvalidOrigin,
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// What a checkpoint states: the tree of `origin` had `size` leaves and this root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: TreeHash,
}

/// Whether `origin` may name a log.
pub fn validate_origin(origin: &str) -> Result<(), CheckpointError> {
    let printable = origin.bytes().all(|b| b.is_ascii_graphic());
    if printable
        && origin.len() <= 255
        && note::valid_key_name(origin)
        && !origin.starts_with("cosignature/")
    {
        Ok(())
    } else {
        Err(CheckpointError::InvalidOrigin)
    }
}

impl Checkpoint {
    /// The note text.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Reads a body; sizes with leading zeros or a sign are refused, so each checkpoint has one
    /// text.
    pub fn parse_body(text: &str) -> Result<Self, CheckpointError> {
        let malformed = CheckpointError::MalformedBody;
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .ok_or(malformed.clone())?
            .split('\n')
            .collect();
        let [origin, size, root] = lines.as_slice() else {
            return Err(malformed);
        };
        validate_origin(origin)?;
        let canonical_size = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size.len() == 1 || !size.starts_with('0'));
        let size: u64 = match canonical_size {
            true => size.parse().map_err(|_| malformed.clone())?,
            false => return Err(malformed),
        };
        let root: TreeHash = STANDARD
            .decode(root)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(malformed)?;
        Ok(Checkpoint {
            origin: (*origin).to_owned(),
            size,
            root,
        })
    }
}

/// A checkpoint and its note, with the log's signature and any cosignatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    note: Note,
}

impl SignedCheckpoint {
    /// Signs `checkpoint` with the log key `signer`, under the origin as key name.
    pub fn sign(checkpoint: Checkpoint, signer: &LogSigner) -> Result<Self, CheckpointError> {
        validate_origin(&checkpoint.origin)?;
        let mut note = Note::new(checkpoint.body())?;
        let signature = signer.sign_note_text(note.text());
        note.add_signature(note::ed25519_signature(
            &checkpoint.origin,
            &signer.verifying_key(),
            signature,
        ))?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// Reads a signed checkpoint (signatures are parsed, not yet checked).
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let note = Note::parse(text)?;
        let checkpoint = Checkpoint::parse_body(note.text())?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// Whether the log key `key` signed this checkpoint.
    pub fn signed_by_log_key(&self, key: &VerifyingKey) -> bool {
        self.note.signed_by(&self.checkpoint.origin, ED25519, key)
    }

    /// The time of a valid cosignature by the witness `name` with `key`, if there is one.
    pub fn cosigned_at(&self, name: &str, key: &VerifyingKey) -> Option<u64> {
        let hash = note::key_hash(name, note::COSIGNATURE_V1, key);
        self.note
            .signatures()
            .iter()
            .filter(|s| s.name == name && s.key_hash == hash)
            .find_map(|s| note::cosignature_time(self.note.text(), key, &s.signature))
    }

    /// Adds a witness's cosignature line (already made over this checkpoint's text).
    pub fn add_cosignature(
        &mut self,
        signature: note::NoteSignature,
    ) -> Result<(), CheckpointError> {
        Ok(self.note.add_signature(signature)?)
    }

    /// The names of every signature line, in order.
    pub fn signer_names(&self) -> Vec<&str> {
        self.note
            .signatures()
            .iter()
            .map(|s| s.name.as_str())
            .collect()
    }

    pub fn note(&self) -> &Note {
        &self.note
    }

    /// The signed note as served and saved.
    pub fn encode(&self) -> String {
        self.note.encode()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::log::merkle::empty_root;

    fn checkpoint(size: u64) -> Checkpoint {
        Checkpoint {
            origin: "firm.example/docket".into(),
            size,
            root: empty_root(),
        }
    }

    #[test]
    fn a_checkpoint_has_the_c2sp_body_and_round_trips_signed() {
        let signer = LogSigner::from_seed(&[5; 32]);
        let signed = SignedCheckpoint::sign(checkpoint(12), &signer).unwrap();
        let text = signed.encode();
        assert!(text.starts_with(
            "firm.example/docket\n12\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n\u{2014} firm.example/docket "
        ));
        let parsed = SignedCheckpoint::parse(&text).unwrap();
        assert_eq!(parsed, signed);
        assert!(parsed.signed_by_log_key(&signer.verifying_key()));
        assert!(!parsed.signed_by_log_key(&LogSigner::from_seed(&[6; 32]).verifying_key()));
    }

    #[test]
    fn bodies_with_extra_lines_or_odd_sizes_are_refused() {
        let root = STANDARD.encode(empty_root());
        for body in [
            format!("o\n012\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n1\n{root}\nextension\n"),
            "o\n1\nnot-base64\n".to_owned(),
            format!("has space\n1\n{root}\n"),
            format!("o\n1\n{root}"),
        ] {
            assert!(Checkpoint::parse_body(&body).is_err(), "{body:?}");
        }
        assert!(Checkpoint::parse_body(&format!("o\n0\n{root}\n")).is_ok());
    }

    #[test]
    fn a_witness_cosignature_is_kept_beside_the_log_signature() {
        let signer = LogSigner::from_seed(&[5; 32]);
        let witness = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let mut signed = SignedCheckpoint::sign(checkpoint(3), &signer).unwrap();
        let line = note::cosign(
            "witness.example",
            &witness,
            signed.note().text(),
            1_800_000_000,
        );
        signed.add_cosignature(line).unwrap();
        let parsed = SignedCheckpoint::parse(&signed.encode()).unwrap();
        assert_eq!(
            parsed.cosigned_at("witness.example", &witness.verifying_key()),
            Some(1_800_000_000)
        );
        assert!(parsed.signed_by_log_key(&signer.verifying_key()));
        assert_eq!(
            parsed.signer_names(),
            ["firm.example/docket", "witness.example"]
        );
    }
}
