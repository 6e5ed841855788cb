//! Enrolment, login, step-up, logout, and authenticating each request.
//!
//! A login proves the password and a second factor (a TOTP code, or a single-use recovery code)
//! in one call, so no answer reveals that the password alone was right. Unknown, locked and
//! disabled accounts are answered exactly like a wrong password, after the same Argon2id work.
//! Failures are counted per account (by a keyed hash of the email, so unknown emails count
//! too) and per client address; each count slows further attempts exponentially, and an
//! existing account is locked after the policy's limit until an admin unlocks it.

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use super::directory::UserStatus;
use super::secret::password::{self, check_policy};
use super::secret::token::{self, SESSION_PREFIX, TokenHash};
use super::secret::totp::TotpSecret;
use super::{Identity, IdentityError};
use crate::domain::DomainEvent;
use crate::domain::identity::*;
use crate::identity::principal::Principal;
use crate::log::Actor;

/// How many recovery codes enrolment hands out.
pub const RECOVERY_CODES: usize = 10;
/// The issuer authenticator apps show.
pub const TOTP_ISSUER: &str = "Docket";

/// The throttle subject of an account, keyed by its email whether or not the account exists.
pub fn account_subject(email: &str) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("docket throttle account v1");
    hasher.update(email.trim().to_lowercase().as_bytes());
    format!("account:{}", &hasher.finalize().to_hex()[..32])
}

fn address_subject(address: Option<&str>) -> Option<String> {
    address.map(|address| format!("address:{address}"))
}

/// The first half of enrolment: the authenticator to scan.
pub struct EnrolmentStart {
    pub user_id: String,
    pub email: String,
    pub otpauth_uri: Zeroizing<String>,
    pub secret_base32: Zeroizing<String>,
}

/// A new session: its token (shown once) and its public id.
pub struct NewSessionToken {
    pub token: Zeroizing<String>,
    pub session_id: String,
    pub user_id: String,
    pub expires_at: DateTime<Utc>,
}

/// What a login presents as its second factor.
pub enum SecondFactor<'a> {
    Totp(&'a str),
    RecoveryCode(&'a str),
}

impl Identity {
    /// Checks an enrolment token and sets up a fresh TOTP secret for it (without using the
    /// token up: enrolment completes with [`Identity::complete_enrolment`]).
    pub async fn begin_enrolment(&self, token_text: &str) -> Result<EnrolmentStart, IdentityError> {
        let hash = TokenHash::of(token_text).to_hex();
        let user_id = self
            .credentials
            .peek_enrolment(&hash, Utc::now())
            .await?
            .ok_or(IdentityError::InvalidEnrolment)?;
        let directory = self.directory();
        let user = directory
            .user(&user_id)
            .filter(|user| user.status == UserStatus::Pending)
            .ok_or(IdentityError::InvalidEnrolment)?;
        let secret = TotpSecret::generate()?;
        self.credentials
            .set_pending_totp(&user_id, &hex::encode(secret.as_bytes()))
            .await?;
        Ok(EnrolmentStart {
            user_id: user_id.clone(),
            email: user.email.clone(),
            otpauth_uri: secret.otpauth_uri(TOTP_ISSUER, &user.email),
            secret_base32: secret.base32(),
        })
    }

    /// Completes enrolment: checks the password against the policy and the first code against
    /// the pending secret, uses the token up, and returns the recovery codes (shown once).
    pub async fn complete_enrolment(
        &self,
        token_text: &str,
        new_password: Zeroizing<String>,
        code: &str,
    ) -> Result<Vec<Zeroizing<String>>, IdentityError> {
        let hash = TokenHash::of(token_text).to_hex();
        let now = Utc::now();
        let user_id = self
            .credentials
            .peek_enrolment(&hash, now)
            .await?
            .ok_or(IdentityError::InvalidEnrolment)?;
        let directory = self.directory();
        let user = directory
            .user(&user_id)
            .filter(|user| user.status == UserStatus::Pending)
            .ok_or(IdentityError::InvalidEnrolment)?;
        check_policy(&new_password, &[&user.email, &user.name])
            .map_err(IdentityError::PasswordRejected)?;
        let pending = self
            .credentials
            .pending_totp(&user_id)
            .await?
            .ok_or(IdentityError::InvalidEnrolment)?;
        let secret = TotpSecret::from_bytes(hex::decode(pending.as_str()).map_err(|_| {
            IdentityError::Internal {
                detail: "a stored TOTP secret is not hex".into(),
            }
        })?)?;
        let step = secret
            .verify(code, unix(now), None)
            .ok_or(IdentityError::InvalidCode)?;
        let phc = password::hash_password(new_password).await?;
        // The token is used up only now that everything checked out.
        self.credentials
            .redeem_enrolment(&hash, now)
            .await?
            .ok_or(IdentityError::InvalidEnrolment)?;
        self.credentials.set_password(&user_id, &phc, now).await?;
        if !self.credentials.confirm_totp(&user_id, step).await? {
            return Err(IdentityError::InvalidEnrolment);
        }
        let codes = token::recovery_codes(RECOVERY_CODES)?;
        // Stored by their normalised form, as a login presents them.
        let hashes: Vec<String> = codes
            .iter()
            .filter_map(|code| token::normalise_recovery_code(code))
            .map(|code| TokenHash::of(&code).to_hex())
            .collect();
        self.credentials
            .replace_recovery_codes(&user_id, &hashes, now)
            .await?;
        let actor = user_actor(&user_id)?;
        self.append(
            &actor,
            None,
            None,
            vec![DomainEvent::UserEnrolled(UserRef {
                user_id: user_id.clone(),
            })],
        )
        .await?;
        Ok(codes)
    }

    /// Signs a user in with password and second factor, returning a session.
    pub async fn login(
        &self,
        email: &str,
        candidate: Zeroizing<String>,
        factor: SecondFactor<'_>,
        client_address: Option<&str>,
    ) -> Result<NewSessionToken, IdentityError> {
        let now = Utc::now();
        let account = account_subject(email);
        let address = address_subject(client_address);
        // Throttled subjects are refused before any work, alike for every account.
        for subject in std::iter::once(&account).chain(address.as_ref()) {
            if let Some(record) = self.credentials.throttle(subject).await?
                && let Some(last) = record.last_failure_at
            {
                let retry_at = self.throttle.retry_at(record.failures, last.timestamp());
                if retry_at > now.timestamp() {
                    self.login_failed(None, "throttled", client_address).await?;
                    return Err(IdentityError::Throttled {
                        retry_after_secs: u64::try_from(retry_at - now.timestamp()).unwrap_or(1),
                    });
                }
            }
        }
        let directory = self.directory();
        let user = directory.user_by_email(email).cloned();
        let phc = match &user {
            Some(user) => self
                .credentials
                .password(&user.user_id)
                .await?
                .map(|phc| phc.to_string()),
            None => None,
        };
        let password_ok = password::verify_password(phc, candidate).await;
        let outcome = match (&user, password_ok) {
            (None, _) => Err("bad_credentials"),
            (Some(_), false) => Err("bad_credentials"),
            (Some(user), true) => match user.status {
                UserStatus::Active => self.second_factor(&user.user_id, factor, now).await?,
                UserStatus::Locked => Err("locked"),
                UserStatus::Disabled => Err("disabled"),
                UserStatus::Pending => Err("not_enrolled"),
            },
        };
        let method = match outcome {
            Ok(method) => method,
            Err(reason) => {
                let user_id = user.as_ref().map(|user| user.user_id.as_str());
                self.count_failure(&account, address.as_deref(), user_id, now)
                    .await?;
                self.login_failed(user_id, reason, client_address).await?;
                return Err(IdentityError::InvalidCredentials);
            }
        };
        let Some(user) = user else {
            return Err(IdentityError::InvalidCredentials);
        };
        self.credentials.clear_failures(&account).await?;
        if let Some(address) = &address {
            self.credentials.clear_failures(address).await?;
        }
        let session = self
            .open_session(&user.user_id, client_address, now)
            .await?;
        self.append(
            &user_actor(&user.user_id)?,
            None,
            None,
            vec![DomainEvent::LoginSucceeded(LoginSucceeded {
                user_id: user.user_id.clone(),
                session_id: session.session_id.clone(),
                method,
                client_address: client_address.map(str::to_owned),
            })],
        )
        .await?;
        Ok(session)
    }

    /// Checks the second factor; `Err(reason)` when it fails.
    async fn second_factor(
        &self,
        user_id: &str,
        factor: SecondFactor<'_>,
        now: DateTime<Utc>,
    ) -> Result<Result<LoginMethod, &'static str>, IdentityError> {
        match factor {
            SecondFactor::Totp(code) => Ok(if self.check_totp(user_id, code, now).await? {
                Ok(LoginMethod::PasswordAndTotp)
            } else {
                Err("bad_second_factor")
            }),
            SecondFactor::RecoveryCode(code) => {
                let Some(normalised) = token::normalise_recovery_code(code) else {
                    return Ok(Err("bad_second_factor"));
                };
                let hash = TokenHash::of(&normalised).to_hex();
                Ok(
                    if self
                        .credentials
                        .use_recovery_code(user_id, &hash, now)
                        .await?
                    {
                        Ok(LoginMethod::PasswordAndRecoveryCode)
                    } else {
                        Err("bad_second_factor")
                    },
                )
            }
        }
    }

    /// Whether `code` is a current TOTP code of the user's that was never used; it is used now.
    async fn check_totp(
        &self,
        user_id: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, IdentityError> {
        let Some(record) = self.credentials.totp(user_id).await? else {
            return Ok(false);
        };
        if !record.confirmed {
            return Ok(false);
        }
        let Ok(bytes) = hex::decode(record.secret_hex.as_str()) else {
            return Ok(false);
        };
        let secret = TotpSecret::from_bytes(bytes)?;
        let Some(step) = secret.verify(code, unix(now), record.last_step) else {
            return Ok(false);
        };
        // The store accepts a step once, atomically, so two requests cannot share a code.
        Ok(self.credentials.accept_totp_step(user_id, step).await?)
    }

    async fn count_failure(
        &self,
        account: &str,
        address: Option<&str>,
        user_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), IdentityError> {
        let record = self.credentials.record_failure(account, now).await?;
        if let Some(address) = address {
            self.credentials.record_failure(address, now).await?;
        }
        if let Some(user_id) = user_id
            && self.throttle.should_lock(record.failures)
            && self
                .directory()
                .user(user_id)
                .is_some_and(|user| user.status == UserStatus::Active)
        {
            self.credentials.set_locked(account, true).await?;
            self.append(
                &Actor::system(),
                None,
                None,
                vec![DomainEvent::UserLocked(UserLocked {
                    user_id: user_id.to_owned(),
                    reason: "failed_logins".into(),
                })],
            )
            .await?;
        }
        Ok(())
    }

    async fn login_failed(
        &self,
        user_id: Option<&str>,
        reason: &str,
        client_address: Option<&str>,
    ) -> Result<(), IdentityError> {
        crate::metrics::global().login_failed(reason);
        self.append(
            &Actor::system(),
            None,
            None,
            vec![DomainEvent::LoginFailed(LoginFailed {
                user_id: user_id.map(str::to_owned),
                reason: reason.to_owned(),
                client_address: client_address.map(str::to_owned),
            })],
        )
        .await?;
        Ok(())
    }

    /// Opens a session for a user who has just proved both factors.
    pub async fn open_session(
        &self,
        user_id: &str,
        client_address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<NewSessionToken, IdentityError> {
        let issued = token::issue(SESSION_PREFIX)?;
        let session_id = uuid::Uuid::now_v7().to_string();
        let expires_at = now + self.sessions.absolute;
        self.credentials
            .create_session(&super::credentials::NewSession {
                token_hash: issued.hash.to_hex(),
                session_id: session_id.clone(),
                principal: format!("user:{user_id}"),
                client_address: client_address.map(str::to_owned),
                created_at: now,
                idle_timeout_secs: self.sessions.idle.as_secs(),
                absolute_expires_at: expires_at,
                step_up_at: Some(now),
            })
            .await?;
        Ok(NewSessionToken {
            token: issued.text,
            session_id,
            user_id: user_id.to_owned(),
            expires_at,
        })
    }

    /// The principal a bearer secret (session token or API key) proves, if any. Revoked,
    /// expired and idle sessions, revoked or expired keys, and inactive principals prove none.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>, IdentityError> {
        let now = Utc::now();
        if secret.starts_with(SESSION_PREFIX) {
            let hash = TokenHash::of(secret).to_hex();
            let Some(session) = self.credentials.live_session(&hash, now).await? else {
                return Ok(None);
            };
            let Some(user_id) = session.principal.strip_prefix("user:") else {
                return Ok(None);
            };
            let active = self
                .directory()
                .user(user_id)
                .is_some_and(|user| user.status == UserStatus::Active);
            if !active {
                return Ok(None);
            }
            let mut principal = user_principal(user_id)?;
            principal.session_id = Some(session.session_id.clone());
            principal.step_up_at = session.step_up_at;
            return Ok(Some(principal));
        }
        if let Some(key_id) = token::parse_api_key(secret) {
            let Some(key) = self.credentials.api_key(&key_id, now).await? else {
                return Ok(None);
            };
            if !key.secret_matches(&TokenHash::of(secret).to_hex()) {
                return Ok(None);
            }
            // The directory decides too: the key issued, not revoked, not expired (a rotation
            // shortens its life there first) and the client not past its own expiry.
            let now_text = crate::log::time::format_timestamp(now);
            let works = self
                .directory()
                .api_clients
                .get(&key.client_id)
                .is_some_and(|client| client.key_works_at(&key_id, &now_text));
            if !works {
                return Ok(None);
            }
            self.credentials.touch_api_key(&key_id, now).await?;
            let mut principal =
                Principal::api_client(&key.client_id).map_err(|_| IdentityError::Internal {
                    detail: "a stored client id is invalid".into(),
                })?;
            principal.key_id = Some(key_id);
            return Ok(Some(principal));
        }
        Ok(None)
    }

    /// Proves a current TOTP code inside a session, for sensitive operations.
    pub async fn step_up(&self, principal: &Principal, code: &str) -> Result<(), IdentityError> {
        let (Some(user_id), Some(session_id)) = (principal.user_id(), &principal.session_id) else {
            return Err(IdentityError::InvalidCode);
        };
        let now = Utc::now();
        self.checked_code(user_id, code, now).await?;
        self.credentials.record_step_up(session_id, now).await?;
        Ok(())
    }

    /// Checks a TOTP code inside a session, counted and throttled like a login attempt on the
    /// same account, so a session cannot be used to guess codes.
    async fn checked_code(
        &self,
        user_id: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<(), IdentityError> {
        let email = self
            .directory()
            .user(user_id)
            .map(|user| user.email.clone())
            .ok_or(IdentityError::InvalidCode)?;
        let account = account_subject(&email);
        if let Some(record) = self.credentials.throttle(&account).await?
            && let Some(last) = record.last_failure_at
        {
            let retry_at = self.throttle.retry_at(record.failures, last.timestamp());
            if retry_at > now.timestamp() {
                return Err(IdentityError::Throttled {
                    retry_after_secs: u64::try_from(retry_at - now.timestamp()).unwrap_or(1),
                });
            }
        }
        if !self.check_totp(user_id, code, now).await? {
            self.count_failure(&account, None, Some(user_id), now)
                .await?;
            return Err(IdentityError::InvalidCode);
        }
        self.credentials.clear_failures(&account).await?;
        Ok(())
    }

    /// Ends one session.
    pub async fn logout(&self, principal: &Principal) -> Result<(), IdentityError> {
        let Some(session_id) = &principal.session_id else {
            return Ok(());
        };
        if self
            .credentials
            .revoke_session(session_id, Utc::now())
            .await?
        {
            self.append(
                &principal.actor,
                None,
                None,
                vec![DomainEvent::SessionsRevoked(SessionsRevoked {
                    principal: principal.actor.as_str().to_owned(),
                    session_id: Some(session_id.clone()),
                    reason: "logout".into(),
                    count: 1,
                })],
            )
            .await?;
        }
        Ok(())
    }

    /// Ends every session of `principal` (`user:<id>`), or of everyone with `*`.
    pub async fn revoke_sessions_of(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        principal: &str,
        reason: &str,
    ) -> Result<u64, IdentityError> {
        let now = Utc::now();
        let count = if principal == "*" {
            self.credentials.revoke_all_sessions(now).await?
        } else {
            self.credentials.revoke_sessions_of(principal, now).await?
        };
        self.append(
            actor,
            request_id,
            None,
            vec![DomainEvent::SessionsRevoked(SessionsRevoked {
                principal: principal.to_owned(),
                session_id: None,
                reason: reason.to_owned(),
                count,
            })],
        )
        .await?;
        Ok(count)
    }

    /// Changes a signed-in user's password (the old one and a current code are required), and
    /// ends every session of theirs, the current one included.
    pub async fn change_password(
        &self,
        principal: &Principal,
        old: Zeroizing<String>,
        new: Zeroizing<String>,
        code: &str,
    ) -> Result<(), IdentityError> {
        let Some(user_id) = principal.user_id() else {
            return Err(IdentityError::InvalidCredentials);
        };
        let directory = self.directory();
        let user = directory
            .user(user_id)
            .ok_or(IdentityError::InvalidCredentials)?;
        let phc = self
            .credentials
            .password(user_id)
            .await?
            .map(|phc| phc.to_string());
        if !password::verify_password(phc, old).await {
            return Err(IdentityError::InvalidCredentials);
        }
        self.checked_code(user_id, code, Utc::now()).await?;
        check_policy(&new, &[&user.email, &user.name]).map_err(IdentityError::PasswordRejected)?;
        let phc = password::hash_password(new).await?;
        self.credentials
            .set_password(user_id, &phc, Utc::now())
            .await?;
        self.append(
            &principal.actor,
            None,
            None,
            vec![DomainEvent::PasswordChanged(UserRef {
                user_id: user_id.to_owned(),
            })],
        )
        .await?;
        self.revoke_sessions_of(
            &principal.actor,
            None,
            principal.actor.as_str(),
            "password_changed",
        )
        .await?;
        Ok(())
    }

    /// Recovery codes the user has not used.
    pub async fn remaining_recovery_codes(&self, user_id: &str) -> Result<u32, IdentityError> {
        Ok(self.credentials.remaining_recovery_codes(user_id).await?)
    }
}

fn unix(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp()).unwrap_or(0)
}

fn user_actor(user_id: &str) -> Result<Actor, IdentityError> {
    Actor::parse(&format!("user:{user_id}")).map_err(|_| IdentityError::Internal {
        detail: "a stored user id is invalid".into(),
    })
}

fn user_principal(user_id: &str) -> Result<Principal, IdentityError> {
    Principal::user(user_id).map_err(|_| IdentityError::Internal {
        detail: "a stored user id is invalid".into(),
    })
}
