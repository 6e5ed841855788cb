//! Records management's events: erasure of a data subject, legal holds and retention
//! policies (their folds are in [`super::governance`]).
//!
//! Erasure events live on the subject's own stream (`contact:<id>`, `matter:<number>`), so the
//! subject's history shows when and why its client data went. Holds and retention policies
//! live on the firm's `governance` stream ([`GOVERNANCE_STREAM`]).
//!
//! Reasons are kept in the clear for ever (they explain an erasure after the data is gone):
//! they should cite a reference, never personal data.

use serde::{Deserialize, Serialize};

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
