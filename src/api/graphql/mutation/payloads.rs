//! Mutation payloads, and the steps every mutation shares: the command context, running the
//! command, and turning its result into a payload.

use std::sync::Arc;

use async_graphql::{Context, SimpleObject};
use base64::Engine;

use super::{Principal, RequestId, WriteOptions};
use crate::api::graphql::errors::{UserError, split};
use crate::api::graphql::loaders::ContactLoader;
use crate::api::graphql::types::{Contact, Matter, load_one};
use crate::domain::commands::*;
use crate::service::{CommandContext, Committed, Service, ServiceError};

#[derive(SimpleObject)]
pub struct Positions {
    pub first: u64,
    pub last: u64,
}

#[derive(SimpleObject)]
pub struct MatterPayload {
    pub matter: Option<Matter>,
    pub positions: Option<Positions>,
    /// The matter's version after the change.
    pub version: Option<u64>,
    /// True when an earlier request with the same idempotency key is what this reports.
    pub replayed: bool,
    /// Whether the read models had applied the change when the mutation returned.
    pub projected: bool,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct ContactPayload {
    pub contact: Option<Contact>,
    pub positions: Option<Positions>,
    pub version: Option<u64>,
    pub replayed: bool,
    pub projected: bool,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct CustomFieldPayload {
    pub key: Option<String>,
    pub positions: Option<Positions>,
    pub user_errors: Vec<UserError>,
}

pub(super) fn setup(
    ctx: &Context<'_>,
    options: Option<WriteOptions>,
) -> async_graphql::Result<(Arc<Service>, CommandContext)> {
    let service = ctx.data::<Arc<Service>>()?.clone();
    let principal = ctx.data::<Principal>()?;
    let options = options.unwrap_or_default();
    let mut context = CommandContext::new(principal.0.clone());
    context.request_id = ctx.data_opt::<RequestId>().map(|id| id.0.clone());
    context.idempotency_key = options.idempotency_key;
    context.expected_version = options.expected_version;
    Ok((service, context))
}

pub(super) async fn change(
    ctx: &Context<'_>,
    number: String,
    command: MatterCommand,
    options: Option<WriteOptions>,
) -> async_graphql::Result<MatterPayload> {
    let (service, context) = setup(ctx, options)?;
    let result = service.change_matter(&context, &number, &command).await;
    matter_payload(ctx, &number, result).await
}

pub(super) fn positions(committed: &Committed) -> Positions {
    Positions {
        first: committed.first_position,
        last: committed.last_position,
    }
}

pub(super) fn failed(error: UserError) -> MatterPayload {
    MatterPayload {
        matter: None,
        positions: None,
        version: None,
        replayed: false,
        projected: false,
        user_errors: vec![error],
    }
}

pub(super) async fn matter_payload(
    ctx: &Context<'_>,
    number: &str,
    result: Result<Committed, ServiceError>,
) -> async_graphql::Result<MatterPayload> {
    let committed = match split(result)? {
        Ok(committed) => committed,
        Err(error) => return Ok(failed(error)),
    };
    let number = number.trim().to_ascii_uppercase();
    // A fresh read: the batch loader may hold this request's earlier answer.
    let db = ctx.data::<crate::projection::ReadDb>()?;
    let matter = crate::read::matters::matters_by_number(db.pool(), &[number])
        .await
        .map_err(crate::api::graphql::errors::internal)?
        .into_iter()
        .next()
        .map(Matter);
    Ok(MatterPayload {
        matter,
        positions: Some(positions(&committed)),
        version: Some(committed.version),
        replayed: committed.replayed,
        projected: committed.projected,
        user_errors: Vec::new(),
    })
}

pub(super) async fn contact_payload(
    ctx: &Context<'_>,
    contact_id: &str,
    result: Result<Committed, UserError>,
) -> async_graphql::Result<ContactPayload> {
    Ok(match result {
        Ok(committed) => ContactPayload {
            contact: load_one::<ContactLoader>(ctx, contact_id)
                .await?
                .map(Contact),
            positions: Some(positions(&committed)),
            version: Some(committed.version),
            replayed: committed.replayed,
            projected: committed.projected,
            user_errors: Vec::new(),
        },
        Err(error) => ContactPayload {
            contact: None,
            positions: None,
            version: None,
            replayed: false,
            projected: false,
            user_errors: vec![error],
        },
    })
}

pub(super) async fn upload(
    ctx: &Context<'_>,
    content_base64: &str,
    media_type: &str,
    filename: Option<String>,
) -> async_graphql::Result<Result<(UploadedContent, Vec<u8>), UserError>> {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(content_base64) else {
        return Ok(Err(UserError {
            field: Some("contentBase64".into()),
            code: "INVALID_INPUT".into(),
            message: "content is not valid base64".into(),
        }));
    };
    let principal = ctx.data::<Principal>()?;
    let described =
        crate::service::describe_content(&bytes, media_type, filename, &principal.user_id());
    Ok(split(described)?.map(|described| (described, bytes)))
}

/// Like [`change`], storing the document bytes once the matter has accepted the command.
pub(super) async fn change_with_content(
    ctx: &Context<'_>,
    number: String,
    command: MatterCommand,
    bytes: &[u8],
    options: Option<WriteOptions>,
) -> async_graphql::Result<MatterPayload> {
    let (service, context) = setup(ctx, options)?;
    let result = service
        .add_document_content(&context, &number, &command, bytes)
        .await;
    matter_payload(ctx, &number, result).await
}
