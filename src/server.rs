//! The HTTP server: `/graphql` (and `/graphiql` in development mode), document downloads and
//! `/healthz`. Serving starts the projector that keeps the read models up to date.
//!
//! Every request gets a request id (a UUIDv7, returned in `x-request-id`) and one structured
//! log event when it completes: method, path, status, latency and request id. Query strings,
//! headers and bodies are never logged.

use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Service;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{App, HttpResponse, HttpServer, get, web};
use futures::FutureExt;
use serde_json::json;

use crate::api::graphql::http::{GraphqlState, graphiql, graphql};
use crate::api::graphql::mutation::RequestId;
use crate::api::graphql::persisted::PersistedQueries;
use crate::api::graphql::{self, MAX_BODY_BYTES};
use crate::config::Settings;
use crate::projection::{Projector, ReadDb};
use crate::service::Service as RecordsService;
use crate::store::EventLog;

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

/// `GET /documents/{document_id}/versions/{version}/content`: the stored bytes.
async fn document_content(
    path: web::Path<(String, u32)>,
    request: actix_web::HttpRequest,
    db: web::Data<ReadDb>,
    service: web::Data<RecordsService>,
) -> HttpResponse {
    if !request
        .peer_addr()
        .is_some_and(|peer| peer.ip().is_loopback())
    {
        return HttpResponse::Forbidden().finish();
    }
    let (document_id, version) = path.into_inner();
    let found: Result<Option<(String, String)>, sqlx::Error> = sqlx::query_as(
        "SELECT content_hash, media_type FROM rm_document_versions \
         WHERE document_id = $1 AND version = $2",
    )
    .bind(&document_id)
    .bind(i64::from(version))
    .fetch_optional(db.pool())
    .await;
    let (hash, media_type) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return HttpResponse::NotFound().finish(),
        Err(error) => {
            tracing::error!(error = %error, "document lookup failed");
            return HttpResponse::InternalServerError().finish();
        }
    };
    match service.content(&hash).await {
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

/// Everything the HTTP server serves from.
pub struct Components {
    pub log: Arc<EventLog>,
    pub projector: Arc<Projector>,
    pub service: Arc<RecordsService>,
    pub db: ReadDb,
    pub persisted: PersistedQueries,
    /// Serve GraphiQL.
    pub development: bool,
}

/// Serves until the process receives SIGINT or SIGTERM, as `settings` say: GraphiQL only in
/// development mode, registered documents only when `persisted_queries_only`, and mutations
/// waiting up to `read_your_writes_ms` for their events to be projected.
pub async fn serve(settings: &Settings, log: Arc<EventLog>) -> std::io::Result<()> {
    let io = |error: crate::store::StoreError| std::io::Error::other(error.to_string());
    let db = ReadDb::open(&settings.data_dir, settings.database_url.as_deref())
        .await
        .map_err(io)?;
    let projector = Projector::open(db.clone(), log.store().clone())
        .await
        .map_err(io)?;
    let _projecting = projector.spawn();
    let service = Arc::new(RecordsService::new(
        log.clone(),
        projector.clone(),
        settings.read_your_writes(),
    ));
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
        development: settings.development,
    };
    if !settings.development {
        tracing::info!("GraphiQL is off (development mode is not enabled)");
    }
    tracing::info!(
        listen = %settings.listen,
        development = settings.development,
        persisted_queries_only = settings.persisted_queries_only,
        read_your_writes_ms = settings.read_your_writes_ms,
        "serving"
    );
    http_server(components, settings.listen, None)?.await
}

/// Binds the HTTP server to `listen` (with `workers` worker threads, default one per core).
pub fn http_server(
    components: Components,
    listen: std::net::SocketAddr,
    workers: Option<usize>,
) -> std::io::Result<actix_web::dev::Server> {
    let Components {
        log,
        projector,
        service,
        db,
        persisted,
        development,
    } = components;
    let state = web::Data::new(GraphqlState {
        schema: graphql::build(service.clone(), db.clone()),
        db: db.clone(),
        persisted,
        documents: Default::default(),
    });
    let data = web::Data::from(log);
    let projector_data = web::Data::from(projector);
    let service_data = web::Data::from(service);
    let db_data = web::Data::new(db);
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(data.clone())
            .app_data(projector_data.clone())
            .app_data(service_data.clone())
            .app_data(db_data.clone())
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .wrap_fn(|request, service| {
                let request_id = uuid::Uuid::now_v7().to_string();
                actix_web::HttpMessage::extensions_mut(&request)
                    .insert(RequestId(request_id.clone()));
                let method = request.method().to_string();
                let path = request.path().to_owned();
                let started = Instant::now();
                service.call(request).map(move |result| {
                    let mut response = result?;
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
                    Ok(response)
                })
            })
            .service(healthz)
            .route("/graphql", web::post().to(graphql))
            .route(
                "/documents/{document_id}/versions/{version}/content",
                web::get().to(document_content),
            );
        if development {
            app = app.route("/graphiql", web::get().to(graphiql));
        }
        app
    })
    .bind(listen)?;
    let server = match workers {
        Some(workers) => server.workers(workers),
        None => server,
    };
    Ok(server.run())
}
