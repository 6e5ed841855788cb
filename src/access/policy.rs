//! The policy: every decision about who may read or change what is taken here, and nowhere
//! else. Everything is denied unless a rule below allows it. The functions are pure: they read
//! the directory (users, roles, walls, break-glass openings, the firm's policy) and the facts of
//! one matter, and return a [`Decision`] with the reason that is recorded beside it.
//!
//! The order of the matter rules is the security model (docs/security-model.md):
//! 1. an inactive principal reaches nothing (an API client past its expiry included);
//! 2. an ethical wall overrides everything, every role, scope and break-glass included;
//! 3. an API client reaches the content of the matters its scope covers (its teams', every
//!    matter, or the listed ones), never privileged notes, and nothing else;
//! 4. the matter's team reaches its content (lawyers on the team also its privileged notes);
//! 5. an auditor off the team sees the matter's metadata, timeline and history, not its content;
//! 6. an admin off the team sees nothing of it (duties are separated);
//! 7. a break-glass opening, a firm-visible matter, or the firm's partner policy give read-only
//!    content without privileged notes;
//! 8. anything else is denied.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::identity::{PartnerAccess, Role};
use crate::identity::directory::{Directory, UserStatus};
use crate::identity::principal::{Principal, PrincipalKind};
use crate::identity::scopes::MatterReach;

/// An outcome of the policy and why; the reason is a short stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed(&'static str),
    Denied(&'static str),
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        matches!(self, Decision::Allowed(_))
    }

    pub fn reason(self) -> &'static str {
        match self {
            Decision::Allowed(reason) | Decision::Denied(reason) => reason,
        }
    }
}

/// What the policy needs to know about a matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatterFacts {
    pub number: String,
    pub practice_area: String,
    pub firm_visible: bool,
    /// Team member id -> capacity.
    pub team: BTreeMap<String, String>,
    /// Contact ids of the matter's clients.
    pub clients: BTreeSet<String>,
}

/// The parts of a matter a field belongs to; access records name these, never values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// Number, status, version, positions and times: what an auditor may see.
    Summary,
    /// Title, description, practice area, attorneys, dates, custom fields.
    Core,
    Team,
    Parties,
    ConflictChecks,
    Documents,
    DocumentContent,
    Work,
    Notes,
    PrivilegedNotes,
    Time,
    Timeline,
    History,
    /// Not a part of a matter: the alerts of the `alerts` stream, which only principals
    /// allowed to read alerts receive (see [`alerts_access`]). No matter access covers it.
    Alerts,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Summary => "matter.summary",
            Part::Core => "matter.core",
            Part::Team => "matter.team",
            Part::Parties => "matter.parties",
            Part::ConflictChecks => "matter.conflict_checks",
            Part::Documents => "matter.documents",
            Part::DocumentContent => "matter.document_content",
            Part::Work => "matter.work",
            Part::Notes => "matter.notes",
            Part::PrivilegedNotes => "matter.notes.privileged",
            Part::Time => "matter.time",
            Part::Timeline => "matter.timeline",
            Part::History => "matter.history",
            Part::Alerts => "alerts",
        }
    }

    /// What an auditor off the team may read.
    fn is_metadata(self) -> bool {
        matches!(self, Part::Summary | Part::Timeline | Part::History)
    }
}

/// How far a principal reaches into one matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatterAccess {
    /// The content: every part (privileged notes only when `privileged`).
    Content {
        reason: &'static str,
        privileged: bool,
        /// Whether the principal may change the matter (team members only).
        member: bool,
    },
    /// Summary, timeline and history only.
    Metadata {
        reason: &'static str,
    },
    None {
        reason: &'static str,
    },
}

impl MatterAccess {
    /// Whether this access covers `part`, and why.
    pub fn decide(self, part: Part) -> Decision {
        if part == Part::Alerts {
            return Decision::Denied("not_a_matter_part");
        }
        match self {
            MatterAccess::Content {
                reason, privileged, ..
            } => {
                if part == Part::PrivilegedNotes && !privileged {
                    Decision::Denied("privileged")
                } else {
                    Decision::Allowed(reason)
                }
            }
            MatterAccess::Metadata { reason } if part.is_metadata() => Decision::Allowed(reason),
            MatterAccess::Metadata { .. } => Decision::Denied("metadata_only"),
            MatterAccess::None { reason } => Decision::Denied(reason),
        }
    }

    /// Whether anything of the matter is visible (it exists for this principal).
    pub fn is_visible(self) -> bool {
        !matches!(self, MatterAccess::None { .. })
    }

    pub fn reason(self) -> &'static str {
        match self {
            MatterAccess::Content { reason, .. }
            | MatterAccess::Metadata { reason }
            | MatterAccess::None { reason } => reason,
        }
    }
}

/// The role the policy treats a principal as, if it is active now: a user's role, or `None`
/// for an API client (registered and not past its expiry).
pub fn active_role(directory: &Directory, who: &Principal) -> Result<Option<Role>, Decision> {
    match &who.kind {
        PrincipalKind::User { .. } => active_role_at(directory, who, ""),
        PrincipalKind::ApiClient { .. } => {
            active_role_at(directory, who, &crate::log::time::now_timestamp())
        }
    }
}

/// [`active_role`] at `now` (RFC 3339, as Docket writes it).
pub fn active_role_at(
    directory: &Directory,
    who: &Principal,
    now: &str,
) -> Result<Option<Role>, Decision> {
    match &who.kind {
        PrincipalKind::User { user_id } => match directory.user(user_id) {
            Some(user) if user.status == UserStatus::Active => Ok(Some(user.role)),
            _ => Err(Decision::Denied("inactive")),
        },
        PrincipalKind::ApiClient { client_id } => match directory.api_clients.get(client_id) {
            Some(client) if client.is_active_at(now) => Ok(None),
            _ => Err(Decision::Denied("inactive")),
        },
    }
}

/// How far an active, unwalled API client reaches into a matter: the content (never
/// privileged notes) when its scope covers the matter, with leave to make the changes its
/// commands allow; nothing otherwise.
fn client_access(directory: &Directory, client_id: &str, facts: &MatterFacts) -> MatterAccess {
    let Some(client) = directory.api_clients.get(client_id) else {
        return MatterAccess::None { reason: "inactive" };
    };
    let on_team = facts.team.contains_key(client_id);
    let reach = &client.scopes.matters;
    if reach.covers(&facts.number, on_team) {
        MatterAccess::Content {
            reason: if *reach == MatterReach::Team {
                "team_member"
            } else {
                "client_scope"
            },
            privileged: false,
            member: true,
        }
    } else {
        MatterAccess::None {
            reason: if *reach == MatterReach::Team {
                "not_on_team"
            } else {
                "out_of_scope"
            },
        }
    }
}

/// Whether a wall screens `who` from the matter.
pub fn is_walled(directory: &Directory, who: &Principal, facts: &MatterFacts) -> bool {
    directory.walls_screening(who.member_id()).any(|wall| {
        wall.matters.contains(&facts.number) || !wall.clients.is_disjoint(&facts.clients)
    })
}

/// How far `who` reaches into the matter at `now` (RFC 3339).
pub fn matter_access(
    directory: &Directory,
    who: &Principal,
    facts: &MatterFacts,
    now: &str,
) -> MatterAccess {
    let role = match active_role_at(directory, who, now) {
        Ok(role) => role,
        Err(decision) => {
            return MatterAccess::None {
                reason: decision.reason(),
            };
        }
    };
    if is_walled(directory, who, facts) {
        return MatterAccess::None { reason: "walled" };
    }
    if let Some(client_id) = who.client_id() {
        return client_access(directory, client_id, facts);
    }
    if facts.team.contains_key(who.member_id()) {
        return match role {
            Some(Role::Auditor) => MatterAccess::Content {
                reason: "team_member",
                privileged: false,
                member: false,
            },
            _ => MatterAccess::Content {
                reason: "team_member",
                privileged: role.is_some_and(Role::is_lawyer),
                member: true,
            },
        };
    }
    let Some(role) = role else {
        return MatterAccess::None {
            reason: "not_on_team",
        };
    };
    match role {
        Role::Auditor => {
            return MatterAccess::Metadata { reason: "auditor" };
        }
        Role::Admin => {
            return MatterAccess::None {
                reason: "duties_separated",
            };
        }
        _ => {}
    }
    let read_only = |reason| MatterAccess::Content {
        reason,
        privileged: false,
        member: false,
    };
    if let Some(user_id) = who.user_id()
        && directory
            .break_glass_for(user_id, &facts.number, now)
            .is_some()
    {
        return read_only("break_glass");
    }
    if facts.firm_visible {
        return read_only("firm_visible");
    }
    if role == Role::Partner && partner_policy_covers(directory, who, &facts.practice_area) {
        return read_only("partner_policy");
    }
    MatterAccess::None {
        reason: "not_on_team",
    }
}

/// The first time after `now` (RFC 3339, as Docket writes it) at which [`matter_access`] could
/// answer otherwise for `who` on the matter, the directory and the facts staying as they are:
/// when an API client's validity ends, or a break-glass window of the user on the matter
/// closes. Nothing else in the answer depends on the time, so an answer taken at `now` holds
/// while the time is before this; `None` when it holds until the directory or the facts change.
pub fn matter_access_changes_at(
    directory: &Directory,
    who: &Principal,
    facts: &MatterFacts,
    now: &str,
) -> Option<String> {
    match &who.kind {
        PrincipalKind::ApiClient { client_id } => directory
            .api_clients
            .get(client_id)
            .and_then(|client| client.scopes.expires_at.as_ref())
            .filter(|expires| expires.as_str() > now)
            .cloned(),
        PrincipalKind::User { user_id } => directory
            .break_glass
            .iter()
            .filter(|glass| {
                glass.user_id == *user_id
                    && glass.matter_number == facts.number
                    && glass.expires_at.as_str() > now
            })
            .map(|glass| &glass.expires_at)
            .min()
            .cloned(),
    }
}

fn partner_policy_covers(directory: &Directory, who: &Principal, practice_area: &str) -> bool {
    match directory.policy.partner_access {
        PartnerAccess::Team => false,
        PartnerAccess::Firm => true,
        PartnerAccess::PracticeAreas => who
            .user_id()
            .and_then(|id| directory.user(id))
            .is_some_and(|user| user.practice_areas.iter().any(|a| a == practice_area)),
    }
}

/// A change to a matter, as the policy groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatterChange {
    /// Title, description, attorneys, dates, custom fields, status, visibility.
    Details,
    Team,
    Parties,
    ConflictCheck,
    Documents,
    /// Tasks and calendar entries.
    Work,
    Note {
        privileged: bool,
    },
    Time,
}

impl MatterChange {
    pub fn part(self) -> Part {
        match self {
            MatterChange::Details => Part::Core,
            MatterChange::Team => Part::Team,
            MatterChange::Parties => Part::Parties,
            MatterChange::ConflictCheck => Part::ConflictChecks,
            MatterChange::Documents => Part::Documents,
            MatterChange::Work => Part::Work,
            MatterChange::Note { privileged: false } => Part::Notes,
            MatterChange::Note { privileged: true } => Part::PrivilegedNotes,
            MatterChange::Time => Part::Time,
        }
    }

    /// The roles (on the team) that may make this change.
    fn roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            MatterChange::Details | MatterChange::Team => &[Partner, Attorney],
            MatterChange::Note { privileged: true } => &[Partner, Attorney],
            MatterChange::Parties
            | MatterChange::ConflictCheck
            | MatterChange::Documents
            | MatterChange::Note { privileged: false }
            | MatterChange::Time => &[Partner, Attorney, Paralegal],
            MatterChange::Work => &[Partner, Attorney, Paralegal, Staff],
        }
    }
}

/// The kind of change a mutation field an API client may be granted makes.
pub fn command_change(command: &str) -> Option<MatterChange> {
    Some(match command {
        "recordTime" => MatterChange::Time,
        "addDocument" | "addDocumentVersion" => MatterChange::Documents,
        "addNote" | "editNote" => MatterChange::Note { privileged: false },
        "createTask" | "setTaskStatus" | "scheduleCalendarEntry" | "cancelCalendarEntry" => {
            MatterChange::Work
        }
        _ => return None,
    })
}

/// Whether `who` may make `change` to the matter. Users change a matter only on its team, each
/// by role. An API client changes the matters its scope covers, and only by the commands its
/// scope grants (never a privileged note); which mutation fields it may call at all is checked
/// per request against the same scope.
pub fn matter_change(
    directory: &Directory,
    who: &Principal,
    facts: &MatterFacts,
    change: MatterChange,
    now: &str,
) -> Decision {
    match matter_access(directory, who, facts, now) {
        MatterAccess::Content { member: true, .. } => {}
        MatterAccess::None { reason } => return Decision::Denied(reason),
        _ => return Decision::Denied("not_on_team"),
    }
    if let Some(client_id) = who.client_id() {
        let Some(client) = directory.api_clients.get(client_id) else {
            return Decision::Denied("inactive");
        };
        if change == (MatterChange::Note { privileged: true }) {
            return Decision::Denied("privileged");
        }
        let granted = client
            .scopes
            .commands
            .iter()
            .any(|command| command_change(command) == Some(change));
        return if granted {
            Decision::Allowed("client_scope")
        } else {
            Decision::Denied("command_not_granted")
        };
    }
    match active_role_at(directory, who, now) {
        Ok(Some(role)) if change.roles().contains(&role) => Decision::Allowed("team_role"),
        Ok(_) => Decision::Denied("role"),
        Err(decision) => decision,
    }
}

/// Firm-wide operations that are not about one matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Read one's own profile, sessions and recovery-code count.
    OwnAccount,
    /// Open a new matter (the opener must be on its team).
    OpenMatter,
    /// Read the firm's contacts (those not screened by a wall).
    ReadContacts,
    WriteContacts,
    /// Search parties across every matter for conflicts.
    ConflictSearch,
    /// Define custom fields (a firm setting).
    DefineCustomFields,
    /// Users, roles, groups, unlocking, revoking sessions.
    AdministerUsers,
    AdministerWalls,
    AdministerApiClients,
    SetFirmPolicy,
    /// Open a matter one is not on, for a limited time, with a reason.
    BreakGlass,
    ReadAccessRecords,
    AccessReview,
    /// Projection health and verification results.
    ReadOperations,
    /// The lists of users and walls.
    ReadDirectory,
    /// The log's signed checkpoints and the inclusion and consistency proofs against them.
    ReadProofs,
    /// Sign a checkpoint of the log as it is now, without waiting for the schedule.
    SignCheckpoint,
    /// Place and release legal holds.
    ManageLegalHolds,
    /// Set retention policies.
    SetRetention,
    /// Request or confirm (two different users) the erasure of a data subject.
    EraseSubject,
    /// Export everything held about a contact (subject access).
    ExportSubjectData,
    /// Contain an incident: withdraw every credential of a principal or of everyone, freeze
    /// and unfreeze matters.
    RespondToIncidents,
    /// Rotate the log's signing key and the key-encryption key.
    RotateKeys,
    /// Read the alerts Docket raises (anomalies and integrity failures).
    ReadAlerts,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::OwnAccount => "own_account",
            Capability::OpenMatter => "open_matter",
            Capability::ReadContacts => "read_contacts",
            Capability::WriteContacts => "write_contacts",
            Capability::ConflictSearch => "conflict_search",
            Capability::DefineCustomFields => "define_custom_fields",
            Capability::AdministerUsers => "administer_users",
            Capability::AdministerWalls => "administer_walls",
            Capability::AdministerApiClients => "administer_api_clients",
            Capability::SetFirmPolicy => "set_firm_policy",
            Capability::BreakGlass => "break_glass",
            Capability::ReadAccessRecords => "read_access_records",
            Capability::AccessReview => "access_review",
            Capability::ReadOperations => "read_operations",
            Capability::ReadDirectory => "read_directory",
            Capability::ReadProofs => "read_proofs",
            Capability::SignCheckpoint => "sign_checkpoint",
            Capability::ManageLegalHolds => "manage_legal_holds",
            Capability::SetRetention => "set_retention",
            Capability::EraseSubject => "erase_subject",
            Capability::ExportSubjectData => "export_subject_data",
            Capability::RespondToIncidents => "respond_to_incidents",
            Capability::RotateKeys => "rotate_keys",
            Capability::ReadAlerts => "read_alerts",
        }
    }

    /// The roles that hold the capability. API clients hold none of these.
    pub fn roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            Capability::OwnAccount => &[Admin, Partner, Attorney, Paralegal, Staff, Auditor],
            Capability::OpenMatter => &[Partner, Attorney],
            Capability::ReadContacts | Capability::WriteContacts | Capability::ConflictSearch => {
                &[Partner, Attorney, Paralegal, Staff]
            }
            Capability::DefineCustomFields
            | Capability::AdministerUsers
            | Capability::AdministerWalls
            | Capability::AdministerApiClients
            | Capability::SetFirmPolicy => &[Admin],
            Capability::BreakGlass => &[Partner, Attorney, Paralegal],
            Capability::ReadAccessRecords | Capability::AccessReview => &[Auditor],
            Capability::ReadOperations
            | Capability::ReadAlerts
            | Capability::ReadDirectory
            | Capability::ReadProofs
            | Capability::SignCheckpoint => &[Admin, Auditor],
            Capability::ManageLegalHolds | Capability::EraseSubject => &[Admin, Partner],
            Capability::SetRetention
            | Capability::ExportSubjectData
            | Capability::RespondToIncidents
            | Capability::RotateKeys => &[Admin],
        }
    }

    /// Whether the operation needs a second factor proved within [`STEP_UP_WINDOW_SECS`].
    pub fn needs_step_up(self) -> bool {
        matches!(
            self,
            Capability::AdministerUsers
                | Capability::AdministerWalls
                | Capability::AdministerApiClients
                | Capability::SetFirmPolicy
                | Capability::ManageLegalHolds
                | Capability::SetRetention
                | Capability::EraseSubject
                | Capability::ExportSubjectData
                | Capability::RespondToIncidents
                | Capability::RotateKeys
        )
    }
}

/// How recent a second factor must be for a sensitive operation.
pub const STEP_UP_WINDOW_SECS: i64 = 5 * 60;

/// Whether `who` holds `capability` at `now`.
pub fn capability(
    directory: &Directory,
    who: &Principal,
    capability: Capability,
    now: chrono::DateTime<chrono::Utc>,
) -> Decision {
    let role = match active_role(directory, who) {
        Ok(Some(role)) => role,
        Ok(None) => return Decision::Denied("role"),
        Err(decision) => return decision,
    };
    if !capability.roles().contains(&role) {
        return Decision::Denied("role");
    }
    if capability.needs_step_up() {
        let fresh = who
            .step_up_at
            .is_some_and(|at| (now - at).num_seconds() <= STEP_UP_WINDOW_SECS);
        if !fresh {
            return Decision::Denied("step_up_required");
        }
    }
    Decision::Allowed("role")
}

/// Whether `who` may receive the alerts of the `alerts` stream at `now`: a user whose role
/// holds [`Capability::ReadAlerts`] (admins and auditors), or an active API client whose scopes
/// include alerts (a security monitoring integration).
pub fn alerts_access(
    directory: &Directory,
    who: &Principal,
    now: chrono::DateTime<chrono::Utc>,
) -> Decision {
    let Some(client_id) = who.client_id() else {
        return capability(directory, who, Capability::ReadAlerts, now);
    };
    match directory.api_clients.get(client_id) {
        Some(client) if !client.is_active_at(&crate::log::time::format_timestamp(now)) => {
            Decision::Denied("inactive")
        }
        Some(client) if client.scopes.alerts => Decision::Allowed("client_scope"),
        Some(_) => Decision::Denied("client_scope"),
        None => Decision::Denied("inactive"),
    }
}

/// Whether a wall screens `who` from a contact (a client named by a wall screening them).
pub fn contact_walled(directory: &Directory, who: &Principal, contact_id: &str) -> bool {
    directory
        .walls_screening(who.member_id())
        .any(|wall| wall.clients.contains(contact_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::scopes::GRANTABLE_COMMANDS;

    #[test]
    fn every_grantable_command_is_a_matter_change_without_privilege() {
        for command in GRANTABLE_COMMANDS {
            let change = command_change(command);
            assert!(change.is_some(), "{command}");
            assert_ne!(change, Some(MatterChange::Note { privileged: true }));
        }
        assert_eq!(command_change("addTeamMember"), None);
        assert_eq!(command_change("updateMatter"), None);
    }
}
