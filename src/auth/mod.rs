//! Authentication: extract a token and verify it (the revocation mirror is
//! consulted next, by the proxy). Takes `&HeaderMap` and the query string,
//! never hyper connection types, so every step unit-tests as a function.

mod authorize;
mod cache;
mod claims;
mod extract;
mod introspect;
mod jwt;
mod metrics;

use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;

pub use authorize::{Forbidden, authorize};
pub use claims::{Claims, numeric_date};
pub use extract::{extract, has_query_param, remove_query_param};
pub use jwt::Verifier;

use self::cache::VerifiedCache;
pub use self::introspect::IntrospectionMetrics;
use self::introspect::Introspector;
pub use self::metrics::VerifyMetrics;
use crate::clock::unix_now;
use crate::config::{AuthConfig, TokenSource};
use crate::jwks::KeyStore;
use crate::metrics::Reason;

/// Why a request carries no valid credentials (always 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No configured source holds a token.
    #[error("no token")]
    MissingToken,
    /// The token is longer than `limits.max_token_bytes`.
    #[error("token too large")]
    TokenTooLarge,
    /// Not a well-formed JWT; the detail is for logs only.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is `none`, unknown, or differs from the key's pinned algorithm.
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// `iss` names no configured issuer.
    #[error("unknown issuer")]
    UnknownIssuer,
    /// `kid` names no key of the issuer (or is absent and the issuer has several).
    #[error("unknown key id")]
    UnknownKid,
    /// The signature does not verify with the selected key.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is in the past beyond the leeway.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future beyond the leeway.
    #[error("token not yet valid")]
    NotYetValid,
    /// `aud` matches none of the issuer's audiences.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is absent.
    #[error("missing claim {0}")]
    MissingClaim(&'static str),
    /// `typ` says the token is meant for something else (a logout or DPoP
    /// token, an ID token where the issuer requires `at+jwt`).
    #[error("wrong token type")]
    WrongType,
    /// Introspection says the opaque token is not active (expired, revoked
    /// at the provider, or never issued).
    #[error("token not active")]
    Inactive,
    /// The introspection endpoint did not answer usably in time (503: the
    /// token may well be valid).
    #[error("introspection unavailable")]
    IntrospectionUnavailable,
}

impl AuthError {
    /// The metric reason (and thereby the response) for this error.
    pub const fn reason(&self) -> Reason {
        match self {
            AuthError::MissingToken => Reason::MissingToken,
            AuthError::TokenTooLarge => Reason::TokenTooLarge,
            AuthError::Malformed(_) => Reason::Malformed,
            AuthError::AlgorithmNotAllowed => Reason::AlgorithmNotAllowed,
            AuthError::UnknownIssuer => Reason::UnknownIssuer,
            AuthError::UnknownKid => Reason::UnknownKid,
            AuthError::BadSignature => Reason::BadSignature,
            AuthError::Expired => Reason::Expired,
            AuthError::NotYetValid => Reason::NotYetValid,
            AuthError::WrongAudience => Reason::WrongAudience,
            AuthError::MissingClaim(_) => Reason::MissingClaim,
            AuthError::WrongType => Reason::WrongType,
            AuthError::Inactive => Reason::Inactive,
            AuthError::IntrospectionUnavailable => Reason::IntrospectionUnavailable,
        }
    }
}

/// Extraction and verification, configured once.
pub struct Authenticator {
    sources: Vec<TokenSource>,
    verifier: Verifier,
    cache: Option<VerifiedCache>,
    max_token_bytes: usize,
    /// The issuer whose opaque tokens are introspected, if one is.
    introspector: Option<Introspector>,
}

impl Authenticator {
    /// Builds the authenticator from the validated auth config; issuers with a
    /// JWKS URL read their keys from `stores`.
    pub fn new(auth: &AuthConfig, stores: &[Arc<KeyStore>], max_token_bytes: usize) -> Self {
        Self::with_introspection(auth, stores, max_token_bytes, None)
    }

    /// [`Authenticator::new`], introspecting opaque tokens when an issuer
    /// is configured for it and `metrics` are given.
    pub fn with_introspection(
        auth: &AuthConfig,
        stores: &[Arc<KeyStore>],
        max_token_bytes: usize,
        metrics: Option<&IntrospectionMetrics>,
    ) -> Self {
        Authenticator {
            introspector: metrics.and_then(|m| Introspector::for_issuers(&auth.issuers, stores, m)),
            sources: auth.sources.clone(),
            verifier: Verifier::new(&auth.issuers, auth.leeway.as_secs()).with_key_stores(stores),
            cache: auth
                .verify_cache
                .enabled
                .then(|| VerifiedCache::new(auth.verify_cache.max_entries)),
            max_token_bytes,
        }
    }

    /// Finds and verifies the request's token; records verification time.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        metrics: &VerifyMetrics,
    ) -> Result<Arc<Claims>, AuthError> {
        let started = Instant::now();
        let token = extract(&self.sources, headers, query, self.max_token_bytes)?;
        let result = self.verify(token, metrics).await;
        metrics.record(started.elapsed());
        result
    }

    /// Verifies `token`, through the cache when it is on.
    pub async fn verify(&self, token: &str, metrics: &VerifyMetrics) -> Result<Arc<Claims>, AuthError> {
        let now = unix_now();
        let leeway = self.verifier.leeway();
        if let Some(introspector) = &self.introspector
            && introspect::is_opaque(token)
        {
            return introspector.claims(token, now, leeway).await;
        }
        // Hashed once: the same key serves the lookup and, on a miss, the insert.
        let key = self.cache.as_ref().map(|cache| cache.key(token));
        if let (Some(cache), Some(key)) = (&self.cache, key) {
            match cache.get(key) {
                Some(hit) if hit.generation == self.verifier.generation(hit.issuer) => {
                    metrics.cache_hits.inc();
                    jwt::check_times(&hit.claims, now, leeway)?;
                    return Ok(hit.claims);
                }
                _ => metrics.cache_misses.inc(),
            }
        }
        let (claims, issuer, generation) = with_refetch(|| self.verifier.verify_detailed(token, unix_now())).await?;
        let claims = Arc::new(claims);
        if let (Some(cache), Some(key)) = (&self.cache, key) {
            cache.insert(key, claims.clone(), issuer, generation, now, leeway);
        }
        Ok(claims)
    }

    /// The claims of an OIDC back-channel logout token whose signature, `typ`
    /// and `aud` check out against its issuer (never cached: each is used once).
    pub async fn verify_logout(&self, token: &str) -> Result<serde_json::Map<String, serde_json::Value>, AuthError> {
        if token.len() > self.max_token_bytes {
            return Err(AuthError::TokenTooLarge);
        }
        with_refetch(|| self.verifier.verify_logout(token)).await
    }

    /// The claims of an ID token signed by `issuer`'s keys (never cached);
    /// audience, `azp`, times and `nonce` are the caller's to check.
    pub async fn verify_id_token(
        &self,
        token: &str,
        issuer: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, AuthError> {
        if token.len() > self.max_token_bytes {
            return Err(AuthError::TokenTooLarge);
        }
        with_refetch(|| self.verifier.verify_id_token(token, issuer)).await
    }

    /// The discovery metadata of `issuer`, when its keys come from discovery.
    pub fn metadata(&self, issuer: &str) -> Option<Arc<crate::jwks::fetch::Metadata>> {
        self.verifier.metadata(issuer)
    }

    /// The leeway for clock skew, in seconds.
    pub fn leeway(&self) -> i64 {
        self.verifier.leeway()
    }
}

/// Runs `verify`; when it fails on an unknown `kid` of an issuer with a
/// remote key set, the provider may have rotated: one shared, rate-limited
/// refetch, then `verify` once more.
async fn with_refetch<'v, T>(verify: impl Fn() -> Result<T, jwt::Failure<'v>>) -> Result<T, AuthError> {
    match verify() {
        Ok(verified) => Ok(verified),
        Err(jwt::Failure {
            error: AuthError::UnknownKid,
            refetch: Some(store),
        }) => {
            if !store.refetch_for_unknown_kid().await {
                return Err(AuthError::UnknownKid);
            }
            verify().map_err(|f| f.error)
        }
        Err(failure) => Err(failure.error),
    }
}
