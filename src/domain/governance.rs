//! The state records management decides on: the holds in force and retention policies of the
//! governance stream, and one subject's erasure requests and erasure.

use std::collections::BTreeMap;

use serde::Serialize;

use super::RecordedEvent;
use super::events::DomainEvent;
use super::records::{ErasureRequested, SubjectErased};

/// A hold in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    pub hold_id: String,
    pub target: String,
    pub reason: String,
    pub placed_by: String,
    pub placed_at: String,
}

/// Holds in force and retention policies, folded from the governance stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Governance {
    pub version: u64,
    pub holds: BTreeMap<String, Hold>,
    /// Years to keep after closing, by practice area.
    pub retention: BTreeMap<String, u32>,
}

impl Governance {
    pub fn apply(&mut self, recorded: &RecordedEvent) {
        self.version = recorded.stream_version;
        match &recorded.event {
            DomainEvent::HoldPlaced(placed) => {
                self.holds.insert(
                    placed.hold_id.clone(),
                    Hold {
                        hold_id: placed.hold_id.clone(),
                        target: placed.target.clone(),
                        reason: placed.reason.clone(),
                        placed_by: recorded.actor.clone(),
                        placed_at: recorded.recorded_at.clone(),
                    },
                );
            }
            DomainEvent::HoldReleased(released) => {
                self.holds.remove(&released.hold_id);
            }
            DomainEvent::RetentionPolicySet(policy) => match policy.keep_years {
                Some(years) => {
                    self.retention.insert(policy.practice_area.clone(), years);
                }
                None => {
                    self.retention.remove(&policy.practice_area);
                }
            },
            _ => {}
        }
    }

    pub fn from_events(events: &[RecordedEvent]) -> Self {
        let mut governance = Governance::default();
        for event in events {
            governance.apply(event);
        }
        governance
    }

    /// The holds that keep `subject` from erasure: holds on it, and for a matter, holds on
    /// any of its clients (`clients`: the contact ids of its client parties).
    pub fn holds_on(&self, subject: &str, clients: &[String]) -> Vec<&Hold> {
        self.holds
            .values()
            .filter(|hold| {
                hold.target == subject
                    || clients
                        .iter()
                        .any(|client| hold.target == format!("contact:{client}"))
            })
            .collect()
    }
}

/// The erasure state of one subject, folded from its stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErasureState {
    /// Requests awaiting confirmation: request id -> (requested by, request).
    pub pending: BTreeMap<String, (String, ErasureRequested)>,
    pub erased: Option<SubjectErased>,
}

impl ErasureState {
    pub fn apply(&mut self, recorded: &RecordedEvent) {
        match &recorded.event {
            DomainEvent::ErasureRequested(requested) => {
                self.pending.insert(
                    requested.request_id.clone(),
                    (recorded.actor.clone(), requested.clone()),
                );
            }
            DomainEvent::SubjectErased(erased) => {
                self.pending.clear();
                self.erased = Some(erased.clone());
            }
            _ => {}
        }
    }

    pub fn from_events(events: &[RecordedEvent]) -> Self {
        let mut state = ErasureState::default();
        for event in events {
            state.apply(event);
        }
        state
    }
}
