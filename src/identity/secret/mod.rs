//! The secrets of Docket's identity layer, and how each is made, checked and stored.
//!
//! Docket keeps no secret in a form that could be replayed if its database leaked: only hashes
//! are stored, and the plain text exists just long enough to be shown to the user once or
//! checked once, inside [`zeroize::Zeroizing`] buffers that are wiped when dropped.
//!
//! - **Passwords** ([`password`]) are chosen by people and so carry little entropy. They are
//!   checked against a length policy, a shipped list of common passwords and the user's own
//!   name and email, then hashed with Argon2id (OWASP parameters: 19 MiB, two passes, one lane)
//!   into a PHC string with a random 16-byte salt. Hashing runs on Tokio's blocking pool.
//! - **TOTP secrets** ([`totp`]) are 160 random bits shared with an authenticator app (RFC
//!   6238). They must be kept to compute codes, so the caller stores them encrypted; this module
//!   only produces, encodes and verifies them, and refuses a code whose step is not newer than
//!   the last one accepted.
//! - **Bearer tokens, recovery codes and API keys** ([`token`]) are generated, never chosen:
//!   tokens and API key secrets carry 256 random bits, recovery codes 80. With that much entropy
//!   a slow hash adds nothing, so they are stored as a keyed BLAKE3 hash
//!   ([`token::TokenHash`]), looked up directly. Their prefixes (`dks_`, `dke_`, `dkt_`) make a
//!   leaked one recognisable.
//! - **Throttling** ([`throttle`]) is the pure policy that slows and then locks repeated
//!   failures of any of the above, per account and per client address.
//!
//! Timing is equalised where it could tell an attacker something: a login for an account that
//! does not exist, or has no password, still runs one full Argon2id verification against a
//! dummy hash ([`password::verify_password`]); TOTP codes, token hashes and recovery codes are
//! compared in constant time with `subtle`.

pub mod password;
pub mod throttle;
pub mod token;
pub mod totp;

use thiserror::Error;

/// Why a secret could not be produced or used. No variant carries detail that could hold secret data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SecretError {
    /// The operating system's random number generator failed.
    #[error("the system random number generator is unavailable")]
    NoRandomness,
    /// The password hash could not be computed.
    #[error("password hashing failed")]
    Hashing,
    /// The blocking task that hashes a password did not complete.
    #[error("the password hashing task did not complete")]
    TaskFailed,
    /// Stored secret material is unusable, e.g. a TOTP secret shorter than 128 bits.
    #[error("the stored secret is unusable")]
    InvalidSecret,
}

/// Fills `buf` from the operating system's random number generator.
fn fill_random(buf: &mut [u8]) -> Result<(), SecretError> {
    getrandom::fill(buf).map_err(|_| SecretError::NoRandomness)
}
