//! Loading a stream's current state for a command: folded from the log, with the folded states
//! of recently used streams kept so that a command reads only the events since.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::TryStreamExt;

use crate::domain::RecordedEvent;
use crate::log::StreamId;
use crate::store::EventLog;
use crate::vault::Vault;

use super::ServiceError;

/// How many folded streams are kept; beyond it the cache starts over.
const CACHE_LIMIT: usize = 4096;

/// A stream's decoded events from a version on, client data opened.
pub async fn read_stream(
    log: &EventLog,
    vault: &Vault,
    stream: &StreamId,
    from_version: u64,
) -> Result<Vec<RecordedEvent>, ServiceError> {
    let events: Vec<_> = log
        .stream_from(stream.as_str(), from_version)
        .try_collect()
        .await?;
    let keys = vault.keys_for_events(&events).await?;
    let mut decoded = Vec::with_capacity(events.len());
    for event in &events {
        if let Some(recorded) = RecordedEvent::open(event, &keys)? {
            decoded.push(recorded);
        }
    }
    Ok(decoded)
}

/// A fold of one kind of stream, remembered per stream with the version it reached. The states
/// hold client data in memory only; [`FoldCache::forget`] drops an erased subject's.
pub struct FoldCache<S: Clone> {
    states: Mutex<HashMap<String, (u64, Option<S>)>>,
    apply: fn(&mut Option<S>, &RecordedEvent),
}

impl<S: Clone> FoldCache<S> {
    pub fn new(apply: fn(&mut Option<S>, &RecordedEvent)) -> Self {
        FoldCache {
            states: Mutex::new(HashMap::new()),
            apply,
        }
    }

    /// Drops the remembered state of `stream`.
    pub fn forget(&self, stream: &str) {
        if let Ok(mut states) = self.states.lock() {
            states.remove(stream);
        }
    }

    /// The stream's state now, and its version (0 when it does not exist).
    pub async fn load(
        &self,
        log: &EventLog,
        vault: &Vault,
        stream: &StreamId,
    ) -> Result<(u64, Option<S>), ServiceError> {
        let (mut version, mut state) = self
            .states
            .lock()
            .ok()
            .and_then(|states| states.get(stream.as_str()).cloned())
            .unwrap_or((0, None));
        for recorded in read_stream(log, vault, stream, version + 1).await? {
            (self.apply)(&mut state, &recorded);
            version = recorded.stream_version;
        }
        if let Ok(mut states) = self.states.lock() {
            if states.len() >= CACHE_LIMIT {
                states.clear();
            }
            let newer = states
                .get(stream.as_str())
                .is_some_and(|(cached, _)| *cached > version);
            if !newer {
                states.insert(stream.as_str().to_owned(), (version, state.clone()));
            }
        }
        Ok((version, state))
    }
}
