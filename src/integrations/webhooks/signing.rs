//! Signing webhooks as Standard Webhooks 1.0 specifies.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`. An endpoint signs with
//! ed25519 (`v1a`, the default: Docket keeps the private key and the receiver verifies with
//! the `whpk_` public key) or with HMAC-SHA256 (`v1`, under a `whsec_` secret of 32 random
//! bytes that both sides hold). The `webhook-signature` header lists one signature per key in
//! force, space-separated, so that during a rotation the old and the new key both sign.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Length of every secret Docket generates: an HMAC secret or an ed25519 seed.
pub const SECRET_LEN: usize = 32;
/// The prefix of an HMAC secret as shown to the receiver.
pub const SECRET_PREFIX: &str = "whsec_";
/// The prefix of an ed25519 public key as shown to the receiver.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// How an endpoint's deliveries are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// ed25519, signature identifier `v1a`.
    Ed25519,
    /// HMAC-SHA256, signature identifier `v1`.
    HmacSha256,
}

impl Scheme {
    /// The stored name: `ed25519` or `hmac_sha256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Ed25519 => "ed25519",
            Scheme::HmacSha256 => "hmac_sha256",
        }
    }

    pub fn parse(text: &str) -> Option<Scheme> {
        match text {
            "ed25519" => Some(Scheme::Ed25519),
            "hmac_sha256" => Some(Scheme::HmacSha256),
            _ => None,
        }
    }

    /// The identifier that prefixes each signature in `webhook-signature`.
    pub fn version(self) -> &'static str {
        match self {
            Scheme::Ed25519 => "v1a",
            Scheme::HmacSha256 => "v1",
        }
    }
}

/// One signing key of an endpoint, unsealed: its 32 secret bytes, zeroised when dropped.
pub struct SigningSecret {
    scheme: Scheme,
    bytes: Zeroizing<[u8; SECRET_LEN]>,
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningSecret")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

/// The operating system's random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random source failed")]
pub struct NoRandomness;

impl SigningSecret {
    /// A new secret from the operating system's random source.
    pub fn generate(scheme: Scheme) -> Result<Self, NoRandomness> {
        let mut bytes = Zeroizing::new([0u8; SECRET_LEN]);
        getrandom::fill(bytes.as_mut()).map_err(|_| NoRandomness)?;
        Ok(SigningSecret { scheme, bytes })
    }

    /// A secret from its stored bytes; `None` unless there are exactly 32.
    pub fn from_bytes(scheme: Scheme, bytes: &[u8]) -> Option<Self> {
        let array: [u8; SECRET_LEN] = bytes.try_into().ok()?;
        Some(SigningSecret {
            scheme,
            bytes: Zeroizing::new(array),
        })
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The secret bytes, for sealing.
    pub fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.bytes
    }

    /// What the receiver is given to verify with: the `whsec_` secret (HMAC), or the `whpk_`
    /// public key (ed25519).
    pub fn receiver_key(&self) -> Zeroizing<String> {
        match self.scheme {
            Scheme::HmacSha256 => {
                Zeroizing::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(*self.bytes)))
            }
            Scheme::Ed25519 => Zeroizing::new(self.public_key().unwrap_or_default()),
        }
    }

    /// The `whpk_` public key of an ed25519 secret (`None` for HMAC, which has none).
    pub fn public_key(&self) -> Option<String> {
        match self.scheme {
            Scheme::Ed25519 => {
                let key = SigningKey::from_bytes(&self.bytes);
                Some(format!(
                    "{PUBLIC_KEY_PREFIX}{}",
                    STANDARD.encode(key.verifying_key().to_bytes())
                ))
            }
            Scheme::HmacSha256 => None,
        }
    }

    /// The versioned signature of one delivery, e.g. `v1a,<base64>`.
    pub fn sign(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
        let content = signed_content(webhook_id, timestamp, body);
        let signature = match self.scheme {
            Scheme::Ed25519 => {
                let key = SigningKey::from_bytes(&self.bytes);
                STANDARD.encode(key.sign(&content).to_bytes())
            }
            Scheme::HmacSha256 => {
                let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(self.bytes.as_ref()) {
                    Ok(mac) => mac,
                    // HMAC takes a key of any length; this cannot happen.
                    Err(_) => return String::new(),
                };
                mac.update(&content);
                STANDARD.encode(mac.finalize().into_bytes())
            }
        };
        format!("{},{signature}", self.scheme.version())
    }
}

/// `{id}.{timestamp}.{body}`, the bytes every scheme signs.
pub fn signed_content(webhook_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let prefix = format!("{webhook_id}.{timestamp}.");
    let mut content = Vec::with_capacity(prefix.len() + body.len());
    content.extend_from_slice(prefix.as_bytes());
    content.extend_from_slice(body);
    content
}

/// The `webhook-signature` header: every key's signature, space-separated.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a SigningSecret>,
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|secret| secret.sign(webhook_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, VerifyingKey};

    fn secret(scheme: Scheme, byte: u8) -> SigningSecret {
        SigningSecret::from_bytes(scheme, &[byte; 32]).unwrap()
    }

    #[test]
    fn hmac_signatures_match_an_independent_computation() {
        let secret = secret(Scheme::HmacSha256, 7);
        let header = secret.sign("msg_1", 1_700_000_000, br#"{"a":1}"#);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&[7u8; 32]).unwrap();
        mac.update(br#"msg_1.1700000000.{"a":1}"#);
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(header, format!("v1,{expected}"));
        let shown = secret.receiver_key();
        assert!(shown.starts_with("whsec_"));
        assert_eq!(
            STANDARD.decode(&shown["whsec_".len()..]).unwrap(),
            vec![7u8; 32]
        );
        assert_eq!(secret.public_key(), None);
    }

    #[test]
    fn ed25519_signatures_verify_with_the_published_key() {
        let secret = secret(Scheme::Ed25519, 9);
        let header = secret.sign("msg_2", 1_700_000_001, b"body");
        let encoded = header.strip_prefix("v1a,").unwrap();
        let signature = Signature::from_slice(&STANDARD.decode(encoded).unwrap()).unwrap();
        let public = secret.public_key().unwrap();
        assert_eq!(*secret.receiver_key(), public);
        let bytes: [u8; 32] = STANDARD
            .decode(public.strip_prefix("whpk_").unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let key = VerifyingKey::from_bytes(&bytes).unwrap();
        assert!(
            key.verify_strict(b"msg_2.1700000001.body", &signature)
                .is_ok()
        );
        assert!(
            key.verify_strict(b"msg_2.1700000002.body", &signature)
                .is_err()
        );
    }

    #[test]
    fn the_header_lists_one_signature_per_key() {
        let old = secret(Scheme::HmacSha256, 1);
        let new = secret(Scheme::Ed25519, 2);
        let header = signature_header([&new, &old], "msg_3", 5, b"x");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with("v1a,"));
        assert!(parts[1].starts_with("v1,"));
        assert_eq!(parts[1], old.sign("msg_3", 5, b"x"));
    }

    #[test]
    fn secrets_are_random_and_never_printed() {
        let a = SigningSecret::generate(Scheme::HmacSha256).unwrap();
        let b = SigningSecret::generate(Scheme::HmacSha256).unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert!(!format!("{a:?}").contains(&STANDARD.encode(a.as_bytes())));
        assert!(SigningSecret::from_bytes(Scheme::Ed25519, &[0; 31]).is_none());
        assert_eq!(Scheme::parse("ed25519"), Some(Scheme::Ed25519));
        assert_eq!(Scheme::parse("hmac_sha256"), Some(Scheme::HmacSha256));
        assert_eq!(Scheme::parse("rsa"), None);
    }
}
