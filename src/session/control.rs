//! The control listener: the app's side of the session service. Bound to
//! loopback by default (the app shares the pod's network namespace); when a
//! shared secret is configured every caller must present it as
//! `Authorization: Bearer <secret>`, otherwise only loopback callers are served.
//!
//! | request | effect |
//! |---|---|
//! | `POST /sessions` `{"sub": "...", "claims": {...}}` | opens a session: RFC 6749 §5.1 token response |
//! | `GET /sessions?sub=S` | the subject's active sessions |
//! | `DELETE /sessions/{sid}` | ends one session (204, or 404 if unknown) |
//! | `DELETE /sessions?sub=S` | ends every session of the subject and cuts off its access tokens |

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Map, Value};

use super::Sessions;
use super::http::{error, json, session_error, token_response};

/// Largest `POST /sessions` body.
const MAX_BODY: usize = 16 * 1024;

/// The control service; cheap to clone per connection.
#[derive(Clone)]
pub struct ControlService {
    sessions: Arc<Sessions>,
    peer: Option<SocketAddr>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenRequest {
    sub: String,
    #[serde(default)]
    claims: Map<String, Value>,
}

impl ControlService {
    /// Serves `sessions`.
    pub fn new(sessions: Arc<Sessions>) -> Self {
        ControlService { sessions, peer: None }
    }

    /// The service for one connection from `peer`.
    pub fn for_peer(&self, peer: SocketAddr) -> Self {
        ControlService {
            peer: Some(peer),
            ..self.clone()
        }
    }

    /// The refusal, if the caller may not use the API. Secret configured: it
    /// is required from everyone. None: loopback peers only.
    fn refusal(&self, req: &Request<Incoming>) -> Option<Response<Full<Bytes>>> {
        match &self.sessions.config.control.secret {
            Some(secret) => {
                let presented = req
                    .headers()
                    .get(AUTHORIZATION)
                    .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
                    .unwrap_or_default();
                let matches = aws_lc_rs::constant_time::verify_slices_are_equal(presented, secret).is_ok();
                (!matches).then(|| {
                    error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        "the control secret is missing or wrong",
                    )
                })
            }
            None if self.peer.is_some_and(|p| p.ip().is_loopback()) => None,
            None => Some(error(
                StatusCode::FORBIDDEN,
                "access_denied",
                "the control API serves loopback callers only",
            )),
        }
    }

    async fn handle(self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if let Some(r) = self.refusal(&req) {
            tracing::warn!(peer = ?self.peer, "control request refused");
            return r;
        }
        let path = req.uri().path().to_owned();
        let sub = subject_param(req.uri().query());
        match (req.method().clone(), path.as_str()) {
            (Method::POST, "/sessions") => self.open(req).await,
            (Method::GET, "/sessions") => match sub {
                Some(sub) => match self.sessions.list(&sub).await {
                    Ok(list) => json(
                        StatusCode::OK,
                        serde_json::to_vec(&serde_json::json!({"sub": sub, "sessions": list})).unwrap_or_default(),
                    ),
                    Err(e) => session_error(&e),
                },
                None => error(StatusCode::BAD_REQUEST, "invalid_request", "?sub= is required"),
            },
            (Method::DELETE, "/sessions") => match sub {
                Some(sub) => match self.sessions.end_subject(&sub).await {
                    Ok(n) => json(
                        StatusCode::OK,
                        serde_json::to_vec(&serde_json::json!({"sub": sub, "revoked": n})).unwrap_or_default(),
                    ),
                    Err(e) => session_error(&e),
                },
                None => error(StatusCode::BAD_REQUEST, "invalid_request", "?sub= is required"),
            },
            (Method::DELETE, p) if p.starts_with("/sessions/") => {
                let sid = &p["/sessions/".len()..];
                if sid.is_empty() || sid.contains('/') {
                    return error(StatusCode::NOT_FOUND, "not_found", "no such session");
                }
                match self.sessions.end_session(sid, 0).await {
                    Ok(true) => {
                        let mut r = Response::new(Full::new(Bytes::new()));
                        *r.status_mut() = StatusCode::NO_CONTENT;
                        r
                    }
                    Ok(false) => error(StatusCode::NOT_FOUND, "not_found", "no such session"),
                    Err(e) => session_error(&e),
                }
            }
            (_, "/sessions") => error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "method not allowed"),
            _ => error(StatusCode::NOT_FOUND, "not_found", "no such control endpoint"),
        }
    }

    async fn open(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "invalid_request",
                    "request body larger than 16 KiB",
                );
            }
        };
        let request: OpenRequest = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "expected {\"sub\": \"...\", \"claims\": {...}}",
                );
            }
        };
        match self.sessions.open(&request.sub, &request.claims).await {
            Ok(pair) => token_response(&pair),
            Err(e) => session_error(&e),
        }
    }
}

/// The decoded `sub` query parameter.
fn subject_param(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "sub")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

impl hyper::service::Service<Request<Incoming>> for ControlService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}
