//! Settings of the state tokengate keeps: the revocation mirror, its Redis,
//! and the session service.

use super::*;

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

/// How to reach Redis and what to keep there.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// URL (password from `password_file`/`password_env` applied) and timeouts.
    pub endpoint: crate::redis_client::Endpoint,
    /// Key prefix (hash tag): keys are `{prefix}:...`.
    pub prefix: String,
    /// How often `{prefix}:seq` is compared with the mirror.
    pub check_interval: Duration,
    /// Entries per ZRANGE page in a full load.
    pub page_size: u64,
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
    /// Sign-in for people in browsers (OIDC code flow), if configured.
    pub browser: Option<BrowserConfig>,
}

/// Claims the session service sets itself in its access tokens; neither the
/// app nor `sessions.browser.claims` may supply them.
pub const RESERVED_SESSION_CLAIMS: &[&str] = &["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid"];

/// `sessions.browser`: people in browsers sign in at an identity provider
/// (authorization code flow with PKCE) and carry the session in cookies.
#[derive(Clone)]
pub struct BrowserConfig {
    /// The provider: an `auth.issuers` entry with `discovery: true`.
    pub issuer: String,
    /// tokengate's client at the provider.
    pub client_id: String,
    /// Its secret; empty with `private_key_jwt`.
    pub client_secret: String,
    /// How the secret is presented at the token endpoint (unless
    /// `assertion` is set).
    pub auth_method: ClientAuth,
    /// `private_key_jwt` (RFC 7523): the key that signs the client's
    /// assertion at the token endpoint, instead of a secret.
    pub assertion: Option<AssertionKey>,
    /// What the sign-in cookies are signed with: the client secret, or the
    /// assertion key's file (every sidecar of the app holds either).
    pub cookie_key: Vec<u8>,
    /// Scopes asked for; always includes `openid`.
    pub scopes: Vec<String>,
    /// ID token claims copied into the session (and so into its access tokens).
    pub claims: Vec<String>,
    /// The origin browsers reach the app at (`https://app.example.com`).
    pub public_origin: String,
    /// Path prefixes (whole segments) where browsers are signed in.
    pub prefixes: Vec<String>,
    /// Where the provider sends the browser after sign-out, if anywhere.
    pub post_logout_redirect_uri: Option<String>,
    /// Sign-out at the provider by a form POST carrying the ID token as
    /// `id_token_hint` (`end_session: post`), or by a redirect without it
    /// (`get`, the default: no token in a URL; the provider may ask the
    /// user to confirm).
    pub end_session_post: bool,
    /// Cookies without `Secure` (plain http, loopback only).
    pub insecure_http: bool,
    /// Time a sign-in may take at the provider.
    pub login_timeout: Duration,
    /// Trust anchors for the provider's token endpoint: the issuer's
    /// `jwks.ca_file`, or the compiled-in web PKI roots.
    pub ca: Option<Vec<rustls_pki_types::CertificateDer<'static>>>,
}

/// The key of a `private_key_jwt` client.
#[derive(Clone)]
pub struct AssertionKey {
    /// Its algorithm (ES256, RS256, EdDSA, ...).
    pub algorithm: Algorithm,
    /// `kid` in the assertion's header, if configured.
    pub kid: Option<String>,
    /// The private key.
    pub key: EncodingKey,
}

impl BrowserConfig {
    /// `redirect_uri`: the callback under the session prefix, on the public origin.
    pub fn redirect_uri(&self, path_prefix: &str) -> String {
        format!("{}{path_prefix}/callback", self.public_origin)
    }
}

impl fmt::Debug for BrowserConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("public_origin", &self.public_origin)
            .field("prefixes", &self.prefixes)
            .finish_non_exhaustive()
    }
}

impl SessionsConfig {
    /// Everything that identifies this setup, key material as a digest: a
    /// reload must not change it under a running session service.
    pub fn fingerprint(&self) -> String {
        let key = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.signing.key.as_bytes());
        format!(
            "{:?}|{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}|{}|{:?}",
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
            self.browser.as_ref().map(|b| {
                // The secret, or the private_key_jwt key file.
                let secret = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &b.cookie_key);
                (
                    secret.as_ref().to_vec(),
                    b,
                    &b.scopes,
                    &b.claims,
                    &b.post_logout_redirect_uri,
                    (b.insecure_http, b.end_session_post),
                    b.login_timeout,
                    b.auth_method,
                )
            }),
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

/// The OIDC back-channel logout receiver (on the proxy listener).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackchannelConfig {
    /// The path providers POST logout tokens to.
    pub path: String,
    /// A logout token issued longer ago than this (plus the leeway) is refused.
    pub max_age: Duration,
    /// What a logout token revokes.
    pub revoke: LogoutRevokes,
}

/// What one back-channel logout revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutRevokes {
    /// Every token of the subject issued up to the logout (a `sid`-only
    /// token revokes the session). Right when access tokens carry no `sid`.
    Subject,
    /// The session named by `sid` (a `sub`-only token revokes the subject).
    /// Right when the provider puts `sid` in its access tokens (Keycloak).
    Session,
}
