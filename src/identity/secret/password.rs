//! Password policy and Argon2id hashing.
//!
//! A password is NFC-normalised before it is measured or hashed, so the same characters typed
//! on different keyboards (composed `é` or `e` plus a combining accent) give the same hash.
//! Hashing and verification are deliberately slow, so both run on Tokio's blocking pool and
//! never on an async worker thread.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::{SecretError, fill_random};

/// The fewest characters (Unicode scalar values, after NFC) a password may have.
pub const MIN_CHARS: usize = 12;
/// The most characters (Unicode scalar values, after NFC) a password may have.
pub const MAX_CHARS: usize = 128;

/// Argon2id memory cost in KiB (19 MiB), the OWASP recommendation.
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
/// Argon2id passes over memory, the OWASP recommendation for 19 MiB.
pub const ARGON2_ITERATIONS: u32 = 2;
/// Argon2id lanes, the OWASP recommendation.
pub const ARGON2_PARALLELISM: u32 = 1;
/// Length in bytes of the random salt stored in each hash.
pub const SALT_LEN: usize = 16;
/// Length in bytes of the Argon2id output stored in each hash.
pub const HASH_LEN: usize = 32;

/// Inputs longer than this many bytes cannot be a password within [`MAX_CHARS`] even before
/// normalisation, so they are refused without normalising or hashing them.
const MAX_INPUT_BYTES: usize = 4096;

/// Stored hashes asking for more than this memory (KiB) are not verified: a tampered row must
/// not be able to exhaust the server's memory.
const MAX_VERIFY_MEMORY_KIB: u32 = 262_144;
/// Stored hashes asking for more passes than this are not verified, for the same reason.
const MAX_VERIFY_ITERATIONS: u32 = 16;
/// Stored hashes asking for more lanes than this are not verified, for the same reason.
const MAX_VERIFY_PARALLELISM: u32 = 16;

/// The PHC identifier of the only algorithm this module writes or accepts.
const ALGORITHM_ID: &str = "argon2id";

/// The shipped list of common passwords: one lowercase entry a line, `#` lines are comments.
const COMMON_PASSWORDS_TEXT: &str = include_str!("common-passwords.txt");

/// The common passwords as a set, built on first use.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    COMMON_PASSWORDS_TEXT
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// A hash of a password nobody knows, verified instead of a real hash when an account has none,
/// so that "no such user" costs the same time as "wrong password".
static DUMMY_PHC: LazyLock<Option<String>> =
    LazyLock::new(|| hash_blocking("docket: this account has no password set").ok());

/// Why a new password is refused. The messages are meant for the user and never repeat the
/// password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PasswordRejected {
    /// Fewer than [`MIN_CHARS`] characters.
    #[error("the password must be at least {MIN_CHARS} characters long")]
    TooShort,
    /// More than [`MAX_CHARS`] characters.
    #[error("the password must be at most {MAX_CHARS} characters long")]
    TooLong,
    /// One of the most common passwords, perhaps with digits or punctuation added at the end.
    #[error("this password is too common and easy to guess; choose another")]
    Common,
    /// Contains the user's name or email address.
    #[error("the password must not contain your name or email address")]
    ContainsIdentity,
}

/// Checks a new password against the policy.
///
/// `identity` holds what identifies the user, such as their name and email address; a password
/// containing any of it (ignoring case) is refused. An email address counts by its local part,
/// and a value with several words also counts word by word; only pieces of at least four
/// characters are considered, so short names do not rule out half the dictionary.
pub fn check_policy(password: &str, identity: &[&str]) -> Result<(), PasswordRejected> {
    if password.len() > MAX_INPUT_BYTES {
        return Err(PasswordRejected::TooLong);
    }
    let normalised = nfc(password);
    let chars = normalised.chars().count();
    if chars < MIN_CHARS {
        return Err(PasswordRejected::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(PasswordRejected::TooLong);
    }
    let folded = Zeroizing::new(normalised.to_lowercase());
    if is_common(&folded) {
        return Err(PasswordRejected::Common);
    }
    if identity
        .iter()
        .flat_map(|value| identity_pieces(value))
        .any(|piece| folded.contains(piece.as_str()))
    {
        return Err(PasswordRejected::ContainsIdentity);
    }
    Ok(())
}

/// Whether a lowercased password, as typed or with trailing digits, punctuation and spaces
/// removed, is in the shipped list.
fn is_common(folded: &str) -> bool {
    if COMMON_PASSWORDS.contains(folded) {
        return true;
    }
    let stripped = folded.trim_end_matches(|c: char| {
        c.is_numeric() || c.is_ascii_punctuation() || c.is_whitespace()
    });
    !stripped.is_empty() && stripped != folded && COMMON_PASSWORDS.contains(stripped)
}

/// The lowercased pieces of one identity value that a password must not contain: the value (or
/// an email's local part) and each of its words, keeping only pieces of four characters or more.
fn identity_pieces(value: &str) -> Vec<String> {
    let folded: String = value.trim().nfc().collect::<String>().to_lowercase();
    let whole = match folded.rfind('@') {
        Some(at) => folded.get(..at).unwrap_or_default().to_owned(),
        None => folded,
    };
    let mut pieces: Vec<String> = whole
        .split(|c: char| c.is_whitespace() || matches!(c, '.' | '_' | '-' | '+'))
        .map(str::to_owned)
        .collect();
    pieces.push(whole);
    pieces.retain(|piece| piece.chars().count() >= 4);
    pieces.sort();
    pieces.dedup();
    pieces
}

/// The NFC form of `text`, in a buffer that is wiped when dropped. The capacity covers NFC's
/// worst-case growth so the buffer is not reallocated (which would leave an unwiped copy).
fn nfc(text: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(text.len().saturating_mul(3)));
    out.extend(text.nfc());
    out
}

/// The Argon2id context with the current parameters.
fn hasher() -> Result<Argon2<'static>, SecretError> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        Some(HASH_LEN),
    )
    .map_err(|_| SecretError::Hashing)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes the NFC form of `password` to a PHC string, on the current thread.
fn hash_blocking(password: &str) -> Result<String, SecretError> {
    let normalised = nfc(password);
    let mut salt = Zeroizing::new([0u8; SALT_LEN]);
    fill_random(salt.as_mut_slice())?;
    let hash = hasher()?
        .hash_password_with_salt(normalised.as_bytes(), salt.as_slice())
        .map_err(|_| SecretError::Hashing)?;
    Ok(hash.to_string())
}

/// Hashes a password with Argon2id and the current parameters, with a fresh random salt, and
/// returns the PHC string to store (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
///
/// The work runs on Tokio's blocking pool.
pub async fn hash_password(password: Zeroizing<String>) -> Result<String, SecretError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|_| SecretError::TaskFailed)?
}

/// Checks a candidate password against a stored PHC string.
///
/// When there is no stored hash (no such user, or no password set yet), or the stored string
/// is malformed, uses parameters this module would not write, or the candidate is far too long
/// to be a password, it verifies against a dummy hash with the same parameters instead and
/// returns false, so every failure takes about as long as a wrong password. It never panics.
///
/// The work runs on Tokio's blocking pool.
pub async fn verify_password(phc: Option<String>, candidate: Zeroizing<String>) -> bool {
    tokio::task::spawn_blocking(move || verify_blocking(phc.as_deref(), &candidate))
        .await
        .unwrap_or(false)
}

/// Computes the dummy hash now, so the first login for an unknown account is not slower than
/// the ones after it. Worth calling once at start-up.
pub async fn prepare() {
    let _ = tokio::task::spawn_blocking(|| DUMMY_PHC.is_some()).await;
}

/// [`verify_password`] on the current thread.
fn verify_blocking(phc: Option<&str>, candidate: &str) -> bool {
    let Ok(argon2) = hasher() else {
        return false;
    };
    let stored = phc
        .and_then(|text| PasswordHash::new(text).ok())
        .filter(verifiable);
    match stored {
        Some(hash) if candidate.len() <= MAX_INPUT_BYTES => {
            let normalised = nfc(candidate);
            argon2.verify_password(normalised.as_bytes(), &hash).is_ok()
        }
        _ => {
            if let Some(dummy) = DUMMY_PHC.as_deref().and_then(|t| PasswordHash::new(t).ok()) {
                let bytes = candidate.as_bytes();
                let bounded = bytes.get(..MAX_INPUT_BYTES).unwrap_or(bytes);
                let _ = argon2.verify_password(bounded, &dummy);
            }
            false
        }
    }
}

/// Whether a parsed stored hash is one this module will spend time verifying: Argon2id, with
/// parameters no larger than the verification ceilings.
fn verifiable(hash: &PasswordHash) -> bool {
    if hash.algorithm.as_str() != ALGORITHM_ID {
        return false;
    }
    match Params::try_from(hash) {
        Ok(params) => {
            params.m_cost() <= MAX_VERIFY_MEMORY_KIB
                && params.t_cost() <= MAX_VERIFY_ITERATIONS
                && params.p_cost() <= MAX_VERIFY_PARALLELISM
        }
        Err(_) => false,
    }
}

/// Whether a stored hash should be replaced after the next successful login: it is not
/// Argon2id version 0x13, or its memory, passes, lanes, salt or output are below the current
/// ones. A string that does not parse also needs replacing.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return true;
    };
    if hash.algorithm.as_str() != ALGORITHM_ID || hash.version != Some(Version::V0x13.into()) {
        return true;
    }
    let Ok(params) = Params::try_from(&hash) else {
        return true;
    };
    let salt_len = hash.salt.as_ref().map_or(0, |salt| salt.len());
    let output_len = hash.hash.as_ref().map_or(0, |output| output.len());
    params.m_cost() < ARGON2_MEMORY_KIB
        || params.t_cost() < ARGON2_ITERATIONS
        || params.p_cost() < ARGON2_PARALLELISM
        || salt_len < SALT_LEN
        || output_len < HASH_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Zeroizing<String> {
        Zeroizing::new(text.to_owned())
    }

    #[test]
    fn list_is_large_lowercase_and_keeps_long_entries() {
        assert!(COMMON_PASSWORDS.len() >= 10_000);
        assert!(COMMON_PASSWORDS.iter().all(|p| p.to_lowercase() == *p));
        assert!(
            COMMON_PASSWORDS
                .iter()
                .all(|p| (4..=128).contains(&p.len()))
        );
        assert!(!COMMON_PASSWORDS.iter().any(|p| p.starts_with('#')));
        assert!(COMMON_PASSWORDS.contains("password"));
        assert!(COMMON_PASSWORDS.contains("1qaz2wsx3edc4rfv"));
        assert!(
            COMMON_PASSWORDS
                .iter()
                .filter(|p| p.len() >= MIN_CHARS)
                .count()
                >= 100
        );
        assert!(COMMON_PASSWORDS_TEXT.starts_with("# Source:"));
    }

    #[test]
    fn length_limits_count_scalar_values_after_nfc() {
        assert_eq!(check_policy("short", &[]), Err(PasswordRejected::TooShort));
        assert_eq!(check_policy("vq8#rTz!mw2L", &[]), Ok(()));
        assert_eq!(
            check_policy("vq8#rTz!mw2", &[]),
            Err(PasswordRejected::TooShort)
        );
        // Twelve decomposed "é" are 24 scalar values but 12 characters after NFC.
        let decomposed_12 = "e\u{301}".repeat(12);
        assert_eq!(check_policy(&decomposed_12, &[]), Ok(()));
        let decomposed_11 = "e\u{301}".repeat(11);
        assert_eq!(
            check_policy(&decomposed_11, &[]),
            Err(PasswordRejected::TooShort)
        );
        let long_ok: String = "abcdefghijkmnpqrstuvwxyz23456789".repeat(4);
        assert_eq!(long_ok.chars().count(), MAX_CHARS);
        assert_eq!(check_policy(&long_ok, &[]), Ok(()));
        let too_long = format!("{long_ok}x");
        assert_eq!(check_policy(&too_long, &[]), Err(PasswordRejected::TooLong));
        let huge = "x".repeat(1_000_000);
        assert_eq!(check_policy(&huge, &[]), Err(PasswordRejected::TooLong));
    }

    #[test]
    fn common_passwords_are_refused_folded_and_stripped() {
        for common in [
            "qwerty123456",
            "QWERTY123456",
            "1qaz2wsx3edc4rfv",
            "password12345678",
            "Password2024!!!!",
            "sunshine  1234 !",
            "iloveyou.123456",
        ] {
            assert_eq!(
                check_policy(common, &[]),
                Err(PasswordRejected::Common),
                "{common}"
            );
        }
        // Digits in the middle are not stripped.
        assert_eq!(check_policy("pass1word2horse", &[]), Ok(()));
    }

    #[test]
    fn identity_is_refused_case_insensitively() {
        let identity = ["Jane.Doe@example.com", "Jane Doe"];
        assert_eq!(
            check_policy("my JANE.DOE secret!", &identity),
            Err(PasswordRejected::ContainsIdentity)
        );
        assert_eq!(
            check_policy("correct jane horse", &identity),
            Err(PasswordRejected::ContainsIdentity)
        );
        assert_eq!(
            check_policy("horse battery doe staple", &identity),
            Ok(()),
            "pieces shorter than four characters are ignored"
        );
        assert_eq!(check_policy("horse battery staple", &["bob", "al"]), Ok(()));
        assert_eq!(
            check_policy("horse battery staple", &["example.com"]),
            Ok(())
        );
    }

    #[test]
    fn messages_do_not_echo_the_password() {
        let password = "qwerty123456";
        let Err(rejected) = check_policy(password, &[]) else {
            panic!("expected a rejection");
        };
        assert!(!rejected.to_string().contains(password));
        assert!(!format!("{rejected:?}").contains(password));
        assert_eq!(
            PasswordRejected::TooShort.to_string(),
            "the password must be at least 12 characters long"
        );
    }

    #[tokio::test]
    async fn hash_and_verify_round_trip() {
        let phc = hash_password(secret("correct horse battery staple"))
            .await
            .expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(!needs_rehash(&phc));
        assert!(verify_password(Some(phc.clone()), secret("correct horse battery staple")).await);
        assert!(!verify_password(Some(phc.clone()), secret("correct horse battery stapler")).await);
        assert!(!verify_password(Some(phc.clone()), secret("")).await);
        assert!(!verify_password(Some(phc), secret(&"x".repeat(100_000))).await);
    }

    #[tokio::test]
    async fn salts_are_random() {
        let a = hash_password(secret("the same password"))
            .await
            .expect("hash");
        let b = hash_password(secret("the same password"))
            .await
            .expect("hash");
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn composed_and_decomposed_forms_verify_alike() {
        let phc = hash_password(secret("caf\u{e9} au lait, s'il vous pla\u{ee}t"))
            .await
            .expect("hash");
        assert!(
            verify_password(
                Some(phc),
                secret("cafe\u{301} au lait, s'il vous plai\u{302}t")
            )
            .await
        );
    }

    #[tokio::test]
    async fn missing_or_malformed_hash_is_false() {
        prepare().await;
        assert!(DUMMY_PHC.is_some());
        assert!(!verify_password(None, secret("anything at all")).await);
        for bad in [
            "",
            "not a hash",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=abc,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
            "$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY",
            "$bcrypt$whatever",
        ] {
            assert!(
                !verify_password(Some(bad.to_owned()), secret("anything")).await,
                "{bad}"
            );
            assert!(needs_rehash(bad), "{bad}");
        }
    }

    #[test]
    fn weaker_parameters_need_rehash() {
        let weak = Params::new(8192, 1, 1, Some(HASH_LEN)).expect("params");
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, weak);
        let phc = argon2
            .hash_password_with_salt(b"password", b"0123456789abcdef")
            .expect("hash")
            .to_string();
        assert!(needs_rehash(&phc));
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, 1, Some(HASH_LEN)).expect("params"),
        );
        let phc = argon2i
            .hash_password_with_salt(b"password", b"0123456789abcdef")
            .expect("hash")
            .to_string();
        assert!(needs_rehash(&phc));
        let stronger = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(ARGON2_MEMORY_KIB * 2, 3, 1, Some(HASH_LEN)).expect("params"),
        );
        let phc = stronger
            .hash_password_with_salt(b"password", b"0123456789abcdef")
            .expect("hash")
            .to_string();
        assert!(!needs_rehash(&phc));
    }
}
