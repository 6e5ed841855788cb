//! Groups and ethical walls: setting a group's members, erecting and lifting walls, and the
//! `walls` list for admins and auditors. A wall applies to the next request of every session.

use std::sync::Arc;

use async_graphql::{Context, InputObject, Object, SimpleObject};

use super::sign_in::DonePayload;
use super::views::WallView;
use super::{administrator, event_request_id, identity_error, record_change};
use crate::access::policy::{Capability, Decision};
use crate::api::graphql::caller::Caller;
use crate::api::graphql::errors::UserError;
use crate::identity::Identity;
use crate::identity::admin::WallSpec;

/// The wall list.
#[derive(Default)]
pub struct WallsQuery;

/// Group and wall administration.
#[derive(Default)]
pub struct WallsMutation;

/// What a new wall screens: at least one user or group, from at least one matter or client.
#[derive(InputObject)]
pub struct ErectWallInput {
    pub name: String,
    pub reason: String,
    /// User (or API client) ids.
    #[graphql(default)]
    pub screened_users: Vec<String>,
    /// Group ids (see `setGroup`).
    #[graphql(default)]
    pub screened_groups: Vec<String>,
    /// Matter numbers.
    #[graphql(default)]
    pub matters: Vec<String>,
    /// Contact ids: every matter where one of them is a client is screened.
    #[graphql(default)]
    pub clients: Vec<String>,
}

#[derive(SimpleObject)]
pub struct WallPayload {
    pub wall_id: Option<String>,
    pub wall: Option<WallView>,
    pub user_errors: Vec<UserError>,
}

#[Object]
impl WallsQuery {
    /// Every wall in force. For admins and auditors (the guard's rule is the ReadDirectory
    /// capability, which exactly those two roles hold, without step-up).
    async fn walls(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WallView>> {
        let caller = Caller::of(ctx)?;
        caller.note(
            None,
            "wall",
            None,
            Some("wall.details"),
            Decision::Allowed(Capability::ReadDirectory.as_str()),
        );
        Ok(caller
            .directory
            .walls
            .values()
            .map(WallView::from)
            .collect())
    }
}

#[Object]
impl WallsMutation {
    /// Sets a group's whole membership, creating the group if it is new. Walls that screen the
    /// group screen its new members from their next request on.
    async fn set_group(
        &self,
        ctx: &Context<'_>,
        group_id: String,
        name: String,
        members: Vec<String>,
    ) -> async_graphql::Result<DonePayload> {
        let capability = Capability::AdministerWalls;
        let (caller, principal) = administrator(ctx, capability)?;
        let identity = ctx.data::<Arc<Identity>>()?;
        record_change(
            caller,
            capability,
            "group",
            Some(&group_id),
            "group.members",
            "setGroup",
        )
        .await?;
        let result = identity
            .set_group(
                &principal.actor,
                event_request_id(caller),
                &group_id,
                &name,
                &members,
            )
            .await;
        Ok(match result {
            Ok(()) => DonePayload::done(),
            Err(error) => DonePayload::failed(identity_error(error)?),
        })
    }

    /// Erects an ethical wall. It overrides every other rule (roles, teams, break-glass) from
    /// the next request of every session on.
    async fn erect_wall(
        &self,
        ctx: &Context<'_>,
        input: ErectWallInput,
    ) -> async_graphql::Result<WallPayload> {
        let capability = Capability::AdministerWalls;
        let (caller, principal) = administrator(ctx, capability)?;
        let identity = ctx.data::<Arc<Identity>>()?;
        record_change(
            caller,
            capability,
            "wall",
            None,
            "wall.details",
            "erectWall",
        )
        .await?;
        let spec = WallSpec {
            name: input.name,
            reason: input.reason,
            screened_users: input.screened_users,
            screened_groups: input.screened_groups,
            matters: input.matters,
            clients: input.clients,
        };
        let result = identity
            .erect_wall(&principal.actor, event_request_id(caller), &spec)
            .await;
        Ok(match result {
            Ok(wall_id) => {
                // The id exists only now: the record names it beside the decision.
                caller.note(
                    None,
                    "wall",
                    Some(&wall_id),
                    Some("wall.details"),
                    Decision::Allowed(capability.as_str()),
                );
                WallPayload {
                    wall: identity.directory().walls.get(&wall_id).map(WallView::from),
                    wall_id: Some(wall_id),
                    user_errors: Vec::new(),
                }
            }
            Err(error) => WallPayload {
                wall_id: None,
                wall: None,
                user_errors: vec![identity_error(error)?],
            },
        })
    }

    /// Lifts a wall; what it screened is reachable again by the ordinary rules.
    async fn lift_wall(
        &self,
        ctx: &Context<'_>,
        wall_id: String,
        reason: String,
    ) -> async_graphql::Result<DonePayload> {
        let capability = Capability::AdministerWalls;
        let (caller, principal) = administrator(ctx, capability)?;
        let identity = ctx.data::<Arc<Identity>>()?;
        record_change(
            caller,
            capability,
            "wall",
            Some(&wall_id),
            "wall.details",
            "liftWall",
        )
        .await?;
        let result = identity
            .lift_wall(
                &principal.actor,
                event_request_id(caller),
                &wall_id,
                &reason,
            )
            .await;
        Ok(match result {
            Ok(()) => DonePayload::done(),
            Err(error) => DonePayload::failed(identity_error(error)?),
        })
    }
}
