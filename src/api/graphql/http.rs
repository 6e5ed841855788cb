//! `POST /graphql`: JSON bodies only (so a cross-site form cannot post one), persisted-query
//! resolution, the caller's identity and request id attached, errors without internals.
//!
//! Limitation: until authentication lands, the API answers loopback clients only and takes the
//! acting user from the `x-docket-user` header (default `local`).

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use async_graphql::parser::types::ExecutableDocument;
use serde::Deserialize;
use serde_json::{Value, json};

use super::mutation::{Principal, RequestId};
use super::persisted::{PersistedQueries, resolve};
use super::{DocketSchema, with_loaders};
use crate::log::Actor;
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
    // Check the caller.
    let loopback = request
        .peer_addr()
        .is_some_and(|peer| peer.ip().is_loopback());
    if !loopback {
        return error_response(403, "FORBIDDEN", "the API accepts local clients only");
    }
    let is_json = request
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return error_response(415, "UNSUPPORTED_MEDIA_TYPE", "send application/json");
    }
    let user = match request.headers().get("x-docket-user") {
        None => "local",
        Some(value) => value.to_str().unwrap_or(""),
    };
    let Ok(actor) = Actor::parse(&format!("user:{user}")) else {
        return error_response(
            400,
            "INVALID_REQUEST",
            "x-docket-user is not a valid user id",
        );
    };

    // Parse the body and resolve a persisted query.
    let Ok(body) = serde_json::from_slice::<GraphqlBody>(&body) else {
        return error_response(400, "INVALID_REQUEST", "the body is not a GraphQL request");
    };
    let hash = body
        .extensions
        .as_ref()
        .and_then(|extensions| extensions.pointer("/persistedQuery/sha256Hash"))
        .and_then(Value::as_str);
    let query = match resolve(&state.persisted, &body.query, hash) {
        Ok(query) => query,
        Err((code, message)) => return error_response(200, code, message),
    };

    // Run it.
    let parsed = state.documents.parse(&query);
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
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId(uuid::Uuid::now_v7().to_string()));
    let graphql = with_loaders(graphql, &state.db)
        .data(Principal(actor))
        .data(request_id);
    let mut response = state.schema.execute(graphql).await;
    // Parse and validation errors (too deep, too costly, unknown fields) get a code too.
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "INVALID_QUERY");
        }
    }
    HttpResponse::Ok().json(response)
}

fn error_response(status: u16, code: &str, message: &str) -> HttpResponse {
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
