//! Freezing a matter for an incident, and unfreezing it.
//!
//! A frozen matter is evidence: its decide step refuses every command but unfreezing
//! (`MATTER_FROZEN`), whoever sends it (a user, an API client, a document upload), and records
//! management refuses to erase it (by request or by retention). Reading it is unaffected. Both
//! acts are events of the matter's own stream, decided against its current version like every
//! other command, so a freeze can never interleave with a change decided before it.

use super::{CommandContext, Committed, Service, ServiceError};
use crate::domain::DomainError;
use crate::domain::ids::MatterNumber;
use crate::domain::matter::Matter;

impl Service {
    /// Freezes matter `number` (`matter.frozen`, with the reason).
    pub async fn freeze_matter(
        &self,
        context: &CommandContext,
        number: &str,
        reason: &str,
    ) -> Result<Committed, ServiceError> {
        self.decide_freeze(context, number, |matter| matter.freeze(reason))
            .await
    }

    /// Unfreezes matter `number` (`matter.unfrozen`, with the reason).
    pub async fn unfreeze_matter(
        &self,
        context: &CommandContext,
        number: &str,
        reason: &str,
    ) -> Result<Committed, ServiceError> {
        self.decide_freeze(context, number, |matter| matter.unfreeze(reason))
            .await
    }

    /// Whether matter `number` exists and is frozen now (from its stream, not a read model).
    pub async fn matter_frozen(&self, number: &MatterNumber) -> Result<bool, ServiceError> {
        let stream = number.stream();
        let (_, matter) = self.matters.load(&self.log, &self.vault, &stream).await?;
        Ok(matter.is_some_and(|matter| matter.frozen))
    }

    async fn decide_freeze(
        &self,
        context: &CommandContext,
        number: &str,
        decide: impl Fn(&Matter) -> Result<Vec<crate::domain::DomainEvent>, DomainError>,
    ) -> Result<Committed, ServiceError> {
        let stream = MatterNumber::parse(number)?.stream();
        if let Some(replayed) = self.replayed(context, &stream).await? {
            return Ok(replayed);
        }
        let (version, matter) = self.matters.load(&self.log, &self.vault, &stream).await?;
        let matter = matter.ok_or(DomainError::MatterNotFound)?;
        let events = decide(&matter)?;
        self.append(context, &stream, version, events).await
    }
}
