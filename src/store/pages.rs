//! Reading the log as an async stream of pages, so no reader ever holds the whole log.

use std::sync::Arc;

use futures::Stream;
use futures::stream::{self, TryStreamExt};

use super::{LogStore, StoreError};
use crate::log::Event;

/// Default number of events per page.
pub const PAGE_SIZE: u32 = 2000;

/// Attempts of one page read when the database is briefly away (reads are always safe to retry).
const READ_ATTEMPTS: u32 = 4;

/// Pages of the global log from `from_position` on, until its current end.
pub fn log_pages(
    store: Arc<dyn LogStore>,
    from_position: u64,
    page_size: u32,
) -> impl Stream<Item = Result<Vec<Event>, StoreError>> {
    stream::try_unfold(Some(from_position.max(1)), move |next| {
        let store = store.clone();
        async move {
            let Some(from) = next else { return Ok(None) };
            let page = read_with_retry(|| store.read_page(from, page_size)).await?;
            let after = page.last().map(|event| event.position + 1);
            match after {
                Some(after) if page.len() == page_size as usize => Ok(Some((page, Some(after)))),
                Some(_) => Ok(Some((page, None))),
                None => Ok(None),
            }
        }
    })
}

/// Events of one stream from `from_version` on, one by one.
pub fn stream_events(
    store: Arc<dyn LogStore>,
    stream: String,
    from_version: u64,
) -> impl Stream<Item = Result<Event, StoreError>> {
    stream::try_unfold(Some(from_version.max(1)), move |next| {
        let store = store.clone();
        let stream = stream.clone();
        async move {
            let Some(from) = next else {
                return Ok::<_, StoreError>(None);
            };
            let page = read_with_retry(|| store.read_stream_page(&stream, from, PAGE_SIZE)).await?;
            let after = page.last().map(|event| event.stream_version + 1);
            match after {
                Some(after) if page.len() == PAGE_SIZE as usize => Ok(Some((page, Some(after)))),
                Some(_) => Ok(Some((page, None))),
                None => Ok(None),
            }
        }
    })
    .map_ok(|page| stream::iter(page.into_iter().map(Ok)))
    .try_flatten()
}

/// Runs a page read, retrying a few times while the database is briefly away.
pub(crate) async fn read_with_retry<F, Fut>(read: F) -> Result<Vec<Event>, StoreError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Vec<Event>, StoreError>>,
{
    let mut attempt = 1;
    loop {
        match read().await {
            Err(error) if error.is_transient() && attempt < READ_ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}
