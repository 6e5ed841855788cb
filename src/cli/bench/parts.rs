//! The two costs the "on" server adds to a request, each timed alone in process (no HTTP): the
//! session lookup that authenticates a bearer token, and one durable access record (validated,
//! hashed, signed, committed with its fsync), one writer at a time and 64 at once (group
//! commit then shares commits between them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::report::Measurement;
use crate::access::Principal;
use crate::access::chain::AccessChain;
use crate::access::record::{AccessEntry, AccessRecord, Decision};
use crate::identity::Identity;
use crate::store::StoreError;

/// The parts of the cost of authentication and access records.
#[derive(Debug, Serialize)]
pub struct AuthParts {
    /// `Identity::authenticate` of one session token, back to back.
    pub session_lookup: Measurement,
    /// `AccessChain::record` of a matter-detail-sized record, one at a time.
    pub access_record_1: Measurement,
    /// The same with 64 writers at once.
    pub access_record_64: Measurement,
    /// Commits made by the 64-writer run (records / commits is the group-commit size).
    pub access_record_64_commits: u64,
}

fn failed(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Database {
        detail: format!("timing the parts of authentication: {detail}"),
    }
}

/// Times each part for `duration`.
pub async fn measure(
    identity: &Identity,
    access: &Arc<AccessChain>,
    principal: &Principal,
    token: &str,
    duration: Duration,
) -> Result<AuthParts, StoreError> {
    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed() < duration {
        let began = Instant::now();
        identity
            .authenticate(token)
            .await
            .map_err(failed)?
            .ok_or_else(|| failed("the session proves nobody"))?;
        latencies.push(began.elapsed());
    }
    let session_lookup = Measurement::with_latencies(1, latencies, started.elapsed().as_secs_f64());
    let record = sample_record(principal);
    let access_record_1 = records(access, &record, 1, duration).await?;
    let before = access.log().stats().writes;
    let access_record_64 = records(access, &record, 64, duration).await?;
    let access_record_64_commits = access.log().stats().writes.saturating_sub(before);
    Ok(AuthParts {
        session_lookup,
        access_record_1,
        access_record_64,
        access_record_64_commits,
    })
}

/// `writers` tasks record `record` back to back until `duration` has passed.
async fn records(
    access: &Arc<AccessChain>,
    record: &AccessRecord,
    writers: u64,
    duration: Duration,
) -> Result<Measurement, StoreError> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let access = access.clone();
        let record = record.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < duration {
                let began = Instant::now();
                access.record(&record).await.map_err(failed)?;
                latencies.push(began.elapsed());
            }
            Ok::<_, StoreError>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.map_err(failed)??);
    }
    Ok(Measurement::with_latencies(
        writers,
        latencies,
        started.elapsed().as_secs_f64(),
    ))
}

/// A record like the one a matter-detail request leaves: the matter and its parties,
/// documents and calendar entries, each allowed as a team member.
fn sample_record(principal: &Principal) -> AccessRecord {
    let entry = |target: &str, fields: &[&str]| AccessEntry {
        matter: Some("B000001".to_owned()),
        target: target.to_owned(),
        target_id: None,
        fields: fields.iter().map(|field| (*field).to_owned()).collect(),
        decision: Decision::Allowed,
        reason: "team_member".to_owned(),
    };
    AccessRecord {
        principal: principal.actor.as_str().to_owned(),
        session: principal.session_id.clone(),
        operation: "bench access record".to_owned(),
        request_id: Some(uuid::Uuid::now_v7().to_string()),
        client_address: Some("127.0.0.1".to_owned()),
        entries: vec![
            entry("matter", &["matter.summary", "matter.core"]),
            entry("party", &["matter.parties"]),
            entry("contact", &["contact.details"]),
            entry("document", &["matter.documents"]),
            entry("calendar_entry", &["matter.work"]),
        ],
    }
}
