//! Shared subscriptions: each event rendered once per (document, admission), its bytes fanned
//! out to every subscriber of that document.
//!
//! A thousand subscribers to one event are a thousand decisions but, for the few documents
//! clients send, only a handful of distinct answers. [`start`] runs the subscription's request
//! through async-graphql as usual (parsing, validation, guards, arguments, the start's access
//! record); the resolver then hands its [`Flow`] over instead of a stream. From there each
//! delivery is decided for its own subscriber by the flow, and its JSON is looked up in
//! [`Renders`] by (position, document, whether the payload is included): the first subscriber
//! to need it renders it through async-graphql, with the event already decided, and every
//! other one receives the same `Arc<str>`.
//!
//! Invariant: a rendering depends on nothing but the event, the admission and the document.
//! The `LogEvent` fields take no arguments and are guarded only by being signed in, which
//! every subscriber is, so the caller's identity cannot change the bytes; the `events`
//! arguments (`from`, `matters`, `types`) act only on the flow, so the variables they use are
//! left out of the document's key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use async_graphql::{Request, Response, ServerError, Value as ConstValue, Variables};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::OnceCell;

use super::event::LogEvent;
use super::flow::{Delivery, Flow};
use crate::api::graphql::DocketSchema;
use crate::api::graphql::caller::Caller;
use crate::log::Event;

/// Where the resolver leaves the flow of a subscription started by [`start`].
#[derive(Default)]
pub struct FlowSlot(Mutex<Option<Flow>>);

impl FlowSlot {
    pub(super) fn put(&self, flow: Flow) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(flow);
        }
    }

    fn take(&self) -> Option<Flow> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// The one item the resolver yields when a delivery is being rendered.
pub struct Rendering(Mutex<Option<async_graphql::Result<LogEvent>>>);

impl Rendering {
    pub(super) fn take(&self) -> Option<async_graphql::Result<LogEvent>> {
        self.0.lock().ok().and_then(|mut item| item.take())
    }
}

/// One message's worth of a shared subscription: the JSON of a GraphQL response.
#[derive(Clone)]
pub struct Frame {
    /// The event delivered; `None` for the error that ends the subscription.
    pub event: Option<Arc<Event>>,
    /// The response, serialised once and shared by every subscriber that receives it.
    pub json: Arc<str>,
}

/// A subscription started by [`start`].
pub enum Started {
    /// Rendered once per (document, admission): the JSON of each response.
    Shared(BoxStream<'static, Frame>),
    /// Any other operation, resolved for this caller alone.
    General(BoxStream<'static, Response>),
}

/// The request's document as shared subscriptions render it, and the key renderings of it
/// are found by.
#[derive(Clone)]
struct Document {
    query: Arc<str>,
    operation_name: Option<String>,
    variables: Variables,
    key: [u8; 32],
}

impl Document {
    /// The document of `request` if its operation is a subscription whose only root field is
    /// `events`, without directives; `None` (served the general way) otherwise.
    fn of(request: &Request) -> Option<Document> {
        let document = async_graphql::parser::parse_query(&request.query).ok()?;
        let operation = match (&document.operations, request.operation_name.as_deref()) {
            (DocumentOperations::Single(operation), _) => operation,
            (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name)?,
            (DocumentOperations::Multiple(_), None) => return None,
        };
        if operation.node.ty != OperationType::Subscription {
            return None;
        }
        let [item] = operation.node.selection_set.node.items.as_slice() else {
            return None;
        };
        let Selection::Field(field) = &item.node else {
            return None;
        };
        if field.node.name.node != "events" || !field.node.directives.is_empty() {
            return None;
        }
        // The variables the flow consumes do not change a rendering.
        let mut used_by_arguments = Vec::new();
        for (_, value) in &field.node.arguments {
            variables_in(&value.node, &mut used_by_arguments);
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(request.query.as_bytes());
        hasher.update(&[0]);
        hasher.update(request.operation_name.as_deref().unwrap_or("").as_bytes());
        let mut kept: Vec<(String, ConstValue)> = request
            .variables
            .iter()
            .filter(|(name, _)| !used_by_arguments.iter().any(|used| used == name.as_str()))
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in &kept {
            hasher.update(&[0]);
            hasher.update(name.as_bytes());
            hasher.update(&[0]);
            hasher.update(value.to_string().as_bytes());
        }
        Some(Document {
            query: Arc::from(request.query.as_str()),
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
            key: *hasher.finalize().as_bytes(),
        })
    }
}

/// The names of the variables `value` refers to, at any depth.
fn variables_in(value: &async_graphql_value::Value, names: &mut Vec<String>) {
    match value {
        async_graphql_value::Value::Variable(name) => names.push(name.to_string()),
        async_graphql_value::Value::List(items) => {
            items.iter().for_each(|item| variables_in(item, names))
        }
        async_graphql_value::Value::Object(members) => members
            .values()
            .for_each(|member| variables_in(member, names)),
        _ => {}
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct RenderKey {
    position: u64,
    document: [u8; 32],
    with_payload: bool,
}

/// Renderings of recent deliveries, shared by every subscription of the process.
#[derive(Default)]
pub struct Renders {
    cells: Mutex<HashMap<RenderKey, Cell, foldhash::fast::RandomState>>,
}

/// One rendering, filled by the first subscriber that needs it.
type Cell = Arc<OnceCell<Arc<str>>>;

/// Most renderings kept; beyond it, those of the oldest positions are dropped. A few seconds of
/// the log at a thousand events a second, which is all that subscribers keeping up need: a
/// laggard renders for itself. Kept small so that the cache is full, and the process's memory
/// at its level, within the first minutes of steady load.
const RENDERS_KEPT: usize = 4096;

impl Renders {
    /// The cell of one rendering, made empty on first use.
    fn cell(&self, key: RenderKey) -> Cell {
        let Ok(mut cells) = self.cells.lock() else {
            return Arc::new(OnceCell::new());
        };
        if cells.len() >= RENDERS_KEPT && !cells.contains_key(&key) {
            // Keep the newer half: subscribers deliver in position order, so only a laggard
            // can still want an older one, and it renders that one again.
            let mut positions: Vec<u64> = cells.keys().map(|key| key.position).collect();
            positions.sort_unstable();
            let median = positions[positions.len() / 2];
            cells.retain(|kept, _| kept.position >= median);
        }
        cells.entry(key).or_default().clone()
    }
}

/// Starts the subscription `request` asks for, as `caller`.
pub async fn start(
    schema: &DocketSchema,
    renders: &Arc<Renders>,
    caller: Arc<Caller>,
    request: Request,
) -> Started {
    let Some(document) = Document::of(&request) else {
        return Started::General(schema.execute_stream(request.data(caller)).boxed());
    };

    // The usual execution, up to the resolver handing over its flow: an error on the way
    // (validation, a guard, an argument, the start's access record) is the whole answer.
    let slot = Arc::new(FlowSlot::default());
    let mut responses = schema.execute_stream(request.data(caller.clone()).data(slot.clone()));
    let first = responses.next().await;
    drop(responses);
    let flow = match (first, slot.take()) {
        (Some(response), _) => return Started::General(futures::stream::iter([response]).boxed()),
        (None, Some(flow)) => flow,
        (None, None) => {
            let error = ServerError::new("the subscription could not start", None);
            let response = Response::from_errors(vec![error]);
            return Started::General(futures::stream::iter([response]).boxed());
        }
    };

    let driver = Driver {
        flow,
        schema: schema.clone(),
        renders: renders.clone(),
        caller,
        document,
    };
    Started::Shared(
        futures::stream::unfold(Some(driver), |driver| async move {
            let mut driver = driver?;
            match driver.flow.next().await {
                Ok(delivery) => {
                    let json = driver.rendered(&delivery).await;
                    let frame = Frame {
                        event: Some(delivery.event),
                        json,
                    };
                    Some((frame, Some(driver)))
                }
                Err(error) => {
                    let json = Box::pin(driver.render(Err(error))).await;
                    Some((Frame { event: None, json }, None))
                }
            }
        })
        .boxed(),
    )
}

/// A shared subscription's state.
struct Driver {
    flow: Flow,
    schema: DocketSchema,
    renders: Arc<Renders>,
    caller: Arc<Caller>,
    document: Document,
}

impl Driver {
    /// The delivery's JSON, rendered by whichever subscriber needed it first.
    async fn rendered(&self, delivery: &Delivery) -> Arc<str> {
        let key = RenderKey {
            position: delivery.event.position,
            document: self.document.key,
            with_payload: delivery.admission.includes_payload(),
        };
        let cell = self.renders.cell(key);
        if let Some(json) = cell.get() {
            return json.clone();
        }
        Box::pin(self.render_into(&cell, delivery)).await
    }

    /// Renders the delivery into `cell`, or waits for whoever is rendering it.
    async fn render_into(&self, cell: &OnceCell<Arc<str>>, delivery: &Delivery) -> Arc<str> {
        let result = cell
            .get_or_try_init(|| async {
                let item = Flow::log_event(self.flow.gate(), delivery).await;
                // A failure to open the payload ends this subscription; it is not shared.
                match item {
                    Ok(event) => Ok(self.render(Ok(event)).await),
                    Err(error) => Err(error),
                }
            })
            .await;
        match result {
            Ok(json) => json.clone(),
            Err(error) => self.render(Err(error)).await,
        }
    }

    /// One response of the document to `item`, as JSON.
    async fn render(&self, item: async_graphql::Result<LogEvent>) -> Arc<str> {
        let rendering = Arc::new(Rendering(Mutex::new(Some(item))));
        let request = Request::new(self.document.query.as_ref())
            .variables(self.document.variables.clone())
            .data(self.caller.clone())
            .data(rendering);
        let request = match &self.document.operation_name {
            Some(name) => request.operation_name(name.clone()),
            None => request,
        };
        let response = self
            .schema
            .execute_stream(request)
            .next()
            .await
            .unwrap_or_else(|| {
                Response::from_errors(vec![ServerError::new(
                    "the event could not be rendered",
                    None,
                )])
            });
        match serde_json::to_string(&response) {
            Ok(json) => Arc::from(json),
            Err(_) => Arc::from(
                r#"{"data":null,"errors":[{"message":"the event could not be rendered"}]}"#,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(query: &str, variables: serde_json::Value) -> Request {
        Request::new(query).variables(Variables::from_json(variables))
    }

    #[test]
    fn only_an_events_subscription_alone_at_the_root_is_shared() {
        assert!(Document::of(&Request::new("subscription { events { position } }")).is_some());
        assert!(Document::of(&Request::new("subscription { e: events { position } }")).is_some());
        for query in [
            "{ __typename }",
            "mutation { signOut }",
            "subscription { events @skip(if: false) { position } }",
            "subscription { ...Root } fragment Root on Subscription { events { position } }",
            "subscription A { events { position } } subscription B { events { hash } }",
            "not graphql",
        ] {
            assert!(Document::of(&Request::new(query)).is_none(), "{query}");
        }
        let named = Request::new("subscription A { events { position } } query B { __typename }")
            .operation_name("A");
        assert!(Document::of(&named).is_some());
    }

    #[test]
    fn the_key_leaves_out_the_variables_of_the_flow_alone() {
        let query = "subscription($from: Int, $m: [String!], $d: Boolean!) { \
                     events(from: $from, matters: $m) { position data @include(if: $d) } }";
        let key = |variables| Document::of(&with(query, variables)).map(|d| d.key);
        let one = key(serde_json::json!({"from": 1, "m": ["A"], "d": true}));
        // Other positions and matters: the same rendering.
        assert_eq!(
            one,
            key(serde_json::json!({"from": 9, "m": ["B", "C"], "d": true}))
        );
        // A variable of the selection: another rendering.
        assert_ne!(
            one,
            key(serde_json::json!({"from": 1, "m": ["A"], "d": false}))
        );
        // Another document: another rendering.
        let other = Document::of(&Request::new("subscription { events { hash } }"));
        assert_ne!(one, other.map(|d| d.key));
    }

    fn key(position: u64) -> RenderKey {
        RenderKey {
            position,
            document: [0; 32],
            with_payload: true,
        }
    }

    #[test]
    fn the_renderings_kept_are_bounded_and_the_newest_stay() {
        let renders = Renders::default();
        let first = renders.cell(key(1));
        let _ = first.set(Arc::from("rendered once"));
        // The same key while there is room: the same cell, already rendered.
        assert_eq!(
            renders.cell(key(1)).get().map(|text| &**text),
            Some("rendered once")
        );
        for position in 2..=(RENDERS_KEPT as u64 * 3) {
            let _ = renders.cell(key(position));
        }
        let kept = renders
            .cells
            .lock()
            .map(|cells| cells.len())
            .unwrap_or(usize::MAX);
        assert!(kept <= RENDERS_KEPT, "{kept} renderings kept");
        assert!(kept >= RENDERS_KEPT / 2, "{kept} renderings kept");
        let newest = RENDERS_KEPT as u64 * 3;
        assert!(
            renders
                .cells
                .lock()
                .is_ok_and(|cells| cells.contains_key(&key(newest)))
        );
        // The oldest was dropped: asking for it again gives an empty cell.
        assert!(renders.cell(key(1)).get().is_none());
    }
}
