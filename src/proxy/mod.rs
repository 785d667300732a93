//! The proxy service: framing checks -> normalise -> route policy ->
//! authenticate -> revocation -> authorize -> prepare headers -> forward ->
//! record. One hand-written hyper `Service`.

pub mod forward;
pub mod headers;
pub mod metrics;
pub mod request;
pub mod request_id;
pub mod respond;
pub mod tunnel;

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::uri::{PathAndQuery, Uri};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use arc_swap::ArcSwap;
use prometheus::Registry;

use self::forward::Upstream;
use self::metrics::RequestMetrics;
use self::respond::{Rejection, respond};
use crate::auth::VerifyMetrics;
use crate::auth::{Authenticator, Claims, authorize, has_query_param, remove_query_param};
use crate::clock::unix_ms;
use crate::config::{Access, AuthConfig, CaseAmbiguousPaths, HttpRules, IdentityHeaders, PathParameters, TokenSource};
use crate::jwks::KeyStore;
use crate::metrics::Reason;
use crate::path;
use crate::revocation::Revocations;
use crate::route::RoutePolicy;
use crate::server::Lease;
use crate::session::http::Endpoint;
use crate::session::{self, Sessions};

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
}

/// Everything a reload can change, built whole and swapped whole: a request
/// sees one configuration from start to end.
pub struct Snapshot {
    policy: RoutePolicy,
    auth: Authenticator,
    identity: IdentityHeaders,
    /// Query parameters that may carry a token, removed before forwarding.
    token_query_params: Vec<String>,
    upstream: Arc<Upstream>,
    realm: String,
    http: HttpRules,
    /// Lower-case names the proxy owns whatever `http` says: the fixed ones,
    /// the identity headers and the token source headers.
    owned_base: Vec<String>,
    /// One log line per forwarded request too (`access_log`), not only per
    /// rejection.
    access_log: bool,
    /// A tunnel with no byte moving for this long is closed.
    tunnel_idle_timeout: std::time::Duration,
    /// `owned_base` plus the stripped headers: no client header may spell
    /// one of these with other punctuation.
    owned: Vec<String>,
}

impl Snapshot {
    /// Assembles the reloadable request path from validated parts; issuers
    /// with a JWKS URL read their keys from `stores`.
    pub fn new(
        policy: RoutePolicy,
        auth: &AuthConfig,
        stores: &[Arc<KeyStore>],
        max_token_bytes: usize,
        upstream: Arc<Upstream>,
    ) -> Self {
        let token_query_params = auth
            .sources
            .iter()
            .filter_map(|s| match s {
                TokenSource::Query(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        let owned_base: Vec<String> = headers::OWNED
            .iter()
            .map(|n| (*n).to_owned())
            .chain(auth.identity.names().map(|n| n.as_str().to_owned()))
            .chain(auth.sources.iter().filter_map(|s| match s {
                TokenSource::Header(name) => Some(name.as_str().to_owned()),
                _ => None,
            }))
            .collect();
        Snapshot {
            policy,
            auth: Authenticator::new(auth, stores, max_token_bytes),
            identity: auth.identity.clone(),
            token_query_params,
            upstream,
            realm: auth.realm.clone(),
            http: HttpRules::default(),
            tunnel_idle_timeout: crate::config::DEFAULT_TUNNEL_IDLE_TIMEOUT,
            access_log: false,
            owned: owned_base.clone(),
            owned_base,
        }
        .with_http(HttpRules::default())
    }

    /// Logs every request, not only rejections (`access_log: true`).
    pub fn with_access_log(mut self, on: bool) -> Self {
        self.access_log = on;
        self
    }

    /// Closes tunnels idle for `timeout` (`limits.tunnel_idle_timeout`).
    pub fn with_tunnel_idle_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.tunnel_idle_timeout = timeout;
        self
    }

    /// Applies the `http:` rules (the defaults otherwise).
    pub fn with_http(mut self, http: HttpRules) -> Self {
        self.owned = self.owned_base.clone();
        self.owned.extend(http.strip.iter().map(|n| n.as_str().to_owned()));
        self.http = http;
        self
    }

    /// The upstream client, reused by a reload that keeps the upstream.
    pub fn upstream(&self) -> &Arc<Upstream> {
        &self.upstream
    }
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
        })
    }

    /// Answers the session endpoints (refresh, logout, JWKS) before routing.
    pub fn with_sessions(mut self, sessions: Arc<Sessions>) -> Self {
        self.sessions = Some(sessions);
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
        let (normalised, claims, upgrade) = match self.decide(snapshot, &req).await? {
            Decision::Forward {
                normalised,
                claims,
                upgrade,
            } => (normalised, claims, upgrade),
            Decision::Session(endpoint) => return Ok(self.session_endpoint(snapshot, endpoint, req).await),
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
        if let Some(claims) = &claims {
            headers::inject_identity(h, &snapshot.identity, claims);
        }
        if let Some(host) = &host {
            h.insert(http::header::HOST, host.clone());
        }
        headers::set_forwarded(h, conn.peer.ip(), conn.scheme, host);
        h.insert(request_id::X_REQUEST_ID, request_id.clone());

        let sent = Instant::now();
        let mut response = snapshot.upstream.send(req).await?;
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
        Ok(Served {
            reason,
            response: response.map(Either::Left),
            subject: claims,
            upstream: Some(upstream),
        })
    }

    /// The whole decision for one request, without I/O beyond a JWKS
    /// refetch for an unknown kid: framing checks, the path's normal form,
    /// the route (a session endpoint is a kind of route), case ambiguity,
    /// then token, revocation and requirements, and which protocol switch
    /// the route allows. The proxy acts on it; tests call it without sockets.
    pub async fn decide<B>(&self, snapshot: &Snapshot, req: &Request<B>) -> Result<Decision, Rejection> {
        request::check(req)?;
        let mut normalised: Option<String> = match path::normalise(req.uri().path())? {
            Cow::Borrowed(_) => None,
            Cow::Owned(p) => Some(p),
        };
        let strip = snapshot.http.path_parameters == PathParameters::Strip;
        if let Cow::Owned(p) = path::parameters(normalised.as_deref().unwrap_or(req.uri().path()), strip)? {
            normalised = Some(p);
        }
        let path = normalised.as_deref().unwrap_or(req.uri().path());
        if let Some(sessions) = &self.sessions
            && let Some(endpoint) = sessions.endpoint(path)
        {
            return Ok(Decision::Session(endpoint));
        }
        let rule = snapshot.policy.rule(req.method(), path);
        if snapshot.http.case_ambiguous_paths == CaseAmbiguousPaths::Reject
            && snapshot.policy.case_ambiguous(req.method(), path, rule)
        {
            return Err(Rejection::BadPath(path::PathError::CaseAmbiguous));
        }
        let claims = self
            .judge(snapshot, &rule.access, req.headers(), req.uri().query())
            .await?;
        // Only after the full decision, and only to a protocol this route
        // allows; any other `Upgrade` is dropped with the hop-by-hop headers.
        let upgrade = headers::requested_upgrade(req)
            .filter(|p| rule.allows_upgrade(p))
            .map(str::to_owned);
        Ok(Decision::Forward {
            normalised,
            claims,
            upgrade,
        })
    }

    /// Answers a session endpoint (refresh, logout, JWKS).
    async fn session_endpoint(&self, snapshot: &Snapshot, endpoint: Endpoint, req: Request<Incoming>) -> Served {
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

    /// The decision for a request whose path is already normalised: which
    /// route rule applies, then (unless public) extract and verify the token,
    /// check the revocation mirror and the route's requirements. Returns the
    /// claims, or `None` on a public route. No I/O except a JWKS refetch for
    /// an unknown kid; `benches/decision.rs` measures it alone.
    pub async fn admit(
        &self,
        snapshot: &Snapshot,
        method: &http::Method,
        path: &str,
        headers: &http::HeaderMap,
        query: Option<&str>,
    ) -> Result<Option<Arc<Claims>>, Rejection> {
        self.judge(snapshot, snapshot.policy.access(method, path), headers, query)
            .await
    }

    /// The decision once the route rule is known.
    async fn judge(
        &self,
        snapshot: &Snapshot,
        access: &Access,
        headers: &http::HeaderMap,
        query: Option<&str>,
    ) -> Result<Option<Arc<Claims>>, Rejection> {
        match access {
            Access::Public => Ok(None),
            Access::Token(requirements) => {
                let claims = self.authenticated(snapshot, headers, query).await?;
                authorize(requirements, &claims)?;
                Ok(Some(claims))
            }
        }
    }

    /// The request's verified claims, if the mirror does not revoke them.
    async fn authenticated(
        &self,
        snapshot: &Snapshot,
        headers: &http::HeaderMap,
        query: Option<&str>,
    ) -> Result<Arc<Claims>, Rejection> {
        let claims = snapshot.auth.authenticate(headers, query, &self.verify).await?;
        self.revocations.check(claims.token_ref(), unix_ms())?;
        Ok(claims)
    }

    /// The request's verified, unrevoked claims, for the logout endpoints.
    async fn caller(&self, snapshot: &Snapshot, req: &Request<Incoming>) -> Result<Arc<Claims>, String> {
        self.authenticated(snapshot, req.headers(), req.uri().query())
            .await
            .map_err(|e| e.to_string())
    }
}

impl Snapshot {
    /// The upstream URI in origin form (HTTP/1.1 to the app): the normalised
    /// path and the query without any token parameter.
    fn upstream_uri(&self, original: &Uri, normalised: Option<String>) -> Result<Uri, Rejection> {
        let query = original.query();
        let stripped_query: Option<Option<String>> = match query {
            // In any spelling the app decodes to the parameter's name
            // (`access%5Ftoken`, `Access.Token`).
            Some(q) if self.token_query_params.iter().any(|p| has_query_param(q, p)) => Some(
                self.token_query_params
                    .iter()
                    .try_fold(q.to_owned(), |acc, p| remove_query_param(&acc, p)),
            ),
            _ => None,
        };
        let path_and_query = match (normalised, stripped_query) {
            (None, None) => original
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
            (normalised, stripped) => {
                let path = normalised.as_deref().unwrap_or(original.path());
                let query = match &stripped {
                    Some(q) => q.as_deref(),
                    None => query,
                };
                let text = match query {
                    Some(q) => format!("{path}?{q}"),
                    None => path.to_owned(),
                };
                PathAndQuery::try_from(text).map_err(|_| Rejection::BadPath(path::PathError::BadPercentEncoding))?
            }
        };
        Ok(Uri::from(path_and_query))
    }
}

/// What the policy decided for one request.
#[derive(Debug)]
pub enum Decision {
    /// Forward to the app.
    Forward {
        /// The path the app receives, when it differs from the one sent.
        normalised: Option<String>,
        /// The verified claims; `None` on a public route.
        claims: Option<Arc<Claims>>,
        /// The protocol the client may switch to (`Upgrade`), if the route allows it.
        upgrade: Option<String>,
    },
    /// A session endpoint answers it (refresh, logout, JWKS).
    Session(Endpoint),
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
