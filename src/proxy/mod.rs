//! The proxy service: normalise -> route policy -> authenticate -> revocation
//! -> authorize -> prepare headers -> forward -> record. One hand-written hyper `Service`.

pub mod forward;
pub mod headers;
pub mod respond;

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::uri::{PathAndQuery, Scheme, Uri};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use self::forward::Upstream;
use self::respond::{Rejection, respond};
use crate::auth::{Authenticator, Claims, authorize, remove_query_param};
use crate::config::{Access, AuthConfig, IdentityHeaders, TokenSource};
use crate::metrics::{Metrics, Reason};
use crate::path;
use crate::revocation::{Revocations, unix_ms};
use crate::route::RoutePolicy;

/// Response body: the app's streamed body, or a small body of our own.
pub type ProxyBody = Either<Incoming, Full<Bytes>>;

/// Everything a request needs, built once and shared by every connection.
pub struct Proxy {
    policy: RoutePolicy,
    auth: Authenticator,
    revocations: Revocations,
    identity: IdentityHeaders,
    /// Query parameters that may carry a token, removed before forwarding.
    token_query_params: Vec<String>,
    upstream: Upstream,
    metrics: Arc<Metrics>,
    realm: String,
}

impl Proxy {
    /// Assembles the request path from its validated parts.
    pub fn new(
        policy: RoutePolicy,
        auth: AuthConfig,
        max_token_bytes: usize,
        revocations: Revocations,
        upstream: Upstream,
        metrics: Arc<Metrics>,
    ) -> Self {
        let token_query_params = auth
            .sources
            .iter()
            .filter_map(|s| match s {
                TokenSource::Query(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        let identity = auth.identity.clone();
        let realm = auth.realm.clone();
        Proxy {
            policy,
            auth: Authenticator::new(auth, max_token_bytes),
            revocations,
            identity,
            token_query_params,
            upstream,
            metrics,
            realm,
        }
    }

    /// The service for one accepted connection.
    pub fn service(self: &Arc<Self>, peer: SocketAddr, tls: bool) -> ProxyService {
        ProxyService {
            proxy: self.clone(),
            peer,
            scheme: if tls { "https" } else { "http" },
        }
    }

    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr, scheme: &'static str) -> Response<ProxyBody> {
        let started = Instant::now();
        // Cheap clones (no allocation for standard methods; the URI is shared
        // bytes), kept so a rejection can be logged after `req` is consumed.
        let method = req.method().clone();
        let uri = req.uri().clone();
        let (reason, response) = match self.serve(req, peer, scheme).await {
            Ok((reason, response)) => (reason, response.map(Either::Left)),
            Err(rejection) => {
                let reason = rejection.reason();
                let response = respond(&rejection, &self.realm);
                // One line per rejected request; the path only (a query may
                // carry a token), never a header value.
                tracing::info!(
                    target: "tokengate::access",
                    status = response.status().as_u16(),
                    reason = reason.label(),
                    detail = %rejection,
                    method = %method,
                    path = uri.path(),
                    peer = %peer.ip(),
                    "request rejected"
                );
                (reason, response.map(Either::Right))
            }
        };
        self.metrics.record_request(reason, started.elapsed());
        response
    }

    async fn serve(
        &self,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        scheme: &'static str,
    ) -> Result<(Reason, Response<Incoming>), Rejection> {
        let normalised: Option<String> = match path::normalise(req.uri().path())? {
            Cow::Borrowed(_) => None,
            Cow::Owned(p) => Some(p),
        };
        let path = normalised.as_deref().unwrap_or(req.uri().path());
        let access = self.policy.access(req.method(), path);
        let claims: Option<Claims> = match access {
            Access::Public => None,
            Access::Token(requirements) => {
                let claims = self
                    .auth
                    .authenticate(req.headers(), req.uri().query(), &self.metrics)?;
                self.revocations.check(&claims, unix_ms())?;
                authorize(requirements, &claims)?;
                Some(claims)
            }
        };
        let reason = if claims.is_some() {
            Reason::Authorized
        } else {
            Reason::Public
        };

        let upgrade = headers::is_upgrade(&req);
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let host = headers::client_host(&req);
        *req.uri_mut() = self.upstream_uri(req.uri(), normalised)?;
        *req.version_mut() = Version::HTTP_11;
        let h = req.headers_mut();
        headers::strip_hop_by_hop(h, upgrade);
        headers::strip_identity(h, &self.identity);
        if let Some(claims) = &claims {
            headers::inject_identity(h, &self.identity, claims);
        }
        if let Some(host) = &host {
            h.insert(http::header::HOST, host.clone());
        }
        headers::set_forwarded(h, peer.ip(), scheme, host);

        let mut response = self.upstream.send(req).await?;
        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if let (true, Some(client_upgrade)) = (switching, client_upgrade) {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((client, upstream)) => {
                        let mut client = TokioIo::new(client);
                        let mut upstream = TokioIo::new(upstream);
                        // Either side closing ends the tunnel; errors here are
                        // ordinary disconnects.
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "protocol upgrade failed"),
                }
            });
        }
        headers::strip_hop_by_hop(response.headers_mut(), switching && upgrade);
        Ok((reason, response))
    }

    /// The upstream URI: upstream authority, the normalised path, and the
    /// query without any token parameter.
    fn upstream_uri(&self, original: &Uri, normalised: Option<String>) -> Result<Uri, Rejection> {
        let query = original.query();
        let stripped_query: Option<Option<String>> = match query {
            Some(q) if self.token_query_params.iter().any(|p| q.contains(p.as_str())) => Some(
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
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.upstream.authority().clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| Rejection::BadPath(path::PathError::BadPercentEncoding))
    }
}

/// The per-connection service: the shared proxy plus who is calling.
#[derive(Clone)]
pub struct ProxyService {
    proxy: Arc<Proxy>,
    peer: SocketAddr,
    scheme: &'static str,
}

impl hyper::service::Service<Request<Incoming>> for ProxyService {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.proxy.handle(req, this.peer, this.scheme).await) })
    }
}
