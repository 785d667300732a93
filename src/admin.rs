//! The admin listener: `/healthz` (alive), `/readyz` (serving and ready),
//! `/metrics` (Prometheus text), and `POST /revoke` for loopback callers.
//! Separate from the proxy port so probes and scrapes never pass through
//! token checks.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Deserialize;

use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::revocation::{Revocation, Revocations};

/// Largest `/revoke` body accepted.
const MAX_REVOKE_BODY: usize = 4096;

/// The admin service; cheap to clone per connection.
#[derive(Clone)]
pub struct AdminService {
    metrics: Arc<Metrics>,
    readiness: Readiness,
    revocations: Revocations,
    /// The caller; `/revoke` is refused unless it is a loopback address.
    peer: Option<SocketAddr>,
}

/// `POST /revoke` body: `{"jti": "...", "exp": 1767225600}`,
/// `{"sid": "...", "exp": 1767225600}` or `{"sub": "...", "before": 1767225600}`
/// (`before` defaults to now).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    jti: Option<String>,
    sid: Option<String>,
    exp: Option<i64>,
    sub: Option<String>,
    before: Option<i64>,
}

impl AdminService {
    /// Serves `metrics`, `readiness` and revocations.
    pub fn new(metrics: Arc<Metrics>, readiness: Readiness, revocations: Revocations) -> Self {
        AdminService {
            metrics,
            readiness,
            revocations,
            peer: None,
        }
    }

    /// The service for one connection from `peer`.
    pub fn for_peer(&self, peer: SocketAddr) -> Self {
        AdminService {
            peer: Some(peer),
            ..self.clone()
        }
    }

    fn answer(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n".into());
        }
        match path {
            "/healthz" | "/livez" => text(StatusCode::OK, "ok\n".into()),
            "/readyz" => {
                // Which Redis node the revocation sync is on, ready or not:
                // during a failover this is what an operator asks first.
                let node = match (self.revocations.redis(), self.revocations.node()) {
                    (None, _) => String::new(),
                    (Some(_), Some((address, role))) => format!("revocation sync: {address} ({role})\n"),
                    (Some(_), None) => "revocation sync: not connected\n".to_owned(),
                };
                match self.readiness.not_ready_reason() {
                    None => text(StatusCode::OK, format!("ready\n{node}")),
                    Some(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n{node}")),
                }
            }
            "/metrics" => {
                let mut r = Response::new(Full::new(Bytes::from(self.metrics.render())));
                r.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                r
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }

    async fn revoke(self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        // Pod-local callers only: anyone who can reach the admin port from
        // outside must not be able to log users out.
        if !self.peer.is_some_and(|p| p.ip().is_loopback()) {
            return text(StatusCode::FORBIDDEN, "revoke is only accepted from loopback\n".into());
        }
        let body = match crate::body::read(req.into_body(), MAX_REVOKE_BODY).await {
            Ok(b) => b,
            Err(e) => return text(e.status(), format!("{e}\n")),
        };
        let revocation = match serde_json::from_slice::<RevokeRequest>(&body) {
            Ok(RevokeRequest {
                jti: Some(id),
                sid: None,
                exp: Some(exp),
                sub: None,
                before: None,
            }) if !id.is_empty() => Revocation::Jti { id, exp },
            Ok(RevokeRequest {
                jti: None,
                sid: Some(id),
                exp: Some(exp),
                sub: None,
                before: None,
            }) if !id.is_empty() => Revocation::Session { id, exp },
            Ok(RevokeRequest {
                jti: None,
                sid: None,
                exp: None,
                sub: Some(id),
                before,
            }) if !id.is_empty() => Revocation::Subject {
                id,
                before: before.unwrap_or_else(crate::clock::unix_now),
            },
            _ => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "expected {\"jti\": ID, \"exp\": UNIX}, {\"sid\": ID, \"exp\": UNIX} or {\"sub\": SUBJECT, \"before\": UNIX}\n".into(),
                );
            }
        };
        match self.revocations.revoke(&revocation).await {
            Ok(seq) => {
                tracing::info!(
                    seq,
                    kind = revocation.script_args().0.label(),
                    "revocation accepted on the admin port"
                );
                let mut r = Response::new(Full::new(Bytes::from(format!("{{\"seq\":{seq}}}\n"))));
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r
            }
            Err(e) => {
                tracing::warn!(error = %e, "revocation through the admin port failed");
                text(StatusCode::SERVICE_UNAVAILABLE, format!("revocation failed: {e}\n"))
            }
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

impl hyper::service::Service<Request<Incoming>> for AdminService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if req.method() == Method::POST && req.uri().path() == "/revoke" {
            let this = self.clone();
            return Box::pin(async move { Ok(this.revoke(req).await) });
        }
        let response = self.answer(req.method(), req.uri().path());
        Box::pin(std::future::ready(Ok(response)))
    }
}
