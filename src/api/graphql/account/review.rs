//! The access review: for every user, their role, status, last login, whether they have been
//! idle for 90 days or more, the walls that screen them, and the matters they can reach and
//! why, as the policy decides it today; and the same review with the access records of a
//! period as one JSON document to download. Both are for auditors and both are recorded.
//!
//! "Matters they can reach" is computed with the policy itself: the SQL form of the user's
//! scope ([`matter_scope`] and [`crate::access::scope::MatterScope::restrict`]) lists the
//! matters, and [`policy::matter_access`] gives each its reason. Matters the reviewing auditor
//! is screened from by a wall are left out of the review they see.

use std::collections::HashMap;

use async_graphql::{Context, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::audit::{AccessRecordEntry, page};
use super::values::ReachValue;
use super::views::{FirmPolicyView, UserView, WallView};
use crate::access::index::{AccessQuery, MAX_QUERY_LIMIT};
use crate::access::policy::{self, Capability, Decision, MatterAccess, MatterFacts};
use crate::access::scope::matter_scope;
use crate::api::graphql::caller::{Caller, fresh_matter_facts};
use crate::api::graphql::errors::{api_error, internal};
use crate::identity::directory::User;
use crate::identity::principal::Principal;
use crate::log::time::normalise_timestamp;
use crate::projection::ReadDb;
use crate::read::{Bind, Sql};

/// Most matters listed per user; `mattersTruncated` says when there are more.
pub const MATTERS_PER_USER: usize = 500;
/// A user who has not logged in for this many days (or was added this long ago and never
/// has) is idle.
pub const IDLE_DAYS: i64 = 90;
/// Most access records in one export; `truncated` and `nextBefore` say when there are more.
pub const EXPORT_MAX_RECORDS: usize = 10_000;

/// The access review and its export.
#[derive(Default)]
pub struct ReviewQuery;

/// A matter a user can reach, how far, and why.
#[derive(SimpleObject, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ReachableMatter {
    pub number: String,
    pub reach: ReachValue,
    /// The policy's reason: `team_member`, `auditor`, `break_glass`, `firm_visible`,
    /// `partner_policy`.
    pub reason: String,
    /// Whether privileged notes are reachable.
    pub privileged: bool,
    /// Whether the user may change the matter (team members only).
    pub can_change: bool,
}

/// One user's access as it stands.
#[derive(SimpleObject, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct AccessReviewUser {
    pub user: UserView,
    /// No login for 90 days or more (counted from when the user was added if they never
    /// logged in).
    pub idle: bool,
    /// The walls that screen the user, directly or through a group.
    pub walls: Vec<WallView>,
    /// The matters the user can reach, by number (at most 500).
    pub matters: Vec<ReachableMatter>,
    /// Whether the user can reach more matters than are listed.
    pub matters_truncated: bool,
    /// Every break-glass opening the user made, expired ones included, newest first.
    pub break_glass: Vec<BreakGlassOpening>,
}

/// A break-glass opening, for review.
#[derive(SimpleObject, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct BreakGlassOpening {
    pub matter_number: String,
    pub reason: String,
    pub opened_at: String,
    pub expires_at: String,
    /// The log position of the `access.break_glass_opened` event.
    pub position: u64,
}

/// What the review knows of one matter: its facts, and whether the reviewer may see it at all.
struct Known {
    facts: MatterFacts,
    reviewer_sees: bool,
}

fn idle(user: &User, now: DateTime<Utc>) -> bool {
    let last = user.last_login_at.as_deref().unwrap_or(&user.added_at);
    match DateTime::parse_from_rfc3339(last) {
        Ok(at) => (now - at.with_timezone(&Utc)).num_days() >= IDLE_DAYS,
        // An unreadable time is flagged for review rather than hidden.
        Err(_) => true,
    }
}

fn reachable(number: &str, access: MatterAccess) -> Option<ReachableMatter> {
    let (reach, reason, privileged, can_change) = match access {
        MatterAccess::Content {
            reason,
            privileged,
            member,
        } => (ReachValue::Content, reason, privileged, member),
        MatterAccess::Metadata { reason } => (ReachValue::Metadata, reason, false, false),
        MatterAccess::None { .. } => return None,
    };
    Some(ReachableMatter {
        number: number.to_owned(),
        reach,
        reason: reason.to_owned(),
        privileged,
        can_change,
    })
}

/// The numbers of the matters `who` can see anything of, by number, one more than listed.
async fn scoped_numbers(
    caller: &Caller,
    db: &ReadDb,
    who: &Principal,
) -> async_graphql::Result<Vec<String>> {
    let scope = matter_scope(&caller.directory, who, &caller.now_text);
    let mut sql = Sql::new("SELECT number FROM rm_matters WHERE 1 = 1");
    scope.restrict(&mut sql, "number");
    let limit = sql.bind(Bind::Int(
        i64::try_from(MATTERS_PER_USER + 1).unwrap_or(501),
    ));
    sql.text
        .push_str(&format!(" ORDER BY number LIMIT {limit}"));
    let rows: Vec<(String,)> = sql.fetch_all(db.pool()).await.map_err(internal)?;
    Ok(rows.into_iter().map(|(number,)| number).collect())
}

/// Loads the facts of the matters not yet known (read afresh, once per matter per review).
async fn learn(
    caller: &Caller,
    db: &ReadDb,
    reviewer: &Principal,
    numbers: &[String],
    known: &mut HashMap<String, Known>,
) -> async_graphql::Result<()> {
    let missing: Vec<String> = numbers
        .iter()
        .filter(|number| !known.contains_key(*number))
        .cloned()
        .collect();
    for chunk in missing.chunks(MATTERS_PER_USER) {
        let rows = crate::read::matters::matters_by_number(db.pool(), chunk)
            .await
            .map_err(internal)?;
        for row in rows {
            let facts = fresh_matter_facts(db, &row).await?;
            let reviewer_sees =
                policy::matter_access(&caller.directory, reviewer, &facts, &caller.now_text)
                    .is_visible();
            known.insert(
                row.number.clone(),
                Known {
                    facts,
                    reviewer_sees,
                },
            );
        }
    }
    Ok(())
}

/// The review of every user of the caller's directory.
pub(super) async fn review(
    caller: &Caller,
    db: &ReadDb,
) -> async_graphql::Result<Vec<AccessReviewUser>> {
    let reviewer = caller.signed()?;
    let directory = &caller.directory;
    let mut known: HashMap<String, Known> = HashMap::new();
    let mut users = Vec::with_capacity(directory.users.len());
    for user in directory.users.values() {
        let who = Principal::user(&user.user_id)
            .map_err(|_| api_error("INTERNAL", "the request could not be completed"))?;
        let mut numbers = scoped_numbers(caller, db, &who).await?;
        let matters_truncated = numbers.len() > MATTERS_PER_USER;
        numbers.truncate(MATTERS_PER_USER);
        learn(caller, db, reviewer, &numbers, &mut known).await?;
        let matters = numbers
            .iter()
            .filter_map(|number| known.get(number))
            .filter(|matter| matter.reviewer_sees)
            .filter_map(|matter| {
                let access =
                    policy::matter_access(directory, &who, &matter.facts, &caller.now_text);
                reachable(&matter.facts.number, access)
            })
            .collect();
        users.push(AccessReviewUser {
            user: UserView::from(user),
            idle: idle(user, caller.now),
            walls: directory
                .walls_screening(&user.user_id)
                .map(WallView::from)
                .collect(),
            matters,
            matters_truncated,
            break_glass: directory
                .break_glass
                .iter()
                .rev()
                .filter(|glass| glass.user_id == user.user_id)
                .map(|glass| BreakGlassOpening {
                    matter_number: glass.matter_number.clone(),
                    reason: glass.reason.clone(),
                    opened_at: glass.opened_at.clone(),
                    expires_at: glass.expires_at.clone(),
                    position: glass.position,
                })
                .collect(),
        });
    }
    Ok(users)
}

/// Every access record of the period, newest first, up to [`EXPORT_MAX_RECORDS`]; with the
/// `before` to continue from when there are more.
async fn records_of_period(
    caller: &Caller,
    from: &str,
    to: &str,
) -> async_graphql::Result<(Vec<AccessRecordEntry>, Option<u64>)> {
    let mut entries = Vec::new();
    let mut records = 0;
    let mut before = None;
    loop {
        let query = AccessQuery {
            principal: None,
            matter: None,
            decision: None,
            from: Some(from.to_owned()),
            to: Some(to.to_owned()),
            before_position: before,
            limit: MAX_QUERY_LIMIT,
        };
        let (rows, next) = page(caller, &query).await?;
        let mut positions: Vec<u64> = rows.iter().map(|row| row.position).collect();
        positions.dedup();
        records += positions.len();
        entries.extend(rows.into_iter().map(AccessRecordEntry::from));
        match next {
            Some(next) if records < EXPORT_MAX_RECORDS => before = Some(next),
            other => return Ok((entries, other)),
        }
    }
}

#[Object]
impl ReviewQuery {
    /// The access review: every user with their role, status, last login, whether they are
    /// idle (no login for 90 days or more), the walls that screen them, and the matters they
    /// can reach today and why (at most 500 per user). For auditors; reading it is recorded.
    #[graphql(complexity = 500)]
    async fn access_review(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<AccessReviewUser>> {
        let caller = Caller::of(ctx)?;
        caller.note(
            None,
            "access_review",
            None,
            Some("access.review"),
            Decision::Allowed(Capability::AccessReview.as_str()),
        );
        review(caller, ctx.data::<ReadDb>()?).await
    }

    /// The access review and every access record of a period (`from` inclusive, `to`
    /// exclusive, RFC 3339; at most 10,000 records) as one JSON document to download. For
    /// auditors; reading it is recorded.
    #[graphql(complexity = 1000)]
    async fn access_review_export(
        &self,
        ctx: &Context<'_>,
        from: String,
        to: String,
    ) -> async_graphql::Result<Json<serde_json::Value>> {
        let caller = Caller::of(ctx)?;
        let principal = caller.require(Capability::ReadAccessRecords)?;
        let (Some(from), Some(to)) = (normalise_timestamp(&from), normalise_timestamp(&to)) else {
            return Err(api_error(
                "INVALID_ARGUMENT",
                "from and to must be RFC 3339 times",
            ));
        };
        caller.note(
            None,
            "access_review",
            None,
            Some("access.review"),
            Decision::Allowed(Capability::AccessReview.as_str()),
        );
        caller.note(
            None,
            "access_records",
            None,
            Some("access.records"),
            Decision::Allowed(Capability::ReadAccessRecords.as_str()),
        );
        let users = review(caller, ctx.data::<ReadDb>()?).await?;
        let (records, next_before) = records_of_period(caller, &from, &to).await?;
        let walls: Vec<WallView> = caller
            .directory
            .walls
            .values()
            .map(WallView::from)
            .collect();
        Ok(Json(json!({
            "format": "docket.access_review.v1",
            "generatedAt": caller.now_text,
            "generatedBy": principal.actor.as_str(),
            "requestId": caller.request_id,
            "period": { "from": from, "to": to },
            "firmPolicy": FirmPolicyView::from(caller.directory.policy),
            "users": users,
            "walls": walls,
            "accessRecords": {
                "entries": records,
                "truncated": next_before.is_some(),
                "nextBefore": next_before,
            },
        })))
    }
}
