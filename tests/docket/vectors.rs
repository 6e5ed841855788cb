//! Test vectors of the log format (tests/vectors/log-v1.json): a small log built by the real
//! planner from fixed keys, ids and times, with its hash inputs, hashes and signatures, and
//! tampered copies with the failure each must produce. An independent verifier checks the same
//! file (tests/vectors/verify_vectors.py). Regenerate deliberately, and only with a format
//! change: `DOCKET_REGENERATE_VECTORS=1 cargo test --test docket vectors`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use docket::log::canonical::{compute_hash, hash_input};
use docket::log::verify::Verifier;
use docket::log::{Actor, Event, EventDraft, ExpectedVersion, LogSigner, StreamId};
use docket::store::append::SystemAppend;
use docket::store::plan::{PlanInput, plan_batch};
use docket::store::{AppendRequest, LogHead, PreparedAppend};
use serde_json::{Value, json};

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn vector_id() -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::SeqCst) + 1;
    format!("01938a2c-1d00-7000-8000-{n:012x}")
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/log-v1.json")
}

fn keys() -> [Arc<LogSigner>; 2] {
    [
        Arc::new(LogSigner::from_seed(&[0x11; 32])),
        Arc::new(LogSigner::from_seed(&[0x22; 32])),
    ]
}

fn request(stream: &str, expected: ExpectedVersion, drafts: Vec<EventDraft>) -> AppendRequest {
    let mut request = AppendRequest::new(
        StreamId::parse(stream).unwrap(),
        Actor::parse("user:0042").unwrap(),
        drafts,
    );
    request.expected_version = expected;
    request
}

fn prepare(request: AppendRequest) -> PreparedAppend {
    PreparedAppend::prepare(request, 1 << 20).unwrap()
}

/// Builds the vector log batch by batch, carrying the head and stream tips between batches.
fn build_log() -> Vec<Event> {
    NEXT_ID.store(0, Ordering::SeqCst);
    let keys = keys();
    let mut head = LogHead {
        position: 0,
        hash: None,
        key_id: None,
    };
    let mut tips = HashMap::new();
    let mut events = Vec::new();

    let mut opened = request(
        "matter:2026-0042",
        ExpectedVersion::NoStream,
        vec![EventDraft::new(
            "matter.opened",
            json!({"number": "2026-0042", "title": "Ångström v. Müller", "practice_area": "litigation",
                   "client": {"name": "Zoë Ångström", "email": "zoe@example.org"}}),
        )],
    );
    opened.request_id = Some("req-0001".into());
    opened.events[0].occurred_at = Some("2026-12-01T09:30:00+01:00".into());
    let mut contact = request(
        "contact:7",
        ExpectedVersion::Any,
        vec![EventDraft::new(
            "contact.added",
            json!({"kind": "person", "name": "李小龍", "phones": ["+44 20 7946 0000"]}),
        )],
    );
    contact.correlation_id = Some("corr-77".into());
    let mut noted = request(
        "matter:2026-0042",
        ExpectedVersion::Exactly(1),
        vec![
            EventDraft::new(
                "time.logged",
                json!({"hours": 1.5, "billable": true, "rate_cents": 45000, "note": "line1\nline2 \"quoted\" \u{1F600}"}),
            ),
            EventDraft::new(
                "matter.noted",
                json!({"z": null, "a": [3, 2, 1], "nested": {"b": {}, "a": []}}),
            ),
        ],
    );
    noted.idempotency_key = Some("idem-9f2c".into());
    noted.events[1].causation_id = Some("01938a2c-1d00-7000-8000-000000000002".into());
    let mut closed = request(
        "matter:2026-0042",
        ExpectedVersion::Exactly(3),
        vec![EventDraft::new(
            "matter.closed",
            json!({"reason": "settled"}),
        )],
    );
    closed.events[0].schema_version = 2;

    let batches: Vec<(Vec<PreparedAppend>, &str)> = vec![
        (
            vec![PreparedAppend::system(
                "log.genesis",
                ExpectedVersion::NoStream,
                SystemAppend::Genesis {
                    log_id: "01938a2c-1d00-7000-8000-00000000abcd".into(),
                    signer: keys[0].clone(),
                },
            )],
            "2026-12-01T08:00:00.000000Z",
        ),
        (
            vec![prepare(opened), prepare(contact)],
            "2026-12-01T08:30:00.123456Z",
        ),
        (vec![prepare(noted)], "2026-12-01T09:00:00.000001Z"),
        (
            vec![PreparedAppend::system(
                "keys.rotated",
                ExpectedVersion::Any,
                SystemAppend::KeyRotation {
                    next: keys[1].clone(),
                },
            )],
            "2026-12-02T00:00:00.000000Z",
        ),
        (vec![prepare(closed)], "2026-12-02T10:15:30.500000Z"),
    ];
    for (batch, recorded_at) in batches {
        let signer = head.key_id.as_deref().map(|id| {
            keys.iter()
                .find(|key| key.id().as_str() == id)
                .unwrap()
                .clone()
        });
        let input = PlanInput {
            head: head.clone(),
            tips: tips.clone(),
            idempotency: HashMap::new(),
            signer,
            recorded_at,
            new_event_id: vector_id,
        };
        let plan = plan_batch(input, &batch);
        assert!(
            plan.outcomes.iter().all(Result::is_ok),
            "{:?}",
            plan.outcomes
        );
        head = plan.head.unwrap();
        tips.extend(plan.stream_tips);
        events.extend(plan.events);
    }
    events
}

fn to_json(event: &Event) -> Value {
    let input = String::from_utf8(hash_input(event)).unwrap();
    let mut value = serde_json::to_value(event).unwrap();
    value["hash_input"] = json!(input);
    value
}

fn from_json(value: &Value) -> Event {
    let mut value = value.clone();
    if let Some(object) = value.as_object_mut() {
        object.remove("hash_input");
    }
    serde_json::from_value(value).unwrap()
}

/// Copies of the log each damaged in one way, with the failure a verifier must report.
fn tampered(events: &[Event]) -> Vec<(String, Vec<Event>, u64, &'static str)> {
    let mut cases = Vec::new();

    let mut payload = events.to_vec();
    payload[1].payload = payload[1].payload.replace("Zoë", "Zoe");
    cases.push((
        "one payload character changed".into(),
        payload,
        2,
        "hash_mismatch",
    ));

    let mut gap = events.to_vec();
    gap.remove(3);
    cases.push(("position 4 deleted".into(), gap, 4, "position_gap"));

    let mut signature = events.to_vec();
    signature[4].signature = signature[1].signature;
    cases.push((
        "signature of position 5 replaced by that of position 2".into(),
        signature,
        5,
        "bad_signature",
    ));

    let foreign = LogSigner::from_seed(&[0x99; 32]);
    let mut forged = events.to_vec();
    forged[6].payload = r#"{"reason":"withdrawn"}"#.into();
    forged[6].key_id = foreign.id().to_string();
    forged[6].hash = compute_hash(&forged[6]);
    forged[6].signature = foreign.sign_event(&forged[6].hash);
    cases.push((
        "position 7 rewritten and signed by a foreign key".into(),
        forged,
        7,
        "unknown_signing_key",
    ));

    let mut link = events.to_vec();
    link[3].prev_hash = Some(link[1].hash);
    link[3].hash = compute_hash(&link[3]);
    cases.push((
        "position 4 re-linked and re-hashed, not re-signed".into(),
        link,
        4,
        "chain_broken",
    ));
    cases
}

fn verify_events(events: &[Event]) -> Result<(), (u64, String)> {
    let mut verifier = Verifier::new(false, None);
    let report = |failure: docket::log::verify::VerifyFailure| {
        (
            failure.position,
            serde_json::to_value(failure.reason)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned(),
        )
    };
    verifier.check_page(events).map_err(report)?;
    verifier.finish(None).map(|_| ()).map_err(report)
}

#[test]
fn the_committed_vectors_match_the_format_and_verify() {
    let events = build_log();
    assert_eq!(events.len(), 7);
    let document = json!({
        "format": "docket-log/1",
        "description": "A seven-event Docket log: genesis, three appends in two batches (one with two \
                        events), a key rotation, and one event under the second key. Seeds are test-only.",
        "keys": keys().iter().enumerate().map(|(index, key)| json!({
            "seed": hex::encode([[0x11u8; 32], [0x22u8; 32]][index]),
            "public_key": key.public_key_hex(),
            "key_id": key.id().to_string(),
        })).collect::<Vec<_>>(),
        "events": events.iter().map(to_json).collect::<Vec<_>>(),
        "tampered": tampered(&events).iter().map(|(description, log, position, reason)| json!({
            "description": description,
            "events": log.iter().map(to_json).collect::<Vec<_>>(),
            "failure": { "position": position, "reason": reason },
        })).collect::<Vec<_>>(),
    });

    let path = vectors_path();
    if std::env::var_os("DOCKET_REGENERATE_VECTORS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&document).unwrap() + "\n",
        )
        .unwrap();
    }
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        committed, document,
        "the log format changed; regenerate the vectors deliberately"
    );

    // The committed events verify, and each tampered copy fails exactly where it should.
    let stored: Vec<Event> = committed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(from_json)
        .collect();
    assert_eq!(verify_events(&stored), Ok(()));
    for case in committed["tampered"].as_array().unwrap() {
        let log: Vec<Event> = case["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(from_json)
            .collect();
        let expected = (
            case["failure"]["position"].as_u64().unwrap(),
            case["failure"]["reason"].as_str().unwrap().to_owned(),
        );
        assert_eq!(
            verify_events(&log),
            Err(expected),
            "{}",
            case["description"]
        );
    }
}
