//! Changes to the directory: users and roles, groups, walls, break-glass openings, API clients
//! and the firm's policy. The callers (GraphQL resolvers, the CLI) have already asked the policy
//! whether the actor may make the change; these functions check that the change makes sense
//! against the directory and record it as events.

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use super::directory::UserStatus;
use super::secret::token::{self, ENROLMENT_PREFIX};
use super::{Identity, IdentityError};
use crate::domain::DomainEvent;
use crate::domain::identity::*;
use crate::log::Actor;
use crate::log::envelope::is_identifier;
use crate::log::time::format_timestamp;

/// A user just added, with the one-time enrolment token to hand to them (shown once).
pub struct AddedUser {
    pub user_id: String,
    pub enrolment_token: Zeroizing<String>,
    pub expires_at: DateTime<Utc>,
}

/// What a new wall screens.
#[derive(Debug, Clone, Default)]
pub struct WallSpec {
    pub name: String,
    pub reason: String,
    pub screened_users: Vec<String>,
    pub screened_groups: Vec<String>,
    pub matters: Vec<String>,
    pub clients: Vec<String>,
}

pub(super) fn text(field: &'static str, value: &str, max: usize) -> Result<String, IdentityError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(IdentityError::invalid(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

fn email(value: &str) -> Result<String, IdentityError> {
    let value = value.trim().to_lowercase();
    let valid = value.len() <= 254
        && !value.chars().any(char::is_whitespace)
        && value
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if valid {
        Ok(value)
    } else {
        Err(IdentityError::invalid("email", "is not an email address"))
    }
}

/// An id derived from an email's local part: lower-case letters, digits, `.`, `_`, `-`.
fn id_from_email(email: &str) -> String {
    let local = email.split('@').next().unwrap_or_default();
    let id: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(60)
        .collect();
    if id.is_empty() { "user".to_owned() } else { id }
}

pub(super) fn identifier(field: &'static str, value: &str) -> Result<String, IdentityError> {
    let value = value.trim();
    if value.len() <= 128 && is_identifier(value) {
        Ok(value.to_owned())
    } else {
        Err(IdentityError::invalid(
            field,
            "use 1-128 of A-Z a-z 0-9 . _ @ -",
        ))
    }
}

fn areas(values: &[String]) -> Result<Vec<String>, IdentityError> {
    let mut areas = Vec::new();
    for value in values {
        let area = text("practiceAreas", value, 100)?;
        if !areas.contains(&area) {
            areas.push(area);
        }
    }
    if areas.len() > 50 {
        return Err(IdentityError::invalid("practiceAreas", "at most 50"));
    }
    Ok(areas)
}

impl Identity {
    /// Adds a user and issues their enrolment token. `user_id` defaults to the email's local
    /// part (made unique).
    #[allow(clippy::too_many_arguments)] // the actor, the request, and the user's five facts
    pub async fn add_user(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        email_address: &str,
        name: &str,
        role: Role,
        practice_areas: &[String],
        user_id: Option<&str>,
    ) -> Result<AddedUser, IdentityError> {
        let email = email(email_address)?;
        let name = text("name", name, 300)?;
        let practice_areas = areas(practice_areas)?;
        let requested = user_id.map(|id| identifier("id", id)).transpose()?;
        let expires_at = Utc::now() + self.sessions.enrolment;
        let chosen = std::sync::Mutex::new(String::new());
        self.change(actor, request_id, |directory| {
            if directory.user_by_email(&email).is_some() {
                return Err(IdentityError::EmailTaken);
            }
            let taken =
                |id: &str| directory.user(id).is_some() || directory.api_clients.contains_key(id);
            let user_id = match &requested {
                Some(id) if taken(id) => return Err(IdentityError::IdTaken),
                Some(id) => id.clone(),
                None => {
                    let base = id_from_email(&email);
                    let mut candidate = base.clone();
                    let mut n = 2;
                    while taken(&candidate) {
                        candidate = format!("{base}-{n}");
                        n += 1;
                    }
                    candidate
                }
            };
            if let Ok(mut chosen) = chosen.lock() {
                *chosen = user_id.clone();
            }
            Ok(vec![
                DomainEvent::UserAdded(UserAdded {
                    user_id: user_id.clone(),
                    role,
                    practice_areas: practice_areas.clone(),
                    private: UserDetails {
                        email: email.clone(),
                        name: name.clone(),
                    },
                }),
                DomainEvent::EnrolmentIssued(EnrolmentIssued {
                    user_id,
                    expires_at: format_timestamp(expires_at),
                }),
            ])
        })
        .await?;
        let user_id = chosen
            .lock()
            .map(|id| id.clone())
            .map_err(|_| IdentityError::Internal {
                detail: "the chosen id was lost".into(),
            })?;
        let issued = token::issue(ENROLMENT_PREFIX)?;
        self.credentials
            .create_enrolment(&issued.hash.to_hex(), &user_id, expires_at)
            .await?;
        Ok(AddedUser {
            user_id,
            enrolment_token: issued.text,
            expires_at,
        })
    }

    /// Issues a fresh enrolment token to an existing user (a lost authenticator): their
    /// password, second factor, recovery codes and sessions are all withdrawn at once.
    pub async fn reissue_enrolment(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        user_id: &str,
    ) -> Result<AddedUser, IdentityError> {
        let expires_at = Utc::now() + self.sessions.enrolment;
        self.change(actor, request_id, |directory| {
            let user = directory
                .user(user_id)
                .ok_or(IdentityError::NotFound { what: "user" })?;
            if user.status == UserStatus::Disabled {
                return Err(IdentityError::invalid("userId", "the user is disabled"));
            }
            Ok(vec![DomainEvent::EnrolmentIssued(EnrolmentIssued {
                user_id: user_id.to_owned(),
                expires_at: format_timestamp(expires_at),
            })])
        })
        .await?;
        let now = Utc::now();
        self.credentials.revoke_enrolments(user_id).await?;
        self.credentials.remove_password(user_id).await?;
        self.credentials.remove_totp(user_id).await?;
        self.credentials
            .replace_recovery_codes(user_id, &[], now)
            .await?;
        self.revoke_sessions_of(actor, request_id, &format!("user:{user_id}"), "admin")
            .await?;
        let issued = token::issue(ENROLMENT_PREFIX)?;
        self.credentials
            .create_enrolment(&issued.hash.to_hex(), user_id, expires_at)
            .await?;
        Ok(AddedUser {
            user_id: user_id.to_owned(),
            enrolment_token: issued.text,
            expires_at,
        })
    }

    pub async fn change_role(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        user_id: &str,
        role: Role,
        practice_areas: &[String],
    ) -> Result<(), IdentityError> {
        let practice_areas = areas(practice_areas)?;
        self.change(actor, request_id, |directory| {
            let user = directory
                .user(user_id)
                .ok_or(IdentityError::NotFound { what: "user" })?;
            if user.role == role && user.practice_areas == practice_areas {
                return Ok(Vec::new());
            }
            Ok(vec![DomainEvent::RoleChanged(RoleChanged {
                user_id: user_id.to_owned(),
                role,
                practice_areas: practice_areas.clone(),
            })])
        })
        .await?;
        Ok(())
    }

    /// Disables a user and ends their sessions at once.
    pub async fn disable_user(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        user_id: &str,
        reason: &str,
    ) -> Result<(), IdentityError> {
        let reason = text("reason", reason, 1000)?;
        self.change(actor, request_id, |directory| {
            let user = directory
                .user(user_id)
                .ok_or(IdentityError::NotFound { what: "user" })?;
            if user.status == UserStatus::Disabled {
                return Ok(Vec::new());
            }
            Ok(vec![DomainEvent::UserDisabled(UserDisabled {
                user_id: user_id.to_owned(),
                reason: reason.clone(),
            })])
        })
        .await?;
        self.revoke_sessions_of(actor, request_id, &format!("user:{user_id}"), "disabled")
            .await?;
        Ok(())
    }

    pub async fn enable_user(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        user_id: &str,
    ) -> Result<(), IdentityError> {
        self.change(actor, request_id, |directory| {
            let user = directory
                .user(user_id)
                .ok_or(IdentityError::NotFound { what: "user" })?;
            if user.status != UserStatus::Disabled {
                return Ok(Vec::new());
            }
            Ok(vec![DomainEvent::UserEnabled(UserRef {
                user_id: user_id.to_owned(),
            })])
        })
        .await?;
        Ok(())
    }

    /// Unlocks an account locked by failed logins (or by an admin) and clears its counter.
    pub async fn unlock_user(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        user_id: &str,
    ) -> Result<(), IdentityError> {
        let email = self
            .directory()
            .user(user_id)
            .map(|user| user.email.clone())
            .ok_or(IdentityError::NotFound { what: "user" })?;
        self.credentials
            .set_locked(&super::login::account_subject(&email), false)
            .await?;
        self.change(actor, request_id, |directory| {
            let user = directory
                .user(user_id)
                .ok_or(IdentityError::NotFound { what: "user" })?;
            if user.status != UserStatus::Locked {
                return Ok(Vec::new());
            }
            Ok(vec![DomainEvent::UserUnlocked(UserRef {
                user_id: user_id.to_owned(),
            })])
        })
        .await?;
        Ok(())
    }

    /// Sets a group's whole membership (creating the group).
    pub async fn set_group(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        group_id: &str,
        name: &str,
        members: &[String],
    ) -> Result<(), IdentityError> {
        let group_id = identifier("groupId", group_id)?;
        let name = text("name", name, 200)?;
        let mut members: Vec<String> = members.iter().map(|m| m.trim().to_owned()).collect();
        members.sort();
        members.dedup();
        self.change(actor, request_id, |directory| {
            if let Some(unknown) = members.iter().find(|m| directory.user(m).is_none()) {
                return Err(IdentityError::invalid(
                    "members",
                    format!("no user {unknown}"),
                ));
            }
            Ok(vec![DomainEvent::GroupMembersSet(GroupMembersSet {
                group_id: group_id.clone(),
                name: name.clone(),
                members: members.clone(),
            })])
        })
        .await?;
        Ok(())
    }

    /// Erects an ethical wall; it applies to the next request of every session.
    pub async fn erect_wall(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        spec: &WallSpec,
    ) -> Result<String, IdentityError> {
        let name = text("name", &spec.name, 200)?;
        let reason = text("reason", &spec.reason, 2000)?;
        if spec.screened_users.is_empty() && spec.screened_groups.is_empty() {
            return Err(IdentityError::invalid(
                "screenedUsers",
                "a wall screens at least one user or group",
            ));
        }
        if spec.matters.is_empty() && spec.clients.is_empty() {
            return Err(IdentityError::invalid(
                "matters",
                "a wall screens at least one matter or client",
            ));
        }
        let matters: Vec<String> = spec
            .matters
            .iter()
            .map(|m| m.trim().to_ascii_uppercase())
            .collect();
        for client in &spec.clients {
            if uuid::Uuid::parse_str(client).is_err() {
                return Err(IdentityError::invalid("clients", "contact ids are UUIDs"));
            }
        }
        let wall_id = uuid::Uuid::now_v7().to_string();
        self.change(actor, request_id, |directory| {
            if let Some(unknown) = spec
                .screened_users
                .iter()
                .find(|u| directory.user(u).is_none() && !directory.api_clients.contains_key(*u))
            {
                return Err(IdentityError::invalid(
                    "screenedUsers",
                    format!("no user {unknown}"),
                ));
            }
            if let Some(unknown) = spec
                .screened_groups
                .iter()
                .find(|g| !directory.groups.contains_key(*g))
            {
                return Err(IdentityError::invalid(
                    "screenedGroups",
                    format!("no group {unknown}"),
                ));
            }
            Ok(vec![DomainEvent::WallErected(WallErected {
                wall_id: wall_id.clone(),
                name: name.clone(),
                reason: reason.clone(),
                screened_users: spec.screened_users.clone(),
                screened_groups: spec.screened_groups.clone(),
                matters: matters.clone(),
                clients: spec.clients.clone(),
            })])
        })
        .await?;
        Ok(wall_id)
    }

    pub async fn lift_wall(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        wall_id: &str,
        reason: &str,
    ) -> Result<(), IdentityError> {
        let reason = text("reason", reason, 2000)?;
        self.change(actor, request_id, |directory| {
            if !directory.walls.contains_key(wall_id) {
                return Err(IdentityError::NotFound { what: "wall" });
            }
            Ok(vec![DomainEvent::WallLifted(WallLifted {
                wall_id: wall_id.to_owned(),
                reason: reason.clone(),
            })])
        })
        .await?;
        Ok(())
    }

    /// Opens a matter the user is not on, read-only, for the firm's break-glass period. The
    /// caller has checked that the matter exists and that no wall screens the user.
    pub async fn break_glass(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        user_id: &str,
        matter_number: &str,
        reason: &str,
    ) -> Result<DateTime<Utc>, IdentityError> {
        let reason = reason.trim();
        if reason.chars().count() < 10 || reason.chars().count() > 2000 {
            return Err(IdentityError::invalid(
                "reason",
                "state the reason in 10 to 2000 characters",
            ));
        }
        let minutes = self.directory().policy.break_glass_minutes;
        let expires_at = Utc::now() + chrono::Duration::minutes(i64::from(minutes));
        self.append(
            actor,
            request_id,
            None,
            vec![DomainEvent::BreakGlassOpened(BreakGlassOpened {
                user_id: user_id.to_owned(),
                matter_number: matter_number.to_owned(),
                reason: reason.to_owned(),
                expires_at: format_timestamp(expires_at),
            })],
        )
        .await?;
        Ok(expires_at)
    }

    pub async fn set_firm_policy(
        &self,
        actor: &Actor,
        request_id: Option<&str>,
        partner_access: PartnerAccess,
        break_glass_minutes: u32,
    ) -> Result<(), IdentityError> {
        if !(1..=1440).contains(&break_glass_minutes) {
            return Err(IdentityError::invalid(
                "breakGlassMinutes",
                "must be 1 to 1440",
            ));
        }
        self.change(actor, request_id, |_| {
            Ok(vec![DomainEvent::FirmPolicySet(FirmPolicySet {
                partner_access,
                break_glass_minutes,
            })])
        })
        .await?;
        Ok(())
    }
}
