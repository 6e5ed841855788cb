//! The mutation root: one mutation per command. Each takes an expected version and an
//! idempotency key, and returns the changed object, the event positions and typed user errors.
//! Inputs are in [`inputs`]; payloads and the steps every mutation shares in [`payloads`].

// Resolver arguments are the schema's arguments; a mutation takes as many as its command needs.
#![allow(clippy::too_many_arguments)]

mod inputs;
mod payloads;

pub use inputs::*;
pub use payloads::*;

use async_graphql::{Context, Object};

use super::caller::Caller;
use super::errors::split;
use super::query::MatterStatusValue;
use crate::domain::commands::*;
use crate::domain::events::{
    CalendarKind, ConflictHit, ConflictOutcome, ContactKind, FieldKind, MatterStatus, PartyRole,
    TaskStatus, TeamCapacity,
};

/// Request id of the HTTP request, recorded on every event.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

#[derive(Default)]
pub struct Mutation;

#[Object(name = "RecordsMutation")]
impl Mutation {
    async fn open_matter(
        &self,
        ctx: &Context<'_>,
        input: OpenMatterInput,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        let command = OpenMatter {
            matter_number: input.matter_number.clone(),
            title: input.title,
            description: input.description,
            practice_area: input.practice_area,
            responsible_attorney: input.responsible_attorney,
            originating_attorney: input.originating_attorney,
            opened_on: input.opened_on,
            statute_of_limitations_on: input.statute_of_limitations_on,
            intake: input.intake,
        };
        let (service, context) = setup_recorded(ctx, options).await?;
        let result = service.open_matter(&context, &command).await;
        matter_payload(ctx, &input.matter_number, result).await
    }

    async fn update_matter(
        &self,
        ctx: &Context<'_>,
        number: String,
        input: UpdateMatterInput,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        let command = MatterCommand::ChangeDetails(ChangeMatterDetails {
            title: input.title,
            description: input.description,
            practice_area: input.practice_area,
            responsible_attorney: input.responsible_attorney,
            originating_attorney: input.originating_attorney,
            statute_of_limitations_on: input.statute_of_limitations_on,
        });
        change(ctx, number, command, options).await
    }

    /// Moves a matter through its lifecycle; closing with open tasks needs `force` and a reason,
    /// reopening needs a reason.
    async fn change_matter_status(
        &self,
        ctx: &Context<'_>,
        number: String,
        status: MatterStatusValue,
        reason: Option<String>,
        effective_on: Option<String>,
        #[graphql(default = false)] force: bool,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        let to = match status {
            MatterStatusValue::Intake => MatterStatus::Intake,
            MatterStatusValue::Open => MatterStatus::Open,
            MatterStatusValue::Pending => MatterStatus::Pending,
            MatterStatusValue::Closed => MatterStatus::Closed,
            MatterStatusValue::Archived => MatterStatus::Archived,
        };
        let command = MatterCommand::ChangeStatus(ChangeMatterStatus {
            to,
            effective_on,
            reason,
            force,
        });
        change(ctx, number, command, options).await
    }

    /// Makes the matter visible to every fee earner of the firm (read-only for those off its
    /// team, never privileged notes; walls still apply), or to its team only again.
    async fn set_matter_visibility(
        &self,
        ctx: &Context<'_>,
        number: String,
        firm_visible: bool,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        change(
            ctx,
            number,
            MatterCommand::SetVisibility { firm_visible },
            options,
        )
        .await
    }

    /// Defines a firm-wide custom field for matters.
    async fn define_custom_field(
        &self,
        ctx: &Context<'_>,
        key: String,
        label: String,
        kind: FieldKindValue,
        #[graphql(default)] choices: Vec<String>,
        #[graphql(default = false)] sensitive: bool,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<CustomFieldPayload> {
        let command = DefineCustomField {
            key: key.clone(),
            label,
            kind: match kind {
                FieldKindValue::Text => FieldKind::Text,
                FieldKindValue::Number => FieldKind::Number,
                FieldKindValue::Date => FieldKind::Date,
                FieldKindValue::Choice => FieldKind::Choice,
            },
            choices,
            sensitive,
        };
        let (service, context) = setup_recorded(ctx, options).await?;
        Ok(
            match split(service.define_custom_field(&context, &command).await)? {
                Ok(committed) => CustomFieldPayload {
                    key: Some(key),
                    positions: Some(positions(&committed)),
                    user_errors: Vec::new(),
                },
                Err(error) => CustomFieldPayload {
                    key: None,
                    positions: None,
                    user_errors: vec![error],
                },
            },
        )
    }

    /// Sets (or with a null value clears) a custom field on a matter.
    async fn set_custom_field(
        &self,
        ctx: &Context<'_>,
        number: String,
        key: String,
        value: Option<async_graphql::Json<serde_json::Value>>,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        let value = value.map(|json| json.0).filter(|value| !value.is_null());
        change(
            ctx,
            number,
            MatterCommand::SetCustomField(SetCustomField { key, value }),
            options,
        )
        .await
    }

    async fn add_team_member(
        &self,
        ctx: &Context<'_>,
        number: String,
        user_id: String,
        capacity: TeamCapacityValue,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        let capacity = match capacity {
            TeamCapacityValue::Attorney => TeamCapacity::Attorney,
            TeamCapacityValue::Paralegal => TeamCapacity::Paralegal,
            TeamCapacityValue::Staff => TeamCapacity::Staff,
            TeamCapacityValue::OriginatingAttorney => TeamCapacity::OriginatingAttorney,
            TeamCapacityValue::ResponsibleAttorney => TeamCapacity::ResponsibleAttorney,
        };
        change(
            ctx,
            number,
            MatterCommand::AddTeamMember(AddTeamMember { user_id, capacity }),
            options,
        )
        .await
    }

    async fn remove_team_member(
        &self,
        ctx: &Context<'_>,
        number: String,
        user_id: String,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        change(
            ctx,
            number,
            MatterCommand::RemoveTeamMember { user_id },
            options,
        )
        .await
    }

    async fn create_contact(
        &self,
        ctx: &Context<'_>,
        kind: ContactKindValue,
        input: ContactInput,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<ContactPayload> {
        let command = CreateContact {
            kind: match kind {
                ContactKindValue::Person => ContactKind::Person,
                ContactKindValue::Organisation => ContactKind::Organisation,
            },
            details: input.details(),
        };
        let (service, context) = setup_recorded(ctx, options).await?;
        match split(service.create_contact(&context, &command).await)? {
            Ok((contact_id, committed)) => contact_payload(ctx, &contact_id, Ok(committed)).await,
            Err(error) => contact_payload(ctx, "", Err(error)).await,
        }
    }

    /// Replaces a contact's details.
    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        contact_id: String,
        input: ContactInput,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<ContactPayload> {
        if let Some(refused) = contact_refused(ctx, &contact_id)? {
            return Ok(refused);
        }
        let (service, context) = setup_recorded(ctx, options).await?;
        let result = split(
            service
                .update_contact(&context, &contact_id, &input.details())
                .await,
        )?;
        contact_payload(ctx, &contact_id, result).await
    }

    async fn add_party(
        &self,
        ctx: &Context<'_>,
        number: String,
        contact_id: String,
        role: PartyRoleValue,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        let role = party_role(role);
        change(
            ctx,
            number,
            MatterCommand::AddParty(AddParty { contact_id, role }),
            options,
        )
        .await
    }

    async fn remove_party(
        &self,
        ctx: &Context<'_>,
        number: String,
        party_id: String,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        change(
            ctx,
            number,
            MatterCommand::RemoveParty { party_id },
            options,
        )
        .await
    }

    /// Runs a conflict search for `query` across the firm (excluding this matter's own parties)
    /// and records it on the matter with its outcome and reviewer.
    async fn record_conflict_check(
        &self,
        ctx: &Context<'_>,
        number: String,
        query: String,
        outcome: ConflictOutcomeValue,
        notes: Option<String>,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        let db = ctx.data::<crate::projection::ReadDb>()?;
        let own = number.trim().to_ascii_uppercase();
        let vault = ctx
            .data::<std::sync::Arc<crate::service::Service>>()?
            .vault()
            .clone();
        let matches = crate::read::matters::search_conflicts(db.pool(), &vault, &query, 100)
            .await
            .map_err(super::errors::internal)?;
        let hits = matches
            .into_iter()
            .filter(|row| row.matter_number != own)
            .filter_map(|row| {
                Some(ConflictHit {
                    matter_number: row.matter_number,
                    party_id: row.party_id,
                    role: PartyRole::parse(&row.role)?,
                })
            })
            .collect();
        let principal = Caller::of(ctx)?.signed()?;
        let command = MatterCommand::RecordConflictCheck(RecordConflictCheck {
            query,
            outcome: match outcome {
                ConflictOutcomeValue::Cleared => ConflictOutcome::Cleared,
                ConflictOutcomeValue::PotentialConflict => ConflictOutcome::PotentialConflict,
            },
            reviewer: principal.member_id().to_owned(),
            hits,
            notes,
        });
        change(ctx, number, command, options).await
    }

    /// Adds a document with its first version; the bytes are stored by their blake3 hash.
    async fn add_document(
        &self,
        ctx: &Context<'_>,
        number: String,
        input: DocumentInput,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        let content = match upload(
            ctx,
            &input.content_base64,
            &input.media_type,
            input.filename,
        )
        .await?
        {
            Ok(content) => content,
            Err(error) => return Ok(failed(error)),
        };
        let (content, bytes) = content;
        let command = MatterCommand::AddDocument(AddDocument {
            document_type: input.document_type,
            title: input.title,
            description: input.description,
            content,
        });
        change_with_content(ctx, number, command, &bytes, options).await
    }

    /// Adds a new version of a document; earlier versions stay.
    async fn add_document_version(
        &self,
        ctx: &Context<'_>,
        number: String,
        document_id: String,
        media_type: String,
        filename: Option<String>,
        content_base64: String,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        let (content, bytes) = match upload(ctx, &content_base64, &media_type, filename).await? {
            Ok(content) => content,
            Err(error) => return Ok(failed(error)),
        };
        let command = MatterCommand::AddDocumentVersion {
            document_id,
            content,
        };
        change_with_content(ctx, number, command, &bytes, options).await
    }

    async fn add_note(
        &self,
        ctx: &Context<'_>,
        number: String,
        body: String,
        subject: Option<String>,
        #[graphql(default = false)] privileged: bool,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        change(
            ctx,
            number,
            MatterCommand::AddNote(AddNote {
                privileged,
                subject,
                body,
            }),
            options,
        )
        .await
    }

    async fn edit_note(
        &self,
        ctx: &Context<'_>,
        number: String,
        note_id: String,
        body: String,
        subject: Option<String>,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        change(
            ctx,
            number,
            MatterCommand::EditNote {
                note_id,
                subject,
                body,
            },
            options,
        )
        .await
    }

    async fn create_task(
        &self,
        ctx: &Context<'_>,
        number: String,
        title: String,
        assignee: Option<String>,
        due_on: Option<String>,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        change(
            ctx,
            number,
            MatterCommand::CreateTask(CreateTask {
                title,
                assignee,
                due_on,
            }),
            options,
        )
        .await
    }

    /// Completes, reopens or cancels a task.
    async fn set_task_status(
        &self,
        ctx: &Context<'_>,
        number: String,
        task_id: String,
        status: TaskStatusValue,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        let to = match status {
            TaskStatusValue::Open => TaskStatus::Open,
            TaskStatusValue::Completed => TaskStatus::Completed,
            TaskStatusValue::Cancelled => TaskStatus::Cancelled,
        };
        change(
            ctx,
            number,
            MatterCommand::SetTaskStatus { task_id, to },
            options,
        )
        .await
    }

    async fn schedule_calendar_entry(
        &self,
        ctx: &Context<'_>,
        number: String,
        input: CalendarEntryInput,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        let command = MatterCommand::ScheduleCalendarEntry(ScheduleCalendarEntry {
            kind: match input.kind {
                CalendarKindValue::Hearing => CalendarKind::Hearing,
                CalendarKindValue::FilingDeadline => CalendarKind::FilingDeadline,
                CalendarKindValue::Meeting => CalendarKind::Meeting,
                CalendarKindValue::Deadline => CalendarKind::Deadline,
            },
            title: input.title,
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            all_day: input.all_day,
            rule: input.rule,
            location: input.location,
        });
        change(ctx, number, command, options).await
    }

    async fn cancel_calendar_entry(
        &self,
        ctx: &Context<'_>,
        number: String,
        entry_id: String,
        reason: Option<String>,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        change(
            ctx,
            number,
            MatterCommand::CancelCalendarEntry { entry_id, reason },
            options,
        )
        .await
    }

    async fn record_time(
        &self,
        ctx: &Context<'_>,
        number: String,
        input: TimeEntryInput,
        options: Option<WriteOptions>,
    ) -> async_graphql::Result<MatterPayload> {
        let user_id = match input.user_id {
            Some(user_id) => user_id,
            None => Caller::of(ctx)?.signed()?.member_id().to_owned(),
        };
        let command = MatterCommand::RecordTime(RecordTime {
            user_id,
            worked_on: input.worked_on,
            minutes: input.minutes,
            billable: input.billable,
            description: input.description,
        });
        change(ctx, number, command, options).await
    }
}
