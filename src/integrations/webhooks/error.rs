//! Why a webhook operation failed. Messages never carry secrets, URLs' query strings, response
//! bodies or database values: sqlx errors are reduced to their kind, as the credential store
//! does.

use thiserror::Error;

use super::target::TargetRefused;
use crate::identity::credentials::CredentialError;

#[derive(Debug, Clone, Error)]
pub enum WebhookError {
    /// Input that breaks a rule; `field` names the input (camelCase, as in the API).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The endpoint's URL is not one webhooks may be sent to.
    #[error("url: {0}")]
    Target(#[from] TargetRefused),
    /// No such endpoint, delivery or API client.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The change does not apply to the endpoint as it is (removed, already in that state).
    #[error("{0}")]
    Conflict(&'static str),
    /// The database was unreachable or busy; trying again may succeed.
    #[error("webhook store unavailable: {kind}")]
    Unavailable { kind: String },
    /// The database refused a statement.
    #[error("webhook store database error: {kind}")]
    Database { kind: String },
    /// A stored row cannot be read.
    #[error("stored {what} is corrupt")]
    Corrupt { what: &'static str },
    /// The log, the vault or the access chain failed.
    #[error("{0}")]
    Internal(String),
}

impl WebhookError {
    /// Whether the caller's input is at fault (reported beside the field, not as a failure).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            WebhookError::Invalid { .. }
                | WebhookError::Target(_)
                | WebhookError::NotFound { .. }
                | WebhookError::Conflict(_)
        )
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::Invalid { .. } => "INVALID_INPUT",
            WebhookError::Target(_) => "WEBHOOK_TARGET_REFUSED",
            WebhookError::NotFound { .. } => "NOT_FOUND",
            WebhookError::Conflict(_) => "WEBHOOK_ENDPOINT_STATE",
            WebhookError::Unavailable { .. } => "UNAVAILABLE",
            WebhookError::Database { .. }
            | WebhookError::Corrupt { .. }
            | WebhookError::Internal(_) => "INTERNAL",
        }
    }

    /// The input field at fault, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            WebhookError::Invalid { field, .. } => Some(field),
            WebhookError::Target(_) => Some("url"),
            _ => None,
        }
    }

    /// What a client may be told.
    pub fn public_message(&self) -> String {
        match self {
            WebhookError::Invalid { message, .. } => message.clone(),
            WebhookError::Target(refused) => refused.to_string(),
            WebhookError::NotFound { what } => format!("{what} not found"),
            WebhookError::Conflict(message) => (*message).to_owned(),
            WebhookError::Unavailable { .. } => "the service is unavailable; try again".into(),
            _ => "the operation failed".into(),
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, WebhookError::Unavailable { .. })
    }

    pub(super) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        WebhookError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub(super) fn internal(what: &str, error: impl std::fmt::Display) -> Self {
        WebhookError::Internal(format!("{what}: {error}"))
    }
}

impl From<sqlx::Error> for WebhookError {
    fn from(error: sqlx::Error) -> Self {
        match CredentialError::from(error) {
            CredentialError::Unavailable { kind } => WebhookError::Unavailable { kind },
            CredentialError::Database { kind } => WebhookError::Database { kind },
            CredentialError::Corrupt { what } => WebhookError::Corrupt { what },
            other => WebhookError::Database {
                kind: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_carry_no_values_and_user_errors_name_their_field() {
        let error = WebhookError::from(sqlx::Error::Protocol("whsec_secret".into()));
        assert!(!format!("{error} {error:?}").contains("whsec_secret"));
        assert!(!error.is_user_error());
        assert_eq!(error.public_message(), "the operation failed");
        assert!(WebhookError::from(sqlx::Error::PoolTimedOut).is_transient());
        let refused = WebhookError::from(TargetRefused::NotHttps);
        assert!(refused.is_user_error());
        assert_eq!(refused.field(), Some("url"));
        assert_eq!(refused.code(), "WEBHOOK_TARGET_REFUSED");
    }
}
