//! Publishing the log to NATS JetStream, against a real server with JetStream enabled
//! (`DOCKET_TEST_NATS_URL`, default `nats://127.0.0.1:4222`). Each test has a stream and a
//! subject prefix of its own, deleted at the end; those left by dead test processes are
//! deleted when the next test starts.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::Stream;
use async_nats::jetstream::{self, Context};
use docket::config::{Overrides, Settings};
use docket::integrations::feed::{Feed, FeedOptions};
use docket::integrations::nats::subjects::{self, parse_subject};
use docket::integrations::nats::{NatsError, NatsPublisher, NatsSettings};
use docket::log::canonical::compute_hash;
use docket::log::verify::Verifier;
use docket::log::{Actor, Event, EventDraft, StreamId};
use docket::store::{AppendRequest, EventLog};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestLog, one_event, sample_log};

on_both_backends!(
    every_event_is_published_in_order_with_its_subject_headers_and_verifiable_body,
    a_restart_resumes_from_the_stream_without_loss_or_duplicates,
    a_republished_event_is_dropped_as_a_duplicate,
    competing_consumers_of_a_durable_pull_consumer_receive_each_message_once,
    two_publishers_on_one_log_publish_each_event_once_and_take_over,
    racing_publishers_without_a_shared_lock_still_store_each_event_once_in_order,
    the_running_publisher_follows_the_feed_and_refills_a_deleted_stream,
    a_stream_holding_another_log_is_never_continued,
    an_unreachable_server_is_a_clear_error_without_credentials,
);

const WAIT: Duration = Duration::from_secs(30);

fn nats_url() -> String {
    std::env::var("DOCKET_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

static STREAMS: AtomicU32 = AtomicU32::new(0);
const STREAM_PREFIX: &str = "DOCKET_TEST_";

/// A JetStream stream name and subject prefix used by one test only.
struct TestStream {
    js: Context,
    settings: NatsSettings,
}

impl TestStream {
    async fn new() -> Self {
        let url = nats_url();
        let client = async_nats::connect(url.as_str())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "NATS with JetStream must be reachable at {url} for the nats tests \
                 (set DOCKET_TEST_NATS_URL; CI starts `nats-server -js`): {error}"
                )
            });
        let js = jetstream::new(client);
        let names: Vec<String> = js
            .stream_names()
            .try_collect()
            .await
            .unwrap_or_else(|error| {
                panic!("the NATS server at {url} must have JetStream enabled (-js): {error}")
            });
        delete_streams_of_dead_processes(&js, names).await;
        let pid = std::process::id();
        let n = STREAMS.fetch_add(1, Ordering::Relaxed);
        let settings = NatsSettings::new(
            &url,
            Some(&format!("{STREAM_PREFIX}{pid}_{n}")),
            Some(&format!("docket_test_{pid}_{n}")),
        )
        .expect("test NATS settings");
        TestStream { js, settings }
    }

    fn prefix(&self) -> &str {
        &self.settings.subject_prefix
    }

    async fn stream(&self) -> Stream {
        self.js
            .get_stream(&self.settings.stream)
            .await
            .expect("the stream exists")
    }

    /// Every message in the stream, in stream order.
    async fn messages(&self) -> Vec<StreamMessage> {
        let stream = self.stream().await;
        let state = stream.get_info().await.expect("stream info").state;
        let mut messages = Vec::new();
        if state.messages == 0 {
            return messages;
        }
        for sequence in state.first_sequence..=state.last_sequence {
            if let Ok(message) = stream.get_raw_message(sequence).await {
                messages.push(message);
            }
        }
        messages
    }

    async fn message_count(&self) -> u64 {
        match self.js.get_stream(&self.settings.stream).await {
            Ok(stream) => stream
                .get_info()
                .await
                .map_or(0, |info| info.state.messages),
            Err(_) => 0,
        }
    }

    /// Waits until the stream holds `count` messages.
    async fn wait_for(&self, count: u64) {
        let waited = tokio::time::timeout(WAIT, async {
            while self.message_count().await < count {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "the stream should hold {count} messages; it holds {}",
            self.message_count().await
        );
    }

    async fn delete(self) {
        let _ = self.js.delete_stream(&self.settings.stream).await;
    }
}

async fn delete_streams_of_dead_processes(js: &Context, names: Vec<String>) {
    for name in names {
        let Some(rest) = name.strip_prefix(STREAM_PREFIX) else {
            continue;
        };
        let pid = rest.split('_').next().unwrap_or_default();
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = js.delete_stream(&name).await;
        }
    }
}

fn position_of(message: &StreamMessage) -> u64 {
    header(message, subjects::POSITION_HEADER)
        .parse()
        .expect("a numeric position header")
}

fn header(message: &StreamMessage, name: &str) -> String {
    message
        .headers
        .get(name)
        .map(|value| value.as_str().to_owned())
        .unwrap_or_else(|| panic!("message {} has no {name} header", message.sequence))
}

/// Asserts that the stream holds positions 1..=head, each once, in order.
async fn assert_holds_the_log_once_in_order(stream: &TestStream, head: u64) {
    let positions: Vec<u64> = stream.messages().await.iter().map(position_of).collect();
    assert_eq!(positions, (1..=head).collect::<Vec<_>>());
}

async fn all_events(log: &EventLog) -> Vec<Event> {
    log.pages_from(1)
        .try_concat()
        .await
        .expect("the log reads back")
}

/// Appends `count` events to a few matters and a contact, 25 to an append.
async fn append_many(log: &EventLog, count: usize) {
    let mut left = count;
    let mut round = 0;
    while left > 0 {
        let batch = left.min(25);
        let stream = match round % 4 {
            3 => "contact:7".to_owned(),
            n => format!("matter:2026-{n:04}"),
        };
        let drafts = (0..batch)
            .map(|index| EventDraft::new("matter.noted", json!({ "round": round, "index": index })))
            .collect();
        let request = AppendRequest::new(
            StreamId::parse(&stream).unwrap(),
            Actor::parse("user:ada").unwrap(),
            drafts,
        );
        log.append(request).await.expect("append");
        left -= batch;
        round += 1;
    }
}

async fn head(log: &EventLog) -> u64 {
    log.head().await.unwrap().position
}

async fn every_event_is_published_in_order_with_its_subject_headers_and_verifiable_body(
    backend: Backend,
) {
    let test = TestLog::new(backend).await;
    let log = Arc::new(test.open().await);
    // Several matters, a key rotation in the middle, and a matter number with a dot in it.
    sample_log(&log, 12).await;
    let dotted = json!({ "title": "Re Smith" });
    log.append(one_event("matter:2026.0042", "matter.opened", dotted))
        .await
        .unwrap();
    let head = head(&log).await;

    let stream = TestStream::new().await;
    let publisher = NatsPublisher::new(stream.settings.clone(), log.clone(), &test.options());
    let report = publisher.publish_until(head).await.unwrap();
    assert_eq!((report.published, report.duplicates), (head, 0));
    assert_eq!(report.last_position, head);

    let messages = stream.messages().await;
    let events = all_events(&log).await;
    assert_eq!(messages.len(), events.len());
    let prefix = stream.prefix();
    let mut bodies = Vec::new();
    for (message, event) in messages.iter().zip(&events) {
        assert_eq!(message.subject.as_str(), subjects::subject(prefix, event));
        assert_eq!(
            parse_subject(prefix, &message.subject),
            Some((event.stream.clone(), event.event_type.clone()))
        );
        assert_eq!(header(message, "Nats-Msg-Id"), event.id);
        assert_eq!(header(message, subjects::EVENT_ID_HEADER), event.id);
        assert_eq!(position_of(message), event.position);
        assert_eq!(header(message, subjects::STREAM_HEADER), event.stream);
        assert_eq!(
            header(message, subjects::STREAM_VERSION_HEADER),
            event.stream_version.to_string()
        );
        assert_eq!(header(message, subjects::TYPE_HEADER), event.event_type);
        assert_eq!(header(message, subjects::KEY_ID_HEADER), event.key_id);
        // The body is the event as stored; its hash is recomputed from it alone.
        assert_eq!(message.payload.as_ref(), serde_json::to_vec(event).unwrap());
        let body: Event = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(&body, event);
        assert_eq!(compute_hash(&body), body.hash);
        assert_eq!(
            header(message, subjects::HASH_HEADER),
            hex::encode(body.hash)
        );
        bodies.push(body);
    }
    assert_eq!(
        messages[0].subject.as_str(),
        format!("{prefix}.system.%.log.genesis")
    );
    assert_eq!(
        messages.last().unwrap().subject.as_str(),
        format!("{prefix}.matter.2026%2E0042.matter.opened")
    );
    // The messages alone verify as a log: chain, signatures and the key rotation.
    let mut verifier = Verifier::new(true, None);
    verifier
        .check_page(&bodies)
        .expect("the published log verifies");
    assert_eq!(verifier.finish(None).expect("verifies").events, head);
    stream.delete().await;
}

async fn a_restart_resumes_from_the_stream_without_loss_or_duplicates(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = Arc::new(test.open().await);
    append_many(&log, 40).await;
    let first_head = head(&log).await;
    let stream = TestStream::new().await;
    let first = NatsPublisher::new(stream.settings.clone(), log.clone(), &test.options());
    first.publish_until(first_head).await.unwrap();
    drop(first);

    // Docket restarts: a new publisher knows nothing but what the stream holds.
    append_many(&log, 60).await;
    let second_head = head(&log).await;
    let second = NatsPublisher::new(stream.settings.clone(), log.clone(), &test.options());
    let report = second.publish_until(second_head).await.unwrap();
    assert_eq!(report.published, second_head - first_head);
    assert_eq!(report.duplicates, 0);
    assert_holds_the_log_once_in_order(&stream, second_head).await;

    // Nothing new: nothing published.
    let third = NatsPublisher::new(stream.settings.clone(), log.clone(), &test.options());
    let report = third.publish_until(second_head).await.unwrap();
    assert_eq!((report.published, report.last_position), (0, second_head));

    // A purge that keeps the last message keeps the resume point.
    stream.stream().await.purge().keep(1).await.unwrap();
    append_many(&log, 5).await;
    let third_head = head(&log).await;
    let fourth = NatsPublisher::new(stream.settings.clone(), log.clone(), &test.options());
    let report = fourth.publish_until(third_head).await.unwrap();
    assert_eq!(report.published, third_head - second_head);
    let positions: Vec<u64> = stream.messages().await.iter().map(position_of).collect();
    assert_eq!(positions, (second_head..=third_head).collect::<Vec<_>>());
    stream.delete().await;
}

async fn a_republished_event_is_dropped_as_a_duplicate(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = Arc::new(test.open().await);
    append_many(&log, 10).await;
    let head = head(&log).await;
    let stream = TestStream::new().await;
    NatsPublisher::new(stream.settings.clone(), log.clone(), &test.options())
        .publish_until(head)
        .await
        .unwrap();

    // The same event published again, as a second publisher or a retry would.
    let events = all_events(&log).await;
    let event = &events[4];
    let (subject, message) = subjects::message(stream.prefix(), event).unwrap();
    let ack = stream
        .js
        .send_publish(subject, message)
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(ack.duplicate, "a second copy of an event must be dropped");
    assert_eq!(ack.sequence, 5, "the ack names the first copy");
    assert_eq!(stream.message_count().await, head);
    assert_holds_the_log_once_in_order(&stream, head).await;
    stream.delete().await;
}

async fn competing_consumers_of_a_durable_pull_consumer_receive_each_message_once(
    backend: Backend,
) {
    let test = TestLog::new(backend).await;
    let log = Arc::new(test.open().await);
    append_many(&log, 200).await;
    let head = head(&log).await;
    let stream = TestStream::new().await;
    NatsPublisher::new(stream.settings.clone(), log.clone(), &test.options())
        .publish_until(head)
        .await
        .unwrap();
    let matter_positions: HashSet<u64> = all_events(&log)
        .await
        .iter()
        .filter(|event| event.stream.starts_with("matter:"))
        .map(|event| event.position)
        .collect();

    // One durable consumer of every matter's events, shared by two workers.
    stream
        .stream()
        .await
        .create_consumer(pull::Config {
            durable_name: Some("billing".into()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            filter_subject: format!("{}.matter.>", stream.prefix()),
            ..Default::default()
        })
        .await
        .unwrap();
    let expected = matter_positions.len();
    let received = Arc::new(std::sync::Mutex::new(Vec::<(usize, u64)>::new()));
    let mut workers = Vec::new();
    for worker in 0..2 {
        let consumer = stream
            .stream()
            .await
            .get_consumer::<pull::Config>("billing")
            .await
            .unwrap();
        let received = received.clone();
        workers.push(tokio::spawn(async move {
            while received.lock().unwrap().len() < expected {
                let mut batch = consumer
                    .fetch()
                    .max_messages(10)
                    .expires(Duration::from_millis(300))
                    .messages()
                    .await
                    .unwrap();
                while let Some(message) = batch.next().await {
                    let message = message.unwrap();
                    let position: u64 = message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(subjects::POSITION_HEADER))
                        .map(|v| v.as_str().parse().unwrap())
                        .unwrap();
                    received.lock().unwrap().push((worker, position));
                    message.ack().await.unwrap();
                    // Working takes a while: the other worker takes the next batch meanwhile.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }));
    }
    for worker in workers {
        tokio::time::timeout(WAIT, worker)
            .await
            .expect("the workers finish")
            .unwrap();
    }
    let received = received.lock().unwrap().clone();
    let positions: Vec<u64> = received.iter().map(|(_, position)| *position).collect();
    let unique: HashSet<u64> = positions.iter().copied().collect();
    assert_eq!(
        positions.len(),
        unique.len(),
        "no message is delivered twice"
    );
    assert_eq!(unique, matter_positions, "every matter event is delivered");
    for worker in 0..2 {
        assert!(
            received.iter().any(|(who, _)| *who == worker),
            "worker {worker} received nothing"
        );
    }
    let info = stream
        .stream()
        .await
        .consumer_info("billing")
        .await
        .unwrap();
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 0));
    stream.delete().await;
}

async fn two_publishers_on_one_log_publish_each_event_once_and_take_over(backend: Backend) {
    let test = TestLog::new(backend).await;
    // Two Docket processes on one database: two handles on the log, two publishers.
    let writer = Arc::new(test.open().await);
    let other = Arc::new(test.open().await);
    append_many(&writer, 50).await;
    let stream = TestStream::new().await;
    let publishers = [writer.clone(), other.clone()].map(|log| {
        Arc::new(NatsPublisher::new(
            stream.settings.clone(),
            log,
            &test.options(),
        ))
    });
    let statuses = publishers.each_ref().map(|publisher| publisher.status());
    let mut tasks = publishers
        .each_ref()
        .map(|publisher| Some(tokio::spawn(publisher.clone().run())));
    stream.wait_for(head(&writer).await).await;
    let leading: Vec<usize> = (0..2).filter(|&i| statuses[i].borrow().leading).collect();
    assert_eq!(leading.len(), 1, "exactly one publisher leads");
    let leader = leading[0];

    // The leader dies; the other takes over where the stream ends.
    let task = tasks[leader].take().unwrap();
    task.abort();
    let _ = task.await;
    append_many(&writer, 50).await;
    let head = head(&writer).await;
    stream.wait_for(head).await;
    let mut successor = statuses[1 - leader].clone();
    tokio::time::timeout(
        WAIT,
        successor.wait_for(|s| s.leading && s.published == head),
    )
    .await
    .expect("the other publisher takes over and reports the head published")
    .unwrap();
    assert_holds_the_log_once_in_order(&stream, head).await;
    for task in tasks.into_iter().flatten() {
        task.abort();
    }
    stream.delete().await;
}

async fn racing_publishers_without_a_shared_lock_still_store_each_event_once_in_order(
    backend: Backend,
) {
    let test = TestLog::new(backend).await;
    let log = Arc::new(test.open().await);
    append_many(&log, 3000).await;
    let head = head(&log).await;
    let stream = TestStream::new().await;
    // The second publisher's lock is a file elsewhere: nothing keeps the two apart but the
    // stream itself.
    let elsewhere = tempfile::tempdir().unwrap();
    let first = NatsPublisher::new(stream.settings.clone(), log.clone(), &test.options());
    let second = NatsPublisher::new(
        stream.settings.clone(),
        log.clone(),
        &docket::store::LogOptions::new(elsewhere.path()),
    )
    .with_window(64);
    let (first, second) = tokio::join!(first.publish_until(head), second.publish_until(head));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(
        first.published + second.published,
        head,
        "{first:?} {second:?}"
    );
    assert_eq!((first.last_position, second.last_position), (head, head));
    assert_holds_the_log_once_in_order(&stream, head).await;
    stream.delete().await;
}

async fn the_running_publisher_follows_the_feed_and_refills_a_deleted_stream(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = Arc::new(test.open().await);
    append_many(&log, 10).await;
    let stream = TestStream::new().await;
    let settings = Settings::resolve(Overrides {
        data_dir: Some(test.dir.path().to_owned()),
        database_url: test.database_url.clone(),
        nats_url: Some(nats_url()),
        nats_stream: Some(stream.settings.stream.clone()),
        nats_subject_prefix: Some(stream.settings.subject_prefix.clone()),
        ..Overrides::default()
    })
    .unwrap();
    let feed = Feed::open(&log, FeedOptions::for_backend(log.store().backend()))
        .await
        .unwrap();
    let tail = feed.spawn(log.committed());
    let task = docket::integrations::nats::spawn(
        settings.nats.clone(),
        &settings.log_options(),
        log.clone(),
        feed,
    )
    .await
    .expect("publishing is configured");
    stream.wait_for(head(&log).await).await;

    // Live events follow as they are appended.
    for _ in 0..5 {
        append_many(&log, 3).await;
    }
    stream.wait_for(head(&log).await).await;
    assert_holds_the_log_once_in_order(&stream, head(&log).await).await;

    // Deleted from under it, the stream is created again and refilled from position 1.
    stream
        .js
        .delete_stream(&stream.settings.stream)
        .await
        .unwrap();
    append_many(&log, 1).await;
    let head = head(&log).await;
    stream.wait_for(head).await;
    assert_holds_the_log_once_in_order(&stream, head).await;
    task.abort();
    tail.abort();
    stream.delete().await;
}

async fn a_stream_holding_another_log_is_never_continued(backend: Backend) {
    let first = TestLog::new(backend).await;
    let first_log = Arc::new(first.open().await);
    append_many(&first_log, 5).await;
    let stream = TestStream::new().await;
    NatsPublisher::new(stream.settings.clone(), first_log.clone(), &first.options())
        .publish_until(head(&first_log).await)
        .await
        .unwrap();
    let before = stream.message_count().await;

    // Another installation (or this one's database restored elsewhere) on the same stream.
    let second = TestLog::new(backend).await;
    let second_log = Arc::new(second.open().await);
    append_many(&second_log, 20).await;
    let error = NatsPublisher::new(
        stream.settings.clone(),
        second_log.clone(),
        &second.options(),
    )
    .publish_until(head(&second_log).await)
    .await
    .unwrap_err();
    assert!(matches!(error, NatsError::ForeignStream { .. }), "{error}");
    assert!(
        error.to_string().contains("does not hold this log"),
        "{error}"
    );
    assert_eq!(stream.message_count().await, before);
    stream.delete().await;
}

async fn an_unreachable_server_is_a_clear_error_without_credentials(backend: Backend) {
    let test = TestLog::new(backend).await;
    let log = Arc::new(test.open().await);
    let settings = NatsSettings::new("nats://publisher:hunter2@127.0.0.1:1", None, None).unwrap();
    let publisher = NatsPublisher::new(settings, log.clone(), &test.options());
    let error = publisher.publish_until(head(&log).await).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, NatsError::Connect { .. }), "{message}");
    assert!(message.contains("nats://127.0.0.1:1"), "{message}");
    assert!(
        !message.contains("hunter2") && !message.contains("publisher"),
        "{message}"
    );
}
