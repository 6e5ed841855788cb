//! What the rules count, read off what the sources recorded: access records of the access
//! chain, and `auth.login_failed` events of the log.
//!
//! From an access record (its principal, its time, its decisions):
//! - `many_matters`: each matter a user was allowed into (API clients, whose reach is set by
//!   their scopes and who read many matters by design, are not counted);
//! - `off_hours`: a user allowed into a matter outside working hours, once per record;
//! - `walled_attempts`: each decision denied because a wall screens the principal;
//! - `break_glass`: each break-glass opening;
//! - `bulk_exports`: each subject-access export, evidence-bundle export and document download;
//! - `api_client_errors`: an API client's record holding a refused decision, once per record.
//!
//! From `auth.login_failed`: `failed_logins`, counted against the account (when the email named
//! one) and against the client address (when known), apart.

use super::hours::WorkingHours;
use super::rules::{Observation, Rule};
use crate::access::record::{AccessEntry, AccessRecord, Decision};
use crate::log::Event;

/// The operation under which evidence bundles are exported.
const BUNDLE_EXPORT: &str = crate::transparency::bundle::OPERATION;

/// When `event` was recorded, in Unix milliseconds.
pub fn recorded_ms(event: &Event) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(&event.recorded_at)
        .ok()
        .map(|at| at.timestamp_millis())
}

/// The observations of one access record, recorded at `at_ms` at `position` of the chain.
pub fn of_access_record(
    record: &AccessRecord,
    at_ms: i64,
    position: u64,
    working_hours: Option<&WorkingHours>,
) -> Vec<Observation> {
    let principal = record.principal.as_str();
    let user = principal.starts_with("user:");
    let client = principal.starts_with("api_client:");
    let seen = |rule, matter: Option<&String>| Observation {
        rule,
        subject: principal.to_owned(),
        at_ms,
        matter: matter.cloned(),
        position,
    };
    let mut observations = Vec::new();
    let allowed = |entry: &&AccessEntry| entry.decision == Decision::Allowed;
    for entry in &record.entries {
        let matter = entry.matter.as_ref();
        match entry.decision {
            Decision::Denied if entry.reason == "walled" => {
                observations.push(seen(Rule::WalledAttempts, matter));
            }
            Decision::Denied => {}
            Decision::Allowed => {
                if user && matter.is_some() {
                    observations.push(seen(Rule::ManyMatters, matter));
                }
                if entry.reason == "break_glass" && entry.target == "matter" {
                    observations.push(seen(Rule::BreakGlass, matter));
                }
                if is_export(record, entry) {
                    observations.push(seen(Rule::BulkExports, matter));
                }
            }
        }
    }
    let off_hours = working_hours.is_some_and(|hours| !hours.contains(at_ms));
    if user
        && off_hours
        && let Some(entry) = record
            .entries
            .iter()
            .filter(allowed)
            .find(|entry| entry.matter.is_some())
    {
        observations.push(seen(Rule::OffHours, entry.matter.as_ref()));
    }
    if client
        && let Some(entry) = record
            .entries
            .iter()
            .find(|entry| entry.decision == Decision::Denied)
    {
        observations.push(seen(Rule::ApiClientErrors, entry.matter.as_ref()));
    }
    observations
}

/// Whether an allowed decision is an export of data out of Docket.
fn is_export(record: &AccessRecord, entry: &AccessEntry) -> bool {
    entry.target == "subject_access_export"
        || (record.operation == BUNDLE_EXPORT && entry.target != "access_records")
        || (entry.target == "document"
            && entry
                .fields
                .iter()
                .any(|field| field == "matter.document_content"))
}

/// The observations of one event of the log: only `auth.login_failed` has any.
pub fn of_log_event(event: &Event, at_ms: i64) -> Vec<Observation> {
    if event.event_type != "auth.login_failed" {
        return Vec::new();
    }
    let Ok(payload) = serde_json::from_str::<serde_json::Value>(&event.payload) else {
        return Vec::new();
    };
    let text = |member: &str| {
        payload
            .get(member)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let subjects = [
        text("user_id").map(|id| format!("account:{id}")),
        text("client_address").map(|address| format!("address:{address}")),
    ];
    subjects
        .into_iter()
        .flatten()
        .map(|subject| Observation {
            rule: Rule::FailedLogins,
            subject,
            at_ms,
            matter: None,
            position: event.position,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(matter: Option<&str>, target: &str, allowed: bool, reason: &str) -> AccessEntry {
        AccessEntry {
            matter: matter.map(str::to_owned),
            target: target.into(),
            target_id: None,
            fields: Vec::new(),
            decision: if allowed {
                Decision::Allowed
            } else {
                Decision::Denied
            },
            reason: reason.into(),
        }
    }

    fn record(principal: &str, operation: &str, entries: Vec<AccessEntry>) -> AccessRecord {
        AccessRecord {
            principal: principal.into(),
            session: None,
            operation: operation.into(),
            request_id: None,
            client_address: None,
            entries,
        }
    }

    fn rules(observations: &[Observation]) -> Vec<(Rule, Option<&str>)> {
        observations
            .iter()
            .map(|o| (o.rule, o.matter.as_deref()))
            .collect()
    }

    #[test]
    fn a_users_reads_count_per_matter_and_walls_count_as_attempts() {
        let read = record(
            "user:eve",
            "query matters",
            vec![
                entry(Some("M-1"), "matter", true, "team_member"),
                entry(Some("M-2"), "matter", true, "firm_visible"),
                entry(Some("M-3"), "matter", false, "walled"),
                entry(Some("M-4"), "matter", false, "not_team"),
            ],
        );
        assert_eq!(
            rules(&of_access_record(&read, 0, 7, None)),
            vec![
                (Rule::ManyMatters, Some("M-1")),
                (Rule::ManyMatters, Some("M-2")),
                (Rule::WalledAttempts, Some("M-3")),
            ]
        );
    }

    #[test]
    fn off_hours_counts_once_per_record_of_client_data() {
        let hours = WorkingHours::parse("Mon-Fri 08:00-19:00").unwrap();
        let night = chrono::DateTime::parse_from_rfc3339("2026-12-03T23:00:00Z")
            .unwrap()
            .timestamp_millis();
        let read = record(
            "user:eve",
            "query matter",
            vec![
                entry(Some("M-1"), "matter", true, "team_member"),
                entry(Some("M-1"), "note", true, "team_member"),
            ],
        );
        let seen = of_access_record(&read, night, 1, Some(&hours));
        assert_eq!(seen.iter().filter(|o| o.rule == Rule::OffHours).count(), 1);
        let day = night - 12 * 3_600_000;
        let seen = of_access_record(&read, day, 1, Some(&hours));
        assert!(seen.iter().all(|o| o.rule != Rule::OffHours));
        let own = record(
            "user:eve",
            "query me",
            vec![entry(None, "user", true, "own_account")],
        );
        assert!(of_access_record(&own, night, 1, Some(&hours)).is_empty());
    }

    #[test]
    fn api_clients_count_refusals_not_matters() {
        let call = record(
            "api_client:billing",
            "mutation recordTime",
            vec![
                entry(Some("M-1"), "matter", true, "client_scope"),
                entry(None, "api_call", false, "rate_limited"),
            ],
        );
        assert_eq!(
            rules(&of_access_record(&call, 0, 1, None)),
            vec![(Rule::ApiClientErrors, None)]
        );
    }

    #[test]
    fn break_glass_and_exports_are_seen() {
        let glass = record(
            "user:bo",
            "mutation breakGlass",
            vec![
                entry(Some("M-9"), "matter", true, "break_glass"),
                entry(None, "alert", true, "break_glass"),
            ],
        );
        let observed = of_access_record(&glass, 0, 1, None);
        let seen = rules(&observed);
        assert!(seen.contains(&(Rule::BreakGlass, Some("M-9"))));
        assert_eq!(
            seen.iter().filter(|(r, _)| *r == Rule::BreakGlass).count(),
            1
        );
        let mut download = entry(Some("M-2"), "document", true, "team_member");
        download.fields = vec!["matter.document_content".into()];
        let export = record(
            "user:bo",
            "download document content",
            vec![
                download,
                entry(None, "subject_access_export", true, "export_subject_data"),
            ],
        );
        let exports = of_access_record(&export, 0, 1, None)
            .into_iter()
            .filter(|o| o.rule == Rule::BulkExports)
            .count();
        assert_eq!(exports, 2);
    }

    #[test]
    fn a_failed_login_counts_against_its_account_and_its_address() {
        let event = Event {
            position: 12,
            id: "0190a3b4-7c1d-7000-8000-000000000012".into(),
            stream: "directory".into(),
            stream_version: 3,
            event_type: "auth.login_failed".into(),
            schema_version: 1,
            payload: r#"{"client_address":"10.0.0.7","reason":"bad_credentials","user_id":"ada"}"#
                .into(),
            actor: "system".into(),
            request_id: None,
            occurred_at: "2026-12-03T10:00:00.000000Z".into(),
            recorded_at: "2026-12-03T10:00:00.000001Z".into(),
            correlation_id: None,
            causation_id: None,
            idempotency_key: None,
            prev_hash: Some([7; 32]),
            stream_prev_hash: None,
            key_id: "00".repeat(16),
            hash: [0; 32],
            signature: [0; 64],
        };
        let seen = of_log_event(&event, 5);
        let subjects: Vec<&str> = seen.iter().map(|o| o.subject.as_str()).collect();
        assert_eq!(subjects, vec!["account:ada", "address:10.0.0.7"]);
        assert!(seen.iter().all(|o| o.position == 12 && o.at_ms == 5));
        let other = Event {
            event_type: "auth.login_succeeded".into(),
            ..event
        };
        assert!(of_log_event(&other, 5).is_empty());
    }
}
