//! The session endpoints on the proxy listener, under `path_prefix`
//! (default `/.tokengate`):
//!
//! | endpoint | caller proves | effect |
//! |---|---|---|
//! | `GET {prefix}/jwks.json` | nothing | the public signing key |
//! | `POST {prefix}/refresh` | a refresh token (form or JSON body) | spends it, returns a new pair |
//! | `POST {prefix}/logout` | an access token of the session (or its refresh token in the body) | ends the session |
//! | `POST {prefix}/logout-all` | an access token of the subject | ends every session of the subject |
//!
//! Every answer is built here; bodies never echo the request.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use super::{RefreshResult, SessionError, Sessions};
use crate::auth::Claims;

/// Largest request body accepted on the session endpoints.
const MAX_BODY: usize = 8 * 1024;

/// Which session endpoint a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `{prefix}/jwks.json`
    Jwks,
    /// `{prefix}/refresh`
    Refresh,
    /// `{prefix}/logout`
    Logout,
    /// `{prefix}/logout-all`
    LogoutAll,
    /// `{prefix}/callback`: a browser back from the identity provider.
    Callback,
    /// `{prefix}/login`: a browser asking to sign in.
    Login,
    /// Anything else under the prefix (404: the prefix is reserved).
    Unknown,
}

impl Endpoint {
    /// True when the endpoint needs the caller's access token checked.
    pub fn needs_caller(self) -> bool {
        matches!(self, Endpoint::Logout | Endpoint::LogoutAll)
    }
}

impl Sessions {
    /// The endpoint `path` (normalised) names, if it is under the prefix.
    pub fn endpoint(&self, path: &str) -> Option<Endpoint> {
        let rest = path.strip_prefix(self.config.path_prefix.as_str())?;
        Some(match rest {
            "/jwks.json" => Endpoint::Jwks,
            "/refresh" => Endpoint::Refresh,
            "/logout" => Endpoint::Logout,
            "/logout-all" => Endpoint::LogoutAll,
            "/callback" if self.config.browser.is_some() => Endpoint::Callback,
            "/login" if self.config.browser.is_some() => Endpoint::Login,
            "" => Endpoint::Unknown,
            r if r.starts_with('/') => Endpoint::Unknown,
            // `/.tokengatefoo` is an ordinary path.
            _ => return None,
        })
    }
}

/// Serves `endpoint`. `caller` is the outcome of checking the request's
/// access token (signature, expiry, revocation), for the logout endpoints;
/// `realm` is the proxy's, so a 401 here has the proxy's shape.
pub async fn serve(
    sessions: &Sessions,
    endpoint: Endpoint,
    req: Request<Incoming>,
    caller: Option<Result<Arc<Claims>, String>>,
    realm: &str,
) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    match (endpoint, &method) {
        (Endpoint::Jwks, &Method::GET | &Method::HEAD) => {
            let mut r = Response::new(Full::new(sessions.jwks()));
            let h = r.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json"));
            h.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
            r
        }
        (Endpoint::Jwks, _) => not_allowed("GET, HEAD"),
        // The browser's endpoints are answered by `browser`; here only when
        // it is not configured (never named then).
        (Endpoint::Unknown | Endpoint::Callback | Endpoint::Login, _) => {
            error(StatusCode::NOT_FOUND, "not_found", "no such session endpoint")
        }
        (_, m) if m != Method::POST => not_allowed("POST"),
        (Endpoint::Refresh, _) => refresh(sessions, req).await,
        (Endpoint::Logout, _) => logout(sessions, req, caller, realm).await,
        (Endpoint::LogoutAll, _) => logout_all(sessions, caller, realm).await,
    }
}

async fn refresh(sessions: &Sessions, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if form.grant_type.as_deref().is_some_and(|g| g != "refresh_token") {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=refresh_token is served here",
        );
    }
    let Some(token) = form.refresh_token else {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "refresh_token is required");
    };
    match sessions.refresh(&token).await {
        Ok(pair) => token_response(&pair),
        Err(e) => session_error(&e),
    }
}

async fn logout(
    sessions: &Sessions,
    req: Request<Incoming>,
    caller: Option<Result<Arc<Claims>, String>>,
    realm: &str,
) -> Response<Full<Bytes>> {
    let offered_token = has_credentials(req.headers());
    match caller {
        Some(Ok(claims)) => {
            let Some(sid) = own_session(sessions, &claims) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "the access token was not issued by this session service",
                );
            };
            match sessions.end_session(sid, claims.exp).await {
                Ok(_) => no_content(),
                Err(e) => session_error(&e),
            }
        }
        // No access token: a client whose access token has expired can still
        // end its session with the refresh token.
        _ if !offered_token => {
            let form = match read_form(req).await {
                Ok(f) => f,
                Err(r) => return r,
            };
            match form.refresh_token {
                Some(token) => match sessions.end_session_of_refresh_token(&token).await {
                    Ok(_) => no_content(),
                    Err(e) => session_error(&e),
                },
                None => unauthorized(realm, "an access token or a refresh_token is required"),
            }
        }
        Some(Err(_)) | None => unauthorized(realm, "the access token is invalid, expired or revoked"),
    }
}

async fn logout_all(
    sessions: &Sessions,
    caller: Option<Result<Arc<Claims>, String>>,
    realm: &str,
) -> Response<Full<Bytes>> {
    let Some(Ok(claims)) = caller else {
        return unauthorized(realm, "a valid access token is required");
    };
    if own_session(sessions, &claims).is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the access token was not issued by this session service",
        );
    }
    let Some(sub) = claims.subject() else {
        return unauthorized(realm, "the access token has no subject");
    };
    match sessions.end_subject(sub).await {
        Ok(_) => no_content(),
        Err(e) => session_error(&e),
    }
}

/// The token's `sid` when the token is one of ours.
fn own_session<'c>(sessions: &Sessions, claims: &'c Claims) -> Option<&'c str> {
    let ours = claims.get("iss").and_then(|v| v.as_str()) == Some(sessions.config.issuer.as_str());
    ours.then(|| claims.session_id()).flatten()
}

fn has_credentials(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::AUTHORIZATION)
}

/// The fields of an RFC 6749 §6 refresh request.
#[derive(Default, serde::Deserialize)]
struct Form {
    grant_type: Option<String>,
    refresh_token: Option<String>,
}

async fn read_form(req: Request<Incoming>) -> Result<Form, Response<Full<Bytes>>> {
    let json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
    let body = match crate::body::read(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            let description = match e {
                crate::body::BodyError::TooLarge => "request body larger than 8 KiB",
                crate::body::BodyError::Timeout => "request body not received in time",
                crate::body::BodyError::Broken => "request body unreadable",
            };
            return Err(error(e.status(), "invalid_request", description));
        }
    };
    if json {
        return serde_json::from_slice::<Form>(&body).map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "body is not a JSON object of strings",
            )
        });
    }
    let mut form = Form::default();
    for (k, v) in form_urlencoded::parse(&body) {
        let slot = match k.as_ref() {
            "grant_type" => &mut form.grant_type,
            "refresh_token" => &mut form.refresh_token,
            _ => continue,
        };
        if slot.is_some() {
            // RFC 6749 §3.2: parameters must not be repeated.
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "a parameter is repeated",
            ));
        }
        *slot = Some(v.into_owned());
    }
    Ok(form)
}

/// The JSON token response, never cached (RFC 6749 §5.1).
pub fn token_response(pair: &super::TokenResponse) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(pair).unwrap_or_default();
    json(StatusCode::OK, body)
}

/// The one mapping from a session error to its response.
pub fn session_error(e: &SessionError) -> Response<Full<Bytes>> {
    match e {
        SessionError::InvalidGrant(result) => {
            let description = match result {
                RefreshResult::Reused => "refresh token already used; the session has been revoked",
                RefreshResult::Concurrent => "refresh token already used by a concurrent request",
                RefreshResult::Expired => "refresh token expired",
                // Rotated and Unavailable never become an InvalidGrant; named
                // anyway, so a new result cannot slip through unmapped.
                RefreshResult::Invalid | RefreshResult::Rotated | RefreshResult::Unavailable => {
                    "refresh token unknown, or its session has ended"
                }
            };
            error(StatusCode::UNAUTHORIZED, "invalid_grant", description)
        }
        SessionError::BadRequest(why) => error(StatusCode::BAD_REQUEST, "invalid_request", why),
        SessionError::Store(err) => {
            tracing::warn!(error = %err, "session store failed");
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "session store unavailable; retry shortly",
            );
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        SessionError::Issue(err) => {
            tracing::error!(error = %err, "cannot issue a session token");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "cannot issue a token",
            )
        }
    }
}

/// 401 in the proxy's shape (RFC 6750 §3: realm, error, description).
fn unauthorized(realm: &str, description: &'static str) -> Response<Full<Bytes>> {
    let mut r = error(StatusCode::UNAUTHORIZED, "invalid_token", description);
    // The realm was validated as quoted-string safe at config load.
    let challenge = format!(r#"Bearer realm="{realm}", error="invalid_token", error_description="{description}""#);
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    r
}

fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "method not allowed");
    r.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
    r
}

fn no_content() -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `{"error": ..., "error_description": ...}` (RFC 6749 §5.2).
pub fn error(status: StatusCode, code: &'static str, description: &str) -> Response<Full<Bytes>> {
    let body =
        serde_json::to_vec(&serde_json::json!({"error": code, "error_description": description})).unwrap_or_default();
    json(status, body)
}

/// A JSON response that no cache keeps.
pub fn json(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    r
}
