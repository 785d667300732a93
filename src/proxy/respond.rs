//! THE one place where a rejection becomes a response. Every variant is
//! matched by name (no catch-all), so a new rejection cannot compile without
//! a deliberate status, body and metric reason. Bodies are fixed strings:
//! nothing from the token or the request is ever echoed.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

use super::forward::UpstreamError;
use super::request::BadRequest;
use crate::auth::{AuthError, Forbidden};
use crate::metrics::Reason;
use crate::path::PathError;
use crate::revocation::RevocationError;

/// Everything that stops a request before or instead of the app's answer.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// 400: no safe normal form for the path.
    #[error("bad path: {0}")]
    BadPath(#[from] PathError),
    /// 400: framing the proxy and the app could read differently.
    #[error("bad request: {0}")]
    BadRequest(#[from] BadRequest),
    /// 401: no valid credentials.
    #[error("unauthenticated: {0}")]
    Auth(#[from] AuthError),
    /// 401 (revoked) or 503 (mirror stale, fail-closed).
    #[error("{0}")]
    Revocation(#[from] RevocationError),
    /// 403: valid credentials, not enough rights.
    #[error("forbidden: {0}")]
    Forbidden(#[from] Forbidden),
    /// 502/504: the app could not be reached or did not answer.
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    /// 403: decision mode: the caller is not the ingress (no or a wrong
    /// shared secret, or not loopback when none is set).
    #[error("untrusted caller of the decision listener")]
    UntrustedCaller,
    /// 403: a cookie-authenticated request that changes state came from
    /// another site (CSRF defence of browser sign-in).
    #[error("cross-site request with the session cookie")]
    CrossSite,
    /// 503: a browser's session needed refreshing and the store did not answer.
    #[error("session store unavailable")]
    SessionUnavailable,
    /// Any rejection after a browser's session was refreshed in line: its
    /// answer also sets the new cookies, or the browser would keep the spent
    /// refresh token (a reuse next time).
    #[error("{0}")]
    Refreshed(Box<Rejection>, Vec<http::HeaderValue>),
}

impl Rejection {
    /// The metric reason; one per distinct cause.
    pub fn reason(&self) -> Reason {
        match self {
            Rejection::BadPath(_) => Reason::BadPath,
            Rejection::BadRequest(_) => Reason::BadRequest,
            Rejection::Auth(e) => e.reason(),
            Rejection::Revocation(RevocationError::Revoked) => Reason::Revoked,
            Rejection::Revocation(RevocationError::Stale { .. }) => Reason::RevocationStale,
            Rejection::Forbidden(Forbidden::MissingScope) => Reason::InsufficientScope,
            Rejection::Forbidden(Forbidden::ClaimMismatch) => Reason::ClaimMismatch,
            Rejection::Upstream(UpstreamError::Connect(_)) => Reason::UpstreamConnect,
            Rejection::Upstream(UpstreamError::Reset(_)) => Reason::UpstreamReset,
            Rejection::Upstream(UpstreamError::Timeout(_)) => Reason::UpstreamTimeout,
            Rejection::Upstream(UpstreamError::Protocol) => Reason::UpstreamProtocol,
            Rejection::Upstream(UpstreamError::ClientBody(_)) => Reason::ClientBody,
            Rejection::UntrustedCaller => Reason::UntrustedCaller,
            Rejection::CrossSite => Reason::CrossSite,
            Rejection::SessionUnavailable => Reason::SessionUnavailable,
            Rejection::Refreshed(inner, _) => inner.reason(),
        }
    }
}

/// What RFC 6750 says to put in `WWW-Authenticate`.
enum Challenge {
    /// No credentials were offered: realm only (§3.1).
    Bare,
    /// `error="invalid_token"`.
    InvalidToken,
    /// `error="insufficient_scope"`.
    InsufficientScope,
    /// Not an authentication problem.
    None,
}

/// Builds the response for `rejection` under the configured `realm`.
pub fn respond(rejection: &Rejection, realm: &str) -> Response<Full<Bytes>> {
    match rejection {
        Rejection::Refreshed(inner, cookies) => {
            let mut response = respond(inner, realm);
            for cookie in cookies {
                response.headers_mut().append(http::header::SET_COOKIE, cookie.clone());
            }
            response
        }
        other => respond_to(other, realm),
    }
}

/// [`respond`] for one rejection, without cookies.
fn respond_to(rejection: &Rejection, realm: &str) -> Response<Full<Bytes>> {
    use StatusCode as S;
    let (status, challenge, error, description) = match rejection {
        Rejection::BadPath(_) => (
            S::BAD_REQUEST,
            Challenge::None,
            "invalid_request",
            "malformed request path",
        ),
        Rejection::BadRequest(_) => (S::BAD_REQUEST, Challenge::None, "invalid_request", "malformed request"),
        Rejection::Upstream(UpstreamError::ClientBody(_)) => (
            S::BAD_REQUEST,
            Challenge::None,
            "invalid_request",
            "malformed request body",
        ),
        Rejection::Auth(e) => match e {
            AuthError::MissingToken => (
                S::UNAUTHORIZED,
                Challenge::Bare,
                "invalid_request",
                "a bearer token is required",
            ),
            AuthError::Expired => (
                S::UNAUTHORIZED,
                Challenge::InvalidToken,
                "invalid_token",
                "token expired",
            ),
            AuthError::NotYetValid => (
                S::UNAUTHORIZED,
                Challenge::InvalidToken,
                "invalid_token",
                "token not yet valid",
            ),
            AuthError::Inactive => (
                S::UNAUTHORIZED,
                Challenge::InvalidToken,
                "invalid_token",
                "token not active",
            ),
            AuthError::IntrospectionUnavailable => (
                S::SERVICE_UNAVAILABLE,
                Challenge::None,
                "temporarily_unavailable",
                "the token could not be checked; retry later",
            ),
            // The cause stays in logs and metrics: telling a forger which
            // check failed helps them, not the legitimate client.
            AuthError::TokenTooLarge
            | AuthError::Malformed(_)
            | AuthError::AlgorithmNotAllowed
            | AuthError::UnknownIssuer
            | AuthError::UnknownKid
            | AuthError::BadSignature
            | AuthError::WrongAudience
            | AuthError::MissingClaim(_)
            | AuthError::WrongType => (
                S::UNAUTHORIZED,
                Challenge::InvalidToken,
                "invalid_token",
                "invalid token",
            ),
        },
        Rejection::Revocation(RevocationError::Revoked) => (
            S::UNAUTHORIZED,
            Challenge::InvalidToken,
            "invalid_token",
            "token revoked",
        ),
        Rejection::Revocation(RevocationError::Stale { .. }) => (
            S::SERVICE_UNAVAILABLE,
            Challenge::None,
            "temporarily_unavailable",
            "revocation state unknown; retry later",
        ),
        Rejection::Forbidden(Forbidden::MissingScope | Forbidden::ClaimMismatch) => (
            S::FORBIDDEN,
            Challenge::InsufficientScope,
            "insufficient_scope",
            "the token does not grant access to this resource",
        ),
        Rejection::Upstream(UpstreamError::Connect(_) | UpstreamError::Reset(_) | UpstreamError::Protocol) => {
            (S::BAD_GATEWAY, Challenge::None, "bad_gateway", "upstream unavailable")
        }
        Rejection::Upstream(UpstreamError::Timeout(_)) => (
            S::GATEWAY_TIMEOUT,
            Challenge::None,
            "gateway_timeout",
            "upstream timed out",
        ),
        Rejection::UntrustedCaller => (
            S::FORBIDDEN,
            Challenge::None,
            "access_denied",
            "this caller may not ask for decisions",
        ),
        Rejection::CrossSite => (
            S::FORBIDDEN,
            Challenge::None,
            "access_denied",
            "a request that changes state must come from this site",
        ),
        Rejection::SessionUnavailable => (
            S::SERVICE_UNAVAILABLE,
            Challenge::None,
            "temporarily_unavailable",
            "the session could not be refreshed; retry shortly",
        ),
        Rejection::Refreshed(inner, _) => return respond_to(inner, realm),
    };
    let body = format!(r#"{{"error":"{error}","error_description":"{description}"}}"#);
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let challenge = match challenge {
        Challenge::Bare => Some(format!(r#"Bearer realm="{realm}""#)),
        Challenge::InvalidToken | Challenge::InsufficientScope => Some(format!(
            r#"Bearer realm="{realm}", error="{error}", error_description="{description}""#
        )),
        Challenge::None => None,
    };
    if let Rejection::Revocation(RevocationError::Stale { retry_after }) = rejection {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(*retry_after));
    }
    if let Rejection::Auth(AuthError::IntrospectionUnavailable) | Rejection::SessionUnavailable = rejection {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    // The realm was validated as quoted-string safe at config load.
    if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(WWW_AUTHENTICATE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_token_has_a_bare_challenge() {
        let r = respond(&Rejection::Auth(AuthError::MissingToken), "tg");
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()[WWW_AUTHENTICATE], r#"Bearer realm="tg""#);
    }

    #[test]
    fn invalid_token_details_stay_private() {
        for e in [
            AuthError::BadSignature,
            AuthError::UnknownKid,
            AuthError::Malformed("x"),
        ] {
            let r = respond(&Rejection::Auth(e), "tg");
            assert_eq!(r.status(), 401);
            assert_eq!(
                r.headers()[WWW_AUTHENTICATE],
                r#"Bearer realm="tg", error="invalid_token", error_description="invalid token""#
            );
        }
        let r = respond(&Rejection::Auth(AuthError::Expired), "tg");
        assert!(
            r.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("token expired")
        );
    }

    #[test]
    fn forbidden_and_upstream() {
        let r = respond(&Rejection::Forbidden(Forbidden::MissingScope), "tg");
        assert_eq!(r.status(), 403);
        assert!(
            r.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("insufficient_scope")
        );
        let r = respond(
            &Rejection::Upstream(UpstreamError::Timeout(std::time::Duration::from_secs(1))),
            "tg",
        );
        assert_eq!(r.status(), 504);
        assert!(!r.headers().contains_key(WWW_AUTHENTICATE));
        let r = respond(&Rejection::BadPath(PathError::Backslash), "tg");
        assert_eq!(r.status(), 400);
        let r = respond(&Rejection::Revocation(RevocationError::Stale { retry_after: 5 }), "tg");
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[http::header::RETRY_AFTER], "5");
        let r = respond(&Rejection::Revocation(RevocationError::Revoked), "tg");
        assert_eq!(r.status(), 401);
        assert!(
            r.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }
}
