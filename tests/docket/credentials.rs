//! The identity layer's credential store: passwords, TOTP, recovery codes, enrolment tokens,
//! sessions, API keys and throttling counters, on both backends. Every check-then-change is
//! raced against itself to show that exactly one caller wins, and everything survives reopening.

use chrono::{DateTime, Duration, TimeZone, Utc};
use docket::identity::credentials::{
    ApiKeyRecord, CredentialError, CredentialStore, NewApiKey, NewSession, TotpRecord,
};

use crate::on_both_backends;
use crate::support::{Backend, TestLog};

on_both_backends!(
    passwords_are_stored_replaced_and_removed,
    a_totp_enrolment_is_pending_until_confirmed,
    a_totp_step_is_accepted_once_and_never_after_a_later_one,
    of_concurrent_uses_of_one_totp_step_exactly_one_wins,
    recovery_codes_work_once_and_are_replaced_together,
    an_enrolment_token_redeems_once_and_not_after_expiry,
    sessions_end_by_idle_timeout_and_by_absolute_expiry,
    revoked_sessions_are_gone_at_once,
    last_seen_is_not_written_on_every_use,
    a_step_up_is_recorded_on_a_live_session,
    expired_and_revoked_api_keys_are_not_returned,
    api_key_use_is_recorded_at_most_every_thirty_seconds,
    concurrent_failures_are_each_counted_then_cleared_and_locked,
    everything_survives_reopening_the_store,
    the_sqlite_file_is_private_and_the_data_directory_untouched,
    duplicates_are_refused_without_quoting_values,
    debug_output_never_shows_a_whole_secret_or_hash,
);

const ADA: &str = "user:ada";
const BOB: &str = "user:bob";

// ---- helpers -------------------------------------------------------------------------------

async fn open(log: &TestLog) -> CredentialStore {
    CredentialStore::open(log.dir.path(), log.database_url.as_deref())
        .await
        .expect("credential store opens")
}

/// A fixed starting time, so every test controls the clock.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

/// A fake lowercase hex hash, distinct per name.
fn hash(name: &str) -> String {
    let mut text = hex::encode(name.as_bytes());
    while text.len() < 64 {
        text.push('0');
    }
    text
}

fn session(id: &str, principal: &str, idle: u64, absolute: i64) -> NewSession {
    NewSession {
        token_hash: hash(&format!("token-{id}")),
        session_id: id.into(),
        principal: principal.into(),
        client_address: Some("192.0.2.7".into()),
        created_at: t0(),
        idle_timeout_secs: idle,
        absolute_expires_at: at(absolute),
        step_up_at: None,
    }
}

fn token_of(id: &str) -> String {
    hash(&format!("token-{id}"))
}

fn api_key(id: &str, client: &str, expires: Option<i64>) -> NewApiKey {
    NewApiKey {
        key_id: id.into(),
        client_id: client.into(),
        secret_hash: hash(&format!("secret-{id}")),
        created_at: t0(),
        expires_at: expires.map(at),
    }
}

// ---- passwords and TOTP --------------------------------------------------------------------

async fn passwords_are_stored_replaced_and_removed(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    assert!(store.password(ADA).await.unwrap().is_none());

    store
        .set_password(ADA, "$argon2id$v=19$first", t0())
        .await
        .unwrap();
    store
        .set_password(BOB, "$argon2id$v=19$bob", t0())
        .await
        .unwrap();
    store
        .set_password(ADA, "$argon2id$v=19$second", at(5))
        .await
        .unwrap();
    assert_eq!(
        store
            .password(ADA)
            .await
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some("$argon2id$v=19$second")
    );
    assert_eq!(
        store
            .password(BOB)
            .await
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some("$argon2id$v=19$bob")
    );

    assert!(store.remove_password(ADA).await.unwrap());
    assert!(!store.remove_password(ADA).await.unwrap());
    assert!(store.password(ADA).await.unwrap().is_none());
}

async fn a_totp_enrolment_is_pending_until_confirmed(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    assert!(store.totp(ADA).await.unwrap().is_none());
    assert!(
        !store.confirm_totp(ADA, 10).await.unwrap(),
        "nothing pending"
    );

    store.set_pending_totp(ADA, "aa01").await.unwrap();
    store.set_pending_totp(ADA, "aa02").await.unwrap();
    let pending = store.totp(ADA).await.unwrap().unwrap();
    assert_eq!(
        pending.secret_hex.as_str(),
        "aa02",
        "the later enrolment replaces the first"
    );
    assert!(!pending.confirmed);
    assert_eq!(pending.last_step, None);
    assert!(
        !store.accept_totp_step(ADA, 100).await.unwrap(),
        "a pending secret is no factor yet"
    );

    assert!(store.confirm_totp(ADA, 100).await.unwrap());
    assert!(
        !store.confirm_totp(ADA, 101).await.unwrap(),
        "confirmed once"
    );
    let active = store.totp(ADA).await.unwrap().unwrap();
    assert_eq!(active.secret_hex.as_str(), "aa02");
    assert!(active.confirmed);
    assert_eq!(active.last_step, Some(100));
    assert!(store.pending_totp(ADA).await.unwrap().is_none());
    assert!(
        !store.accept_totp_step(ADA, 100).await.unwrap(),
        "the confirming code cannot be used again"
    );

    // Re-enrolling keeps the active secret in force until the new one is confirmed.
    store.set_pending_totp(ADA, "bb01").await.unwrap();
    let still = store.totp(ADA).await.unwrap().unwrap();
    assert_eq!(still.secret_hex.as_str(), "aa02");
    assert!(still.confirmed);
    assert_eq!(
        store
            .pending_totp(ADA)
            .await
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some("bb01")
    );
    assert!(store.accept_totp_step(ADA, 101).await.unwrap());
    assert!(store.confirm_totp(ADA, 200).await.unwrap());
    let replaced = store.totp(ADA).await.unwrap().unwrap();
    assert_eq!(replaced.secret_hex.as_str(), "bb01");
    assert_eq!(replaced.last_step, Some(200));

    assert!(store.remove_totp(ADA).await.unwrap());
    assert!(store.totp(ADA).await.unwrap().is_none());
    assert!(!store.accept_totp_step(ADA, 300).await.unwrap());
}

async fn a_totp_step_is_accepted_once_and_never_after_a_later_one(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    store.set_pending_totp(ADA, "aa01").await.unwrap();
    store.confirm_totp(ADA, 1_000).await.unwrap();

    assert!(store.accept_totp_step(ADA, 1_001).await.unwrap());
    assert!(
        !store.accept_totp_step(ADA, 1_001).await.unwrap(),
        "same step twice"
    );
    assert!(store.accept_totp_step(ADA, 1_003).await.unwrap());
    assert!(
        !store.accept_totp_step(ADA, 1_002).await.unwrap(),
        "older after newer"
    );
    assert!(!store.accept_totp_step(ADA, 999).await.unwrap());
    assert!(
        !store.accept_totp_step(ADA, u64::MAX).await.unwrap(),
        "beyond BIGINT"
    );
    assert_eq!(
        store.totp(ADA).await.unwrap().unwrap().last_step,
        Some(1_003)
    );
    assert!(
        !store.accept_totp_step(BOB, 5_000).await.unwrap(),
        "no factor"
    );
}

async fn of_concurrent_uses_of_one_totp_step_exactly_one_wins(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    store.set_pending_totp(ADA, "aa01").await.unwrap();
    store.confirm_totp(ADA, 1_000).await.unwrap();

    for step in [1_001_u64, 1_002, 1_003] {
        let attempts: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.accept_totp_step(ADA, step).await.unwrap() })
            })
            .collect();
        let mut accepted = 0;
        for attempt in attempts {
            if attempt.await.unwrap() {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 1, "step {step}");
    }
    assert_eq!(
        store.totp(ADA).await.unwrap().unwrap().last_step,
        Some(1_003)
    );
}

// ---- recovery codes and enrolment ----------------------------------------------------------

async fn recovery_codes_work_once_and_are_replaced_together(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    let first: Vec<String> = (0..10).map(|n| hash(&format!("code-{n}"))).collect();
    store
        .replace_recovery_codes(ADA, &first, t0())
        .await
        .unwrap();
    assert_eq!(store.remaining_recovery_codes(ADA).await.unwrap(), 10);
    assert_eq!(store.remaining_recovery_codes(BOB).await.unwrap(), 0);

    assert!(
        store
            .use_recovery_code(ADA, &first[0], at(1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_recovery_code(ADA, &first[0], at(2))
            .await
            .unwrap(),
        "single use"
    );
    assert!(
        !store
            .use_recovery_code(BOB, &first[1], at(2))
            .await
            .unwrap(),
        "not Bob's"
    );
    assert!(
        !store
            .use_recovery_code(ADA, &hash("unknown"), at(2))
            .await
            .unwrap()
    );
    assert_eq!(store.remaining_recovery_codes(ADA).await.unwrap(), 9);

    // The same code presented many times at once is used once.
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let code = first[1].clone();
            tokio::spawn(async move { store.use_recovery_code(ADA, &code, at(3)).await.unwrap() })
        })
        .collect();
    let mut used = 0;
    for attempt in attempts {
        if attempt.await.unwrap() {
            used += 1;
        }
    }
    assert_eq!(used, 1);
    assert_eq!(store.remaining_recovery_codes(ADA).await.unwrap(), 8);

    // A new set replaces the old one entirely; duplicates within it count once.
    let mut second: Vec<String> = (0..5).map(|n| hash(&format!("new-{n}"))).collect();
    second.push(second[0].clone());
    store
        .replace_recovery_codes(ADA, &second, at(10))
        .await
        .unwrap();
    assert_eq!(store.remaining_recovery_codes(ADA).await.unwrap(), 5);
    assert!(
        !store
            .use_recovery_code(ADA, &first[2], at(11))
            .await
            .unwrap(),
        "old set gone"
    );
    assert!(
        store
            .use_recovery_code(ADA, &second[0], at(11))
            .await
            .unwrap()
    );
    store
        .replace_recovery_codes(ADA, &[], at(12))
        .await
        .unwrap();
    assert_eq!(store.remaining_recovery_codes(ADA).await.unwrap(), 0);
}

async fn an_enrolment_token_redeems_once_and_not_after_expiry(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    let token = hash("enrol-ada");
    store
        .create_enrolment(&token, ADA, at(3_600))
        .await
        .unwrap();

    // Peeking does not use the token.
    assert_eq!(
        store
            .peek_enrolment(&token, at(10))
            .await
            .unwrap()
            .as_deref(),
        Some(ADA)
    );
    assert_eq!(
        store
            .peek_enrolment(&token, at(20))
            .await
            .unwrap()
            .as_deref(),
        Some(ADA)
    );
    assert_eq!(
        store.peek_enrolment(&hash("other"), at(20)).await.unwrap(),
        None
    );

    // Concurrent redemptions: exactly one gets the user.
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let token = token.clone();
            tokio::spawn(async move { store.redeem_enrolment(&token, at(30)).await.unwrap() })
        })
        .collect();
    let mut winners = Vec::new();
    for attempt in attempts {
        if let Some(user) = attempt.await.unwrap() {
            winners.push(user);
        }
    }
    assert_eq!(winners, vec![ADA.to_owned()]);
    assert_eq!(store.redeem_enrolment(&token, at(40)).await.unwrap(), None);
    assert_eq!(
        store.peek_enrolment(&token, at(40)).await.unwrap(),
        None,
        "used"
    );

    // Expiry: valid up to the second before, refused at and after.
    let late = hash("enrol-bob");
    store.create_enrolment(&late, BOB, at(100)).await.unwrap();
    assert_eq!(
        store
            .peek_enrolment(&late, at(99))
            .await
            .unwrap()
            .as_deref(),
        Some(BOB)
    );
    assert_eq!(store.peek_enrolment(&late, at(100)).await.unwrap(), None);
    assert_eq!(store.redeem_enrolment(&late, at(100)).await.unwrap(), None);
    assert_eq!(
        store.redeem_enrolment(&late, at(5_000)).await.unwrap(),
        None
    );

    // Revocation removes every token of the user.
    let again = hash("enrol-bob-2");
    let third = hash("enrol-bob-3");
    store
        .create_enrolment(&again, BOB, at(3_600))
        .await
        .unwrap();
    store
        .create_enrolment(&third, BOB, at(3_600))
        .await
        .unwrap();
    assert_eq!(store.revoke_enrolments(BOB).await.unwrap(), 3);
    assert_eq!(store.redeem_enrolment(&again, at(200)).await.unwrap(), None);
    assert_eq!(store.peek_enrolment(&third, at(200)).await.unwrap(), None);

    // Pruning drops used and expired tokens only.
    let live = hash("enrol-carol");
    store
        .create_enrolment(&live, "user:carol", at(9_000))
        .await
        .unwrap();
    assert_eq!(store.prune(at(200)).await.unwrap(), 1, "Ada's used token");
    assert_eq!(
        store
            .peek_enrolment(&live, at(200))
            .await
            .unwrap()
            .as_deref(),
        Some("user:carol")
    );
}

// ---- sessions ------------------------------------------------------------------------------

async fn sessions_end_by_idle_timeout_and_by_absolute_expiry(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    // Idle timeout 100 s, absolute expiry after 1000 s.
    store
        .create_session(&session("s-idle", ADA, 100, 1_000))
        .await
        .unwrap();
    store
        .create_session(&session("s-abs", BOB, 300, 500))
        .await
        .unwrap();

    let live = store
        .live_session(&token_of("s-idle"), at(50))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.session_id, "s-idle");
    assert_eq!(live.principal, ADA);
    assert_eq!(live.client_address.as_deref(), Some("192.0.2.7"));
    assert_eq!(live.created_at, t0());
    assert_eq!(live.last_seen_at, at(50));
    assert_eq!(live.idle_timeout_secs, 100);
    assert_eq!(live.absolute_expires_at, at(1_000));
    assert_eq!(live.step_up_at, None);

    // Last seen at 50: live at 149, idle-expired at 150.
    assert!(
        store
            .live_session(&token_of("s-idle"), at(149))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .live_session(&token_of("s-idle"), at(400))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .live_session(&token_of("s-idle"), at(401))
            .await
            .unwrap()
            .is_none(),
        "an idle-expired session is not revived by being asked for"
    );

    // Kept busy, a session still ends at its absolute expiry.
    for second in (0..500).step_by(100) {
        assert!(
            store
                .live_session(&token_of("s-abs"), at(second))
                .await
                .unwrap()
                .is_some(),
            "live at {second}"
        );
    }
    assert!(
        store
            .live_session(&token_of("s-abs"), at(499))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .live_session(&token_of("s-abs"), at(500))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .live_session(&hash("no such token"), at(1))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.sessions_of(BOB, at(500)).await.unwrap().is_empty());

    assert_eq!(store.prune(at(500)).await.unwrap(), 2);
}

async fn revoked_sessions_are_gone_at_once(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    for (id, principal) in [
        ("a1", ADA),
        ("a2", ADA),
        ("a3", ADA),
        ("b1", BOB),
        ("b2", BOB),
    ] {
        store
            .create_session(&session(id, principal, 600, 3_600))
            .await
            .unwrap();
    }
    // An expired session of Ada's is not counted as revoked-while-live.
    store
        .create_session(&session("a-old", ADA, 600, 10))
        .await
        .unwrap();
    let ids = |sessions: Vec<docket::identity::credentials::SessionRecord>| -> Vec<String> {
        sessions.into_iter().map(|s| s.session_id).collect()
    };
    assert_eq!(
        ids(store.sessions_of(ADA, at(20)).await.unwrap()),
        ["a1", "a2", "a3"]
    );

    assert!(store.revoke_session("a1", at(20)).await.unwrap());
    assert!(
        !store.revoke_session("a1", at(21)).await.unwrap(),
        "already revoked"
    );
    assert!(!store.revoke_session("nobody", at(21)).await.unwrap());
    assert!(
        store
            .live_session(&token_of("a1"), at(21))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        ids(store.sessions_of(ADA, at(21)).await.unwrap()),
        ["a2", "a3"]
    );

    assert_eq!(store.revoke_sessions_of(ADA, at(30)).await.unwrap(), 2);
    assert!(
        store
            .live_session(&token_of("a2"), at(30))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .live_session(&token_of("a3"), at(30))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.sessions_of(ADA, at(30)).await.unwrap().is_empty());
    assert!(
        store
            .live_session(&token_of("b1"), at(30))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.revoke_sessions_of(ADA, at(31)).await.unwrap(), 0);

    assert_eq!(store.revoke_all_sessions(at(40)).await.unwrap(), 2);
    assert!(
        store
            .live_session(&token_of("b1"), at(40))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .live_session(&token_of("b2"), at(40))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.sessions_of(BOB, at(40)).await.unwrap().is_empty());
    assert_eq!(store.revoke_all_sessions(at(41)).await.unwrap(), 0);
    assert!(
        !store.record_step_up("b1", at(42)).await.unwrap(),
        "revoked"
    );

    // A revoked session is not revived when its clock is wound back.
    assert!(
        store
            .live_session(&token_of("b1"), at(5))
            .await
            .unwrap()
            .is_none()
    );
}

async fn last_seen_is_not_written_on_every_use(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    // Idle timeout 60 s.
    store
        .create_session(&session("s", ADA, 60, 3_600))
        .await
        .unwrap();

    // Uses within 30 s of the last write leave last_seen where it was...
    for second in [1, 10, 29] {
        let seen = store
            .live_session(&token_of("s"), at(second))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen.last_seen_at, t0(), "not written at {second}");
    }
    // ...so the session idles out 60 s after its creation, not after its last use.
    assert!(
        store
            .live_session(&token_of("s"), at(60))
            .await
            .unwrap()
            .is_none()
    );

    store
        .create_session(&session("t", BOB, 60, 3_600))
        .await
        .unwrap();
    let seen = store
        .live_session(&token_of("t"), at(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.last_seen_at, at(30), "written once 30 s old");
    let seen = store
        .live_session(&token_of("t"), at(50))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.last_seen_at, at(30));
    let reread = store.sessions_of(BOB, at(50)).await.unwrap();
    assert_eq!(reread[0].last_seen_at, at(30), "the write is stored");
    let seen = store
        .live_session(&token_of("t"), at(85))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.last_seen_at, at(85));
    assert!(
        store
            .live_session(&token_of("t"), at(144))
            .await
            .unwrap()
            .is_some()
    );
}

async fn a_step_up_is_recorded_on_a_live_session(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    let mut new = session("s", ADA, 600, 3_600);
    new.step_up_at = Some(t0());
    new.client_address = None;
    store.create_session(&new).await.unwrap();
    let live = store
        .live_session(&token_of("s"), at(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.step_up_at, Some(t0()));
    assert_eq!(live.client_address, None);

    assert!(store.record_step_up("s", at(100)).await.unwrap());
    let live = store
        .live_session(&token_of("s"), at(101))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.step_up_at, Some(at(100)));
    assert!(!store.record_step_up("nobody", at(100)).await.unwrap());
}

// ---- API keys ------------------------------------------------------------------------------

async fn expired_and_revoked_api_keys_are_not_returned(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    store
        .create_api_key(&api_key("k-forever", "client:ci", None))
        .await
        .unwrap();
    store
        .create_api_key(&api_key("k-short", "client:ci", Some(100)))
        .await
        .unwrap();
    store
        .create_api_key(&api_key("k-other", "client:ops", None))
        .await
        .unwrap();

    let key: ApiKeyRecord = store.api_key("k-short", at(99)).await.unwrap().unwrap();
    assert_eq!(key.client_id, "client:ci");
    assert_eq!(key.created_at, t0());
    assert_eq!(key.expires_at, Some(at(100)));
    assert_eq!(key.last_used_at, None);
    assert!(key.secret_matches(&hash("secret-k-short")));
    assert!(!key.secret_matches(&hash("secret-k-forever")));
    assert!(!key.secret_matches(""));
    assert!(
        store.api_key("k-short", at(100)).await.unwrap().is_none(),
        "expired"
    );
    assert!(
        store
            .api_key("k-forever", at(1_000_000))
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.api_key("unknown", at(1)).await.unwrap().is_none());
    let listed: Vec<String> = store
        .api_keys_of("client:ci", at(200))
        .await
        .unwrap()
        .into_iter()
        .map(|key| key.key_id)
        .collect();
    assert_eq!(listed, ["k-forever"]);

    assert!(store.revoke_api_key("k-forever", at(10)).await.unwrap());
    assert!(!store.revoke_api_key("k-forever", at(11)).await.unwrap());
    assert!(
        store.api_key("k-forever", at(11)).await.unwrap().is_none(),
        "revoked"
    );

    store
        .create_api_key(&api_key("k-ci-2", "client:ci", None))
        .await
        .unwrap();
    store
        .create_api_key(&api_key("k-ci-3", "client:ci", Some(10_000)))
        .await
        .unwrap();
    // k-short (expired but never revoked), k-ci-2 and k-ci-3.
    assert_eq!(
        store
            .revoke_api_keys_of("client:ci", at(200))
            .await
            .unwrap(),
        3
    );
    assert!(store.api_key("k-ci-2", at(201)).await.unwrap().is_none());
    assert!(store.api_key("k-ci-3", at(201)).await.unwrap().is_none());
    assert!(
        store
            .api_keys_of("client:ci", at(201))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.api_key("k-other", at(201)).await.unwrap().is_some());
}

async fn api_key_use_is_recorded_at_most_every_thirty_seconds(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    store
        .create_api_key(&api_key("k", "client:ci", None))
        .await
        .unwrap();

    assert!(store.touch_api_key("k", at(5)).await.unwrap(), "first use");
    assert!(!store.touch_api_key("k", at(20)).await.unwrap());
    assert!(!store.touch_api_key("k", at(34)).await.unwrap());
    let key = store.api_key("k", at(34)).await.unwrap().unwrap();
    assert_eq!(key.last_used_at, Some(at(5)));
    assert!(store.touch_api_key("k", at(35)).await.unwrap());
    let key = store.api_key("k", at(36)).await.unwrap().unwrap();
    assert_eq!(key.last_used_at, Some(at(35)));
    assert!(!store.touch_api_key("unknown", at(100)).await.unwrap());
}

// ---- throttling ----------------------------------------------------------------------------

async fn concurrent_failures_are_each_counted_then_cleared_and_locked(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    let subject = "account:user:ada";
    assert_eq!(store.throttle(subject).await.unwrap(), None);

    let failures: Vec<_> = (0..20)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.record_failure(subject, at(n)).await.unwrap() })
        })
        .collect();
    let mut counts = Vec::new();
    for failure in failures {
        counts.push(failure.await.unwrap().failures);
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=20).collect::<Vec<u32>>(),
        "each saw its own increment"
    );
    let state = store.throttle(subject).await.unwrap().unwrap();
    assert_eq!(state.failures, 20);
    assert!(!state.locked);
    assert!(state.last_failure_at.is_some());

    let other = store
        .record_failure("address:192.0.2.7", at(30))
        .await
        .unwrap();
    assert_eq!(other.failures, 1);
    assert_eq!(other.last_failure_at, Some(at(30)));

    // A success clears the count; the other subject keeps its own.
    store.clear_failures(subject).await.unwrap();
    let cleared = store.throttle(subject).await.unwrap().unwrap();
    assert_eq!(
        (cleared.failures, cleared.last_failure_at, cleared.locked),
        (0, None, false)
    );
    assert_eq!(
        store
            .throttle("address:192.0.2.7")
            .await
            .unwrap()
            .unwrap()
            .failures,
        1
    );
    store.clear_failures("never:seen").await.unwrap();
    assert_eq!(store.throttle("never:seen").await.unwrap(), None);

    // Locking keeps the count; failures while locked still count; a success leaves the lock;
    // an administrator's unlock clears both.
    store.record_failure(subject, at(40)).await.unwrap();
    store.set_locked(subject, true).await.unwrap();
    let locked = store.record_failure(subject, at(41)).await.unwrap();
    assert_eq!((locked.failures, locked.locked), (2, true));
    store.clear_failures(subject).await.unwrap();
    assert!(store.throttle(subject).await.unwrap().unwrap().locked);
    store.set_locked(subject, false).await.unwrap();
    let unlocked = store.throttle(subject).await.unwrap().unwrap();
    assert_eq!((unlocked.failures, unlocked.locked), (0, false));

    // A subject can be locked before any failure.
    store
        .set_locked("account:user:mallory", true)
        .await
        .unwrap();
    let preemptive = store
        .throttle("account:user:mallory")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((preemptive.failures, preemptive.last_failure_at), (0, None));
    assert!(preemptive.locked);
}

// ---- durability, files and errors ----------------------------------------------------------

async fn everything_survives_reopening_the_store(backend: Backend) {
    let log = TestLog::new(backend).await;
    {
        // Two processes opening a fresh database at once both succeed.
        let (first, second) = tokio::join!(
            CredentialStore::open(log.dir.path(), log.database_url.as_deref()),
            CredentialStore::open(log.dir.path(), log.database_url.as_deref()),
        );
        let store = first.unwrap();
        drop(second.unwrap());
        store
            .set_password(ADA, "$argon2id$v=19$ada", t0())
            .await
            .unwrap();
        store.set_pending_totp(ADA, "aa01").await.unwrap();
        store.confirm_totp(ADA, 1_000).await.unwrap();
        store.accept_totp_step(ADA, 1_005).await.unwrap();
        store.set_pending_totp(BOB, "bb01").await.unwrap();
        let codes = vec![hash("c1"), hash("c2")];
        store
            .replace_recovery_codes(ADA, &codes, t0())
            .await
            .unwrap();
        store.use_recovery_code(ADA, &codes[0], t0()).await.unwrap();
        store
            .create_enrolment(&hash("enrol"), BOB, at(3_600))
            .await
            .unwrap();
        store
            .create_enrolment(&hash("used"), BOB, at(3_600))
            .await
            .unwrap();
        store.redeem_enrolment(&hash("used"), at(1)).await.unwrap();
        store
            .create_session(&session("s1", ADA, 600, 3_600))
            .await
            .unwrap();
        store
            .create_session(&session("s2", ADA, 600, 3_600))
            .await
            .unwrap();
        store.revoke_session("s2", at(1)).await.unwrap();
        store.record_step_up("s1", at(2)).await.unwrap();
        store
            .create_api_key(&api_key("k1", "client:ci", Some(9_000)))
            .await
            .unwrap();
        store
            .create_api_key(&api_key("k2", "client:ci", None))
            .await
            .unwrap();
        store.revoke_api_key("k2", at(1)).await.unwrap();
        store.touch_api_key("k1", at(3)).await.unwrap();
        for n in 0..3 {
            store
                .record_failure("account:user:bob", at(n))
                .await
                .unwrap();
        }
        store
            .set_locked("address:198.51.100.1", true)
            .await
            .unwrap();
    }

    let store = open(&log).await;
    assert_eq!(
        store
            .password(ADA)
            .await
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some("$argon2id$v=19$ada")
    );
    let totp = store.totp(ADA).await.unwrap().unwrap();
    assert_eq!(
        (totp.secret_hex.as_str(), totp.confirmed, totp.last_step),
        ("aa01", true, Some(1_005))
    );
    assert!(!store.accept_totp_step(ADA, 1_005).await.unwrap());
    assert!(!store.totp(BOB).await.unwrap().unwrap().confirmed);
    assert_eq!(store.remaining_recovery_codes(ADA).await.unwrap(), 1);
    assert!(
        !store
            .use_recovery_code(ADA, &hash("c1"), at(5))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .peek_enrolment(&hash("enrol"), at(5))
            .await
            .unwrap()
            .as_deref(),
        Some(BOB)
    );
    assert_eq!(
        store.peek_enrolment(&hash("used"), at(5)).await.unwrap(),
        None
    );
    let live = store
        .live_session(&token_of("s1"), at(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.step_up_at, Some(at(2)));
    assert!(
        store
            .live_session(&token_of("s2"), at(5))
            .await
            .unwrap()
            .is_none()
    );
    let key = store.api_key("k1", at(5)).await.unwrap().unwrap();
    assert_eq!(key.last_used_at, Some(at(3)));
    assert!(store.api_key("k2", at(5)).await.unwrap().is_none());
    assert_eq!(
        store
            .throttle("account:user:bob")
            .await
            .unwrap()
            .unwrap()
            .failures,
        3
    );
    assert!(
        store
            .throttle("address:198.51.100.1")
            .await
            .unwrap()
            .unwrap()
            .locked
    );
}

async fn the_sqlite_file_is_private_and_the_data_directory_untouched(backend: Backend) {
    use std::os::unix::fs::PermissionsExt;

    let log = TestLog::new(backend).await;
    let dir = log.dir.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let store = open(&log).await;
    store
        .set_password(ADA, "$argon2id$v=19$ada", t0())
        .await
        .unwrap();

    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700, "the data directory keeps its permissions");
    let file = dir.join("identity.db");
    match backend {
        Backend::Sqlite => {
            assert_eq!(mode(&file), 0o600);
            let wal = dir.join("identity.db-wal");
            assert!(wal.exists(), "the database is in WAL mode");
            assert_eq!(mode(&wal), 0o600);
        }
        Backend::Postgres => assert!(!file.exists(), "PostgreSQL keeps no local file"),
    }
    drop(store);
    let reopened = open(&log).await;
    assert!(reopened.password(ADA).await.unwrap().is_some());
    assert_eq!(mode(dir), 0o700);
}

async fn duplicates_are_refused_without_quoting_values(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    store
        .create_session(&session("s", ADA, 600, 3_600))
        .await
        .unwrap();

    // Same token hash under another id: the message names neither.
    let mut twin = session("s-twin", ADA, 600, 3_600);
    twin.token_hash = token_of("s");
    let error = store.create_session(&twin).await.unwrap_err();
    assert!(
        matches!(error, CredentialError::Duplicate { .. }),
        "{error:?}"
    );
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(&token_of("s")), "{shown}");
    assert!(!shown.contains("s-twin"), "{shown}");
    assert!(!error.is_transient());

    store
        .create_enrolment(&hash("e"), ADA, at(10))
        .await
        .unwrap();
    let error = store
        .create_enrolment(&hash("e"), BOB, at(10))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CredentialError::Duplicate { .. }),
        "{error:?}"
    );
    assert!(!format!("{error} {error:?}").contains(&hash("e")));

    store
        .create_api_key(&api_key("k", "client:ci", None))
        .await
        .unwrap();
    let error = store
        .create_api_key(&api_key("k", "client:ci", None))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CredentialError::Duplicate { .. }),
        "{error:?}"
    );

    let error = store
        .create_session(&session("huge", ADA, u64::MAX, 3_600))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CredentialError::OutOfRange { .. }),
        "{error:?}"
    );
}

async fn debug_output_never_shows_a_whole_secret_or_hash(backend: Backend) {
    let log = TestLog::new(backend).await;
    let store = open(&log).await;
    let secret = "5ec12e7000000000000000000000000000000000";
    store.set_pending_totp(ADA, secret).await.unwrap();
    let totp: TotpRecord = store.totp(ADA).await.unwrap().unwrap();
    let shown = format!("{totp:?}");
    assert!(!shown.contains("5ec12e70"), "{shown}");

    let new = api_key("k", "client:ci", None);
    store.create_api_key(&new).await.unwrap();
    let key = store.api_key("k", at(1)).await.unwrap().unwrap();
    for shown in [format!("{key:?}"), format!("{new:?}")] {
        assert!(shown.contains(&new.secret_hash[..8]), "{shown}");
        assert!(!shown.contains(&new.secret_hash[..9]), "{shown}");
    }
    let new = session("s", ADA, 600, 3_600);
    let shown = format!("{new:?}");
    assert!(shown.contains(&new.token_hash[..8]));
    assert!(!shown.contains(&new.token_hash[..9]), "{shown}");
    assert!(!format!("{store:?}").contains("postgres://"));
}
