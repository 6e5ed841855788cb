//! What can go wrong in the identity layer, with codes clients can rely on. Messages never say
//! whether an account exists, and never carry secrets.

use thiserror::Error;

use super::credentials::CredentialError;
use super::secret::SecretError;
use super::secret::password::PasswordRejected;
use crate::store::{AppendError, StoreError};

#[derive(Debug, Error)]
pub enum IdentityError {
    /// Wrong email, password or second factor, an unknown, locked or disabled account: all alike.
    #[error("the email, password or code is not right")]
    InvalidCredentials,
    /// Too many failures from this account or address; try again later.
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("the enrolment link is not valid (it may have expired or been used)")]
    InvalidEnrolment,
    #[error("{0}")]
    PasswordRejected(PasswordRejected),
    #[error("the authenticator code is not right")]
    InvalidCode,
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("no such {what}")]
    NotFound { what: &'static str },
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error("a user or client with this id already exists")]
    IdTaken,
    #[error("the directory changed while the request was decided; try again")]
    DirectoryChanged,
    #[error("identity storage: {0}")]
    Credentials(#[from] CredentialError),
    #[error("log: {0}")]
    Append(#[from] AppendError),
    #[error("log: {0}")]
    Store(#[from] StoreError),
    #[error("secret: {0}")]
    Secret(#[from] SecretError),
    #[error("internal: {detail}")]
    Internal { detail: String },
}

impl IdentityError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        IdentityError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// A stable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::InvalidCredentials => "INVALID_CREDENTIALS",
            IdentityError::Throttled { .. } => "THROTTLED",
            IdentityError::InvalidEnrolment => "INVALID_ENROLMENT",
            IdentityError::PasswordRejected(_) => "PASSWORD_REJECTED",
            IdentityError::InvalidCode => "INVALID_CODE",
            IdentityError::Invalid { .. } => "INVALID_INPUT",
            IdentityError::NotFound { .. } => "NOT_FOUND",
            IdentityError::EmailTaken => "EMAIL_TAKEN",
            IdentityError::IdTaken => "ID_TAKEN",
            IdentityError::DirectoryChanged => "CONFLICT",
            IdentityError::Credentials(error) if error.is_transient() => "UNAVAILABLE",
            IdentityError::Store(StoreError::Unavailable { .. }) => "UNAVAILABLE",
            IdentityError::Credentials(_)
            | IdentityError::Append(_)
            | IdentityError::Store(_)
            | IdentityError::Secret(_)
            | IdentityError::Internal { .. } => "INTERNAL",
        }
    }

    /// Whether the caller caused it (and may see the message).
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            IdentityError::Credentials(_)
                | IdentityError::Append(_)
                | IdentityError::Store(_)
                | IdentityError::Secret(_)
                | IdentityError::Internal { .. }
        )
    }

    /// The message a client may see.
    pub fn public_message(&self) -> String {
        if self.is_user_error() {
            self.to_string()
        } else if self.code() == "UNAVAILABLE" {
            "the service is briefly unavailable; try again".to_owned()
        } else {
            "the request could not be completed".to_owned()
        }
    }

    /// The input field concerned, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            IdentityError::Invalid { field, .. } => Some(field),
            IdentityError::PasswordRejected(_) => Some("password"),
            IdentityError::InvalidCode => Some("code"),
            IdentityError::EmailTaken => Some("email"),
            IdentityError::IdTaken => Some("id"),
            _ => None,
        }
    }
}
