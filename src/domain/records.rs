//! Records management: erasure of a data subject, legal holds and retention policies.
//!
//! Erasure events live on the subject's own stream (`contact:<id>`, `matter:<number>`), so the
//! subject's history shows when and why its client data went. Holds and retention policies
//! live on the firm's `governance` stream ([`GOVERNANCE_STREAM`]), folded into [`Governance`].
//!
//! Reasons are kept in the clear for ever (they explain an erasure after the data is gone):
//! they should cite a reference, never personal data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RecordedEvent;
use super::events::DomainEvent;

/// The stream of legal holds and retention policies.
pub const GOVERNANCE_STREAM: &str = "governance";

/// Why a subject is erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureBasis {
    /// A request (for example under GDPR Art. 17), confirmed by a second authorised user.
    Request,
    /// A retention policy expired.
    Retention,
}

/// `subject.erasure_requested`: the first of the two authorisations an erasure needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErasureRequested {
    pub request_id: String,
    /// `contact:<id>` or `matter:<number>`.
    pub subject: String,
    pub reason: String,
    pub basis: ErasureBasis,
}

/// `subject.erased`: the subject's data key was destroyed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectErased {
    pub request_id: String,
    pub subject: String,
    /// The data key destroyed (absent when the subject never had one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub reason: String,
    pub basis: ErasureBasis,
    /// Who asked (a user, or `system:retention`).
    pub requested_by: String,
    /// Who confirmed (a second user; for retention the policy's author is recorded on the
    /// policy event instead, and this is `system:retention`).
    pub confirmed_by: String,
    /// What was erased, by name: `client_data`, `document_contents`, `blind_indexes`.
    pub erased: Vec<String>,
}

/// `hold.placed`: nothing under `target` may be erased or expire until released.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldPlaced {
    pub hold_id: String,
    /// `matter:<number>`, or `contact:<id>` for a client (which holds their matters too).
    pub target: String,
    pub reason: String,
}

/// `hold.released`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldReleased {
    pub hold_id: String,
    pub reason: String,
}

/// `retention.policy_set`: matters of `practice_area` are erased `keep_years` after they
/// close; `keep_years` absent removes the policy (keep for ever).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionPolicySet {
    pub practice_area: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_years: Option<u32>,
}

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
