//! Blind indexes: keyed hashes that let the read models answer exact-match questions (is there
//! a contact with this email, this identifier, a name with this token?) without holding the
//! value.
//!
//! `blind(kind, value) = hex(HMAC-SHA256(K_kind, value))[..32]`, where
//! `K_kind = HKDF-SHA256(salt = "docket/blind/v1", ikm = blind-index key, info = kind)`: each
//! kind (`name`, `email`, `identifier`) has its own key, so equal values of different kinds do
//! not match. The blind-index key is its own random key, wrapped by the KEK like a data key.
//!
//! What they leak, to whoever reads the read models: which rows share a value of the same
//! kind, and how often each value occurs (frequency analysis). Not the value itself, and
//! nothing without the key. Erasing a subject deletes its entries.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::seal::DataKey;

const BLIND_DOMAIN: &[u8] = b"docket/blind/v1";
/// Hex digits kept: 128 bits, so distinct values practically never collide.
const BLIND_HEX_LEN: usize = 32;

/// The kinds of value a blind index is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlindKind {
    /// One folded token of a name (conflict checks, contact search).
    Name,
    /// An email address, trimmed and lowercased.
    Email,
    /// An identifier as `scheme:value`, trimmed, the scheme lowercased.
    Identifier,
}

impl BlindKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BlindKind::Name => "name",
            BlindKind::Email => "email",
            BlindKind::Identifier => "identifier",
        }
    }

    /// The normal form the hash is taken of, so equal values in different spellings match.
    pub fn normalise(self, value: &str) -> String {
        match self {
            BlindKind::Name | BlindKind::Email => value.trim().to_lowercase(),
            BlindKind::Identifier => match value.split_once(':') {
                Some((scheme, rest)) => format!("{}:{}", scheme.trim().to_lowercase(), rest.trim()),
                None => value.trim().to_owned(),
            },
        }
    }
}

/// The per-kind HMAC keys, derived once from the blind-index key.
pub struct BlindIndex {
    name: Zeroizing<[u8; 32]>,
    email: Zeroizing<[u8; 32]>,
    identifier: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindIndex(..)")
    }
}

fn derive(key: &DataKey, kind: BlindKind) -> Zeroizing<[u8; 32]> {
    let mut derived = Zeroizing::new([0u8; 32]);
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = Hkdf::<Sha256>::new(Some(BLIND_DOMAIN), key.as_bytes())
        .expand(kind.as_str().as_bytes(), derived.as_mut());
    derived
}

impl BlindIndex {
    pub fn new(key: &DataKey) -> Self {
        BlindIndex {
            name: derive(key, BlindKind::Name),
            email: derive(key, BlindKind::Email),
            identifier: derive(key, BlindKind::Identifier),
        }
    }

    /// The blind index of `value` (normalised first).
    pub fn blind(&self, kind: BlindKind, value: &str) -> String {
        let key = match kind {
            BlindKind::Name => &self.name,
            BlindKind::Email => &self.email,
            BlindKind::Identifier => &self.identifier,
        };
        let normal = Zeroizing::new(kind.normalise(value));
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_ref()) else {
            return String::new();
        };
        mac.update(normal.as_bytes());
        let mut text = hex::encode(mac.finalize().into_bytes());
        text.truncate(BLIND_HEX_LEN);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> BlindIndex {
        BlindIndex::new(&DataKey::from_bytes(&[5u8; 32]).unwrap())
    }

    #[test]
    fn equal_values_match_across_spellings_and_kinds_do_not_mix() {
        let index = index();
        let a = index.blind(BlindKind::Email, " Ada@Example.org ");
        assert_eq!(a, index.blind(BlindKind::Email, "ada@example.org"));
        assert_eq!(a.len(), 32);
        assert!(!a.contains("ada"));
        assert_ne!(a, index.blind(BlindKind::Name, "ada@example.org"));
        assert_ne!(a, index.blind(BlindKind::Email, "eve@example.org"));
        assert_eq!(
            index.blind(BlindKind::Identifier, "Passport: X123"),
            index.blind(BlindKind::Identifier, "passport:X123")
        );
    }

    #[test]
    fn another_key_gives_other_indexes() {
        let other = BlindIndex::new(&DataKey::from_bytes(&[6u8; 32]).unwrap());
        assert_ne!(
            index().blind(BlindKind::Name, "lovelace"),
            other.blind(BlindKind::Name, "lovelace")
        );
    }
}
