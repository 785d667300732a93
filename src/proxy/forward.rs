//! The upstream: a pooled HTTP/1.1 client to the app beside us.

use std::time::Duration;

use http::uri::Authority;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::UpstreamConfig;

/// Why the upstream exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Refused, unreachable, or the connect timed out (502).
    #[error("cannot connect to upstream: {0}")]
    Connect(#[source] hyper_util::client::legacy::Error),
    /// No response head within the request timeout (504).
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    /// Reset, closed early, or spoke broken HTTP (502).
    #[error("upstream exchange failed: {0}")]
    Reset(#[source] hyper_util::client::legacy::Error),
}

/// Pooled client plus where and how long.
pub struct Upstream {
    client: Client<HttpConnector, Incoming>,
    authority: Authority,
    request_timeout: Duration,
}

impl Upstream {
    /// A client for the configured upstream; connects lazily.
    pub fn new(config: &UpstreamConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle)
            .build(connector);
        Upstream {
            client,
            authority: config.authority.clone(),
            request_timeout: config.request_timeout,
        }
    }

    /// `host:port` requests are sent to.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Sends `req` (its URI already pointing at the upstream) and waits for
    /// the response head; the bodies stream afterwards, both ways.
    pub async fn send(&self, req: Request<Incoming>) -> Result<Response<Incoming>, UpstreamError> {
        match tokio::time::timeout(self.request_timeout, self.client.request(req)).await {
            Err(_) => Err(UpstreamError::Timeout(self.request_timeout)),
            Ok(Err(e)) if e.is_connect() => Err(UpstreamError::Connect(e)),
            Ok(Err(e)) => Err(UpstreamError::Reset(e)),
            Ok(Ok(resp)) => Ok(resp),
        }
    }
}
