//! The metrics registry and the request's label vocabulary. The registry is
//! the app's own (never the global default, so tests and several apps in one
//! process do not share state); each module registers the families it moves
//! beside its own code (`proxy::metrics`, `auth::metrics`, `revocation::metrics`,
//! `session::metrics`, `jwks`, `reload`, `server`). Label values are closed
//! enums, and every series a request can touch is resolved once at start-up,
//! so the request path does no label lookup and no formatting.

use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};

/// Why a request ended the way it did: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Forwarded with a valid token.
    Authorized,
    /// Forwarded on a public route.
    Public,
    /// 400: the path has no safe normal form.
    BadPath,
    /// 400: ambiguous framing: Host missing, repeated, invalid or contradicted
    /// by the target, or a method not in canonical upper case.
    BadRequest,
    /// 400: the client's body was malformed (bad chunking) or cut short.
    ClientBody,
    /// 401: no token in any configured source.
    MissingToken,
    /// 401: longer than `limits.max_token_bytes`.
    TokenTooLarge,
    /// 401: not a well-formed JWS/JWT.
    Malformed,
    /// 401: `alg` is not the key's pinned algorithm (or is `none`).
    AlgorithmNotAllowed,
    /// 401: `iss` names no configured issuer.
    UnknownIssuer,
    /// 401: `kid` names no key of the issuer.
    UnknownKid,
    /// 401: the signature does not verify.
    BadSignature,
    /// 401: `exp` is past (beyond leeway).
    Expired,
    /// 401: `nbf` is ahead (beyond leeway).
    NotYetValid,
    /// 401: `aud` matches none of the issuer's audiences.
    WrongAudience,
    /// 401: a required claim (`exp`, `iss`, `aud`) is absent.
    MissingClaim,
    /// 401: `typ` names another kind of token, or not the issuer's required one.
    WrongType,
    /// 401: the token's jti, or its subject up to its iat, is revoked.
    Revoked,
    /// 403: a required scope is missing.
    InsufficientScope,
    /// 403: a required claim value is missing.
    ClaimMismatch,
    /// 503: the revocation mirror is stale and the policy is fail-closed.
    RevocationStale,
    /// 502: the upstream refused the connection or the connect timed out.
    UpstreamConnect,
    /// 502: the upstream reset or broke the exchange.
    UpstreamReset,
    /// 504: no response headers within `upstream.request_timeout`.
    UpstreamTimeout,
    /// 502: the upstream switched protocols (101) to one nobody asked for.
    UpstreamProtocol,
    /// Answered by the session service itself (refresh, logout, JWKS); its
    /// outcomes are counted by the `tokengate_session_*` families.
    SessionEndpoint,
    /// 401: introspection says the opaque token is not active.
    Inactive,
    /// 503: the introspection endpoint did not answer usably in time.
    IntrospectionUnavailable,
    /// Answered by the OIDC back-channel logout receiver.
    BackchannelLogout,
    /// 403: decision mode: the caller is not the configured ingress.
    UntrustedCaller,
    /// 302: a browser without a session sent to the identity provider.
    SignIn,
    /// Answered by browser sign-in itself (callback, login, sign-out).
    BrowserEndpoint,
    /// 403: a cookie-authenticated request that changes state came from
    /// another site (CSRF defence).
    CrossSite,
    /// 503: a browser's session needed refreshing and the store is unavailable.
    SessionUnavailable,
}

impl Reason {
    /// Every reason, for pre-registering label sets.
    pub const ALL: [Reason; 34] = [
        Reason::Authorized,
        Reason::Public,
        Reason::BadPath,
        Reason::BadRequest,
        Reason::ClientBody,
        Reason::MissingToken,
        Reason::TokenTooLarge,
        Reason::Malformed,
        Reason::AlgorithmNotAllowed,
        Reason::UnknownIssuer,
        Reason::UnknownKid,
        Reason::BadSignature,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::WrongAudience,
        Reason::MissingClaim,
        Reason::WrongType,
        Reason::Revoked,
        Reason::InsufficientScope,
        Reason::ClaimMismatch,
        Reason::RevocationStale,
        Reason::UpstreamConnect,
        Reason::UpstreamReset,
        Reason::UpstreamTimeout,
        Reason::UpstreamProtocol,
        Reason::SessionEndpoint,
        Reason::Inactive,
        Reason::IntrospectionUnavailable,
        Reason::BackchannelLogout,
        Reason::UntrustedCaller,
        Reason::SignIn,
        Reason::BrowserEndpoint,
        Reason::CrossSite,
        Reason::SessionUnavailable,
    ];

    /// The `reason` label value.
    pub const fn label(self) -> &'static str {
        match self {
            Reason::Authorized => "authorized",
            Reason::Public => "public",
            Reason::BadPath => "bad_path",
            Reason::BadRequest => "bad_request",
            Reason::ClientBody => "client_body",
            Reason::MissingToken => "missing_token",
            Reason::TokenTooLarge => "token_too_large",
            Reason::Malformed => "malformed",
            Reason::AlgorithmNotAllowed => "algorithm_not_allowed",
            Reason::UnknownIssuer => "unknown_issuer",
            Reason::UnknownKid => "unknown_kid",
            Reason::BadSignature => "bad_signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::WrongAudience => "wrong_audience",
            Reason::MissingClaim => "missing_claim",
            Reason::WrongType => "wrong_type",
            Reason::Revoked => "revoked",
            Reason::RevocationStale => "revocation_stale",
            Reason::InsufficientScope => "insufficient_scope",
            Reason::ClaimMismatch => "claim_mismatch",
            Reason::UpstreamConnect => "upstream_connect",
            Reason::UpstreamReset => "upstream_reset",
            Reason::UpstreamTimeout => "upstream_timeout",
            Reason::UpstreamProtocol => "upstream_protocol",
            Reason::SessionEndpoint => "session_endpoint",
            Reason::Inactive => "inactive",
            Reason::IntrospectionUnavailable => "introspection_unavailable",
            Reason::BackchannelLogout => "backchannel_logout",
            Reason::UntrustedCaller => "untrusted_caller",
            Reason::SignIn => "sign_in",
            Reason::BrowserEndpoint => "browser_endpoint",
            Reason::CrossSite => "cross_site",
            Reason::SessionUnavailable => "session_unavailable",
        }
    }

    /// The coarser `outcome` label this reason belongs to.
    pub const fn outcome(self) -> Outcome {
        match self {
            Reason::Authorized | Reason::Public => Outcome::Allowed,
            Reason::BadPath
            | Reason::BadRequest
            | Reason::ClientBody
            | Reason::MissingToken
            | Reason::TokenTooLarge
            | Reason::Malformed
            | Reason::AlgorithmNotAllowed
            | Reason::UnknownIssuer
            | Reason::UnknownKid
            | Reason::BadSignature
            | Reason::Expired
            | Reason::NotYetValid
            | Reason::WrongAudience
            | Reason::MissingClaim
            | Reason::WrongType
            | Reason::Inactive
            | Reason::IntrospectionUnavailable
            | Reason::Revoked
            | Reason::InsufficientScope
            | Reason::ClaimMismatch
            | Reason::RevocationStale
            | Reason::UntrustedCaller
            | Reason::CrossSite
            | Reason::SessionUnavailable => Outcome::Rejected,
            Reason::UpstreamConnect | Reason::UpstreamReset | Reason::UpstreamTimeout | Reason::UpstreamProtocol => {
                Outcome::UpstreamError
            }
            Reason::SessionEndpoint | Reason::BackchannelLogout | Reason::SignIn | Reason::BrowserEndpoint => {
                Outcome::Session
            }
        }
    }

    /// Position in [`Reason::ALL`], for series resolved at start-up.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The `outcome` label: allowed, rejected by policy, or failed upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded to the app (whatever the app answered).
    Allowed,
    /// Refused by the proxy (400/401/403/503).
    Rejected,
    /// The app could not be reached or did not answer (502/504).
    UpstreamError,
    /// Answered by the session endpoints, never forwarded.
    Session,
}

impl Outcome {
    /// Every outcome, in index order.
    pub const ALL: [Outcome; 4] = [
        Outcome::Allowed,
        Outcome::Rejected,
        Outcome::UpstreamError,
        Outcome::Session,
    ];

    /// The `outcome` label value.
    pub const fn label(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Rejected => "rejected",
            Outcome::UpstreamError => "upstream_error",
            Outcome::Session => "session",
        }
    }
}

/// The registry every family is registered on, and its text exposition.
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// A fresh registry with `tokengate_build_info` and the process metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let build_info = IntGaugeVec::new(
            Opts::new("tokengate_build_info", "Build information; the value is always 1."),
            &["version"],
        )?;
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(Metrics { registry })
    }

    /// The registry, for the modules that add their families.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every registered family.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail on I/O; a family that fails to
        // encode is a bug worth seeing in the scrape, not a panic.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            out.extend_from_slice(format!("# encoding error: {e}\n").as_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_indexes_match_all() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i);
        }
    }

    #[test]
    fn build_and_process_metrics_are_exported() {
        let text = String::from_utf8(Metrics::new().unwrap().render()).unwrap();
        assert!(text.contains("tokengate_build_info{version="));
        assert!(text.contains("process_resident_memory_bytes"));
    }
}
