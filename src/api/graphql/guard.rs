//! Every field of the schema has a policy, here, and the guard enforces it before the field
//! resolves. A field missing from [`FIELDS`] is refused (and a test fails while one is missing).
//!
//! Root fields carry the coarse rule (public, signed in, or a capability). Fields of `Matter`
//! name the part of the matter they reveal; the matter's resolvers check that part against the
//! access the caller was admitted with. Fields of every other type inherit their parent's
//! decision: those objects are reached only through a root field or a matter part that decided.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerResult, Value};

use super::caller::{Caller, unauthenticated};
use super::errors::api_error;
use crate::access::policy::{Capability, Part};

/// The rule of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRule {
    /// Anyone, signed in or not (signing in itself).
    Public,
    /// Any active principal; the resolver decides about the data it returns.
    Signed,
    /// A firm-wide capability.
    Capability(Capability),
    /// A field of `Matter` revealing this part of it.
    Matter(Part),
    /// Decided by the parent object.
    Inherit,
}

use Capability as C;
use FieldRule::*;
use Part as P;

/// (type, field, rule) for every field of the schema.
pub const FIELDS: &[(&str, &str, FieldRule)] = &[
    // Query
    ("Query", "node", Signed),
    ("Query", "matter", Signed),
    ("Query", "matters", Signed),
    ("Query", "contact", Capability(C::ReadContacts)),
    ("Query", "contacts", Capability(C::ReadContacts)),
    ("Query", "conflictSearch", Capability(C::ConflictSearch)),
    ("Query", "openTasks", Signed),
    ("Query", "calendar", Signed),
    ("Query", "matterAsOf", Signed),
    ("Query", "projections", Capability(C::ReadOperations)),
    ("Query", "alerts", Capability(C::ReadAlerts)),
    ("Query", "me", Signed),
    ("Mutation", "login", Public),
    // Subscriptions: each event is decided by the event gate as it is delivered.
    ("Subscription", "events", Signed),
    ("Mutation", "logout", Signed),
    // Accounts: users and walls are listed to admins and auditors (no step-up); the audit
    // queries are the auditors'.
    ("Query", "users", Capability(C::ReadDirectory)),
    ("Query", "walls", Capability(C::ReadDirectory)),
    ("Query", "apiClients", Capability(C::AdministerApiClients)),
    ("Query", "accessRecords", Capability(C::ReadAccessRecords)),
    ("Query", "accessReview", Capability(C::AccessReview)),
    ("Query", "accessReviewExport", Capability(C::AccessReview)),
    ("Mutation", "beginEnrolment", Public),
    ("Mutation", "completeEnrolment", Public),
    ("Mutation", "stepUp", Signed),
    ("Mutation", "changePassword", Signed),
    ("Mutation", "logoutEverywhere", Signed),
    ("Mutation", "addUser", Capability(C::AdministerUsers)),
    ("Mutation", "changeRole", Capability(C::AdministerUsers)),
    ("Mutation", "disableUser", Capability(C::AdministerUsers)),
    ("Mutation", "enableUser", Capability(C::AdministerUsers)),
    ("Mutation", "unlockUser", Capability(C::AdministerUsers)),
    (
        "Mutation",
        "reissueEnrolment",
        Capability(C::AdministerUsers),
    ),
    ("Mutation", "revokeSessions", Capability(C::AdministerUsers)),
    ("Mutation", "setGroup", Capability(C::AdministerWalls)),
    ("Mutation", "erectWall", Capability(C::AdministerWalls)),
    ("Mutation", "liftWall", Capability(C::AdministerWalls)),
    (
        "Mutation",
        "registerApiClient",
        Capability(C::AdministerApiClients),
    ),
    (
        "Mutation",
        "issueApiKey",
        Capability(C::AdministerApiClients),
    ),
    (
        "Mutation",
        "revokeApiKey",
        Capability(C::AdministerApiClients),
    ),
    (
        "Mutation",
        "setApiClientScopes",
        Capability(C::AdministerApiClients),
    ),
    (
        "Mutation",
        "rotateApiKey",
        Capability(C::AdministerApiClients),
    ),
    ("Mutation", "setFirmPolicy", Capability(C::SetFirmPolicy)),
    ("Mutation", "breakGlass", Capability(C::BreakGlass)),
    // Checkpoints and proofs: admins and auditors.
    ("Query", "latestCheckpoint", Capability(C::ReadProofs)),
    ("Query", "checkpoint", Capability(C::ReadProofs)),
    ("Query", "checkpoints", Capability(C::ReadProofs)),
    ("Query", "inclusionProof", Capability(C::ReadProofs)),
    ("Query", "consistencyProof", Capability(C::ReadProofs)),
    ("Mutation", "signCheckpoint", Capability(C::SignCheckpoint)),
    // Records management: holds, retention, erasure and subject access.
    ("Query", "legalHolds", Capability(C::ManageLegalHolds)),
    ("Query", "retentionPolicies", Capability(C::SetRetention)),
    (
        "Query",
        "subjectAccessExport",
        Capability(C::ExportSubjectData),
    ),
    (
        "Mutation",
        "placeLegalHold",
        Capability(C::ManageLegalHolds),
    ),
    (
        "Mutation",
        "releaseLegalHold",
        Capability(C::ManageLegalHolds),
    ),
    (
        "Mutation",
        "setRetentionPolicy",
        Capability(C::SetRetention),
    ),
    ("Mutation", "requestErasure", Capability(C::EraseSubject)),
    ("Mutation", "confirmErasure", Capability(C::EraseSubject)),
    // Incident response and key rotation: admins, after step-up.
    (
        "Mutation",
        "revokeCredentials",
        Capability(C::RespondToIncidents),
    ),
    ("Mutation", "lockdown", Capability(C::RespondToIncidents)),
    (
        "Mutation",
        "freezeMatter",
        Capability(C::RespondToIncidents),
    ),
    (
        "Mutation",
        "unfreezeMatter",
        Capability(C::RespondToIncidents),
    ),
    ("Mutation", "rotateSigningKey", Capability(C::RotateKeys)),
    ("Mutation", "rotateKek", Capability(C::RotateKeys)),
    // Webhooks: API-client administration (admins, with a recent step-up).
    (
        "Query",
        "webhookEndpoints",
        Capability(C::AdministerApiClients),
    ),
    (
        "Query",
        "webhookDeliveries",
        Capability(C::AdministerApiClients),
    ),
    (
        "Mutation",
        "registerWebhookEndpoint",
        Capability(C::AdministerApiClients),
    ),
    (
        "Mutation",
        "updateWebhookEndpoint",
        Capability(C::AdministerApiClients),
    ),
    (
        "Mutation",
        "rotateWebhookSecret",
        Capability(C::AdministerApiClients),
    ),
    (
        "Mutation",
        "disableWebhookEndpoint",
        Capability(C::AdministerApiClients),
    ),
    (
        "Mutation",
        "enableWebhookEndpoint",
        Capability(C::AdministerApiClients),
    ),
    (
        "Mutation",
        "removeWebhookEndpoint",
        Capability(C::AdministerApiClients),
    ),
    (
        "Mutation",
        "replayWebhookDelivery",
        Capability(C::AdministerApiClients),
    ),
    // Mutation: matter changes are decided per matter by `authorize_change`.
    ("Mutation", "openMatter", Capability(C::OpenMatter)),
    ("Mutation", "updateMatter", Signed),
    ("Mutation", "changeMatterStatus", Signed),
    ("Mutation", "setMatterVisibility", Signed),
    (
        "Mutation",
        "defineCustomField",
        Capability(C::DefineCustomFields),
    ),
    ("Mutation", "setCustomField", Signed),
    ("Mutation", "addTeamMember", Signed),
    ("Mutation", "removeTeamMember", Signed),
    ("Mutation", "createContact", Capability(C::WriteContacts)),
    ("Mutation", "updateContact", Capability(C::WriteContacts)),
    ("Mutation", "addParty", Signed),
    ("Mutation", "removeParty", Signed),
    ("Mutation", "recordConflictCheck", Signed),
    ("Mutation", "addDocument", Signed),
    ("Mutation", "addDocumentVersion", Signed),
    ("Mutation", "addNote", Signed),
    ("Mutation", "editNote", Signed),
    ("Mutation", "createTask", Signed),
    ("Mutation", "setTaskStatus", Signed),
    ("Mutation", "scheduleCalendarEntry", Signed),
    ("Mutation", "cancelCalendarEntry", Signed),
    ("Mutation", "recordTime", Signed),
    // Matter
    ("Matter", "id", Matter(P::Summary)),
    ("Matter", "number", Matter(P::Summary)),
    ("Matter", "erased", Matter(P::Summary)),
    ("Matter", "status", Matter(P::Summary)),
    ("Matter", "version", Matter(P::Summary)),
    ("Matter", "position", Matter(P::Summary)),
    ("Matter", "createdAt", Matter(P::Summary)),
    ("Matter", "updatedAt", Matter(P::Summary)),
    ("Matter", "firmVisible", Matter(P::Summary)),
    ("Matter", "frozen", Matter(P::Summary)),
    ("Matter", "title", Matter(P::Core)),
    ("Matter", "description", Matter(P::Core)),
    ("Matter", "practiceArea", Matter(P::Core)),
    ("Matter", "responsibleAttorney", Matter(P::Core)),
    ("Matter", "originatingAttorney", Matter(P::Core)),
    ("Matter", "openedOn", Matter(P::Core)),
    ("Matter", "closedOn", Matter(P::Core)),
    ("Matter", "statuteOfLimitationsOn", Matter(P::Core)),
    ("Matter", "customFields", Matter(P::Core)),
    ("Matter", "team", Matter(P::Team)),
    ("Matter", "parties", Matter(P::Parties)),
    ("Matter", "documents", Matter(P::Documents)),
    ("Matter", "tasks", Matter(P::Work)),
    ("Matter", "calendarEntries", Matter(P::Work)),
    ("Matter", "notes", Matter(P::Notes)),
    ("Matter", "timeEntries", Matter(P::Time)),
    ("Matter", "conflictChecks", Matter(P::ConflictChecks)),
    ("Matter", "timeline", Matter(P::Timeline)),
    ("Matter", "history", Matter(P::History)),
];

/// Types whose every field inherits: reached only through a field that decided.
pub const INHERITING_TYPES: &[&str] = &[
    "CalendarEntry",
    "CalendarEntryConnection",
    "CalendarEntryEdge",
    "ConflictCheck",
    "ConflictHitView",
    "ConflictMatch",
    "Contact",
    "ContactConnection",
    "ContactEdge",
    "ContactPayload",
    "DonePayload",
    "LoginPayload",
    "Me",
    "SessionInfo",
    "CustomFieldPayload",
    "Document",
    "DocumentVersion",
    "HistoryEvent",
    "MatterConnection",
    "MatterEdge",
    "MatterPayload",
    "MatterSnapshot",
    // The interface: each implementing type checks its own `id`.
    "Node",
    "Note",
    "PageInfo",
    "Party",
    "Positions",
    "ProjectionState",
    "SnapshotDeadline",
    "SnapshotDocument",
    "SnapshotParty",
    "SnapshotTask",
    "Task",
    "TaskConnection",
    "TaskEdge",
    "TeamMember",
    "TimeEntry",
    "TimelineEntry",
    "TimelineEntryConnection",
    "TimelineEntryEdge",
    "UserError",
    // Accounts and audit.
    "AccessRecordEntry",
    "AccessRecordPage",
    "AccessReviewUser",
    "BreakGlassOpening",
    "ApiClient",
    "ApiClientPayload",
    "ApiClientScopes",
    "ApiKey",
    "ApiKeyPayload",
    "RateLimit",
    "RotateApiKeyPayload",
    "BeginEnrolmentPayload",
    "BreakGlassPayload",
    "CompleteEnrolmentPayload",
    "EnrolmentPayload",
    "EnrolmentStart",
    "FirmPolicy",
    "FirmPolicyPayload",
    "IssuedApiKey",
    "IssuedEnrolment",
    "ReachableMatter",
    "SessionsRevokedPayload",
    "User",
    "UserPayload",
    "Wall",
    "WallPayload",
    // Checkpoints and proofs.
    "Checkpoint",
    "CheckpointConnection",
    "CheckpointEdge",
    "ConsistencyProof",
    "InclusionProof",
    // Records management.
    "GovernancePayload",
    "LegalHold",
    "RetentionPolicy",
    // Subscriptions.
    "LogEvent",
    // Alerts.
    "Alert",
    // Incident response.
    "CredentialsRevokedPayload",
    "FreezePayload",
    "KekRotationPayload",
    "SigningKeyRotationPayload",
    // Webhooks.
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookDeliveryPayload",
    "WebhookEndpoint",
    "WebhookEndpointPayload",
    "WebhookKey",
    "WebhookKeyPayload",
];

/// The root a type name belongs to: the roots are merged from parts named `<Part>Query` and
/// `<Part>Mutation` (e.g. `RecordsQuery`), which resolve their fields under their own names.
fn root_of(type_name: &str) -> &str {
    if type_name.ends_with("Query") {
        "Query"
    } else if type_name.ends_with("Mutation") {
        "Mutation"
    } else {
        type_name
    }
}

/// The rule of `type_name.field`, if it has one.
pub fn rule(type_name: &str, field: &str) -> Option<FieldRule> {
    // The items of a list resolve under the list's type (`[Note!]`); the list field decided.
    if type_name.starts_with('[') {
        return Some(Inherit);
    }
    let type_name = root_of(type_name);
    if INHERITING_TYPES.contains(&type_name) {
        return Some(Inherit);
    }
    FIELDS
        .iter()
        .find(|(t, f, _)| *t == type_name && *f == field)
        .map(|(_, _, rule)| *rule)
}

/// The part of a matter a `Matter` field reveals.
pub fn matter_part(field: &str) -> Option<Part> {
    match rule("Matter", field) {
        Some(Matter(part)) => Some(part),
        _ => None,
    }
}

/// The schema extension that enforces [`FIELDS`].
pub struct Guard;

impl ExtensionFactory for Guard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GuardExtension)
    }
}

struct GuardExtension;

#[async_trait::async_trait]
impl Extension for GuardExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        // Introspection is refused to anonymous callers before execution (see http.rs).
        if info.is_for_introspection || info.name.starts_with("__") {
            return next.run(ctx, info).await;
        }
        let position = async_graphql::Pos::default();
        let refuse = |error: async_graphql::Error| Err(error.into_server_error(position));
        let Some(rule) = rule(info.parent_type, info.name) else {
            tracing::error!(
                type_name = info.parent_type,
                field = info.name,
                "a field has no access policy; refused"
            );
            return refuse(api_error("FORBIDDEN", "you do not have access to this"));
        };
        match rule {
            Public | Inherit => {}
            Signed | Matter(_) => {
                let Some(caller) = ctx.data_opt::<Arc<Caller>>() else {
                    return refuse(unauthenticated());
                };
                if let Err(error) = caller.signed() {
                    return refuse(error);
                }
            }
            Capability(capability) => {
                let Some(caller) = ctx.data_opt::<Arc<Caller>>() else {
                    return refuse(unauthenticated());
                };
                if let Err(error) = caller.require(capability) {
                    return refuse(error);
                }
            }
        }
        next.run(ctx, info).await
    }
}
