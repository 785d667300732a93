//! Authentication: extract a token and verify it (the revocation mirror is
//! consulted next, by the proxy). Takes `&HeaderMap` and the query string,
//! never hyper connection types, so every step unit-tests as a function.

mod authorize;
mod claims;
mod extract;
mod jwt;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

pub use authorize::{Forbidden, authorize};
pub use claims::Claims;
pub use extract::{extract, remove_query_param};
pub use jwt::Verifier;

use crate::config::{AuthConfig, TokenSource};
use crate::metrics::{Metrics, Reason};

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
        }
    }
}

/// Extraction and verification, configured once.
pub struct Authenticator {
    sources: Vec<TokenSource>,
    verifier: Verifier,
    max_token_bytes: usize,
}

impl Authenticator {
    /// Builds the authenticator from the validated auth config.
    pub fn new(auth: AuthConfig, max_token_bytes: usize) -> Self {
        Authenticator {
            sources: auth.sources,
            verifier: Verifier::new(auth.issuers, auth.leeway.as_secs()),
            max_token_bytes,
        }
    }

    /// Finds and verifies the request's token; records verification time.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        metrics: &Metrics,
    ) -> Result<Claims, AuthError> {
        let started = Instant::now();
        let token = extract(&self.sources, headers, query, self.max_token_bytes)?;
        let result = self.verifier.verify(token, unix_now());
        metrics.record_verify(started.elapsed());
        result
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
