//! Revocations that must happen at most once per request id, such as one
//! per OIDC back-channel logout token (`iss` + `jti`): a replayed token
//! changes nothing. With Redis the check and the revocation are one script,
//! so a retry after a timeout that Redis nonetheless ran is seen as done;
//! with the memory backend a local map holds the ids.

use std::hash::BuildHasher;

use super::{Revocations, protocol};
use crate::clock::unix_now;
use crate::redis_client::RedisError;

/// Ids held by the memory backend at most; past it the oldest expire first.
const MAX_LOCAL_IDS: usize = 100_000;

/// The outcome of [`Revocations::revoke_once`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Once {
    /// Revoked now, with this `seq`.
    Applied(u64),
    /// The id was seen within its lifetime: nothing was changed.
    AlreadyDone,
}

/// The once-key name for `id` under `keys`: a digest, so any id (any
/// length, any bytes) makes a short key with the shared hash tag.
pub fn once_key(keys: &protocol::Keys, id: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{}:once:{hex}", keys.tag)
}

impl Revocations {
    /// True when `id` was acted on (by [`Revocations::revoke_once`]) within
    /// its lifetime: a look without a change, for work that must not
    /// happen again on a replay but must happen before the once step.
    pub async fn once_seen(&self, id: &str) -> Result<bool, RedisError> {
        let Some(target) = &self.inner.redis else {
            let key = self.inner.hasher.hash_one(id);
            let seen = self.inner.once.lock().unwrap_or_else(|e| e.into_inner());
            return Ok(seen.get(&key).is_some_and(|&until| until > unix_now()));
        };
        let endpoint = &target.config.endpoint;
        let mut conn = target.writer.get().await?;
        let exists: i64 = endpoint
            .command(
                redis::cmd("EXISTS")
                    .arg(once_key(&target.keys, id))
                    .query_async(&mut conn),
            )
            .await
            .inspect_err(|e| target.writer.failed(e))?;
        Ok(exists > 0)
    }

    /// Applies `revocation` unless `id` was applied within the last
    /// `ttl_secs` seconds.
    pub async fn revoke_once(
        &self,
        revocation: &protocol::Revocation,
        id: &str,
        ttl_secs: u64,
    ) -> Result<Once, RedisError> {
        let Some(target) = &self.inner.redis else {
            let now = unix_now();
            let key = self.inner.hasher.hash_one(id);
            {
                let mut seen = self.inner.once.lock().unwrap_or_else(|e| e.into_inner());
                if seen.get(&key).is_some_and(|&until| until > now) {
                    return Ok(Once::AlreadyDone);
                }
                if seen.len() >= MAX_LOCAL_IDS {
                    seen.retain(|_, until| *until > now);
                }
                seen.insert(key, now.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)));
            }
            return self.revoke(revocation).await.map(Once::Applied);
        };
        let (kind, rid, score) = revocation.script_args();
        let keys = &target.keys;
        // Built (and hashed) once per process, not per logout.
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            crate::redis_client::guarded_script(&format!(
                "{}\n{}",
                protocol::REVOKE_FUNCTION,
                protocol::REVOKE_ONCE_SCRIPT
            ))
        });
        let endpoint = &target.config.endpoint;
        let mut invocation = SCRIPT.key(keys.set(kind));
        invocation
            .key(&keys.seq)
            .key(once_key(keys, id))
            .arg(kind.label())
            .arg(rid)
            .arg(score)
            .arg(&keys.channel)
            .arg(ttl_secs.max(1));
        // Last: a script Redis runs after we gave up (and answered 503)
        // changes nothing, so the retry does it; a resend of this call
        // gets this call's answer, not "already processed".
        crate::redis_client::guard_args(&mut invocation, endpoint, &keys.tag)?;
        let mut conn = target.writer.get().await?;
        let reply = endpoint
            .command(invocation.invoke_async::<redis::Value>(&mut conn))
            .await;
        let reply = reply.inspect_err(|e| target.writer.failed(e))?;
        match reply {
            redis::Value::Int(seq) => match u64::try_from(seq) {
                Ok(seq) => {
                    endpoint.confirm_replicated(&mut conn, &keys.seq).await?;
                    Ok(Once::Applied(seq))
                }
                Err(_) => Ok(Once::AlreadyDone),
            },
            late => {
                tracing::warn!(reply = ?late, "the logout script reached redis after its deadline and changed nothing");
                Err(RedisError::Late)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_keys_share_the_tag_and_differ_by_id() {
        let keys = protocol::Keys::new("tokengate");
        let a = once_key(&keys, "https://op a");
        assert!(a.starts_with("{tokengate}:once:"), "{a}");
        assert_eq!(a.len(), "{tokengate}:once:".len() + 64);
        assert_ne!(a, once_key(&keys, "https://op b"));
        assert_eq!(a, once_key(&keys, "https://op a"));
    }
}
