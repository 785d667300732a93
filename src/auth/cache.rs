//! The verified-token cache: tokens whose signature, issuer and audience
//! were already checked, so a repeated token skips the signature maths.
//! `exp`/`nbf` are still judged on every hit (by the caller) and revocation is
//! checked after it; an entry also expires on its own at the token's `exp`
//! plus leeway, and is ignored once its issuer's keys have changed.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;

use super::Claims;

/// A 128-bit key from two independently, randomly keyed SipHashes of the
/// whole token: an attacker who cannot read the keys cannot aim a forged
/// token at a cached one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) struct TokenHash(u64, u64);

#[derive(Clone)]
pub(super) struct Entry {
    pub(super) claims: Arc<Claims>,
    /// Index of the issuer in the verifier.
    pub(super) issuer: usize,
    /// The issuer's key generation when the token was verified.
    pub(super) generation: u64,
    /// Lifetime left when inserted: until `exp` plus leeway.
    ttl: Duration,
}

struct UntilExp;

impl moka::Expiry<TokenHash, Entry> for UntilExp {
    fn expire_after_create(&self, _: &TokenHash, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// A bounded map from token hash to verified claims.
pub(super) struct VerifiedCache {
    cache: Cache<TokenHash, Entry>,
    hashers: (std::hash::RandomState, std::hash::RandomState),
}

impl VerifiedCache {
    /// A cache of at most `max_entries` tokens.
    pub(super) fn new(max_entries: u64) -> VerifiedCache {
        VerifiedCache {
            cache: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(UntilExp)
                .build(),
            hashers: (std::hash::RandomState::new(), std::hash::RandomState::new()),
        }
    }

    /// The cache key of `token`.
    pub(super) fn key(&self, token: &str) -> TokenHash {
        TokenHash(self.hashers.0.hash_one(token), self.hashers.1.hash_one(token))
    }

    /// The entry for `key`, if cached and not expired by the cache's clock.
    pub(super) fn get(&self, key: TokenHash) -> Option<Entry> {
        self.cache.get(&key)
    }

    /// Caches `claims` under `key` until `exp + leeway` (seconds, at `now`).
    pub(super) fn insert(
        &self,
        key: TokenHash,
        claims: Arc<Claims>,
        issuer: usize,
        generation: u64,
        now: i64,
        leeway: i64,
    ) {
        let left = claims.exp.saturating_add(leeway).saturating_sub(now);
        let Ok(secs) = u64::try_from(left) else { return };
        if secs == 0 {
            return;
        }
        let entry = Entry {
            claims,
            issuer,
            generation,
            ttl: Duration::from_secs(secs),
        };
        self.cache.insert(key, entry);
    }

    /// Entries currently held (approximate; moka counts lazily).
    #[cfg(test)]
    pub(super) fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(exp: i64) -> Arc<Claims> {
        Arc::new(Claims::for_tests(json!({"sub": "u", "exp": exp})))
    }

    #[test]
    fn an_entry_lives_until_exp_plus_leeway_and_no_longer() {
        let cache = VerifiedCache::new(10);
        let now = 1_000;
        let (short, long) = (cache.key("short"), cache.key("long"));
        cache.insert(short, claims(now + 1), 0, 0, now, 0);
        cache.insert(long, claims(now + 3_600), 0, 0, now, 0);
        assert!(cache.get(short).is_some());
        std::thread::sleep(Duration::from_millis(1_100));
        assert!(cache.get(short).is_none(), "held past its exp");
        assert!(cache.get(long).is_some());
    }

    #[test]
    fn expired_tokens_are_never_inserted() {
        let cache = VerifiedCache::new(10);
        cache.insert(cache.key("gone"), claims(990), 0, 0, 1_000, 5);
        cache.insert(cache.key("edge"), claims(995), 0, 0, 1_000, 5);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn bounded() {
        let cache = VerifiedCache::new(100);
        for i in 0..1_000 {
            cache.insert(cache.key(&format!("t{i}")), claims(i64::MAX / 2), 0, 0, 0, 0);
        }
        assert!(cache.len() <= 100, "{}", cache.len());
    }
}
