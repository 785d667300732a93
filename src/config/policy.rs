//! Settings of the decision: token sources, issuers and their keys,
//! identity headers, routes.

use super::*;

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
    /// The `typ` every token of this issuer must carry (`at+jwt`), lower-case
    /// without `application/`; `None` accepts `JWT`, `at+jwt` or none.
    pub token_type: Option<String>,
    /// Set when the issuer sends OIDC back-channel logout tokens here.
    pub backchannel_logout: Option<IssuerLogout>,
    /// Set when the issuer's opaque tokens are checked by RFC 7662
    /// introspection (at most one issuer).
    pub introspection: Option<Introspection>,
}

/// How opaque tokens are introspected (RFC 7662).
#[derive(Clone, PartialEq)]
pub struct Introspection {
    /// The endpoint; `None` takes the one discovery finds.
    pub endpoint: Option<Uri>,
    /// tokengate's client id at the provider.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// How the client authenticates.
    pub auth_method: ClientAuth,
    /// Time allowed for one introspection, connect to last byte.
    pub timeout: Duration,
    /// An active result is cached until the token's `exp`, at most this long.
    pub cache_max: Duration,
    /// An inactive result is cached this long.
    pub negative_cache: Duration,
    /// Results cached at most.
    pub max_entries: u64,
    /// Trust anchors for the endpoint; `None` uses the web PKI roots.
    pub ca: Option<Vec<CertificateDer<'static>>>,
    /// Plain http to a non-loopback host is allowed.
    pub allow_http: bool,
}

impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret never reaches a log line.
        f.debug_struct("Introspection")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("auth_method", &self.auth_method)
            .finish_non_exhaustive()
    }
}

/// RFC 6749 §2.3.1 client authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form.
    Post,
}

/// An issuer's back-channel logout settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerLogout {
    /// The `aud` values its logout tokens may carry (the client ids the
    /// provider knows this app by).
    pub audiences: Vec<String>,
}

/// A JWKS published by an identity provider, and how it is kept current.
#[derive(Debug, Clone, PartialEq)]
pub struct JwksRemote {
    /// The JWKS URL, or with `discovery` the provider's metadata document
    /// (`{issuer}/.well-known/openid-configuration`). `https://`, or
    /// `http://` to a loopback address or when allowed.
    pub url: Uri,
    /// Set when the keys are found through OIDC discovery: the RFC 8414
    /// document (`/.well-known/oauth-authorization-server{path}`) tried when
    /// the OpenID one is missing, and whether plain http may be followed.
    pub discovery: Option<Discovery>,
    /// Trust anchors for the provider; `None` uses the compiled-in web PKI roots.
    pub ca: Option<Vec<CertificateDer<'static>>>,
    /// Algorithms a JWK may be used for (never HMAC).
    pub algorithms: Vec<Alg>,
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

/// How an issuer's metadata document is found and trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovery {
    /// The configured issuer, which the document's `issuer` must equal exactly.
    pub issuer: String,
    /// RFC 8414's well-known URL, tried when the OpenID one answers 404.
    pub oauth_url: Uri,
    /// `jwks.allow_http`: a `jwks_uri` over plain http to a non-loopback host
    /// is followed only then.
    pub allow_http: bool,
}

/// One verification key with its pinned algorithm.
pub struct Key {
    /// The `kid` tokens name; optional only when the issuer has one key.
    pub kid: Option<String>,
    /// The only algorithm this key verifies; the token's `alg` must equal it.
    pub algorithm: Alg,
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

/// A JOSE `typ` as compared: trimmed, lower-case, without the optional
/// `application/` (RFC 7515 §4.1.9).
pub fn media_type(typ: &str) -> String {
    let lower = typ.trim().to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => lower,
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
