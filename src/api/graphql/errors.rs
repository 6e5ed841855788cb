//! Errors as clients see them. User errors (validation and business rules) travel in mutation
//! payloads; everything else is a GraphQL error with `extensions.code`. Internal causes are
//! logged here and never sent.

use async_graphql::{ErrorExtensions, SimpleObject};

use crate::service::ServiceError;
use crate::store::StoreError;

/// A problem with the input that a form can show beside a field.
#[derive(Debug, Clone, SimpleObject)]
pub struct UserError {
    /// The input field concerned, if any (camelCase, as in the mutation's input).
    pub field: Option<String>,
    /// A stable machine code, e.g. `MATTER_CLOSED`.
    pub code: String,
    pub message: String,
}

impl UserError {
    pub fn from_service(error: &ServiceError) -> Self {
        UserError {
            field: error.field().map(str::to_owned),
            code: error.code().to_owned(),
            message: error.public_message(),
        }
    }
}

/// A GraphQL error with a code and a message safe to show.
pub fn api_error(code: &str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into()).extend_with(|_, extensions| {
        extensions.set("code", code);
    })
}

/// Turns a system failure into a client error; the cause goes to the log only.
pub fn internal(error: impl Into<ServiceError>) -> async_graphql::Error {
    let error = error.into();
    if matches!(error, ServiceError::Store(StoreError::Unavailable { .. })) {
        tracing::warn!(error = %error, "database unavailable");
    } else {
        tracing::error!(error = %error, "request failed");
    }
    api_error(error.code(), error.public_message())
}

/// Splits a service result: user errors into the payload, the rest into GraphQL errors.
pub fn split<T>(result: Result<T, ServiceError>) -> async_graphql::Result<Result<T, UserError>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(error) if error.is_user_error() => Ok(Err(UserError::from_service(&error))),
        Err(error) => Err(internal(error)),
    }
}
