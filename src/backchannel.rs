//! The OIDC Back-Channel Logout 1.0 receiver: a provider POSTs a
//! `logout_token` (a JWT it signs) to `backchannel_logout.path` on the proxy
//! listener when a user logs out there; tokengate checks it as §2.6 of the
//! spec requires and writes a `sub` or `sid` revocation through the usual
//! protocol, so every sidecar stops that user's tokens within milliseconds.
//!
//! Checks, in order: POST with a form body holding exactly one
//! `logout_token`; signature by the issuer's keys (pinned algorithms),
//! `typ` `logout+jwt` or none, `aud` one of the issuer's logout audiences
//! (all in `auth`); then `iat` within `max_age`, `exp` if present, `jti`,
//! the back-channel logout event, `sub` and/or `sid`, no `nonce`; last, the
//! `iss` + `jti` pair is acted on at most once (a replay changes nothing).

use std::sync::Arc;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use prometheus::{IntCounterVec, Opts, Registry};
use serde_json::{Map, Value};

use crate::auth::{AuthError, Authenticator, numeric_date};
use crate::clock::unix_now;
use crate::config::{BackchannelConfig, LogoutRevokes};
use crate::redis_client::RedisError;
use crate::revocation::{Once, Revocation, Revocations};
use crate::session::Sessions;

/// The event a logout token must carry (§2.4).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Largest request body accepted; logout tokens are a few hundred bytes
/// (read within `body::BODY_TIMEOUT`).
const MAX_BODY: usize = 16 * 1024;

/// Why a logout request was not acted on. Each maps to one status and one
/// metric label in [`LogoutError::status`] and [`LogoutError::label`].
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// Not a POST.
    #[error("method not allowed")]
    Method,
    /// Not a form with exactly one `logout_token`.
    #[error("malformed request: {0}")]
    Request(&'static str),
    /// The body was too large, late or broken.
    #[error("{0}")]
    Body(crate::body::BodyError),
    /// The token's signature, `typ`, issuer or audience does not check out.
    #[error("logout token refused: {0}")]
    Token(AuthError),
    /// A claim the spec requires is missing or wrong.
    #[error("logout token refused: {0}")]
    Claim(&'static str),
    /// The same `iss` + `jti` was acted on already.
    #[error("logout token already processed")]
    Replayed,
    /// Redis did not take the revocation.
    #[error("revocation store unavailable: {0}")]
    Unavailable(RedisError),
    /// The subject's browser sessions could not be ended.
    #[error("session store unavailable: {0}")]
    Sessions(String),
}

impl LogoutError {
    /// The response status (§2.8: 400 for a logout that failed).
    pub fn status(&self) -> StatusCode {
        match self {
            LogoutError::Method => StatusCode::METHOD_NOT_ALLOWED,
            LogoutError::Body(e) => e.status(),
            LogoutError::Request(_) | LogoutError::Token(_) | LogoutError::Claim(_) | LogoutError::Replayed => {
                StatusCode::BAD_REQUEST
            }
            LogoutError::Unavailable(_) | LogoutError::Sessions(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `result` label of `tokengate_backchannel_logouts_total`.
    pub fn label(&self) -> &'static str {
        match self {
            LogoutError::Method | LogoutError::Request(_) | LogoutError::Body(_) => "bad_request",
            LogoutError::Token(_) | LogoutError::Claim(_) => "invalid_token",
            LogoutError::Replayed => "replayed",
            LogoutError::Unavailable(_) | LogoutError::Sessions(_) => "unavailable",
        }
    }
}

/// The receiver: its settings, the revocation handle, and its counter.
pub struct Backchannel {
    config: BackchannelConfig,
    revocations: Revocations,
    /// How long a `sid` revocation is kept: the longest life of a token.
    max_token_lifetime: i64,
    results: IntCounterVec,
    /// Browser sign-in's issuer and session service: a logout naming a
    /// subject of that issuer also ends the subject's browser sessions.
    browser: Option<(String, Arc<Sessions>)>,
}

impl Backchannel {
    /// A receiver writing through `revocations`; registers its counter.
    pub fn new(
        config: BackchannelConfig,
        revocations: Revocations,
        max_token_lifetime: std::time::Duration,
        registry: &Registry,
    ) -> Result<Backchannel, prometheus::Error> {
        let results = IntCounterVec::new(
            Opts::new(
                "tokengate_backchannel_logouts_total",
                "OIDC back-channel logout requests, by result.",
            ),
            &["result"],
        )?;
        registry.register(Box::new(results.clone()))?;
        Ok(Backchannel {
            config,
            revocations,
            max_token_lifetime: i64::try_from(max_token_lifetime.as_secs()).unwrap_or(i64::MAX),
            results,
            browser: None,
        })
    }

    /// Also ends the tokengate sessions of a subject `issuer` logs out
    /// (browser sign-in opens them for the provider's subjects): the
    /// revocation alone would let their refresh tokens mint new access
    /// tokens.
    pub fn ending_sessions_of(mut self, issuer: &str, sessions: Arc<Sessions>) -> Backchannel {
        self.browser = Some((issuer.to_owned(), sessions));
        self
    }

    /// True when `path` (normalised) is the receiver's.
    pub fn is_path(&self, path: &str) -> bool {
        path == self.config.path
    }

    /// Answers one request to the receiver's path.
    pub async fn serve(&self, auth: &Authenticator, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let result = self.handle(auth, req).await;
        let label = match &result {
            Ok(_) => "revoked",
            Err(e) => e.label(),
        };
        self.results.with_label_values(&[label]).inc();
        match result {
            Ok((issuer, revocation, seq)) => {
                let (kind, ..) = revocation.script_args();
                tracing::info!(issuer, kind = kind.label(), seq, "back-channel logout: revoked");
                answer(StatusCode::OK, Bytes::new(), None)
            }
            Err(e) => {
                tracing::info!(error = %e, "back-channel logout refused");
                let retry = matches!(e, LogoutError::Unavailable(_) | LogoutError::Sessions(_));
                let mut response = error_answer(&e);
                if retry {
                    response
                        .headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                }
                if matches!(e, LogoutError::Method) {
                    response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
                }
                response
            }
        }
    }

    async fn handle(
        &self,
        auth: &Authenticator,
        req: Request<Incoming>,
    ) -> Result<(String, Revocation, u64), LogoutError> {
        if req.method() != Method::POST {
            return Err(LogoutError::Method);
        }
        let form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !form {
            return Err(LogoutError::Request("not application/x-www-form-urlencoded"));
        }
        let body = crate::body::read(req.into_body(), MAX_BODY)
            .await
            .map_err(LogoutError::Body)?;
        let mut tokens = form_urlencoded::parse(&body).filter(|(k, _)| k == "logout_token");
        let token = match (tokens.next(), tokens.next()) {
            (Some((_, t)), None) if !t.is_empty() => t,
            (None, _) | (Some(_), None) => return Err(LogoutError::Request("no logout_token")),
            (Some(_), Some(_)) => return Err(LogoutError::Request("logout_token given more than once")),
        };
        let claims = auth.verify_logout(&token).await.map_err(LogoutError::Token)?;
        let now = unix_now();
        let checked = check_claims(&claims, now, auth.leeway(), self.max_age())?;
        let revocation = self.revocation_for(&checked, now);
        // Past `iat + max_age + leeway` the token is refused anyway, so the
        // once id need not outlive that.
        let ttl = u64::try_from(self.max_age().saturating_add(2 * auth.leeway())).unwrap_or(u64::MAX);
        let once_id = format!("{}\n{}", checked.issuer, checked.jti);
        // Before the once step: if it fails, the provider's retry does it
        // again (ending a subject's sessions twice is harmless); after it, a
        // retry would be refused as a replay with the sessions alive. A
        // replay is refused first, so it cannot end sessions opened since.
        if let Some((issuer, sessions)) = &self.browser
            && issuer == checked.issuer
            && let Who::Subject(sub) | Who::Both { sub, .. } = checked.who
        {
            if self
                .revocations
                .once_seen(&once_id)
                .await
                .map_err(LogoutError::Unavailable)?
            {
                return Err(LogoutError::Replayed);
            }
            sessions
                .end_subject(sub)
                .await
                .map_err(|e| LogoutError::Sessions(e.to_string()))?;
        }
        match self
            .revocations
            .revoke_once(&revocation, &once_id, ttl)
            .await
            .map_err(LogoutError::Unavailable)?
        {
            Once::Applied(seq) => Ok((checked.issuer.to_owned(), revocation, seq)),
            Once::AlreadyDone => Err(LogoutError::Replayed),
        }
    }

    fn max_age(&self) -> i64 {
        i64::try_from(self.config.max_age.as_secs()).unwrap_or(i64::MAX)
    }

    /// What the logout revokes: the subject's tokens issued up to now, or
    /// the session, as configured, falling back to the one the token names.
    fn revocation_for(&self, c: &Checked<'_>, now: i64) -> Revocation {
        let session = |sid: &str| Revocation::Session {
            id: sid.to_owned(),
            exp: now.saturating_add(self.max_token_lifetime),
        };
        let subject = |sub: &str| Revocation::Subject {
            id: sub.to_owned(),
            before: now,
        };
        match (self.config.revoke, c.who) {
            (_, Who::Subject(sub)) | (LogoutRevokes::Subject, Who::Both { sub, .. }) => subject(sub),
            (_, Who::Session(sid)) | (LogoutRevokes::Session, Who::Both { sid, .. }) => session(sid),
        }
    }
}

/// The claims a checked logout token is acted on by.
#[derive(Debug, PartialEq, Eq)]
struct Checked<'a> {
    issuer: &'a str,
    jti: &'a str,
    who: Who<'a>,
}

/// Whom a logout token names (§2.4: `sub`, `sid`, or both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who<'a> {
    /// Every session of the subject.
    Subject(&'a str),
    /// One session.
    Session(&'a str),
    /// One session of this subject.
    Both { sub: &'a str, sid: &'a str },
}

/// §2.6 steps 4-8 on verified claims, at `now`.
fn check_claims(claims: &Map<String, Value>, now: i64, leeway: i64, max_age: i64) -> Result<Checked<'_>, LogoutError> {
    let text = |name: &'static str| -> Result<Option<&str>, LogoutError> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.as_str())),
            Some(_) => Err(LogoutError::Claim(name)),
        }
    };
    let issuer = text("iss")?.ok_or(LogoutError::Claim("iss"))?;
    let iat = claims
        .get("iat")
        .and_then(numeric_date)
        .ok_or(LogoutError::Claim("iat missing"))?;
    if iat > now.saturating_add(leeway) {
        return Err(LogoutError::Claim("iat in the future"));
    }
    if now.saturating_sub(iat) > max_age.saturating_add(leeway) {
        return Err(LogoutError::Claim("iat older than backchannel_logout.max_age"));
    }
    if let Some(exp) = claims.get("exp") {
        let exp = numeric_date(exp).ok_or(LogoutError::Claim("exp is not a NumericDate"))?;
        if now >= exp.saturating_add(leeway) {
            return Err(LogoutError::Claim("expired"));
        }
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = numeric_date(nbf).ok_or(LogoutError::Claim("nbf is not a NumericDate"))?;
        if now.saturating_add(leeway) < nbf {
            return Err(LogoutError::Claim("not yet valid"));
        }
    }
    let jti = text("jti")?.ok_or(LogoutError::Claim("jti missing"))?;
    let event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(LOGOUT_EVENT));
    if !event.is_some_and(Value::is_object) {
        return Err(LogoutError::Claim("no back-channel logout event"));
    }
    // A nonce would make it an ID token (§2.4): one token must never pass as the other.
    if claims.contains_key("nonce") {
        return Err(LogoutError::Claim("nonce present"));
    }
    let who = match (text("sub")?, text("sid")?) {
        (Some(sub), Some(sid)) => Who::Both { sub, sid },
        (Some(sub), None) => Who::Subject(sub),
        (None, Some(sid)) => Who::Session(sid),
        (None, None) => return Err(LogoutError::Claim("neither sub nor sid")),
    };
    Ok(Checked { issuer, jti, who })
}

fn error_answer(e: &LogoutError) -> Response<Full<Bytes>> {
    // A fixed description per class: the body never echoes the request.
    let description = match e {
        LogoutError::Method => "use POST",
        LogoutError::Request(_) | LogoutError::Body(_) => "expected a form with one logout_token, sent promptly",
        LogoutError::Token(_) | LogoutError::Claim(_) => "the logout token is not valid",
        LogoutError::Replayed => "this logout token was already processed",
        LogoutError::Unavailable(_) | LogoutError::Sessions(_) => {
            "the revocation or session store is unavailable; retry"
        }
    };
    let error = if matches!(e, LogoutError::Unavailable(_)) {
        "temporarily_unavailable"
    } else {
        "invalid_request"
    };
    let body = serde_json::json!({ "error": error, "error_description": description }).to_string();
    answer(e.status(), Bytes::from(body), Some("application/json"))
}

fn answer(status: StatusCode, body: Bytes, content_type: Option<&'static str>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    // §2.8: the response must not be cached.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(ct) = content_type {
        h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn good() -> Value {
        json!({
            "iss": "https://op", "aud": "rp", "iat": NOW - 5, "exp": NOW + 120, "jti": "j1",
            "sub": "alice", "sid": "s1", "events": { LOGOUT_EVENT: {} },
        })
    }

    fn check(v: &Value) -> Result<Checked<'_>, LogoutError> {
        check_claims(v.as_object().unwrap(), NOW, 30, 300)
    }

    #[test]
    fn a_spec_logout_token_passes() {
        let v = good();
        let c = check(&v).unwrap();
        assert_eq!(
            c,
            Checked {
                issuer: "https://op",
                jti: "j1",
                who: Who::Both {
                    sub: "alice",
                    sid: "s1"
                }
            }
        );
    }

    #[test]
    fn each_required_rule_refuses() {
        type Change = fn(&mut Value);
        let cases: Vec<(&str, Change)> = vec![
            ("iat missing", |v| drop(v.as_object_mut().unwrap().remove("iat"))),
            ("iat in the future", |v| v["iat"] = json!(NOW + 31)),
            ("iat older", |v| v["iat"] = json!(NOW - 331)),
            ("expired", |v| v["exp"] = json!(NOW - 31)),
            ("jti missing", |v| drop(v.as_object_mut().unwrap().remove("jti"))),
            ("jti", |v| v["jti"] = json!(7)),
            ("jti", |v| v["jti"] = json!("")),
            ("not yet valid", |v| v["nbf"] = json!(NOW + 31)),
            ("no back-channel logout event", |v| v["events"] = json!({})),
            ("no back-channel logout event", |v| {
                v["events"] = json!({ LOGOUT_EVENT: "yes" })
            }),
            ("no back-channel logout event", |v| {
                drop(v.as_object_mut().unwrap().remove("events"))
            }),
            ("nonce present", |v| v["nonce"] = json!("n")),
            ("neither sub nor sid", |v| {
                let o = v.as_object_mut().unwrap();
                o.remove("sub");
                o.remove("sid");
            }),
            ("sub", |v| v["sub"] = json!("")),
        ];
        for (want, change) in cases {
            let mut v = good();
            change(&mut v);
            let err = check(&v).unwrap_err();
            assert!(err.to_string().contains(want), "{want}: got {err}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
            assert_eq!(err.label(), "invalid_token");
        }
        // Within the leeway on both sides.
        let mut v = good();
        v["iat"] = json!(NOW + 30);
        v["exp"] = json!(NOW - 29);
        assert!(check(&v).is_ok());
    }
}
