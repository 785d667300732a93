//! Session state: which refresh token is current for each session, which
//! sessions a subject has, and the transitions between them (open, rotate,
//! end). The same state machine twice: in memory for the `memory` backend,
//! and as Lua scripts for the `redis` backend, where each transition is one
//! atomic script so concurrent refreshes on different sidecars see one order.
//!
//! Refresh tokens are stored only as their SHA-256 ([`TokenHash`]); a spent
//! token's entry is kept until its own expiry, so presenting it again is
//! recognised as reuse rather than as an unknown token.
//!
//! `memory.rs` and `redis_store.rs` are the two backends; the Redis transitions are
//! the Lua scripts in `lua/`.

mod memory;
mod redis_store;

pub use self::memory::Memory;
pub use self::redis_store::RedisStore;

use std::sync::Mutex;

use crate::config::RedisConfig;
use crate::redis_client::RedisError;
use crate::revocation::{Keys, Revocation};

/// SHA-256 of a refresh token.
pub type TokenHash = [u8; 32];

/// A session to create.
pub struct NewSession<'a> {
    /// Random session id.
    pub sid: &'a str,
    /// Subject.
    pub sub: &'a str,
    /// Extra access-token claims, as a JSON object.
    pub claims: &'a str,
    /// Hash of the first refresh token.
    pub token: TokenHash,
    /// The refresh token's expiry (unix seconds); the session lives as long.
    pub token_exp: i64,
    /// Now, unix milliseconds.
    pub now_ms: i64,
    /// `exp` of the first access token.
    pub access_exp: i64,
    /// Session cap for the subject.
    pub cap: Option<u32>,
}

/// A refresh to perform.
pub struct Rotation {
    /// Hash of the presented refresh token.
    pub presented: TokenHash,
    /// Hash of its replacement.
    pub next: TokenHash,
    /// The replacement's expiry (unix seconds).
    pub next_exp: i64,
    /// Now, unix milliseconds.
    pub now_ms: i64,
    /// `exp` of the access token about to be issued.
    pub access_exp: i64,
    /// Reuse within this many milliseconds of the rotation is a race, not theft.
    pub grace_ms: i64,
}

/// What a refresh found.
#[derive(Debug, PartialEq, Eq)]
pub enum Refreshed {
    /// The token was current and is now spent; a new one is stored.
    Rotated {
        /// Session id.
        sid: String,
        /// Subject.
        sub: String,
        /// Extra claims (JSON object text).
        claims: String,
        /// The subject's logout-all cut-off, if any.
        cutoff: Option<i64>,
    },
    /// The token was already spent: the session is ended and `revocation` published.
    Reused {
        /// The revocation of the session's access tokens.
        revocation: Revocation,
    },
    /// The token was spent within the grace period (a racing duplicate).
    Concurrent,
    /// The session outlived its refresh token's expiry.
    Expired,
    /// Unknown token, or its session has ended.
    Invalid,
}

/// The outcome of opening a session.
#[derive(Debug, Default)]
pub struct Opened {
    /// Sessions of the subject ended to respect the cap.
    pub evicted: Vec<Revocation>,
    /// The subject's logout-all cut-off, if any.
    pub cutoff: Option<i64>,
}

/// One active session as listed on the control API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionInfo {
    /// Session id (`sid`).
    pub sid: String,
    /// When it was opened (unix seconds).
    pub created: i64,
    /// When its refresh token was last rotated (unix seconds).
    pub last_refreshed: i64,
    /// When its current refresh token expires (unix seconds).
    pub expires: i64,
}

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis failed or timed out.
    #[error("session store: {0}")]
    Redis(#[from] RedisError),
    /// A script answered in a shape this version does not understand.
    #[error("session store: unexpected reply from redis ({0})")]
    Reply(&'static str),
    /// Too many distinct refreshes at once (browser sign-in's bound).
    #[error("session store: too many refreshes at once")]
    Busy,
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Redis(RedisError::Redis(e))
    }
}

/// The session store for the configured backend.
pub enum Store {
    /// One process: a map behind a mutex (never held across an await).
    Memory(Mutex<Memory>),
    /// Shared by every sidecar through Redis.
    Redis(Box<RedisStore>),
}

impl Store {
    /// A store in process memory.
    pub fn memory() -> Store {
        Store::Memory(Mutex::new(Memory::default()))
    }

    /// A store in the Redis that `config` names.
    pub fn redis(config: &RedisConfig) -> Store {
        Store::Redis(Box::new(RedisStore::new(config)))
    }

    fn lock(m: &Mutex<Memory>) -> std::sync::MutexGuard<'_, Memory> {
        // A panic mid-update leaves maps that are still maps; keep serving.
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a session and its first refresh token, evicting the subject's
    /// oldest sessions beyond the cap.
    pub async fn open(&self, s: &NewSession<'_>) -> Result<Opened, StoreError> {
        match self {
            Store::Memory(m) => Ok(Self::lock(m).open(s)),
            Store::Redis(r) => r.open(s).await,
        }
    }

    /// Spends `presented` and stores `next`, or reports why not.
    pub async fn refresh(&self, r: &Rotation) -> Result<Refreshed, StoreError> {
        match self {
            Store::Memory(m) => Ok(Self::lock(m).refresh(r)),
            Store::Redis(s) => s.refresh(r).await,
        }
    }

    /// Ends session `sid`. `min_exp` > 0 revokes the sid even if the session
    /// is already gone (the caller holds a token of it that expires then).
    /// Returns the revocation made, if any, and whether the session existed.
    pub async fn end(&self, sid: &str, min_exp: i64) -> Result<(Option<Revocation>, bool), StoreError> {
        match self {
            Store::Memory(m) => Ok(Self::lock(m).end(sid, min_exp)),
            Store::Redis(r) => r.end(sid, min_exp).await,
        }
    }

    /// The session a refresh token (current or spent) belongs to.
    pub async fn session_of(&self, token: &TokenHash) -> Result<Option<String>, StoreError> {
        match self {
            Store::Memory(m) => Ok(Self::lock(m).lookup(token)),
            Store::Redis(r) => r.session_of(token).await,
        }
    }

    /// Ends every session of `sub` with a cut-off at `before` (the caller
    /// has raised it past any earlier cut-off it knows of); returns how many
    /// sessions there were and the cut-off written, which the redis script
    /// raises past the earlier one Redis holds. The caller publishes it
    /// (memory) or the script does (redis).
    pub async fn end_subject(&self, sub: &str, before: i64) -> Result<(usize, i64), StoreError> {
        match self {
            Store::Memory(m) => Ok((Self::lock(m).end_subject(sub), before)),
            Store::Redis(r) => r.end_subject(sub, before).await,
        }
    }

    /// The active sessions of `sub`, oldest first.
    pub async fn list(&self, sub: &str, now: i64) -> Result<Vec<SessionInfo>, StoreError> {
        match self {
            Store::Memory(m) => Ok(Self::lock(m).list(sub, now)),
            Store::Redis(r) => r.list(sub).await,
        }
    }
}
