//! `docket restore`: an archive back into an empty data directory (and an empty PostgreSQL
//! database when a URL is given), in this order:
//!
//! 1. refuse unless the target is empty, its KEK is configured, and the operator has said where
//!    later erasures are (or that no log survives);
//! 2. check the manifest's signature and every part's hash, unwrap the data key;
//! 3. decrypt everything into a private staging folder and verify it there ([`Staging`]);
//! 4. write the log, the access chain, data keys, documents, checkpoints and credentials;
//! 5. destroy the data keys of every subject erased later ([`super::erasures`]), and record
//!    each as a `subject.erased` event of the restored log;
//! 6. rebuild every projection, and verify the restored log once more.
//!
//! Nothing is written before step 4. With SQLite a failure from step 4 on removes the files it
//! created; with PostgreSQL the database must be dropped and created afresh before trying again.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use sqlx::Connection;

use super::BackupError;
use super::erasures::{LaterErasures, from_later_archives, from_surviving_log, record_reapplied};
use super::kek::existing_master_keys;
use super::reader::{open_archive, read_manifest};
use super::staging::{EVENTS_PER_PLAN, Staging, write_events};
use super::target::Target;
use crate::access::chain::{access_log_options, create_schema};
use crate::identity::credentials::CredentialStore;
use crate::keyring::Keyring;
use crate::projection::{Projector, ReadDb};
use crate::store::{LogOptions, LogStore, open_store};
use crate::vault::Vault;

/// What to restore, where to, and where later erasures are.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The data directory (and database) to restore into; must be empty.
    pub into: LogOptions,
    /// The archive's name; the newest complete archive when `None`.
    pub archive: Option<String>,
    /// Surviving data directories or databases of the same log, read for later erasures.
    pub erasures_from: Vec<LogOptions>,
    /// The operator states that no log survives (later archives are still read).
    pub no_surviving_log: bool,
    /// Take the erased-subject lists of later archives whose manifest no key of the log
    /// vouches for, rather than stop ([`super::erasures`]).
    pub accept_unverified_erasures: bool,
    /// The key id the archived log's genesis must carry.
    pub genesis_key: Option<String>,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub archive: String,
    pub head: u64,
    pub access_head: u64,
    pub checkpoints: usize,
    /// Subjects whose data key the restore destroyed because they were erased after the archive.
    pub erasures_reapplied: Vec<String>,
    /// Whether each re-applied erasure was recorded in the restored log as `subject.erased`
    /// (not when the signing key in force is missing from the data directory).
    pub erasures_recorded: bool,
    pub later_archives_read: usize,
    /// Later archives whose erasures were taken without a signature of the log's (accepted by
    /// the operator).
    pub unverified_later_archives: Vec<String>,
    pub surviving_logs_read: usize,
    pub projections_rebuilt: usize,
    /// Whether the target's data directory holds the private keys that sign the next events
    /// of the log and of the access chain (they are never in an archive).
    pub signing_key_present: bool,
    pub access_signing_key_present: bool,
}

/// Restores an archive of `from` as `options` say.
pub async fn restore(
    from: &Target,
    options: &RestoreOptions,
) -> Result<RestoreReport, BackupError> {
    if options.erasures_from.is_empty() && !options.no_surviving_log {
        return Err(BackupError::ErasureSourceRequired);
    }
    ensure_empty(&options.into).await?;
    let master = existing_master_keys(&options.into.data_dir)?;
    let archives = from.archives().await?;
    let name = match &options.archive {
        Some(name) if archives.iter().any(|a| a.complete && &a.name == name) => name.clone(),
        Some(name) => return Err(BackupError::NoArchive { name: name.clone() }),
        None => archives
            .into_iter()
            .rev()
            .find(|archive| archive.complete)
            .map(|archive| archive.name)
            .ok_or(BackupError::NoArchive {
                name: "(any complete)".into(),
            })?,
    };
    let signed = read_manifest(from, &name).await?;
    let manifest = &signed.manifest;
    let data_key = open_archive(from, &signed, &master).await?;
    let staging = Staging::load(from, manifest, &data_key, options.genesis_key.clone()).await?;

    // Later erasures are gathered before anything is written: a source that cannot be read
    // stops the restore here, with the target still empty.
    // Surviving logs first: the keys they introduced vouch for later archives too.
    let mut later = LaterErasures::default();
    later.trust_keys_of(staging.log.as_ref()).await?;
    for source in &options.erasures_from {
        from_surviving_log(source, manifest, &mut later).await?;
    }
    from_later_archives(
        from,
        manifest,
        options.accept_unverified_erasures,
        &mut later,
    )
    .await?;
    later.subjects.extend(staging.erased_in_log.iter().cloned());

    let written = write_target(&staging, &options.into, &later).await;
    let (store, erasures_reapplied) = match written {
        Ok(done) => done,
        Err(error) => {
            discard_partial(&options.into);
            return Err(error);
        }
    };
    let erasures_recorded = match record_reapplied(&options.into, &name, &erasures_reapplied).await
    {
        Ok(recorded) => recorded,
        Err(error) => {
            discard_partial(&options.into);
            return Err(error);
        }
    };
    let projections_rebuilt = match rebuild_projections(&store, &options.into).await {
        Ok(count) => count,
        Err(error) => {
            discard_partial(&options.into);
            return Err(error);
        }
    };
    let checkpoints = store.tree().checkpoints(None, u32::MAX).await?.len();
    let head = store.head().await?;
    let verified = crate::verification::verify_log(
        store.clone(),
        crate::verification::VerifyOptions {
            strict: false,
            genesis_key: options.genesis_key.clone(),
        },
        |_| {},
    )
    .await?;
    let appended = if erasures_recorded {
        erasures_reapplied.len() as u64
    } else {
        0
    };
    if verified.is_err() || head.position != manifest.head.position + appended {
        return Err(BackupError::ChainBroken {
            chain: "restored log",
            detail: "the restored log does not verify".into(),
        });
    }
    let has_key = |dir: &Path, key: Option<&str>| {
        key.is_some_and(|key| Keyring::open(dir).and_then(|ring| ring.get(key)).is_ok())
    };
    let access_head = staging.access.head().await?;
    Ok(RestoreReport {
        archive: name,
        head: head.position,
        access_head: access_head.position,
        checkpoints,
        erasures_reapplied,
        erasures_recorded,
        later_archives_read: later.later_archives,
        unverified_later_archives: later.unverified_archives.clone(),
        surviving_logs_read: later.surviving_logs,
        projections_rebuilt,
        signing_key_present: has_key(&options.into.data_dir, head.key_id.as_deref()),
        access_signing_key_present: access_head.position == 0
            || has_key(
                &access_log_options(&options.into).data_dir,
                access_head.key_id.as_deref(),
            ),
    })
}

/// Refuses a target that holds any of Docket's state.
async fn ensure_empty(into: &LogOptions) -> Result<(), BackupError> {
    match &into.database_url {
        None => {
            for file in [
                "docket.db",
                "identity.db",
                "read_models.db",
                "integrations.db",
                "access/docket.db",
            ] {
                if into.data_dir.join(file).exists() {
                    return Err(BackupError::TargetNotEmpty {
                        what: format!("{} exists", into.data_dir.join(file).display()),
                    });
                }
            }
        }
        Some(url) => {
            let mut connection = sqlx::PgConnection::connect(url)
                .await
                .map_err(crate::store::StoreError::from)?;
            let tables: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema IN ('public', 'docket_access') \
                 AND table_name IN ('events', 'auth_passwords', 'projection_state', 'data_keys')",
            )
            .fetch_one(&mut connection)
            .await
            .map_err(crate::store::StoreError::from)?;
            let _ = connection.close().await;
            if tables > 0 {
                return Err(BackupError::TargetNotEmpty {
                    what: "the database already holds Docket tables".into(),
                });
            }
        }
    }
    Ok(())
}

/// Writes the verified staging copy into the target, then destroys the later-erased keys.
async fn write_target(
    staging: &Staging,
    into: &LogOptions,
    later: &LaterErasures,
) -> Result<(Arc<dyn LogStore>, Vec<String>), BackupError> {
    create_private_dir(&into.data_dir)?;
    let store = open_store(into).await?;
    copy_chain(staging.log.as_ref(), store.as_ref()).await?;
    copy_rows(staging.log.as_ref(), store.as_ref()).await?;

    // An archive of a Docket that never recorded an access leaves the access chain absent,
    // as it was (an empty chain would read as one without its genesis).
    if staging.access.head().await?.position > 0 {
        let access_options = access_log_options(into);
        if let Some(url) = &into.database_url {
            create_schema(url).await?;
        }
        create_private_dir(&access_options.data_dir)?;
        let access = open_store(&access_options).await?;
        copy_chain(staging.access.as_ref(), access.as_ref()).await?;
    }

    let credentials = CredentialStore::open(&into.data_dir, into.database_url.as_deref()).await?;
    if !credentials.is_empty().await? {
        return Err(BackupError::TargetNotEmpty {
            what: "the credential store".into(),
        });
    }
    credentials.import_rows(&staging.credentials).await?;

    let now = crate::log::time::now_timestamp();
    let mut reapplied = Vec::new();
    for subject in &later.subjects {
        if store.keys().erase_subject_key(subject, &now).await? {
            reapplied.push(subject.clone());
        }
    }
    Ok((store, reapplied))
}

/// Copies every event and idempotency record of `from` into the empty `to`.
async fn copy_chain(from: &dyn LogStore, to: &dyn LogStore) -> Result<(), BackupError> {
    let end = from.head().await?.position;
    let mut idempotency = Vec::new();
    let mut after = String::new();
    loop {
        let page = from.archive().idempotency_page(&after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.key.clone();
        idempotency.extend(page);
    }
    let mut head = to.head().await?;
    let limit = u32::try_from(EVENTS_PER_PLAN).unwrap_or(u32::MAX);
    let mut next = 1;
    while next <= end {
        let events = from.read_page(next, limit).await?;
        let Some(last) = events.last() else { break };
        next = last.position + 1;
        // The idempotency records go with the last events (a plan without events writes none).
        let records = if next > end {
            std::mem::take(&mut idempotency)
        } else {
            Vec::new()
        };
        head = write_events(to, &head, events, records).await?;
    }
    Ok(())
}

/// Copies data keys, sealed contents, blobs and checkpoints.
async fn copy_rows(from: &dyn LogStore, to: &dyn LogStore) -> Result<(), BackupError> {
    let mut after = String::new();
    loop {
        let page = from.archive().data_keys_page(&after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.key_id.clone();
        for key in &page {
            to.archive().restore_data_key(key).await?;
        }
    }
    let mut after = (String::new(), String::new());
    loop {
        let page = from
            .archive()
            .sealed_contents_page((&after.0, &after.1), 500)
            .await?;
        let Some(last) = page.last() else { break };
        after = (last.key_id.clone(), last.content_hash.clone());
        for content in &page {
            to.archive().restore_sealed_content(content).await?;
        }
    }
    let mut after = String::new();
    loop {
        let page = from.archive().blobs_page(&after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.content_hash.clone();
        for blob in &page {
            to.archive().restore_blob(blob).await?;
        }
    }
    for checkpoint in from.tree().checkpoints(None, u32::MAX).await? {
        to.tree().insert_checkpoint(&checkpoint).await?;
    }
    Ok(())
}

/// Rebuilds every projection of the restored log; returns how many.
async fn rebuild_projections(
    store: &Arc<dyn LogStore>,
    into: &LogOptions,
) -> Result<usize, BackupError> {
    let db = ReadDb::open(&into.data_dir, into.database_url.as_deref()).await?;
    let vault = Vault::open_configured(store.clone(), &into.data_dir)
        .await
        .map_err(crate::app::vault_unavailable)?;
    let projector = Projector::open(db, store.clone(), vault).await?;
    let projections = projector.projections().to_vec();
    for projection in &projections {
        projector
            .rebuild(projection.as_ref())
            .await
            .map_err(|_| BackupError::Projection {
                name: projection.name().to_owned(),
            })?;
    }
    Ok(projections.len())
}

/// After a failed restore into SQLite, removes the files it created (the target was empty).
fn discard_partial(into: &LogOptions) {
    if into.database_url.is_some() {
        return;
    }
    for file in [
        "docket.db",
        "identity.db",
        "read_models.db",
        "access/docket.db",
        "access/index.db",
    ] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(into.data_dir.join(format!("{file}{suffix}")));
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |error: std::io::Error| BackupError::Target {
        detail: format!("{}: {error}", dir.display()),
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)
}
