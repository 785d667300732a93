//! The refresh task of one remote JWKS: fetch at start-up, then on an
//! interval taken from `Cache-Control: max-age` within the configured bounds,
//! early when a request met an unknown `kid` (rate-limited by the store), and
//! after a failure with jittered exponential backoff. A failed or unusable
//! fetch never replaces the last good set: a provider outage must not turn
//! into every token being refused.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::KeyStore;
use crate::backoff::Backoff;
use crate::clock::unix_ms;
use crate::config::JwksRemote;
use crate::keys::jwks::{self, JwksError};

/// Why one fetch failed; `label` is the metric's `result`.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No answer within `fetch_timeout`.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connecting or reading failed.
    #[error("request failed: {0}")]
    Http(String),
    /// The provider answered with a status other than 200.
    #[error("status {0}")]
    Status(StatusCode),
    /// The body exceeded `max_bytes`.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// The body is not a usable JWKS.
    #[error("{0}")]
    Invalid(#[from] JwksError),
}

impl FetchError {
    /// The `result` label of `tokengate_jwks_fetches_total`.
    pub fn label(&self) -> &'static str {
        match self {
            FetchError::Timeout(_) => "timeout",
            FetchError::Http(_) => "error",
            FetchError::Status(_) => "status",
            FetchError::TooLarge(_) | FetchError::Invalid(_) => "invalid",
        }
    }
}

/// Largest JWKS body accepted; real sets are a few kilobytes.
pub const MAX_JWKS_BYTES: usize = 512 * 1024;

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// An HTTP client for `remote`: its CA file, or the compiled-in web PKI roots
/// (no dependency on the image having `/etc/ssl`).
fn client(remote: &JwksRemote) -> HttpClient {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match &remote.ca {
        Some(certs) => {
            let mut roots = rustls::RootCertStore::empty();
            // Validation already parsed these; a cert rustls cannot use is skipped.
            let _ = roots.add_parsable_certificates(certs.iter().cloned());
            builder.with_tls_config(
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        }
        None => builder.with_webpki_roots(),
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(remote.fetch_timeout));
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// One GET of the JWKS: the parsed set and the `max-age` the provider gave.
/// `e` and its sources, `: `-separated, as an operator reads them
/// ("client error (Connect): tcp connect error: Connection refused"), not
/// the client's `Debug` form.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

async fn fetch_once(client: &HttpClient, remote: &JwksRemote) -> Result<(jwks::Parsed, Option<Duration>), FetchError> {
    let request = Request::get(remote.url.clone())
        .header(header::ACCEPT, "application/jwk-set+json, application/json")
        .header(header::USER_AGENT, concat!("tokengate/", env!("CARGO_PKG_VERSION")))
        .body(Empty::new())
        .map_err(|e| FetchError::Http(e.to_string()))?;
    let work = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| FetchError::Http(error_chain(&e)))?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        let max_age = response
            .headers()
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(max_age);
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    FetchError::TooLarge(MAX_JWKS_BYTES)
                } else {
                    FetchError::Http(e.to_string())
                }
            })?
            .to_bytes();
        Ok((jwks::parse(&body, &remote.algorithms)?, max_age))
    };
    tokio::time::timeout(remote.fetch_timeout, work)
        .await
        .unwrap_or(Err(FetchError::Timeout(remote.fetch_timeout)))
}

/// `max-age=N` from one Cache-Control value.
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|directive| {
        let (name, seconds) = directive.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        seconds
            .trim()
            .trim_matches('"')
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    })
}

/// Starts the refresh task. It holds the store weakly and ends once a reload
/// has dropped it.
pub fn spawn(store: &Arc<KeyStore>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(Arc::downgrade(store), store.wake.clone(), store.remote().clone()))
}

async fn run(store: Weak<KeyStore>, wake: Arc<tokio::sync::Notify>, remote: JwksRemote) {
    let client = client(&remote);
    let mut failures: u32 = 0;
    let mut was_failing = false;
    loop {
        let Some(s) = store.upgrade() else { return };
        let serving_kid_refetch = s.refetch.lock().unwrap_or_else(|e| e.into_inner()).in_flight;
        let next = match fetch_once(&client, &remote).await {
            Ok((parsed, max_age)) => {
                s.metrics.fetched(&s.issuer, Ok(()));
                let keys = parsed.set.sources();
                let skipped = parsed.skipped.len();
                // Each skipped key once per change of the set, as for a
                // jwks_file at start; an unchanged refetch says nothing.
                if s.publish(parsed.set, unix_ms()) || was_failing {
                    for why in &parsed.skipped {
                        tracing::info!(issuer = %s.issuer, why, "JWKS key skipped");
                    }
                    tracing::info!(issuer = %s.issuer, url = %remote.url, keys, skipped, "JWKS loaded");
                }
                failures = 0;
                was_failing = false;
                max_age
                    .unwrap_or(remote.refresh_interval)
                    .clamp(remote.min_refresh_interval, remote.max_refresh_interval)
            }
            Err(e) => {
                s.metrics.fetched(&s.issuer, Err(&e));
                if !was_failing {
                    tracing::warn!(issuer = %s.issuer, url = %remote.url, error = %e, loaded = s.is_loaded(), "JWKS fetch failed; keeping the last good keys");
                }
                was_failing = true;
                failures = failures.saturating_add(1);
                Backoff::new(Duration::from_millis(250), remote.min_refresh_interval).delay(failures)
            }
        };
        if serving_kid_refetch {
            s.refetch.lock().unwrap_or_else(|e| e.into_inner()).in_flight = false;
        }
        s.attempts.send_modify(|n| *n += 1);
        // The strong reference must not live through the sleep, or a reload
        // could never drop this store.
        drop(s);
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            () = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_read_as_a_chain_of_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let outer = std::io::Error::other(io);
        let text = super::error_chain(&outer);
        assert_eq!(text, "Connection refused");
        assert!(!text.contains("Custom"), "{text}");
    }

    use super::*;

    #[test]
    fn max_age_directive() {
        assert_eq!(max_age("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(max_age("MAX-AGE = \"60\""), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("s-maxage=10"), None);
        assert_eq!(max_age("max-age=-1"), None);
    }
}
