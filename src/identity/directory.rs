//! The directory: every user, group, wall, break-glass opening, API client and the firm's
//! policy, folded from the `directory` stream. It holds no secret.
//!
//! The fold is pure. [`DirectoryHandle`] keeps the current fold in memory, catches up from the
//! log after each identity change this process makes, and polls for changes made by other
//! processes sharing the database, so a wall or a revocation applies to the next request of every
//! open session.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::domain::identity::{DIRECTORY_STREAM, PartnerAccess, Role};
use crate::domain::{DomainEvent, RecordedEvent};
use crate::identity::scopes::{ClientScopes, normalised_time};
use crate::store::{EventLog, StoreError};

/// Whether a user may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// Added, not yet enrolled (no password or second factor yet).
    Pending,
    Active,
    /// Too many failed logins, or locked by an admin; an admin unlocks it.
    Locked,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Pending => "pending",
            UserStatus::Active => "active",
            UserStatus::Locked => "locked",
            UserStatus::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub practice_areas: Vec<String>,
    pub status: UserStatus,
    pub enrolled: bool,
    pub added_at: String,
    pub last_login_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Wall {
    pub wall_id: String,
    pub name: String,
    pub reason: String,
    pub screened_users: BTreeSet<String>,
    pub screened_groups: BTreeSet<String>,
    pub matters: BTreeSet<String>,
    pub clients: BTreeSet<String>,
    pub erected_at: String,
    pub erected_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BreakGlass {
    pub user_id: String,
    pub matter_number: String,
    pub reason: String,
    pub opened_at: String,
    pub expires_at: String,
    pub position: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiClient {
    pub client_id: String,
    pub name: String,
    pub registered_at: String,
    /// The keys that have been issued and not revoked, by id (expired ones included).
    pub keys: BTreeMap<String, ApiKey>,
    /// What the client may read and do, and until when.
    pub scopes: ClientScopes,
}

impl ApiClient {
    /// Whether the client is registered and not past its expiry at `now` (RFC 3339).
    pub fn is_active_at(&self, now: &str) -> bool {
        !self.scopes.expired_at(now)
    }

    /// Whether the key `key_id` of this client is issued, not revoked and not expired at
    /// `now`, and the client itself active.
    pub fn key_works_at(&self, key_id: &str, now: &str) -> bool {
        self.is_active_at(now)
            && self
                .keys
                .get(key_id)
                .is_some_and(|key| key.expires_at.as_deref().is_none_or(|at| at > now))
    }
}

/// A key of an API client, as the directory knows it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key_id: String,
    pub issued_at: String,
    /// When it stops working (RFC 3339, as Docket writes it), if ever.
    pub expires_at: Option<String>,
    /// The key that replaced it in a rotation, if any.
    pub replaced_by: Option<String>,
}

/// The firm-wide access settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirmPolicy {
    pub partner_access: PartnerAccess,
    pub break_glass_minutes: u32,
}

impl Default for FirmPolicy {
    fn default() -> Self {
        FirmPolicy {
            partner_access: PartnerAccess::Team,
            break_glass_minutes: 60,
        }
    }
}

/// The fold of the `directory` stream.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// The stream version folded so far (0: nothing yet).
    pub version: u64,
    pub users: BTreeMap<String, User>,
    by_email: HashMap<String, String>,
    pub groups: BTreeMap<String, BTreeSet<String>>,
    pub walls: BTreeMap<String, Wall>,
    /// Every break-glass opening, expired ones included (access reviews list them).
    pub break_glass: Vec<BreakGlass>,
    pub api_clients: BTreeMap<String, ApiClient>,
    pub policy: FirmPolicy,
}

impl Directory {
    pub fn user(&self, user_id: &str) -> Option<&User> {
        self.users.get(user_id)
    }

    /// The user with this email (compared lower-cased).
    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        self.by_email
            .get(&email.trim().to_lowercase())
            .and_then(|id| self.users.get(id))
    }

    /// The walls that screen `user_id`, directly or through a group.
    pub fn walls_screening<'a>(&'a self, user_id: &'a str) -> impl Iterator<Item = &'a Wall> + 'a {
        self.walls.values().filter(move |wall| {
            wall.screened_users.contains(user_id)
                || wall.screened_groups.iter().any(|group| {
                    self.groups
                        .get(group)
                        .is_some_and(|members| members.contains(user_id))
                })
        })
    }

    /// An unexpired break-glass opening of `matter` by `user_id` at `now` (RFC 3339).
    pub fn break_glass_for(&self, user_id: &str, matter: &str, now: &str) -> Option<&BreakGlass> {
        self.break_glass.iter().rev().find(|glass| {
            glass.user_id == user_id
                && glass.matter_number == matter
                && glass.expires_at.as_str() > now
        })
    }

    /// Folds one event of the directory stream; others are ignored.
    pub fn apply(&mut self, recorded: &RecordedEvent) {
        if recorded.stream != DIRECTORY_STREAM {
            return;
        }
        self.version = recorded.stream_version;
        let at = &recorded.recorded_at;
        match &recorded.event {
            DomainEvent::UserAdded(added) => {
                let email = added.private.email.to_lowercase();
                self.by_email.insert(email.clone(), added.user_id.clone());
                self.users.insert(
                    added.user_id.clone(),
                    User {
                        user_id: added.user_id.clone(),
                        email,
                        name: added.private.name.clone(),
                        role: added.role,
                        practice_areas: added.practice_areas.clone(),
                        status: UserStatus::Pending,
                        enrolled: false,
                        added_at: at.clone(),
                        last_login_at: None,
                    },
                );
            }
            DomainEvent::UserEnrolled(user) => {
                if let Some(user) = self.users.get_mut(&user.user_id) {
                    user.enrolled = true;
                    if user.status == UserStatus::Pending {
                        user.status = UserStatus::Active;
                    }
                }
            }
            DomainEvent::EnrolmentIssued(issued) => {
                // A re-issued enrolment (lost authenticator) starts the user over.
                if let Some(user) = self.users.get_mut(&issued.user_id)
                    && user.status != UserStatus::Disabled
                {
                    user.enrolled = false;
                    user.status = UserStatus::Pending;
                }
            }
            DomainEvent::RoleChanged(change) => {
                if let Some(user) = self.users.get_mut(&change.user_id) {
                    user.role = change.role;
                    user.practice_areas = change.practice_areas.clone();
                }
            }
            DomainEvent::UserLocked(locked) => {
                if let Some(user) = self.users.get_mut(&locked.user_id)
                    && user.status != UserStatus::Disabled
                {
                    user.status = UserStatus::Locked;
                }
            }
            DomainEvent::UserUnlocked(user) | DomainEvent::UserEnabled(user) => {
                if let Some(user) = self.users.get_mut(&user.user_id) {
                    user.status = if user.enrolled {
                        UserStatus::Active
                    } else {
                        UserStatus::Pending
                    };
                }
            }
            DomainEvent::UserDisabled(disabled) => {
                if let Some(user) = self.users.get_mut(&disabled.user_id) {
                    user.status = UserStatus::Disabled;
                }
            }
            DomainEvent::LoginSucceeded(login) => {
                if let Some(user) = self.users.get_mut(&login.user_id) {
                    user.last_login_at = Some(at.clone());
                }
            }
            DomainEvent::GroupMembersSet(group) => {
                self.groups.insert(
                    group.group_id.clone(),
                    group.members.iter().cloned().collect(),
                );
            }
            DomainEvent::WallErected(wall) => {
                self.walls.insert(
                    wall.wall_id.clone(),
                    Wall {
                        wall_id: wall.wall_id.clone(),
                        name: wall.name.clone(),
                        reason: wall.reason.clone(),
                        screened_users: wall.screened_users.iter().cloned().collect(),
                        screened_groups: wall.screened_groups.iter().cloned().collect(),
                        matters: wall.matters.iter().cloned().collect(),
                        clients: wall.clients.iter().cloned().collect(),
                        erected_at: at.clone(),
                        erected_by: recorded.actor.clone(),
                    },
                );
            }
            DomainEvent::WallLifted(lifted) => {
                self.walls.remove(&lifted.wall_id);
            }
            DomainEvent::BreakGlassOpened(glass) => {
                self.break_glass.push(BreakGlass {
                    user_id: glass.user_id.clone(),
                    matter_number: glass.matter_number.clone(),
                    reason: glass.reason.clone(),
                    opened_at: at.clone(),
                    expires_at: glass.expires_at.clone(),
                    position: recorded.position,
                });
            }
            DomainEvent::ApiClientRegistered(client) => {
                self.api_clients.insert(
                    client.client_id.clone(),
                    ApiClient {
                        client_id: client.client_id.clone(),
                        name: client.name.clone(),
                        registered_at: at.clone(),
                        keys: BTreeMap::new(),
                        scopes: ClientScopes::default(),
                    },
                );
            }
            DomainEvent::ApiKeyIssued(key) => {
                if let Some(client) = self.api_clients.get_mut(&key.client_id) {
                    client.keys.insert(
                        key.key_id.clone(),
                        ApiKey {
                            key_id: key.key_id.clone(),
                            issued_at: at.clone(),
                            expires_at: key.expires_at.as_deref().map(normalised_time),
                            replaced_by: None,
                        },
                    );
                }
            }
            DomainEvent::ApiKeyRotated(rotated) => {
                if let Some(key) = self
                    .api_clients
                    .get_mut(&rotated.client_id)
                    .and_then(|client| client.keys.get_mut(&rotated.key_id))
                {
                    let grace_ends = normalised_time(&rotated.expires_at);
                    // A rotation never extends a key's life.
                    if key.expires_at.as_ref().is_none_or(|at| *at > grace_ends) {
                        key.expires_at = Some(grace_ends);
                    }
                    key.replaced_by = Some(rotated.replaced_by.clone());
                }
            }
            DomainEvent::ApiClientScopesSet(scopes) => {
                if let Some(client) = self.api_clients.get_mut(&scopes.client_id) {
                    client.scopes = ClientScopes::from_event(scopes);
                }
            }
            DomainEvent::ApiKeyRevoked(key) => {
                if let Some(client) = self.api_clients.get_mut(&key.client_id) {
                    client.keys.remove(&key.key_id);
                }
            }
            // Every key the principal held when the revocation was decided, and any issued
            // meanwhile: none survives the event.
            DomainEvent::CredentialsRevoked(revoked) => match revoked.principal.as_str() {
                "*" => {
                    for client in self.api_clients.values_mut() {
                        client.keys.clear();
                    }
                }
                principal => {
                    if let Some(client) = principal
                        .strip_prefix("api_client:")
                        .and_then(|id| self.api_clients.get_mut(id))
                    {
                        client.keys.clear();
                    }
                }
            },
            DomainEvent::FirmPolicySet(policy) => {
                self.policy = FirmPolicy {
                    partner_access: policy.partner_access,
                    break_glass_minutes: policy.break_glass_minutes,
                };
            }
            _ => {}
        }
    }
}

/// The process's current directory, shared by every request.
pub struct DirectoryHandle {
    log: Arc<EventLog>,
    current: RwLock<Arc<Directory>>,
    /// The version of `current`, readable without the lock: a reader holding a directory of
    /// this version has the current one.
    version: AtomicU64,
    refresh: tokio::sync::Mutex<()>,
}

/// How often a process looks for identity changes made by other processes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

impl DirectoryHandle {
    /// Folds the whole directory stream.
    pub async fn open(log: Arc<EventLog>) -> Result<Arc<Self>, StoreError> {
        let handle = Arc::new(DirectoryHandle {
            log,
            current: RwLock::new(Arc::new(Directory::default())),
            version: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(()),
        });
        handle.refresh().await?;
        Ok(handle)
    }

    /// The directory as last folded.
    pub fn current(&self) -> Arc<Directory> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The version of [`DirectoryHandle::current`] (its `version`), without taking its lock.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Folds whatever the stream gained since the last fold; returns the new directory.
    pub async fn refresh(&self) -> Result<Arc<Directory>, StoreError> {
        let _one_at_a_time = self.refresh.lock().await;
        let mut directory = (*self.current()).clone();
        let before = directory.version;
        loop {
            let page = self
                .log
                .store()
                .read_stream_page(DIRECTORY_STREAM, directory.version + 1, 1000)
                .await?;
            if page.is_empty() {
                break;
            }
            for event in &page {
                match RecordedEvent::decode(event) {
                    Ok(Some(recorded)) => directory.apply(&recorded),
                    // Not a domain event (or malformed): skip it but move on.
                    Ok(None) | Err(_) => directory.version = event.stream_version,
                }
            }
        }
        if directory.version == before {
            return Ok(self.current());
        }
        let directory = Arc::new(directory);
        match self.current.write() {
            Ok(mut current) => *current = directory.clone(),
            Err(poisoned) => *poisoned.into_inner() = directory.clone(),
        }
        self.version.store(directory.version, Ordering::Release);
        Ok(directory)
    }

    /// Polls for changes made by other processes until the process ends.
    pub fn spawn_follower(self: &Arc<Self>) {
        let handle = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(handle) = handle.upgrade() else {
                    return;
                };
                if let Err(error) = handle.refresh().await {
                    tracing::warn!(%error, "the directory could not be refreshed");
                }
            }
        });
    }
}
