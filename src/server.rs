//! The HTTP server. For now it serves `/healthz`; the GraphQL API mounts here.
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

use crate::config::Settings;
use crate::store::EventLog;

/// `GET /healthz`: 200 with the log's head when the database answers, 503 otherwise.
#[get("/healthz")]
async fn healthz(log: web::Data<EventLog>) -> HttpResponse {
    match log.head().await {
        Ok(head) => HttpResponse::Ok().json(json!({
            "status": "ok",
            "backend": log.store().backend(),
            "log": { "position": head.position, "key_id": head.key_id },
        })),
        Err(error) => {
            tracing::error!(error = %error, "health check failed");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable" }))
        }
    }
}

/// Serves until the process receives SIGINT or SIGTERM.
pub async fn serve(settings: &Settings, log: Arc<EventLog>) -> std::io::Result<()> {
    let data = web::Data::from(log);
    tracing::info!(listen = %settings.listen, "serving");
    HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(1024 * 1024))
            .wrap_fn(|request, service| {
                let request_id = uuid::Uuid::now_v7().to_string();
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
    })
    .bind(settings.listen)?
    .run()
    .await
}
