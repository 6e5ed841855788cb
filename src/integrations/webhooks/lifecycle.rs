//! An endpoint's life after registration: disabled by an administrator or after failures
//! (with the alert), enabled again, removed, and single deliveries replayed. Each change is
//! recorded in the log; one whose event cannot be appended is undone.

use super::db::{EndpointStatus, now_ms};
use super::events;
use super::secrets::subject;
use super::{Delivery, Endpoint, WebhookError, Webhooks};
use crate::log::Actor;
use crate::log::time::format_timestamp;

impl Webhooks {
    /// Stops deliveries to an endpoint (an administrator's decision).
    pub async fn disable(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        endpoint_id: &str,
    ) -> Result<Endpoint, WebhookError> {
        let endpoint = self.live_endpoint(endpoint_id).await?;
        let id = endpoint.endpoint_id.as_str();
        let reason = "administrator";
        let active = [EndpointStatus::Active];
        let disabled = EndpointStatus::Disabled;
        if !self
            .db
            .set_status(id, &active, disabled, Some(reason), now_ms())
            .await?
        {
            return Err(WebhookError::Conflict("the endpoint is disabled already"));
        }
        let event = events::EndpointDisabled {
            endpoint_id: id.to_owned(),
            reason: reason.to_owned(),
            delivery_id: None,
            position: None,
        };
        if let Err(error) = events::append(
            &self.parts.log,
            actor,
            request_id,
            events::ENDPOINT_DISABLED,
            &event,
        )
        .await
        {
            let _ = self
                .db
                .set_status(
                    id,
                    &[disabled],
                    EndpointStatus::Active,
                    None,
                    endpoint.updated_at,
                )
                .await;
            return Err(error);
        }
        self.endpoints_changed.notify_one();
        self.live_endpoint(id).await
    }

    /// Disables an endpoint because of what a delivery came to (`gone` or
    /// `retries_exhausted`), records it in the log and raises the alert.
    pub(super) async fn disable_after_failure(
        &self,
        endpoint_id: &str,
        reason: &str,
        delivery: (&str, u64),
    ) {
        let active = [EndpointStatus::Active];
        let disabled = EndpointStatus::Disabled;
        match self
            .db
            .set_status(endpoint_id, &active, disabled, Some(reason), now_ms())
            .await
        {
            Ok(true) => self.endpoints_changed.notify_one(),
            Ok(false) => return,
            Err(error) => {
                tracing::error!(%error, endpoint_id, "a failing webhook endpoint could not be disabled");
                return;
            }
        }
        tracing::warn!(
            endpoint_id,
            reason,
            delivery_id = delivery.0,
            position = delivery.1,
            "webhook endpoint disabled; enable it once its receiver is fixed"
        );
        let event = events::EndpointDisabled {
            endpoint_id: endpoint_id.to_owned(),
            reason: reason.to_owned(),
            delivery_id: Some(delivery.0.to_owned()),
            position: Some(delivery.1),
        };
        let system = Actor::system();
        if let Err(error) = events::append(
            &self.parts.log,
            &system,
            None,
            events::ENDPOINT_DISABLED,
            &event,
        )
        .await
        {
            tracing::error!(%error, endpoint_id, "the disabling of a webhook endpoint was not recorded");
        }
    }

    /// Resumes deliveries to a disabled endpoint: the events that arrived meanwhile follow,
    /// and with `retry_failed` the deliveries that had failed are queued again.
    pub async fn enable(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        endpoint_id: &str,
        retry_failed: bool,
    ) -> Result<Endpoint, WebhookError> {
        let endpoint = self.live_endpoint(endpoint_id).await?;
        let id = endpoint.endpoint_id.as_str();
        let now = now_ms();
        let disabled = [EndpointStatus::Disabled];
        if !self
            .db
            .set_status(id, &disabled, EndpointStatus::Active, None, now)
            .await?
        {
            return Err(WebhookError::Conflict("the endpoint is enabled already"));
        }
        let requeued = match retry_failed {
            true => self.db.requeue_failed(id, now).await?,
            false => 0,
        };
        let event = events::EndpointEnabled {
            endpoint_id: id.to_owned(),
            requeued,
        };
        if let Err(error) = events::append(
            &self.parts.log,
            actor,
            request_id,
            events::ENDPOINT_ENABLED,
            &event,
        )
        .await
        {
            let reason = endpoint.disabled_reason.as_deref();
            let active = [EndpointStatus::Active];
            let _ = self
                .db
                .set_status(
                    id,
                    &active,
                    EndpointStatus::Disabled,
                    reason,
                    endpoint.updated_at,
                )
                .await;
            return Err(error);
        }
        self.endpoints_changed.notify_one();
        self.queued.notify_one();
        self.live_endpoint(id).await
    }

    /// Removes an endpoint: nothing more is sent, its pending deliveries are cancelled and its
    /// keys destroyed (the vault erases its subject). Its delivery log stays.
    pub async fn remove(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        endpoint_id: &str,
    ) -> Result<(), WebhookError> {
        let endpoint = self.live_endpoint(endpoint_id).await?;
        let id = endpoint.endpoint_id.as_str();
        let now = now_ms();
        let live = [EndpointStatus::Active, EndpointStatus::Disabled];
        let disabled = EndpointStatus::Disabled;
        // Stop sending first, so nothing goes out between the decision and its record.
        self.db
            .set_status(id, &live, disabled, Some("removing"), now)
            .await?;
        let event = events::EndpointRemoved {
            endpoint_id: id.to_owned(),
        };
        if let Err(error) = events::append(
            &self.parts.log,
            actor,
            request_id,
            events::ENDPOINT_REMOVED,
            &event,
        )
        .await
        {
            let reason = endpoint.disabled_reason.as_deref();
            let _ = self
                .db
                .set_status(
                    id,
                    &[disabled],
                    endpoint.status,
                    reason,
                    endpoint.updated_at,
                )
                .await;
            return Err(error);
        }
        self.db.remove_endpoint(id, now).await?;
        self.endpoints_changed.notify_one();
        self.secrets.clear();
        let erased_at = format_timestamp(chrono::Utc::now());
        self.parts
            .vault
            .erase(&subject(id), &erased_at)
            .await
            .map_err(|error| WebhookError::internal("the vault", error))?;
        Ok(())
    }

    /// Sends a delivery again, with the same `webhook-id`, as soon as its endpoint is active.
    pub async fn replay(&self, delivery_id: &str) -> Result<Delivery, WebhookError> {
        let delivery_id = delivery_id.trim();
        let not_found = WebhookError::NotFound {
            what: "webhook delivery",
        };
        let delivery = self
            .db
            .delivery(delivery_id)
            .await?
            .ok_or(not_found.clone())?;
        self.live_endpoint(&delivery.endpoint_id).await?;
        if !self.db.requeue(delivery_id, now_ms()).await? {
            return Err(not_found);
        }
        self.queued.notify_one();
        self.db.delivery(delivery_id).await?.ok_or(not_found)
    }
}
