//! The alerts Docket raised, for admins and auditors: `alerts(rule:, subject:, before:,
//! first:)`, newest first, read from the log's `alerts` stream. Reading them is itself
//! recorded (target `alerts`). Live alerts come through the `events` subscription
//! (`types: ["alert.raised"]`) and through webhooks.

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject};

use super::caller::Caller;
use super::errors::{api_error, internal};
use crate::access::policy::{Capability, Decision};
use crate::monitoring::alert_log::{self, AlertRaised};
use crate::service::Service;

/// Most alerts one query returns.
pub const MAX_ALERTS: usize = 500;
/// Alerts returned when `first` is left out.
const DEFAULT_ALERTS: usize = 50;

/// The alerts part of the query root.
#[derive(Default)]
pub struct AlertsQuery;

/// One alert: what tripped, about whom, and where in its source.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "Alert")]
pub struct AlertView {
    /// The position of its `alert.raised` event in the log.
    pub position: u64,
    pub alert_id: String,
    /// `many_matters`, `off_hours`, `failed_logins`, `walled_attempts`, `break_glass`,
    /// `bulk_exports`, `api_client_errors`, `log_integrity`, `access_chain_integrity` or
    /// `checkpoint_mismatch`.
    pub rule: String,
    /// `medium`, `high` or `critical`.
    pub severity: String,
    /// `user:<id>`, `api_client:<id>`, `account:<user id>` or `address:<client address>`.
    pub subject: Option<String>,
    pub count: u64,
    pub threshold: u64,
    pub window_secs: u64,
    pub first_at: String,
    pub last_at: String,
    pub matters: Vec<String>,
    /// `access_chain`, `log` or `verifier`.
    pub source: String,
    /// The position in `source` of the last observation counted.
    pub through: Option<u64>,
    pub summary: String,
}

impl AlertView {
    fn of(position: u64, alert: AlertRaised) -> Self {
        AlertView {
            position,
            alert_id: alert.alert_id,
            rule: alert.rule,
            severity: alert.severity.as_str().to_owned(),
            subject: alert.subject,
            count: alert.count,
            threshold: alert.threshold,
            window_secs: alert.window_secs,
            first_at: alert.first_at,
            last_at: alert.last_at,
            matters: alert.matters,
            source: alert.source.as_str().to_owned(),
            through: alert.through,
            summary: alert.summary,
        }
    }
}

#[Object]
impl AlertsQuery {
    /// Alerts, newest first: only those of `rule` and about `subject` when given, before the
    /// log position `before` (for the next page), at most `first` (default 50, at most 500).
    /// Admins and auditors.
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        rule: Option<String>,
        subject: Option<String>,
        before: Option<u64>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<AlertView>> {
        let caller = Caller::of(ctx)?;
        caller.require(Capability::ReadAlerts)?;
        let first = match first {
            None => DEFAULT_ALERTS,
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_ALERTS).contains(n))
                .ok_or_else(|| {
                    api_error("BAD_USER_INPUT", format!("first must be 1 to {MAX_ALERTS}"))
                })?,
        };
        caller.note(
            None,
            "alerts",
            None,
            Some("alerts"),
            Decision::Allowed(Capability::ReadAlerts.as_str()),
        );
        caller.flush("query alerts").await?;
        let service = ctx.data::<Arc<Service>>()?;
        let alerts = alert_log::read(service.log(), 1).await.map_err(internal)?;
        Ok(alerts
            .into_iter()
            .rev()
            .filter(|(position, _)| before.is_none_or(|before| *position < before))
            .filter(|(_, alert)| rule.as_deref().is_none_or(|rule| alert.rule == rule))
            .filter(|(_, alert)| {
                subject
                    .as_deref()
                    .is_none_or(|subject| alert.subject.as_deref() == Some(subject))
            })
            .take(first)
            .map(|(position, alert)| AlertView::of(position, alert))
            .collect())
    }
}
