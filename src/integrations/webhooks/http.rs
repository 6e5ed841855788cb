//! One HTTP attempt: a POST to the endpoint through a client that follows no redirect, uses
//! no proxy, times out, and connects only to addresses the egress policy allows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};

use super::WebhookError;
use super::backoff::parse_retry_after;
use super::target::{EgressPolicy, GuardedResolver, TargetRefused, literal_address};

/// Longest excerpt of a failed response's body kept in the delivery log.
pub const EXCERPT_CHARS: usize = 200;

/// The HTTP client every delivery goes through.
pub fn client(
    policy: Arc<EgressPolicy>,
    timeout: Duration,
) -> Result<reqwest::Client, WebhookError> {
    // reqwest is built without a default TLS provider: Docket uses ring everywhere.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
        .dns_resolver(GuardedResolver::new(policy))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("Docket-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| WebhookError::internal("the webhook HTTP client", error))
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: Option<u16>,
    pub latency: Duration,
    /// Why it failed, when it did: `status`, `redirect`, `timeout`, `connect`,
    /// `refused_address`, `not_https`, `tls`, `request`...
    pub error_class: Option<&'static str>,
    pub excerpt: Option<String>,
    pub retry_after: Option<Duration>,
}

impl Response {
    pub fn succeeded(&self) -> bool {
        self.error_class.is_none()
    }

    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }

    fn refused(refused: &TargetRefused) -> Response {
        Response {
            status: None,
            latency: Duration::ZERO,
            error_class: Some(refused.code()),
            excerpt: None,
            retry_after: None,
        }
    }
}

/// The signed request's headers.
pub struct Signed {
    pub webhook_id: String,
    pub timestamp: i64,
    pub signature: String,
}

/// POSTs `body` to `url`, checking the URL (and an IP-literal host) against the policy first;
/// names are checked by the client's resolver as they are resolved.
pub async fn post(
    client: &reqwest::Client,
    policy: &EgressPolicy,
    url: &str,
    signed: &Signed,
    body: Vec<u8>,
) -> Response {
    let url = match policy.check_url(url) {
        Ok(url) => url,
        Err(refused) => return Response::refused(&refused),
    };
    if let Some(address) = url.host_str().and_then(literal_address)
        && let Err(refused) = policy.check_address(address)
    {
        return Response::refused(&refused);
    }
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("Docket-Webhooks/", env!("CARGO_PKG_VERSION"))),
    );
    for (name, value) in [
        ("webhook-id", signed.webhook_id.clone()),
        ("webhook-timestamp", signed.timestamp.to_string()),
        ("webhook-signature", signed.signature.clone()),
    ] {
        match HeaderValue::from_str(&value) {
            Ok(value) => {
                headers.insert(name, value);
            }
            Err(_) => {
                return Response {
                    status: None,
                    latency: Duration::ZERO,
                    error_class: Some("request"),
                    excerpt: None,
                    retry_after: None,
                };
            }
        }
    }
    let started = Instant::now();
    let result = client.post(url).headers(headers).body(body).send().await;
    match result {
        Ok(response) => {
            let status = response.status();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, chrono::Utc::now()));
            let error_class = if status.is_success() {
                None
            } else if status.is_redirection() {
                Some("redirect")
            } else {
                Some("status")
            };
            let excerpt = match error_class {
                Some(_) => excerpt(response).await,
                None => {
                    // Drain a small success body so the connection can be reused.
                    let _ = response.bytes().await;
                    None
                }
            };
            Response {
                status: Some(status.as_u16()),
                latency: started.elapsed(),
                error_class,
                excerpt,
                retry_after,
            }
        }
        Err(error) => Response {
            status: None,
            latency: started.elapsed(),
            error_class: Some(classify(&error)),
            excerpt: None,
            retry_after: None,
        },
    }
}

/// The start of a response body: at most [`EXCERPT_CHARS`] printable characters, reading no
/// more than a few kilobytes.
async fn excerpt(mut response: reqwest::Response) -> Option<String> {
    let mut bytes = Vec::new();
    while bytes.len() < 4 * EXCERPT_CHARS {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(EXCERPT_CHARS)
        .collect();
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// The class of a failed request, for the delivery log (never its message, which can quote
/// the URL).
fn classify(error: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<TargetRefused>() {
            return refused.code();
        }
        if cause.downcast_ref::<rustls::Error>().is_some() {
            return "tls";
        }
        source = cause.source();
    }
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_redirect() {
        "redirect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    }
}
