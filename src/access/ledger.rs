//! One request's decisions, gathered as the request is served and written as one access record
//! before anything is returned (or, for a change, before it is made).

use std::collections::BTreeSet;
use std::sync::Mutex;

use super::policy::Decision;

/// One decision about one thing, with the parts of it that were touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub matter: Option<String>,
    pub target: &'static str,
    pub target_id: Option<String>,
    pub fields: BTreeSet<&'static str>,
    pub allowed: bool,
    pub reason: &'static str,
}

/// The decisions of one request. Entries about the same thing with the same outcome are merged,
/// so a list of fifty matters makes fifty entries, not one per field.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: Mutex<Vec<LedgerEntry>>,
}

impl Ledger {
    /// Notes a decision about `target` (in `matter`, when it concerns one), touching `field`.
    pub fn note(
        &self,
        matter: Option<&str>,
        target: &'static str,
        target_id: Option<&str>,
        field: Option<&'static str>,
        decision: Decision,
    ) {
        let allowed = decision.is_allowed();
        let reason = decision.reason();
        let mut entries = match self.entries.lock() {
            Ok(entries) => entries,
            Err(poisoned) => poisoned.into_inner(),
        };
        let same = entries.iter_mut().find(|entry| {
            entry.matter.as_deref() == matter
                && entry.target == target
                && entry.target_id.as_deref() == target_id
                && entry.allowed == allowed
                && entry.reason == reason
        });
        match same {
            Some(entry) => {
                entry.fields.extend(field);
            }
            None => entries.push(LedgerEntry {
                matter: matter.map(str::to_owned),
                target,
                target_id: target_id.map(str::to_owned),
                fields: field.into_iter().collect(),
                allowed,
                reason,
            }),
        }
    }

    /// Takes every entry noted so far.
    pub fn take(&self) -> Vec<LedgerEntry> {
        match self.entries.lock() {
            Ok(mut entries) => std::mem::take(&mut *entries),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self.entries.lock() {
            Ok(entries) => entries.is_empty(),
            Err(poisoned) => poisoned.into_inner().is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_about_one_thing_merge_their_fields() {
        let ledger = Ledger::default();
        let allowed = Decision::Allowed("team_member");
        ledger.note(Some("M-1"), "matter", None, Some("matter.core"), allowed);
        ledger.note(Some("M-1"), "matter", None, Some("matter.notes"), allowed);
        ledger.note(Some("M-2"), "matter", None, Some("matter.core"), allowed);
        ledger.note(
            Some("M-1"),
            "matter",
            None,
            None,
            Decision::Denied("walled"),
        );
        let entries = ledger.take();
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[0].fields.iter().copied().collect::<Vec<_>>(),
            vec!["matter.core", "matter.notes"]
        );
        assert!(!entries[2].allowed);
        assert!(ledger.is_empty(), "take empties the ledger");
    }
}
