//! Loading a stream's current state for a command: folded from the log, with the folded states
//! of recently used streams kept so that a command reads only the events since.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
///
/// States are shared, not copied: a command that finds nothing new since the remembered
/// version borrows the remembered state, and one that finds new events takes the state out of
/// the cache, folds them in place and puts it back. A matter's state is never cloned on the
/// way, however many notes or entries it holds (a clone is made only when two commands fold
/// the same stream at once).
pub struct FoldCache<S: Clone> {
    states: Mutex<HashMap<String, Remembered<S>>>,
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
    ) -> Result<(u64, Option<Arc<S>>), ServiceError> {
        let key = stream.as_str();
        let (version, remembered) = self
            .states
            .lock()
            .ok()
            .and_then(|states| states.get(key).cloned())
            .unwrap_or((0, None));
        let recorded = read_stream(log, vault, stream, version + 1).await?;
        if recorded.is_empty() {
            return Ok((version, remembered));
        }
        // Take the cache's reference as well, so that the state is folded in place.
        if let Ok(mut states) = self.states.lock()
            && states
                .get(key)
                .is_some_and(|(cached, state)| *cached == version && same(state, &remembered))
        {
            states.remove(key);
        }
        let mut state = remembered.map(Arc::unwrap_or_clone);
        let mut version = version;
        for event in &recorded {
            (self.apply)(&mut state, event);
            version = event.stream_version;
        }
        let state = state.map(Arc::new);
        if let Ok(mut states) = self.states.lock() {
            if states.len() >= CACHE_LIMIT {
                states.clear();
            }
            let newer = states.get(key).is_some_and(|(cached, _)| *cached > version);
            if !newer {
                states.insert(key.to_owned(), (version, state.clone()));
            }
        }
        Ok((version, state))
    }
}

/// A stream's version and its state at that version (`None` before the stream exists).
type Remembered<S> = (u64, Option<Arc<S>>);

/// Whether two remembered states are the same one.
fn same<S>(a: &Option<Arc<S>>, b: &Option<Arc<S>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}
