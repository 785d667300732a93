//! Settings of the serving side: upstream, listeners and TLS, HTTP
//! strictness rules, limits, shutdown and reload.

use super::*;

/// Hot reload settings (SIGHUP always reloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadConfig {
    /// Poll the config file and the files it names for changes.
    pub watch: bool,
    /// How often they are polled.
    pub watch_interval: Duration,
}

/// The upstream app and how we talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// `host:port` of the app; plain HTTP/1.1 (the app shares the pod).
    pub authority: Authority,
    /// A refused or hung connect becomes a 502 after this long.
    pub connect_timeout: Duration,
    /// Time allowed until the upstream's response headers arrive; then 504.
    pub request_timeout: Duration,
    /// Pooled keep-alive connections are closed after this much idleness.
    pub pool_idle_timeout: Duration,
    /// Idle pooled connections kept per upstream.
    pub pool_max_idle: usize,
    /// Most connections open to the app at once: each HTTP/2 stream needs its
    /// own HTTP/1.1 connection, so without a cap one client could open
    /// `max_concurrent_streams` connections per connection it holds.
    pub max_connections: usize,
}

/// Inbound TLS material, parsed at load so a bad file fails before any bind.
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub certs: Vec<CertificateDer<'static>>,
    /// The private key of the leaf certificate.
    pub key: PrivateKeyDer<'static>,
    /// CA certificates a client must present a certificate from (mutual
    /// TLS); `None` asks for no client certificate.
    pub client_ca: Option<Vec<CertificateDer<'static>>>,
}

impl Clone for TlsConfig {
    fn clone(&self) -> Self {
        TlsConfig {
            certs: self.certs.clone(),
            key: self.key.clone_key(),
            client_ca: self.client_ca.clone(),
        }
    }
}

/// The admin listener.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub listen: SocketAddr,
}

/// Rules for request spellings that the app may read differently from us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRules {
    /// Which client header names are forwarded.
    pub header_names: HeaderNames,
    /// Client headers never forwarded (`DEFAULT_STRIP_HEADERS` unless set).
    pub strip: Vec<HeaderName>,
    /// What happens to a path with `;` parameters in a segment.
    pub path_parameters: PathParameters,
    /// What happens to a path that a case-insensitive router would serve
    /// under another route rule than the one it matches.
    pub case_ambiguous_paths: CaseAmbiguousPaths,
}

impl Default for HttpRules {
    fn default() -> Self {
        HttpRules {
            header_names: HeaderNames::default(),
            strip: DEFAULT_STRIP_HEADERS
                .iter()
                .map(|n| HeaderName::from_static(n))
                .collect(),
            path_parameters: PathParameters::default(),
            case_ambiguous_paths: CaseAmbiguousPaths::default(),
        }
    }
}

/// `limits.tunnel_idle_timeout` when unset.
pub const DEFAULT_TUNNEL_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Client headers removed by default (`http.strip_headers`): only a trusted
/// proxy may set them, and apps act on them. Some rewrite the path or the
/// method the app routes on (`X-Original-URL`, `X-HTTP-Method-Override`),
/// others the client address, scheme or prefix it trusts.
pub const DEFAULT_STRIP_HEADERS: [&str; 20] = [
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-forwarded-ssl",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-forwarded-method",
    "x-original-url",
    "x-original-uri",
    "x-original-method",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-url-scheme",
];

/// `/ADMIN/x` matches no `/admin/` rule, but Express (by default), ASP.NET
/// and IIS route it to `/admin/x`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CaseAmbiguousPaths {
    /// Refused with 400 when the rule matched ignoring case differs.
    #[default]
    Reject,
    /// Judged as sent: for apps that route case-sensitively.
    Allow,
}

/// Header names beyond letters, digits and `-`: CGI, FastCGI, WSGI, PHP and
/// Rack map every other character to `_` (`X_Auth_Subject`, `X.Auth.Subject`
/// and `X-Auth-Subject` all become `HTTP_X_AUTH_SUBJECT`), so such names can
/// spoof ours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HeaderNames {
    /// Only letters, digits and `-` are forwarded (nginx's defaults,
    /// `ignore_invalid_headers` without `underscores_in_headers`).
    #[default]
    Strict,
    /// Any valid name is forwarded, unless it names a header the proxy owns
    /// once every character other than a letter or digit reads as `-`.
    Lenient,
}

/// `;` path parameters (`/admin;jsessionid=1/panel`): Java servers strip
/// them before routing, other servers keep them as part of the segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PathParameters {
    /// A path with `;` (or `%3B`) in it is refused with 400.
    #[default]
    Reject,
    /// Parameters are removed from every segment; the policy judges, and the
    /// app receives, the path without them.
    Strip,
}

/// Resource limits on the proxy listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request head (HTTP/1 read buffer, HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Longest token accepted; longer ones are refused before any decoding.
    pub max_token_bytes: usize,
    /// Time a client has to send a complete request head. hyper starts this
    /// timer whenever an HTTP/1 connection waits for a request, so it is also
    /// the keep-alive idle limit for HTTP/1.
    pub header_read_timeout: Duration,
    /// A connection with no new request for this long is closed gracefully.
    pub idle_timeout: Duration,
    /// A WebSocket (or other upgraded) tunnel with no byte moving either way
    /// for this long is closed, so idle tunnels cannot hold slots for ever.
    pub tunnel_idle_timeout: Duration,
    /// Time a client has to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Connections served at once; further clients wait in the accept queue.
    pub max_connections: usize,
    /// HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
}

/// Graceful shutdown.
#[derive(Debug, Clone)]
pub struct ShutdownConfig {
    /// After SIGTERM, keep accepting for this long with `/readyz` at 503, so
    /// load balancers stop sending before the port closes.
    pub delay: Duration,
    /// In-flight requests get this long to finish; then connections are cut.
    pub drain_timeout: Duration,
}

/// Decision mode: the auth listener an ingress or a mesh asks (nginx
/// `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`, Envoy
/// `ext_authz` over HTTP and gRPC).
#[derive(Clone)]
pub struct DecisionConfig {
    /// Listen address (loopback by default).
    pub listen: SocketAddr,
    /// Shared secret every caller presents in `X-Tokengate-Secret`; when
    /// `None`, only loopback callers are served.
    pub secret: Option<Vec<u8>>,
    /// How long an ingress may cache an allow (never past the token's
    /// `exp`); zero, the default, makes every answer `no-store`.
    pub cache_max_age: Duration,
    /// TLS for the decision listener; with a client CA, only callers with a
    /// certificate from it are served (mutual TLS).
    pub tls: Option<TlsConfig>,
}

impl fmt::Debug for DecisionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecisionConfig")
            .field("listen", &self.listen)
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field("cache_max_age", &self.cache_max_age)
            .field("tls", &self.tls.is_some())
            .field("client_ca", &self.tls.as_ref().is_some_and(|t| t.client_ca.is_some()))
            .finish()
    }
}
