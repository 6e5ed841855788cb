//! Time-based one-time passwords (RFC 6238): HMAC-SHA1, six digits, 30-second steps, the
//! settings every authenticator app supports.
//!
//! The shared secret must be kept to compute codes, so unlike the other secrets it cannot be
//! stored as a hash; the caller encrypts [`TotpSecret::as_bytes`] at rest. A code is accepted
//! at most once: [`TotpSecret::verify`] returns the step it matched, the caller stores it, and
//! only a later step is accepted next time.

use std::fmt;
use std::fmt::Write as _;

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

use super::token::base32_upper;
use super::{SecretError, fill_random};

/// Seconds in one TOTP step.
pub const STEP_SECONDS: u64 = 30;
/// Digits in a code.
pub const DIGITS: u8 = 6;
/// Bytes of a newly generated secret (160 bits, the RFC 4226 recommendation).
pub const SECRET_BYTES: usize = 20;
/// The fewest bytes a secret may have (128 bits, the RFC 4226 minimum).
pub const MIN_SECRET_BYTES: usize = 16;

/// Steps either side of the current one whose codes are still accepted, for clock drift.
const DRIFT_STEPS: u64 = 1;
/// Longest input [`TotpSecret::verify`] looks at; a code with spaces is far shorter.
const MAX_CODE_INPUT_BYTES: usize = 32;

/// The step a unix time falls in.
pub fn step_of(unix_seconds: u64) -> u64 {
    unix_seconds / STEP_SECONDS
}

/// A TOTP shared secret. Wiped when dropped; Debug output is redacted.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    /// A new random 160-bit secret.
    pub fn generate() -> Result<Self, SecretError> {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        fill_random(bytes.as_mut_slice())?;
        Ok(TotpSecret(bytes))
    }

    /// A secret read back from storage. Refuses fewer than 16 bytes, which RFC 4226 forbids.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, SecretError> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::InvalidSecret);
        }
        Ok(TotpSecret(bytes))
    }

    /// A secret as [`TotpSecret::base32`] shows it (RFC 4648, padding optional).
    pub fn from_base32(text: &str) -> Result<Self, SecretError> {
        let secret =
            totp_rs::Secret::try_from_base32(text).map_err(|_| SecretError::InvalidSecret)?;
        TotpSecret::from_bytes(secret.as_bytes().to_vec())
    }

    /// The raw secret, to be encrypted for storage.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret in RFC 4648 base32 without padding, as authenticator apps take it when typed.
    pub fn base32(&self) -> Zeroizing<String> {
        base32_upper(&self.0)
    }

    /// The `otpauth://totp/` URI an authenticator app reads from a QR code, with the label
    /// `issuer:account` and the parameters spelled out (`algorithm=SHA1&digits=6&period=30`).
    ///
    /// Issuer and account are percent-encoded. The Key URI format gives a colon in the label
    /// the meaning "issuer ends here", so a colon inside either is written as a space.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        let secret = self.base32();
        let capacity = 96 + secret.len() + 6 * (2 * issuer.len() + account.len());
        let mut uri = Zeroizing::new(String::with_capacity(capacity));
        uri.push_str("otpauth://totp/");
        push_label_part(&mut uri, issuer);
        uri.push(':');
        push_label_part(&mut uri, account);
        uri.push_str("?secret=");
        uri.push_str(&secret);
        uri.push_str("&issuer=");
        push_label_part(&mut uri, issuer);
        let _ = write!(uri, "&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}");
        uri
    }

    /// The code for the step containing `unix_seconds`.
    pub fn code_at(&self, unix_seconds: u64) -> String {
        self.totp().generate(unix_seconds).to_string()
    }

    /// Checks a code typed at `unix_seconds`. Spaces are ignored; anything but six digits is
    /// refused. The code may match the current step or one step either side (clock drift), but
    /// only a step later than `last_step`, the step accepted last time, so no code is accepted
    /// twice and an older code is refused after a newer one. Returns the matched step, which
    /// the caller must store as the new `last_step`.
    ///
    /// Every candidate step is computed and compared in constant time, whichever matches.
    pub fn verify(&self, code: &str, unix_seconds: u64, last_step: Option<u64>) -> Option<u64> {
        if code.len() > MAX_CODE_INPUT_BYTES {
            return None;
        }
        let mut typed = Zeroizing::new(String::with_capacity(MAX_CODE_INPUT_BYTES));
        typed.extend(code.chars().filter(|c| !c.is_whitespace()));
        if typed.len() != usize::from(DIGITS) || !typed.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp();
        let now = step_of(unix_seconds);
        let candidates = [
            now.checked_sub(DRIFT_STEPS),
            Some(now),
            now.checked_add(DRIFT_STEPS),
        ];
        let mut matched = None;
        for step in candidates.into_iter().flatten() {
            let Some(time) = step.checked_mul(STEP_SECONDS) else {
                continue;
            };
            let expected = Zeroizing::new(totp.generate(time).to_string());
            let equal: bool = expected.as_bytes().ct_eq(typed.as_bytes()).into();
            let fresh = last_step.is_none_or(|last| step > last);
            if equal && fresh && matched.is_none() {
                matched = Some(step);
            }
        }
        matched
    }

    /// The RFC 6238 generator for this secret. The settings are fixed and valid, so the
    /// unchecked constructor cannot produce a generator that panics.
    fn totp(&self) -> Totp {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS)
            .with_skew(0)
            .with_step_duration(STEP_SECONDS)
            .with_secret(self.0.to_vec())
            .build_noncompliant()
    }
}

/// Appends `text` percent-encoded (everything but RFC 3986 unreserved characters), with any
/// colon written as a space.
fn push_label_part(out: &mut String, text: &str) {
    for c in text.chars() {
        let c = if c == ':' { ' ' } else { c };
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~') {
            out.push(c);
        } else {
            let mut utf8 = [0u8; 4];
            for byte in c.encode_utf8(&mut utf8).bytes() {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(RFC_SECRET.to_vec()).expect("secret")
    }

    #[test]
    fn rfc_6238_appendix_b_sha1_vectors() {
        let secret = rfc_secret();
        for (time, eight_digits) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let expected = &eight_digits[2..];
            assert_eq!(secret.code_at(time), expected, "t = {time}");
            assert_eq!(
                secret.verify(expected, time, None),
                Some(step_of(time)),
                "t = {time}"
            );
        }
    }

    #[test]
    fn one_step_of_drift_is_accepted_two_are_not() {
        let secret = rfc_secret();
        let now = 1_111_111_111;
        let step = step_of(now);
        let at = |offset: i64| secret.code_at(now.saturating_add_signed(offset * 30));
        assert_eq!(secret.verify(&at(-1), now, None), Some(step - 1));
        assert_eq!(secret.verify(&at(0), now, None), Some(step));
        assert_eq!(secret.verify(&at(1), now, None), Some(step + 1));
        assert_eq!(secret.verify(&at(-2), now, None), None);
        assert_eq!(secret.verify(&at(2), now, None), None);
    }

    #[test]
    fn a_code_is_never_accepted_twice() {
        let secret = rfc_secret();
        let now = 1_234_567_890;
        let code = secret.code_at(now);
        let step = secret.verify(&code, now, None).expect("first use");
        assert_eq!(secret.verify(&code, now, Some(step)), None);
        assert_eq!(secret.verify(&code, now + 20, Some(step)), None);
    }

    #[test]
    fn an_older_code_after_a_newer_one_is_refused() {
        let secret = rfc_secret();
        let now = 1_234_567_890;
        let newer = secret.code_at(now + 30);
        let older = secret.code_at(now);
        let accepted = secret.verify(&newer, now, None).expect("newer");
        assert_eq!(accepted, step_of(now) + 1);
        assert_eq!(secret.verify(&older, now, Some(accepted)), None);
        // The next step's own code is fine once its time comes.
        let later = secret.code_at(now + 60);
        assert_eq!(
            secret.verify(&later, now + 60, Some(accepted)),
            Some(step_of(now) + 2)
        );
    }

    #[test]
    fn spaces_are_ignored_and_other_shapes_refused() {
        let secret = rfc_secret();
        assert_eq!(secret.verify("287 082", 59, None), Some(1));
        assert_eq!(secret.verify(" 287082 ", 59, None), Some(1));
        for bad in [
            "",
            "28708",
            "2870820",
            "28708a",
            "+28708",
            "２８７０８２",
            "287-082",
            "94287082",
        ] {
            assert_eq!(secret.verify(bad, 59, None), None, "{bad:?}");
        }
        assert_eq!(secret.verify(&" ".repeat(1000), 59, None), None);
        assert_eq!(secret.verify("123456", u64::MAX, None), None);
        assert_eq!(secret.verify("123456", 0, Some(u64::MAX)), None);
    }

    #[test]
    fn short_secrets_are_refused_and_new_ones_are_random() {
        assert_eq!(
            TotpSecret::from_bytes(vec![7; 15]).err(),
            Some(SecretError::InvalidSecret)
        );
        assert!(TotpSecret::from_bytes(vec![7; 16]).is_ok());
        let a = TotpSecret::generate().expect("secret");
        let b = TotpSecret::generate().expect("secret");
        assert_eq!(a.as_bytes().len(), 20);
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(format!("{a:?}"), "TotpSecret(<redacted>)");
    }

    #[test]
    fn base32_and_otpauth_uri() {
        let secret = rfc_secret();
        assert_eq!(secret.base32().as_str(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let uri = secret.otpauth_uri("Docket & Co", "jane.doe+law@example.com");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Docket%20%26%20Co:jane.doe%2Blaw%40example.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Docket%20%26%20Co\
             &algorithm=SHA1&digits=6&period=30"
        );
        // An independent parser reads it back to the same issuer, account and codes.
        let parsed = Totp::from_url(uri.as_str()).expect("parses");
        assert_eq!(parsed.issuer(), Some("Docket & Co"));
        assert_eq!(parsed.account_name(), "jane.doe+law@example.com");
        assert_eq!(parsed.generate(59).to_string(), "287082");

        let odd = secret.otpauth_uri("Müller: Kanzlei", "a:b?c=d&e/f");
        let parsed = Totp::from_url(odd.as_str()).expect("parses");
        assert_eq!(parsed.issuer(), Some("Müller  Kanzlei"));
        assert_eq!(parsed.account_name(), "a b?c=d&e/f");
    }

    #[test]
    fn steps() {
        assert_eq!(step_of(0), 0);
        assert_eq!(step_of(29), 0);
        assert_eq!(step_of(30), 1);
        assert_eq!(step_of(59), 1);
    }
}
