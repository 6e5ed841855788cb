//! Property tests: for any sequence of appends the planner produces a log the verifier accepts,
//! and any change to one stored event is reported at exactly that event.

use std::collections::HashMap;
use std::sync::Arc;

use docket::log::verify::{FailureReason, Verifier};
use docket::log::{Actor, Event, EventDraft, LogSigner, StreamId};
use docket::store::append::SystemAppend;
use docket::store::plan::{PlanInput, new_event_id, plan_batch};
use docket::store::{AppendRequest, LogHead, PreparedAppend};
use proptest::prelude::*;
use serde_json::json;

/// Appends `batches` (each a list of (stream number, events in the append)) through the planner.
fn build_log(batches: &[Vec<(u8, u8)>], text: &str) -> Vec<Event> {
    let signer = Arc::new(LogSigner::from_seed(&[9; 32]));
    let mut head = LogHead {
        position: 0,
        hash: None,
        key_id: None,
    };
    let mut tips = HashMap::new();
    let mut events = Vec::new();
    let genesis = PreparedAppend::system(
        "log.genesis",
        docket::log::ExpectedVersion::NoStream,
        SystemAppend::Genesis {
            log_id: "01938a2c-1d00-7000-8000-00000000abcd".into(),
            signer: signer.clone(),
        },
    );
    let mut all = vec![vec![genesis]];
    for batch in batches {
        all.push(
            batch
                .iter()
                .map(|(stream, count)| {
                    let drafts = (0..*count)
                        .map(|n| EventDraft::new("matter.noted", json!({"n": n, "text": text})))
                        .collect();
                    let request = AppendRequest::new(
                        StreamId::parse(&format!("matter:{stream}")).unwrap(),
                        Actor::parse("user:p").unwrap(),
                        drafts,
                    );
                    PreparedAppend::prepare(request, 1 << 20).unwrap()
                })
                .collect(),
        );
    }
    for batch in all {
        let input = PlanInput {
            head: head.clone(),
            tips: tips.clone(),
            idempotency: HashMap::new(),
            signer: head.key_id.as_ref().map(|_| signer.clone()),
            recorded_at: "2026-12-03T12:00:00.000000Z",
            new_event_id,
        };
        let plan = plan_batch(input, &batch);
        if let Some(next) = plan.head {
            head = next;
        }
        tips.extend(plan.stream_tips);
        events.extend(plan.events);
    }
    events
}

fn verify(events: &[Event]) -> Result<u64, (u64, FailureReason)> {
    let mut verifier = Verifier::new(false, None);
    verifier
        .check_page(events)
        .map_err(|f| (f.position, f.reason))?;
    verifier
        .finish(None)
        .map(|s| s.events)
        .map_err(|f| (f.position, f.reason))
}

fn batches() -> impl Strategy<Value = Vec<Vec<(u8, u8)>>> {
    prop::collection::vec(prop::collection::vec((0u8..4, 1u8..4), 1..4), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_planned_log_verifies(batches in batches(), text in "\\PC{0,40}") {
        let events = build_log(&batches, &text);
        let expected: usize = 1 + batches.iter().flatten().map(|(_, n)| *n as usize).sum::<usize>();
        prop_assert_eq!(events.len(), expected);
        prop_assert_eq!(verify(&events), Ok(expected as u64));
    }

    #[test]
    fn a_changed_payload_is_caught_at_its_own_position(
        batches in batches(),
        pick in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut events = build_log(&batches, "Smith v. Jones");
        let index = 1 + pick.index(events.len() - 1);
        let mut payload = events[index].payload.clone().into_bytes();
        let at = pick.index(payload.len());
        prop_assume!(payload[at] != byte);
        payload[at] = byte;
        prop_assume!(String::from_utf8(payload.clone()).is_ok());
        events[index].payload = String::from_utf8(payload).unwrap();
        let position = events[index].position;
        prop_assert_eq!(verify(&events), Err((position, FailureReason::HashMismatch)));
    }

    #[test]
    fn a_removed_event_is_caught_where_it_was(batches in batches(), pick in any::<prop::sample::Index>()) {
        let mut events = build_log(&batches, "x");
        prop_assume!(events.len() > 2);
        let index = 1 + pick.index(events.len() - 2);
        let position = events[index].position;
        events.remove(index);
        prop_assert_eq!(verify(&events), Err((position, FailureReason::PositionGap)));
    }
}
