//! Sealing: AES-256-GCM encryption of one piece of client data under a data key, bound to the
//! place it belongs.
//!
//! A data key never encrypts anything itself. Each sealed value names a *context* (for a log
//! payload `event/<event id>/private`), and the key that encrypts it is derived for that context
//! alone: `HKDF-SHA256(salt = "docket/seal/v1", ikm = data key, info = context)`. The 96-bit nonce
//! is random, and the associated data is `"docket/seal/v1\n" || key id || "\n" || context`.
//!
//! So a ciphertext moved to another event, another field or under another key id fails to
//! open, and nonces cannot collide in any way that matters: a derived key seals one context,
//! which is sealed once when it is written (a few times at most, if a projection is rebuilt),
//! far below the 2^32 messages per key that random nonces allow (NIST SP 800-38D 8.3).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::VaultError;

/// The label of every sealed value: in the associated data, as HKDF salt, and as the format
/// name of the log's sealed object.
pub const SEAL_FORMAT: &str = "docket-seal/1";
const SEAL_DOMAIN: &[u8] = b"docket/seal/v1";
const NONCE_LEN: usize = 12;

/// A subject's 256-bit data key, zeroised when dropped. It never leaves the process unwrapped.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, VaultError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|_| VaultError::NoRandomness)?;
        Ok(DataKey(bytes))
    }

    /// A key from its 32 bytes (after unwrapping); anything else is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VaultError> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| VaultError::Malformed {
            what: "data key length",
        })?;
        Ok(DataKey(Zeroizing::new(array)))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher_for(&self, context: &str) -> Result<Aes256Gcm, VaultError> {
        let mut derived = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(SEAL_DOMAIN), self.0.as_ref())
            .expand(context.as_bytes(), derived.as_mut())
            .map_err(|_| VaultError::Malformed {
                what: "derived key",
            })?;
        Aes256Gcm::new_from_slice(derived.as_ref()).map_err(|_| VaultError::Malformed {
            what: "derived key",
        })
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// One sealed value as the log stores it in place of a payload's `private` member:
/// `{"sealed": "docket-seal/1", "key": <key id>, "nonce": <base64>, "ciphertext": <base64>}`.
/// The ciphertext ends with the 16-byte GCM tag; base64 is the standard alphabet with padding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    pub sealed: String,
    pub key: String,
    pub nonce: String,
    pub ciphertext: String,
}

impl Sealed {
    /// Whether a JSON value has the shape of a sealed value (the `sealed` member names the
    /// format); plaintext parts written before sealing was on do not.
    pub fn recognise(value: &serde_json::Value) -> Option<Result<Sealed, VaultError>> {
        let object = value.as_object()?;
        object.get("sealed")?;
        Some(
            serde_json::from_value::<Sealed>(value.clone())
                .map_err(|_| VaultError::Malformed {
                    what: "sealed value",
                })
                .and_then(|sealed| {
                    if sealed.sealed == SEAL_FORMAT {
                        Ok(sealed)
                    } else {
                        Err(VaultError::Malformed {
                            what: "sealed value format",
                        })
                    }
                }),
        )
    }
}

/// The associated data of a sealed value.
fn associated_data(key_id: &str, context: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SEAL_DOMAIN.len() + key_id.len() + context.len() + 2);
    aad.extend_from_slice(SEAL_DOMAIN);
    aad.push(b'\n');
    aad.extend_from_slice(key_id.as_bytes());
    aad.push(b'\n');
    aad.extend_from_slice(context.as_bytes());
    aad
}

/// Seals `plaintext` for `context` under the data key `key` whose id is `key_id`.
pub fn seal(
    key: &DataKey,
    key_id: &str,
    context: &str,
    plaintext: &[u8],
) -> Result<Sealed, VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| VaultError::NoRandomness)?;
    let aad = associated_data(key_id, context);
    let ciphertext = key
        .cipher_for(context)?
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| VaultError::SealFailed)?;
    Ok(Sealed {
        sealed: SEAL_FORMAT.to_owned(),
        key: key_id.to_owned(),
        nonce: STANDARD.encode(nonce),
        ciphertext: STANDARD.encode(ciphertext),
    })
}

/// Opens a sealed value for `context`; the plaintext is zeroised when dropped. Any change to
/// the ciphertext, nonce, key id or context fails with [`VaultError::OpenFailed`].
pub fn open(
    key: &DataKey,
    sealed: &Sealed,
    context: &str,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let nonce: [u8; NONCE_LEN] = STANDARD
        .decode(&sealed.nonce)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(VaultError::Malformed { what: "nonce" })?;
    let ciphertext = STANDARD
        .decode(&sealed.ciphertext)
        .map_err(|_| VaultError::Malformed { what: "ciphertext" })?;
    let aad = associated_data(&sealed.key, context);
    key.cipher_for(context)?
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &ciphertext,
                aad: &aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| VaultError::OpenFailed)
}

/// The context of an event's `private` member.
pub fn event_context(event_id: &str) -> String {
    format!("event/{event_id}/private")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_bytes(&[7u8; 32]).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_in_its_own_context_only() {
        let sealed = seal(&key(), "dk_1", "event/a/private", b"Ada Lovelace").unwrap();
        assert_eq!(sealed.sealed, SEAL_FORMAT);
        assert!(!sealed.ciphertext.contains("Ada"));
        let opened = open(&key(), &sealed, "event/a/private").unwrap();
        assert_eq!(opened.as_slice(), b"Ada Lovelace");
        assert!(matches!(
            open(&key(), &sealed, "event/b/private"),
            Err(VaultError::OpenFailed)
        ));
    }

    #[test]
    fn a_changed_key_id_nonce_or_ciphertext_fails_to_open() {
        let sealed = seal(&key(), "dk_1", "ctx", b"secret").unwrap();
        let mut other_key = sealed.clone();
        other_key.key = "dk_2".into();
        assert!(matches!(
            open(&key(), &other_key, "ctx"),
            Err(VaultError::OpenFailed)
        ));

        let mut bytes = STANDARD.decode(&sealed.ciphertext).unwrap();
        bytes[0] ^= 1;
        let mut flipped = sealed.clone();
        flipped.ciphertext = STANDARD.encode(bytes);
        assert!(matches!(
            open(&key(), &flipped, "ctx"),
            Err(VaultError::OpenFailed)
        ));

        let mut short_nonce = sealed.clone();
        short_nonce.nonce = STANDARD.encode([0u8; 8]);
        assert!(matches!(
            open(&key(), &short_nonce, "ctx"),
            Err(VaultError::Malformed { .. })
        ));

        let wrong = DataKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(matches!(
            open(&wrong, &sealed, "ctx"),
            Err(VaultError::OpenFailed)
        ));
    }

    #[test]
    fn two_seals_of_the_same_value_differ() {
        let a = seal(&key(), "dk_1", "ctx", b"same").unwrap();
        let b = seal(&key(), "dk_1", "ctx", b"same").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn recognise_tells_sealed_values_from_plaintext_parts() {
        let sealed = seal(&key(), "dk_1", "ctx", b"x").unwrap();
        let value = serde_json::to_value(&sealed).unwrap();
        assert!(matches!(Sealed::recognise(&value), Some(Ok(_))));
        assert!(Sealed::recognise(&serde_json::json!({"body": "plain"})).is_none());
        assert!(matches!(
            Sealed::recognise(
                &serde_json::json!({"sealed": "other/9", "key": "k", "nonce": "", "ciphertext": ""})
            ),
            Some(Err(_))
        ));
    }

    #[test]
    fn data_keys_of_the_wrong_length_are_refused() {
        assert!(DataKey::from_bytes(&[0u8; 31]).is_err());
        assert_eq!(format!("{:?}", key()), "DataKey(..)");
    }
}
