//! The refresh task of one remote JWKS: fetch at start-up, then on an
//! interval taken from `Cache-Control: max-age` within the configured bounds,
//! early when a request met an unknown `kid` (rate-limited by the store), and
//! after a failure with jittered exponential backoff. A failed or unusable
//! fetch never replaces the last good set: a provider outage must not turn
//! into every token being refused.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;

use super::KeyStore;
use crate::backoff::Backoff;
use crate::clock::unix_ms;
use crate::config::{Discovery, JwksRemote};
use crate::keys::Alg;
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
    /// The metadata document is not usable (not JSON, no `jwks_uri`, a
    /// `jwks_uri` we may not follow, no algorithm we may use).
    #[error("metadata document: {0}")]
    Metadata(String),
    /// The metadata document names another issuer: the mix-up defence
    /// (OpenID Connect Discovery §4.3, RFC 8414 §3.3) refuses it whole.
    #[error("metadata document names issuer {found:?}, not the configured {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The document's `issuer`.
        found: String,
    },
}

impl FetchError {
    /// The `result` label of `tokengate_jwks_fetches_total`.
    pub fn label(&self) -> &'static str {
        match self {
            FetchError::Timeout(_) => "timeout",
            FetchError::Http(_) => "error",
            FetchError::Status(_) => "status",
            FetchError::TooLarge(_) | FetchError::Invalid(_) => "invalid",
            FetchError::Metadata(_) => "invalid_metadata",
            FetchError::IssuerMismatch { .. } => "issuer_mismatch",
        }
    }
}

/// Largest JWKS body accepted; real sets are a few kilobytes.
pub const MAX_JWKS_BYTES: usize = 512 * 1024;

/// The client for a provider's endpoints (keys, metadata, introspection).
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTP(S) client trusting `ca`, or the compiled-in web PKI roots (no
/// dependency on the image having `/etc/ssl`); connects within `connect_timeout`.
pub fn https_client(ca: Option<&[CertificateDer<'static>]>, connect_timeout: Duration) -> HttpClient {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match ca {
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
    http.set_connect_timeout(Some(connect_timeout));
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

/// One GET of `url`: the body (at most [`MAX_JWKS_BYTES`]) and the
/// `max-age` the provider gave.
async fn get(client: &HttpClient, url: &Uri, timeout: Duration) -> Result<(Bytes, Option<Duration>), FetchError> {
    let request = Request::get(url.clone())
        .header(header::ACCEPT, "application/jwk-set+json, application/json")
        .header(header::USER_AGENT, concat!("tokengate/", env!("CARGO_PKG_VERSION")))
        .body(Full::default())
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
        Ok((body, max_age))
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(FetchError::Timeout(timeout)))
}

/// One fetch of the keys: the metadata document first when the issuer uses
/// discovery (falling back to `last` when it fails and one was read before),
/// then the JWKS. Returns the parsed set, the `max-age` to honour (the
/// shorter of the two documents'), and the metadata used.
async fn fetch_once(
    client: &HttpClient,
    remote: &JwksRemote,
    last: Option<&Arc<Metadata>>,
) -> (
    Result<(jwks::Parsed, Option<Duration>), FetchError>,
    Option<Arc<Metadata>>,
    Option<FetchError>,
) {
    let (jwks_uri, algorithms, doc_age, metadata, doc_error) = match &remote.discovery {
        None => (remote.url.clone(), remote.algorithms.clone(), None, None, None),
        Some(discovery) => match discover(client, remote, discovery).await {
            Ok((m, age)) => {
                let m = Arc::new(m);
                (m.jwks_uri.clone(), m.algorithms.clone(), age, Some(m), None)
            }
            // A provider whose metadata endpoint hiccups still serves its
            // keys where it said they are.
            Err(e) => match last {
                Some(m) => (m.jwks_uri.clone(), m.algorithms.clone(), None, Some(m.clone()), Some(e)),
                None => return (Err(e), None, None),
            },
        },
    };
    let keys = async {
        let (body, age) = get(client, &jwks_uri, remote.fetch_timeout).await?;
        let age = match (age, doc_age) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok((jwks::parse(&body, &algorithms)?, age))
    };
    (keys.await, metadata, doc_error)
}

/// Reads and checks the issuer's metadata document.
async fn discover(
    client: &HttpClient,
    remote: &JwksRemote,
    discovery: &Discovery,
) -> Result<(Metadata, Option<Duration>), FetchError> {
    let (body, age) = match get(client, &remote.url, remote.fetch_timeout).await {
        // Not an OpenID Provider: an RFC 8414 authorization server.
        Err(FetchError::Status(StatusCode::NOT_FOUND)) => {
            get(client, &discovery.oauth_url, remote.fetch_timeout).await?
        }
        other => other?,
    };
    Ok((Metadata::parse(&body, discovery, &remote.algorithms)?, age))
}

/// What an issuer's metadata document told us.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// Where its keys are.
    pub jwks_uri: Uri,
    /// The algorithms its keys may be used for: the configured ones that
    /// the document lists as signing algorithms (all configured ones when it
    /// lists none).
    pub algorithms: Vec<Alg>,
    /// Its RFC 7662 introspection endpoint, if it has one.
    pub introspection_endpoint: Option<Uri>,
    /// Where browsers sign in (the authorization code flow), if it says.
    pub authorization_endpoint: Option<Uri>,
    /// Where codes are exchanged for tokens, if it says.
    pub token_endpoint: Option<Uri>,
    /// Where browsers sign out (RP-initiated logout), if it has one.
    pub end_session_endpoint: Option<Uri>,
}

impl Metadata {
    /// Parses and checks a document against the configured issuer.
    pub fn parse(body: &[u8], discovery: &Discovery, allowed: &[Alg]) -> Result<Metadata, FetchError> {
        let doc = crate::json::unique_object(body)
            .ok_or_else(|| FetchError::Metadata("not a JSON object with unique member names".into()))?;
        let text = |name: &str| doc.get(name).and_then(serde_json::Value::as_str);
        // Exact comparison: no trailing-slash or case folding (OIDC
        // Discovery §4.3), or a look-alike issuer would pass.
        match text("issuer") {
            Some(found) if found == discovery.issuer => {}
            found => {
                return Err(FetchError::IssuerMismatch {
                    expected: discovery.issuer.clone(),
                    found: found.unwrap_or("(none)").to_owned(),
                });
            }
        }
        let followable = |name: &str| -> Result<Option<Uri>, FetchError> {
            let Some(value) = text(name) else { return Ok(None) };
            let uri: Uri = value
                .parse()
                .map_err(|_| FetchError::Metadata(format!("{name} {value:?} is not a URL")))?;
            let host = uri.host().unwrap_or_default();
            let ok = uri.authority().is_some_and(|a| !a.as_str().contains('@'))
                && match uri.scheme_str() {
                    Some("https") => true,
                    Some("http") => discovery.allow_http || crate::config::is_loopback_host(host),
                    _ => false,
                };
            if !ok {
                return Err(FetchError::Metadata(format!(
                    "{name} {value:?} is not https (plain http only to a loopback address or with jwks.allow_http)"
                )));
            }
            Ok(Some(uri))
        };
        let jwks_uri = followable("jwks_uri")?.ok_or_else(|| FetchError::Metadata("no jwks_uri".into()))?;
        let introspection_endpoint = followable("introspection_endpoint")?;
        let authorization_endpoint = followable("authorization_endpoint")?;
        let token_endpoint = followable("token_endpoint")?;
        let end_session_endpoint = followable("end_session_endpoint")?;
        // The signing algorithms an OpenID Provider lists (RFC 8414's
        // metadata has no such list for tokens).
        let listed: Option<Vec<&str>> = match doc.get("id_token_signing_alg_values_supported") {
            None => None,
            Some(serde_json::Value::Array(list)) => Some(list.iter().filter_map(serde_json::Value::as_str).collect()),
            Some(_) => {
                return Err(FetchError::Metadata(
                    "id_token_signing_alg_values_supported is not a list".into(),
                ));
            }
        };
        let algorithms: Vec<Alg> = match &listed {
            None => allowed.to_vec(),
            Some(listed) => allowed.iter().copied().filter(|a| listed.contains(&a.name())).collect(),
        };
        let listed = listed.unwrap_or_default();
        if algorithms.is_empty() {
            return Err(FetchError::Metadata(format!(
                "it lists no signing algorithm tokengate may use (it lists {})",
                listed.join(" ")
            )));
        }
        Ok(Metadata {
            jwks_uri,
            algorithms,
            introspection_endpoint,
            authorization_endpoint,
            token_endpoint,
            end_session_endpoint,
        })
    }
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
    let client = https_client(remote.ca.as_deref(), remote.fetch_timeout);
    let mut failures: u32 = 0;
    let mut was_failing = false;
    let mut metadata_failing = false;
    loop {
        let Some(s) = store.upgrade() else { return };
        let serving_kid_refetch = s.refetch.lock().unwrap_or_else(|e| e.into_inner()).in_flight;
        let last = s.metadata.load_full();
        let (result, metadata, metadata_error) = fetch_once(&client, &remote, last.as_ref()).await;
        match (&metadata_error, metadata_failing) {
            (Some(e), false) => {
                s.metrics.fetched(&s.issuer, Err(e));
                tracing::warn!(issuer = %s.issuer, url = %remote.url, error = %e, "metadata fetch failed; using the last good document");
            }
            (Some(e), true) => s.metrics.fetched(&s.issuer, Err(e)),
            (None, true) => tracing::info!(issuer = %s.issuer, url = %remote.url, "metadata fetched again"),
            (None, false) => {}
        }
        metadata_failing = metadata_error.is_some();
        if let Some(m) = metadata
            && last.as_deref() != Some(&*m)
        {
            tracing::info!(issuer = %s.issuer, jwks_uri = %m.jwks_uri, algorithms = %Alg::names(&m.algorithms), "metadata loaded");
            s.metadata.store(Some(m));
        }
        let next = match result {
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

    fn discovery(issuer: &str) -> Discovery {
        Discovery {
            issuer: issuer.into(),
            oauth_url: "https://op.example/.well-known/oauth-authorization-server"
                .parse()
                .unwrap(),
            allow_http: false,
        }
    }

    #[test]
    fn metadata_must_name_the_configured_issuer_exactly() {
        let all = crate::keys::jwks::ASYMMETRIC_ALGORITHMS;
        let doc =
            |issuer: &str| serde_json::json!({"issuer": issuer, "jwks_uri": "https://op.example/jwks"}).to_string();
        let ok = Metadata::parse(
            doc("https://op.example").as_bytes(),
            &discovery("https://op.example"),
            all,
        )
        .unwrap();
        assert_eq!(ok.jwks_uri, "https://op.example/jwks");
        assert_eq!(ok.algorithms, all);
        for other in ["https://op.example/", "https://OP.example", "https://evil.example", ""] {
            let err = Metadata::parse(doc(other).as_bytes(), &discovery("https://op.example"), all).unwrap_err();
            assert_eq!(err.label(), "issuer_mismatch", "{other}: {err}");
        }
        let no_issuer = br#"{"jwks_uri": "https://op.example/jwks"}"#;
        let err = Metadata::parse(no_issuer, &discovery("https://op.example"), all).unwrap_err();
        assert_eq!(err.label(), "issuer_mismatch");
    }

    #[test]
    fn metadata_urls_and_algorithms() {
        let all = crate::keys::jwks::ASYMMETRIC_ALGORITHMS;
        let d = discovery("https://op.example");
        let parse = |doc: serde_json::Value| Metadata::parse(doc.to_string().as_bytes(), &d, all);
        let base = |jwks: &str| serde_json::json!({"issuer": "https://op.example", "jwks_uri": jwks});
        // Plain http only to loopback; never with credentials or another scheme.
        assert!(parse(base("http://127.0.0.1:8080/jwks")).is_ok());
        for bad in [
            "http://op.example/jwks",
            "https://u:p@op.example/jwks",
            "ftp://op.example/jwks",
            "/jwks",
        ] {
            assert_eq!(parse(base(bad)).unwrap_err().label(), "invalid_metadata", "{bad}");
        }
        let err = parse(serde_json::json!({"issuer": "https://op.example"})).unwrap_err();
        assert!(err.to_string().contains("no jwks_uri"), "{err}");
        // The listed signing algorithms narrow the configured ones.
        let mut doc = base("https://op.example/jwks");
        doc["id_token_signing_alg_values_supported"] = serde_json::json!(["RS256", "HS256", "none", "Ed25519"]);
        assert_eq!(parse(doc.clone()).unwrap().algorithms, [Alg::RS256, Alg::Ed25519]);
        doc["id_token_signing_alg_values_supported"] = serde_json::json!(["HS256", "none"]);
        assert_eq!(parse(doc).unwrap_err().label(), "invalid_metadata");
        let mut doc = base("https://op.example/jwks");
        doc["introspection_endpoint"] = "https://op.example/introspect".into();
        assert_eq!(
            parse(doc).unwrap().introspection_endpoint.unwrap(),
            "https://op.example/introspect"
        );
        assert_eq!(Metadata::parse(b"[", &d, all).unwrap_err().label(), "invalid_metadata");
        // A list that is empty or not a list leaves nothing, rather than everything.
        for listed in [serde_json::json!([]), serde_json::json!("RS256")] {
            let mut doc = base("https://op.example/jwks");
            doc["id_token_signing_alg_values_supported"] = listed.clone();
            assert_eq!(parse(doc).unwrap_err().label(), "invalid_metadata", "{listed}");
        }
        // A member named twice is not believed (the last copy would win).
        let twice = br#"{"issuer": "https://evil.example", "issuer": "https://op.example", "jwks_uri": "https://op.example/jwks"}"#;
        assert_eq!(Metadata::parse(twice, &d, all).unwrap_err().label(), "invalid_metadata");
    }

    #[test]
    fn max_age_directive() {
        assert_eq!(max_age("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(max_age("MAX-AGE = \"60\""), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("s-maxage=10"), None);
        assert_eq!(max_age("max-age=-1"), None);
    }
}
