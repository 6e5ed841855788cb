//! The canonical encoding and what reads stored events back: JSON made canonical (RFC 8785)
//! must parse again to the same canonical text; an event envelope read from JSON (as bundles
//! and archives carry it) must hash without a panic; and a stored event of any domain type with
//! any payload must decode to a typed event or a typed error, never a panic. A payload that
//! decodes must encode to a payload that decodes to the same event.
//!
//! The input's first byte picks the check, its second the domain event type; the rest is the
//! text under test.

#![no_main]

use docket::domain::events::DomainEvent;
use docket::log::Event;
use docket::log::canonical::{canonical_json, compute_hash, hash_input};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let [mode, kind, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match mode % 3 {
        0 => canonical_is_stable(text),
        1 => envelope_hashes(text),
        _ => stored_event_decodes(*kind, text),
    }
});

/// Canonical text parses back to a value whose canonical text is the same.
fn canonical_is_stable(text: &str) {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let Ok(canonical) = canonical_json(&value) else {
        return;
    };
    let again: Value = serde_json::from_str(&canonical).expect("canonical text is JSON");
    let twice = canonical_json(&again).expect("canonical JSON encodes again");
    assert_eq!(canonical, twice, "canonical encoding is not stable");
}

/// An envelope as JSON: its hash input starts with the domain tag and its hash is computable.
fn envelope_hashes(text: &str) {
    let Ok(event) = serde_json::from_str::<Event>(text) else {
        return;
    };
    let input = hash_input(&event);
    assert!(input.starts_with(docket::log::canonical::EVENT_HASH_DOMAIN));
    let _ = compute_hash(&event);
    let _ = DomainEvent::decode(&event);
}

/// A stored event of a domain type with this payload decodes, or is refused with a typed error.
fn stored_event_decodes(kind: u8, payload: &str) {
    let types = DomainEvent::TYPES;
    let (event_type, version) = types[usize::from(kind) % types.len()];
    // Now and then an older or newer schema version, which goes through the upcasters.
    let schema_version = match kind / 64 {
        0 => 0,
        3 => version + 1,
        _ => version,
    };
    let event = stored(event_type, schema_version, payload.to_owned());
    let Ok(Some(decoded)) = DomainEvent::decode(&event) else {
        return;
    };
    if schema_version != version {
        return;
    }
    let draft = decoded.to_draft().expect("a decoded event encodes");
    let payload = canonical_json(&draft.payload).expect("a decoded event's payload is canonical");
    let again = stored(event_type, version, payload);
    let redecoded = DomainEvent::decode(&again)
        .expect("an encoded event decodes")
        .expect("as a domain event");
    assert_eq!(decoded, redecoded, "decode and encode disagree");
}

fn stored(event_type: &str, schema_version: u32, payload: String) -> Event {
    Event {
        position: 7,
        id: "0190a3b4-7c1d-7000-8000-000000000007".into(),
        stream: "matter:2026-0042".into(),
        stream_version: 3,
        event_type: event_type.into(),
        schema_version,
        payload,
        actor: "user:ada".into(),
        request_id: None,
        occurred_at: "2026-12-03T10:00:00.000000Z".into(),
        recorded_at: "2026-12-03T10:00:00.000001Z".into(),
        correlation_id: None,
        causation_id: None,
        idempotency_key: None,
        prev_hash: Some([7; 32]),
        stream_prev_hash: Some([8; 32]),
        key_id: "00".repeat(16),
        hash: [0; 32],
        signature: [0; 64],
    }
}
