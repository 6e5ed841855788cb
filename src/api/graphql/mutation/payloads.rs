//! Mutation payloads, and the steps every mutation shares: the command context, running the
//! command, and turning its result into a payload.

use std::sync::Arc;

use async_graphql::{Context, SimpleObject};
use base64::Engine;

use super::WriteOptions;
use crate::access::policy::{self, Decision, MatterChange};
use crate::api::graphql::caller::{Caller, forbidden, fresh_matter_facts};
use crate::api::graphql::errors::{UserError, internal, split};
use crate::api::graphql::loaders::ContactLoader;
use crate::api::graphql::types::{Contact, Matter, load_one};
use crate::domain::DomainError;
use crate::domain::commands::*;
use crate::projection::ReadDb;
use crate::read::{Bind, Sql};
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
    let caller = Caller::of(ctx)?;
    let principal = caller.signed()?;
    let options = options.unwrap_or_default();
    let mut context = CommandContext::new(principal.actor.clone());
    context.request_id = Some(caller.request_id.clone());
    context.idempotency_key = options.idempotency_key;
    context.expected_version = options.expected_version;
    Ok((service, context))
}

/// [`setup`] after making the decisions taken so far durable: a change is never made without
/// its access record.
pub(super) async fn setup_recorded(
    ctx: &Context<'_>,
    options: Option<WriteOptions>,
) -> async_graphql::Result<(Arc<Service>, CommandContext)> {
    Caller::of(ctx)?.flush("mutation").await?;
    setup(ctx, options)
}

/// A payload refusing a change to a contact a wall screens the caller from (as if it did not
/// exist), or `None` when the change may go ahead.
pub(super) fn contact_refused(
    ctx: &Context<'_>,
    contact_id: &str,
) -> async_graphql::Result<Option<ContactPayload>> {
    let caller = Caller::of(ctx)?;
    let principal = caller.signed()?;
    if !policy::contact_walled(&caller.directory, principal, contact_id) {
        return Ok(None);
    }
    caller.note(
        None,
        "contact",
        Some(contact_id),
        None,
        Decision::Denied("walled"),
    );
    let error = UserError::from_service(&ServiceError::from(DomainError::ContactNotFound));
    Ok(Some(ContactPayload {
        contact: None,
        positions: None,
        version: None,
        replayed: false,
        projected: false,
        user_errors: vec![error],
    }))
}

/// What kind of change a command is, for the policy.
async fn change_kind(
    ctx: &Context<'_>,
    command: &MatterCommand,
) -> async_graphql::Result<MatterChange> {
    Ok(match command {
        MatterCommand::ChangeDetails(_)
        | MatterCommand::ChangeStatus(_)
        | MatterCommand::SetCustomField(_)
        | MatterCommand::SetVisibility { .. } => MatterChange::Details,
        MatterCommand::AddTeamMember(_) | MatterCommand::RemoveTeamMember { .. } => {
            MatterChange::Team
        }
        MatterCommand::AddParty(_) | MatterCommand::RemoveParty { .. } => MatterChange::Parties,
        MatterCommand::RecordConflictCheck(_) => MatterChange::ConflictCheck,
        MatterCommand::AddDocument(_) | MatterCommand::AddDocumentVersion { .. } => {
            MatterChange::Documents
        }
        MatterCommand::AddNote(add) => MatterChange::Note {
            privileged: add.privileged,
        },
        MatterCommand::EditNote { note_id, .. } => {
            // Editing a privileged note is a privileged change; an unknown note is treated as
            // privileged (the strictest) and the command then fails on its own.
            let db = ctx.data::<ReadDb>()?;
            let mut sql = Sql::new(String::new());
            let id = sql.bind(Bind::Text(note_id.clone()));
            sql.text = format!("SELECT privileged FROM rm_notes WHERE note_id = {id}");
            let rows: Vec<(i64,)> = sql.fetch_all(db.pool()).await.map_err(internal)?;
            MatterChange::Note {
                privileged: rows.first().is_none_or(|(privileged,)| *privileged != 0),
            }
        }
        MatterCommand::CreateTask(_)
        | MatterCommand::SetTaskStatus { .. }
        | MatterCommand::ScheduleCalendarEntry(_)
        | MatterCommand::CancelCalendarEntry { .. } => MatterChange::Work,
        MatterCommand::RecordTime(_) => MatterChange::Time,
    })
}

/// Decides a change to matter `number` (recorded durably). `Ok(None)`: go ahead; `Ok(Some)`:
/// the payload refusing it. A matter the caller cannot see is refused exactly as a missing one.
async fn authorize(
    ctx: &Context<'_>,
    number: &str,
    command: &MatterCommand,
) -> async_graphql::Result<Option<MatterPayload>> {
    let caller = Caller::of(ctx)?;
    let number = number.trim().to_ascii_uppercase();
    let db = ctx.data::<ReadDb>()?;
    let not_found = || {
        failed(UserError::from_service(&ServiceError::from(
            DomainError::MatterNotFound,
        )))
    };
    let Some(row) =
        crate::read::matters::matters_by_number(db.pool(), std::slice::from_ref(&number))
            .await
            .map_err(internal)?
            .into_iter()
            .next()
    else {
        caller.note(
            Some(&number),
            "matter",
            None,
            None,
            Decision::Denied("not_found"),
        );
        caller.flush("mutation").await?;
        return Ok(Some(not_found()));
    };
    let facts = fresh_matter_facts(db, &row).await?;
    let kind = change_kind(ctx, command).await?;
    match caller.authorize_change(&facts, kind).await? {
        Ok(()) => Ok(None),
        Err(decision) => {
            let principal = caller.signed()?;
            let visible =
                policy::matter_access(&caller.directory, principal, &facts, &caller.now_text)
                    .is_visible();
            if visible {
                Err(forbidden(decision))
            } else {
                Ok(Some(not_found()))
            }
        }
    }
}

pub(super) async fn change(
    ctx: &Context<'_>,
    number: String,
    command: MatterCommand,
    options: Option<WriteOptions>,
) -> async_graphql::Result<MatterPayload> {
    if let Some(refused) = authorize(ctx, &number, &command).await? {
        return Ok(refused);
    }
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
        .next();
    let matter = match matter {
        Some(row) => {
            let facts = fresh_matter_facts(db, &row).await?;
            let access = Caller::of(ctx)?.matter_access(&facts)?;
            access.is_visible().then_some(Matter { row, access })
        }
        None => None,
    };
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
    let principal = Caller::of(ctx)?.signed()?;
    let described =
        crate::service::describe_content(&bytes, media_type, filename, principal.member_id());
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
    if let Some(refused) = authorize(ctx, &number, &command).await? {
        return Ok(refused);
    }
    let (service, context) = setup(ctx, options)?;
    let result = service
        .add_document_content(&context, &number, &command, bytes)
        .await;
    matter_payload(ctx, &number, result).await
}
