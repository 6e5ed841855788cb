//! The vault: encryption of client data at rest, and its erasure by destroying keys.
//!
//! The key hierarchy (docs/security-model.md, "Encryption at rest"):
//!
//! - a **key-encryption key** (KEK) with versions, held by a [`MasterKeys`] provider (the data
//!   directory's key file by default, an environment variable, or an external KMS);
//! - one **data key** per data subject (`contact:<id>`, `matter:<number>`), stored only wrapped
//!   by a KEK version, in the log's database ([`crate::store::KeyStore`]);
//! - the **blind-index key**, a data key of the reserved subject [`BLIND_INDEX_SUBJECT`].
//!
//! Every payload's `private` member is sealed ([`seal`]) under its subject's data key before
//! the event is hashed and signed, so the log holds, hashes and signs ciphertext. Erasing a
//! subject destroys its wrapped key: the ciphertext stays, every hash and signature still
//! verifies, and nothing decrypts it.
//!
//! Unwrapped keys are cached in memory for [`CACHE_TTL`] at most, so a key erased by another
//! process stops working here within that time (at once when this process erased it).

pub mod blind;
mod error;
pub mod master;
mod rotation;
pub mod seal;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use zeroize::Zeroizing;

use crate::domain::privacy::has_sealed_part;
use crate::domain::{OpenPrivate, PrivatePart};
use crate::log::Event;
use crate::store::{LogStore, StoredDataKey};
pub use blind::{BlindIndex, BlindKind};
pub use error::VaultError;
pub use master::{LocalMasterKeys, MasterKeys};
pub use rotation::{KekRotationOutcome, Rotation, RotationProgress};
pub use seal::{DataKey, Sealed};

/// The subject whose data key is the blind-index key. Never erased.
pub const BLIND_INDEX_SUBJECT: &str = "vault:blind-index";
/// How long an unwrapped data key stays in memory.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// Most unwrapped keys held at once; the cache is emptied when it is full.
const CACHE_LIMIT: usize = 100_000;

/// The data subject whose key seals the `private` member of events of `stream`, if the stream
/// holds client data.
pub fn subject_of_stream(stream: &str) -> Option<&str> {
    (stream.starts_with("matter:") || stream.starts_with("contact:")).then_some(stream)
}

/// A new data key id: `dk_` and 16 random hex digits.
fn new_key_id() -> Result<String, VaultError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|_| VaultError::NoRandomness)?;
    Ok(format!("dk_{}", hex::encode(bytes)))
}

/// One cached data key: unwrapped, or known to be erased.
#[derive(Clone)]
struct Cached {
    subject: String,
    key: Option<Arc<DataKey>>,
    loaded: Instant,
}

/// Keys, the store that keeps them wrapped, and the cache of unwrapped ones.
pub struct Vault {
    master: Arc<dyn MasterKeys>,
    store: Arc<dyn LogStore>,
    cache: Mutex<HashMap<String, Cached>>,
    by_subject: Mutex<HashMap<String, String>>,
    blind: BlindIndex,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("provider", &self.master.provider())
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Opens the vault over `store`'s key tables, creating the blind-index key on first use.
    pub async fn open(
        store: Arc<dyn LogStore>,
        master: Arc<dyn MasterKeys>,
    ) -> Result<Arc<Vault>, VaultError> {
        let stored = match store.keys().subject_key(BLIND_INDEX_SUBJECT).await? {
            Some(stored) => stored,
            None => {
                create_key(store.as_ref(), master.as_ref(), BLIND_INDEX_SUBJECT)
                    .await?
                    .0
            }
        };
        let blind_key = unwrap_stored(master.as_ref(), &stored)
            .await?
            .ok_or_else(|| VaultError::MasterKey {
                detail: "the blind-index key has been destroyed".into(),
            })?;
        Ok(Arc::new(Vault {
            master,
            store,
            cache: Mutex::new(HashMap::new()),
            by_subject: Mutex::new(HashMap::new()),
            blind: BlindIndex::new(&blind_key),
        }))
    }

    /// Opens the vault with the configured master keys: [`master::MASTER_KEY_ENV`] when set,
    /// else the key file in `data_dir` (created on first use).
    pub async fn open_configured(
        store: Arc<dyn LogStore>,
        data_dir: &std::path::Path,
    ) -> Result<Arc<Vault>, VaultError> {
        let master = LocalMasterKeys::configured(data_dir)?;
        Vault::open(store, Arc::new(master)).await
    }

    pub fn master(&self) -> &Arc<dyn MasterKeys> {
        &self.master
    }

    pub fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    /// The blind index of a value of `kind`.
    pub fn blind(&self, kind: BlindKind, value: &str) -> String {
        self.blind.blind(kind, value)
    }

    fn cached(&self, key_id: &str) -> Option<Cached> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(key_id)
            .filter(|cached| cached.loaded.elapsed() < CACHE_TTL)
            .cloned()
    }

    fn remember(&self, key_id: &str, subject: &str, key: Option<Arc<DataKey>>) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(
                key_id.to_owned(),
                Cached {
                    subject: subject.to_owned(),
                    key,
                    loaded: Instant::now(),
                },
            );
        }
        if let Ok(mut by_subject) = self.by_subject.lock() {
            if by_subject.len() >= CACHE_LIMIT {
                by_subject.clear();
            }
            by_subject.insert(subject.to_owned(), key_id.to_owned());
        }
    }

    /// Drops every cached key of `subject` (after erasing it, or on seeing its erasure).
    pub fn forget(&self, subject: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, cached| cached.subject != subject);
        }
        if let Ok(mut by_subject) = self.by_subject.lock() {
            by_subject.remove(subject);
        }
    }

    /// The data key that seals new data of `subject`, if it has one; refused once the subject
    /// is erased.
    async fn existing_sealing_key(
        &self,
        subject: &str,
    ) -> Result<Option<(String, Arc<DataKey>)>, VaultError> {
        let erased = || VaultError::SubjectErased {
            subject: subject.to_owned(),
        };
        let known = self
            .by_subject
            .lock()
            .ok()
            .and_then(|by_subject| by_subject.get(subject).cloned());
        if let Some(key_id) = known
            && let Some(cached) = self.cached(&key_id)
        {
            return cached.key.map(|key| Some((key_id, key))).ok_or_else(erased);
        }
        let Some(stored) = self.store.keys().subject_key(subject).await? else {
            return Ok(None);
        };
        let key = unwrap_stored(self.master.as_ref(), &stored)
            .await?
            .map(Arc::new);
        self.remember(&stored.key_id, subject, key.clone());
        key.map(|key| Some((stored.key_id, key))).ok_or_else(erased)
    }

    /// The data key that seals new data of `subject`, created (and stored wrapped, in a
    /// commit of its own) the first time. Refused once the subject is erased.
    pub async fn sealing_key(&self, subject: &str) -> Result<(String, Arc<DataKey>), VaultError> {
        if let Some(found) = self.existing_sealing_key(subject).await? {
            return Ok(found);
        }
        let (stored, created) =
            create_key(self.store.as_ref(), self.master.as_ref(), subject).await?;
        let key = match created {
            Some(key) => Some(key),
            None => unwrap_stored(self.master.as_ref(), &stored).await?,
        }
        .map(Arc::new);
        self.remember(&stored.key_id, subject, key.clone());
        key.map(|key| (stored.key_id, key))
            .ok_or_else(|| VaultError::SubjectErased {
                subject: subject.to_owned(),
            })
    }

    /// Seals an event's `private` member for `subject`: the sealed object that replaces it.
    pub async fn seal_private(
        &self,
        subject: &str,
        event_id: &str,
        private: &Value,
    ) -> Result<Value, VaultError> {
        let (key_id, key) = self.sealing_key(subject).await?;
        seal_private_with(&key, &key_id, event_id, private)
    }

    /// Seals the `private` member of each of `drafts`, to be appended to `stream`, when the
    /// stream holds client data. Each sealed draft gets its event id now: its sealed part is
    /// bound to it. A subject without a key gets a new one, returned as a [`PendingKey`]: it is
    /// stored only with the events (in [`crate::store::AppendRequest::data_keys`]), and used
    /// again only once they are committed ([`Vault::adopt`]).
    ///
    /// `fresh` says that the subject was minted by this very command (a new contact's id), so
    /// it cannot have a key yet and none is looked up. Were one there, the commit would fail:
    /// two keys for one subject are refused by the store.
    pub async fn seal_drafts(
        &self,
        stream: &str,
        drafts: &mut [crate::log::EventDraft],
        fresh: bool,
    ) -> Result<Option<PendingKey>, VaultError> {
        let Some(subject) = subject_of_stream(stream) else {
            return Ok(None);
        };
        if !drafts
            .iter()
            .any(|draft| draft.payload.get("private").is_some())
        {
            return Ok(None);
        }
        let existing = match fresh {
            true => None,
            false => self.existing_sealing_key(subject).await?,
        };
        let (key_id, key, pending) = match existing {
            Some((key_id, key)) => (key_id, key, None),
            None => {
                let key = Arc::new(DataKey::generate()?);
                let key_id = new_key_id()?;
                let version = self.master.current().await?;
                let stored = StoredDataKey {
                    key_id: key_id.clone(),
                    subject: subject.to_owned(),
                    kek_version: Some(version),
                    wrapped: Some(self.master.wrap(version, &key_id, &key).await?),
                    created_at: crate::log::time::now_timestamp(),
                    erased_at: None,
                };
                let pending = PendingKey {
                    stored,
                    key: key.clone(),
                };
                (key_id, key, Some(pending))
            }
        };
        for draft in drafts {
            let Some(private) = draft.payload.get("private") else {
                continue;
            };
            let id = crate::store::plan::new_event_id();
            let sealed = seal_private_with(&key, &key_id, &id, private)?;
            draft.payload["private"] = sealed;
            draft.id = Some(id);
        }
        Ok(pending)
    }

    /// Takes a new key into use once the events sealed under it are committed.
    pub fn adopt(&self, pending: PendingKey) {
        self.remember(
            &pending.stored.key_id,
            &pending.stored.subject,
            Some(pending.key),
        );
    }

    /// Loads the keys with these ids (unwrapped, or known erased) for opening.
    pub async fn keys(
        &self,
        key_ids: impl IntoIterator<Item = String>,
    ) -> Result<KeySet, VaultError> {
        let mut set = KeySet::default();
        let mut missing = Vec::new();
        for key_id in key_ids.into_iter().collect::<HashSet<_>>() {
            match self.cached(&key_id) {
                Some(cached) => {
                    set.keys.insert(key_id, cached.key);
                }
                None => missing.push(key_id),
            }
        }
        if missing.is_empty() {
            return Ok(set);
        }
        for stored in self.store.keys().data_keys(&missing).await? {
            let key = unwrap_stored(self.master.as_ref(), &stored)
                .await?
                .map(Arc::new);
            self.remember(&stored.key_id, &stored.subject, key.clone());
            set.keys.insert(stored.key_id, key);
        }
        Ok(set)
    }

    /// The keys that open the sealed parts of `events`.
    pub async fn keys_for_events(&self, events: &[Event]) -> Result<KeySet, VaultError> {
        self.keys(
            events
                .iter()
                .filter_map(|event| sealed_key_id(&event.payload)),
        )
        .await
    }

    /// The keys that open these column values (see [`SealedRef`]).
    pub async fn keys_for_columns<'a>(
        &self,
        columns: impl IntoIterator<Item = &'a str>,
    ) -> Result<KeySet, VaultError> {
        self.keys(
            columns
                .into_iter()
                .filter_map(|text| SealedRef::parse(text).ok().flatten())
                .map(|reference| reference.sealed.key),
        )
        .await
    }

    /// Destroys the data key of `subject`: its wrapped copy and every document content sealed
    /// under it. `false` when it had none or was erased already.
    pub async fn erase(&self, subject: &str, erased_at: &str) -> Result<bool, VaultError> {
        if subject == BLIND_INDEX_SUBJECT {
            return Err(VaultError::Malformed {
                what: "subject (the blind-index key cannot be erased)",
            });
        }
        let erased = self
            .store
            .keys()
            .erase_subject_key(subject, erased_at)
            .await?;
        self.forget(subject);
        Ok(erased)
    }

    /// Whether `subject`'s key has been destroyed.
    pub async fn is_erased(&self, subject: &str) -> Result<bool, VaultError> {
        Ok(self
            .store
            .keys()
            .subject_key(subject)
            .await?
            .is_some_and(|stored| stored.erased_at.is_some()))
    }

    /// Stores document bytes sealed under `subject`'s key; the address stays the blake3 hash
    /// of the plaintext.
    pub async fn put_content(
        &self,
        subject: &str,
        content_hash: &str,
        content: &[u8],
    ) -> Result<(), VaultError> {
        let (key_id, key) = self.sealing_key(subject).await?;
        let sealed = seal::seal(&key, &key_id, &content_context(content_hash), content)?;
        let bytes = serde_json::to_vec(&sealed).map_err(|_| VaultError::SealFailed)?;
        self.store
            .keys()
            .put_sealed_content(&key_id, content_hash, content.len() as u64, &bytes)
            .await?;
        Ok(())
    }

    /// Document bytes of `subject` by content hash: `Ok(None)` when not stored, and
    /// [`VaultError::SubjectErased`] when erased.
    pub async fn content(
        &self,
        subject: &str,
        content_hash: &str,
    ) -> Result<Option<Vec<u8>>, VaultError> {
        let Some(stored) = self.store.keys().subject_key(subject).await? else {
            return Ok(None);
        };
        if stored.erased_at.is_some() {
            return Err(VaultError::SubjectErased {
                subject: subject.to_owned(),
            });
        }
        let Some(bytes) = self
            .store
            .keys()
            .sealed_content(&stored.key_id, content_hash)
            .await?
        else {
            return Ok(None);
        };
        let sealed: Sealed = serde_json::from_slice(&bytes).map_err(|_| VaultError::Malformed {
            what: "sealed content",
        })?;
        let set = self.keys([stored.key_id.clone()]).await?;
        let key = set.key(&stored.key_id)?.ok_or(VaultError::SubjectErased {
            subject: subject.to_owned(),
        })?;
        let plain = seal::open(&key, &sealed, &content_context(content_hash))?;
        Ok(Some(plain.to_vec()))
    }
}

/// A new subject's data key, wrapped and ready to store with the events sealed under it.
pub struct PendingKey {
    pub stored: StoredDataKey,
    key: Arc<DataKey>,
}

impl std::fmt::Debug for PendingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingKey")
            .field("key_id", &self.stored.key_id)
            .field("subject", &self.stored.subject)
            .finish_non_exhaustive()
    }
}

/// Seals a `private` member (its JCS text) for the event `event_id`.
fn seal_private_with(
    key: &DataKey,
    key_id: &str,
    event_id: &str,
    private: &Value,
) -> Result<Value, VaultError> {
    let plaintext = Zeroizing::new(
        crate::log::canonical::canonical_json(private)
            .map_err(|_| VaultError::Malformed {
                what: "private member",
            })?
            .into_bytes(),
    );
    let sealed = seal::seal(key, key_id, &seal::event_context(event_id), &plaintext)?;
    serde_json::to_value(sealed).map_err(|_| VaultError::SealFailed)
}

fn content_context(content_hash: &str) -> String {
    format!("content/{content_hash}")
}

/// The key id of a payload's sealed part, found without decoding the rest.
fn sealed_key_id(payload: &str) -> Option<String> {
    if !has_sealed_part(payload) {
        return None;
    }
    let value: Value = serde_json::from_str(payload).ok()?;
    value
        .get("private")?
        .get("key")?
        .as_str()
        .map(str::to_owned)
}

/// Generates, wraps under the current KEK version and stores a key for `subject`. When another
/// writer stored one first, theirs is returned and the new key is dropped (`None`).
async fn create_key(
    store: &dyn LogStore,
    master: &dyn MasterKeys,
    subject: &str,
) -> Result<(StoredDataKey, Option<DataKey>), VaultError> {
    let key = DataKey::generate()?;
    let key_id = new_key_id()?;
    let version = master.current().await?;
    let wrapped = master.wrap(version, &key_id, &key).await?;
    let stored = store
        .keys()
        .insert_data_key(&StoredDataKey {
            key_id: key_id.clone(),
            subject: subject.to_owned(),
            kek_version: Some(version),
            wrapped: Some(wrapped),
            created_at: crate::log::time::now_timestamp(),
            erased_at: None,
        })
        .await?;
    let ours = stored.key_id == key_id;
    Ok((stored, ours.then_some(key)))
}

/// Unwraps a stored key; `None` when it was erased.
async fn unwrap_stored(
    master: &dyn MasterKeys,
    stored: &StoredDataKey,
) -> Result<Option<DataKey>, VaultError> {
    match (&stored.kek_version, &stored.wrapped) {
        (Some(version), Some(wrapped)) => master
            .unwrap(*version, &stored.key_id, wrapped)
            .await
            .map(Some),
        _ => Ok(None),
    }
}

/// Unwrapped keys for one batch of reads; `None` for an erased key.
#[derive(Default)]
pub struct KeySet {
    keys: HashMap<String, Option<Arc<DataKey>>>,
}

impl KeySet {
    /// The key `key_id`: `Ok(None)` when erased, an error when this set does not know it.
    pub fn key(&self, key_id: &str) -> Result<Option<Arc<DataKey>>, VaultError> {
        self.keys
            .get(key_id)
            .cloned()
            .ok_or_else(|| VaultError::UnknownDataKey {
                key_id: key_id.to_owned(),
            })
    }

    /// Opens a column value (see [`SealedRef`]): plaintext kept in clear is returned as it is.
    pub fn open_column(&self, text: &str) -> Result<Column, VaultError> {
        let Some(reference) = SealedRef::parse(text)? else {
            return serde_json::from_str(text)
                .map(Column::Plain)
                .map_err(|_| VaultError::Malformed { what: "column" });
        };
        match self.key(&reference.sealed.key)? {
            None => Ok(Column::Erased),
            Some(key) => {
                let plain = seal::open(
                    &key,
                    &reference.sealed,
                    &seal::event_context(&reference.event),
                )?;
                serde_json::from_slice(&plain)
                    .map(Column::Plain)
                    .map_err(|_| VaultError::Malformed {
                        what: "sealed value",
                    })
            }
        }
    }
}

impl OpenPrivate for KeySet {
    fn open(&self, event_id: &str, sealed: &Value) -> Result<PrivatePart, String> {
        let sealed = match Sealed::recognise(sealed) {
            Some(Ok(sealed)) => sealed,
            Some(Err(error)) => return Err(error.to_string()),
            None => return Ok(PrivatePart::Plain(sealed.clone())),
        };
        let key = match self.key(&sealed.key) {
            Ok(Some(key)) => key,
            Ok(None) => return Ok(PrivatePart::Erased),
            Err(error) => return Err(error.to_string()),
        };
        let plain = seal::open(&key, &sealed, &seal::event_context(event_id))
            .map_err(|error| error.to_string())?;
        serde_json::from_slice(&plain)
            .map(PrivatePart::Plain)
            .map_err(|_| "a sealed part is not JSON".to_owned())
    }
}

/// What a read model stores in place of client data: the event's sealed `private` member with
/// the id of the event it belongs to (`{"event": <id>, "sealed": "docket-seal/1", ...}`), so it
/// opens exactly as the log's copy does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRef {
    pub event: String,
    pub sealed: Sealed,
}

impl SealedRef {
    /// `Ok(None)` for a value that is not a sealed reference (plaintext kept in clear).
    pub fn parse(text: &str) -> Result<Option<SealedRef>, VaultError> {
        if !has_sealed_part(text) {
            return Ok(None);
        }
        let mut value: Value = serde_json::from_str(text).map_err(|_| VaultError::Malformed {
            what: "sealed reference",
        })?;
        let event = value
            .as_object_mut()
            .and_then(|members| members.remove("event"))
            .and_then(|event| event.as_str().map(str::to_owned))
            .ok_or(VaultError::Malformed {
                what: "sealed reference",
            })?;
        match Sealed::recognise(&value) {
            Some(Ok(sealed)) => Ok(Some(SealedRef { event, sealed })),
            Some(Err(error)) => Err(error),
            None => Ok(None),
        }
    }
}

/// A column value, opened.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Plain(Value),
    Erased,
}
