//! The Redis sync task: SUBSCRIBE first, then load both sets in pages, then
//! apply what arrived meanwhile; heal gaps, lost connections and missed
//! messages by reloading; reconnect with jittered exponential backoff. Every
//! Redis call runs under a timeout, so a Redis that accepts connections but
//! never answers (SIGSTOP, a network black hole) is detected, not waited on.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionInfo};

use super::protocol::{Keys, Message};
use super::{ReloadCause, Revocations, unix_ms};
use crate::config::RedisConfig;
use crate::readiness::Latch;

/// Why a sync session ended.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A Redis command or connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A Redis call did not answer within its timeout.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The subscription stream ended (connection closed).
    #[error("subscription closed")]
    Closed,
}

/// A Redis endpoint and the protocol names under its prefix.
#[derive(Clone)]
pub struct RedisTarget {
    client: Client,
    /// Key and channel names.
    pub keys: Keys,
    config: RedisConfig,
}

impl RedisTarget {
    /// Builds the client for `config` (connects lazily).
    pub fn new(config: &RedisConfig) -> Result<RedisTarget, redis::RedisError> {
        let info: ConnectionInfo = config.connection_info.clone();
        Ok(RedisTarget {
            client: Client::open(info)?,
            keys: Keys::new(&config.prefix),
            config: config.clone(),
        })
    }

    /// A command connection with the configured connect and command timeouts.
    pub async fn connect(&self) -> Result<MultiplexedConnection, SyncError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(self.config.command_timeout));
        within(
            self.config.connect_timeout + self.config.command_timeout,
            self.client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
    }
}

async fn within<T, E>(limit: Duration, fut: impl Future<Output = Result<T, E>>) -> Result<T, SyncError>
where
    SyncError: From<E>,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(SyncError::from),
        Err(_) => Err(SyncError::Timeout(limit)),
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
        if failures == 0 {
            // One line per state change; retries are logged at debug level.
            tracing::warn!(error = %error, redis = %target.config.display_url, "revocation sync lost; serving from the mirror");
        } else {
            tracing::debug!(error = %error, attempt = failures, "revocation sync reconnect failed");
        }
        failures = failures.saturating_add(1);
        tokio::time::sleep(backoff(failures)).await;
        cause = if ever_connected {
            ReloadCause::Reconnect
        } else {
            ReloadCause::Startup
        };
    }
}

/// Full-jitter exponential backoff: 100 ms doubling to 5 s, then a random
/// point in the upper half so that restarted sidecars do not stampede Redis.
fn backoff(attempt: u32) -> Duration {
    let ceiling = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
    let mut r = [0u8; 2];
    let jitter = match getrandom::fill(&mut r) {
        Ok(()) => u64::from(u16::from_le_bytes(r)) % (ceiling / 2 + 1),
        Err(_) => 0,
    };
    Duration::from_millis(ceiling / 2 + jitter)
}

async fn session(
    revocations: &Revocations,
    target: &RedisTarget,
    cause: ReloadCause,
    latch: &mut Option<Latch>,
    ever_connected: &mut bool,
    failures: &mut u32,
) -> Result<std::convert::Infallible, SyncError> {
    let cfg = &target.config;
    let limit = cfg.connect_timeout + cfg.command_timeout;
    // Subscribe before loading: anything revoked during the load arrives on
    // the channel and is applied after it, so nothing falls between.
    let mut pubsub = within(limit, target.client.get_async_pubsub()).await?;
    within(cfg.command_timeout, pubsub.subscribe(&target.keys.channel)).await?;
    let mut conn = target.connect().await?;
    let mut seq = full_load(revocations, target, &mut conn, cause).await?;
    revocations.set_connected(true);
    let (jti, sub) = revocations.len();
    if *ever_connected {
        tracing::info!(seq, jti, sub, "revocation sync resynced");
    } else {
        tracing::info!(seq, jti, sub, redis = %cfg.display_url, "revocation sync connected");
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
                let Some(msg) = msg else { return Err(SyncError::Closed) };
                match Message::parse(msg.get_payload_bytes()) {
                    Ok((msg_seq, revocation)) => {
                        revocations.apply(&revocation);
                        if msg_seq <= seq {
                            metrics.message("duplicate").inc();
                        } else if msg_seq == seq + 1 {
                            metrics.message("applied").inc();
                            seq = msg_seq;
                            revocations.mark_confirmed(unix_ms());
                        } else {
                            metrics.message("gap").inc();
                            tracing::info!(expected = seq + 1, got = msg_seq, "revocation seq gap; reloading");
                            seq = full_load(revocations, target, &mut conn, ReloadCause::Gap).await?.max(msg_seq);
                        }
                    }
                    Err(e) => {
                        metrics.message("malformed").inc();
                        tracing::warn!(error = %e, "malformed revocation message ignored; reloading");
                        seq = full_load(revocations, target, &mut conn, ReloadCause::Malformed).await?;
                    }
                }
            }
            _ = check.tick() => {
                let remote: Option<u64> = within(cfg.command_timeout, redis::cmd("GET").arg(&target.keys.seq).query_async(&mut conn)).await?;
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
                let now = crate::auth::unix_now();
                let removed = revocations.prune(now);
                if removed > 0 {
                    tracing::debug!(removed, "pruned expired revocations from the mirror");
                }
                // Every sidecar prunes Redis too; the commands are idempotent.
                let mut pipe = redis::pipe();
                pipe.cmd("ZREMRANGEBYSCORE").arg(&target.keys.jti).arg("-inf").arg(format!("({}", revocations.jti_keep_from(now))).ignore();
                pipe.cmd("ZREMRANGEBYSCORE").arg(&target.keys.sub).arg("-inf").arg(format!("({}", revocations.sub_keep_from(now))).ignore();
                within::<(), _>(cfg.command_timeout, pipe.query_async(&mut conn)).await?;
            }
        }
    }
}

/// Reads `seq`, then both sets in pages, merging into the mirror. Returns the
/// `seq` read before the scan: messages after it are applied by the caller.
async fn full_load(
    revocations: &Revocations,
    target: &RedisTarget,
    conn: &mut MultiplexedConnection,
    cause: ReloadCause,
) -> Result<u64, SyncError> {
    let cfg = &target.config;
    revocations.sync_metrics().reload(cause);
    let started = std::time::Instant::now();
    let seq: Option<u64> = within(
        cfg.command_timeout,
        redis::cmd("GET").arg(&target.keys.seq).query_async(conn),
    )
    .await?;
    let mut loaded = 0usize;
    for (key, is_jti) in [(&target.keys.jti, true), (&target.keys.sub, false)] {
        let mut cursor: u64 = 0;
        loop {
            let (next, page): (u64, Vec<String>) = within(
                cfg.command_timeout,
                redis::cmd("ZSCAN")
                    .arg(key)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(cfg.page_size)
                    .query_async(conn),
            )
            .await?;
            let pairs = page.chunks_exact(2).filter_map(|pair| {
                let score = pair[1].parse::<f64>().ok()?;
                Some((pair[0].as_str(), score.floor() as i64))
            });
            revocations.apply_page(is_jti, pairs);
            loaded += page.len() / 2;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    revocations.prune(crate::auth::unix_now());
    revocations.mark_confirmed(unix_ms());
    tracing::debug!(cause = cause.label(), loaded, elapsed = ?started.elapsed(), "revocation mirror loaded");
    Ok(seq.unwrap_or(0))
}
