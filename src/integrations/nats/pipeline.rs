//! One publishing session: find where the stream ends, then publish the log from there, with
//! several messages in flight and their acks checked in order.
//!
//! Every message carries `Nats-Expected-Last-Sequence`: JetStream stores it only if the stream
//! still ends where the publisher believes. So a message lost in flight (a dropped connection)
//! is never followed by a later one, a second publisher cannot interleave, and the stream holds
//! the log's events in order without gaps. When an ack says otherwise (a duplicate, or the
//! stream moved on), the session ends with [`NatsError::Resync`] and the next one reads the
//! stream's end again.

use async_nats::jetstream::context::{Context, PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use futures::StreamExt;
use futures::stream::FuturesOrdered;

use super::jetstream::{check_same_log, ensure_stream, resume_point};
use super::{NatsError, NatsPublisher, PublishReport, source, subjects};

/// Publishes from the end of the stream on, until position `until` is acked (or forever).
pub async fn session(
    publisher: &NatsPublisher,
    js: &Context,
    until: Option<u64>,
    report: &mut PublishReport,
) -> Result<(), NatsError> {
    let settings = &publisher.settings;
    let stream = ensure_stream(js, settings).await?;
    let resume = resume_point(&stream, settings).await?;
    if resume.last_sequence == 0 {
        // A new stream (or one deleted and created again): it gets the whole log.
        publisher.restart();
    }
    if let Some(last) = &resume.last {
        check_same_log(&publisher.log, settings, last).await?;
        publisher.advance(last.position);
    }
    let start = publisher.published() + 1;
    let reached = |published: u64| until.is_some_and(|until| published >= until);
    if reached(start - 1) {
        return Ok(());
    }

    let mut events = source::events(&publisher.log, publisher.feed.as_ref(), start);
    let mut inflight: FuturesOrdered<InFlight> = FuturesOrdered::new();
    // The stream sequence the next message must follow.
    let mut expected = resume.last_sequence;
    let mut next = start;
    // A duplicate was acked: the sequences of the messages sent after it are off by one.
    let mut spoiled = false;
    loop {
        if reached(publisher.published()) {
            return Ok(());
        }
        let may_send = !spoiled
            && inflight.len() < publisher.window
            && until.is_none_or(|until| next <= until);
        if inflight.is_empty() && !may_send {
            return Err(NatsError::Resync);
        }
        tokio::select! {
            biased;
            Some((position, after, acked)) = inflight.next(), if !inflight.is_empty() => {
                match acked {
                    Ok(ack) if ack.duplicate => {
                        publisher.advance(position);
                        report.duplicates += 1;
                        spoiled = true;
                    }
                    Ok(ack) if ack.sequence == after + 1 => {
                        publisher.advance(position);
                        report.published += 1;
                    }
                    Ok(ack) => {
                        return Err(NatsError::Publish {
                            position,
                            detail: format!(
                                "stored at sequence {} where {} was expected",
                                ack.sequence,
                                after + 1
                            ),
                        });
                    }
                    Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
                        if !spoiled {
                            tracing::info!(
                                stream = %settings.stream,
                                position,
                                "the stream moved on under this publisher; reading its end again"
                            );
                        }
                        return Err(NatsError::Resync);
                    }
                    Err(error) => {
                        return Err(NatsError::Publish {
                            position,
                            detail: error.to_string(),
                        });
                    }
                }
            }
            item = events.next(), if may_send => {
                let event = match item {
                    Some(Ok(event)) => event,
                    Some(Err(error)) => return Err(error.into()),
                    None => return Err(NatsError::Resync),
                };
                if event.position != next {
                    return Err(NatsError::OutOfOrder {
                        expected: next,
                        found: event.position,
                    });
                }
                let (subject, message) = subjects::message(&settings.subject_prefix, &event)
                    .map_err(|error| NatsError::Publish {
                        position: next,
                        detail: format!("cannot encode the event: {error}"),
                    })?;
                let message = message
                    .expected_stream(&settings.stream)
                    .expected_last_sequence(expected);
                let ack = js.send_publish(subject, message).await.map_err(|error| {
                    NatsError::Publish {
                        position: next,
                        detail: error.to_string(),
                    }
                })?;
                let after = expected;
                inflight.push_back(in_flight(event.position, after, ack));
                expected += 1;
                next += 1;
            }
            else => return Err(NatsError::Resync),
        }
    }
}

/// A published message awaiting its ack: its position, the sequence it was to follow, and
/// the ack.
type Acked = (
    u64,
    u64,
    Result<PublishAck, async_nats::jetstream::context::PublishError>,
);
type InFlight = futures::future::BoxFuture<'static, Acked>;

fn in_flight(position: u64, after: u64, ack: PublishAckFuture) -> InFlight {
    Box::pin(async move { (position, after, ack.await) })
}
