//! Configuration: the YAML shape of design.md, parsed into raw types that
//! reject unknown fields, then validated into the typed [`Config`] that the
//! rest of the crate reads. Validation collects every problem with its field
//! path and line; it reads the files the config names (keys, certificates) and
//! does nothing else.

mod duration;
mod raw;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderName;
use http::Uri;
use http::uri::Authority;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use duration::{format_duration, parse_duration};

/// The development configuration compiled into the binary (`config/dev.yaml`).
pub const EMBEDDED_DEV_CONFIG: &str = include_str!("../../config/dev.yaml");
/// File name of the development HMAC secret that the embedded config names.
pub const EMBEDDED_DEV_SECRET_NAME: &str = "dev-hs256-secret.DEVELOPMENT-ONLY.txt";
const EMBEDDED_DEV_SECRET: &[u8] = include_bytes!("../../config/dev-hs256-secret.DEVELOPMENT-ONLY.txt");

/// A validated configuration: every value here has been checked.
pub struct Config {
    /// Where the proxy listener binds (the pod's public port).
    pub listen: SocketAddr,
    /// The app behind the proxy.
    pub upstream: UpstreamConfig,
    /// Inbound TLS; `None` serves plain HTTP (h1 and h2c).
    pub tls: Option<TlsConfig>,
    /// The admin listener (metrics, health), kept off the proxy port.
    pub admin: AdminConfig,
    /// Bounds that stop slow or greedy clients from pinning resources.
    pub limits: Limits,
    /// One log line per request (allowed ones too), not only per rejection.
    pub access_log: bool,
    /// How ambiguous request spellings (header names, path parameters) are treated.
    pub http: HttpRules,
    /// How SIGTERM drains.
    pub shutdown: ShutdownConfig,
    /// Token sources, issuers and keys, identity headers.
    pub auth: AuthConfig,
    /// Ordered route rules; the first match wins, no match means token required.
    pub routes: Vec<Route>,
    /// Where revocations come from and what happens when that source is stale.
    pub revocation: RevocationConfig,
    /// Token lifecycle service (sessions, refresh, logout), when enabled.
    pub sessions: Option<SessionsConfig>,
    /// Hot reload: whether and how often the config and key files are watched.
    pub reload: ReloadConfig,
    /// Human-readable origin of this config (a path, or "embedded dev config").
    pub origin: String,
    /// Every file this config read (keys, secrets, certificates), for the watcher.
    pub files: Vec<PathBuf>,
    /// The config file, when it came from one.
    pub path: Option<PathBuf>,
    /// Environment variables the config names that were unset when it was
    /// checked with [`Config::load_for_check`] (placeholders stood in);
    /// always empty for a config that can run.
    pub unset_env: Vec<String>,
}

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

/// Token verification settings.
pub struct AuthConfig {
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// The `realm` in `WWW-Authenticate`.
    pub realm: String,
    /// Where tokens are looked for, in order; the first source that has one wins.
    pub sources: Vec<TokenSource>,
    /// Trusted issuers, each with its own keys and audiences.
    pub issuers: Vec<Issuer>,
    /// Headers injected into forwarded requests (and always stripped from inbound ones).
    pub identity: IdentityHeaders,
    /// The verified-token cache.
    pub verify_cache: VerifyCacheConfig,
}

/// The cache of tokens whose signatures were already verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyCacheConfig {
    /// Off means every request verifies its signature.
    pub enabled: bool,
    /// Bound on cached tokens.
    pub max_entries: u64,
}

/// One place a token may be carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>` (RFC 6750 §2.1).
    Bearer,
    /// Another header whose whole value is the token.
    Header(HeaderName),
    /// A cookie with this name.
    Cookie(String),
    /// A query parameter with this name (RFC 6750 §2.3); removed before forwarding.
    Query(String),
}

/// A trusted issuer.
pub struct Issuer {
    /// Exact `iss` value that selects this issuer.
    pub issuer: String,
    /// Accepted `aud` values; empty means `aud` is not checked for this issuer.
    pub audiences: Vec<String>,
    /// Configured verification keys; a token's `kid` picks one (or the only one).
    pub keys: Vec<Key>,
    /// Keys read from `jwks_file`, if one is named.
    pub jwks_file_keys: Option<crate::keys::KeySet>,
    /// The JWKS URL and how it is refreshed, if one is named.
    pub remote: Option<JwksRemote>,
}

/// A JWKS published by an identity provider, and how it is kept current.
#[derive(Debug, Clone, PartialEq)]
pub struct JwksRemote {
    /// `https://` (or `http://` to a loopback address, or when allowed).
    pub url: Uri,
    /// Trust anchors for the provider; `None` uses the compiled-in web PKI roots.
    pub ca: Option<Vec<CertificateDer<'static>>>,
    /// Algorithms a JWK may be used for (never HMAC).
    pub algorithms: Vec<Algorithm>,
    /// Refresh period when the provider sends no `Cache-Control: max-age`.
    pub refresh_interval: Duration,
    /// Lower bound on the refresh period (and cap of the retry backoff).
    pub min_refresh_interval: Duration,
    /// Upper bound on the refresh period.
    pub max_refresh_interval: Duration,
    /// At most one refetch for unknown `kid`s per this period.
    pub unknown_kid_cooldown: Duration,
    /// Time allowed for one fetch, connect to last byte.
    pub fetch_timeout: Duration,
}

/// One verification key with its pinned algorithm.
pub struct Key {
    /// The `kid` tokens name; optional only when the issuer has one key.
    pub kid: Option<String>,
    /// The only algorithm this key verifies; the token's `alg` must equal it.
    pub algorithm: Algorithm,
    /// Material for verification.
    pub verify: DecodingKey,
    /// Material for `token mint` and the demo (secret or private key), if given.
    pub sign: Option<EncodingKey>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key material never reaches a log line.
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("can_sign", &self.sign.is_some())
            .finish()
    }
}

impl Issuer {
    /// The configured keys (secrets, PEM files, a JWKS file) as one set.
    pub fn key_set(&self) -> crate::keys::KeySet {
        let keys = self
            .keys
            .iter()
            .map(|k| crate::keys::VerifyKey {
                kid: k.kid.clone(),
                algorithm: k.algorithm,
                verify: k.verify.clone(),
            })
            .chain(self.jwks_file_keys.iter().flat_map(|s| s.keys().iter().cloned()))
            .collect();
        let sources = self.keys.len() + self.jwks_file_keys.as_ref().map_or(0, |s| s.sources());
        crate::keys::KeySet::new(keys, sources, 0)
    }
}

/// Identity headers injected into authorized requests.
#[derive(Debug, Clone, Default)]
pub struct IdentityHeaders {
    /// Header carrying `sub`.
    pub subject: Option<HeaderName>,
    /// (claim name, header) pairs.
    pub claims: Vec<(String, HeaderName)>,
}

impl IdentityHeaders {
    /// Every header name the proxy injects, so inbound copies can be stripped.
    pub fn names(&self) -> impl Iterator<Item = &HeaderName> {
        self.subject.iter().chain(self.claims.iter().map(|(_, h)| h))
    }
}

/// One route rule.
#[derive(Debug, Clone)]
pub struct Route {
    /// Which normalised paths the rule covers.
    pub matcher: PathMatch,
    /// Methods the rule covers; `None` covers all.
    pub methods: Option<Vec<http::Method>>,
    /// Protocols a client may switch to (`Upgrade`), lower-case; `h2c` never.
    pub upgrades: Vec<String>,
    /// What a request must carry.
    pub access: Access,
}

/// How a route matches a normalised path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The path equals this.
    Exact(String),
    /// Segment-aware prefix: `/api` matches `/api` and `/api/...` but not
    /// `/apix`; a prefix ending in `/` matches paths that start with it.
    Prefix(String),
}

/// What a route requires.
#[derive(Debug, Clone)]
pub enum Access {
    /// No token needed; none is inspected.
    Public,
    /// A valid token meeting these requirements (empty means any valid token).
    Token(Requirements),
}

/// Claims a token must carry on a route (403 when unmet).
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    /// Every one of these must appear in `scope` (space-separated) or `scp`.
    pub scopes: Vec<String>,
    /// Each claim must equal the value, or be an array containing it.
    pub claims: Vec<(String, serde_json::Value)>,
}

/// Revocation source and staleness policy.
#[derive(Debug, Clone)]
pub struct RevocationConfig {
    /// Where revocations are kept.
    pub backend: RevocationBackend,
    /// Age of the mirror after which `on_stale` applies.
    pub max_staleness: Duration,
    /// What to do once the mirror is older than `max_staleness`.
    pub on_stale: OnStale,
    /// Longest lifetime of any token the issuers mint; subject cut-offs older
    /// than this (plus leeway) can no longer affect a live token and are pruned.
    pub max_token_lifetime: Duration,
}

/// Revocation backend.
#[derive(Debug, Clone)]
pub enum RevocationBackend {
    /// In-process only: one instance, never stale.
    Memory,
    /// A mirror kept current from Redis (the protocol in `revocation::protocol`).
    Redis(Box<RedisConfig>),
}

/// How to reach Redis and how patiently.
#[derive(Clone)]
pub struct RedisConfig {
    /// Parsed `redis://` / `rediss://` URL, with the password from
    /// `password_file`/`password_env` applied.
    pub connection_info: redis::ConnectionInfo,
    /// The URL without its password, for logs.
    pub display_url: String,
    /// Key prefix (hash tag): keys are `{prefix}:...`.
    pub prefix: String,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for any one command; a hung Redis is detected by this.
    pub command_timeout: Duration,
    /// How often `{prefix}:seq` is compared with the mirror.
    pub check_interval: Duration,
    /// Entries per ZRANGE page in a full load.
    pub page_size: u64,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.display_url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The session service: tokengate as the issuer of short-lived access tokens
/// and rotating refresh tokens for apps without an issuer of their own.
#[derive(Debug, Clone)]
pub struct SessionsConfig {
    /// `iss` of the access tokens (also the issuer the verifier accepts them under).
    pub issuer: String,
    /// `aud` of the access tokens.
    pub audience: String,
    /// The key access tokens are signed with.
    pub signing: SigningKey,
    /// Lifetime of an access token.
    pub access_token_ttl: Duration,
    /// Lifetime of a refresh token from its issue (each refresh starts a new one).
    pub refresh_token_ttl: Duration,
    /// Oldest sessions are revoked beyond this many per subject; `None` = no cap.
    pub max_sessions_per_subject: Option<u32>,
    /// A spent refresh token presented again within this time of its rotation
    /// is refused without revoking the session (racing browser tabs); 0 = never.
    pub reuse_grace: Duration,
    /// Path prefix of the endpoints on the proxy listener (`/.tokengate`).
    pub path_prefix: String,
    /// The control listener the app opens sessions on.
    pub control: ControlConfig,
}

impl SessionsConfig {
    /// Everything that identifies this setup, key material as a digest: a
    /// reload must not change it under a running session service.
    pub fn fingerprint(&self) -> String {
        let key = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.signing.key.as_bytes());
        format!(
            "{:?}|{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}|{}",
            key.as_ref(),
            self.signing.kid,
            self.issuer,
            self.audience,
            self.signing.algorithm,
            self.access_token_ttl,
            self.refresh_token_ttl,
            self.max_sessions_per_subject,
            self.reuse_grace,
            self.path_prefix,
            self.control.listen,
            self.control.secret.is_some(),
        )
    }
}

/// The session signing key.
#[derive(Clone)]
pub struct SigningKey {
    /// `kid` in every access token header (default: the RFC 7638 thumbprint).
    pub kid: String,
    /// Signature algorithm.
    pub algorithm: Algorithm,
    /// Private key or HMAC secret.
    pub key: EncodingKey,
    /// The public JWK published at `{path_prefix}/jwks.json`; `None` for HMAC.
    pub public_jwk: Option<jsonwebtoken::jwk::Jwk>,
    /// The verification key the proxy checks its own tokens with.
    pub verify: DecodingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key material never reaches a log line.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Where the app reaches the session control API.
#[derive(Clone)]
pub struct ControlConfig {
    /// Listen address (loopback by default: the app shares the pod's network).
    pub listen: SocketAddr,
    /// Shared secret callers present as `Authorization: Bearer ...`; when
    /// `None`, only loopback callers are served.
    pub secret: Option<Vec<u8>>,
}

impl fmt::Debug for ControlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlConfig")
            .field("listen", &self.listen)
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Policy once the revocation mirror is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStale {
    /// Keep serving from the last known state.
    FailOpen,
    /// Answer 503 until the mirror is current again.
    FailClosed,
}

/// Whether environment variables the config names must be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Env {
    /// Running: an unset variable is a problem.
    Required,
    /// Checking: an unset variable is noted, a placeholder stands in.
    MayBeUnset,
}

/// One validation problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted field path, e.g. `auth.issuers[0].keys[1].algorithm`.
    pub path: String,
    /// Line in the YAML source, when the parser recorded one.
    pub line: Option<u64>,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} (line {line}): {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file itself could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The config path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not YAML, or YAML of the wrong shape (unknown field, wrong type).
    #[error("{origin}: {message}")]
    Parse {
        /// Where the text came from.
        origin: String,
        /// The parser's message, with line, column and a snippet.
        message: String,
    },
    /// Well-formed YAML with invalid values: every problem found.
    #[error("{origin}: {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid {
        /// Where the text came from.
        origin: String,
        /// Every problem, in document order.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  - {p}\n")).collect()
}

/// Where relative file paths in a config are read from.
#[derive(Debug, Clone, Copy)]
pub enum FileBase<'a> {
    /// Relative to this directory (the config file's own directory).
    Dir(&'a Path),
    /// The embedded dev config: only the embedded dev secret exists.
    Embedded,
}

impl FileBase<'_> {
    /// The path `name` refers to, for files on disk.
    pub fn resolve(&self, name: &str) -> Option<PathBuf> {
        match self {
            FileBase::Dir(dir) => Some(dir.join(name)),
            FileBase::Embedded => None,
        }
    }

    /// Reads `name`, resolving relative paths against this base.
    pub fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        match self {
            FileBase::Dir(dir) => std::fs::read(dir.join(name)),
            FileBase::Embedded if name == EMBEDDED_DEV_SECRET_NAME => Ok(EMBEDDED_DEV_SECRET.to_vec()),
            FileBase::Embedded => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the embedded config can only name embedded files",
            )),
        }
    }
}

impl Config {
    /// Reads and validates the file at `path`; relative paths inside it are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with(path, Env::Required)
    }

    /// Loads `path` for `check-config`: a secret or password that comes
    /// from an unset environment variable (it exists only where the proxy
    /// runs) is noted in [`Config::unset_env`] instead of failing the check.
    pub fn load_for_check(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with(path, Env::MayBeUnset)
    }

    fn load_with(path: &Path, env: Env) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let mut config = Self::parse(&text, FileBase::Dir(dir), &path.display().to_string(), env)?;
        config.path = Some(path.to_owned());
        Ok(config)
    }

    /// The development configuration compiled into the binary.
    pub fn embedded_dev() -> Result<Config, ConfigError> {
        Self::from_yaml_str(EMBEDDED_DEV_CONFIG, FileBase::Embedded, "embedded dev config")
    }

    /// Parses and validates YAML text; `origin` names it in errors.
    pub fn from_yaml_str(text: &str, files: FileBase<'_>, origin: &str) -> Result<Config, ConfigError> {
        Self::parse(text, files, origin, Env::Required)
    }

    fn parse(text: &str, files: FileBase<'_>, origin: &str, env: Env) -> Result<Config, ConfigError> {
        // The field path of a shape error (`upstream.connect_timeout`), which
        // the parser's own message ("expected string scalar") lacks.
        let mut at = String::new();
        let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
            serde_path_to_error::deserialize::<_, raw::RawConfig>(de).map_err(|e| {
                at = e.path().to_string();
                e.into_inner()
            })
        });
        let raw = parsed.map_err(|e| {
            // `Spanned` values add a `.value` step the operator never wrote.
            let path = at.strip_suffix(".value").unwrap_or(&at);
            let plain = e.render_with_options(serde_saphyr::render_options! {
                source_name: Some(origin),
                snippets: serde_saphyr::SnippetMode::Off,
            });
            let message = if path.is_empty() || path == "." {
                if let Some(field) = plain.split("missing field `").nth(1).and_then(|r| r.split('`').next()) {
                    // The parser points at wherever it noticed, usually an
                    // unrelated line; the field belongs to the top level.
                    format!("the top level is missing the required field `{field}`")
                } else {
                    e.render_with_options(serde_saphyr::render_options! { source_name: Some(origin) })
                }
            } else {
                let snippet = e.render_with_options(serde_saphyr::render_options! { source_name: Some(origin) });
                format!("at `{path}`: {snippet}")
            };
            ConfigError::Parse {
                origin: origin.to_owned(),
                message,
            }
        })?;
        validate::validate(raw, files, env)
            .map_err(|problems| ConfigError::Invalid {
                origin: origin.to_owned(),
                problems,
            })
            .map(|mut config| {
                config.origin = origin.to_owned();
                config
            })
    }

    /// The issuer whose `iss` equals `iss`.
    pub fn issuer(&self, iss: &str) -> Option<&Issuer> {
        self.auth.issuers.iter().find(|i| i.issuer == iss)
    }
}
