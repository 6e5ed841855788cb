//! `GET /graphql` upgraded to a WebSocket: GraphQL subscriptions over the graphql-transport-ws
//! protocol (and the older graphql-ws one, for clients that still speak it).
//!
//! The credential is a bearer token, sent either in the upgrade's `Authorization` header or in
//! the `connection_init` payload as `{"authorization": "Bearer <token>"}` (browsers cannot set
//! headers on a WebSocket). Cookies are ignored here: a page on another site could otherwise
//! open a socket that rides on a signed-in user's cookie.
//!
//! graphql-transport-ws is served by [`transport`], which shares each event's rendering among
//! the connections that receive it; the older protocol by async-graphql's own engine.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::Data;
use async_graphql::http::{WebSocket, WebSocketProtocols, WsMessage};
use futures::StreamExt;
use serde_json::Value;

mod transport;

pub use transport::next_message;

use super::account::calls::ApiCall;
use super::caller::Caller;
use super::errors::api_error;
use super::http::{GraphqlState, client_address, error_response};
use super::mutation::RequestId;
use crate::access::Principal;

/// Largest message a client may send.
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// A connection that sends nothing (not even a ping) for this long is closed.
const KEEPALIVE: Duration = Duration::from_secs(60);

/// The protocol the client asked for, if Docket speaks it.
fn protocol(request: &HttpRequest) -> Option<WebSocketProtocols> {
    request
        .headers()
        .get_all("sec-websocket-protocol")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|name| WebSocketProtocols::from_str(name.trim()).ok())
}

/// The bearer token of an `Authorization` header value or `connection_init` member.
fn bearer(text: &str) -> Option<&str> {
    text.strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// Upgrades the request and serves subscriptions on it until either side closes.
pub async fn graphql_ws(
    request: HttpRequest,
    body: web::Payload,
    state: web::Data<GraphqlState>,
) -> HttpResponse {
    let Some(protocol) = protocol(&request) else {
        return error_response(
            400,
            "BAD_REQUEST",
            "a WebSocket must ask for the graphql-transport-ws protocol",
        );
    };
    // A credential in the upgrade request must prove someone; one in connection_init may
    // come instead.
    let from_header = match request.headers().get("authorization") {
        None => None,
        Some(value) => {
            let Some(token) = value.to_str().ok().and_then(bearer) else {
                return error_response(401, "UNAUTHENTICATED", "the credential is not valid");
            };
            match authenticate_token(token, &state.identity).await {
                Ok(principal) => Some(principal),
                Err(response) => return response,
            }
        }
    };
    let request_id = actix_web::HttpMessage::extensions(&request)
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let address = client_address(&request);
    let (mut response, session, messages) = match actix_ws::handle(&request, body) {
        Ok(parts) => parts,
        Err(_) => {
            return error_response(400, "BAD_REQUEST", "the WebSocket handshake is not valid");
        }
    };
    if let Ok(value) =
        actix_web::http::header::HeaderValue::from_str(protocol.sec_websocket_protocol())
    {
        response
            .headers_mut()
            .insert(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    let opening = Opening {
        identity: state.identity.clone(),
        access: state.access.clone(),
        from_header,
        request_id,
        address,
    };
    let schema = state.schema.clone();
    let renders = state.subscriptions.clone();
    actix_web::rt::spawn(async move {
        let pong = session.clone();
        let input = messages
            .max_frame_size(MAX_FRAME_BYTES)
            .aggregate_continuations()
            .max_continuation_size(MAX_FRAME_BYTES)
            .take_while(|message| futures::future::ready(message.is_ok()))
            .filter_map(move |message| {
                let answer = match message {
                    Ok(actix_ws::AggregatedMessage::Text(text)) => Some(text.as_bytes().to_vec()),
                    Ok(actix_ws::AggregatedMessage::Binary(bytes)) => Some(bytes.to_vec()),
                    Ok(actix_ws::AggregatedMessage::Ping(bytes)) => {
                        let bytes = bytes.to_vec();
                        let mut pong = pong.clone();
                        actix_web::rt::spawn(async move {
                            let _ = pong.pong(&bytes).await;
                        });
                        None
                    }
                    _ => None,
                };
                futures::future::ready(answer)
            });
        match protocol {
            WebSocketProtocols::GraphQLWS => {
                let sending = session.clone();
                let send = move |outgoing: transport::Outgoing| {
                    let mut session = sending.clone();
                    async move {
                        match outgoing {
                            transport::Outgoing::Text(text) => {
                                session.text(text).await.map_err(|_| ())
                            }
                            transport::Outgoing::Close(code, reason) => {
                                close(session, code, reason).await;
                                Err(())
                            }
                        }
                    }
                };
                let init = move |payload: Value| async move {
                    opening.caller(payload).await.map_err(|error| error.message)
                };
                transport::serve(schema, renders, Box::pin(input), send, init).await;
                let _ = session.close(None).await;
            }
            WebSocketProtocols::SubscriptionsTransportWS => {
                legacy(schema, input, opening, session).await;
            }
        }
    });
    response
}

async fn close(session: actix_ws::Session, code: u16, reason: String) {
    let _ = session
        .close(Some(actix_ws::CloseReason {
            code: actix_ws::CloseCode::from(code),
            description: Some(reason),
        }))
        .await;
}

/// What a connection's `connection_init` is decided with.
#[derive(Clone)]
struct Opening {
    identity: Arc<crate::identity::Identity>,
    access: Arc<crate::access::chain::AccessChain>,
    /// The principal proved by the upgrade's `Authorization` header, if it had one.
    from_header: Option<Principal>,
    request_id: String,
    address: Option<String>,
}

impl Opening {
    /// The caller of the connection, or why `connection_init` is refused.
    async fn caller(self, payload: Value) -> async_graphql::Result<Arc<Caller>> {
        let principal = match self.from_header {
            Some(principal) => principal,
            None => principal_of(&payload, &self.identity).await?,
        };
        let caller = Caller::new(
            Some(principal),
            self.identity.directory(),
            self.request_id,
            self.address,
            self.access,
        );
        // An API client's connection counts as one call against its rate limit.
        if ApiCall::begin(&self.identity, &caller).is_some_and(|call| call.is_limited()) {
            return Err(api_error(
                "RATE_LIMITED",
                "too many requests; connect again later",
            ));
        }
        Ok(Arc::new(caller))
    }
}

/// The older graphql-ws (subscriptions-transport-ws) protocol, served by async-graphql's
/// engine: every delivery is resolved for its own connection.
async fn legacy(
    schema: crate::api::graphql::DocketSchema,
    input: impl futures::Stream<Item = Vec<u8>> + Unpin + 'static,
    opening: Opening,
    mut session: actix_ws::Session,
) {
    let init = move |payload: Value| async move {
        let mut data = Data::default();
        data.insert(opening.caller(payload).await?);
        Ok(data)
    };
    let mut outgoing = WebSocket::new(schema, input, WebSocketProtocols::SubscriptionsTransportWS)
        .on_connection_init(init)
        .keepalive_timeout(KEEPALIVE);
    while let Some(message) = outgoing.next().await {
        match message {
            WsMessage::Text(text) => {
                if session.text(text).await.is_err() {
                    return;
                }
            }
            WsMessage::Close(code, reason) => {
                close(session, code, reason).await;
                return;
            }
        }
    }
    let _ = session.close(None).await;
}

/// The principal the `connection_init` payload's `authorization` member proves.
async fn principal_of(
    payload: &Value,
    identity: &crate::identity::Identity,
) -> async_graphql::Result<Principal> {
    let token = payload
        .get("authorization")
        .or_else(|| payload.get("Authorization"))
        .and_then(Value::as_str)
        .and_then(bearer)
        .ok_or_else(|| api_error("UNAUTHENTICATED", "sign in to use this API"))?;
    authenticate_token(token, identity)
        .await
        .map_err(|_| api_error("UNAUTHENTICATED", "the session or key is not valid"))
}

/// The principal a bearer token proves, or the response refusing it.
async fn authenticate_token(
    token: &str,
    identity: &crate::identity::Identity,
) -> Result<Principal, HttpResponse> {
    let secret = zeroize::Zeroizing::new(token.to_owned());
    match identity.authenticate(&secret).await {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => Err(error_response(
            401,
            "UNAUTHENTICATED",
            "the session or key is not valid (it may have expired or been revoked)",
        )),
        Err(error) => {
            tracing::error!(error = %error, "authentication failed");
            Err(error_response(
                503,
                "UNAVAILABLE",
                "the service is briefly unavailable; try again",
            ))
        }
    }
}
