//! The events to publish: the log from a position on, in order. Served by the process's
//! [`Feed`] when there is one; otherwise by reading the store again after a short pause
//! whenever it has nothing new (one-shot runs, the benchmark).

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::mpsc;

use crate::integrations::feed::Feed;
use crate::log::Event;
use crate::store::{EventLog, StoreError};

/// Events read from the store at a time.
const PAGE: u32 = 500;
/// Pages read ahead of the publisher.
const READ_AHEAD: usize = 2;
/// The pause before reading again when the log has nothing new.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Every event with position >= `from`, in log order; it never ends by itself. A read error
/// is yielded as such (the publisher stops on it and starts again later).
pub fn events(
    log: &Arc<EventLog>,
    feed: Option<&Arc<Feed>>,
    from: u64,
) -> BoxStream<'static, Result<Arc<Event>, StoreError>> {
    match feed {
        Some(feed) => feed.follow(from).boxed(),
        None => poll(log.clone(), from).boxed(),
    }
}

/// Reads the store ahead of the publisher, in a task of its own, so that reading the next
/// page and publishing the last one overlap. The task ends when the stream is dropped.
fn poll(
    log: Arc<EventLog>,
    from: u64,
) -> impl futures::Stream<Item = Result<Arc<Event>, StoreError>> + Send + 'static {
    let (pages, inbox) = mpsc::channel::<Result<Vec<Event>, StoreError>>(READ_AHEAD);
    tokio::spawn(async move {
        let mut next = from.max(1);
        loop {
            match log.store().read_page(next, PAGE).await {
                Ok(page) if page.is_empty() => {
                    if pages.is_closed() {
                        return;
                    }
                    tokio::time::sleep(POLL_EVERY).await;
                }
                Ok(page) => {
                    next = page.last().map_or(next, |event| event.position + 1);
                    if pages.send(Ok(page)).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    let _ = pages.send(Err(error)).await;
                    return;
                }
            }
        }
    });
    stream::unfold(inbox, |mut inbox| async move {
        let page = inbox.recv().await?;
        let events: Vec<_> = match page {
            Ok(events) => events
                .into_iter()
                .map(|event| Ok(Arc::new(event)))
                .collect(),
            Err(error) => vec![Err(error)],
        };
        Some((stream::iter(events), inbox))
    })
    .flatten()
}
