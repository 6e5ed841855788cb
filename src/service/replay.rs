//! A matter replayed from the log, event by event: the one replay behind time travel
//! ([`super::Service::matter_as_of`], GraphQL's `matterAsOf`) and the forensic timeline
//! (`docket replay`).
//!
//! Invariants:
//! - A replay folds a prefix of the matter's stream in stream order with [`Matter::apply`], the
//!   fold every other reader uses. It stops at the first event past its [`Until`], so the state
//!   it ends in is exactly the fold of the events its timeline lists.
//! - A cut-off is inclusive: the event at the position, or recorded at the time, is in.
//! - A step's changes compare the folded state before and after its event, not the payload: they
//!   say what the event did to the matter, including what the fold derives (closing a matter
//!   sets `closed_on`), and nothing the fold ignored. See [`changes`] for how they are found.
//! - Replaying only reads. The stream is read in chunks, each read and decoded on a task of its
//!   own ahead of the fold; reads still in flight are cancelled when the replay stops early or
//!   is dropped.

mod changes;

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::matter::Matter;
use crate::domain::{DomainError, RecordedEvent};
use crate::log::time::format_timestamp;
use crate::log::{Event, StreamId};
use crate::store::{LogStore, StoreError};
use crate::vault::Vault;

pub use changes::{FieldChange, PathSegment};

use super::ServiceError;

/// Versions per read of a stream when replaying it.
const STREAM_CHUNK: u64 = 1000;
/// Chunks read ahead of the fold, on the reader pool's connections.
const CHUNKS_AHEAD: usize = 3;

/// A point in a matter's past as the API takes it: a log position, or an RFC 3339 time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf<'a> {
    Position(u64),
    /// An RFC 3339 time, compared with the events' recorded times.
    Time(&'a str),
}

/// Where a replay stops, inclusive: the last log position, or the last recorded time, it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    Position(u64),
    /// Compared with each event's `recorded_at` (the log's time, not the client's).
    Time(DateTime<Utc>),
}

impl Until {
    /// Reads a cut-off as the command line gives it: a bare whole number is a log position,
    /// anything else must be an RFC 3339 time.
    pub fn parse(text: &str) -> Result<Until, DomainError> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
            return text
                .parse()
                .map(Until::Position)
                .map_err(|_| DomainError::invalid("until", "the position is out of range"));
        }
        parse_time(text)
            .map(Until::Time)
            .ok_or_else(|| DomainError::invalid("until", "must be a position or an RFC 3339 time"))
    }

    /// Whether the replay takes this event. An event whose recorded time cannot be read is
    /// past any time (it cannot be shown to be before it).
    fn admits(&self, event: &Event) -> bool {
        match self {
            Until::Position(position) => event.position <= *position,
            Until::Time(cutoff) => parse_time(&event.recorded_at).is_some_and(|at| at <= *cutoff),
        }
    }
}

impl TryFrom<AsOf<'_>> for Until {
    type Error = DomainError;

    fn try_from(as_of: AsOf<'_>) -> Result<Self, Self::Error> {
        match as_of {
            AsOf::Position(position) => Ok(Until::Position(position)),
            AsOf::Time(text) => parse_time(text)
                .map(Until::Time)
                .ok_or_else(|| DomainError::invalid("asOf", "must be an RFC 3339 time")),
        }
    }
}

impl std::fmt::Display for Until {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Until::Position(position) => write!(f, "position {position}"),
            Until::Time(at) => write!(f, "{}", format_timestamp(*at)),
        }
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// One event of a matter's timeline, with what it changed in the matter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayStep {
    pub position: u64,
    pub stream_version: u64,
    pub recorded_at: String,
    pub occurred_at: String,
    pub actor: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub event_id: String,
    /// The event's hash, lower-case hex.
    pub hash: String,
    /// The matter's state members the event changed, in the state's member order; empty for an
    /// event the fold ignores.
    pub changes: Vec<FieldChange>,
}

impl ReplayStep {
    fn new(event: Event, changes: Vec<FieldChange>) -> Self {
        ReplayStep {
            position: event.position,
            stream_version: event.stream_version,
            hash: hex::encode(event.hash),
            recorded_at: event.recorded_at,
            occurred_at: event.occurred_at,
            actor: event.actor,
            event_type: event.event_type,
            event_id: event.id,
            changes,
        }
    }
}

/// A whole replay: every step up to the cut-off and the state they end in.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// The stream's version when the replay began (0: the log has no such matter).
    pub stream_version: u64,
    pub steps: Vec<ReplayStep>,
    /// The matter after the last step (`None` if it had not been opened by then).
    pub matter: Option<Matter>,
}

/// The matter as it stood at the cut-off (at the end without one): the fold alone, no changes
/// worked out. What time travel answers with.
pub async fn matter_until(
    store: &Arc<dyn LogStore>,
    vault: &Arc<Vault>,
    stream: &StreamId,
    until: Option<Until>,
) -> Result<Option<Matter>, ServiceError> {
    let mut events = StreamEvents::open(store, vault, stream, until).await?;
    let mut matter = None;
    while let Some(read) = events.next().await? {
        if let Some(recorded) = &read.recorded {
            Matter::apply(&mut matter, recorded);
        }
    }
    Ok(matter)
}

/// The whole timeline up to the cut-off, collected; [`Timeline`] yields it step by step.
pub async fn replay(
    store: &Arc<dyn LogStore>,
    vault: &Arc<Vault>,
    stream: &StreamId,
    until: Option<Until>,
) -> Result<Replay, ServiceError> {
    let mut timeline = Timeline::open(store, vault, stream, until).await?;
    let mut steps = Vec::new();
    while let Some(step) = timeline.next_step().await? {
        steps.push(step);
    }
    Ok(Replay {
        stream_version: timeline.stream_version(),
        steps,
        matter: timeline.into_matter(),
    })
}

/// A matter's timeline, one step per stored event of its stream up to the cut-off.
pub struct Timeline {
    events: StreamEvents,
    /// The fold up to the previous step, and up to this one. Keeping both (each advanced by the
    /// same events) lets a step compare them without copying the whole matter per event.
    before: Option<Matter>,
    after: Option<Matter>,
}

impl Timeline {
    pub async fn open(
        store: &Arc<dyn LogStore>,
        vault: &Arc<Vault>,
        stream: &StreamId,
        until: Option<Until>,
    ) -> Result<Self, ServiceError> {
        Ok(Timeline {
            events: StreamEvents::open(store, vault, stream, until).await?,
            before: None,
            after: None,
        })
    }

    /// The stream's version when the timeline was opened (0: no such matter).
    pub fn stream_version(&self) -> u64 {
        self.events.version
    }

    /// The next event with what it changed; `None` past the cut-off or the stream's end.
    pub async fn next_step(&mut self) -> Result<Option<ReplayStep>, ServiceError> {
        let Some(read) = self.events.next().await? else {
            return Ok(None);
        };
        let mut changes = Vec::new();
        if let Some(recorded) = &read.recorded {
            Matter::apply(&mut self.after, recorded);
            changes = changes::between(self.before.as_ref(), self.after.as_ref());
            Matter::apply(&mut self.before, recorded);
        }
        Ok(Some(ReplayStep::new(read.event, changes)))
    }

    /// The matter after the steps taken so far.
    pub fn matter(&self) -> Option<&Matter> {
        self.after.as_ref()
    }

    pub fn into_matter(self) -> Option<Matter> {
        self.after
    }
}

/// A stored event, and its domain reading (`None` for an event the domain does not read).
struct ReadEvent {
    event: Event,
    recorded: Option<RecordedEvent>,
}

type ChunkRead = tokio::task::JoinHandle<Result<Vec<ReadEvent>, ServiceError>>;

/// A stream's events in order up to a cut-off, read ahead chunk by chunk.
struct StreamEvents {
    store: Arc<dyn LogStore>,
    vault: Arc<Vault>,
    stream: String,
    until: Option<Until>,
    /// The stream's version when opened; later appends are not read.
    version: u64,
    chunks: u64,
    issued: u64,
    reading: VecDeque<ChunkRead>,
    page: std::vec::IntoIter<ReadEvent>,
    finished: bool,
}

impl StreamEvents {
    async fn open(
        store: &Arc<dyn LogStore>,
        vault: &Arc<Vault>,
        stream: &StreamId,
        until: Option<Until>,
    ) -> Result<Self, ServiceError> {
        let version = store
            .load_context(&[stream.to_string()], &[])
            .await?
            .tips
            .get(stream.as_str())
            .map_or(0, |tip| tip.version);
        let mut events = StreamEvents {
            store: store.clone(),
            vault: vault.clone(),
            stream: stream.to_string(),
            until,
            version,
            chunks: version.div_ceil(STREAM_CHUNK),
            issued: 0,
            reading: VecDeque::new(),
            page: Vec::new().into_iter(),
            finished: false,
        };
        while events.reading.len() < CHUNKS_AHEAD && events.issue() {}
        Ok(events)
    }

    /// Starts reading the next chunk, if there is one.
    fn issue(&mut self) -> bool {
        if self.issued >= self.chunks {
            return false;
        }
        let store = self.store.clone();
        let vault = self.vault.clone();
        let stream = self.stream.clone();
        let from = self.issued * STREAM_CHUNK + 1;
        self.reading.push_back(tokio::spawn(async move {
            let limit = u32::try_from(STREAM_CHUNK).unwrap_or(u32::MAX);
            let events = store.read_stream_page(&stream, from, limit).await?;
            let keys = vault.keys_for_events(&events).await?;
            let mut read = Vec::with_capacity(events.len());
            for event in events {
                let recorded = RecordedEvent::open(&event, &keys)?;
                read.push(ReadEvent { event, recorded });
            }
            Ok(read)
        }));
        self.issued += 1;
        true
    }

    async fn next(&mut self) -> Result<Option<ReadEvent>, ServiceError> {
        while !self.finished {
            if let Some(read) = self.page.next() {
                if self.until.is_some_and(|until| !until.admits(&read.event)) {
                    self.stop();
                    return Ok(None);
                }
                return Ok(Some(read));
            }
            let Some(chunk) = self.reading.pop_front() else {
                self.finished = true;
                break;
            };
            let page = chunk.await.map_err(|_| {
                ServiceError::Store(StoreError::Database {
                    detail: "a stream read task failed".into(),
                })
            })??;
            self.issue();
            self.page = page.into_iter();
        }
        Ok(None)
    }

    fn stop(&mut self) {
        self.finished = true;
        self.reading.iter().for_each(|task| task.abort());
        self.reading.clear();
    }
}

impl Drop for StreamEvents {
    fn drop(&mut self) {
        self.reading.iter().for_each(|task| task.abort());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_whole_number_is_a_position_and_anything_else_a_time() {
        assert_eq!(Until::parse("42").unwrap(), Until::Position(42));
        let at = Until::parse("2026-01-12T10:00:00+01:00").unwrap();
        assert_eq!(at.to_string(), "2026-01-12T09:00:00.000000Z");
        assert!(Until::parse("yesterday").is_err());
        assert!(Until::parse("-3").is_err());
        assert!(Until::parse("99999999999999999999999").is_err());
        assert!(
            Until::try_from(AsOf::Time("42")).is_err(),
            "the API takes times only"
        );
    }
}
