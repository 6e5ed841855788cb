//! `GET /graphql` upgraded to a WebSocket: GraphQL subscriptions over the graphql-transport-ws
//! protocol (and the older graphql-ws one, for clients that still speak it).
//!
//! The credential is a bearer token, sent either in the upgrade's `Authorization` header or in
//! the `connection_init` payload as `{"authorization": "Bearer <token>"}` (browsers cannot set
//! headers on a WebSocket). Cookies are ignored here: a page on another site could otherwise
//! open a socket that rides on a signed-in user's cookie.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::Data;
use async_graphql::http::{WebSocket, WebSocketProtocols, WsMessage};
use futures::StreamExt;
use serde_json::Value;

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
    let (mut response, mut session, messages) = match actix_ws::handle(&request, body) {
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
    let schema = state.schema.clone();
    let identity = state.identity.clone();
    let access = state.access.clone();
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
        let init = move |payload: Value| {
            let identity = identity.clone();
            let access = access.clone();
            let from_header = from_header.clone();
            let request_id = request_id.clone();
            let address = address.clone();
            async move {
                let principal = match from_header {
                    Some(principal) => principal,
                    None => principal_of(&payload, &identity).await?,
                };
                let caller = Caller::new(
                    Some(principal),
                    identity.directory(),
                    request_id,
                    address,
                    access,
                );
                // An API client's connection counts as one call against its rate limit.
                if ApiCall::begin(&identity, &caller).is_some_and(|call| call.is_limited()) {
                    return Err(api_error(
                        "RATE_LIMITED",
                        "too many requests; connect again later",
                    ));
                }
                let mut data = Data::default();
                data.insert(Arc::new(caller));
                Ok(data)
            }
        };
        let mut outgoing = WebSocket::new(schema, input, protocol)
            .on_connection_init(init)
            .keepalive_timeout(KEEPALIVE);
        let mut acknowledged = false;
        while let Some(message) = outgoing.next().await {
            match message {
                WsMessage::Text(text) => {
                    acknowledged |= text.contains(r#""type":"connection_ack""#);
                    if session.text(text).await.is_err() {
                        return;
                    }
                }
                WsMessage::Close(code, reason) => {
                    // graphql-transport-ws closes a connection whose initialisation was refused
                    // with 4403 Forbidden, and one that asks for anything before it was
                    // acknowledged with 4401 Unauthorized (the library says 1002 and 1011).
                    let (code, reason) = match (acknowledged, code) {
                        (false, 1002) => (4403, reason),
                        (false, 1011) => (4401, "Unauthorized".to_owned()),
                        _ => (code, reason),
                    };
                    let _ = session
                        .close(Some(actix_ws::CloseReason {
                            code: actix_ws::CloseCode::from(code),
                            description: Some(reason),
                        }))
                        .await;
                    return;
                }
            }
        }
        let _ = session.close(None).await;
    });
    response
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
