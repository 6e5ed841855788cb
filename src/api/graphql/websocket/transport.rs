//! The graphql-transport-ws protocol on one connection.
//!
//! The client initialises the connection (`connection_init`, answered `connection_ack`, or
//! closed with 4403 when refused), then starts operations (`subscribe` with an id) and may
//! stop them (`complete`). Results arrive as `next` messages and an operation's end as
//! `complete`. Either side may `ping`; the other answers `pong`. Breaches close the
//! connection with the protocol's codes: 4400 for a message that is not one, 4401 for an
//! operation before the acknowledgement, 4408 when no `connection_init` came in time, 4409 for
//! an id already running and 4429 for a second `connection_init`.
//!
//! Subscriptions to `events` go through [`shared`], so that a delivery's JSON is written once
//! for all the connections that receive it; every other operation is executed for its caller.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Request;
use futures::stream::{AbortHandle, Abortable, BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;

use crate::api::graphql::DocketSchema;
use crate::api::graphql::caller::Caller;
use crate::api::graphql::subscription::shared::{self, Renders, Started};

/// How long a client may take to send `connection_init`.
const INIT_WAIT: Duration = Duration::from_secs(10);
/// How often the server pings a connection, so that a client's `pong` keeps it alive.
const PING_EVERY: Duration = Duration::from_secs(20);

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {
        #[serde(default)]
        #[allow(dead_code)]
        payload: Option<Value>,
    },
    Pong {
        #[serde(default)]
        #[allow(dead_code)]
        payload: Option<Value>,
    },
    Subscribe {
        id: String,
        payload: Box<Request>,
    },
    Complete {
        id: String,
    },
}

/// What the server sends: a text message, or the close that ends the connection.
pub enum Outgoing {
    Text(String),
    Close(u16, String),
}

/// The `next` message carrying the response `json` for operation `id`.
pub fn next_message(id: &str, json: &str) -> String {
    let id = serde_json::to_string(id).unwrap_or_else(|_| "\"\"".to_owned());
    let mut message = String::with_capacity(json.len() + id.len() + 32);
    message.push_str(r#"{"id":"#);
    message.push_str(&id);
    message.push_str(r#","type":"next","payload":"#);
    message.push_str(json);
    message.push('}');
    message
}

fn complete_message(id: &str) -> String {
    serde_json::json!({"id": id, "type": "complete"}).to_string()
}

/// One message of an operation; `last` for its `complete`.
struct Step {
    message: String,
    last: Option<String>,
}

/// One operation's messages.
type Operation = BoxStream<'static, Step>;

/// Where the connection stands.
struct Connection {
    schema: DocketSchema,
    renders: Arc<Renders>,
    caller: Option<Arc<Caller>>,
    running: HashMap<String, AbortHandle>,
}

impl Connection {
    /// The messages of operation `id`, ending with its `complete`.
    fn operation(&self, caller: Arc<Caller>, id: String, request: Request) -> Operation {
        let (schema, renders) = (self.schema.clone(), self.renders.clone());
        let complete = Step {
            message: complete_message(&id),
            last: Some(id.clone()),
        };
        futures::stream::once(async move {
            match shared::start(&schema, &renders, caller, request).await {
                Started::Shared(frames) => frames
                    .map(move |frame| Step {
                        message: next_message(&id, &frame.json),
                        last: None,
                    })
                    .boxed(),
                Started::General(responses) => responses
                    .map(move |response| {
                        let json = serde_json::to_string(&response).unwrap_or_else(|_| {
                            r#"{"data":null,"errors":[{"message":"internal error"}]}"#.to_owned()
                        });
                        Step {
                            message: next_message(&id, &json),
                            last: None,
                        }
                    })
                    .boxed(),
            }
        })
        .flatten()
        .chain(futures::stream::once(async move { complete }))
        .boxed()
    }
}

/// Serves the protocol on one connection: `incoming` are the client's messages, `send`
/// delivers the server's (a failure ends the connection), `init` decides `connection_init`.
pub async fn serve<I, S, SendFuture, Init, InitFuture>(
    schema: DocketSchema,
    renders: Arc<Renders>,
    incoming: I,
    mut send: S,
    init: Init,
) where
    I: Stream<Item = Vec<u8>> + Unpin,
    S: FnMut(Outgoing) -> SendFuture,
    SendFuture: Future<Output = Result<(), ()>>,
    Init: FnOnce(Value) -> InitFuture,
    InitFuture: Future<Output = Result<Arc<Caller>, String>>,
{
    let mut incoming = incoming;
    let mut init = Some(init);
    let mut connection = Connection {
        schema,
        renders,
        caller: None,
        running: HashMap::new(),
    };
    let mut operations: SelectAll<Abortable<Operation>> = SelectAll::new();
    let mut heard = tokio::time::Instant::now();
    let mut pings = tokio::time::interval(PING_EVERY);
    pings.tick().await;
    let init_deadline = tokio::time::sleep(INIT_WAIT);
    tokio::pin!(init_deadline);

    loop {
        let close = tokio::select! {
            message = incoming.next() => {
                let Some(message) = message else { break };
                heard = tokio::time::Instant::now();
                match serde_json::from_slice::<ClientMessage>(&message) {
                    Err(_) => Some((4400, "Invalid message received".to_owned())),
                    Ok(message) => {
                        handle(&mut connection, &mut operations, &mut init, message, &mut send).await
                    }
                }
            }
            Some(step) = operations.next(), if !operations.is_empty() => {
                if let Some(id) = step.last {
                    connection.running.remove(&id);
                }
                if send(Outgoing::Text(step.message)).await.is_err() {
                    break;
                }
                None
            }
            _ = &mut init_deadline, if connection.caller.is_none() => {
                Some((4408, "Connection initialisation timeout".to_owned()))
            }
            _ = pings.tick() => {
                if heard.elapsed() > PING_EVERY * 3 {
                    Some((3008, "timeout".to_owned()))
                } else {
                    if send(Outgoing::Text(r#"{"type":"ping"}"#.to_owned())).await.is_err() {
                        break;
                    }
                    None
                }
            }
        };
        if let Some((code, reason)) = close {
            let _ = send(Outgoing::Close(code, reason)).await;
            break;
        }
    }
    for (_, handle) in connection.running.drain() {
        handle.abort();
    }
}

/// Acts on one client message; `Some` closes the connection with that code and reason.
async fn handle<S, SendFuture, Init, InitFuture>(
    connection: &mut Connection,
    operations: &mut SelectAll<Abortable<Operation>>,
    init: &mut Option<Init>,
    message: ClientMessage,
    send: &mut S,
) -> Option<(u16, String)>
where
    S: FnMut(Outgoing) -> SendFuture,
    SendFuture: Future<Output = Result<(), ()>>,
    Init: FnOnce(Value) -> InitFuture,
    InitFuture: Future<Output = Result<Arc<Caller>, String>>,
{
    match message {
        ClientMessage::ConnectionInit { payload } => {
            let Some(init) = init.take() else {
                return Some((4429, "Too many initialisation requests".to_owned()));
            };
            match init(payload.unwrap_or(Value::Null)).await {
                Ok(caller) => {
                    connection.caller = Some(caller);
                    let ack = r#"{"type":"connection_ack"}"#.to_owned();
                    send(Outgoing::Text(ack))
                        .await
                        .err()
                        .map(|_| (1011, String::new()))
                }
                Err(reason) => Some((4403, reason)),
            }
        }
        ClientMessage::Ping { .. } => {
            let pong = r#"{"type":"pong"}"#.to_owned();
            send(Outgoing::Text(pong))
                .await
                .err()
                .map(|_| (1011, String::new()))
        }
        ClientMessage::Pong { .. } => None,
        ClientMessage::Subscribe { id, payload } => {
            let Some(caller) = connection.caller.clone() else {
                return Some((4401, "Unauthorized".to_owned()));
            };
            if connection.running.contains_key(&id) {
                return Some((4409, format!("Subscriber for {id} already exists")));
            }
            let (handle, registration) = AbortHandle::new_pair();
            let operation = connection.operation(caller, id.clone(), *payload);
            operations.push(Abortable::new(operation, registration));
            connection.running.insert(id, handle);
            None
        }
        ClientMessage::Complete { id } => {
            if let Some(handle) = connection.running.remove(&id) {
                handle.abort();
            }
            None
        }
    }
}
