//! The user the API benchmark reads as: a partner on the team of every seeded matter, added and
//! enrolled through the identity service exactly as a real user is (an admin adds the account,
//! the user sets a password and proves a TOTP code), then given one session per simulated
//! client. The password is random and never shown; nobody can sign in as this user later
//! without an admin resetting the account.

use std::fmt;

use zeroize::Zeroizing;

use crate::access::Principal;
use crate::domain::identity::Role;
use crate::identity::Identity;
use crate::identity::secret::totp::TotpSecret;
use crate::log::Actor;
use crate::store::StoreError;

/// The benchmark user's id, as the seeded matters' teams name it.
pub const BENCH_USER: &str = "bench.partner";

/// The signed-in benchmark user: the principal its sessions prove, and their bearer tokens.
pub struct BenchUser {
    /// What every one of the tokens authenticates as (the first session's id).
    pub principal: Principal,
    /// One session token per simulated client.
    pub tokens: Vec<Zeroizing<String>>,
}

impl fmt::Debug for BenchUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BenchUser")
            .field("principal", &self.principal.actor.as_str())
            .field("tokens", &format_args!("<{} redacted>", self.tokens.len()))
            .finish()
    }
}

fn failed(step: &str, detail: impl fmt::Display) -> StoreError {
    StoreError::Database {
        detail: format!("signing the benchmark user in ({step}): {detail}"),
    }
}

/// Adds and enrols [`BENCH_USER`] as a partner and opens `sessions` sessions for it (at least
/// one).
pub async fn sign_in(identity: &Identity, sessions: usize) -> Result<BenchUser, StoreError> {
    let email = format!("{BENCH_USER}@bench.example");
    let added = identity
        .add_user(
            &Actor::system(),
            None,
            &email,
            "Benchmark Partner",
            Role::Partner,
            &[],
            Some(BENCH_USER),
        )
        .await
        .map_err(|error| failed("add user", error))?;
    let start = identity
        .begin_enrolment(&added.enrolment_token)
        .await
        .map_err(|error| failed("begin enrolment", error))?;
    let totp = TotpSecret::from_base32(&start.secret_base32)
        .map_err(|error| failed("enrolment", error))?;
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    identity
        .complete_enrolment(
            &added.enrolment_token,
            random_password()?,
            &totp.code_at(now),
        )
        .await
        .map_err(|error| failed("complete enrolment", error))?;
    let mut tokens = Vec::new();
    for _ in 0..sessions.max(1) {
        let session = identity
            .open_session(BENCH_USER, Some("127.0.0.1"), chrono::Utc::now())
            .await
            .map_err(|error| failed("open session", error))?;
        tokens.push(session.token);
    }
    let principal = match tokens.first() {
        Some(token) => identity
            .authenticate(token)
            .await
            .map_err(|error| failed("authenticate", error))?,
        None => None,
    }
    .ok_or_else(|| failed("authenticate", "the new session proves nobody"))?;
    Ok(BenchUser { principal, tokens })
}

/// 32 random hex digits: long, not common, and free of the user's name.
fn random_password() -> Result<Zeroizing<String>, StoreError> {
    let mut bytes = Zeroizing::new([0u8; 16]);
    getrandom::fill(bytes.as_mut_slice()).map_err(|_| failed("password", "no randomness"))?;
    Ok(Zeroizing::new(hex::encode(bytes.as_slice())))
}
