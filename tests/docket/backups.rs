//! Backups and restores, on both backends: the drill end to end (write data, back up while
//! serving, destroy, restore, verify, compare every read model and a fixed set of GraphQL
//! answers), tampering refused with nothing written, erasures made after a backup re-applied,
//! a backup taken while appends go on, and retention.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::Request;
use base64::Engine;
use docket::api::graphql::with_loaders;
use docket::app::Docket;
use docket::backup::schedule::{BackupSchedule, apply_retention};
use docket::backup::{BackupError, RestoreOptions, Target, restore, write_backup};
use serde_json::{Value, json};
use sqlx::{Column, Row};

use crate::on_both_backends;
use crate::records::{Firm, MATTER};
use crate::support::{Backend, TestLog, caller, one_event};

/// Every read model's view, as the API reads it.
const READ_MODELS: &[&str] = &[
    "rm_matters",
    "rm_matter_team",
    "rm_custom_fields",
    "rm_conflict_checks",
    "rm_contacts",
    "rm_contact_tokens",
    "rm_parties",
    "rm_documents",
    "rm_document_versions",
    "rm_tasks",
    "rm_calendar",
    "rm_notes",
    "rm_time_entries",
    "rm_timeline",
];

/// The GraphQL answers compared before and after a restore.
const MATTER_QUERY: &str = r#"query { matter(number: "2026-0300") {
    number title description status practiceArea version position
    team { userId capacity }
    parties { role contact { displayName emails } }
    documents { title documentType versions { version contentHash size mediaType filename } }
    notes { subject body privileged author }
    tasks { title assignee dueOn status }
    history(first: 50) { position eventType actor hash verified }
} }"#;

/// Every row of every read model, each row's columns as text, rows sorted.
async fn read_models(docket: &Docket) -> BTreeMap<String, Vec<Vec<String>>> {
    let pool = docket.projector.db().pool();
    let mut all = BTreeMap::new();
    for view in READ_MODELS {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {view}")))
            .fetch_all(pool)
            .await
            .unwrap();
        let mut table: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                (0..row.columns().len())
                    .map(|i| {
                        let name = row.columns()[i].name().to_owned();
                        let value = if let Ok(v) = row.try_get::<Option<String>, _>(i) {
                            format!("{v:?}")
                        } else if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                            format!("{v:?}")
                        } else if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
                            format!("{v:?}")
                        } else if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
                            format!("{v:?}")
                        } else if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
                            format!("{v:?}")
                        } else {
                            panic!("{view}.{name} has a type the comparison cannot read")
                        };
                        format!("{name}={value}")
                    })
                    .collect()
            })
            .collect();
        table.sort();
        all.insert((*view).to_owned(), table);
    }
    all
}

/// Copies the key files an operator keeps apart from backups (the KEK file and the signing
/// keys of the log and the access chain) into a new data directory.
pub(crate) fn copy_key_files(from: &Path, to: &Path) {
    for dir in ["keys", "access/keys"] {
        let target = to.join(dir);
        std::fs::create_dir_all(&target).unwrap();
        for entry in std::fs::read_dir(from.join(dir)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
        }
    }
}

fn options_into(log: &TestLog) -> RestoreOptions {
    RestoreOptions {
        into: log.options(),
        archive: None,
        erasures_from: Vec::new(),
        no_surviving_log: true,
        accept_unverified_erasures: false,
        genesis_key: None,
    }
}

/// Whether the restore target holds nothing: no log file (SQLite) or no tables (PostgreSQL).
pub(crate) async fn target_is_empty(log: &TestLog) -> bool {
    match &log.database_url {
        None => [
            "docket.db",
            "identity.db",
            "access/docket.db",
            "read_models.db",
        ]
        .iter()
        .all(|file| !log.dir.path().join(file).exists()),
        Some(url) => {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
            let count: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema IN ('public', 'docket_access')",
            )
            .fetch_one(&mut connection)
            .await
            .unwrap();
            count == 0
        }
    }
}

/// A GraphQL answer of the restored Docket, asked with a session token issued before the backup.
async fn ask_restored(docket: &Docket, token: &str, query: &str) -> Value {
    let principal = docket.identity.authenticate(token).await.unwrap();
    assert!(
        principal.is_some(),
        "the restored credential store keeps sessions"
    );
    let schema = docket::api::graphql::build(
        docket.service.clone(),
        docket.projector.db().clone(),
        docket.identity.clone(),
        docket.checkpoints.clone(),
        docket.integrations.clone(),
    );
    let caller = caller(docket, principal);
    let request = with_loaders(Request::new(query), docket.projector.db()).data(caller.clone());
    let response = schema.execute(request).await;
    caller.flush("test").await.unwrap();
    let response = serde_json::to_value(&response).unwrap();
    assert!(response.get("errors").is_none(), "{response}");
    response["data"].clone()
}

/// The firm of tests/docket/records.rs with a note, a document and a task besides.
async fn busy_firm(backend: Backend) -> Firm {
    let firm = Firm::new(backend).await;
    let content = base64::engine::general_purpose::STANDARD.encode(b"Engagement letter, signed");
    for mutation in [
        format!(
            r#"mutation {{ addNote(number: "{MATTER}", body: "Client called about the hearing",
            subject: "Call") {{ userErrors {{ code }} }} }}"#
        ),
        format!(
            r#"mutation {{ addDocument(number: "{MATTER}", input: {{documentType: "letter",
            title: "Engagement", mediaType: "text/plain", filename: "engagement.txt",
            contentBase64: "{content}"}}) {{ userErrors {{ code }} }} }}"#
        ),
        format!(
            r#"mutation {{ createTask(number: "{MATTER}", title: "File the claim",
            assignee: "p.one", dueOn: "2026-12-20") {{ userErrors {{ code }} }} }}"#
        ),
    ] {
        let answer = firm.ok("p.one", &mutation).await;
        assert!(
            answer.to_string().contains(r#""userErrors":[]"#),
            "{answer}"
        );
    }
    firm
}

async fn the_drill_restores_every_read_model(backend: Backend) {
    let firm = busy_firm(backend).await;
    let before = read_models(&firm.docket).await;
    let answers = firm.ok("p.one", MATTER_QUERY).await;
    let archives = tempfile::tempdir().unwrap();
    let target = Target::directory(archives.path()).unwrap();
    // Backed up while the firm's Docket is open and serving.
    let report = write_backup(&firm.log.options(), &target).await.unwrap();
    assert!(report.verified);
    assert!(report.head > 10);
    assert!(report.access_head > 0);
    let token = firm.users["p.one"].token.clone();
    let hash = answers["matter"]["documents"][0]["versions"][0]["contentHash"]
        .as_str()
        .unwrap()
        .to_owned();

    // The disaster: a new machine gets the separately kept key files, the data is gone.
    let restored = TestLog::new(backend).await;
    copy_key_files(firm.log.dir.path(), restored.dir.path());
    let original_dir = firm.log.dir.path().to_path_buf();
    drop(firm);
    assert!(
        !original_dir.exists(),
        "the original data directory is destroyed"
    );

    let done = restore(&target, &options_into(&restored)).await.unwrap();
    assert_eq!(done.archive, report.name);
    assert_eq!(done.head, report.head);
    assert_eq!(done.projections_rebuilt, 8);
    assert!(done.signing_key_present && done.access_signing_key_present);
    let summary = restored.verify().await.unwrap();
    assert_eq!(summary.events, report.head);

    let docket = Docket::open_with(&restored.options(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(read_models(&docket).await, before);
    assert_eq!(ask_restored(&docket, &token, MATTER_QUERY).await, answers);
    let bytes = docket.service.content(MATTER, &hash).await.unwrap();
    assert_eq!(bytes.as_deref(), Some(&b"Engagement letter, signed"[..]));
}

/// A Docket with some raw events, a document blob larger than two chunks, and its archive.
async fn small_docket(backend: Backend) -> (TestLog, Docket) {
    let log = TestLog::new(backend).await;
    let docket = Docket::open_with(&log.options(), Duration::from_secs(5))
        .await
        .unwrap();
    for i in 0..20 {
        docket
            .log
            .append(one_event(
                &format!("import:{i}"),
                "import.row",
                json!({ "row": i }),
            ))
            .await
            .unwrap();
    }
    let big: Vec<u8> = (0..(5u32 << 19))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let hash = blake3::hash(&big).to_hex().to_string();
    docket.log.store().put_blob(&hash, &big).await.unwrap();
    (log, docket)
}

fn archive_file(archives: &Path, name: &str, file: &str) -> std::path::PathBuf {
    archives.join(name).join(file)
}

/// Splits a part's stored bytes into its framed chunks.
fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let length = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push(bytes[at..at + 4 + length].to_vec());
        at += 4 + length;
    }
    out
}

/// Stores `part` with new bytes and a manifest re-signed by the log's own key, as someone
/// holding the signing key could: only the chunks' own authentication stands in the way.
fn resign_with_part(source: &Path, archives: &Path, name: &str, part: &str, bytes: &[u8]) {
    let part_path = archive_file(archives, name, &format!("{part}.part"));
    std::fs::write(&part_path, bytes).unwrap();
    let manifest_path = archive_file(archives, name, "manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for entry in manifest["parts"].as_array_mut().unwrap() {
        if entry["name"] == json!(part) {
            entry["blake3"] = json!(blake3::hash(bytes).to_hex().to_string());
            entry["bytes"] = json!(bytes.len());
        }
    }
    let text = serde_json::to_vec_pretty(&manifest).unwrap();
    let keys = docket::keyring::Keyring::open(source).unwrap();
    let signer = keys
        .get(manifest["signer"]["key_id"].as_str().unwrap())
        .unwrap();
    let signature = json!({
        "key_id": signer.id().to_string(),
        "signature": hex::encode(signer.sign_manifest(&text)),
    });
    std::fs::write(&manifest_path, &text).unwrap();
    std::fs::write(
        archive_file(archives, name, "manifest.sig"),
        serde_json::to_vec(&signature).unwrap(),
    )
    .unwrap();
}

async fn tampered_archives_are_refused_and_nothing_is_written(backend: Backend) {
    let (log, docket) = small_docket(backend).await;
    let pristine = tempfile::tempdir().unwrap();
    let report = write_backup(&log.options(), &Target::directory(pristine.path()).unwrap())
        .await
        .unwrap();
    let documents = report.parts.iter().find(|p| p.name == "documents").unwrap();
    assert!(documents.chunks >= 3, "the blob spans several chunks");
    let into = TestLog::new(backend).await;
    copy_key_files(log.dir.path(), into.dir.path());
    let name = report.name.clone();

    // Each case works on a fresh copy of the pristine archive.
    let attempt = |change: &dyn Fn(&Path)| {
        let copy = tempfile::tempdir().unwrap();
        let from = pristine.path().join(&name);
        std::fs::create_dir_all(copy.path().join(&name)).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(
                entry.path(),
                copy.path().join(&name).join(entry.file_name()),
            )
            .unwrap();
        }
        change(copy.path());
        copy
    };
    let mut cases: Vec<(String, tempfile::TempDir)> = Vec::new();
    for part in [
        "log",
        "access",
        "keys",
        "documents",
        "checkpoints",
        "credentials",
    ] {
        let copy = attempt(&|dir: &Path| {
            let path = archive_file(dir, &name, &format!("{part}.part"));
            let mut bytes = std::fs::read(&path).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x01;
            std::fs::write(&path, bytes).unwrap();
        });
        cases.push((format!("PART_HASH_MISMATCH {part}"), copy));
    }
    cases.push((
        "PART_HASH_MISMATCH truncated".into(),
        attempt(&|dir: &Path| {
            let path = archive_file(dir, &name, "log.part");
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        }),
    ));
    cases.push((
        "BAD_SIGNATURE edited manifest".into(),
        attempt(&|dir: &Path| {
            let path = archive_file(dir, &name, "manifest.json");
            let text = std::fs::read_to_string(&path).unwrap();
            let edited =
                text.replacen("\"erased_subjects\": []", "\"erased_subjects\": [\"x\"]", 1);
            assert_ne!(text, edited);
            std::fs::write(&path, edited).unwrap();
        }),
    ));
    cases.push((
        "BAD_SIGNATURE foreign signature".into(),
        attempt(&|dir: &Path| {
            let path = archive_file(dir, &name, "manifest.sig");
            let mut signature: Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            signature["signature"] = json!("00".repeat(64));
            std::fs::write(&path, serde_json::to_vec(&signature).unwrap()).unwrap();
        }),
    ));
    let source = log.dir.path().join("keys");
    cases.push((
        "CHUNK_REJECTED reordered".into(),
        attempt(&|dir: &Path| {
            let path = archive_file(dir, &name, "documents.part");
            let mut chunks = frames(&std::fs::read(&path).unwrap());
            chunks.swap(0, 1);
            resign_with_part(
                source.parent().unwrap(),
                dir,
                &name,
                "documents",
                &chunks.concat(),
            );
        }),
    ));
    cases.push((
        "TRUNCATED final chunk removed".into(),
        attempt(&|dir: &Path| {
            let path = archive_file(dir, &name, "documents.part");
            let mut chunks = frames(&std::fs::read(&path).unwrap());
            chunks.pop();
            resign_with_part(
                source.parent().unwrap(),
                dir,
                &name,
                "documents",
                &chunks.concat(),
            );
        }),
    ));
    for (case, dir) in &cases {
        let target = Target::directory(dir.path()).unwrap();
        let error = restore(&target, &options_into(&into)).await.unwrap_err();
        let expected = case.split(' ').next().unwrap();
        assert_eq!(error.code(), expected, "{case}: {error}");
        assert!(
            target_is_empty(&into).await,
            "{case}: nothing may be written"
        );
    }

    // The pristine archive restores into the very same, still empty, target.
    let done = restore(
        &Target::directory(pristine.path()).unwrap(),
        &options_into(&into),
    )
    .await
    .unwrap();
    assert_eq!(done.head, report.head);
    let hash = {
        let big: Vec<u8> = (0..(5u32 << 19))
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        blake3::hash(&big).to_hex().to_string()
    };
    let restored = docket::store::open_existing_store(&into.options())
        .await
        .unwrap();
    assert_eq!(
        restored.get_blob(&hash).await.unwrap().map(|b| b.len()),
        Some(5 << 19)
    );
    drop(docket);
}

async fn erasures_after_a_backup_are_reapplied(backend: Backend) {
    let firm = busy_firm(backend).await;
    let archives = tempfile::tempdir().unwrap();
    let target = Target::directory(archives.path()).unwrap();
    let before_erasure = write_backup(&firm.log.options(), &target).await.unwrap();
    let subject = format!("contact:{}", firm.contact_id);
    let requested = firm.request_erasure("p.one", &subject).await;
    let request_id = requested["id"].as_str().unwrap().to_owned();
    let confirmed = firm.confirm_erasure("p.two", &subject, &request_id).await;
    assert_eq!(confirmed["keyDestroyed"], json!(true));

    let unreadable = |docket: Docket| {
        let contact_id = firm.contact_id.clone();
        let subject = subject.clone();
        async move {
            assert!(docket.vault.is_erased(&subject).await.unwrap());
            let export = docket.service.subject_access(&contact_id).await.unwrap();
            assert!(!export.to_string().contains("Quillon"), "{export}");
            assert_eq!(export["contact"]["erased"], json!(true), "{export}");
            let history = export["history"].as_array().unwrap();
            assert!(
                history
                    .iter()
                    .filter(|entry| entry["type"] == json!("contact.created"))
                    .all(|entry| entry["erased"] == json!(true)),
                "{export}"
            );
        }
    };

    // Without saying where later erasures are, a restore is refused.
    let refused = TestLog::new(backend).await;
    copy_key_files(firm.log.dir.path(), refused.dir.path());
    let mut options = options_into(&refused);
    options.no_surviving_log = false;
    let error = restore(&target, &options).await.unwrap_err();
    assert!(
        matches!(error, BackupError::ErasureSourceRequired),
        "{error}"
    );
    assert!(target_is_empty(&refused).await);

    // From the surviving log.
    let restored = TestLog::new(backend).await;
    copy_key_files(firm.log.dir.path(), restored.dir.path());
    let mut options = options_into(&restored);
    options.no_surviving_log = false;
    options.erasures_from = vec![firm.log.options()];
    options.archive = Some(before_erasure.name.clone());
    let done = restore(&target, &options).await.unwrap();
    assert_eq!(done.erasures_reapplied, vec![subject.clone()]);
    assert_eq!(done.surviving_logs_read, 1);
    assert!(done.erasures_recorded);
    restored.verify().await.unwrap();
    let docket = Docket::open_with(&restored.options(), Duration::from_secs(5))
        .await
        .unwrap();
    unreadable(docket).await;

    // From a later archive, with no surviving log at all.
    let after_erasure = write_backup(&firm.log.options(), &target).await.unwrap();
    assert!(after_erasure.erased_subjects >= 1);
    let restored = TestLog::new(backend).await;
    copy_key_files(firm.log.dir.path(), restored.dir.path());
    let mut options = options_into(&restored);
    options.archive = Some(before_erasure.name.clone());
    let done = restore(&target, &options).await.unwrap();
    assert_eq!(done.erasures_reapplied, vec![subject.clone()]);
    assert_eq!(done.later_archives_read, 1);
    restored.verify().await.unwrap();
    let docket = Docket::open_with(&restored.options(), Duration::from_secs(5))
        .await
        .unwrap();
    unreadable(docket).await;
}

/// A later archive's erased-subject list is taken only from a manifest signed by a key of the
/// log: anyone who can write to the target could otherwise have data destroyed at restore. One
/// nobody vouches for stops the restore until the operator moves it aside or accepts it.
async fn a_later_archive_no_key_of_the_log_vouches_for_stops_the_restore(backend: Backend) {
    let firm = busy_firm(backend).await;
    let archives = tempfile::tempdir().unwrap();
    let target = Target::directory(archives.path()).unwrap();
    let restored_one = write_backup(&firm.log.options(), &target).await.unwrap();
    let later = write_backup(&firm.log.options(), &target).await.unwrap();
    assert!(later.name > restored_one.name);
    let folder = archives.path().join(&later.name);
    let honest_manifest = std::fs::read(folder.join("manifest.json")).unwrap();
    let honest_signature = std::fs::read(folder.join("manifest.sig")).unwrap();
    let contact = format!("contact:{}", firm.contact_id);
    let restore_into = |accept: bool| {
        let target = target.clone();
        let firm_dir = firm.log.dir.path().to_owned();
        let archive = restored_one.name.clone();
        async move {
            let into = TestLog::new(backend).await;
            copy_key_files(&firm_dir, into.dir.path());
            let mut options = options_into(&into);
            options.archive = Some(archive);
            options.accept_unverified_erasures = accept;
            let result = restore(&target, &options).await;
            (into, result)
        }
    };

    // Someone who can write to the target adds a client to the later archive's list.
    let mut forged: Value = serde_json::from_slice(&honest_manifest).unwrap();
    forged["erased_subjects"]
        .as_array_mut()
        .unwrap()
        .push(json!(contact));
    let forged = serde_json::to_vec(&forged).unwrap();
    std::fs::write(folder.join("manifest.json"), &forged).unwrap();
    let (into, result) = restore_into(false).await;
    let error = result.unwrap_err();
    assert!(
        matches!(&error, BackupError::UnverifiedLaterArchive { name, reason }
            if *name == later.name && reason.contains("signature")),
        "{error}"
    );
    assert_eq!(error.code(), "UNVERIFIED_LATER_ARCHIVE");
    assert!(error.to_string().contains("--accept-unverified-erasures"));
    assert!(target_is_empty(&into).await, "nothing written");

    // Signed again, by a key that is not the log's: the signature holds and vouches for nothing.
    let stranger = docket::log::keys::LogSigner::generate().unwrap();
    let mut resigned: Value = serde_json::from_slice(&forged).unwrap();
    resigned["signer"] = json!({
        "key_id": stranger.id().as_str(),
        "public_key": stranger.public_key_hex(),
    });
    let resigned = serde_json::to_vec(&resigned).unwrap();
    let signature = json!({
        "key_id": stranger.id().as_str(),
        "signature": hex::encode(stranger.sign_manifest(&resigned)),
    });
    std::fs::write(folder.join("manifest.json"), &resigned).unwrap();
    std::fs::write(
        folder.join("manifest.sig"),
        serde_json::to_vec(&signature).unwrap(),
    )
    .unwrap();
    let (into, result) = restore_into(false).await;
    let error = result.unwrap_err();
    assert!(
        matches!(&error, BackupError::UnverifiedLaterArchive { reason, .. }
            if reason.contains("not a key of this log")),
        "{error}"
    );
    assert!(target_is_empty(&into).await);

    // Accepted by the operator, the list is applied and the report names the archive.
    let (_, result) = restore_into(true).await;
    let done = result.unwrap();
    assert_eq!(done.unverified_later_archives, vec![later.name.clone()]);
    assert_eq!(done.erasures_reapplied, vec![contact.clone()]);

    // The honest manifest, signed by the log's key, is taken without question: nothing erased.
    std::fs::write(folder.join("manifest.json"), &honest_manifest).unwrap();
    std::fs::write(folder.join("manifest.sig"), &honest_signature).unwrap();
    let (restored, result) = restore_into(false).await;
    let done = result.unwrap();
    assert_eq!(done.later_archives_read, 1);
    assert!(done.unverified_later_archives.is_empty());
    assert!(done.erasures_reapplied.is_empty());
    restored.verify().await.unwrap();
}

async fn a_backup_taken_during_appends_is_a_consistent_cut(backend: Backend) {
    let log = TestLog::new(backend).await;
    let docket = Docket::open_with(&log.options(), Duration::from_secs(5))
        .await
        .unwrap();
    let running = Arc::new(AtomicBool::new(true));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let event_log = docket.log.clone();
        let running = running.clone();
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while running.load(Ordering::Relaxed) || i < 50 {
                event_log
                    .append(one_event(
                        &format!("import:{writer}-{}", i % 7),
                        "import.row",
                        json!({ "row": i }),
                    ))
                    .await
                    .unwrap();
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The object-store path, on its in-memory implementation.
    let target = Target::from_store(
        Arc::new(object_store::memory::InMemory::new()),
        "firm/backups",
        "memory",
    );
    let report = write_backup(&log.options(), &target).await.unwrap();
    running.store(false, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let head_after = docket.log.head().await.unwrap().position;
    assert!(head_after > report.head, "appends went on after the cut");

    let restored = TestLog::new(backend).await;
    copy_key_files(log.dir.path(), restored.dir.path());
    let done = restore(&target, &options_into(&restored)).await.unwrap();
    assert_eq!(done.head, report.head);
    assert_eq!(restored.verify().await.unwrap().events, report.head);
    let original = docket.log.store().read_page(1, 100_000).await.unwrap();
    let copy = docket::store::open_existing_store(&restored.options())
        .await
        .unwrap()
        .read_page(1, 100_000)
        .await
        .unwrap();
    assert_eq!(copy[..], original[..copy.len()]);
}

async fn retention_keeps_the_newest_complete_archives(backend: Backend) {
    let log = TestLog::new(backend).await;
    let docket = Docket::open_with(&log.options(), Duration::from_secs(5))
        .await
        .unwrap();
    let archives = tempfile::tempdir().unwrap();
    let spec = format!("file://{}", archives.path().display());
    let target = Target::parse(&spec).unwrap();
    // An archive still being written (no manifest yet) is never deleted.
    let unfinished = archives.path().join("docket-20000101T000000000Z-00000000");
    std::fs::create_dir_all(&unfinished).unwrap();
    std::fs::write(unfinished.join("log.part"), b"partial").unwrap();
    let mut names = Vec::new();
    for _ in 0..4 {
        names.push(write_backup(&log.options(), &target).await.unwrap().name);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        apply_retention(&target, 2).await.unwrap(),
        names[..2].to_vec()
    );
    let left = target.archives().await.unwrap();
    let complete: Vec<_> = left
        .iter()
        .filter(|a| a.complete)
        .map(|a| a.name.clone())
        .collect();
    assert_eq!(complete, names[2..].to_vec());
    assert!(
        left.iter().any(|a| !a.complete),
        "the unfinished archive stays"
    );

    // The schedule inside `serve`: every interval a verified archive, then retention.
    let scheduled = tempfile::tempdir().unwrap();
    let schedule = BackupSchedule {
        to: scheduled.path().display().to_string(),
        interval: Duration::from_millis(300),
        keep: 2,
    };
    let task = docket::backup::schedule::spawn(log.options(), Some(schedule)).unwrap();
    let target = Target::directory(scheduled.path()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let complete: Vec<String> = target
            .archives()
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.complete)
            .map(|a| a.name)
            .collect();
        assert!(
            complete.len() <= 3,
            "retention runs after each backup: {complete:?}"
        );
        seen.extend(complete.iter().cloned());
        if seen.len() >= 4 && complete.len() == 2 {
            break;
        }
    }
    assert!(seen.len() >= 4, "the schedule ran: {seen:?}");
    task.abort();
    let _ = task.await;
    let complete = target.archives().await.unwrap();
    assert_eq!(
        complete.iter().filter(|a| a.complete).count(),
        2,
        "{complete:?}"
    );
    drop(docket);
}

async fn the_commands_back_up_refuse_and_restore(backend: Backend) {
    let (log, docket) = small_docket(backend).await;
    let archives = tempfile::tempdir().unwrap();
    let out = log
        .docket_command()
        .args(["backup", "--json", "--out"])
        .arg(archives.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(written["status"], json!("written"));
    let name = written["report"]["name"].as_str().unwrap().to_owned();
    drop(docket);

    let into = TestLog::new(backend).await;
    copy_key_files(log.dir.path(), into.dir.path());
    let restore = |extra: &[&str]| {
        let mut command = into.docket_command();
        command
            .args(["restore", "--json", "--from"])
            .arg(archives.path());
        command.args(extra);
        command.output().unwrap()
    };
    // An archive that is not there, and no erasure source named: refused (exit 2).
    let out = restore(&["--no-surviving-log", "--archive", "docket-nothing"]);
    assert_eq!(out.status.code(), Some(2));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["code"], json!("NO_ARCHIVE"));
    let out = restore(&[]);
    assert_eq!(out.status.code(), Some(2));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["code"], json!("ERASURE_SOURCE_REQUIRED"));

    // A flipped byte: refused as tampering (exit 1), nothing written.
    let part = archives.path().join(&name).join("keys.part");
    let pristine = std::fs::read(&part).unwrap();
    let mut flipped = pristine.clone();
    flipped[10] ^= 0x80;
    std::fs::write(&part, &flipped).unwrap();
    let out = restore(&["--no-surviving-log"]);
    assert_eq!(out.status.code(), Some(1));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["code"], json!("PART_HASH_MISMATCH"));
    assert!(target_is_empty(&into).await);

    std::fs::write(&part, &pristine).unwrap();
    let out = restore(&["--no-surviving-log", "--archive", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["report"]["head"], written["report"]["head"]);
    let verify = into.docket_command().arg("verify").output().unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // A Docket that never recorded an access: its restore has no access chain either.
    let bare = TestLog::new(backend).await;
    for args in [&["init"][..], &["keys", "kek-status"][..]] {
        assert!(
            bare.docket_command()
                .args(args)
                .output()
                .unwrap()
                .status
                .success()
        );
    }
    let archives = tempfile::tempdir().unwrap();
    let out = bare
        .docket_command()
        .args(["backup", "--out"])
        .arg(archives.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let into = TestLog::new(backend).await;
    std::fs::create_dir_all(into.dir.path().join("keys")).unwrap();
    for entry in std::fs::read_dir(bare.dir.path().join("keys")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            into.dir.path().join("keys").join(entry.file_name()),
        )
        .unwrap();
    }
    let out = into
        .docket_command()
        .args(["restore", "--no-surviving-log", "--from"])
        .arg(archives.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verify = into.docket_command().arg("verify").output().unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

on_both_backends!(
    the_commands_back_up_refuse_and_restore,
    the_commands_back_up_to_and_restore_from_an_s3_server,
    the_drill_restores_every_read_model,
    tampered_archives_are_refused_and_nothing_is_written,
    erasures_after_a_backup_are_reapplied,
    a_later_archive_no_key_of_the_log_vouches_for_stops_the_restore,
    a_backup_taken_during_appends_is_a_consistent_cut,
    retention_keeps_the_newest_complete_archives,
);

// ---- an S3-compatible server -----------------------------------------------------------------

/// The S3-compatible server the tests use (`DOCKET_TEST_S3_ENDPOINT`, default
/// `http://127.0.0.1:9000`; `.ci/run` starts one).
fn s3_endpoint() -> String {
    std::env::var("DOCKET_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9000".to_owned())
}

/// Creates `bucket` on the test server with a plain HTTP `PUT /bucket` (the test server does
/// not check credentials; the object store library cannot create buckets).
async fn create_bucket(bucket: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = s3_endpoint();
    let host = endpoint
        .strip_prefix("http://")
        .expect("DOCKET_TEST_S3_ENDPOINT is an http:// URL")
        .trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .unwrap_or_else(|error| {
            panic!("an S3-compatible server must listen on {endpoint} (DOCKET_TEST_S3_ENDPOINT): {error}")
        });
    let request = format!(
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Runs `command`, which must succeed; what it wrote to standard output.
fn succeeded(mut command: std::process::Command) -> Vec<u8> {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The drill through a real S3 API: `docket backup --out s3://...` writes the archive over HTTP,
/// `docket restore --from s3://...` lists, checks and restores it into an empty data directory,
/// and the restored log verifies.
async fn the_commands_back_up_to_and_restore_from_an_s3_server(backend: Backend) {
    let (log, docket) = small_docket(backend).await;
    let bucket = format!(
        "docket-test-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    );
    create_bucket(&bucket).await;
    let url = format!("s3://{bucket}/firm/docket");
    let with_s3 = |mut command: std::process::Command| {
        command
            .env("AWS_ENDPOINT", s3_endpoint())
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "docket-test")
            .env("AWS_SECRET_ACCESS_KEY", "docket-test-secret")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE");
        command
    };

    let mut backup = with_s3(log.docket_command());
    backup.args(["backup", "--json", "--out", &url]);
    let written: Value = serde_json::from_slice(&succeeded(backup)).unwrap();
    assert_eq!(written["status"], json!("written"));
    assert_eq!(
        written["report"]["verified"],
        json!(true),
        "read back from S3"
    );
    let name = written["report"]["name"].as_str().unwrap().to_owned();
    drop(docket);

    let into = TestLog::new(backend).await;
    copy_key_files(log.dir.path(), into.dir.path());
    let mut list = with_s3(into.docket_command());
    list.args(["restore", "--list", "--from", &url]);
    assert_eq!(
        String::from_utf8_lossy(&succeeded(list)).trim(),
        format!("{name}  complete")
    );

    let mut restore = with_s3(into.docket_command());
    restore.args(["restore", "--json", "--no-surviving-log", "--from", &url]);
    let answer: Value = serde_json::from_slice(&succeeded(restore)).unwrap();
    assert_eq!(answer["report"]["archive"], json!(name));
    assert_eq!(answer["report"]["head"], written["report"]["head"]);
    let verify = into.docket_command().arg("verify").output().unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}
