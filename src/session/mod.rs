//! The token lifecycle service, for apps without an issuer of their own:
//! the app opens a session on the control listener after it has checked the
//! user's credentials; tokengate answers with a short-lived access token
//! (a JWT it signs and also accepts) and an opaque refresh token. Clients
//! refresh through the proxy listener, which spends the refresh token and
//! issues a new pair; a spent token presented again ends the session.
//!
//! Everything ended here goes through the revocation protocol (`sid` and
//! `sub` entries), so every sidecar refuses the session's access tokens, and
//! is applied to the local mirror at once, so this sidecar does before the
//! answer leaves.
//!
//! `store` keeps the state, `http` serves the proxy-listener endpoints,
//! `control` the control listener.

pub mod control;
pub mod http;
pub mod metrics;
pub mod store;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use jsonwebtoken::Header;
use prometheus::Registry;
use serde_json::{Map, Value};

pub use self::metrics::RefreshResult;
use self::metrics::{LogoutScope, SessionMetrics};
use self::store::{NewSession, Refreshed, Rotation, SessionInfo, Store, StoreError, TokenHash};
use crate::clock::unix_ms;
use crate::config::{RevocationBackend, RevocationConfig, SessionsConfig};
use crate::revocation::{Revocation, Revocations};

/// Claims the service sets itself; the app may not supply them.
pub use crate::config::RESERVED_SESSION_CLAIMS as RESERVED_CLAIMS;
/// Largest extra-claims object, as JSON: it rides in every access token.
pub const MAX_CLAIMS_BYTES: usize = 4096;
/// Longest subject accepted.
pub const MAX_SUBJECT_BYTES: usize = 256;

/// Why a session operation failed; each variant is one response.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The refresh token is unknown, spent, expired or its session ended (401 `invalid_grant`).
    #[error("refresh token refused: {0}")]
    InvalidGrant(RefreshResult),
    /// The request is malformed (400 `invalid_request`).
    #[error("{0}")]
    BadRequest(&'static str),
    /// The session store could not answer (503 `temporarily_unavailable`).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A token could not be signed or random bytes drawn (500).
    #[error("cannot issue a token: {0}")]
    Issue(String),
}

impl std::fmt::Display for RefreshResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RefreshResult::Rotated => "rotated",
            RefreshResult::Reused => "already used; the session is revoked",
            RefreshResult::Concurrent => "already used by a concurrent request",
            RefreshResult::Expired => "expired",
            RefreshResult::Invalid => "unknown, or its session has ended",
            RefreshResult::Unavailable => "session store unavailable",
        })
    }
}

/// The RFC 6749 §5.1 token response, plus the session id.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TokenResponse {
    /// The signed access JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token is valid for.
    pub expires_in: u64,
    /// The opaque refresh token.
    pub refresh_token: String,
    /// Seconds the refresh token is valid for (Keycloak's field name).
    pub refresh_expires_in: u64,
    /// The session (`sid` claim).
    pub session_id: String,
}

/// The session service; shared by the proxy and control listeners.
pub struct Sessions {
    config: SessionsConfig,
    header: Header,
    jwks: Bytes,
    store: Store,
    revocations: Revocations,
    metrics: SessionMetrics,
}

/// Why the service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A metric could not be registered.
    #[error("session metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

fn random<const N: usize>() -> Result<[u8; N], SessionError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| SessionError::Issue(e.to_string()))?;
    Ok(buf)
}

fn random_id() -> Result<String, SessionError> {
    Ok(URL_SAFE_NO_PAD.encode(random::<16>()?))
}

fn hash(token: &str) -> TokenHash {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A refresh token: `<43 chars of base64url, 256 random bits>.<expiry>`. The
/// expiry is readable so an expired token is refused without a store round
/// trip; changing it changes the hash, so it cannot be extended.
fn new_refresh_token(exp: i64) -> Result<(String, TokenHash), SessionError> {
    let token = format!("{}.{exp}", URL_SAFE_NO_PAD.encode(random::<32>()?));
    let h = hash(&token);
    Ok((token, h))
}

/// The expiry a well-formed refresh token states, or `None` if it is not one.
fn refresh_token_exp(token: &str) -> Option<i64> {
    let (random, exp) = token.split_once('.')?;
    if random.len() != 43
        || !random
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    exp.parse().ok()
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Sessions {
    /// The service for `config`, keeping state where the revocation backend lives.
    pub fn new(
        config: &SessionsConfig,
        revocation: &RevocationConfig,
        revocations: Revocations,
        registry: &Registry,
    ) -> Result<Sessions, SetupError> {
        let store = match &revocation.backend {
            RevocationBackend::Memory => Store::memory(),
            RevocationBackend::Redis(r) => Store::redis(r),
        };
        let mut header = Header::new(config.signing.algorithm);
        header.kid = Some(config.signing.kid.clone());
        // RFC 9068: marks these as access tokens, not ID tokens.
        header.typ = Some("at+jwt".to_owned());
        let keys: Vec<&jsonwebtoken::jwk::Jwk> = config.signing.public_jwk.iter().collect();
        let jwks = Bytes::from(serde_json::json!({ "keys": keys }).to_string());
        Ok(Sessions {
            config: config.clone(),
            header,
            jwks,
            store,
            revocations,
            metrics: SessionMetrics::new(registry)?,
        })
    }

    /// The settings this service runs with.
    pub fn config(&self) -> &SessionsConfig {
        &self.config
    }

    /// The JWKS document with the public signing key (empty for HMAC).
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// Applies revocations a store transition made to the local mirror now,
    /// rather than when the channel message arrives (the redis script has
    /// already published them; the memory backend has only this mirror).
    fn enforce(&self, revocations: &[Revocation]) {
        for r in revocations {
            self.revocations.apply(r);
        }
    }

    /// `iat` for a new token of `sub`: after any logout-all cut-off, so a
    /// login in the same second as a logout-all is not born revoked.
    fn issued_at(&self, sub: &str, now: i64, store_cutoff: Option<i64>) -> i64 {
        let cutoff = store_cutoff.max(self.revocations.subject_cutoff(sub));
        cutoff.map_or(now, |c| now.max(c.saturating_add(1)))
    }

    fn sign(
        &self,
        sub: &str,
        sid: &str,
        extra: &Map<String, Value>,
        iat: i64,
        exp: i64,
    ) -> Result<(String, String), SessionError> {
        let jti = random_id()?;
        let mut claims = extra.clone();
        claims.insert("iss".into(), self.config.issuer.clone().into());
        claims.insert("aud".into(), self.config.audience.clone().into());
        claims.insert("sub".into(), sub.into());
        claims.insert("sid".into(), sid.into());
        claims.insert("jti".into(), jti.clone().into());
        claims.insert("iat".into(), iat.into());
        claims.insert("exp".into(), exp.into());
        let token = jsonwebtoken::encode(&self.header, &claims, &self.config.signing.key)
            .map_err(|e| SessionError::Issue(e.to_string()))?;
        Ok((token, jti))
    }

    fn response(
        &self,
        access_token: String,
        refresh_token: String,
        sid: String,
        now: i64,
        refresh_exp: i64,
    ) -> TokenResponse {
        TokenResponse {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in: self.config.access_token_ttl.as_secs(),
            refresh_token,
            refresh_expires_in: u64::try_from(refresh_exp - now).unwrap_or(0),
            session_id: sid,
        }
    }

    /// Checks a subject and extra claims from the app.
    pub fn check_request(sub: &str, claims: &Map<String, Value>) -> Result<(), SessionError> {
        if sub.is_empty() || sub.len() > MAX_SUBJECT_BYTES || sub.chars().any(char::is_control) {
            return Err(SessionError::BadRequest(
                "`sub` must be 1 to 256 bytes of text without control characters",
            ));
        }
        if claims.keys().any(|k| RESERVED_CLAIMS.contains(&k.as_str())) {
            return Err(SessionError::BadRequest(
                "`claims` may not set iss, sub, aud, exp, nbf, iat, jti or sid",
            ));
        }
        Ok(())
    }

    /// Opens a session for `sub` (already authenticated by the app).
    pub async fn open(&self, sub: &str, claims: &Map<String, Value>) -> Result<TokenResponse, SessionError> {
        Self::check_request(sub, claims)?;
        let claims_json = Value::Object(claims.clone()).to_string();
        if claims_json.len() > MAX_CLAIMS_BYTES {
            return Err(SessionError::BadRequest("`claims` is larger than 4 KiB as JSON"));
        }
        let now_ms = unix_ms();
        let now = now_ms / 1000;
        let sid = random_id()?;
        let refresh_exp = now.saturating_add(secs(self.config.refresh_token_ttl));
        let (refresh_token, token) = new_refresh_token(refresh_exp)?;
        let access_exp = now.saturating_add(secs(self.config.access_token_ttl));
        let opened = self
            .store
            .open(&NewSession {
                sid: &sid,
                sub,
                claims: &claims_json,
                token,
                token_exp: refresh_exp,
                now_ms,
                access_exp,
                cap: self.config.max_sessions_per_subject,
            })
            .await?;
        self.enforce(&opened.evicted);
        self.metrics.evicted.inc_by(opened.evicted.len() as u64);
        let iat = self.issued_at(sub, now, opened.cutoff);
        let (access_token, _) = self.sign(sub, &sid, claims, iat, access_exp.max(iat + 1))?;
        self.metrics.opened.inc();
        tracing::info!(sid = %sid, evicted = opened.evicted.len(), "session opened");
        Ok(self.response(access_token, refresh_token, sid, now, refresh_exp))
    }

    /// Spends `refresh_token` and issues a new pair.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, SessionError> {
        let result = self.rotate(refresh_token).await;
        let label = match &result {
            Ok(_) => RefreshResult::Rotated,
            Err(SessionError::InvalidGrant(r)) => *r,
            Err(_) => RefreshResult::Unavailable,
        };
        self.metrics.refresh(label);
        result
    }

    async fn rotate(&self, refresh_token: &str) -> Result<TokenResponse, SessionError> {
        let now_ms = unix_ms();
        let now = now_ms / 1000;
        let stated_exp = refresh_token_exp(refresh_token).ok_or(SessionError::InvalidGrant(RefreshResult::Invalid))?;
        if stated_exp < now {
            return Err(SessionError::InvalidGrant(RefreshResult::Expired));
        }
        let refresh_exp = now.saturating_add(secs(self.config.refresh_token_ttl));
        let (next_token, next) = new_refresh_token(refresh_exp)?;
        let access_exp = now.saturating_add(secs(self.config.access_token_ttl));
        let outcome = self
            .store
            .refresh(&Rotation {
                presented: hash(refresh_token),
                next,
                next_exp: refresh_exp,
                now_ms,
                access_exp,
                grace_ms: i64::try_from(self.config.reuse_grace.as_millis()).unwrap_or(i64::MAX),
            })
            .await?;
        match outcome {
            Refreshed::Rotated {
                sid,
                sub,
                claims,
                cutoff,
            } => {
                let extra = match serde_json::from_str::<Value>(&claims) {
                    Ok(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                let iat = self.issued_at(&sub, now, cutoff);
                let (access_token, _) = self.sign(&sub, &sid, &extra, iat, access_exp.max(iat + 1))?;
                Ok(self.response(access_token, next_token, sid, now, refresh_exp))
            }
            Refreshed::Reused { revocation } => {
                self.enforce(std::slice::from_ref(&revocation));
                if let Revocation::Session { id, .. } = &revocation {
                    tracing::warn!(sid = %id, "refresh token reused: session revoked");
                }
                Err(SessionError::InvalidGrant(RefreshResult::Reused))
            }
            Refreshed::Concurrent => Err(SessionError::InvalidGrant(RefreshResult::Concurrent)),
            Refreshed::Expired => Err(SessionError::InvalidGrant(RefreshResult::Expired)),
            Refreshed::Invalid => Err(SessionError::InvalidGrant(RefreshResult::Invalid)),
        }
    }

    /// Ends session `sid`; `token_exp` is the exp of an access token of it
    /// the caller holds (0 when ending by id from the control API). Returns
    /// whether the session was still open.
    pub async fn end_session(&self, sid: &str, token_exp: i64) -> Result<bool, SessionError> {
        let (revocation, existed) = self.store.end(sid, token_exp).await?;
        if let Some(r) = revocation {
            self.enforce(std::slice::from_ref(&r));
        }
        if existed || token_exp > 0 {
            self.metrics.logout(LogoutScope::Session);
        }
        Ok(existed)
    }

    /// Ends the session a refresh token (current or spent) belongs to.
    pub async fn end_session_of_refresh_token(&self, refresh_token: &str) -> Result<bool, SessionError> {
        if refresh_token_exp(refresh_token).is_none() {
            return Err(SessionError::InvalidGrant(RefreshResult::Invalid));
        }
        match self.store.session_of(&hash(refresh_token)).await? {
            Some(sid) => self.end_session(&sid, 0).await,
            None => Err(SessionError::InvalidGrant(RefreshResult::Invalid)),
        }
    }

    /// Logs `sub` out everywhere: a subject cut-off at now (every access
    /// token issued so far, by any sidecar) and every refresh token.
    pub async fn end_subject(&self, sub: &str) -> Result<usize, SessionError> {
        // `iat <= before` is revoked, in whole seconds. A login after an
        // earlier cut-off c got iat c + 1 (`issued_at`), so a cut-off that
        // must cover every token issued so far is at least c + 1: "now"
        // alone would miss that token when both logouts share a second.
        let now = unix_ms() / 1000;
        let before = match self.revocations.subject_cutoff(sub) {
            Some(c) if c >= now => c.saturating_add(1),
            _ => now,
        };
        let (ended, before) = self.store.end_subject(sub, before).await?;
        self.enforce(&[Revocation::Subject {
            id: sub.to_owned(),
            before,
        }]);
        self.metrics.logout(LogoutScope::Subject);
        tracing::info!(ended, "subject logged out everywhere");
        Ok(ended)
    }

    /// The active sessions of `sub`, oldest first.
    pub async fn list(&self, sub: &str) -> Result<Vec<SessionInfo>, SessionError> {
        Ok(self.store.list(sub, unix_ms() / 1000).await?)
    }
}
