//! The application service: turns commands into appended events, and answers the questions
//! that need the log itself (time travel, history, document content).
//!
//! Each command loads the current state of its stream, lets the domain decide, and appends the
//! decided events expecting exactly the version the decision was made at, so a rule is never
//! checked against stale state: a concurrent change makes the append fail with a version
//! conflict instead. Then it waits (bounded) until the projections have applied the events, so
//! the caller reads its own writes.

mod aggregates;
mod error;
mod freeze;
pub mod history;
pub mod records;
pub mod replay;

use std::sync::Arc;
use std::time::Duration;

use crate::domain::DomainError;
use crate::domain::commands::{
    CreateContact, DefineCustomField, MatterCommand, OpenMatter, UploadedContent,
};
use crate::domain::contact::{self, Contact};
use crate::domain::custom_fields::{self, CustomField};
use crate::domain::events::{ContactDetails, DomainEvent};
use crate::domain::ids::{MatterNumber, contact_stream, custom_field_stream};
use crate::domain::matter::Matter;
use crate::domain::matter::decide::{self, Lookups};
use crate::log::{Actor, ExpectedVersion, StreamId};
use crate::projection::{Projector, WaitOutcome};
use crate::store::{AppendError, AppendRequest, EventLog};
use crate::vault::Vault;

pub use aggregates::read_stream;
pub use error::ServiceError;
pub use replay::{AsOf, Until};

/// Largest document content accepted in one upload: base64 in an 8 MiB GraphQL body.
pub const MAX_CONTENT_BYTES: usize = 5 * 1024 * 1024;

/// Who asks, and how the append is to be made.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub actor: Actor,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// The version the client last saw; a different current version is a conflict.
    pub expected_version: Option<u64>,
}

impl CommandContext {
    pub fn new(actor: Actor) -> Self {
        CommandContext {
            actor,
            request_id: None,
            idempotency_key: None,
            expected_version: None,
        }
    }
}

/// What a command appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub stream: String,
    pub first_position: u64,
    pub last_position: u64,
    /// The stream's version after the command.
    pub version: u64,
    /// An earlier append with the same idempotency key is what this reports.
    pub replayed: bool,
    /// Whether every healthy projection had applied the events when this returned.
    pub projected: bool,
}

pub struct Service {
    log: Arc<EventLog>,
    projector: Arc<Projector>,
    vault: Arc<Vault>,
    /// Off only in the encryption benchmark's baseline: client data is then written in clear.
    sealing: bool,
    matters: aggregates::FoldCache<Matter>,
    contacts: aggregates::FoldCache<Contact>,
    read_your_writes: Duration,
}

impl Service {
    pub fn new(
        log: Arc<EventLog>,
        projector: Arc<Projector>,
        vault: Arc<Vault>,
        read_your_writes: Duration,
    ) -> Self {
        Service {
            log,
            projector,
            vault,
            sealing: true,
            matters: aggregates::FoldCache::new(Matter::apply_for_decisions),
            contacts: aggregates::FoldCache::new(Contact::apply),
            read_your_writes,
        }
    }

    pub fn log(&self) -> &Arc<EventLog> {
        &self.log
    }

    pub fn projector(&self) -> &Arc<Projector> {
        &self.projector
    }

    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// A service that writes client data unsealed. Only the encryption benchmark uses it, to
    /// measure what sealing costs; nothing that serves a firm may.
    #[doc(hidden)]
    pub fn without_sealing(mut self) -> Self {
        self.sealing = false;
        self
    }

    /// Opens a matter under a new, firm-unique number.
    pub async fn open_matter(
        &self,
        context: &CommandContext,
        command: &OpenMatter,
    ) -> Result<Committed, ServiceError> {
        let number = MatterNumber::parse(&command.matter_number)?;
        let stream = number.stream();
        if let Some(replayed) = self.replayed(context, &stream).await? {
            return Ok(replayed);
        }
        let (version, _) = self.matters.load(&self.log, &self.vault, &stream).await?;
        let events = decide::open(command, version)?;
        match self.append(context, &stream, version, events).await {
            Err(ServiceError::Append(AppendError::VersionConflict { .. })) => {
                Err(DomainError::DuplicateMatterNumber.into())
            }
            other => other,
        }
    }

    /// Applies a command to an existing matter.
    pub async fn change_matter(
        &self,
        context: &CommandContext,
        number: &str,
        command: &MatterCommand,
    ) -> Result<Committed, ServiceError> {
        let stream = MatterNumber::parse(number)?.stream();
        if let Some(replayed) = self.replayed(context, &stream).await? {
            return Ok(replayed);
        }
        let (version, matter) = self.matters.load(&self.log, &self.vault, &stream).await?;
        let matter = matter.ok_or(DomainError::MatterNotFound)?;
        let lookups = self.lookups(command).await?;
        let events = matter.decide(command, &lookups)?;
        self.append(context, &stream, version, events).await
    }

    /// Adds a document (or a version of one) with its bytes. The bytes are stored only once the
    /// matter has accepted the command, so a refused upload leaves nothing behind.
    pub async fn add_document_content(
        &self,
        context: &CommandContext,
        number: &str,
        command: &MatterCommand,
        content: &[u8],
    ) -> Result<Committed, ServiceError> {
        let stream = MatterNumber::parse(number)?.stream();
        if let Some(replayed) = self.replayed(context, &stream).await? {
            return Ok(replayed);
        }
        let described = match command {
            MatterCommand::AddDocument(add) => &add.content,
            MatterCommand::AddDocumentVersion { content, .. } => content,
            _ => return Err(DomainError::invalid("content", "not a document command").into()),
        };
        if described.content_hash != blake3::hash(content).to_hex().as_str() {
            return Err(
                DomainError::invalid("content", "the content does not match its hash").into(),
            );
        }
        let (version, matter) = self.matters.load(&self.log, &self.vault, &stream).await?;
        let matter = matter.ok_or(DomainError::MatterNotFound)?;
        let events = matter.decide(command, &Lookups::default())?;
        self.vault
            .put_content(stream.as_str(), &described.content_hash, content)
            .await?;
        self.append(context, &stream, version, events).await
    }

    /// Creates a contact; returns its id.
    pub async fn create_contact(
        &self,
        context: &CommandContext,
        command: &CreateContact,
    ) -> Result<(String, Committed), ServiceError> {
        if let Some((stream, replayed)) = self.replayed_anywhere(context).await? {
            return match stream.strip_prefix("contact:") {
                Some(contact_id) => Ok((contact_id.to_owned(), replayed)),
                None => Err(AppendError::IdempotencyKeyReused.into()),
            };
        }
        let event = contact::create(command)?;
        let DomainEvent::ContactCreated(created) = &event else {
            return Err(DomainError::ContactNotFound.into());
        };
        let contact_id = created.contact_id.clone();
        let stream = contact_stream(&contact_id)?;
        let committed = self.append(context, &stream, 0, vec![event]).await?;
        Ok((contact_id, committed))
    }

    pub async fn update_contact(
        &self,
        context: &CommandContext,
        contact_id: &str,
        details: &ContactDetails,
    ) -> Result<Committed, ServiceError> {
        let stream = contact_stream(contact_id)?;
        if let Some(replayed) = self.replayed(context, &stream).await? {
            return Ok(replayed);
        }
        let (version, contact) = self.contacts.load(&self.log, &self.vault, &stream).await?;
        let event = contact
            .ok_or(DomainError::ContactNotFound)?
            .update(details)?;
        self.append(context, &stream, version, vec![event]).await
    }

    pub async fn define_custom_field(
        &self,
        context: &CommandContext,
        command: &DefineCustomField,
    ) -> Result<Committed, ServiceError> {
        let stream = custom_field_stream(&command.key)?;
        if let Some(replayed) = self.replayed(context, &stream).await? {
            return Ok(replayed);
        }
        let version = read_stream(&self.log, &self.vault, &stream, 1).await?.len() as u64;
        let event = custom_fields::define(command, version)?;
        match self.append(context, &stream, version, vec![event]).await {
            Err(ServiceError::Append(AppendError::VersionConflict { .. })) => {
                Err(DomainError::DuplicateCustomField.into())
            }
            other => other,
        }
    }

    /// Stores document bytes under their blake3 hash (for callers that store first, such as
    /// imports; the API uses [`Service::add_document_content`]); the returned metadata goes into an
    /// `AddDocument` or `AddDocumentVersion` command.
    pub async fn store_content(
        &self,
        number: &str,
        content: &[u8],
        media_type: &str,
        filename: Option<String>,
        uploaded_by: &str,
    ) -> Result<UploadedContent, ServiceError> {
        if content.len() > MAX_CONTENT_BYTES {
            return Err(ServiceError::ContentTooLarge {
                actual: content.len(),
                limit: MAX_CONTENT_BYTES,
            });
        }
        let stream = MatterNumber::parse(number)?.stream();
        let described = describe_content(content, media_type, filename, uploaded_by)?;
        self.vault
            .put_content(stream.as_str(), &described.content_hash, content)
            .await?;
        Ok(described)
    }

    /// The bytes of a document of matter `number` by content hash, opened; contents stored
    /// before sealing was introduced are read from the plain blob table.
    pub async fn content(
        &self,
        number: &str,
        content_hash: &str,
    ) -> Result<Option<Vec<u8>>, ServiceError> {
        let stream = MatterNumber::parse(number)?.stream();
        match self.vault.content(stream.as_str(), content_hash).await? {
            Some(bytes) => Ok(Some(bytes)),
            None => Ok(self.log.store().get_blob(content_hash).await?),
        }
    }

    /// The matter now, folded from the whole of its stream with the text of its notes (the
    /// state commands are decided on, which is cached, leaves the text out:
    /// [`Matter::apply_for_decisions`]).
    pub async fn matter(&self, number: &str) -> Result<Option<Matter>, ServiceError> {
        let stream = MatterNumber::parse(number)?.stream();
        let events = aggregates::read_stream(&self.log, &self.vault, &stream, 1).await?;
        Ok(Matter::fold(&events))
    }

    /// The matter as it stood at a position or time, replayed from the log (not the read
    /// models): the events up to that point, folded (see [`replay`]).
    pub async fn matter_as_of(
        &self,
        number: &str,
        as_of: AsOf<'_>,
    ) -> Result<Option<Matter>, ServiceError> {
        let stream = MatterNumber::parse(number)?.stream();
        let until = Until::try_from(as_of)?;
        replay::matter_until(self.log.store(), &self.vault, &stream, Some(until)).await
    }

    /// The matter's timeline from the log up to a point (the end without one): each event with
    /// what it changed, and the state they end in. The same replay as [`Service::matter_as_of`].
    pub async fn replay_matter(
        &self,
        number: &str,
        until: Option<Until>,
    ) -> Result<replay::Replay, ServiceError> {
        let stream = MatterNumber::parse(number)?.stream();
        replay::replay(self.log.store(), &self.vault, &stream, until).await
    }

    async fn lookups(&self, command: &MatterCommand) -> Result<Lookups, ServiceError> {
        let mut lookups = Lookups::default();
        match command {
            MatterCommand::AddParty(add) => {
                let stream = contact_stream(&add.contact_id)?;
                lookups.contact_exists = self
                    .contacts
                    .load(&self.log, &self.vault, &stream)
                    .await?
                    .1
                    .is_some();
            }
            MatterCommand::SetCustomField(set) => {
                let stream = custom_field_stream(&set.key)?;
                let events = read_stream(&self.log, &self.vault, &stream, 1).await?;
                lookups.custom_field = CustomField::from_events(&events);
            }
            _ => {}
        }
        Ok(lookups)
    }

    /// The earlier result of a repeated idempotency key on the same stream, if there is one.
    /// (The decision is not taken again: fresh ids would make the retry look different.)
    async fn replayed(
        &self,
        context: &CommandContext,
        stream: &StreamId,
    ) -> Result<Option<Committed>, ServiceError> {
        match self.replayed_anywhere(context).await? {
            Some((recorded, _)) if recorded != stream.as_str() => {
                Err(AppendError::IdempotencyKeyReused.into())
            }
            Some((_, committed)) => Ok(Some(committed)),
            None => Ok(None),
        }
    }

    /// The earlier result of a repeated idempotency key, on whichever stream it was used.
    async fn replayed_anywhere(
        &self,
        context: &CommandContext,
    ) -> Result<Option<(String, Committed)>, ServiceError> {
        let Some(key) = &context.idempotency_key else {
            return Ok(None);
        };
        let found = self
            .log
            .store()
            .load_context(&[], std::slice::from_ref(key))
            .await?;
        let Some(record) = found.idempotency.get(key) else {
            return Ok(None);
        };
        let projected = self.wait(record.last_position).await;
        Ok(Some((
            record.stream.clone(),
            Committed {
                stream: record.stream.clone(),
                first_position: record.first_position,
                last_position: record.last_position,
                version: record.last_version,
                replayed: true,
                projected,
            },
        )))
    }

    async fn append(
        &self,
        context: &CommandContext,
        stream: &StreamId,
        version: u64,
        events: Vec<DomainEvent>,
    ) -> Result<Committed, ServiceError> {
        if let Some(expected) = context.expected_version
            && expected != version
        {
            return Err(DomainError::VersionConflict {
                expected,
                actual: version,
            }
            .into());
        }
        let mut drafts = events
            .iter()
            .map(DomainEvent::to_draft)
            .collect::<Result<Vec<_>, _>>()?;

        // Seal client data before the log hashes and signs it; a new subject's key is stored
        // in the same commit as its first events.
        let pending = match self.sealing {
            true => {
                // A contact's id is minted by its creation: its first events need no lookup.
                let fresh = version == 0 && stream.as_str().starts_with("contact:");
                self.vault
                    .seal_drafts(stream.as_str(), &mut drafts, fresh)
                    .await?
            }
            false => None,
        };
        let mut request = AppendRequest::new(stream.clone(), context.actor.clone(), drafts);
        request.expected_version = if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exactly(version)
        };
        request.request_id = context.request_id.clone();
        request.idempotency_key = context.idempotency_key.clone();
        request.data_keys = pending.iter().map(|key| key.stored.clone()).collect();
        let outcome = match self.log.append(request).await {
            Err(AppendError::IdempotencyKeyReused) => {
                // A concurrent request with the same key won; report its result if it was ours.
                return match self.replayed(context, stream).await? {
                    Some(replayed) => Ok(replayed),
                    None => Err(AppendError::IdempotencyKeyReused.into()),
                };
            }
            other => other?,
        };
        if let Some(key) = pending
            && !outcome.replayed
        {
            self.vault.adopt(key);
        }
        self.projector.notify();
        let projected = self.wait(outcome.last_position).await;
        Ok(Committed {
            stream: outcome.stream,
            first_position: outcome.first_position,
            last_position: outcome.last_position,
            version: outcome.last_version,
            replayed: outcome.replayed,
            projected,
        })
    }

    async fn wait(&self, position: u64) -> bool {
        matches!(
            self.projector
                .wait_for(position, self.read_your_writes)
                .await,
            WaitOutcome::Reached { .. }
        )
    }
}

/// Checks document bytes and describes them (blake3 hash, size) without storing them.
pub fn describe_content(
    content: &[u8],
    media_type: &str,
    filename: Option<String>,
    uploaded_by: &str,
) -> Result<UploadedContent, ServiceError> {
    if content.len() > MAX_CONTENT_BYTES {
        return Err(ServiceError::ContentTooLarge {
            actual: content.len(),
            limit: MAX_CONTENT_BYTES,
        });
    }
    Ok(UploadedContent {
        content_hash: blake3::hash(content).to_hex().to_string(),
        size: content.len() as u64,
        media_type: media_type.to_owned(),
        filename,
        uploaded_by: uploaded_by.to_owned(),
    })
}
