//! Session state: which refresh token is current for each session, which
//! sessions a subject has, and the transitions between them (open, rotate,
//! end). The same state machine twice: in memory for the `memory` backend,
//! and as Lua scripts for the `redis` backend, where each transition is one
//! atomic script so concurrent refreshes on different sidecars see one order.
//!
//! Refresh tokens are stored only as their SHA-256 ([`TokenHash`]); a spent
//! token's entry is kept until its own expiry, so presenting it again is
//! recognised as reuse rather than as an unknown token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;

use crate::revocation::sync::{RedisTarget, SyncError};
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
    Redis(#[from] SyncError),
    /// A script answered in a shape this version does not understand.
    #[error("session store: unexpected reply from redis ({0})")]
    Reply(&'static str),
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Redis(SyncError::Redis(e))
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

    /// A store in the Redis that `target` names.
    pub fn redis(target: RedisTarget) -> Store {
        Store::Redis(Box::new(RedisStore::new(target)))
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
            Store::Memory(m) => Ok(Self::lock(m).tokens.get(token).map(|(sid, _)| sid.clone())),
            Store::Redis(r) => r.session_of(token).await,
        }
    }

    /// Ends every session of `sub`; returns how many there were. The caller
    /// publishes the subject cut-off (memory) or the script does (redis).
    pub async fn end_subject(&self, sub: &str, before: i64) -> Result<usize, StoreError> {
        match self {
            Store::Memory(m) => Ok(Self::lock(m).end_subject(sub)),
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

// ---------------------------------------------------------------- memory

struct Session {
    sub: String,
    created: i64,
    refreshed: i64,
    expires: i64,
    current: TokenHash,
    previous: Option<TokenHash>,
    rotated_ms: i64,
    claims: String,
    access_exp: i64,
}

/// The memory backend's state.
#[derive(Default)]
pub struct Memory {
    sessions: HashMap<String, Session>,
    /// Every refresh token not yet expired, current or spent: (sid, exp).
    tokens: HashMap<TokenHash, (String, i64)>,
    /// Session ids per subject, oldest first.
    subjects: HashMap<String, Vec<String>>,
    swept_at: i64,
}

impl Memory {
    /// Drops what has expired, at most once a minute; keeps memory bounded
    /// by the live sessions as Redis TTLs do.
    fn sweep(&mut self, now: i64) {
        if now - self.swept_at < 60 {
            return;
        }
        self.swept_at = now;
        self.tokens.retain(|_, (_, exp)| *exp >= now);
        self.sessions.retain(|_, s| s.expires >= now);
        let sessions = &self.sessions;
        self.subjects.retain(|_, sids| {
            sids.retain(|sid| sessions.contains_key(sid));
            !sids.is_empty()
        });
    }

    fn open(&mut self, s: &NewSession<'_>) -> Opened {
        let now = s.now_ms / 1000;
        self.sweep(now);
        self.sessions.insert(
            s.sid.to_owned(),
            Session {
                sub: s.sub.to_owned(),
                created: now,
                refreshed: now,
                expires: s.token_exp,
                current: s.token,
                previous: None,
                rotated_ms: s.now_ms,
                claims: s.claims.to_owned(),
                access_exp: s.access_exp,
            },
        );
        self.tokens.insert(s.token, (s.sid.to_owned(), s.token_exp));
        let sids = self.subjects.entry(s.sub.to_owned()).or_default();
        sids.push(s.sid.to_owned());
        let sessions = &self.sessions;
        sids.retain(|sid| sessions.get(sid).is_some_and(|x| x.expires >= now));
        let excess = s.cap.map_or(0, |cap| sids.len().saturating_sub(cap as usize));
        let oldest: Vec<String> = sids.drain(..excess).collect();
        let mut opened = Opened::default();
        for sid in oldest {
            if let Some(gone) = self.sessions.remove(&sid) {
                self.tokens.remove(&gone.current);
                opened.evicted.push(Revocation::Session {
                    id: sid,
                    exp: gone.access_exp,
                });
            }
        }
        opened
    }

    fn refresh(&mut self, r: &Rotation) -> Refreshed {
        let now = r.now_ms / 1000;
        self.sweep(now);
        let Some((sid, token_exp)) = self.tokens.get(&r.presented).cloned() else {
            return Refreshed::Invalid;
        };
        if token_exp < now {
            return Refreshed::Expired;
        }
        let Some(session) = self.sessions.get_mut(&sid) else {
            return Refreshed::Invalid;
        };
        if session.current != r.presented {
            if r.grace_ms > 0 && session.previous == Some(r.presented) && r.now_ms - session.rotated_ms <= r.grace_ms {
                return Refreshed::Concurrent;
            }
            let exp = session.access_exp;
            let current = session.current;
            let sub = session.sub.clone();
            self.sessions.remove(&sid);
            self.tokens.remove(&current);
            if let Some(sids) = self.subjects.get_mut(&sub) {
                sids.retain(|s| *s != sid);
            }
            return Refreshed::Reused {
                revocation: Revocation::Session { id: sid, exp },
            };
        }
        if session.expires < now {
            return Refreshed::Expired;
        }
        session.previous = Some(session.current);
        session.current = r.next;
        session.rotated_ms = r.now_ms;
        session.refreshed = now;
        session.expires = r.next_exp;
        session.access_exp = r.access_exp;
        let refreshed = Refreshed::Rotated {
            sid: sid.clone(),
            sub: session.sub.clone(),
            claims: session.claims.clone(),
            cutoff: None,
        };
        self.tokens.insert(r.next, (sid, r.next_exp));
        refreshed
    }

    fn end(&mut self, sid: &str, min_exp: i64) -> (Option<Revocation>, bool) {
        let Some(session) = self.sessions.remove(sid) else {
            let revocation = (min_exp > 0).then(|| Revocation::Session {
                id: sid.to_owned(),
                exp: min_exp,
            });
            return (revocation, false);
        };
        self.tokens.remove(&session.current);
        if let Some(sids) = self.subjects.get_mut(&session.sub) {
            sids.retain(|s| s != sid);
        }
        let revocation = Revocation::Session {
            id: sid.to_owned(),
            exp: session.access_exp.max(min_exp),
        };
        (Some(revocation), true)
    }

    fn end_subject(&mut self, sub: &str) -> usize {
        let sids = self.subjects.remove(sub).unwrap_or_default();
        let mut ended = 0;
        for sid in sids {
            if let Some(session) = self.sessions.remove(&sid) {
                self.tokens.remove(&session.current);
                ended += 1;
            }
        }
        ended
    }

    fn list(&self, sub: &str, now: i64) -> Vec<SessionInfo> {
        let Some(sids) = self.subjects.get(sub) else {
            return Vec::new();
        };
        sids.iter()
            .filter_map(|sid| {
                let s = self.sessions.get(sid).filter(|s| s.expires >= now)?;
                Some(SessionInfo {
                    sid: sid.clone(),
                    created: s.created,
                    last_refreshed: s.refreshed,
                    expires: s.expires,
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------- redis

/// Keys, all under the revocation prefix's hash tag `{p}`:
///
/// | key | type | content | TTL |
/// |---|---|---|---|
/// | `{p}:session:<sid>` | hash | sub, created, refreshed, expires, current, previous, rotated_ms, claims, access_exp | its refresh token's expiry |
/// | `{p}:refresh:<hash>` | string | sid (current or spent token) | the token's expiry |
/// | `{p}:sessions:<sub>` | sorted set | sid scored by creation (ms) | the latest session expiry |
///
/// Every script also gets `KEYS = [revoked:sid, seq, revoked:sub]` and the
/// channel, and revokes through the protocol's own function, so what a
/// script ends is published to every sidecar in the same atomic step.
const COMMON: &str = r#"
local p = ARGV[1]
local channel = ARGV[2]
local function extend(key, exp, now)
  local ttl = redis.call('TTL', key)
  if ttl < 0 or now + ttl < tonumber(exp) then redis.call('EXPIREAT', key, exp) end
end
local function drop(sid)
  local key = p .. ':session:' .. sid
  local f = redis.call('HMGET', key, 'sub', 'current', 'access_exp')
  if not f[1] then return nil end
  redis.call('DEL', p .. ':refresh:' .. f[2], key)
  redis.call('ZREM', p .. ':sessions:' .. f[1], sid)
  return f[3]
end
"#;

/// ARGV[3] sid, [4] sub, [5] token hash, [6] token exp, [7] now ms,
/// [8] claims, [9] access exp, [10] cap (0 = none).
/// Returns `[cutoff or '', evicted sid, its access exp, ...]`.
const OPEN: &str = r#"
local sid, sub, hash, exp = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now = math.floor(tonumber(ARGV[7]) / 1000)
local key = p .. ':session:' .. sid
local subj = p .. ':sessions:' .. sub
redis.call('HSET', key, 'sub', sub, 'created', now, 'refreshed', now, 'expires', exp,
  'current', hash, 'rotated_ms', ARGV[7], 'claims', ARGV[8], 'access_exp', ARGV[9])
redis.call('EXPIREAT', key, exp)
redis.call('SET', p .. ':refresh:' .. hash, sid)
redis.call('EXPIREAT', p .. ':refresh:' .. hash, exp)
redis.call('ZADD', subj, ARGV[7], sid)
extend(subj, exp, now)
for _, s in ipairs(redis.call('ZRANGE', subj, 0, -1)) do
  if redis.call('EXISTS', p .. ':session:' .. s) == 0 then redis.call('ZREM', subj, s) end
end
local out = {redis.call('ZSCORE', KEYS[3], sub) or ''}
local cap = tonumber(ARGV[10])
local n = redis.call('ZCARD', subj)
if cap > 0 and n > cap then
  for _, s in ipairs(redis.call('ZRANGE', subj, 0, n - cap - 1)) do
    local aexp = drop(s)
    if aexp then
      revoke(KEYS[1], KEYS[2], 'sid', s, aexp, channel)
      table.insert(out, s)
      table.insert(out, aexp)
    end
  end
end
return out
"#;

/// ARGV[3] presented hash, [4] next hash, [5] next exp, [6] now ms,
/// [7] access exp, [8] grace ms.
/// Returns `['rotated', sid, sub, claims, cutoff or '']`, `['reused', sid, access exp]`,
/// `['concurrent']`, `['expired']` or `['invalid']`.
const REFRESH: &str = r#"
local presented, nexth, nexp, now_ms = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local now = math.floor(now_ms / 1000)
local sid = redis.call('GET', p .. ':refresh:' .. presented)
if not sid then return {'invalid'} end
local key = p .. ':session:' .. sid
local f = redis.call('HMGET', key, 'sub', 'current', 'previous', 'rotated_ms', 'expires', 'claims')
local sub = f[1]
if not sub then return {'invalid'} end
if f[2] ~= presented then
  local grace = tonumber(ARGV[8])
  if grace > 0 and f[3] == presented and now_ms - tonumber(f[4]) <= grace then return {'concurrent'} end
  local aexp = drop(sid)
  revoke(KEYS[1], KEYS[2], 'sid', sid, aexp, channel)
  return {'reused', sid, aexp}
end
if tonumber(f[5]) < now then return {'expired'} end
redis.call('HSET', key, 'current', nexth, 'previous', presented, 'rotated_ms', ARGV[6],
  'refreshed', now, 'expires', nexp, 'access_exp', ARGV[7])
redis.call('EXPIREAT', key, nexp)
redis.call('SET', p .. ':refresh:' .. nexth, sid)
redis.call('EXPIREAT', p .. ':refresh:' .. nexth, nexp)
extend(p .. ':sessions:' .. sub, nexp, now)
return {'rotated', sid, sub, f[6], redis.call('ZSCORE', KEYS[3], sub) or ''}
"#;

/// ARGV[3] sid, [4] min exp (0: only if the session exists).
/// Returns `[existed 0|1, revoked exp or '']`.
const END: &str = r#"
local sid, min_exp = ARGV[3], tonumber(ARGV[4])
local aexp = drop(sid)
local existed = 0
local exp = min_exp
if aexp then
  existed = 1
  if tonumber(aexp) > exp then exp = tonumber(aexp) end
end
if existed == 0 and min_exp <= 0 then return {0, ''} end
revoke(KEYS[1], KEYS[2], 'sid', sid, exp, channel)
return {existed, tostring(exp)}
"#;

/// ARGV[3] sub, [4] cut-off. Returns `[sessions ended]`.
const END_SUBJECT: &str = r#"
local sub = ARGV[3]
local n = 0
for _, s in ipairs(redis.call('ZRANGE', p .. ':sessions:' .. sub, 0, -1)) do
  if drop(s) then n = n + 1 end
end
redis.call('DEL', p .. ':sessions:' .. sub)
revoke(KEYS[3], KEYS[2], 'sub', sub, ARGV[4], channel)
return {n}
"#;

/// ARGV[3] token hash. Returns `[sid]` or `[]`.
const LOOKUP: &str = r#"
return {redis.call('GET', p .. ':refresh:' .. ARGV[3])}
"#;

/// ARGV[3] sub. Returns `[sid, created, refreshed, expires, ...]`, oldest first.
const LIST: &str = r#"
local out = {}
for _, s in ipairs(redis.call('ZRANGE', p .. ':sessions:' .. ARGV[3], 0, -1)) do
  local f = redis.call('HMGET', p .. ':session:' .. s, 'created', 'refreshed', 'expires')
  if f[1] then
    table.insert(out, s); table.insert(out, f[1]); table.insert(out, f[2]); table.insert(out, f[3])
  end
end
return out
"#;

/// The redis backend: one cached multiplexed connection, re-opened after a failure.
pub struct RedisStore {
    target: RedisTarget,
    conn: ArcSwapOption<MultiplexedConnection>,
    scripts: Scripts,
}

struct Scripts {
    open: redis::Script,
    refresh: redis::Script,
    end: redis::Script,
    end_subject: redis::Script,
    list: redis::Script,
    lookup: redis::Script,
}

fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!(
        "{}{COMMON}{body}",
        crate::revocation::protocol::REVOKE_FUNCTION
    ))
}

fn hex(hash: &TokenHash) -> String {
    use std::fmt::Write;
    hash.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl RedisStore {
    fn new(target: RedisTarget) -> RedisStore {
        RedisStore {
            target,
            conn: ArcSwapOption::empty(),
            scripts: Scripts {
                open: script(OPEN),
                refresh: script(REFRESH),
                end: script(END),
                end_subject: script(END_SUBJECT),
                list: script(LIST),
                lookup: script(LOOKUP),
            },
        }
    }

    fn keys(&self) -> &Keys {
        &self.target.keys
    }

    /// Runs `script` with the common keys and args followed by `args`.
    async fn run(
        &self,
        script: &redis::Script,
        args: impl FnOnce(&mut redis::ScriptInvocation<'_>),
    ) -> Result<Vec<redis::Value>, StoreError> {
        let mut conn = match self.conn.load_full() {
            Some(c) => MultiplexedConnection::clone(&c),
            None => {
                let c = self.target.connect().await?;
                self.conn.store(Some(Arc::new(c.clone())));
                c
            }
        };
        let keys = self.keys();
        let mut invocation = script.key(&keys.sid);
        invocation
            .key(&keys.seq)
            .key(&keys.sub)
            .arg(&keys.tag)
            .arg(&keys.channel);
        args(&mut invocation);
        match invocation.invoke_async::<Vec<redis::Value>>(&mut conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_unrecoverable_error() {
                    // The next call connects afresh instead of reusing a dead socket.
                    self.conn.store(None);
                }
                Err(e.into())
            }
        }
    }

    async fn open(&self, s: &NewSession<'_>) -> Result<Opened, StoreError> {
        let reply = self
            .run(&self.scripts.open, |i| {
                i.arg(s.sid)
                    .arg(s.sub)
                    .arg(hex(&s.token))
                    .arg(s.token_exp)
                    .arg(s.now_ms)
                    .arg(s.claims)
                    .arg(s.access_exp)
                    .arg(s.cap.unwrap_or(0));
            })
            .await?;
        let mut it = reply.iter();
        let cutoff = it.next().and_then(int);
        let mut evicted = Vec::new();
        while let (Some(sid), Some(exp)) = (it.next().and_then(text), it.next().and_then(int)) {
            evicted.push(Revocation::Session { id: sid, exp });
        }
        Ok(Opened { evicted, cutoff })
    }

    async fn refresh(&self, r: &Rotation) -> Result<Refreshed, StoreError> {
        let reply = self
            .run(&self.scripts.refresh, |i| {
                i.arg(hex(&r.presented))
                    .arg(hex(&r.next))
                    .arg(r.next_exp)
                    .arg(r.now_ms)
                    .arg(r.access_exp)
                    .arg(r.grace_ms);
            })
            .await?;
        let field = |i: usize| reply.get(i).and_then(text);
        Ok(match field(0).as_deref() {
            Some("rotated") => Refreshed::Rotated {
                sid: field(1).ok_or(StoreError::Reply("rotated without sid"))?,
                sub: field(2).ok_or(StoreError::Reply("rotated without sub"))?,
                claims: field(3).unwrap_or_else(|| "{}".to_owned()),
                cutoff: reply.get(4).and_then(int),
            },
            Some("reused") => Refreshed::Reused {
                revocation: Revocation::Session {
                    id: field(1).ok_or(StoreError::Reply("reused without sid"))?,
                    exp: reply
                        .get(2)
                        .and_then(int)
                        .ok_or(StoreError::Reply("reused without exp"))?,
                },
            },
            Some("concurrent") => Refreshed::Concurrent,
            Some("expired") => Refreshed::Expired,
            Some("invalid") => Refreshed::Invalid,
            _ => return Err(StoreError::Reply("unknown refresh result")),
        })
    }

    async fn end(&self, sid: &str, min_exp: i64) -> Result<(Option<Revocation>, bool), StoreError> {
        let reply = self
            .run(&self.scripts.end, |i| {
                i.arg(sid).arg(min_exp);
            })
            .await?;
        let existed = reply.first().and_then(int) == Some(1);
        let revocation = reply.get(1).and_then(int).map(|exp| Revocation::Session {
            id: sid.to_owned(),
            exp,
        });
        Ok((revocation, existed))
    }

    async fn session_of(&self, token: &TokenHash) -> Result<Option<String>, StoreError> {
        let reply = self
            .run(&self.scripts.lookup, |i| {
                i.arg(hex(token));
            })
            .await?;
        Ok(reply.first().and_then(text))
    }

    async fn end_subject(&self, sub: &str, before: i64) -> Result<usize, StoreError> {
        let reply = self
            .run(&self.scripts.end_subject, |i| {
                i.arg(sub).arg(before);
            })
            .await?;
        let n = reply
            .first()
            .and_then(int)
            .ok_or(StoreError::Reply("end_subject without count"))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    async fn list(&self, sub: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let reply = self
            .run(&self.scripts.list, |i| {
                i.arg(sub);
            })
            .await?;
        Ok(reply
            .chunks_exact(4)
            .filter_map(|c| {
                Some(SessionInfo {
                    sid: text(&c[0])?,
                    created: int(&c[1])?,
                    last_refreshed: int(&c[2])?,
                    expires: int(&c[3])?,
                })
            })
            .collect())
    }
}

fn text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn int(v: &redis::Value) -> Option<i64> {
    match v {
        redis::Value::Int(i) => Some(*i),
        redis::Value::BulkString(b) => {
            let s = std::str::from_utf8(b).ok()?;
            // Scores come back as "1767225600" or "1.7672256e9".
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f as i64))
        }
        _ => None,
    }
}
