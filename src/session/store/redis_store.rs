//! The redis backend: each transition one atomic Lua script (`lua/`), so
//! concurrent refreshes on different sidecars see one order.

use super::*;
use crate::config::RedisConfig;
use crate::redis_client::SharedConnection;

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
const COMMON: &str = include_str!("lua/common.lua");

/// ARGV[3] sid, [4] sub, [5] token hash, [6] token exp, [7] now ms,
/// [8] claims, [9] access exp, [10] cap (0 = none).
/// Returns `[cutoff or '', evicted sid, its access exp, ...]`.
const OPEN: &str = include_str!("lua/open.lua");

/// ARGV[3] presented hash, [4] next hash, [5] next exp, [6] now ms,
/// [7] access exp, [8] grace ms.
/// Returns `['rotated', sid, sub, claims, cutoff or '']`, `['reused', sid, access exp]`,
/// `['concurrent']`, `['expired']` or `['invalid']`.
const REFRESH: &str = include_str!("lua/refresh.lua");

/// ARGV[3] sid, [4] min exp (0: only if the session exists).
/// Returns `[existed 0|1, revoked exp or '']`.
const END: &str = include_str!("lua/end.lua");

/// ARGV[3] sub, [4] cut-off (now). Returns `[sessions ended, cut-off]`:
/// later than now when an earlier cut-off was (see `Sessions::end_subject`).
const END_SUBJECT: &str = include_str!("lua/end_subject.lua");

/// ARGV[3] token hash. Returns `[sid]` or `[]`.
const LOOKUP: &str = include_str!("lua/lookup.lua");

/// ARGV[3] sub. Returns `[sid, created, refreshed, expires, ...]`, oldest first.
const LIST: &str = include_str!("lua/list.lua");

/// The redis backend: one cached connection, re-opened after a failure, and
/// one more for the revoking scripts and their `WAIT`.
pub struct RedisStore {
    keys: Keys,
    conn: SharedConnection,
    waiting: SharedConnection,
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

/// Every script that writes: guarded (run once per call, before its
/// deadline), with the revoke function and the shared helpers before the body.
fn script(body: &str) -> redis::Script {
    crate::redis_client::guarded_script(&format!(
        "{}{COMMON}{body}",
        crate::revocation::protocol::REVOKE_FUNCTION
    ))
}

/// A script that only reads: not guarded (it has nothing to do twice, and
/// a guard would write).
fn read_script(body: &str) -> redis::Script {
    redis::Script::new(&format!("{COMMON}{body}"))
}

fn hex(hash: &TokenHash) -> String {
    use std::fmt::Write;
    hash.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl RedisStore {
    pub(super) fn new(config: &RedisConfig) -> RedisStore {
        RedisStore {
            keys: Keys::new(&config.prefix),
            conn: SharedConnection::new(config.endpoint.clone()),
            waiting: SharedConnection::new(config.endpoint.clone()),
            scripts: Scripts {
                open: script(OPEN),
                refresh: script(REFRESH),
                end: script(END),
                end_subject: script(END_SUBJECT),
                list: read_script(LIST),
                lookup: read_script(LOOKUP),
            },
        }
    }

    pub(super) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Runs `script` with the common keys and args followed by `args`.
    pub(super) async fn run(
        &self,
        script: &redis::Script,
        args: impl FnOnce(&mut redis::ScriptInvocation<'_>),
    ) -> Result<Vec<redis::Value>, StoreError> {
        self.run_then(script, args, false).await
    }

    /// [`RedisStore::run`] for a script that revokes (logout, logout-all):
    /// then waits for `wait_for_replicas` replicas, so a failover cannot
    /// lose a logout the client was told succeeded. (A 503 from that wait
    /// is the one 503 after which something did change; a revocation
    /// applied twice is harmless.)
    pub(super) async fn run_revoking(
        &self,
        script: &redis::Script,
        args: impl FnOnce(&mut redis::ScriptInvocation<'_>),
    ) -> Result<Vec<redis::Value>, StoreError> {
        self.run_then(script, args, true).await
    }

    async fn run_then(
        &self,
        script: &redis::Script,
        args: impl FnOnce(&mut redis::ScriptInvocation<'_>),
        confirm: bool,
    ) -> Result<Vec<redis::Value>, StoreError> {
        // A revoking script and its WAIT get a connection of their own:
        // WAIT blocks the connection it runs on, and the shared one carries
        // every login and refresh of this sidecar.
        let shared = if confirm && self.conn.endpoint().wait_replicas > 0 {
            &self.waiting
        } else {
            &self.conn
        };
        let mut conn = shared.get().await?;
        let keys = self.keys();
        let mut invocation = self.invocation(script, args);
        // Last, as the guard reads them: a script Redis runs after the
        // caller gave up changes nothing, so a 503 means nothing changed,
        // and a resend of this call cannot run it twice.
        crate::redis_client::guard_args(&mut invocation, self.conn.endpoint(), &keys.tag)?;
        self.invoke(shared, &mut conn, &invocation, confirm).await
    }

    /// Runs a read-only script (not guarded) with the common keys and args.
    pub(super) async fn read(
        &self,
        script: &redis::Script,
        args: impl FnOnce(&mut redis::ScriptInvocation<'_>),
    ) -> Result<Vec<redis::Value>, StoreError> {
        let mut conn = self.conn.get().await?;
        let invocation = self.invocation(script, args);
        self.invoke(&self.conn, &mut conn, &invocation, false).await
    }

    /// `script` with the common keys and args, then `args`.
    fn invocation<'s>(
        &self,
        script: &'s redis::Script,
        args: impl FnOnce(&mut redis::ScriptInvocation<'_>),
    ) -> redis::ScriptInvocation<'s> {
        let keys = self.keys();
        let mut invocation = script.key(&keys.sid);
        invocation
            .key(&keys.seq)
            .key(&keys.sub)
            .arg(&keys.tag)
            .arg(&keys.channel);
        args(&mut invocation);
        invocation
    }

    async fn invoke(
        &self,
        shared: &SharedConnection,
        conn: &mut crate::redis_client::Connection,
        invocation: &redis::ScriptInvocation<'_>,
        confirm: bool,
    ) -> Result<Vec<redis::Value>, StoreError> {
        let endpoint = self.conn.endpoint();
        let reply = endpoint.command(invocation.invoke_async::<redis::Value>(conn)).await;
        match reply {
            Ok(v) if let Some(ms) = crate::redis_client::late_by(&v) => {
                tracing::warn!(
                    late_ms = ms,
                    "a session script reached redis after its deadline and changed nothing (a slow or paused redis, or clocks apart)"
                );
                Err(StoreError::Redis(RedisError::Late))
            }
            Ok(v) => {
                let v: Vec<redis::Value> =
                    redis::from_redis_value(v).map_err(|e| RedisError::Redis(redis::RedisError::from(e)))?;
                if confirm {
                    endpoint.confirm_replicated(conn, &self.keys.seq).await?;
                }
                Ok(v)
            }
            Err(e) => {
                shared.failed(&e);
                Err(e.into())
            }
        }
    }

    pub(super) async fn open(&self, s: &NewSession<'_>) -> Result<Opened, StoreError> {
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

    pub(super) async fn refresh(&self, r: &Rotation) -> Result<Refreshed, StoreError> {
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

    pub(super) async fn end(&self, sid: &str, min_exp: i64) -> Result<(Option<Revocation>, bool), StoreError> {
        let reply = self
            .run_revoking(&self.scripts.end, |i| {
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

    pub(super) async fn session_of(&self, token: &TokenHash) -> Result<Option<String>, StoreError> {
        let reply = self
            .read(&self.scripts.lookup, |i| {
                i.arg(hex(token));
            })
            .await?;
        Ok(reply.first().and_then(text))
    }

    pub(super) async fn end_subject(&self, sub: &str, before: i64) -> Result<(usize, i64), StoreError> {
        let reply = self
            .run_revoking(&self.scripts.end_subject, |i| {
                i.arg(sub).arg(before);
            })
            .await?;
        let n = reply
            .first()
            .and_then(int)
            .ok_or(StoreError::Reply("end_subject without count"))?;
        let cutoff = reply
            .get(1)
            .and_then(int)
            .ok_or(StoreError::Reply("end_subject without cut-off"))?;
        Ok((usize::try_from(n).unwrap_or(0), cutoff))
    }

    pub(super) async fn list(&self, sub: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let reply = self
            .read(&self.scripts.list, |i| {
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
