//! The HTTP server: `/graphql` (and `/graphiql` in development mode), document downloads, the
//! log's checkpoints and proofs (`/checkpoint`, `/checkpoints/{size}`, `/proof/...`) and
//! `/healthz`. Serving starts the projector that keeps the read models up to date.
//!
//! Over TLS ([`tls`]), every response also carries HSTS; plain HTTP never does.
//!
//! Every request gets a request id (the caller's `x-request-id` when it is a short plain token,
//! else a UUIDv7; returned in `x-request-id`), a `request` span holding it, one structured log
//! event when it completes (method, path, status, latency and request id) and its count and
//! latency in the metrics. Query strings, headers and bodies are never logged. `/livez`,
//! `/readyz` and `/metrics` are src/monitoring/endpoints.rs.

use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Service;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{App, HttpResponse, HttpServer, get, web};
use futures::FutureExt;
use serde_json::json;
use tracing::Instrument;

use crate::access::chain::AccessChain;
use crate::access::policy::Part;
use crate::api::graphql::caller::{Caller, fresh_matter_facts};
use crate::api::graphql::http::{
    GraphqlState, authenticate, begin_call, client_address, finish_call, graphiql, graphql,
};
use crate::api::graphql::mutation::RequestId;
use crate::api::graphql::persisted::PersistedQueries;
use crate::api::graphql::websocket::graphql_ws;
use crate::api::graphql::{self, MAX_BODY_BYTES};
use crate::config::Settings;
use crate::identity::Identity;
use crate::integrations::Integrations;
use crate::metrics;
use crate::monitoring::alert_log::LoggedAlertSink;
use crate::monitoring::verifier::BackgroundVerifier;
use crate::monitoring::{MonitoringSettings, endpoints, request_id};
use crate::projection::{Projector, ReadDb};
use crate::service::Service as RecordsService;
use crate::store::EventLog;
use crate::transparency::{self, Checkpointer};

pub mod tls;

/// The HSTS policy sent with every response over TLS: two years, subdomains included.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000; includeSubDomains";

/// `GET /healthz`: 200 with the log's head and each projection's state when the database
/// answers (`degraded` when a projection has stopped on an event), 503 otherwise.
#[get("/healthz")]
async fn healthz(log: web::Data<EventLog>, projector: web::Data<Projector>) -> HttpResponse {
    let projections = match projector.status().await {
        Ok(projections) => projections,
        Err(error) => {
            tracing::error!(error = %error, "health check failed");
            return HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable" }));
        }
    };
    let degraded = projections
        .iter()
        .any(|projection| projection.status != "ok");
    match log.head().await {
        Ok(head) => HttpResponse::Ok().json(json!({
            "status": if degraded { "degraded" } else { "ok" },
            "backend": log.store().backend(),
            "log": { "position": head.position, "key_id": head.key_id },
            "projections": projections,
        })),
        Err(error) => {
            tracing::error!(error = %error, "health check failed");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable" }))
        }
    }
}

/// `GET /documents/{document_id}/versions/{version}/content`: the stored bytes, for a caller
/// who may read the content of the document's matter. A document the caller may not read is
/// answered exactly like a missing one, and the access record is durable before a byte leaves.
async fn document_content(
    path: web::Path<(String, u32)>,
    request: actix_web::HttpRequest,
    db: web::Data<ReadDb>,
    service: web::Data<RecordsService>,
    state: web::Data<GraphqlState>,
) -> HttpResponse {
    let principal = match authenticate(&request, &state.identity).await {
        Ok(Some(principal)) => principal,
        Ok(None) => return HttpResponse::Unauthorized().finish(),
        Err(response) => return response,
    };
    let request_id = actix_web::HttpMessage::extensions(&request)
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    let caller = Caller::new(
        Some(principal),
        state.identity.directory(),
        request_id,
        client_address(&request),
        state.access.clone(),
    );
    // API clients are counted against their rate limit, and every download is recorded.
    let operation = "download document content";
    let field = Part::DocumentContent.as_str();
    let call = match begin_call(&state.identity, &caller, operation, field).await {
        Ok(call) => call,
        Err(refused) => return refused,
    };
    let response = document_response(path, &db, &service, &caller).await;
    finish_call(&caller, call.as_ref(), operation, response).await
}

/// The content of a document version for `caller`, decided and recorded.
async fn document_response(
    path: web::Path<(String, u32)>,
    db: &ReadDb,
    service: &RecordsService,
    caller: &Caller,
) -> HttpResponse {
    let (document_id, version) = path.into_inner();
    let found: Result<Option<(String, String, String)>, sqlx::Error> = sqlx::query_as(
        "SELECT v.content_hash, v.media_type, d.matter_number FROM rm_document_versions v \
         JOIN rm_documents d ON d.document_id = v.document_id \
         WHERE v.document_id = $1 AND v.version = $2",
    )
    .bind(&document_id)
    .bind(i64::from(version))
    .fetch_optional(db.pool())
    .await;
    let (hash, media_type, matter_number) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return HttpResponse::NotFound().finish(),
        Err(error) => {
            tracing::error!(error = %error, "document lookup failed");
            return HttpResponse::InternalServerError().finish();
        }
    };
    let allowed = match document_allowed(caller, db, &matter_number, &document_id).await {
        Ok(allowed) => allowed,
        Err(error) => {
            tracing::error!(error = %error.message, "document access check failed");
            return HttpResponse::InternalServerError().finish();
        }
    };
    if caller.flush("download document content").await.is_err() {
        return HttpResponse::ServiceUnavailable().finish();
    }
    if !allowed {
        return HttpResponse::NotFound().finish();
    }
    match service.content(&matter_number, &hash).await {
        Ok(Some(bytes)) => HttpResponse::Ok()
            .content_type(media_type)
            .insert_header(("x-content-blake3", hash))
            .insert_header(("x-content-type-options", "nosniff"))
            .insert_header(("content-disposition", "attachment"))
            .body(bytes),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(error) => {
            tracing::error!(error = %error, "document read failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// Whether the caller may read the content of documents in matter `number` (decided and noted).
async fn document_allowed(
    caller: &Caller,
    db: &ReadDb,
    number: &str,
    document_id: &str,
) -> async_graphql::Result<bool> {
    let Some(row) = crate::read::matters::matters_by_number(db.pool(), &[number.to_owned()])
        .await
        .map_err(crate::api::graphql::errors::internal)?
        .into_iter()
        .next()
    else {
        return Ok(false);
    };
    let facts = fresh_matter_facts(db, &row).await?;
    let access = caller.matter_access(&facts)?;
    if !access.is_visible() {
        return Ok(false);
    }
    let decision = access.decide(Part::DocumentContent);
    caller.note(
        Some(number),
        "document",
        Some(document_id),
        Some(Part::DocumentContent.as_str()),
        decision,
    );
    Ok(decision.is_allowed())
}

/// Headers every response carries: no sniffing, no framing, no referrer, no caching of client
/// data, and a content security policy that allows nothing (GraphiQL, in development mode only,
/// loads its page scripts and keeps the default); over TLS, HSTS.
fn security_headers(headers: &mut actix_web::http::header::HeaderMap, path: &str, tls: bool) {
    let mut set = |name: &'static str, value: &'static str| {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    };
    set("x-content-type-options", "nosniff");
    set("x-frame-options", "DENY");
    set("referrer-policy", "no-referrer");
    set("cache-control", "no-store");
    if path != "/graphiql" {
        set(
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        );
    }
    if tls {
        set("strict-transport-security", STRICT_TRANSPORT_SECURITY);
    }
}

/// Everything the HTTP server serves from.
pub struct Components {
    pub log: Arc<EventLog>,
    pub projector: Arc<Projector>,
    pub service: Arc<RecordsService>,
    pub db: ReadDb,
    pub persisted: PersistedQueries,
    pub identity: Arc<Identity>,
    pub access: Arc<AccessChain>,
    pub checkpoints: Arc<Checkpointer>,
    /// Who may read `/metrics`, and how far behind the projections may be while ready.
    pub monitoring: MonitoringSettings,
    /// The feed of the log and the gate of every event delivered to subscribers.
    pub integrations: Arc<Integrations>,
    /// Serve GraphiQL (and let anonymous callers introspect the schema).
    pub development: bool,
    /// Benchmarks only: see [`GraphqlState::unrecorded_principal_for_benchmarks`]. `serve`
    /// never sets it.
    pub unrecorded_principal_for_benchmarks: Option<crate::access::Principal>,
}

/// Serves until the process receives SIGINT or SIGTERM, as `settings` say: GraphiQL only in
/// development mode, registered documents only when `persisted_queries_only`, and mutations
/// waiting up to `read_your_writes_ms` for their events to be projected.
pub async fn serve(settings: &Settings, log: Arc<EventLog>) -> std::io::Result<()> {
    let io = |error: crate::store::StoreError| std::io::Error::other(error.to_string());
    // Transport first: a refused or unloadable TLS setting stops start-up before anything runs.
    settings.check_transport().map_err(std::io::Error::other)?;
    let certificates = match &settings.tls {
        Some(files) => Some(tls::CertificateStore::open(files).map_err(std::io::Error::other)?),
        None => None,
    };
    let _reloading = certificates
        .clone()
        .map(|store| tls::spawn_reloader(store, tls::RELOAD_POLL));
    let db = ReadDb::open(&settings.data_dir, settings.database_url.as_deref())
        .await
        .map_err(io)?;
    let vault = crate::vault::Vault::open_configured(log.store().clone(), &settings.data_dir)
        .await
        .map_err(|error| io(crate::app::vault_unavailable(error)))?;
    let projector = Projector::open(db.clone(), log.store().clone(), vault.clone())
        .await
        .map_err(io)?;
    let _projecting = projector.spawn();
    let service = Arc::new(RecordsService::new(
        log.clone(),
        projector.clone(),
        vault.clone(),
        settings.read_your_writes(),
    ));
    let options = settings.log_options();
    let identity = Identity::open(log.clone(), &options)
        .await
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    identity.spawn_follower();
    let access = Arc::new(AccessChain::open(&options).await.map_err(io)?);
    let integrations = Integrations::open(&log, identity.clone(), projector.clone(), vault.clone())
        .await
        .map_err(io)?;
    let _following = integrations.spawn(&log);
    let _publishing = crate::integrations::nats::spawn(
        settings.nats.clone(),
        &options,
        log.clone(),
        integrations.feed.clone(),
    )
    .await;
    let parts = crate::integrations::webhooks::WebhookParts {
        log: log.clone(),
        identity: identity.clone(),
        vault: vault.clone(),
        access: access.clone(),
        feed: integrations.feed.clone(),
        gate: integrations.gate.clone(),
    };
    let (webhooks, _delivering) =
        crate::integrations::webhooks::spawn(parts, &options, settings.webhooks.clone())
            .await
            .map_err(|error| std::io::Error::other(error.to_string()))?;
    integrations.set_webhooks(webhooks);
    let checkpoints = transparency::open(
        &log,
        settings.checkpoint_origin.as_deref(),
        settings.checkpoints,
    )
    .await
    .map_err(io)?;
    let _checkpointing = checkpoints.spawn();
    let _retention = spawn_retention(service.clone(), settings.retention_interval);
    let (integrity_alerts, _appending_alerts) = LoggedAlertSink::spawn(log.clone());
    let _verifying = BackgroundVerifier::new(
        log.store().clone(),
        Some(access.log().store().clone()),
        integrity_alerts,
    )
    .spawn(settings.monitoring.verify_interval);
    let _watching = crate::monitoring::anomaly::watcher::Watcher::new(
        log.clone(),
        access.clone(),
        &options,
        settings.anomaly.clone(),
    )
    .spawn();
    let _backups = crate::backup::schedule::spawn(settings.log_options(), settings.backup.clone());
    let persisted = PersistedQueries::load(
        &settings.data_dir.join("persisted-queries"),
        settings.persisted_queries_only,
    )?;
    let components = Components {
        log,
        projector,
        service,
        db,
        persisted,
        identity,
        access,
        checkpoints,
        monitoring: settings.monitoring.clone(),
        integrations,
        development: settings.development,
        unrecorded_principal_for_benchmarks: None,
    };
    if !settings.development {
        tracing::info!("GraphiQL is off (development mode is not enabled)");
    }
    tracing::info!(
        listen = %settings.listen,
        tls = certificates.is_some(),
        development = settings.development,
        persisted_queries_only = settings.persisted_queries_only,
        read_your_writes_ms = settings.read_your_writes_ms,
        "serving"
    );
    http_server_with(components, settings.listen, None, certificates)?.await
}

/// Runs the retention policies every `interval` (never for 0), the first time one interval
/// after start-up. Failures are logged and retried at the next run.
fn spawn_retention(
    service: Arc<RecordsService>,
    interval: std::time::Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            ticks.tick().await;
            match service.run_retention(chrono::Utc::now().date_naive()).await {
                Ok(run) => tracing::info!(
                    erased = run.erased.len(),
                    held = run.held.len(),
                    frozen = run.frozen.len(),
                    failed = run.failed.len(),
                    "retention run"
                ),
                Err(error) => tracing::error!(error = %error, "retention run failed"),
            }
        }
    }))
}

/// Binds the HTTP server to `listen` (with `workers` worker threads, default one per core).
pub fn http_server(
    components: Components,
    listen: std::net::SocketAddr,
    workers: Option<usize>,
) -> std::io::Result<actix_web::dev::Server> {
    http_server_with(components, listen, workers, None)
}

/// [`http_server`], over TLS with the certificates of `tls` when given (HTTPS and WSS, with
/// HSTS on every response), plain HTTP otherwise.
pub fn http_server_with(
    components: Components,
    listen: std::net::SocketAddr,
    workers: Option<usize>,
    tls: Option<Arc<tls::CertificateStore>>,
) -> std::io::Result<actix_web::dev::Server> {
    let tls_config = match &tls {
        Some(store) => Some(store.server_config().map_err(std::io::Error::other)?),
        None => None,
    };
    let over_tls = tls_config.is_some();
    let Components {
        log,
        projector,
        service,
        db,
        persisted,
        identity,
        access,
        checkpoints,
        monitoring,
        integrations,
        development,
        unrecorded_principal_for_benchmarks,
    } = components;
    let state = web::Data::new(GraphqlState {
        schema: graphql::build(
            service.clone(),
            db.clone(),
            identity.clone(),
            checkpoints.clone(),
            integrations,
        ),
        db: db.clone(),
        persisted,
        documents: Default::default(),
        subscriptions: Default::default(),
        identity,
        access,
        public_introspection: development,
        unrecorded_principal_for_benchmarks,
    });
    let data = web::Data::from(log);
    let projector_data = web::Data::from(projector);
    let service_data = web::Data::from(service);
    let db_data = web::Data::new(db);
    let checkpoints_data = web::Data::from(checkpoints);
    let monitoring_data = web::Data::new(monitoring);
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(data.clone())
            .app_data(projector_data.clone())
            .app_data(service_data.clone())
            .app_data(db_data.clone())
            .app_data(state.clone())
            .app_data(checkpoints_data.clone())
            .app_data(monitoring_data.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .wrap_fn(move |request, service| {
                let request_id = request_id::of_request(request.headers());
                actix_web::HttpMessage::extensions_mut(&request)
                    .insert(RequestId(request_id.clone()));
                let method = request.method().to_string();
                let path = request.path().to_owned();
                let started = Instant::now();
                let span = tracing::info_span!("request", request_id = %request_id);
                service.call(request).instrument(span).map(move |result| {
                    let mut response = result?;
                    metrics::global().http_request(
                        &method,
                        response.status().as_u16(),
                        started.elapsed(),
                    );
                    tracing::info!(
                        http.method = %method,
                        http.path = %path,
                        http.status = response.status().as_u16(),
                        latency_us = started.elapsed().as_micros() as u64,
                        request_id = %request_id,
                        "request"
                    );
                    if let Ok(value) = HeaderValue::from_str(&request_id) {
                        response
                            .headers_mut()
                            .insert(HeaderName::from_static("x-request-id"), value);
                    }
                    security_headers(response.headers_mut(), &path, over_tls);
                    Ok(response)
                })
            })
            .service(healthz)
            .route("/livez", web::get().to(endpoints::livez))
            .route("/readyz", web::get().to(endpoints::readyz))
            .route("/metrics", web::get().to(endpoints::metrics))
            .route("/graphql", web::post().to(graphql))
            .route("/graphql", web::get().to(graphql_ws))
            .route(
                "/documents/{document_id}/versions/{version}/content",
                web::get().to(document_content),
            )
            .configure(graphql::transparency::routes::configure);
        if development {
            app = app.route("/graphiql", web::get().to(graphiql));
        }
        app
    });
    let server = match tls_config {
        Some(config) => server.bind_rustls_0_23(listen, config)?,
        None => server.bind(listen)?,
    };
    let server = match workers {
        Some(workers) => server.workers(workers),
        None => server,
    };
    Ok(server.run())
}
