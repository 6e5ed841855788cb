//! The sequencer's memory of the log's end: the head and recently written stream tips.
//!
//! With it, a batch is planned without reading anything back from the database, and planned
//! while the previous batch is still being written. That is safe because the write itself checks
//! the head: it succeeds only if the log still ends where the plan assumed (see each backend),
//! and a write made by anyone else moves the head. On any failure the sequencer forgets the
//! state and plans the next batch under the log lock.

use std::collections::HashMap;

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
        self.tips.extend(
            plan.stream_tips
                .iter()
                .map(|(stream, tip)| (stream.clone(), *tip)),
        );
        self
    }
}
