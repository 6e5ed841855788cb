//! `POST /graphql`: JSON bodies only (so a cross-site form cannot post one), persisted-query
//! resolution, the caller authenticated and its request id attached, errors without internals,
//! and the request's access record written before the response leaves.
//!
//! Credentials: `Authorization: Bearer <session token or API key>` for applications, or the
//! `docket_session` cookie (HttpOnly, Secure, SameSite=Strict) for browsers, which must then also
//! send the `x-docket-csrf` header (a cross-site page cannot add one without a CORS preflight,
//! which Docket never grants). A credential that does not prove a principal is answered with
//! 401, whatever the query; no credential at all makes an anonymous caller, who may only sign in.
//!
//! A request of an API client is counted against the client's rate limit first (429
//! `RATE_LIMITED` with `Retry-After` when over it), then refused with 403 `FORBIDDEN` if it
//! names a mutation the client's scopes do not grant; every one of its responses carries the
//! `RateLimit-*` headers, and every one of its requests, refused or served, leaves an access
//! record naming the operation and its root fields (see [`super::account::calls`]).

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use async_graphql::parser::types::ExecutableDocument;
use serde::Deserialize;
use serde_json::{Value, json};

use std::sync::Arc;

use super::account::calls::{ApiCall, CallShape, call_shape, record_unavailable, refuse};
pub use super::account::calls::{begin_call, finish_call};
use super::caller::{Caller, CookieChange};
use super::mutation::RequestId;
use super::persisted::{PersistedQueries, resolve};
use super::{DocketSchema, with_loaders};
use crate::access::chain::AccessChain;
use crate::access::policy::Decision;
use crate::identity::Identity;
use crate::identity::principal::Principal;
use crate::projection::ReadDb;

/// A GraphQL-over-HTTP request body.
#[derive(Debug, Deserialize)]
pub struct GraphqlBody {
    #[serde(default)]
    pub query: String,
    #[serde(default, rename = "operationName")]
    pub operation_name: Option<String>,
    #[serde(default)]
    pub variables: Option<Value>,
    #[serde(default)]
    pub extensions: Option<Value>,
}

/// Everything the handler needs, shared by the server's workers.
pub struct GraphqlState {
    pub schema: DocketSchema,
    pub db: ReadDb,
    pub persisted: PersistedQueries,
    pub documents: DocumentCache,
    /// Renderings of subscription deliveries, shared by every connection.
    pub subscriptions: Arc<crate::api::graphql::subscription::shared::Renders>,
    pub identity: Arc<Identity>,
    pub access: Arc<AccessChain>,
    /// Whether anonymous callers may introspect the schema.
    pub public_introspection: bool,
    /// Benchmarks only (never set from configuration): serve every request as this principal
    /// without authenticating it and without writing access records, so that `docket bench`
    /// can measure what authentication and access records cost. The policy still decides.
    pub unrecorded_principal_for_benchmarks: Option<Principal>,
}

/// Most aliased fields one request may have: aliases are how one request would multiply work
/// (or guesses) beyond what its cost shows.
pub const MAX_ALIASES: usize = 50;

/// How many aliased fields a document has, in its operations and fragments.
fn aliases(document: &ExecutableDocument) -> usize {
    use async_graphql::parser::types::{DocumentOperations, Selection, SelectionSet};
    fn count(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => {
                    usize::from(field.node.alias.is_some()) + count(&field.node.selection_set.node)
                }
                Selection::InlineFragment(fragment) => count(&fragment.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let operations: usize = match &document.operations {
        DocumentOperations::Single(operation) => count(&operation.node.selection_set.node),
        DocumentOperations::Multiple(operations) => operations
            .values()
            .map(|operation| count(&operation.node.selection_set.node))
            .sum(),
    };
    let fragments: usize = document
        .fragments
        .values()
        .map(|fragment| count(&fragment.node.selection_set.node))
        .sum();
    operations + fragments
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "docket_session";
/// The header a browser using the cookie must send with every request.
pub const CSRF_HEADER: &str = "x-docket-csrf";

/// Who a request's credential proves: `Ok(None)` when it carries none, `Err` with the response
/// to send when it carries one that proves nobody (or a cookie without the CSRF header).
pub async fn authenticate(
    request: &HttpRequest,
    identity: &Identity,
) -> Result<Option<Principal>, HttpResponse> {
    let refused = || {
        error_response(
            401,
            "UNAUTHENTICATED",
            "the session or key is not valid (it may have expired or been revoked)",
        )
    };
    // An Authorization header must be a bearer credential; anything else proves nobody.
    let bearer = match request.headers().get("authorization") {
        None => None,
        Some(value) => match value
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
        {
            Some(token) => Some(token.to_owned()),
            None => return Err(refused()),
        },
    };
    let secret = match bearer {
        Some(token) => Some(token),
        None => match session_cookie(request) {
            Some(cookie) => {
                if request.headers().get(CSRF_HEADER).is_none() {
                    return Err(error_response(
                        403,
                        "CSRF_HEADER_REQUIRED",
                        "requests authenticated by cookie must send the x-docket-csrf header",
                    ));
                }
                Some(cookie)
            }
            None => None,
        },
    };
    let Some(secret) = secret else {
        return Ok(None);
    };
    let secret = zeroize::Zeroizing::new(secret);
    match identity.authenticate(&secret).await {
        Ok(Some(principal)) => Ok(Some(principal)),
        Ok(None) => Err(refused()),
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

/// The value of the session cookie, if the request carries one.
fn session_cookie(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get_all("cookie")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
}

/// The client's address as the server saw it.
pub fn client_address(request: &HttpRequest) -> Option<String> {
    request.peer_addr().map(|peer| peer.ip().to_string())
}

/// Parsed query documents by their text, so that a front end sending the same few queries
/// does not pay for parsing each time. Bounded: when full, it starts over.
#[derive(Default)]
pub struct DocumentCache {
    parsed: std::sync::Mutex<std::collections::HashMap<String, ExecutableDocument>>,
}

/// Documents kept by [`DocumentCache`].
const DOCUMENT_CACHE_LIMIT: usize = 512;

impl DocumentCache {
    /// The parsed document, or `None` when the text does not parse (the schema then reports
    /// the syntax error as usual).
    fn parse(&self, query: &str) -> Option<ExecutableDocument> {
        if let Ok(parsed) = self.parsed.lock()
            && let Some(document) = parsed.get(query)
        {
            return Some(document.clone());
        }
        let document = async_graphql::parser::parse_query(query).ok()?;
        if let Ok(mut parsed) = self.parsed.lock() {
            if parsed.len() >= DOCUMENT_CACHE_LIMIT {
                parsed.clear();
            }
            parsed.insert(query.to_owned(), document.clone());
        }
        Some(document)
    }
}

pub async fn graphql(
    state: web::Data<GraphqlState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let benchmark = state.unrecorded_principal_for_benchmarks.is_some();
    let principal = match &state.unrecorded_principal_for_benchmarks {
        Some(principal) => Some(principal.clone()),
        None => match authenticate(&request, &state.identity).await {
            Ok(principal) => principal,
            Err(response) => return response,
        },
    };
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId(uuid::Uuid::now_v7().to_string()));
    let caller = Arc::new(Caller::new(
        principal,
        state.identity.directory(),
        request_id.0.clone(),
        client_address(&request),
        state.access.clone(),
    ));
    // An API client's request is counted, checked against its scopes and always recorded.
    let call = match benchmark {
        true => None,
        false => ApiCall::begin(&state.identity, &caller),
    };
    let Some(call) = call else {
        return execute(&state, &request, &body, caller, request_id, None).await;
    };
    let mut response = if call.is_limited() {
        let shape = shape_of(&state, &body);
        refuse(&caller, &call, &shape, "rate_limited")
            .await
            .unwrap_or_else(|| call.too_many_requests())
    } else {
        execute(&state, &request, &body, caller, request_id, Some(&call)).await
    };
    call.decorate(&mut response);
    response
}

/// The shape of the operation a raw body asks for (for the record of a refused call).
fn shape_of(state: &GraphqlState, body: &[u8]) -> CallShape {
    let Ok(body) = serde_json::from_slice::<GraphqlBody>(body) else {
        return call_shape(None, None);
    };
    let document = state.documents.parse(&body.query);
    call_shape(document.as_ref(), body.operation_name.as_deref())
}

/// Parses, checks and runs one GraphQL request for `caller`; `call` is set for API clients.
async fn execute(
    state: &GraphqlState,
    request: &HttpRequest,
    body: &[u8],
    caller: Arc<Caller>,
    request_id: RequestId,
    call: Option<&ApiCall>,
) -> HttpResponse {
    // Refuses the request; an API client's refusal is recorded first.
    let refused = async |shape: &CallShape, status: u16, code: &str, message: &str| {
        if let Some(call) = call
            && let Some(unavailable) = refuse(&caller, call, shape, "invalid_request").await
        {
            return unavailable;
        }
        error_response(status, code, message)
    };
    let unparsed = call_shape(None, None);
    // Mutations come only as JSON POSTs (this route), so a cross-site form cannot send one.
    let is_json = request
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return refused(
            &unparsed,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "send application/json",
        )
        .await;
    }

    // Parse the body and resolve a persisted query.
    let Ok(body) = serde_json::from_slice::<GraphqlBody>(body) else {
        let message = "the body is not a GraphQL request";
        return refused(&unparsed, 400, "INVALID_REQUEST", message).await;
    };
    let hash = body
        .extensions
        .as_ref()
        .and_then(|extensions| extensions.pointer("/persistedQuery/sha256Hash"))
        .and_then(Value::as_str);
    let query = match resolve(&state.persisted, &body.query, hash) {
        Ok(query) => query,
        Err((code, message)) => return refused(&unparsed, 200, code, message).await,
    };

    // Check it.
    let parsed = state.documents.parse(&query);
    let shape = call_shape(parsed.as_ref(), body.operation_name.as_deref());
    if let Some(document) = &parsed
        && aliases(document) > MAX_ALIASES
    {
        let message = format!("a request may use at most {MAX_ALIASES} aliases");
        return refused(&shape, 200, "INVALID_QUERY", &message).await;
    }
    if let Some(call) = call
        && let Some(field) = shape.ungranted(&call.scopes)
    {
        if let Some(unavailable) = refuse(&caller, call, &shape, "command_not_granted").await {
            return unavailable;
        }
        return error_response(
            403,
            "FORBIDDEN",
            &format!("this API client may not call {field}"),
        );
    }

    // Run it.
    let mut graphql = async_graphql::Request::new(query);
    if let Some(document) = parsed {
        graphql.set_parsed_query(document);
    }
    if let Some(name) = body.operation_name {
        graphql = graphql.operation_name(name);
    }
    if let Some(variables) = body.variables.filter(|value| !value.is_null()) {
        graphql = graphql.variables(async_graphql::Variables::from_json(variables));
    }
    if caller.principal.is_none() && !state.public_introspection {
        graphql = graphql.disable_introspection();
    }
    let operation = match call {
        Some(_) => shape.operation(),
        None => format!(
            "graphql {}",
            graphql.operation_name.as_deref().unwrap_or("(unnamed)")
        ),
    };
    let graphql = with_loaders(graphql, &state.db)
        .data(caller.clone())
        .data(request_id);
    let mut response = state.schema.execute(graphql).await;
    if let Some(call) = call {
        call.note(&caller, &shape.fields, Decision::Allowed("client_scope"));
    }
    // Fail closed: nothing leaves unless its access record is durable.
    if state.unrecorded_principal_for_benchmarks.is_none()
        && caller.flush(&operation).await.is_err()
    {
        return record_unavailable();
    }
    // Parse and validation errors (too deep, too costly, unknown fields) get a code too.
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "INVALID_QUERY");
        }
    }
    let mut reply = HttpResponse::Ok();
    match caller.take_cookie() {
        Some(CookieChange::Set { token, max_age }) => {
            reply.insert_header((
                "set-cookie",
                format!(
                    "{SESSION_COOKIE}={}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict",
                    token.as_str()
                ),
            ));
        }
        Some(CookieChange::Clear) => {
            reply.insert_header((
                "set-cookie",
                format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"),
            ));
        }
        None => {}
    }
    reply.json(response)
}

pub fn error_response(status: u16, code: &str, message: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(status).json(json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    }))
}

/// GraphiQL, served in development mode only.
pub async fn graphiql() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(
            async_graphql::http::GraphiQLSource::build()
                .endpoint("/graphql")
                .finish(),
        )
}
