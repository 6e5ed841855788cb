//! The calls of API clients: each request counted against the client's rate limit, its
//! mutations checked against the commands its scopes grant, and one entry in the request's
//! access record naming the operation and its root fields (never variables or values) with the
//! decision, whether or not the request touched a matter.

use std::collections::{BTreeSet, HashSet};

use actix_web::HttpResponse;
use actix_web::http::header::{HeaderName, HeaderValue};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use serde_json::json;

use crate::access::policy::Decision;
use crate::access::record::MAX_TEXT_CHARS;
use crate::api::graphql::caller::Caller;
use crate::api::graphql::guard::FIELDS;
use crate::identity::Identity;
use crate::identity::rate_limit::{Remaining, RetryAfter};
use crate::identity::scopes::{ClientScopes, RateLimit};

/// What an access record calls a root field it cannot name (one the schema does not have).
const UNKNOWN_FIELD: &str = "(unknown)";
/// How deep fragments are followed when finding a request's root fields.
const MAX_FRAGMENT_DEPTH: usize = 16;

/// The shape of one GraphQL request, as an access record names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallShape {
    /// The operation name the request gave, if any.
    pub name: Option<String>,
    /// `query`, `mutation`, `subscription`, or `unknown` when the document did not parse.
    pub kind: &'static str,
    /// The root fields selected (schema names, never aliases or arguments).
    pub fields: BTreeSet<&'static str>,
    /// The root fields of mutations, which the client's commands must grant.
    pub mutations: BTreeSet<&'static str>,
}

/// The static name of a root field of `root`, as the guard's table spells it.
fn field_name(root: &str, name: &str) -> &'static str {
    if name == "__typename" {
        return "__typename";
    }
    FIELDS
        .iter()
        .find(|(t, f, _)| *t == root && *f == name)
        .map_or(UNKNOWN_FIELD, |(_, f, _)| *f)
}

fn collect(
    document: &ExecutableDocument,
    set: &SelectionSet,
    root: &str,
    depth: usize,
    seen: &mut HashSet<String>,
    fields: &mut BTreeSet<&'static str>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                fields.insert(field_name(root, field.node.name.node.as_str()));
            }
            Selection::InlineFragment(fragment) => {
                if depth < MAX_FRAGMENT_DEPTH {
                    let inner = &fragment.node.selection_set.node;
                    collect(document, inner, root, depth + 1, seen, fields);
                }
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if depth < MAX_FRAGMENT_DEPTH
                    && seen.insert(name.to_owned())
                    && let Some(fragment) = document.fragments.get(name)
                {
                    let inner = &fragment.node.selection_set.node;
                    collect(document, inner, root, depth + 1, seen, fields);
                }
            }
        }
    }
}

/// The shape of the operation a request runs: the one named, the only one, or (when the
/// request does not say which of several) all of them, so that nothing runs unchecked.
pub fn call_shape(document: Option<&ExecutableDocument>, name: Option<&str>) -> CallShape {
    let mut shape = CallShape {
        name: name.map(str::to_owned),
        kind: "unknown",
        ..CallShape::default()
    };
    let Some(document) = document else {
        return shape;
    };
    let operations: Vec<_> = match &document.operations {
        DocumentOperations::Single(operation) => vec![&operation.node],
        DocumentOperations::Multiple(operations) => match name {
            Some(name) => operations
                .iter()
                .filter(|(op, _)| op.as_str() == name)
                .map(|(_, operation)| &operation.node)
                .collect(),
            None => operations
                .values()
                .map(|operation| &operation.node)
                .collect(),
        },
    };
    for operation in operations {
        let (kind, root) = match operation.ty {
            OperationType::Query => ("query", "Query"),
            OperationType::Mutation => ("mutation", "Mutation"),
            OperationType::Subscription => ("subscription", "Subscription"),
        };
        // A mutation among several makes the request a mutation.
        if shape.kind == "unknown" || kind == "mutation" {
            shape.kind = kind;
        }
        let mut fields = BTreeSet::new();
        let mut seen = HashSet::new();
        let set = &operation.selection_set.node;
        collect(document, set, root, 0, &mut seen, &mut fields);
        if operation.ty == OperationType::Mutation {
            shape.mutations.extend(fields.iter().copied());
        }
        shape.fields.extend(fields);
    }
    shape
}

impl CallShape {
    /// The record's operation: `graphql <name> <kind> <fields>`, at most 200 characters.
    pub fn operation(&self) -> String {
        let fields: Vec<&str> = self.fields.iter().copied().collect();
        let text = format!(
            "graphql {} {} {}",
            self.name.as_deref().unwrap_or("(unnamed)"),
            self.kind,
            fields.join(",")
        );
        let text: String = text
            .trim_end()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        text.chars().take(MAX_TEXT_CHARS).collect()
    }

    /// The first mutation field the scopes do not grant (`__typename` needs no grant).
    pub fn ungranted(&self, scopes: &ClientScopes) -> Option<&'static str> {
        self.mutations
            .iter()
            .copied()
            .find(|field| *field != "__typename" && !scopes.allows_command(field))
    }
}

/// One request of an API client: counted against its limit as it arrived.
#[derive(Debug, Clone)]
pub struct ApiCall {
    pub client_id: String,
    pub scopes: ClientScopes,
    pub counted: Result<Remaining, RetryAfter>,
}

impl ApiCall {
    /// For a caller that is an API client (after authentication): counts the request against
    /// the client's rate limit. `None` for every other caller.
    pub fn begin(identity: &Identity, caller: &Caller) -> Option<ApiCall> {
        let client_id = caller.principal.as_ref()?.client_id()?.to_owned();
        let scopes = caller
            .directory
            .api_clients
            .get(&client_id)
            .map(|client| client.scopes.clone())
            // Authentication found the client; should it be gone, the strictest scopes apply.
            .unwrap_or_else(|| ClientScopes {
                commands: BTreeSet::new(),
                rate_limit: RateLimit {
                    requests: 1,
                    per_seconds: RateLimit::MAX_WINDOW_SECS,
                },
                ..ClientScopes::default()
            });
        let counted = identity.rate_limits().check(&client_id, scopes.rate_limit);
        Some(ApiCall {
            client_id,
            scopes,
            counted,
        })
    }

    /// Whether the request is over the client's limit.
    pub fn is_limited(&self) -> bool {
        self.counted.is_err()
    }

    /// Notes the call in the caller's ledger: `fields` are the root fields (or what was
    /// fetched), and `decision` whether the call was served.
    pub fn note(&self, caller: &Caller, fields: &BTreeSet<&'static str>, decision: Decision) {
        if fields.is_empty() {
            caller.note(None, "api_call", None, None, decision);
        }
        for field in fields {
            caller.note(None, "api_call", None, Some(field), decision);
        }
    }

    /// The answer to a request over the limit: 429, `Retry-After`, a GraphQL-shaped error.
    pub fn too_many_requests(&self) -> HttpResponse {
        let wait = self.counted.err().map_or(1, |retry| retry.retry_after_secs);
        let mut response = HttpResponse::TooManyRequests().json(json!({
            "errors": [{
                "message": format!("too many requests; retry after {wait} s"),
                "extensions": { "code": "RATE_LIMITED", "retryAfter": wait }
            }]
        }));
        self.decorate(&mut response);
        response
    }

    /// Adds the rate-limit headers (and `Retry-After` when over the limit) to a response.
    pub fn decorate(&self, response: &mut HttpResponse) {
        let (limit, remaining, reset, retry) = match self.counted {
            Ok(left) => (left.limit, left.remaining, left.reset_secs, None),
            Err(wait) => (wait.limit, 0, wait.reset_secs, Some(wait.retry_after_secs)),
        };
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        set("ratelimit-limit", limit.requests.to_string());
        set("ratelimit-remaining", remaining.to_string());
        set("ratelimit-reset", reset.to_string());
        set("ratelimit-policy", limit.policy_header());
        if let Some(retry) = retry {
            set("retry-after", retry.to_string());
        }
    }
}

/// Records an API client's refused call with `reason`; `Some` response when the record could
/// not be written (then nothing else may be answered).
pub async fn refuse(
    caller: &Caller,
    call: &ApiCall,
    shape: &CallShape,
    reason: &'static str,
) -> Option<HttpResponse> {
    call.note(caller, &shape.fields, Decision::Denied(reason));
    match caller.flush(&shape.operation()).await {
        Ok(()) => None,
        Err(_) => Some(record_unavailable()),
    }
}

/// Starts a request other than GraphQL (a document download) of `caller`: for an API client,
/// counts it against the client's rate limit and notes the call (target `api_call`, field
/// `fetched`) in the caller's ledger. `Err` is the answer when it is over the limit (429, after
/// the refusal is recorded).
pub async fn begin_call(
    identity: &Identity,
    caller: &Caller,
    operation: &str,
    fetched: &'static str,
) -> Result<Option<ApiCall>, HttpResponse> {
    let Some(call) = ApiCall::begin(identity, caller) else {
        return Ok(None);
    };
    let fields = std::collections::BTreeSet::from([fetched]);
    if call.is_limited() {
        call.note(caller, &fields, Decision::Denied("rate_limited"));
        let mut response = match caller.flush(operation).await {
            Ok(()) => call.too_many_requests(),
            Err(_) => record_unavailable(),
        };
        call.decorate(&mut response);
        return Err(response);
    }
    call.note(caller, &fields, Decision::Allowed("client_scope"));
    Ok(Some(call))
}

/// Finishes what [`begin_call`] started: whatever the ledger still holds is recorded (so a
/// call that ended before its own record still leaves one; 503 instead of `response` when
/// that fails), and an API client's response gets its rate-limit headers.
pub async fn finish_call(
    caller: &Caller,
    call: Option<&ApiCall>,
    operation: &str,
    response: HttpResponse,
) -> HttpResponse {
    let mut response = match caller.flush(operation).await {
        Ok(()) => response,
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    };
    if let Some(call) = call {
        call.decorate(&mut response);
    }
    response
}

/// The answer when the access record of a request cannot be written.
pub(crate) fn record_unavailable() -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(serde_json::json!({
        "errors": [{
            "message": "the access could not be recorded, so nothing is returned; try again",
            "extensions": { "code": "ACCESS_RECORD_UNAVAILABLE" },
        }]
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(query: &str, name: Option<&str>) -> CallShape {
        let document = async_graphql::parser::parse_query(query).unwrap();
        call_shape(Some(&document), name)
    }

    #[test]
    fn root_fields_are_named_through_aliases_and_fragments() {
        let found = shape(
            "mutation Bill { a: recordTime(number: \"M\") { __typename } ...More } \
             fragment More on Mutation { ... on Mutation { addNote(number: \"M\", body: \"x\") { __typename } } }",
            None,
        );
        assert_eq!(found.kind, "mutation");
        assert_eq!(
            found.mutations.iter().copied().collect::<Vec<_>>(),
            vec!["addNote", "recordTime"]
        );
        assert_eq!(
            found.operation(),
            "graphql (unnamed) mutation addNote,recordTime"
        );
        let scopes = ClientScopes::default();
        assert_eq!(found.ungranted(&scopes), Some("addNote"));
    }

    #[test]
    fn the_named_operation_is_the_one_checked_and_unnamed_ones_are_all_checked() {
        let query = "query Read { matters(first: 1) { nodes { number } } } \
                     mutation Write { addTeamMember(number: \"M\") { __typename } }";
        let read = shape(query, Some("Read"));
        assert_eq!(read.kind, "query");
        assert!(read.mutations.is_empty());
        assert_eq!(read.operation(), "graphql Read query matters");
        let all = shape(query, None);
        assert_eq!(all.kind, "mutation");
        assert_eq!(
            all.ungranted(&ClientScopes::default()),
            Some("addTeamMember")
        );
    }

    #[test]
    fn unknown_fields_and_unparsed_documents_are_named_without_their_text() {
        let unknown = shape("{ secretThing(value: \"hunter2\") }", None);
        assert_eq!(unknown.operation(), "graphql (unnamed) query (unknown)");
        assert_eq!(
            call_shape(None, Some("Op")).operation(),
            "graphql Op unknown"
        );
        let looping = shape(
            "query { ...A } fragment A on Query { ...A me { userId } }",
            None,
        );
        assert_eq!(
            looping.fields.iter().copied().collect::<Vec<_>>(),
            vec!["me"]
        );
    }
}
