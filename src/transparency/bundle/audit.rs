//! Who receives a bundle, and what the access chain records of its export.
//!
//! Every export is an audited read: one access record (or several, appended together, when a
//! range touches more matters than one record may name) with principal the investigator, or
//! `system` for the operator, operation [`OPERATION`], and the export's id as request id. An
//! investigator must be an active user whose role is auditor, partner or admin.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::access::record::{AccessEntry, AccessRecord, Decision, MAX_ENTRIES};
use crate::domain::identity::Role;
use crate::identity::directory::{DirectoryHandle, UserStatus};
use crate::store::{EventLog, StoreError};

use super::format::{ProvenEvent, Scope};

/// The operation access records of exports carry.
pub const OPERATION: &str = "export evidence bundle";

/// `Ok(Err(reason))` when `user_id` may not receive a bundle.
pub(super) async fn authorise(
    log: &Arc<EventLog>,
    user_id: &str,
) -> Result<Result<(), &'static str>, StoreError> {
    // Limitation: ethical walls are not consulted for an investigator; the operator names them
    // under their own authority, and the access chain records both.
    let directory = DirectoryHandle::open(log.clone()).await?.current();
    Ok(match directory.user(user_id) {
        None => Err("not_found"),
        Some(user) if user.status != UserStatus::Active => Err("inactive"),
        Some(user) if !matches!(user.role, Role::Auditor | Role::Partner | Role::Admin) => {
            Err("role")
        }
        Some(_) => Ok(()),
    })
}

/// Who exports, and what the access records of the export say.
pub(super) struct Audit {
    pub principal: String,
    pub export_id: String,
    pub with_view: bool,
}

impl Audit {
    pub fn reason(&self) -> &'static str {
        match self.principal.as_str() {
            "system" => "operator",
            _ => "investigator",
        }
    }

    /// One entry for the bundle and, for a range, one per matter whose events it holds, in
    /// records of at most [`MAX_ENTRIES`] entries (appended together).
    pub fn records(
        &self,
        scope: &Scope,
        events: &[&ProvenEvent],
        decision: Decision,
        reason: &str,
    ) -> Vec<AccessRecord> {
        let mut fields = vec!["bundle.events".to_owned()];
        if self.with_view {
            fields.push("bundle.view".to_owned());
        }
        let entry = |matter: Option<String>, target: &str, target_id: Option<String>| AccessEntry {
            matter,
            target: target.to_owned(),
            target_id,
            fields: fields.clone(),
            decision,
            reason: reason.to_owned(),
        };
        let mut entries = vec![entry(
            scope.matter.clone(),
            "evidence_bundle",
            Some(self.export_id.clone()),
        )];
        if scope.matter.is_none() {
            let matters: BTreeSet<&str> = events
                .iter()
                .filter_map(|event| event.stream.strip_prefix("matter:"))
                .collect();
            entries.extend(
                matters
                    .into_iter()
                    .map(|m| entry(Some(m.to_owned()), "matter", None)),
            );
        }
        entries
            .chunks(MAX_ENTRIES)
            .map(|chunk| AccessRecord {
                principal: self.principal.clone(),
                session: None,
                operation: OPERATION.to_owned(),
                request_id: Some(self.export_id.clone()),
                client_address: None,
                entries: chunk.to_vec(),
            })
            .collect()
    }
}
