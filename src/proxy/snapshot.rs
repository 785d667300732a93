//! The reloadable part of the request path, built whole and swapped whole.

use std::sync::Arc;

use http::uri::{PathAndQuery, Uri};

use super::forward::Upstream;
use super::headers;
use super::respond::Rejection;
use crate::auth::{Authenticator, has_query_param, remove_query_param};
use crate::config::{AuthConfig, Config, HttpRules, IdentityHeaders, TokenSource};
use crate::jwks::KeyStore;
use crate::path;
use crate::route::RoutePolicy;

/// Everything a reload can change, built whole and swapped whole: a request
/// sees one configuration from start to end.
pub struct Snapshot {
    pub(super) policy: RoutePolicy,
    pub(super) auth: Authenticator,
    pub(super) identity: IdentityHeaders,
    /// Query parameters that may carry a token, removed before forwarding.
    pub(super) token_query_params: Vec<String>,
    pub(super) upstream: Arc<Upstream>,
    pub(super) realm: String,
    pub(super) http: HttpRules,
    /// Lower-case names the proxy owns whatever `http` says: the fixed ones,
    /// the identity headers and the token source headers.
    pub(super) owned_base: Vec<String>,
    /// One log line per forwarded request too (`access_log`), not only per
    /// rejection.
    pub(super) access_log: bool,
    /// A tunnel with no byte moving for this long is closed.
    pub(super) tunnel_idle_timeout: std::time::Duration,
    /// `owned_base` plus the stripped headers: no client header may spell
    /// one of these with other punctuation.
    pub(super) owned: Vec<String>,
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

    /// This snapshot, introspecting opaque tokens for the issuer that is
    /// configured for it (counting in `metrics`).
    pub fn with_introspection(
        mut self,
        auth: &AuthConfig,
        stores: &[Arc<KeyStore>],
        max_token_bytes: usize,
        metrics: &crate::auth::IntrospectionMetrics,
    ) -> Self {
        if auth.issuers.iter().any(|i| i.introspection.is_some()) {
            self.auth = Authenticator::with_introspection(auth, stores, max_token_bytes, Some(metrics));
        }
        self
    }

    /// The request path `config` describes, over the key stores of its
    /// JWKS issuers and an upstream client: the one place it is assembled
    /// (reloads, tests and benchmarks all come through here).
    pub fn from_config(config: &Config, stores: &[Arc<KeyStore>], upstream: Arc<Upstream>) -> Self {
        Snapshot::new(
            RoutePolicy::new(config.routes.clone()),
            &config.auth,
            stores,
            config.limits.max_token_bytes,
            upstream,
        )
        .with_http(config.http.clone())
        .with_tunnel_idle_timeout(config.limits.tunnel_idle_timeout)
        .with_access_log(config.access_log)
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

    /// The realm of `WWW-Authenticate` challenges.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The identity headers this configuration sets.
    pub fn identity(&self) -> &IdentityHeaders {
        &self.identity
    }

    /// A header in `headers` the app could read as one tokengate owns
    /// though it is spelled otherwise (`http.header_names` decides how
    /// strictly); for front doors that cannot strip it.
    pub fn disguised_header<'a>(&self, headers: &'a http::HeaderMap) -> Option<&'a http::HeaderName> {
        headers::disguised_header(headers, self.http.header_names, &self.owned)
    }
}

impl Snapshot {
    /// The upstream URI in origin form (HTTP/1.1 to the app): the normalised
    /// path and the query without any token parameter.
    pub(super) fn upstream_uri(&self, original: &Uri, normalised: Option<String>) -> Result<Uri, Rejection> {
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
