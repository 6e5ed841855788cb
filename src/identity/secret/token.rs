//! Generated secrets: bearer tokens, recovery codes and API keys, and their stored hashes.
//!
//! Every secret here is random and long enough (at least 80 bits) that guessing is hopeless, so
//! a fast keyed BLAKE3 hash is enough to store it: a leaked table of [`TokenHash`]es gives an
//! attacker nothing to replay, and lookups stay cheap. Each kind of secret has a recognisable
//! prefix so that one pasted into a log or a chat can be spotted and revoked.

use std::fmt;
use std::hash::{Hash, Hasher};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::{SecretError, fill_random};

/// Prefix of session tokens.
pub const SESSION_PREFIX: &str = "dks_";
/// Prefix of enrolment tokens (invitations and password set-up links).
pub const ENROLMENT_PREFIX: &str = "dke_";
/// Prefix of API keys.
pub const API_KEY_PREFIX: &str = "dkt_";

/// Random bytes in a bearer token or an API key secret (256 bits).
pub const TOKEN_BYTES: usize = 32;
/// Random bytes in a recovery code (80 bits).
pub const RECOVERY_CODE_BYTES: usize = 10;
/// Characters in an API key id.
pub const KEY_ID_CHARS: usize = 12;

/// Characters of unpadded base64url needed for [`TOKEN_BYTES`].
const TOKEN_TEXT_CHARS: usize = 43;
/// Characters of base32 in a recovery code, without its dashes.
const RECOVERY_CODE_CHARS: usize = 16;
/// Characters of base32 between dashes in a displayed recovery code.
const RECOVERY_GROUP_CHARS: usize = 4;
/// Longest input [`normalise_recovery_code`] looks at; anything longer is not a code.
const MAX_RECOVERY_INPUT_BYTES: usize = 64;
/// Characters that must follow a prefix before [`looks_like_docket_secret`] reports a match.
const MIN_SECRET_TAIL_CHARS: usize = 16;

/// The BLAKE3 key-derivation context of [`TokenHash`]. Changing it invalidates every stored hash.
const TOKEN_HASH_CONTEXT: &str = "docket token hash v1";

/// The RFC 4648 base32 alphabet, upper case.
const BASE32_UPPER: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// The RFC 4648 base32 alphabet, lower case.
const BASE32_LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A newly issued bearer token: the text to hand to the client once, and the hash to store.
pub struct IssuedToken {
    /// The token itself, e.g. `dks_...`; show it once and drop it.
    pub text: Zeroizing<String>,
    /// What the server stores and looks the token up by.
    pub hash: TokenHash,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("text", &"<redacted>")
            .field("hash", &self.hash)
            .finish()
    }
}

/// Issues a bearer token: `prefix` followed by 256 random bits in unpadded base64url. Use
/// [`SESSION_PREFIX`] or [`ENROLMENT_PREFIX`].
pub fn issue(prefix: &str) -> Result<IssuedToken, SecretError> {
    let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
    fill_random(bytes.as_mut_slice())?;
    let mut text = Zeroizing::new(String::with_capacity(prefix.len() + TOKEN_TEXT_CHARS));
    text.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(bytes.as_slice(), &mut text);
    let hash = TokenHash::of(&text);
    Ok(IssuedToken { text, hash })
}

/// The stored form of a token, recovery code or API key: a keyed BLAKE3 hash of its text.
///
/// Equality is compared in constant time. Debug output shows only the first 8 hex characters.
#[derive(Clone, Copy)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a secret's full text (for a recovery code, its normalised form).
    pub fn of(text: &str) -> TokenHash {
        let mut hasher = blake3::Hasher::new_derive_key(TOKEN_HASH_CONTEXT);
        hasher.update(text.as_bytes());
        TokenHash(*hasher.finalize().as_bytes())
    }

    /// The hash as 64 lowercase hex characters, as stored.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads a hash written by [`TokenHash::to_hex`]; `None` unless it is 64 hex characters.
    pub fn from_hex(text: &str) -> Option<TokenHash> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(TokenHash(bytes))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for TokenHash {}

impl Hash for TokenHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = hex::encode(self.0.get(..4).unwrap_or_default());
        write!(f, "TokenHash({prefix}…)")
    }
}

/// Compares two byte strings in constant time for equal lengths. Lengths are not secret: slices
/// of different lengths are unequal at once.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// RFC 4648 base32 of `bytes` without padding, in the given alphabet, in a wiped buffer.
pub(super) fn base32(bytes: &[u8], alphabet: &[u8; 32]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(5) * 8));
    let mut buffer: u16 = 0;
    let mut bits: u32 = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u16::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(base32_char(alphabet, buffer >> bits));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(base32_char(alphabet, buffer << (5 - bits)));
    }
    buffer.zeroize();
    out
}

/// The character for the low five bits of `value`.
fn base32_char(alphabet: &[u8; 32], value: u16) -> char {
    char::from(alphabet[usize::from(value & 0x1f)])
}

/// RFC 4648 base32 (upper case, no padding), as authenticator apps expect TOTP secrets.
pub(super) fn base32_upper(bytes: &[u8]) -> Zeroizing<String> {
    base32(bytes, BASE32_UPPER)
}

/// Makes `count` recovery codes, each 80 random bits shown as 16 lowercase base32 characters
/// in groups of four: `abcd-efgh-ijkl-mnop`.
///
/// Store `TokenHash::of` each code's [`normalise_recovery_code`] form, never the code.
pub fn recovery_codes(count: usize) -> Result<Vec<Zeroizing<String>>, SecretError> {
    let mut codes = Vec::with_capacity(count);
    for _ in 0..count {
        let mut bytes = Zeroizing::new([0u8; RECOVERY_CODE_BYTES]);
        fill_random(bytes.as_mut_slice())?;
        let plain = base32(bytes.as_slice(), BASE32_LOWER);
        let groups = RECOVERY_CODE_CHARS / RECOVERY_GROUP_CHARS;
        let mut shown = Zeroizing::new(String::with_capacity(RECOVERY_CODE_CHARS + groups - 1));
        for (i, c) in plain.chars().enumerate() {
            if i > 0 && i % RECOVERY_GROUP_CHARS == 0 {
                shown.push('-');
            }
            shown.push(c);
        }
        codes.push(shown);
    }
    Ok(codes)
}

/// The canonical form of a recovery code as typed: spaces and dashes removed, lower case.
/// `None` unless that leaves exactly 16 base32 characters.
pub fn normalise_recovery_code(input: &str) -> Option<Zeroizing<String>> {
    if input.len() > MAX_RECOVERY_INPUT_BYTES {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(RECOVERY_CODE_CHARS));
    for c in input.chars() {
        if c == '-' || c.is_whitespace() {
            continue;
        }
        let lower = c.to_ascii_lowercase();
        if !(lower.is_ascii_lowercase() || ('2'..='7').contains(&lower)) {
            return None;
        }
        if out.len() == RECOVERY_CODE_CHARS {
            return None;
        }
        out.push(lower);
    }
    (out.len() == RECOVERY_CODE_CHARS).then_some(out)
}

/// A newly issued API key: the public id to look it up by, the full text to hand over once, and
/// the hash to store.
pub struct ApiKey {
    /// The public part, 12 lowercase base32 characters; safe to show and log.
    pub key_id: String,
    /// The whole key, `dkt_<key_id>_<secret>`; show it once and drop it.
    pub text: Zeroizing<String>,
    /// [`TokenHash::of`] the whole text.
    pub secret_hash: TokenHash,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("key_id", &self.key_id)
            .field("text", &"<redacted>")
            .field("secret_hash", &self.secret_hash)
            .finish()
    }
}

/// Issues an API key `dkt_<key_id>_<secret>`: a random 12-character lowercase base32 id (60
/// bits, the lookup key) and 256 random bits of secret in unpadded base64url.
pub fn issue_api_key() -> Result<ApiKey, SecretError> {
    let mut id_bytes = [0u8; KEY_ID_CHARS];
    fill_random(&mut id_bytes)?;
    let key_id: String = id_bytes
        .iter()
        .map(|&b| base32_char(BASE32_LOWER, u16::from(b)))
        .collect();
    let mut secret = Zeroizing::new([0u8; TOKEN_BYTES]);
    fill_random(secret.as_mut_slice())?;
    let mut text = Zeroizing::new(String::with_capacity(
        API_KEY_PREFIX.len() + KEY_ID_CHARS + 1 + TOKEN_TEXT_CHARS,
    ));
    text.push_str(API_KEY_PREFIX);
    text.push_str(&key_id);
    text.push('_');
    URL_SAFE_NO_PAD.encode_string(secret.as_slice(), &mut text);
    let secret_hash = TokenHash::of(&text);
    Ok(ApiKey {
        key_id,
        text,
        secret_hash,
    })
}

/// The key id of a well-formed API key, or `None`. The shape is checked strictly: the prefix,
/// exactly 12 lowercase base32 characters, `_`, and exactly the canonical unpadded base64url
/// of 32 bytes. It never panics.
pub fn parse_api_key(text: &str) -> Option<String> {
    let rest = text.strip_prefix(API_KEY_PREFIX)?;
    let key_id = rest.get(..KEY_ID_CHARS)?;
    if !key_id.bytes().all(|b| BASE32_LOWER.contains(&b)) {
        return None;
    }
    let secret = rest.get(KEY_ID_CHARS..)?.strip_prefix('_')?;
    if secret.len() != TOKEN_TEXT_CHARS {
        return None;
    }
    let mut decoded = Zeroizing::new([0u8; TOKEN_BYTES]);
    match URL_SAFE_NO_PAD.decode_slice(secret, decoded.as_mut_slice()) {
        Ok(TOKEN_BYTES) => Some(key_id.to_owned()),
        _ => None,
    }
}

/// Whether `text` contains something shaped like a Docket secret: one of the prefixes followed
/// by at least 16 base64url characters. For scrubbing logs and error reports.
pub fn looks_like_docket_secret(text: &str) -> bool {
    [SESSION_PREFIX, ENROLMENT_PREFIX, API_KEY_PREFIX]
        .iter()
        .any(|prefix| {
            text.match_indices(prefix).any(|(at, _)| {
                text.get(at + prefix.len()..).is_some_and(|tail| {
                    tail.bytes()
                        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
                        .count()
                        >= MIN_SECRET_TAIL_CHARS
                })
            })
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn is_base64url(text: &str) -> bool {
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    #[test]
    fn issued_tokens_have_the_documented_shape() {
        for prefix in [SESSION_PREFIX, ENROLMENT_PREFIX] {
            let token = issue(prefix).expect("token");
            let body = token.text.strip_prefix(prefix).expect("prefix");
            assert_eq!(body.len(), 43);
            assert!(is_base64url(body));
            assert_eq!(URL_SAFE_NO_PAD.decode(body).expect("decodes").len(), 32);
            assert_eq!(token.hash, TokenHash::of(&token.text));
            assert!(looks_like_docket_secret(&token.text));
        }
    }

    #[test]
    fn a_thousand_issues_are_distinct() {
        let texts: HashSet<String> = (0..1000)
            .map(|_| issue(SESSION_PREFIX).expect("token").text.to_string())
            .collect();
        assert_eq!(texts.len(), 1000);
        let ids: HashSet<String> = (0..1000)
            .map(|_| issue_api_key().expect("key").key_id)
            .collect();
        assert_eq!(ids.len(), 1000);
        let codes: HashSet<String> = recovery_codes(1000)
            .expect("codes")
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(codes.len(), 1000);
    }

    #[test]
    fn token_hash_is_stable_keyed_and_round_trips_hex() {
        let hash = TokenHash::of("dks_example");
        assert_eq!(hash, TokenHash::of("dks_example"));
        assert_ne!(hash, TokenHash::of("dks_examplf"));
        let expected = blake3::derive_key("docket token hash v1", b"dks_example");
        assert_eq!(hash.as_bytes(), &expected);
        assert_ne!(hash.as_bytes(), blake3::hash(b"dks_example").as_bytes());
        let hex = hash.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(TokenHash::from_hex(&hex), Some(hash));
        assert_eq!(TokenHash::from_hex(&hex[..62]), None);
        assert_eq!(TokenHash::from_hex(&format!("{}zz", &hex[..62])), None);
        assert_eq!(TokenHash::from_hex(""), None);
        let debug = format!("{hash:?}");
        assert_eq!(debug, format!("TokenHash({}…)", &hex[..8]));
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let token = issue(SESSION_PREFIX).expect("token");
        assert!(!format!("{token:?}").contains(token.text.as_str()));
        let key = issue_api_key().expect("key");
        let debug = format!("{key:?}");
        assert!(!debug.contains(key.text.as_str()));
        assert!(debug.contains(&key.key_id));
    }

    #[test]
    fn constant_time_eq_compares_contents_and_lengths() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn base32_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_upper(input.as_bytes()).as_str(), expected);
        }
    }

    #[test]
    fn recovery_codes_have_the_documented_shape_and_normalise() {
        let codes = recovery_codes(10).expect("codes");
        assert_eq!(codes.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 19);
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 4);
            for group in groups {
                assert_eq!(group.len(), 4);
                assert!(group.bytes().all(|b| BASE32_LOWER.contains(&b)));
            }
            let normalised = normalise_recovery_code(code).expect("normalises");
            assert_eq!(normalised.as_str(), code.replace('-', ""));
            let typed = code.to_uppercase().replace('-', " ");
            assert_eq!(normalise_recovery_code(&typed), Some(normalised.clone()));
            assert_eq!(
                TokenHash::of(&normalised),
                TokenHash::of(&code.replace('-', ""))
            );
        }
        assert_eq!(recovery_codes(0).expect("none").len(), 0);
    }

    #[test]
    fn malformed_recovery_codes_are_refused() {
        for bad in [
            "",
            "abcd-efgh-ijkl-mno",
            "abcd-efgh-ijkl-mnopq",
            "abcd-efgh-ijkl-mn0p",
            "abcd-efgh-ijkl-mn1p",
            "abcd_efgh_ijkl_mnop",
            "abcd-efgh-ijkl-mnóp",
            "abcdefghijklmnopabcdefghijklmnop",
        ] {
            assert_eq!(normalise_recovery_code(bad), None, "{bad}");
        }
        assert!(normalise_recovery_code(&" ".repeat(100)).is_none());
        assert!(normalise_recovery_code(" ABCD efgh-IJKL mnop ").is_some());
    }

    #[test]
    fn api_keys_have_the_documented_shape_and_parse() {
        let key = issue_api_key().expect("key");
        assert_eq!(key.key_id.len(), 12);
        assert!(key.key_id.bytes().all(|b| BASE32_LOWER.contains(&b)));
        let expected_start = format!("dkt_{}_", key.key_id);
        assert!(key.text.starts_with(&expected_start));
        assert_eq!(key.text.len(), 4 + 12 + 1 + 43);
        assert_eq!(key.secret_hash, TokenHash::of(&key.text));
        assert_eq!(parse_api_key(&key.text), Some(key.key_id.clone()));
        assert!(looks_like_docket_secret(&key.text));
    }

    #[test]
    fn malformed_api_keys_are_refused() {
        let key = issue_api_key().expect("key");
        let text = key.text.as_str();
        let secret = &text[17..];
        let non_canonical = {
            // The last character of 32 bytes in base64url carries two unused bits; setting
            // them gives a string that decodes only when trailing bits are tolerated.
            let mut s = String::from("A").repeat(42);
            s.push('B');
            s
        };
        for bad in [
            String::new(),
            "dkt_".to_owned(),
            text[..text.len() - 1].to_owned(),
            format!("{text}A"),
            text.replacen("dkt_", "dks_", 1),
            format!("dkt_{}_{secret}", key.key_id.to_uppercase()),
            format!("dkt_{}1_{secret}", &key.key_id[..11]),
            format!("dkt_{}_{secret}", &key.key_id[..11]),
            format!("dkt_{}-{secret}", key.key_id),
            format!("dkt_{}_{}=", key.key_id, &secret[..42]),
            format!("dkt_{}_{}+", key.key_id, &secret[..42]),
            format!("dkt_{}_{non_canonical}", key.key_id),
            format!("dkt_{}é_{secret}", &key.key_id[..10]),
        ] {
            assert_eq!(parse_api_key(&bad), None, "{bad}");
        }
        let canonical = format!("dkt_{}_{}A", key.key_id, "A".repeat(42));
        assert_eq!(parse_api_key(&canonical), Some(key.key_id.clone()));
    }

    #[test]
    fn secret_detection_needs_a_prefix_and_a_tail() {
        let token = issue(ENROLMENT_PREFIX).expect("token");
        assert!(looks_like_docket_secret(&format!(
            "Authorization: Bearer {}",
            token.text.as_str()
        )));
        assert!(!looks_like_docket_secret("the dks_ prefix marks sessions"));
        assert!(!looks_like_docket_secret("dkt_short"));
        assert!(!looks_like_docket_secret(""));
        assert!(!looks_like_docket_secret("nothing to see here"));
    }

    proptest! {
        #[test]
        fn parse_api_key_never_panics(text in "\\PC{0,80}") {
            let _ = parse_api_key(&text);
            let _ = normalise_recovery_code(&text);
            let _ = looks_like_docket_secret(&text);
            let _ = TokenHash::from_hex(&text);
        }

        #[test]
        fn parse_accepts_only_the_shape(id in "[a-z2-7]{12}", secret in proptest::array::uniform32(any::<u8>())) {
            let text = format!("dkt_{id}_{}", URL_SAFE_NO_PAD.encode(secret));
            prop_assert_eq!(parse_api_key(&text), Some(id));
        }
    }
}
