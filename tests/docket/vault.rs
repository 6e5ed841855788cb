//! The vault over a real log database: one data key per subject, stored only wrapped; sealed
//! values that open only with their subject's key and for their event; erasure that the
//! database refuses to undo and that leaves no copy of the key behind; and KEK rotation and
//! retirement, through the API and through `docket keys`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use docket::domain::{OpenPrivate, PrivatePart};
use docket::store::EventLog;
use docket::vault::{BlindKind, LocalMasterKeys, MasterKeys, Vault, VaultError};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection};

use crate::on_both_backends;
use crate::support::{Backend, TestLog};

on_both_backends!(
    a_subjects_key_is_created_once_and_reused,
    two_vaults_on_one_database_agree_on_one_key_per_subject,
    a_sealed_part_opens_with_its_subjects_key_and_only_for_its_event,
    erasure_destroys_the_key_and_the_database_refuses_to_undo_it,
    document_content_round_trips_and_goes_with_its_subject,
    rotation_rewraps_every_key_and_retiring_the_old_version_disarms_old_copies,
    kek_status_rotate_and_retire_from_the_command_line,
);

async fn open_vault(test: &TestLog, log: &EventLog) -> Arc<Vault> {
    let master = LocalMasterKeys::open_file(&test.options().data_dir).unwrap();
    Vault::open(log.store().clone(), Arc::new(master))
        .await
        .unwrap()
}

fn now() -> String {
    docket::log::time::now_timestamp()
}

/// Rows of one SQL query as (KEK version, wrapped key) pairs, read as an operator with SQL
/// access would.
async fn wrapped_rows(test: &TestLog, sql: &str) -> Vec<(Option<i64>, Option<Vec<u8>>)> {
    match test.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", test.dir.path().join("docket.db").display());
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let rows = sqlx::query_as(AssertSqlSafe(sql.to_owned()))
                .fetch_all(&mut connection)
                .await
                .unwrap();
            connection.close().await.unwrap();
            rows
        }
        Backend::Postgres => {
            let url = test.database_url.as_deref().unwrap();
            let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
            let rows = sqlx::query_as(AssertSqlSafe(sql.to_owned()))
                .fetch_all(&mut connection)
                .await
                .unwrap();
            connection.close().await.unwrap();
            rows
        }
    }
}

/// The stored (KEK version, wrapped key) of `key_id`.
async fn stored_key(test: &TestLog, key_id: &str) -> (Option<i64>, Option<Vec<u8>>) {
    let sql = format!("SELECT kek_version, wrapped FROM data_keys WHERE key_id = '{key_id}'");
    let mut rows = wrapped_rows(test, &sql).await;
    assert_eq!(rows.len(), 1, "one row for {key_id}");
    rows.remove(0)
}

async fn count(test: &TestLog, sql: &str) -> i64 {
    wrapped_rows(
        test,
        &format!("SELECT COUNT(*), NULL FROM ({sql}) AS counted"),
    )
    .await
    .first()
    .and_then(|(count, _)| *count)
    .unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

async fn a_subjects_key_is_created_once_and_reused(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let vault = open_vault(&test, &log).await;

    let (first_id, first) = vault.sealing_key("contact:c-1").await.unwrap();
    let (again_id, again) = vault.sealing_key("contact:c-1").await.unwrap();
    assert_eq!(first_id, again_id);
    assert_eq!(first.as_bytes(), again.as_bytes());
    let (other_id, other) = vault.sealing_key("matter:M-1").await.unwrap();
    assert_ne!(other_id, first_id);
    assert_ne!(other.as_bytes(), first.as_bytes());

    // A restarted process (a fresh vault, nothing cached) is handed the stored key.
    let reopened = open_vault(&test, &log).await;
    let (reopened_id, reopened_key) = reopened.sealing_key("contact:c-1").await.unwrap();
    assert_eq!(reopened_id, first_id);
    assert_eq!(reopened_key.as_bytes(), first.as_bytes());
    // Two subjects and the blind-index key: three rows.
    assert_eq!(count(&test, "SELECT key_id FROM data_keys").await, 3);
    assert_eq!(
        reopened.blind(BlindKind::Email, " Ada@Firm.example "),
        vault.blind(BlindKind::Email, "ada@firm.example")
    );
}

async fn two_vaults_on_one_database_agree_on_one_key_per_subject(backend: Backend) {
    let test = TestLog::new(backend).await;
    let (log_a, log_b) = (test.open().await, test.open().await);
    // Both open at once on an empty key table: they race to create the blind-index key.
    let (vault_a, vault_b) = tokio::join!(open_vault(&test, &log_a), open_vault(&test, &log_b));
    assert_eq!(
        vault_a.blind(BlindKind::Name, "Hale"),
        vault_b.blind(BlindKind::Name, "Hale")
    );

    let subjects: Vec<String> = (0..40).map(|i| format!("contact:race-{i}")).collect();
    let claim = |vault: Arc<Vault>, subjects: Vec<String>| {
        tokio::spawn(async move {
            let tasks = subjects.into_iter().map(|subject| {
                let vault = vault.clone();
                async move { vault.sealing_key(&subject).await.map(|(id, _)| id) }
            });
            futures::future::try_join_all(tasks).await
        })
    };
    let (ids_a, ids_b) = tokio::join!(
        claim(vault_a.clone(), subjects.clone()),
        claim(vault_b.clone(), subjects.clone())
    );
    let (ids_a, ids_b) = (ids_a.unwrap().unwrap(), ids_b.unwrap().unwrap());
    assert_eq!(ids_a, ids_b);
    assert_eq!(count(&test, "SELECT key_id FROM data_keys").await, 41);
    assert_eq!(
        count(&test, "SELECT DISTINCT subject FROM data_keys").await,
        41
    );
    // And each vault holds the same key under the id, not a key it made and lost.
    let keys_a = vault_a.keys(ids_a.clone()).await.unwrap();
    let keys_b = vault_b.keys(ids_b.clone()).await.unwrap();
    for id in &ids_a {
        let a = keys_a.key(id).unwrap().unwrap();
        let b = keys_b.key(id).unwrap().unwrap();
        assert_eq!(a.as_bytes(), b.as_bytes());
    }
}

async fn a_sealed_part_opens_with_its_subjects_key_and_only_for_its_event(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let vault = open_vault(&test, &log).await;
    let private = json!({"subject": "Settlement", "body": "Client will accept 41,500 GBP"});
    let event_id = uuid::Uuid::now_v7().to_string();

    let sealed = vault
        .seal_private("matter:M-7", &event_id, &private)
        .await
        .unwrap();
    assert_eq!(sealed["sealed"], "docket-seal/1");
    assert!(!sealed.to_string().contains("41,500"));
    let key_id = sealed["key"].as_str().unwrap().to_owned();
    let (sealing_id, raw_key) = vault.sealing_key("matter:M-7").await.unwrap();
    assert_eq!(key_id, sealing_id);

    // Another process opens it with the keys it loads from the database.
    let other = open_vault(&test, &log).await;
    let keys = other.keys([key_id.clone()]).await.unwrap();
    assert_eq!(
        OpenPrivate::open(&keys, &event_id, &sealed).unwrap(),
        PrivatePart::Plain(private.clone())
    );
    // Bound to its event: moved to another event, or altered, it does not open.
    assert!(OpenPrivate::open(&keys, "another-event", &sealed).is_err());
    let mut altered = sealed.clone();
    let ciphertext = sealed["ciphertext"].as_str().unwrap();
    let flipped = if ciphertext.starts_with('A') {
        "B"
    } else {
        "A"
    };
    altered["ciphertext"] = Value::String(format!("{flipped}{}", &ciphertext[1..]));
    assert!(OpenPrivate::open(&keys, &event_id, &altered).is_err());
    // A key set without its key says so rather than guessing.
    let empty = other.keys(Vec::<String>::new()).await.unwrap();
    assert!(OpenPrivate::open(&empty, &event_id, &sealed).is_err());
    // A part written in clear passes through as it is.
    assert_eq!(
        OpenPrivate::open(&keys, &event_id, &json!({"body": "plain"})).unwrap(),
        PrivatePart::Plain(json!({"body": "plain"}))
    );

    // The database holds the key wrapped under KEK version 1, never the key itself.
    let (version, wrapped) = stored_key(&test, &key_id).await;
    let wrapped = wrapped.unwrap();
    assert_eq!(version, Some(1));
    assert_eq!(wrapped.len(), 12 + 32 + 16);
    assert!(!contains(&wrapped, raw_key.as_bytes()));
    let master = LocalMasterKeys::open_file(&test.options().data_dir).unwrap();
    let unwrapped = master.unwrap(1, &key_id, &wrapped).await.unwrap();
    assert_eq!(unwrapped.as_bytes(), raw_key.as_bytes());
}

async fn erasure_destroys_the_key_and_the_database_refuses_to_undo_it(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let vault = open_vault(&test, &log).await;
    let event_id = uuid::Uuid::now_v7().to_string();
    let private = json!({"display_name": "Margaret Hale"});
    let sealed = vault
        .seal_private("contact:c-9", &event_id, &private)
        .await
        .unwrap();
    let key_id = sealed["key"].as_str().unwrap().to_owned();
    let (_, wrapped_before) = stored_key(&test, &key_id).await;
    // A second vault has the key cached before the erasure.
    let other = open_vault(&test, &log).await;
    other.keys([key_id.clone()]).await.unwrap();

    assert!(vault.erase("contact:c-9", &now()).await.unwrap());
    assert!(!vault.erase("contact:c-9", &now()).await.unwrap());
    assert!(
        !vault
            .erase("contact:never-had-a-key", &now())
            .await
            .unwrap()
    );
    assert!(vault.is_erased("contact:c-9").await.unwrap());
    assert!(
        vault
            .erase(docket::vault::BLIND_INDEX_SUBJECT, &now())
            .await
            .is_err()
    );

    let keys = vault.keys([key_id.clone()]).await.unwrap();
    assert!(keys.key(&key_id).unwrap().is_none());
    assert_eq!(
        OpenPrivate::open(&keys, &event_id, &sealed).unwrap(),
        PrivatePart::Erased
    );
    let fresh = open_vault(&test, &log).await;
    let keys = fresh.keys([key_id.clone()]).await.unwrap();
    assert_eq!(
        OpenPrivate::open(&keys, &event_id, &sealed).unwrap(),
        PrivatePart::Erased
    );
    for vault in [&vault, &fresh] {
        assert!(matches!(
            vault.sealing_key("contact:c-9").await,
            Err(VaultError::SubjectErased { subject }) if subject == "contact:c-9"
        ));
        assert!(
            vault
                .seal_private("contact:c-9", &event_id, &private)
                .await
                .is_err()
        );
    }

    // The row stays, empty, and SQL cannot remove it, revive it or put the key back.
    assert_eq!(stored_key(&test, &key_id).await, (None, None));
    let restore = format!(
        "UPDATE data_keys SET wrapped = {}, kek_version = 1, erased_at = NULL \
         WHERE key_id = '{key_id}'",
        test.bytes_literal(&wrapped_before.unwrap())
    );
    for statement in [
        format!("DELETE FROM data_keys WHERE key_id = '{key_id}'"),
        format!("UPDATE data_keys SET erased_at = NULL WHERE key_id = '{key_id}'"),
        format!("UPDATE data_keys SET erased_at = '2020-01-01' WHERE key_id = '{key_id}'"),
        restore,
    ] {
        let refused = test.try_execute(&statement).await.unwrap_err();
        assert!(refused.contains("data key"), "{statement}: {refused}");
    }
    // Nor can the subject be given a new key beside the erased one.
    let second = "INSERT INTO data_keys (key_id, subject, kek_version, wrapped, created_at) \
                  VALUES ('dk_0000000000000000', 'contact:c-9', 1, 'x', 'now')";
    let refused = test.try_execute(second).await.unwrap_err();
    assert!(refused.contains("subject"), "{refused}");
    assert_eq!(stored_key(&test, &key_id).await, (None, None));
}

async fn document_content_round_trips_and_goes_with_its_subject(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let vault = open_vault(&test, &log).await;
    let content = b"Witness statement of Margaret Hale, 3 March".to_vec();
    let hash = blake3::hash(&content).to_hex().to_string();

    vault
        .put_content("matter:M-3", &hash, &content)
        .await
        .unwrap();
    vault
        .put_content("matter:M-3", &hash, &content)
        .await
        .unwrap();
    assert_eq!(
        vault.content("matter:M-3", &hash).await.unwrap(),
        Some(content.clone())
    );
    assert_eq!(
        open_vault(&test, &log)
            .await
            .content("matter:M-3", &hash)
            .await
            .unwrap(),
        Some(content.clone())
    );
    assert_eq!(vault.content("matter:M-3", "0000").await.unwrap(), None);
    assert_eq!(vault.content("matter:M-none", &hash).await.unwrap(), None);
    // Stored sealed: the database does not hold the words.
    let stored = wrapped_rows(&test, "SELECT size, sealed FROM document_contents").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, Some(content.len() as i64));
    assert!(!contains(stored[0].1.as_deref().unwrap(), b"Margaret Hale"));

    assert!(vault.erase("matter:M-3", &now()).await.unwrap());
    assert!(matches!(
        vault.content("matter:M-3", &hash).await,
        Err(VaultError::SubjectErased { .. })
    ));
    assert_eq!(
        count(&test, "SELECT key_id FROM document_contents").await,
        0
    );
    assert!(
        vault
            .put_content("matter:M-3", &hash, &content)
            .await
            .is_err()
    );
}

async fn rotation_rewraps_every_key_and_retiring_the_old_version_disarms_old_copies(
    backend: Backend,
) {
    let test = TestLog::new(backend).await;
    let log = test.open().await;
    let vault = open_vault(&test, &log).await;
    let mut sealed = Vec::new();
    for i in 0..30 {
        let event_id = uuid::Uuid::now_v7().to_string();
        let private = json!({"body": format!("note {i}")});
        let value = vault
            .seal_private(&format!("contact:r-{i}"), &event_id, &private)
            .await
            .unwrap();
        sealed.push((event_id, private, value));
    }
    let keys_total = 31; // and the blind-index key
    let old_id = sealed[0].2["key"].as_str().unwrap().to_owned();
    let (_, old_copy) = stored_key(&test, &old_id).await;
    let old_copy = old_copy.unwrap();
    assert_eq!(vault.kek_usage().await.unwrap(), vec![(1, keys_total)]);
    assert!(matches!(
        vault.retire_kek(1).await,
        Err(VaultError::CurrentVersion { version: 1 })
    ));

    // A version added but not yet rewrapped to (an interrupted rotation): the old one is
    // still in use, and keys created meanwhile are wrapped under the new one.
    assert_eq!(vault.master().add_version().await.unwrap(), 2);
    assert!(matches!(
        vault.retire_kek(1).await,
        Err(VaultError::VersionInUse { version: 1, count }) if count == keys_total
    ));
    vault.sealing_key("contact:late").await.unwrap();
    assert_eq!(
        vault.kek_usage().await.unwrap(),
        vec![(1, keys_total), (2, 1)]
    );
    let finished = vault.rewrap_all(2, &|_| {}).await.unwrap();
    assert_eq!(finished.rewrapped, keys_total);
    assert_eq!(vault.kek_usage().await.unwrap(), vec![(2, keys_total + 1)]);

    // A full rotation, reporting as it goes.
    let reported = AtomicU64::new(0);
    let rotation = vault
        .rotate_kek(&|progress| reported.store(progress.rewrapped, Ordering::SeqCst))
        .await
        .unwrap();
    assert_eq!(rotation.to_version, 3);
    assert_eq!(rotation.rewrapped, keys_total + 1);
    assert_eq!(reported.load(Ordering::SeqCst), keys_total + 1);
    assert_eq!(vault.kek_usage().await.unwrap(), vec![(3, keys_total + 1)]);
    let (version, rewrapped) = stored_key(&test, &old_id).await;
    assert_eq!(version, Some(3));
    assert_ne!(rewrapped.unwrap(), old_copy);

    // Retire the old versions; the current one is refused.
    vault.retire_kek(1).await.unwrap();
    vault.retire_kek(2).await.unwrap();
    assert!(matches!(
        vault.retire_kek(3).await,
        Err(VaultError::CurrentVersion { version: 3 })
    ));
    assert_eq!(vault.master().versions().await.unwrap(), vec![3]);

    // A restarted process with the same key file opens everything sealed before rotation.
    let fresh = open_vault(&test, &log).await;
    let ids = sealed
        .iter()
        .map(|(_, _, value)| value["key"].as_str().unwrap().to_owned());
    let keys = fresh.keys(ids).await.unwrap();
    for (event_id, private, value) in &sealed {
        assert_eq!(
            OpenPrivate::open(&keys, event_id, value).unwrap(),
            PrivatePart::Plain(private.clone())
        );
    }
    // The copy of the key taken before rotation (a backup, a WAL segment) is now useless.
    let master = LocalMasterKeys::open_file(&test.options().data_dir).unwrap();
    assert!(matches!(
        master.unwrap(1, &old_id, &old_copy).await,
        Err(VaultError::KekUnavailable { version: 1 })
    ));
    assert!(vault.master().unwrap(1, &old_id, &old_copy).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_key_leaves_no_copy_in_the_sqlite_file_or_wal() {
    let test = TestLog::new(Backend::Sqlite).await;
    let log = test.open().await;
    let vault = open_vault(&test, &log).await;
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(
            vault
                .sealing_key(&format!("contact:f-{i}"))
                .await
                .unwrap()
                .0,
        );
    }
    let target = &ids[25];
    let (_, wrapped) = stored_key(&test, target).await;
    let wrapped = wrapped.unwrap();

    // Every file of the data directory except the key-encryption keys.
    let database_bytes = || {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(test.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                all.extend(std::fs::read(&path).unwrap());
            }
        }
        all
    };
    // The search finds the key while it exists, so its absence afterwards means something.
    assert!(contains(&database_bytes(), &wrapped));

    assert!(vault.erase("contact:f-25", &now()).await.unwrap());
    let after = database_bytes();
    assert!(
        !contains(&after, &wrapped),
        "the erased wrapped key is still on disk"
    );
    // The neighbours' keys are still there.
    let (_, neighbour) = stored_key(&test, &ids[24]).await;
    assert!(contains(&database_bytes(), &neighbour.unwrap()));
}

async fn kek_status_rotate_and_retire_from_the_command_line(backend: Backend) {
    let test = TestLog::new(backend).await;
    let run = |args: &[&str]| {
        let output = test.docket_command().args(args).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(run(&["init"]).0, Some(0));
    {
        let log = test.open().await;
        let vault = open_vault(&test, &log).await;
        for i in 0..5 {
            vault.sealing_key(&format!("contact:k-{i}")).await.unwrap();
        }
    }

    let (code, status, _) = run(&["keys", "kek-status"]);
    assert_eq!(code, Some(0));
    assert!(
        status.contains("version 1 (current): 6 data keys"),
        "{status}"
    );

    let (code, rotated, _) = run(&["keys", "rotate-kek"]);
    assert_eq!(code, Some(0), "{rotated}");
    assert!(rotated.contains("to version 2"), "{rotated}");
    assert!(rotated.contains("6 data keys rewrapped"), "{rotated}");

    let (_, status, _) = run(&["keys", "kek-status"]);
    assert!(status.contains("version 1: 0 data keys"), "{status}");
    assert!(
        status.contains("version 2 (current): 6 data keys"),
        "{status}"
    );

    let (code, _, refused) = run(&["keys", "retire-kek", "--version", "2"]);
    assert_eq!(code, Some(2));
    assert!(refused.contains("current"), "{refused}");
    let (code, _, refused) = run(&["keys", "retire-kek", "--version", "7"]);
    assert_eq!(code, Some(2), "{refused}");
    let (code, retired, _) = run(&["keys", "retire-kek", "--version", "1"]);
    assert_eq!(code, Some(0));
    assert!(retired.contains("version 1 retired"), "{retired}");

    let (_, status, _) = run(&["keys", "kek-status"]);
    assert!(!status.contains("version 1"), "{status}");
    assert!(
        status.contains("version 2 (current): 6 data keys"),
        "{status}"
    );
    // Nothing printed resembles key material: no run of 32 or more hex digits.
    let key_file = std::fs::read_to_string(test.dir.path().join("keys/master.kek")).unwrap();
    for line in key_file.lines().skip(1) {
        let hex = line.split_whitespace().nth(1).unwrap();
        assert!(!status.contains(hex) && !rotated.contains(hex));
    }
}
