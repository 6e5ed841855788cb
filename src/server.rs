//! The HTTP server. For now it serves `/healthz`; the GraphQL API mounts here.

use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, get, web};
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
            .service(healthz)
    })
    .bind(settings.listen)?
    .run()
    .await
}
