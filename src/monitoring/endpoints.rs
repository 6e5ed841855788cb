//! `GET /metrics`, `GET /livez` and `GET /readyz`.
//!
//! - `/metrics` is the Prometheus text format. It is not public: without a configured token it
//!   is served only to loopback clients whose request came through no proxy (a request carrying
//!   `Forwarded`, `X-Forwarded-For` or `X-Real-IP` is taken as coming from elsewhere, since a
//!   proxy on the same host would otherwise make every client look local); with a token, every
//!   client must send `Authorization: Bearer <token>`, compared in constant time.
//! - `/livez` answers 200 whenever the process serves HTTP.
//! - `/readyz` answers 200 when the database answers, every healthy projection is within
//!   [`MonitoringSettings::ready_max_lag_events`] of the head, and the vault's key-encryption
//!   keys answer; otherwise 503 naming the checks that failed. It never shows error text: the
//!   cause is logged.

use std::net::IpAddr;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::{MetricsToken, MonitoringSettings};
use crate::metrics::{CONTENT_TYPE, ScrapeGauges};
use crate::projection::Projector;
use crate::store::EventLog;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Headers a proxy adds: their presence means the peer address is the proxy's, not the
/// client's.
const PROXY_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// Whether a request may read `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAccess {
    Allowed,
    /// A token is configured and the request did not present it: 401.
    Unauthorized,
    /// No token is configured and the request is not from a loopback client: 403.
    Forbidden,
}

/// Decides `/metrics` for a request from `peer` (`proxied` when it carries a proxy's headers)
/// presenting `authorization` (the header's value), when `token` is configured or not.
pub fn metrics_access(
    token: Option<&MetricsToken>,
    peer: Option<IpAddr>,
    proxied: bool,
    authorization: Option<&str>,
) -> MetricsAccess {
    match token {
        Some(token) => {
            let presented = authorization.and_then(|value| value.strip_prefix("Bearer "));
            match presented {
                Some(presented) if token.matches(presented) => MetricsAccess::Allowed,
                _ => MetricsAccess::Unauthorized,
            }
        }
        None => {
            let local = peer.is_some_and(|ip| ip.to_canonical().is_loopback());
            if local && !proxied {
                MetricsAccess::Allowed
            } else {
                MetricsAccess::Forbidden
            }
        }
    }
}

/// `GET /metrics`.
pub async fn metrics(
    request: HttpRequest,
    settings: web::Data<MonitoringSettings>,
    log: web::Data<EventLog>,
    projector: web::Data<Projector>,
) -> HttpResponse {
    let headers = request.headers();
    let proxied = PROXY_HEADERS.iter().any(|name| headers.contains_key(*name));
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let peer = request.peer_addr().map(|peer| peer.ip());
    match metrics_access(
        settings.metrics_token.as_ref(),
        peer,
        proxied,
        authorization,
    ) {
        MetricsAccess::Allowed => {}
        MetricsAccess::Unauthorized => {
            return HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                .json(json!({ "error": "METRICS_UNAUTHORIZED" }));
        }
        MetricsAccess::Forbidden => {
            return HttpResponse::Forbidden().json(json!({ "error": "METRICS_FORBIDDEN" }));
        }
    }
    let gauges = scrape_gauges(&log, &projector).await;
    let mut body = String::new();
    let encoded = crate::metrics::global()
        .encode(&mut body)
        .and_then(|()| gauges.encode(&mut body));
    match encoded {
        Ok(()) => HttpResponse::Ok().content_type(CONTENT_TYPE).body(body),
        Err(_) => {
            tracing::error!("metrics could not be encoded");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// The log's head and each projection's lag, read now (what cannot be read is left out, and
/// `/readyz` reports it).
async fn scrape_gauges(log: &EventLog, projector: &Projector) -> ScrapeGauges {
    let head_position = match log.head().await {
        Ok(head) => Some(head.position),
        Err(error) => {
            tracing::warn!(%error, "metrics: the log's head could not be read");
            None
        }
    };
    let projections = match projector.status().await {
        Ok(statuses) => statuses
            .into_iter()
            .filter_map(|status| {
                // Only names the code defines become labels.
                let name = projector
                    .projections()
                    .iter()
                    .map(|projection| projection.name())
                    .find(|name| *name == status.name)?;
                Some((name, status.lag, status.status == "ok"))
            })
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "metrics: the projections could not be read");
            Vec::new()
        }
    };
    ScrapeGauges {
        head_position,
        projections,
    }
}

/// `GET /livez`: the process is serving.
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "alive" }))
}

/// What one readiness check came to.
fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "failed" }
}

/// `GET /readyz`.
pub async fn readyz(
    settings: web::Data<MonitoringSettings>,
    log: web::Data<EventLog>,
    projector: web::Data<Projector>,
) -> HttpResponse {
    let database = within(log.head()).await.is_some();
    let projector_ok = match within(projector.status()).await {
        Some(statuses) => {
            let behind = statuses
                .iter()
                .filter(|status| status.status == "ok")
                .any(|status| status.lag > settings.ready_max_lag_events);
            if behind {
                tracing::warn!(
                    bound = settings.ready_max_lag_events,
                    "not ready: a projection is further behind the head than allowed"
                );
            }
            !behind
        }
        None => false,
    };
    let vault = within(projector.vault().master().current()).await.is_some();
    let checks = [
        ("database", database),
        ("projector", projector_ok),
        ("vault", vault),
    ];
    let failed: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| *name)
        .collect();
    let body = json!({
        "status": if failed.is_empty() { "ready" } else { "not_ready" },
        "checks": {
            "database": verdict(database),
            "projector": verdict(projector_ok),
            "vault": verdict(vault),
        },
        "failed": failed,
    });
    if failed.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The check's value, or `None` when it failed (logged) or took longer than [`CHECK_TIMEOUT`].
async fn within<T, E: std::fmt::Display>(
    check: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check failed");
            None
        }
        Err(_) => {
            tracing::warn!("readiness check timed out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> MetricsToken {
        MetricsToken::new("the-scrapers-own-token-42").unwrap()
    }

    #[test]
    fn without_a_token_only_direct_loopback_clients_read_metrics() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let remote: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            metrics_access(None, Some(local), false, None),
            MetricsAccess::Allowed
        );
        assert_eq!(
            metrics_access(None, Some(mapped), false, None),
            MetricsAccess::Allowed
        );
        assert_eq!(
            metrics_access(None, Some(remote), false, None),
            MetricsAccess::Forbidden
        );
        assert_eq!(
            metrics_access(None, Some(local), true, None),
            MetricsAccess::Forbidden
        );
        assert_eq!(
            metrics_access(None, None, false, None),
            MetricsAccess::Forbidden
        );
    }

    #[test]
    fn with_a_token_everyone_must_present_it() {
        let token = token();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let remote: IpAddr = "10.1.2.3".parse().unwrap();
        let good = Some("Bearer the-scrapers-own-token-42");
        assert_eq!(
            metrics_access(Some(&token), Some(remote), true, good),
            MetricsAccess::Allowed
        );
        for bad in [
            None,
            Some("Bearer the-scrapers-own-token-43"),
            Some("the-scrapers-own-token-42"),
            Some("Basic the-scrapers-own-token-42"),
            Some("Bearer "),
        ] {
            assert_eq!(
                metrics_access(Some(&token), Some(local), false, bad),
                MetricsAccess::Unauthorized
            );
        }
    }
}
