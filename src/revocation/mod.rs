//! Revocation: a local mirror of revoked token ids and subject cut-offs,
//! answered from memory on every request. The `memory` backend is the mirror
//! alone (one instance); the `redis` backend keeps it current from Redis by
//! subscription (`sync.rs`) following the protocol in `protocol.rs`.
//!
//! The mirror stores 64-bit keyed hashes of ids, not the ids: a million
//! entries then fit in about 35 MB, and a lookup is one hash, one uncontended
//! shard read lock and one probe. Entries are merged (the later expiry or
//! cut-off wins) and only ever removed once the token they revoke can no
//! longer be valid, so a Redis that loses its data cannot un-revoke anything.

pub mod metrics;
mod once;
pub mod protocol;
pub mod sync;

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus::Registry;

pub use once::{Once, once_key};
pub use protocol::{Keys, Kind, Message, Revocation};

use self::metrics::{MirrorCollector, SyncMetrics};
use self::sync::RedisTarget;
use crate::clock::unix_ms;
use crate::config::{OnStale, RevocationBackend, RevocationConfig};
use crate::redis_client::RedisError;

const SHARDS: usize = 16;

/// What the revocation check needs of a verified token: its ids and when it
/// was issued. Borrowed from the claims, so the check allocates nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenRef<'a> {
    /// `jti`, revoked one by one.
    pub jti: Option<&'a str>,
    /// `sid`, the login session: revoked for all its tokens at once.
    pub sid: Option<&'a str>,
    /// `sub`, whose cut-off revokes every token issued at or before it.
    pub sub: Option<&'a str>,
    /// `iat`; a token without one counts as issued at the epoch.
    pub iat: Option<i64>,
}

/// Why the revocation check refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    /// The token's `jti`, or its subject up to its `iat`, is revoked (401).
    #[error("token revoked")]
    Revoked,
    /// The mirror is older than `max_staleness` and the policy is fail-closed (503).
    #[error("revocation state is stale")]
    Stale {
        /// Seconds the client should wait (`Retry-After`).
        retry_after: u64,
    },
}

/// Why the revocation handle could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A metric could not be registered.
    #[error("revocation metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The shared handle: cheap to clone, read by every request.
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

struct Inner {
    jti: Shards,
    sub: Shards,
    sid: Shards,
    hasher: RandomState,
    /// Redis endpoint and key names; `None` for the memory backend.
    redis: Option<RedisTarget>,
    max_staleness_ms: i64,
    on_stale: OnStale,
    leeway: i64,
    max_token_lifetime: i64,
    /// Unix ms when the mirror was last known to match Redis.
    confirmed_ms: AtomicI64,
    connected: AtomicBool,
    /// Last `seq` applied by the memory backend's own revocations.
    local_seq: AtomicU64,
    /// The memory backend's once ids (keyed hashes) and until when they hold.
    once: std::sync::Mutex<HashMap<u64, i64>>,
    /// The Redis node the sync is on, and the role it reported.
    node: std::sync::Mutex<Option<(String, String)>>,
    metrics: SyncMetrics,
}

/// Hash-keyed maps behind a few read-mostly locks.
struct Shards([RwLock<HashMap<u64, i64, BuildHasherDefault<PassThrough>>>; SHARDS]);

/// The keys are already keyed SipHash values; hashing them again is waste.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Shards {
    fn new() -> Shards {
        Shards(std::array::from_fn(|_| RwLock::new(HashMap::default())))
    }

    fn shard(&self, key: u64) -> &RwLock<HashMap<u64, i64, BuildHasherDefault<PassThrough>>> {
        // High bits pick the shard; the map uses all bits.
        &self.0[(key >> 60) as usize % SHARDS]
    }

    fn get(&self, key: u64) -> Option<i64> {
        // A poisoned lock only means a writer panicked mid-insert; the map is
        // still a valid map, so keep answering rather than fail every request.
        let map = self.shard(key).read().unwrap_or_else(|e| e.into_inner());
        map.get(&key).copied()
    }

    /// Inserts or raises the score; returns true when the entry is new.
    fn merge(&self, key: u64, score: i64) -> bool {
        let mut map = self.shard(key).write().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&key) {
            Some(existing) => {
                *existing = (*existing).max(score);
                false
            }
            None => {
                map.insert(key, score);
                true
            }
        }
    }

    /// Merges many entries, taking each shard's lock once.
    fn merge_batch(&self, entries: &mut [(u64, i64)]) {
        entries.sort_unstable_by_key(|(key, _)| (key >> 60) as usize % SHARDS);
        for group in entries.chunk_by(|a, b| (a.0 >> 60) == (b.0 >> 60)) {
            let Some(&(first, _)) = group.first() else { continue };
            let mut map = self.shard(first).write().unwrap_or_else(|e| e.into_inner());
            map.reserve(group.len());
            for &(key, score) in group {
                map.entry(key).and_modify(|s| *s = (*s).max(score)).or_insert(score);
            }
        }
    }

    fn prune(&self, keep_from: i64) -> usize {
        let mut removed = 0;
        for shard in &self.0 {
            let mut map = shard.write().unwrap_or_else(|e| e.into_inner());
            let before = map.len();
            map.retain(|_, score| *score >= keep_from);
            removed += before - map.len();
        }
        removed
    }

    fn len(&self) -> usize {
        self.0
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

impl Revocations {
    /// A mirror for `config`; with the redis backend it is empty and stale
    /// until [`sync::spawn`] loads it.
    pub fn new(config: &RevocationConfig, leeway: Duration) -> Result<Revocations, SetupError> {
        let redis = match &config.backend {
            RevocationBackend::Memory => None,
            RevocationBackend::Redis(r) => Some(RedisTarget::new(r)),
        };
        let memory = redis.is_none();
        Ok(Revocations {
            inner: Arc::new(Inner {
                jti: Shards::new(),
                sub: Shards::new(),
                sid: Shards::new(),
                hasher: RandomState::new(),
                redis,
                max_staleness_ms: i64::try_from(config.max_staleness.as_millis()).unwrap_or(i64::MAX),
                on_stale: config.on_stale,
                leeway: i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX),
                max_token_lifetime: i64::try_from(config.max_token_lifetime.as_secs()).unwrap_or(i64::MAX),
                confirmed_ms: AtomicI64::new(if memory { i64::MAX } else { 0 }),
                connected: AtomicBool::new(memory),
                local_seq: AtomicU64::new(0),
                once: std::sync::Mutex::new(HashMap::new()),
                node: std::sync::Mutex::new(None),
                metrics: SyncMetrics::new()?,
            }),
        })
    }

    /// Registers the revocation metrics on `registry`.
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.inner.metrics.messages.clone()))?;
        registry.register(Box::new(self.inner.metrics.reloads.clone()))?;
        registry.register(Box::new(self.inner.metrics.nodes.clone()))?;
        registry.register(Box::new(MirrorCollector::new(self.clone())?))
    }

    /// The Redis endpoint, for the redis backend.
    pub fn redis(&self) -> Option<&RedisTarget> {
        self.inner.redis.as_ref()
    }

    /// Counters for the sync task.
    pub fn sync_metrics(&self) -> &SyncMetrics {
        &self.inner.metrics
    }

    fn key(&self, id: &str) -> u64 {
        self.inner.hasher.hash_one(id)
    }

    /// The request-path check for a verified `token` at `now_ms`.
    pub fn check(&self, token: TokenRef<'_>, now_ms: i64) -> Result<(), RevocationError> {
        if self.inner.on_stale == OnStale::FailClosed && self.is_stale(now_ms) {
            let retry_after = u64::try_from(self.inner.max_staleness_ms / 1000)
                .unwrap_or(1)
                .clamp(1, 30);
            return Err(RevocationError::Stale { retry_after });
        }
        if let Some(jti) = token.jti
            && self.inner.jti.get(self.key(jti)).is_some()
        {
            return Err(RevocationError::Revoked);
        }
        if let Some(sid) = token.sid
            && self.inner.sid.get(self.key(sid)).is_some()
        {
            return Err(RevocationError::Revoked);
        }
        if let Some(sub) = token.sub
            && let Some(cutoff) = self.inner.sub.get(self.key(sub))
            // A token without `iat` counts as issued at the epoch.
            && token.iat.unwrap_or(0) <= cutoff
        {
            return Err(RevocationError::Revoked);
        }
        Ok(())
    }

    /// The logout-all cut-off of `sub` in the mirror, if any.
    pub fn subject_cutoff(&self, sub: &str) -> Option<i64> {
        self.inner.sub.get(self.key(sub))
    }

    /// Merges one revocation into the mirror; true when it added an entry.
    pub fn apply(&self, revocation: &Revocation) -> bool {
        match revocation {
            Revocation::Jti { id, exp } => self.inner.jti.merge(self.key(id), *exp),
            Revocation::Subject { id, before } => self.inner.sub.merge(self.key(id), *before),
            Revocation::Session { id, exp } => self.inner.sid.merge(self.key(id), *exp),
        }
    }

    fn shards(&self, kind: Kind) -> &Shards {
        match kind {
            Kind::Jti => &self.inner.jti,
            Kind::Sub => &self.inner.sub,
            Kind::Sid => &self.inner.sid,
        }
    }

    /// Merges a page of `(id, score)` pairs of `kind` from a full load.
    pub fn apply_page<'a>(&self, kind: Kind, page: impl Iterator<Item = (&'a str, i64)>) {
        let mut entries: Vec<(u64, i64)> = page.map(|(id, score)| (self.key(id), score)).collect();
        self.shards(kind).merge_batch(&mut entries);
    }

    /// Removes entries whose tokens can no longer be valid at `now` (seconds).
    pub fn prune(&self, now: i64) -> usize {
        Kind::ALL
            .iter()
            .map(|&kind| self.shards(kind).prune(self.keep_from(kind, now)))
            .sum()
    }

    /// Entries of `kind` scored below this cannot affect a live token at `now`.
    pub fn keep_from(&self, kind: Kind, now: i64) -> i64 {
        match kind {
            Kind::Jti | Kind::Sid => now - self.inner.leeway,
            Kind::Sub => now - self.inner.max_token_lifetime - self.inner.leeway,
        }
    }

    /// Entries of `kind` in the mirror.
    pub fn len(&self, kind: Kind) -> usize {
        self.shards(kind).len()
    }

    /// True when the mirror holds nothing.
    pub fn is_empty(&self) -> bool {
        Kind::ALL.iter().all(|&kind| self.len(kind) == 0)
    }

    /// Records that the mirror matched Redis at `now_ms`.
    pub fn mark_confirmed(&self, now_ms: i64) {
        self.inner.confirmed_ms.store(now_ms, Ordering::Release);
    }

    /// Records the node (address, role) the sync is on, or none.
    pub fn set_node(&self, node: Option<(String, String)>) {
        self.inner
            .metrics
            .node(node.as_ref().map(|(a, r)| (a.as_str(), r.as_str())));
        *self.inner.node.lock().unwrap_or_else(|e| e.into_inner()) = node;
    }

    /// The node (address, role) the sync is on, for `/readyz`.
    pub fn node(&self) -> Option<(String, String)> {
        self.inner.node.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the Redis connection state.
    pub fn set_connected(&self, connected: bool) {
        self.inner.connected.store(connected, Ordering::Release);
    }

    /// True while the sync task has a working Redis connection.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// True once a first full load has completed (always for memory).
    pub fn is_loaded(&self) -> bool {
        self.inner.confirmed_ms.load(Ordering::Acquire) > 0
    }

    /// Age of the mirror in milliseconds (0 for the memory backend).
    pub fn age_ms(&self, now_ms: i64) -> i64 {
        let confirmed = self.inner.confirmed_ms.load(Ordering::Acquire);
        if confirmed == i64::MAX {
            0
        } else {
            (now_ms - confirmed).max(0)
        }
    }

    /// True when the mirror is older than `max_staleness`.
    pub fn is_stale(&self, now_ms: i64) -> bool {
        self.age_ms(now_ms) > self.inner.max_staleness_ms
    }

    /// The configured policy once stale.
    pub fn on_stale(&self) -> OnStale {
        self.inner.on_stale
    }

    /// Why `/readyz` must say no, if it must.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if !self.is_loaded() {
            Some("revocation mirror not loaded")
        } else if self.inner.on_stale == OnStale::FailClosed && self.is_stale(unix_ms()) {
            Some("revocation mirror stale (fail_closed)")
        } else {
            None
        }
    }

    /// Revokes: through the Lua script for the redis backend (every sidecar
    /// then learns it from the channel), directly in the mirror for memory.
    /// Returns the revocation's `seq`.
    pub async fn revoke(&self, revocation: &Revocation) -> Result<u64, RedisError> {
        match &self.inner.redis {
            None => {
                self.apply(revocation);
                Ok(self.inner.local_seq.fetch_add(1, Ordering::AcqRel) + 1)
            }
            Some(target) => {
                let endpoint = &target.config.endpoint;
                let keys = &target.keys;
                let (kind, id, score) = revocation.script_args();
                let mut invocation = protocol::guarded_revoke().key(keys.set(kind));
                invocation
                    .key(&keys.seq)
                    .arg(kind.label())
                    .arg(id)
                    .arg(score)
                    .arg(&keys.channel);
                crate::redis_client::guard_args(&mut invocation, endpoint, &keys.tag)?;
                let mut conn = target.writer.get().await?;
                // Bounded: a hung Redis must not hang the caller.
                let reply = endpoint
                    .command(invocation.invoke_async::<redis::Value>(&mut conn))
                    .await;
                let seq = match reply {
                    Ok(redis::Value::Int(seq)) => u64::try_from(seq).unwrap_or(0),
                    Ok(other) => {
                        tracing::warn!(reply = ?other, "the revoke script reached redis after its deadline and changed nothing");
                        return Err(RedisError::Late);
                    }
                    Err(e) => {
                        target.writer.failed(&e);
                        return Err(e);
                    }
                };
                endpoint.confirm_replicated(&mut conn, &keys.seq).await?;
                Ok(seq)
            }
        }
    }

    /// Logs each change between fresh and stale, once per change, until the
    /// task is dropped. Fail-open keeps serving; the log says it does.
    pub async fn watch_staleness(self) {
        let mut stale = false;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = unix_ms();
            let is_stale = self.is_loaded() && self.is_stale(now);
            if is_stale != stale {
                stale = is_stale;
                let age_s = self.age_ms(now) / 1000;
                match (stale, self.inner.on_stale) {
                    (true, OnStale::FailOpen) => tracing::warn!(
                        age_s,
                        "revocation mirror is stale; on_stale=fail_open: serving from the last known state"
                    ),
                    (true, OnStale::FailClosed) => tracing::error!(
                        age_s,
                        "revocation mirror is stale; on_stale=fail_closed: protected routes answer 503"
                    ),
                    (false, _) => tracing::info!("revocation mirror is current again"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RevocationConfig;

    fn memory() -> Revocations {
        let config = RevocationConfig {
            backend: RevocationBackend::Memory,
            max_staleness: Duration::from_secs(30),
            on_stale: OnStale::FailOpen,
            max_token_lifetime: Duration::from_secs(3600),
        };
        Revocations::new(&config, Duration::from_secs(30)).unwrap()
    }

    fn claims(v: serde_json::Value) -> (String, String, Option<i64>) {
        (
            v["jti"].as_str().unwrap_or_default().to_owned(),
            v["sub"].as_str().unwrap_or_default().to_owned(),
            v["iat"].as_i64(),
        )
    }

    fn token(t: &(String, String, Option<i64>)) -> TokenRef<'_> {
        TokenRef {
            jti: Some(&t.0),
            sid: None,
            sub: Some(&t.1),
            iat: t.2,
        }
    }

    #[test]
    fn jti_and_subject_cutoffs() {
        let r = memory();
        let t = claims(serde_json::json!({"jti": "a", "sub": "alice", "iat": 100}));
        assert_eq!(r.check(token(&t), 0), Ok(()));
        r.apply(&Revocation::Jti {
            id: "a".into(),
            exp: 500,
        });
        assert_eq!(r.check(token(&t), 0), Err(RevocationError::Revoked));

        let older = claims(serde_json::json!({"jti": "b", "sub": "bob", "iat": 100}));
        let at_cutoff = claims(serde_json::json!({"jti": "c", "sub": "bob", "iat": 200}));
        let newer = claims(serde_json::json!({"jti": "d", "sub": "bob", "iat": 201}));
        let no_iat = claims(serde_json::json!({"jti": "e", "sub": "bob"}));
        r.apply(&Revocation::Subject {
            id: "bob".into(),
            before: 200,
        });
        assert_eq!(r.check(token(&older), 0), Err(RevocationError::Revoked));
        assert_eq!(r.check(token(&at_cutoff), 0), Err(RevocationError::Revoked));
        assert_eq!(r.check(token(&newer), 0), Ok(()));
        assert_eq!(r.check(token(&no_iat), 0), Err(RevocationError::Revoked));
    }

    #[test]
    fn merge_keeps_the_later_score_and_prune_waits_for_expiry() {
        let r = memory();
        assert!(r.apply(&Revocation::Jti {
            id: "a".into(),
            exp: 1000
        }));
        assert!(!r.apply(&Revocation::Jti {
            id: "a".into(),
            exp: 900
        }));
        r.apply(&Revocation::Subject {
            id: "s".into(),
            before: 1000,
        });
        // leeway 30 s: the jti entry lives until 1030; the cut-off until 1000 + 3600 + 30.
        assert_eq!(r.prune(1029), 0);
        assert_eq!(r.prune(1031), 1);
        assert_eq!((r.len(Kind::Jti), r.len(Kind::Sub)), (0, 1));
        assert_eq!(r.prune(1000 + 3600 + 31), 1);
        assert!(r.is_empty());
    }
}
