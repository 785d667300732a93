//! The Redis sync task: SUBSCRIBE first, then load both sets in pages, then
//! apply what arrived meanwhile; heal gaps, lost connections and missed
//! messages by reloading; reconnect with jittered exponential backoff. Every
//! Redis call runs under a timeout, so a Redis that accepts connections but
//! never answers (SIGSTOP, a network black hole) is detected, not waited on.

use std::time::Duration;

use futures_util::StreamExt;

use super::Revocations;
use super::metrics::{MessageResult, ReloadCause};
use super::protocol::{Keys, Kind, Message};
use crate::backoff::Backoff;
use crate::clock::unix_ms;
use crate::config::RedisConfig;
use crate::readiness::Latch;
use crate::redis_client::{Connection, RedisError, within};

/// A Redis endpoint and the protocol names under its prefix.
#[derive(Clone, Debug)]
pub struct RedisTarget {
    /// Key and channel names.
    pub keys: Keys,
    /// Endpoint, prefix and sync settings.
    pub config: RedisConfig,
    /// The connection revocations are written on (and `WAIT`ed for): one,
    /// kept, apart from the sync's and the session store's.
    pub writer: std::sync::Arc<crate::redis_client::SharedConnection>,
}

impl RedisTarget {
    /// The target `config` names (connects lazily).
    pub fn new(config: &RedisConfig) -> RedisTarget {
        RedisTarget {
            keys: Keys::new(&config.prefix),
            config: config.clone(),
            writer: std::sync::Arc::new(crate::redis_client::SharedConnection::new(config.endpoint.clone())),
        }
    }
}

/// Starts the sync task; `latch` is released after the first full load.
pub fn spawn(revocations: Revocations, target: RedisTarget, latch: Latch) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(revocations, target, latch))
}

async fn run(revocations: Revocations, target: RedisTarget, latch: Latch) {
    let mut latch = Some(latch);
    let mut cause = ReloadCause::Startup;
    let mut failures: u32 = 0;
    let mut ever_connected = false;
    loop {
        let Err(error) = session(
            &revocations,
            &target,
            cause,
            &mut latch,
            &mut ever_connected,
            &mut failures,
        )
        .await;
        revocations.set_connected(false);
        revocations.set_node(None);
        target.config.endpoint.sync_failed();
        if failures == 0 {
            // One line per state change; retries are logged at debug level.
            tracing::warn!(error = %error, redis = %target.config.endpoint.display_url(), "revocation sync lost; serving from the mirror");
        } else {
            tracing::debug!(error = %error, attempt = failures, "revocation sync reconnect failed");
        }
        failures = failures.saturating_add(1);
        // Through Sentinel a failed reconnect usually means no master yet,
        // and on a cluster a dead node (the next try goes to the next one):
        // a new master is promoted within seconds and each retry is cheap,
        // so retry at a short, fixed-cap pace rather than let the backoff
        // grow past the promotion.
        let endpoint = &target.config.endpoint;
        let backoff = if endpoint.is_sentinel() || endpoint.is_cluster() {
            RECONNECT_SENTINEL
        } else {
            RECONNECT
        };
        tokio::time::sleep(backoff.delay(failures)).await;
        cause = if ever_connected {
            ReloadCause::Reconnect
        } else {
            ReloadCause::Startup
        };
    }
}

/// Reconnects: 100 ms doubling to 5 s, jittered, so that restarted sidecars
/// do not stampede Redis.
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));

/// Reconnects through Sentinel or to a cluster: 100 ms doubling to 500 ms, jittered.
const RECONNECT_SENTINEL: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));

async fn session(
    revocations: &Revocations,
    target: &RedisTarget,
    cause: ReloadCause,
    latch: &mut Option<Latch>,
    ever_connected: &mut bool,
    failures: &mut u32,
) -> Result<std::convert::Infallible, RedisError> {
    let cfg = &target.config;
    // Subscribe before loading: anything revoked during the load arrives on
    // the channel and is applied after it, so nothing falls between.
    let (mut pubsub, address) = cfg.endpoint.subscribe(&target.keys.channel).await?;
    let mut conn = cfg.endpoint.connect().await?;
    let role = cfg.endpoint.role(&mut conn, &address).await?;
    let mut seq = full_load(revocations, target, &mut conn, cause).await?;
    revocations.set_connected(true);
    revocations.set_node(Some((address.clone(), role.clone())));
    let (jti, sub, sid) = (
        revocations.len(Kind::Jti),
        revocations.len(Kind::Sub),
        revocations.len(Kind::Sid),
    );
    if *ever_connected {
        tracing::info!(seq, jti, sub, sid, node = %address, role = %role, "revocation sync resynced");
    } else {
        tracing::info!(seq, jti, sub, sid, redis = %cfg.endpoint.display_url(), node = %address, role = %role, "revocation sync connected");
    }
    *ever_connected = true;
    *failures = 0;
    if let Some(l) = latch.take() {
        l.release();
    }

    let mut stream = pubsub.on_message();
    let mut check = tokio::time::interval(cfg.check_interval);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    check.tick().await;
    let mut prune = tokio::time::interval(Duration::from_secs(60));
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let metrics = revocations.sync_metrics().clone();
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { return Err(RedisError::Closed) };
                match Message::parse(msg.get_payload_bytes()) {
                    Ok((msg_seq, revocation)) => {
                        revocations.apply(&revocation);
                        if msg_seq <= seq {
                            metrics.message(MessageResult::Duplicate);
                        } else if msg_seq == seq + 1 {
                            metrics.message(MessageResult::Applied);
                            seq = msg_seq;
                            revocations.mark_confirmed(unix_ms());
                        } else {
                            metrics.message(MessageResult::Gap);
                            tracing::info!(expected = seq + 1, got = msg_seq, "revocation seq gap; reloading");
                            seq = full_load(revocations, target, &mut conn, ReloadCause::Gap).await?.max(msg_seq);
                        }
                    }
                    Err(e) => {
                        metrics.message(MessageResult::Malformed);
                        tracing::warn!(error = %e, "malformed revocation message ignored; reloading");
                        seq = full_load(revocations, target, &mut conn, ReloadCause::Malformed).await?;
                    }
                }
            }
            _ = check.tick() => {
                let remote: Option<u64> = cfg.endpoint.command(redis::cmd("GET").arg(&target.keys.seq).query_async(&mut conn)).await?;
                let remote = remote.unwrap_or(0);
                if remote > seq {
                    tracing::info!(local = seq, remote, "revocation mirror behind; reloading");
                    seq = full_load(revocations, target, &mut conn, ReloadCause::Behind).await?;
                } else if remote < seq {
                    // Redis restarted empty or was flushed: its entries are
                    // gone but ours are kept (a reload merges, never forgets).
                    tracing::warn!(local = seq, remote, "revocation seq went backwards (Redis lost data); reloading, keeping the mirror");
                    seq = full_load(revocations, target, &mut conn, ReloadCause::Reset).await?;
                } else {
                    revocations.mark_confirmed(unix_ms());
                }
            }
            _ = prune.tick() => {
                let now = crate::clock::unix_now();
                let removed = revocations.prune(now);
                if removed > 0 {
                    tracing::debug!(removed, "pruned expired revocations from the mirror");
                }
                // Every sidecar prunes Redis too; the commands are idempotent.
                let mut pipe = redis::pipe();
                for kind in Kind::ALL {
                    pipe.cmd("ZREMRANGEBYSCORE").arg(target.keys.set(kind)).arg("-inf").arg(format!("({}", revocations.keep_from(kind, now))).ignore();
                }
                cfg.endpoint.command::<()>(pipe.query_async(&mut conn)).await?;
            }
        }
    }
}

/// Reads `seq`, then both sets in pages, merging into the mirror. Returns the
/// `seq` read before the scan: messages after it are applied by the caller.
/// Pages kept in flight while loading: two lets Redis produce one page while
/// the previous one is decoded. More gained little (1.1 s → 0.9 s for 1M
/// entries) and every queued page must still arrive within the command
/// timeout, which a slow, CPU-starved sidecar could then miss on every retry.
const PAGES_IN_FLIGHT: usize = 2;

/// Loads one sorted set into the mirror; returns the number of entries read.
///
/// Pages are taken by index from the high end (`ZRANGE key -hi -lo
/// WITHSCORES`), several in flight. Why not ZSCAN: on Redis 7.0 it costs
/// ~1.3 µs an element server-side (every score is formatted into a new
/// object), which alone made a 1M-entry load miss its 2 s budget. Why from
/// the high end: the only writes that publish no message are prunes, and a
/// prune removes a prefix of low scores, which never changes an element's
/// distance from the end, so no live entry can be skipped. Every other write
/// (ZADD GT through the script) publishes a message that the caller buffers
/// and applies after the load; an insert can only push unread entries further
/// from the end, which re-reads one at a page boundary but never skips one.
/// The load stops at the first short page, so entries added while it ran
/// cannot push old ones past its end.
async fn load_set(
    revocations: &Revocations,
    conn: &Connection,
    kind: Kind,
    key: &str,
    page_size: u64,
    timeout: Duration,
) -> Result<usize, RedisError> {
    let page_size = page_size.max(1);
    let pages = futures_util::stream::iter(0u64..)
        .map(|k| {
            let mut conn = conn.clone();
            let hi = -((k * page_size + 1) as i64);
            let lo = -(((k + 1) * page_size) as i64);
            async move {
                let page: Vec<redis::Value> = within(
                    timeout,
                    redis::cmd("ZRANGE")
                        .arg(key)
                        .arg(lo)
                        .arg(hi)
                        .arg("WITHSCORES")
                        .query_async(&mut conn),
                )
                .await?;
                Ok::<_, RedisError>(page)
            }
        })
        .buffered(PAGES_IN_FLIGHT);
    futures_util::pin_mut!(pages);
    let mut loaded = 0usize;
    while let Some(page) = pages.next().await {
        let page = page?;
        let pairs = page.chunks_exact(2).filter_map(|pair| match pair {
            [redis::Value::BulkString(id), score] => {
                let id = std::str::from_utf8(id).ok()?;
                Some((id, score_seconds(score)?))
            }
            _ => None,
        });
        revocations.apply_page(kind, pairs);
        let read = page.len() / 2;
        loaded += read;
        if (read as u64) < page_size {
            break;
        }
    }
    Ok(loaded)
}

/// A sorted-set score as whole seconds (saturating), whether Redis sent it as a RESP2 bulk
/// string or a RESP3 double.
fn score_seconds(score: &redis::Value) -> Option<i64> {
    let value = match score {
        redis::Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse::<f64>().ok()?,
        redis::Value::Double(d) => *d,
        redis::Value::Int(i) => return Some(*i),
        _ => return None,
    };
    // `as` saturates, so a +inf score ("revoked for ever") stays in the mirror.
    (!value.is_nan()).then(|| value.floor() as i64)
}

async fn full_load(
    revocations: &Revocations,
    target: &RedisTarget,
    conn: &mut Connection,
    cause: ReloadCause,
) -> Result<u64, RedisError> {
    let cfg = &target.config;
    revocations.sync_metrics().reload(cause);
    let started = std::time::Instant::now();
    let seq: Option<u64> = within(
        cfg.endpoint.command_timeout,
        redis::cmd("GET").arg(&target.keys.seq).query_async(conn),
    )
    .await?;
    let mut loaded = 0usize;
    for kind in Kind::ALL {
        let key = target.keys.set(kind);
        loaded += load_set(
            revocations,
            conn,
            kind,
            key,
            cfg.page_size,
            cfg.endpoint.command_timeout,
        )
        .await?;
    }
    revocations.prune(crate::clock::unix_now());
    revocations.mark_confirmed(unix_ms());
    tracing::debug!(cause = cause.label(), loaded, elapsed = ?started.elapsed(), "revocation mirror loaded");
    Ok(seq.unwrap_or(0))
}
