//! Why a service call failed: the domain refused it (a user error a form can show) or the
//! system did (an error code, with internals logged and withheld).

use crate::domain::DomainError;
use crate::domain::events::DecodeError;
use crate::store::{AppendError, StoreError};
use crate::vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Vault(VaultError),
    #[error("document content is {actual} bytes; the limit is {limit}")]
    ContentTooLarge { actual: usize, limit: usize },
}

impl ServiceError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Domain(error) => error.code(),
            ServiceError::Append(error) => error.code(),
            ServiceError::Store(StoreError::Unavailable { .. }) => "UNAVAILABLE",
            ServiceError::Store(StoreError::StorageFull { .. }) => "STORAGE_FULL",
            ServiceError::Vault(VaultError::SubjectErased { .. }) => "ERASED",
            ServiceError::Store(_) | ServiceError::Decode(_) | ServiceError::Vault(_) => "INTERNAL",
            ServiceError::ContentTooLarge { .. } => "CONTENT_TOO_LARGE",
        }
    }

    /// Whether this is the caller's to fix (shown as a user error) rather than the system's.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            ServiceError::Domain(_)
                | ServiceError::ContentTooLarge { .. }
                | ServiceError::Vault(VaultError::SubjectErased { .. })
                | ServiceError::Append(
                    AppendError::VersionConflict { .. }
                        | AppendError::IdempotencyKeyReused
                        | AppendError::Invalid(_)
                )
        )
    }

    /// A message safe for clients.
    pub fn public_message(&self) -> String {
        match self {
            ServiceError::Domain(error) => error.to_string(),
            ServiceError::Append(AppendError::VersionConflict { actual, .. }) => {
                format!("the record changed meanwhile (now at version {actual}); reload and retry")
            }
            ServiceError::Append(error) => error.public_message(),
            ServiceError::ContentTooLarge { .. } => self.to_string(),
            ServiceError::Store(StoreError::Unavailable { .. }) => {
                "the database is unavailable".into()
            }
            ServiceError::Store(StoreError::StorageFull { .. }) => {
                "the database's storage is full; nothing was written".into()
            }
            ServiceError::Vault(VaultError::SubjectErased { .. }) => {
                "this record's client data has been erased; nothing more can be added to it".into()
            }
            ServiceError::Store(_) | ServiceError::Decode(_) | ServiceError::Vault(_) => {
                "internal error".into()
            }
        }
    }

    pub fn field(&self) -> Option<&'static str> {
        match self {
            ServiceError::Domain(error) => error.field(),
            ServiceError::ContentTooLarge { .. } => Some("content"),
            ServiceError::Append(AppendError::IdempotencyKeyReused) => Some("idempotencyKey"),
            ServiceError::Append(AppendError::VersionConflict { .. }) => Some("expectedVersion"),
            _ => None,
        }
    }
}

impl From<VaultError> for ServiceError {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::Store(store) => ServiceError::Store(store),
            other => ServiceError::Vault(other),
        }
    }
}
