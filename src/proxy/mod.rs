//! The proxy service: framing checks -> normalise -> route policy ->
//! authenticate -> revocation -> authorize -> prepare headers -> forward ->
//! record. One hand-written hyper `Service`.

mod decide;
pub mod forward;
pub mod headers;
pub mod metrics;
pub mod request;
pub mod request_id;
pub mod respond;
mod snapshot;
pub mod tunnel;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use arc_swap::ArcSwap;
use prometheus::Registry;

use self::metrics::RequestMetrics;
use self::respond::{Rejection, respond};
use crate::auth::Claims;
use crate::auth::VerifyMetrics;
use crate::backchannel::Backchannel;
use crate::browser::Browser;
use crate::metrics::Reason;
use crate::revocation::Revocations;
use crate::server::Lease;
use crate::session::http::Endpoint;
use crate::session::{self, Sessions};

pub use self::decide::Decision;
pub use self::snapshot::Snapshot;

/// Response body: the app's streamed body, or a small body of our own.
pub type ProxyBody = Either<Incoming, Full<Bytes>>;

/// The request path: the reloadable part behind one atomic pointer, plus
/// what lives as long as the process (the revocation mirror, metrics).
pub struct Proxy {
    current: ArcSwap<Snapshot>,
    revocations: Revocations,
    requests: RequestMetrics,
    verify: VerifyMetrics,
    sessions: Option<Arc<Sessions>>,
    backchannel: Option<Arc<Backchannel>>,
    browser: Option<Arc<Browser>>,
}

impl Proxy {
    /// The request path serving `snapshot`; registers its metrics on `registry`.
    pub fn new(snapshot: Snapshot, revocations: Revocations, registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(Proxy {
            current: ArcSwap::from_pointee(snapshot),
            revocations,
            requests: RequestMetrics::new(registry)?,
            verify: VerifyMetrics::new(registry)?,
            sessions: None,
            backchannel: None,
            browser: None,
        })
    }

    /// Answers the session endpoints (refresh, logout, JWKS) before routing.
    pub fn with_sessions(mut self, sessions: Arc<Sessions>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// Signs browsers in on the routes `browser` covers (cookies, in-line
    /// refresh, redirects) and answers its endpoints under the session prefix.
    pub fn with_browser(mut self, browser: Arc<Browser>) -> Self {
        self.browser = Some(browser);
        self
    }

    /// Answers OIDC back-channel logout requests at its path, before routing.
    pub fn with_backchannel(mut self, backchannel: Arc<Backchannel>) -> Self {
        self.backchannel = Some(backchannel);
        self
    }

    /// The snapshot requests are served from now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Serves new requests from `snapshot`; requests in flight finish on the old one.
    pub fn replace(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }

    /// The service for one accepted connection.
    pub fn service(self: &Arc<Self>, peer: SocketAddr, tls: bool, lease: Lease) -> ProxyService {
        ProxyService {
            proxy: self.clone(),
            peer,
            scheme: if tls { "https" } else { "http" },
            lease,
        }
    }

    async fn handle(&self, req: Request<Incoming>, conn: &ProxyService) -> Response<ProxyBody> {
        let peer = conn.peer;
        let started = Instant::now();
        // Cheap clones (no allocation for standard methods; the URI is shared
        // bytes), kept so a rejection can be logged after `req` is consumed.
        let method = req.method().clone();
        let uri = req.uri().clone();
        let request_id = request_id::for_request(req.headers());
        // One snapshot for the whole request, even if a reload lands meanwhile.
        let snapshot = self.current.load_full();
        let mut response = match self.serve(&snapshot, req, conn, &request_id).await {
            Ok(served) => {
                let elapsed = started.elapsed();
                self.requests.record(served.reason, elapsed);
                if snapshot.access_log {
                    // The path only (a query may carry a token), never a
                    // header value; the subject is the verified one.
                    tracing::info!(
                        target: "tokengate::access",
                        status = served.response.status().as_u16(),
                        reason = served.reason.label(),
                        method = %method,
                        path = uri.path(),
                        subject = served.subject.as_ref().and_then(|c| c.subject()).unwrap_or("-"),
                        latency_ms = elapsed.as_secs_f64() * 1000.0,
                        upstream_ms = served.upstream.map_or(0.0, |d| d.as_secs_f64() * 1000.0),
                        request_id = request_id.to_str().unwrap_or("-"),
                        peer = %peer.ip(),
                        "request served"
                    );
                }
                served.response
            }
            Err(rejection) => {
                let reason = rejection.reason();
                let response = respond(&rejection, &snapshot.realm);
                let elapsed = started.elapsed();
                self.requests.record(reason, elapsed);
                // One line per rejected request, access log or not.
                tracing::info!(
                    target: "tokengate::access",
                    status = response.status().as_u16(),
                    reason = reason.label(),
                    detail = %rejection,
                    method = %method,
                    path = uri.path(),
                    latency_ms = elapsed.as_secs_f64() * 1000.0,
                    request_id = request_id.to_str().unwrap_or("-"),
                    peer = %peer.ip(),
                    "request rejected"
                );
                response.map(Either::Right)
            }
        };
        if !response.headers().contains_key(request_id::X_REQUEST_ID) {
            response.headers_mut().insert(request_id::X_REQUEST_ID, request_id);
        }
        response
    }

    async fn serve(
        &self,
        snapshot: &Snapshot,
        mut req: Request<Incoming>,
        conn: &ProxyService,
        request_id: &http::HeaderValue,
    ) -> Result<Served, Rejection> {
        let (normalised, claims, upgrade, cookies) = match self.decide(snapshot, &req).await? {
            Decision::Forward {
                normalised,
                claims,
                upgrade,
                cookies,
            } => (normalised, claims, upgrade, cookies),
            Decision::SignIn { return_to } => {
                let response = match &self.browser {
                    Some(b) => b.sign_in(&snapshot.auth, &return_to, req.headers()),
                    None => session::http::error(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
                };
                return Ok(Served {
                    reason: Reason::SignIn,
                    response: response.map(Either::Right),
                    subject: None,
                    upstream: None,
                });
            }
            // Boxed: the session endpoints' future is several kilobytes, and
            // inline it would size (and be copied with) every request's.
            Decision::Session(endpoint) => return Ok(Box::pin(self.session_endpoint(snapshot, endpoint, req)).await),
            Decision::BackchannelLogout => return Ok(Box::pin(self.backchannel_endpoint(snapshot, req)).await),
        };
        let reason = if claims.is_some() {
            Reason::Authorized
        } else {
            Reason::Public
        };
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        let host = headers::client_host(&req);
        *req.uri_mut() = snapshot.upstream_uri(req.uri(), normalised)?;
        *req.version_mut() = Version::HTTP_11;
        let h = req.headers_mut();
        headers::strip_hop_by_hop(h, upgrade.is_some());
        headers::strip_client_headers(h, snapshot.http.header_names, &snapshot.owned, &snapshot.http.strip);
        headers::strip_identity(h, &snapshot.identity);
        if let Some(b) = &self.browser {
            b.strip_cookies(h);
        }
        if let Some(claims) = &claims {
            headers::inject_identity(h, &snapshot.identity, claims);
        }
        if let Some(host) = &host {
            h.insert(http::header::HOST, host.clone());
        }
        headers::set_forwarded(h, conn.peer.ip(), conn.scheme, host);
        h.insert(request_id::X_REQUEST_ID, request_id.clone());

        let sent = Instant::now();
        // Boxed: the exchange's future (connection checkout, resend, timeout)
        // is kilobytes; inline, every request's future would carry it, and
        // hyper moves that future into a box of its own (a copy of its whole
        // size, measured in docs/benchmarks.md). One allocation is cheaper.
        let sent_upstream = Box::pin(snapshot.upstream.send(req)).await;
        let mut response = match sent_upstream {
            Ok(r) => r,
            // A browser's refreshed cookies go out with a failure too.
            Err(e) if !cookies.is_empty() => return Err(Rejection::Refreshed(Box::new(e.into()), cookies)),
            Err(e) => return Err(e.into()),
        };
        let upstream = sent.elapsed();
        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if switching {
            // The app must switch to exactly the protocol the client asked
            // for and this route allows; anything else would be a tunnel
            // nobody judged.
            let answered = response
                .headers()
                .get(http::header::UPGRADE)
                .and_then(|v| v.to_str().ok());
            let (Some(asked), Some(client_upgrade), Some(answered)) = (&upgrade, client_upgrade, answered) else {
                return Err(Rejection::Upstream(forward::UpstreamError::Protocol));
            };
            if !answered.trim().eq_ignore_ascii_case(asked) {
                return Err(Rejection::Upstream(forward::UpstreamError::Protocol));
            }
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(tunnel::run(
                client_upgrade,
                upstream_upgrade,
                conn.lease.clone(),
                snapshot.tunnel_idle_timeout,
            ));
        }
        headers::strip_hop_by_hop(response.headers_mut(), switching);
        if let Some(b) = &self.browser {
            b.finish_response(response.headers_mut(), cookies);
        }
        Ok(Served {
            reason,
            response: response.map(Either::Left),
            subject: claims,
            upstream: Some(upstream),
        })
    }

    /// Answers a session endpoint (refresh, logout, JWKS), or one of
    /// browser sign-in's (callback, login, a browser's sign-out).
    async fn session_endpoint(&self, snapshot: &Snapshot, endpoint: Endpoint, req: Request<Incoming>) -> Served {
        if let Some(b) = &self.browser {
            let (method, uri, headers) = (req.method(), req.uri(), req.headers());
            let browser_logout = endpoint == Endpoint::Logout
                && !headers.contains_key(http::header::AUTHORIZATION)
                && (b.refresh_cookie(headers).is_some() || b.access_cookie(headers).is_some());
            let response = match endpoint {
                Endpoint::Callback => Some(b.callback(&snapshot.auth, method, uri, headers).await),
                Endpoint::Login => Some(b.login(&snapshot.auth, method, uri, headers)),
                Endpoint::Logout if browser_logout => Some(b.logout(&snapshot.auth, method, headers).await),
                _ => None,
            };
            if let Some(response) = response {
                return Served {
                    reason: Reason::BrowserEndpoint,
                    response: response.map(Either::Right),
                    subject: None,
                    upstream: None,
                };
            }
        }
        let response = match &self.sessions {
            Some(sessions) => {
                let caller = if endpoint.needs_caller() {
                    Some(self.caller(snapshot, &req).await)
                } else {
                    None
                };
                session::http::serve(sessions, endpoint, req, caller, &snapshot.realm).await
            }
            // `decide` names an endpoint only when sessions are configured.
            None => session::http::error(http::StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
        };
        Served {
            reason: Reason::SessionEndpoint,
            response: response.map(Either::Right),
            subject: None,
            upstream: None,
        }
    }
}

impl Proxy {
    /// Answers the OIDC back-channel logout receiver's path.
    async fn backchannel_endpoint(&self, snapshot: &Snapshot, req: Request<Incoming>) -> Served {
        let response = match &self.backchannel {
            Some(b) => b.serve(&snapshot.auth, req).await,
            // `decide` names the receiver only when it is configured.
            None => session::http::error(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
        };
        Served {
            reason: Reason::BackchannelLogout,
            response: response.map(Either::Right),
            subject: None,
            upstream: None,
        }
    }
}

/// A request the proxy answered without a rejection.
struct Served {
    reason: Reason,
    response: Response<ProxyBody>,
    /// The verified claims, on a protected route.
    subject: Option<Arc<Claims>>,
    /// Time to the app's response head, when the request was forwarded.
    upstream: Option<std::time::Duration>,
}

/// The per-connection service: the shared proxy plus who is calling.
#[derive(Clone)]
pub struct ProxyService {
    proxy: Arc<Proxy>,
    peer: SocketAddr,
    scheme: &'static str,
    /// The connection's slot, handed to a tunnel if the connection becomes one.
    lease: Lease,
}

impl hyper::service::Service<Request<Incoming>> for ProxyService {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.proxy.handle(req, &this).await) })
    }
}
