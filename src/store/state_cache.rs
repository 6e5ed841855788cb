//! The sequencer's memory of the log's end: the head and recently written stream tips.
//!
//! With it, a batch is planned without reading anything back from the database. That is safe
//! because the write itself checks the head: it succeeds only if the log still ends where the
//! cache says (see each backend), and a write made by anyone else moves the head. On any
//! failure the cache is dropped and the next batch reads the state under the log lock.

use std::collections::HashMap;
use std::sync::Mutex;

use super::LogHead;
use super::plan::{BatchPlan, StreamTip};

/// Stream tips kept at most; beyond this the cache starts over (a miss costs one read).
const MAX_CACHED_STREAMS: usize = 100_000;

/// The log's end as the last successful commit left it.
#[derive(Debug, Clone)]
pub struct LogState {
    pub head: LogHead,
    pub tips: HashMap<String, StreamTip>,
}

impl LogState {
    /// The state after `plan` committed.
    pub fn advance(mut self, plan: &BatchPlan) -> Self {
        if let Some(head) = &plan.head {
            self.head = head.clone();
        }
        if self.tips.len() + plan.stream_tips.len() > MAX_CACHED_STREAMS {
            self.tips.clear();
        }
        self.tips.extend(plan.stream_tips.iter().map(|(stream, tip)| (stream.clone(), *tip)));
        self
    }
}

/// Holds the [`LogState`] between batches; taking it leaves the cache empty until a commit
/// puts a state back, so a failed write can never leave a stale state behind.
#[derive(Debug, Default)]
pub struct StateCache(Mutex<Option<LogState>>);

impl StateCache {
    pub fn take(&self) -> Option<LogState> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }

    pub fn put(&self, state: LogState) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(state);
    }
}
