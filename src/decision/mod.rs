//! Decision mode: the proxy's decision (normalise, route, extract, verify,
//! revocation, authorize) answered to an ingress or a mesh that forwards
//! the request itself. One listener, four front doors (`original.rs`), the
//! same configuration, snapshot and reloads as the proxy, and its own
//! metric families with a `mode` label (`metrics.rs`).
//!
//! What changes with the ingress as the client: the request to judge is
//! named by the ingress's headers (a request without them is refused); the
//! path must already be in normal form and header names must not disguise
//! owned ones, because the ingress forwards both as the client sent them
//! and nothing can be stripped or rewritten here; and the caller must be
//! the ingress (a shared secret, or loopback when none is set).

pub mod answer;
mod grpc;
pub mod metrics;
pub mod original;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use prometheus::Registry;
use tonic::codegen::Service as _;

use self::grpc::GrpcCheck;
use self::metrics::DecisionMetrics;
use self::original::{FrontDoor, SECRET_HEADER};
use crate::auth::Claims;
use crate::clock::unix_now;
use crate::config::DecisionConfig;
use crate::metrics::Reason;
use crate::path::PathError;
use crate::proxy::request::BadRequest;
use crate::proxy::respond::{Rejection, respond};
use crate::proxy::{Decision, Proxy, Snapshot};

/// The answer body: ours, or tonic's for gRPC.
pub type DecisionBody = Either<Full<Bytes>, tonic::body::Body>;

/// The body of the answer for a session endpoint path.
const SESSION_ENDPOINT_BODY: &str = "session endpoints are served on the proxy listener; route them to it";

/// The decision shared by every front door and every connection.
pub struct Decider {
    proxy: Arc<Proxy>,
    metrics: DecisionMetrics,
    cache_max_age: Duration,
    secret: Option<Vec<u8>>,
    /// The listener verifies client certificates: a connection that got
    /// through the handshake is the ingress.
    client_certificates: bool,
}

/// What the decision says about one original request.
pub enum Verdict {
    /// Allowed; the verified claims on a protected route.
    Allow(Option<Arc<Claims>>),
    /// Refused, with the proxy's own rejection.
    Deny(Rejection),
    /// A session endpoint or the back-channel logout receiver: those are
    /// served by the proxy listener only.
    SessionEndpoint,
}

impl Decider {
    /// The decision over `proxy`'s live snapshot; registers its metrics.
    pub fn new(
        proxy: Arc<Proxy>,
        config: &DecisionConfig,
        registry: &Registry,
    ) -> Result<Arc<Self>, prometheus::Error> {
        Ok(Arc::new(Decider {
            proxy,
            metrics: DecisionMetrics::new(registry)?,
            cache_max_age: config.cache_max_age,
            secret: config.secret.clone(),
            client_certificates: config.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        }))
    }

    /// The service for one accepted connection.
    pub fn service(self: &Arc<Self>, peer: SocketAddr) -> DecisionService {
        DecisionService {
            decider: self.clone(),
            grpc: AuthorizationServer::new(GrpcCheck(self.clone())),
            peer,
        }
    }

    /// Judges `original` as the proxy would, plus decision mode's own rules.
    pub async fn judge(&self, snapshot: &Snapshot, original: Result<Request<()>, BadRequest>) -> Verdict {
        let req = match original {
            Ok(req) => req,
            Err(e) => return Verdict::Deny(e.into()),
        };
        if snapshot.disguised_header(req.headers()).is_some() {
            return Verdict::Deny(BadRequest::DisguisedHeader.into());
        }
        match self.proxy.decide_with(snapshot, &req, false).await {
            Ok(Decision::Forward {
                normalised: Some(_), ..
            }) => Verdict::Deny(PathError::NotNormal.into()),
            // Any `Upgrade` but one protocol the route allows: the proxy
            // would drop it, but the ingress would switch on it.
            Ok(Decision::Forward { upgrade: None, .. }) if req.headers().contains_key(http::header::UPGRADE) => {
                Verdict::Deny(BadRequest::UpgradeNotAllowed.into())
            }
            Ok(Decision::Forward { claims, .. }) => Verdict::Allow(claims),
            Ok(Decision::Session(_) | Decision::BackchannelLogout) => Verdict::SessionEndpoint,
            // Never without browser sign-in, which decision mode leaves out.
            Ok(Decision::SignIn { .. }) => Verdict::Deny(Rejection::Auth(crate::auth::AuthError::MissingToken)),
            Err(rejection) => Verdict::Deny(rejection),
        }
    }

    fn record(&self, door: FrontDoor, verdict: &Verdict, started: Instant) {
        let reason = match verdict {
            Verdict::Allow(Some(_)) => Reason::Authorized,
            Verdict::Allow(None) => Reason::Public,
            Verdict::Deny(r) => r.reason(),
            Verdict::SessionEndpoint => Reason::SessionEndpoint,
        };
        self.metrics.record(door, reason, started.elapsed());
        if let Verdict::Deny(rejection) = verdict {
            tracing::info!(
                target: "tokengate::access",
                mode = door.label(),
                reason = reason.label(),
                detail = %rejection,
                "decision: refused"
            );
        }
    }

    /// The caller is the ingress: it presents the secret when one is set;
    /// without one, it passed the client-certificate check, or (neither
    /// configured) it is on loopback.
    fn trusts(&self, peer: SocketAddr, headers: &http::HeaderMap) -> bool {
        match &self.secret {
            Some(secret) => headers.get(SECRET_HEADER).is_some_and(|presented| {
                aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_bytes(), secret).is_ok()
            }),
            None => self.client_certificates || peer.ip().is_loopback(),
        }
    }

    async fn answer(
        &self,
        peer: SocketAddr,
        req: Request<Incoming>,
        grpc: AuthorizationServer<GrpcCheck>,
    ) -> Response<DecisionBody> {
        let started = Instant::now();
        let snapshot = self.proxy.snapshot();
        let Some(door) = FrontDoor::of_path(req.uri().path()) else {
            return plain(
                StatusCode::NOT_FOUND,
                "no such front door: use /nginx, /forward-auth, /envoy/... or gRPC",
            );
        };
        if !self.trusts(peer, req.headers()) {
            let verdict = Verdict::Deny(Rejection::UntrustedCaller);
            self.record(door, &verdict, started);
            return match door {
                FrontDoor::EnvoyGrpc => grpc_refusal(),
                _ => respond(&Rejection::UntrustedCaller, snapshot.realm()).map(Either::Left),
            };
        }
        if door == FrontDoor::EnvoyGrpc {
            let mut grpc = grpc;
            return match grpc.call(req).await {
                Ok(response) => response.map(Either::Right),
                Err(never) => match never {},
            };
        }
        let verdict = self.judge(&snapshot, original::from_http(door, &req)).await;
        self.record(door, &verdict, started);
        match verdict {
            Verdict::Allow(claims) => {
                let cache = answer::cache_for(self.cache_max_age, claims.as_deref(), unix_now());
                answer::allow(door, snapshot.identity(), claims.as_deref(), cache).map(Either::Left)
            }
            Verdict::Deny(rejection) => respond(&rejection, snapshot.realm()).map(Either::Left),
            Verdict::SessionEndpoint => plain(StatusCode::NOT_FOUND, SESSION_ENDPOINT_BODY),
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<DecisionBody> {
    let mut r = Response::new(Either::Left(Full::new(Bytes::from_static(text.as_bytes()))));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    r
}

/// A trailers-only gRPC answer: PERMISSION_DENIED for an untrusted caller.
fn grpc_refusal() -> Response<DecisionBody> {
    let mut r = Response::new(Either::Left(Full::new(Bytes::new())));
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", http::HeaderValue::from_static("7"));
    h.insert(
        "grpc-message",
        http::HeaderValue::from_static("this caller may not ask for decisions"),
    );
    r
}

/// The per-connection service of the decision listener.
#[derive(Clone)]
pub struct DecisionService {
    decider: Arc<Decider>,
    grpc: AuthorizationServer<GrpcCheck>,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for DecisionService {
    type Response = Response<DecisionBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.decider.answer(this.peer, req, this.grpc.clone()).await) })
    }
}
