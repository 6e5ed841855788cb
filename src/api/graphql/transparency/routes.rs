//! The plain HTTP routes for checkpoints and proofs, for auditors' and witnesses' tools that do
//! not speak GraphQL:
//!
//! - `GET /checkpoint`: the latest signed checkpoint, as its note (`text/plain; charset=utf-8`);
//! - `GET /checkpoints/{size}`: the checkpoint of `size` events, likewise;
//! - `GET /proof/inclusion?position=P[&size=N]`: an inclusion proof, as JSON;
//! - `GET /proof/consistency?first=A&second=B`: a consistency proof, as JSON.
//!
//! They authenticate exactly as `/graphql` and document downloads do (a bearer credential, or
//! the session cookie with the CSRF header): 401 without a credential, 403 without the
//! `read_proofs` capability. The access record is made durable before anything is answered,
//! refusals included; when it cannot be, the answer is 503 and nothing else. Errors are JSON in
//! the GraphQL error shape, `{"errors":[{"message":..., "extensions":{"code":...}}]}`.

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::proofs::{self, ProofError};
use super::{CHECKPOINTS_FIELD, PROOFS_FIELD};
use crate::access::policy::{Capability, Decision};
use crate::api::graphql::caller::Caller;
use crate::api::graphql::http::{GraphqlState, authenticate, client_address};
use crate::api::graphql::mutation::RequestId;
use crate::transparency::Checkpointer;

/// The query of `GET /proof/inclusion`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    pub position: u64,
    pub size: Option<u64>,
}

/// The query of `GET /proof/consistency`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    pub first: u64,
    pub second: u64,
}

/// An error response in the GraphQL error shape.
fn error_response(status: u16, code: &str, message: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    }))
}

fn proof_error(error: &ProofError) -> HttpResponse {
    error_response(error.http_status(), error.code(), &error.to_string())
}

/// What an access is about, as its record names it.
struct Access {
    operation: &'static str,
    target: &'static str,
    target_id: Option<String>,
    field: &'static str,
}

/// Authenticates the request, decides `read_proofs` and makes the decision durable; `Err` is
/// the response to send instead of the answer.
async fn admit(
    request: &HttpRequest,
    state: &GraphqlState,
    access: Access,
) -> Result<(), HttpResponse> {
    let unauthenticated = || error_response(401, "UNAUTHENTICATED", "sign in to use this API");

    // Who is asking: a credential that proves nobody is refused by `authenticate` itself.
    let principal = match authenticate(request, &state.identity).await {
        Ok(Some(principal)) => principal,
        Ok(None) => return Err(unauthenticated()),
        Err(response) => return Err(response),
    };
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    let caller = Caller::new(
        Some(principal),
        state.identity.directory(),
        request_id,
        client_address(request),
        state.access.clone(),
    );
    if caller.signed().is_err() {
        return Err(unauthenticated());
    }

    // The decision, and what was read when it is allowed.
    let allowed = caller.require(Capability::ReadProofs).is_ok();
    if allowed {
        caller.note(
            None,
            access.target,
            access.target_id.as_deref(),
            Some(access.field),
            Decision::Allowed(Capability::ReadProofs.as_str()),
        );
    }
    // Fail closed: no answer, not even a refusal, without its durable record.
    if caller.flush(access.operation).await.is_err() {
        return Err(error_response(
            503,
            "ACCESS_RECORD_UNAVAILABLE",
            "the access could not be recorded, so nothing is returned; try again",
        ));
    }
    if !allowed {
        return Err(error_response(
            403,
            "FORBIDDEN",
            "you do not have access to this",
        ));
    }
    Ok(())
}

/// The request's query string as `Q`; `message` says what it must be.
fn query<Q: DeserializeOwned>(
    request: &HttpRequest,
    message: &'static str,
) -> Result<Q, ProofError> {
    web::Query::<Q>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .map_err(|_| ProofError::InvalidArgument(message))
}

fn note_text(note: Result<String, ProofError>) -> HttpResponse {
    match note {
        Ok(note) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(note),
        Err(error) => proof_error(&error),
    }
}

/// `GET /checkpoint`: the latest checkpoint's signed note.
pub async fn latest_checkpoint(
    request: HttpRequest,
    state: web::Data<GraphqlState>,
    checkpointer: web::Data<Checkpointer>,
) -> HttpResponse {
    let access = Access {
        operation: "GET /checkpoint",
        target: "checkpoint",
        target_id: None,
        field: CHECKPOINTS_FIELD,
    };
    if let Err(response) = admit(&request, &state, access).await {
        return response;
    }
    note_text(proofs::note(&checkpointer, None).await)
}

/// `GET /checkpoints/{size}`: the signed note of the checkpoint of `size` events.
pub async fn checkpoint_of_size(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<GraphqlState>,
    checkpointer: web::Data<Checkpointer>,
) -> HttpResponse {
    let size = path.into_inner();
    let canonical = !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit());
    let access = Access {
        operation: "GET /checkpoints/{size}",
        target: "checkpoint",
        target_id: canonical
            .then(|| size.clone())
            .filter(|size| size.len() <= 20),
        field: CHECKPOINTS_FIELD,
    };
    if let Err(response) = admit(&request, &state, access).await {
        return response;
    }
    let Some(size) = size.parse::<u64>().ok().filter(|_| canonical) else {
        return proof_error(&ProofError::InvalidArgument(
            "the tree size must be a decimal integer",
        ));
    };
    note_text(proofs::note(&checkpointer, Some(size)).await)
}

/// `GET /proof/inclusion?position=P[&size=N]`: the inclusion proof, as JSON.
pub async fn inclusion_proof(
    request: HttpRequest,
    state: web::Data<GraphqlState>,
    checkpointer: web::Data<Checkpointer>,
) -> HttpResponse {
    let asked = query::<InclusionQuery>(
        &request,
        "the query must be position=P and optionally size=N, as decimal integers",
    );
    let access = Access {
        operation: "GET /proof/inclusion",
        target: "inclusion_proof",
        target_id: asked.as_ref().ok().map(|asked| asked.position.to_string()),
        field: PROOFS_FIELD,
    };
    if let Err(response) = admit(&request, &state, access).await {
        return response;
    }
    let asked = match asked {
        Ok(asked) => asked,
        Err(error) => return proof_error(&error),
    };
    match proofs::inclusion(&checkpointer, asked.position, asked.size).await {
        Ok(proof) => HttpResponse::Ok().json(proof),
        Err(error) => proof_error(&error),
    }
}

/// `GET /proof/consistency?first=A&second=B`: the consistency proof, as JSON.
pub async fn consistency_proof(
    request: HttpRequest,
    state: web::Data<GraphqlState>,
    checkpointer: web::Data<Checkpointer>,
) -> HttpResponse {
    let asked = query::<ConsistencyQuery>(
        &request,
        "the query must be first=A&second=B, as decimal integers",
    );
    let access = Access {
        operation: "GET /proof/consistency",
        target: "consistency_proof",
        target_id: asked
            .as_ref()
            .ok()
            .map(|asked| format!("{}-{}", asked.first, asked.second)),
        field: PROOFS_FIELD,
    };
    if let Err(response) = admit(&request, &state, access).await {
        return response;
    }
    let asked = match asked {
        Ok(asked) => asked,
        Err(error) => return proof_error(&error),
    };
    match proofs::consistency(&checkpointer, asked.first, asked.second).await {
        Ok(proof) => HttpResponse::Ok().json(proof),
        Err(error) => proof_error(&error),
    }
}

/// Adds the routes to an app (the checkpointer must be in its data).
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/checkpoint", web::get().to(latest_checkpoint))
        .route("/checkpoints/{size}", web::get().to(checkpoint_of_size))
        .route("/proof/inclusion", web::get().to(inclusion_proof))
        .route("/proof/consistency", web::get().to(consistency_proof));
}
