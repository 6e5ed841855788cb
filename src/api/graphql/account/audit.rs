//! `accessRecords`: the auditors' query over the signed chain of access records, newest first,
//! filtered by principal, matter, decision and time, paged by chain position. Reading them is
//! itself recorded.

use async_graphql::{Context, Object, SimpleObject};
use serde::Serialize;

use super::recordable;
use super::values::AccessDecisionValue;
use crate::access::chain::AccessError;
use crate::access::index::{AccessQuery, AccessRow, MAX_QUERY_LIMIT};
use crate::access::policy::{Capability, Decision};
use crate::api::graphql::caller::Caller;
use crate::api::graphql::errors::api_error;

/// Records on a page unless `first` says otherwise.
pub const DEFAULT_RECORDS: u32 = 100;

/// The auditors' query over access records.
#[derive(Default)]
pub struct AuditQuery;

/// One decision of one access record.
#[derive(SimpleObject, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct AccessRecordEntry {
    /// The record's position in the access chain.
    pub position: u64,
    /// The entry's place in its record, from 0.
    pub entry: u32,
    pub recorded_at: String,
    /// `user:<id>`, `api_client:<id>` or `anonymous`.
    pub principal: String,
    /// The public id of the session, if any (never its token).
    pub session: Option<String>,
    /// What was asked, e.g. `graphql (unnamed)` or `mutation addUser`.
    pub operation: String,
    pub request_id: Option<String>,
    pub client_address: Option<String>,
    pub matter: Option<String>,
    /// What kind of thing: `matter`, `user`, `wall`, `capability`, `alert`, ...
    pub target: String,
    pub target_id: Option<String>,
    /// The field groups touched (names, never values).
    pub fields: Vec<String>,
    pub decision: AccessDecisionValue,
    /// Why, as a short code: `team_member`, `walled`, `break_glass`, `role`, ...
    pub reason: String,
}

impl From<AccessRow> for AccessRecordEntry {
    fn from(row: AccessRow) -> Self {
        AccessRecordEntry {
            position: row.position,
            entry: row.entry,
            recorded_at: row.recorded_at,
            principal: row.principal,
            session: row.session,
            operation: row.operation,
            request_id: row.request_id,
            client_address: row.client_address,
            matter: row.matter,
            target: row.target,
            target_id: row.target_id,
            fields: row.fields,
            decision: row.decision.into(),
            reason: row.reason,
        }
    }
}

/// A page of access records (every matching entry of up to `first` records).
#[derive(SimpleObject)]
pub struct AccessRecordPage {
    pub entries: Vec<AccessRecordEntry>,
    /// Pass as `before` for the next (older) page; null when this page is the last.
    pub next_before: Option<u64>,
}

/// An access-chain failure as a GraphQL error; its message never carries record content.
pub(super) fn access_error(error: AccessError) -> async_graphql::Error {
    match &error {
        AccessError::InvalidQuery(invalid) => api_error(error.code(), invalid.to_string()),
        AccessError::IndexBehind => api_error(error.code(), error.to_string()),
        _ => {
            tracing::error!(%error, "the access records could not be read");
            api_error(
                error.code(),
                "the access records could not be read; try again",
            )
        }
    }
}

/// The rows of one page and the `before` of the next, if there is one: a page holding
/// `limit` records may have older ones behind it.
pub(super) async fn page(
    caller: &Caller,
    query: &AccessQuery,
) -> async_graphql::Result<(Vec<AccessRow>, Option<u64>)> {
    let rows = caller.access.query(query).await.map_err(access_error)?;
    let mut positions: Vec<u64> = rows.iter().map(|row| row.position).collect();
    positions.sort_unstable();
    positions.dedup();
    let full = u32::try_from(positions.len()).unwrap_or(u32::MAX) >= query.limit;
    let next = if full {
        positions.first().copied()
    } else {
        None
    };
    Ok((rows, next))
}

#[Object]
impl AuditQuery {
    /// Access records, newest first: every decision about client data and every
    /// administrative change, with who, when, what and why. For auditors. All filters given
    /// must hold; `from` and `to` are RFC 3339 (`to` exclusive); `first` counts records (1 to
    /// 500, default 100); `before` is the previous page's `nextBefore`.
    #[graphql(complexity = 200)]
    #[allow(clippy::too_many_arguments)]
    async fn access_records(
        &self,
        ctx: &Context<'_>,
        principal: Option<String>,
        matter: Option<String>,
        decision: Option<AccessDecisionValue>,
        from: Option<String>,
        to: Option<String>,
        before: Option<u64>,
        first: Option<u32>,
    ) -> async_graphql::Result<AccessRecordPage> {
        let caller = Caller::of(ctx)?;
        let matter = matter.map(|number| number.trim().to_ascii_uppercase());
        caller.note(
            matter.as_deref().and_then(recordable),
            "access_records",
            principal.as_deref().and_then(recordable),
            Some("access.records"),
            Decision::Allowed(Capability::ReadAccessRecords.as_str()),
        );
        let limit = first.unwrap_or(DEFAULT_RECORDS);
        if !(1..=MAX_QUERY_LIMIT).contains(&limit) {
            return Err(api_error(
                "INVALID_ARGUMENT",
                format!("first must be between 1 and {MAX_QUERY_LIMIT}"),
            ));
        }
        let query = AccessQuery {
            principal: principal.map(|p| p.trim().to_owned()),
            matter,
            decision: decision.map(Into::into),
            from,
            to,
            before_position: before,
            limit,
        };
        let (rows, next_before) = page(caller, &query).await?;
        Ok(AccessRecordPage {
            entries: rows.into_iter().map(AccessRecordEntry::from).collect(),
            next_before,
        })
    }
}
