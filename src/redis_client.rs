//! The one way tokengate talks to Redis: an endpoint (URL, password, TLS by
//! `rediss://`, connect and command timeouts) that connects under those
//! timeouts to one server, the master the sentinels name, or a cluster, and
//! a cached command connection that is dropped after a broken exchange. The
//! revocation sync and the session store both use it; neither knows how a
//! connection is made.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionLike, MultiplexedConnection, PubSub};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{AsyncConnectionConfig, Client, ConnectionInfo, IntoConnectionInfo};

/// Where Redis is and how patiently to talk to it. Cheap to clone; connects
/// lazily, so building one never touches the network.
#[derive(Clone)]
pub struct Endpoint {
    target: Target,
    display_url: String,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for any one command; a hung Redis is detected by this.
    pub command_timeout: Duration,
    /// Replicas that must acknowledge a revocation before it counts as
    /// written ([`Endpoint::confirm_replicated`]); 0: the master's word.
    pub wait_replicas: u32,
}

/// Where connections go: one server, whichever server the sentinels
/// name as the master at the moment of connecting, or a cluster.
#[derive(Clone)]
enum Target {
    Direct(Client),
    Cluster {
        /// The nodes named in the URL: the cluster client learns the rest
        /// from them, and subscriptions go to one of them.
        seeds: Vec<ConnectionInfo>,
        /// The seed the next subscription goes to: the first, then the
        /// next after each failure.
        next_seed: Arc<AtomicUsize>,
    },
    Sentinel {
        /// Shared by the clones of this endpoint: it caches sentinel connections.
        sentinels: Arc<tokio::sync::Mutex<redis::sentinel::Sentinel>>,
        master: String,
        /// Password and TLS for the master (not for the sentinels).
        node: redis::sentinel::SentinelNodeConnectionInfo,
        /// The master's address as last resolved, to log each change once.
        current: Arc<std::sync::Mutex<Option<String>>>,
    },
}

/// Why a URL names no usable Redis.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// Neither `redis://`, `rediss://` nor their `+sentinel` or `+cluster` forms.
    #[error(
        "must start with redis://, rediss:// (TLS), redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://"
    )]
    Scheme,
    /// A cluster URL without node addresses, or with a path.
    #[error("a cluster URL is redis+cluster://[:password@]host:port[,host:port...]")]
    Cluster,
    /// A sentinel URL without its master name or sentinel addresses.
    #[error("a sentinel URL is redis+sentinel://[:password@]host:port[,host:port...]/master-name")]
    Sentinel,
    /// The client library refused it.
    #[error("not a Redis URL: {0}")]
    Invalid(#[source] redis::RedisError),
}

/// Why a Redis exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// A command or connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer within the timeout.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// A subscription stream ended (its connection closed).
    #[error("subscription closed")]
    Closed,
    /// The script reached Redis after its deadline and changed nothing.
    #[error("redis ran the script after its deadline; nothing was changed")]
    Late,
    /// The system's random source failed (for a call's done key).
    #[error("no randomness: {0}")]
    Random(String),
    /// Written on the master, but fewer replicas than required confirmed
    /// it in time: a failover now could lose it (retrying is harmless).
    #[error("written to the master but confirmed by {acked} of {wanted} replicas; retry")]
    NotReplicated {
        /// Replicas that confirmed.
        acked: i64,
        /// Replicas required (`wait_for_replicas`).
        wanted: u32,
    },
}

/// The deadline (unix ms) passed to a script sent now over `endpoint`:
/// half the command timeout away. A script Redis starts later does nothing
/// (`redis_guard.lua`), so when the caller has given up and answered 503, a
/// Redis that was only paused cannot apply the change behind its back;
/// one that starts in time finishes (scripts take microseconds) long
/// before the caller's timeout. Assumes the clocks of tokengate and Redis
/// agree within that half.
pub fn script_deadline(endpoint: &Endpoint) -> i64 {
    let half = i64::try_from(endpoint.command_timeout.as_millis() / 2).unwrap_or(i64::MAX);
    now_ms().saturating_add(half)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

const GUARD_HEAD: &str = include_str!("redis_guard.lua");

/// Runs the body, then keeps its answer under the done key until ten
/// seconds past the deadline (no resend can arrive later: it would be late).
const GUARD_TAIL: &str = "
local tokengate_result = tokengate_body()
redis.call('SET', tokengate_done, cmsgpack.pack(tokengate_result), 'PX', math.max(tokengate_deadline - tokengate_now, 0) + 10000)
return tokengate_result
";

/// A state-changing script: `body` runs at most once per call and only
/// before the call's deadline. With [`guard_args`] after every other key,
/// it answers `{'late', ms}` without running when Redis starts it after the
/// deadline, and the first run's answer when the same call arrives again
/// (the cluster client resends a command whose reply was lost, possibly to
/// a new master that has the first run's effects). On a cluster it does not
/// run at all while its slot is moving (the never-existing done key makes
/// Redis answer TRYAGAIN or ASK). `body` runs as a Lua function, so its
/// top-level `return` is the script's answer.
pub fn guarded_script(body: &str) -> redis::Script {
    redis::Script::new(&format!(
        "{GUARD_HEAD}local function tokengate_body()\n{body}\nend\n{GUARD_TAIL}"
    ))
}

/// What a [`guarded_script`] reads last: a done key unique to this call
/// under the hash tag `tag` (so it lives in the slot the script runs on),
/// as the last key, and [`script_deadline`] as the last argument. Call it
/// after adding every other key and argument.
pub fn guard_args(
    invocation: &mut redis::ScriptInvocation<'_>,
    endpoint: &Endpoint,
    tag: &str,
) -> Result<(), RedisError> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| RedisError::Random(e.to_string()))?;
    let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    invocation
        .key(format!("{tag}:done:{hex}"))
        .arg(script_deadline(endpoint));
    Ok(())
}

/// The guard's `{'late', ms past the deadline}`, as the milliseconds; no
/// guarded body may answer that shape.
pub fn late_by(reply: &redis::Value) -> Option<i64> {
    match reply {
        redis::Value::Array(items) => match items.as_slice() {
            [redis::Value::BulkString(b), redis::Value::Int(ms)] if b.as_slice() == b"late" => Some(*ms),
            _ => None,
        },
        _ => None,
    }
}

impl Endpoint {
    /// An endpoint for `url`, with the default timeouts (connect 2 s, command 1 s).
    ///
    /// `redis+sentinel://[:password@]host:port[,host:port...]/master-name`
    /// (or `rediss+sentinel://`, TLS to the sentinels and the master) asks
    /// the sentinels for the master on every connect, so a reconnect after
    /// a failover reaches the new master; the URL's password is the
    /// sentinels', the master's comes from [`Endpoint::with_password`].
    pub fn parse(url: &str) -> Result<Endpoint, UrlError> {
        let target = if let Some((scheme, rest)) = url.split_once("+sentinel://") {
            let (tls, scheme) = match scheme {
                "redis" => (false, "redis"),
                "rediss" => (true, "rediss"),
                _ => return Err(UrlError::Scheme),
            };
            let (auth, rest) = match rest.rsplit_once('@') {
                Some((auth, rest)) => (format!("{auth}@"), rest),
                None => (String::new(), rest),
            };
            let (hosts, master) = rest.split_once('/').ok_or(UrlError::Sentinel)?;
            let master = master.trim_end_matches('/');
            if hosts.is_empty() || master.is_empty() || master.contains('/') {
                return Err(UrlError::Sentinel);
            }
            let nodes = hosts
                .split(',')
                .map(|h| format!("{scheme}://{auth}{h}").into_connection_info())
                .collect::<Result<Vec<_>, _>>()
                .map_err(UrlError::Invalid)?;
            let sentinels = redis::sentinel::Sentinel::build(nodes).map_err(UrlError::Invalid)?;
            let mut node = redis::sentinel::SentinelNodeConnectionInfo::default();
            if tls {
                node = node.set_tls_mode(redis::TlsMode::Secure);
            }
            Target::Sentinel {
                sentinels: Arc::new(tokio::sync::Mutex::new(sentinels)),
                master: master.to_owned(),
                node,
                current: Arc::default(),
            }
        } else if let Some((scheme, rest)) = url.split_once("+cluster://") {
            if scheme != "redis" && scheme != "rediss" {
                return Err(UrlError::Scheme);
            }
            let (auth, hosts) = match rest.rsplit_once('@') {
                Some((auth, rest)) => (format!("{auth}@"), rest),
                None => (String::new(), rest),
            };
            let hosts = hosts.strip_suffix('/').unwrap_or(hosts);
            if hosts.is_empty() || hosts.contains('/') || hosts.split(',').any(str::is_empty) {
                return Err(UrlError::Cluster);
            }
            let seeds = hosts
                .split(',')
                .map(|h| format!("{scheme}://{auth}{h}").into_connection_info())
                .collect::<Result<Vec<_>, _>>()
                .map_err(UrlError::Invalid)?;
            Target::Cluster {
                seeds,
                next_seed: Arc::new(AtomicUsize::new(0)),
            }
        } else if url.starts_with("redis://") || url.starts_with("rediss://") {
            let info = url.into_connection_info().map_err(UrlError::Invalid)?;
            Target::Direct(Client::open(info).map_err(UrlError::Invalid)?)
        } else {
            return Err(UrlError::Scheme);
        };
        Ok(Endpoint {
            target,
            display_url: redact_url(url),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(1),
            wait_replicas: 0,
        })
    }

    /// The same endpoint with `password` (from a file or the environment)
    /// in place of any password in the URL (for a sentinel URL: the master's;
    /// for a cluster: every node's).
    pub fn with_password(self, password: String) -> Result<Endpoint, UrlError> {
        let target = match self.target {
            Target::Direct(client) => {
                let info = client.get_connection_info().clone();
                let settings = info.redis_settings().clone().set_password(password);
                Target::Direct(Client::open(info.set_redis_settings(settings)).map_err(UrlError::Invalid)?)
            }
            Target::Cluster { seeds, next_seed } => Target::Cluster {
                seeds: seeds
                    .into_iter()
                    .map(|info| {
                        let settings = info.redis_settings().clone().set_password(password.clone());
                        info.set_redis_settings(settings)
                    })
                    .collect(),
                next_seed,
            },
            Target::Sentinel {
                sentinels,
                master,
                node,
                current,
            } => Target::Sentinel {
                sentinels,
                master,
                node: node.set_redis_connection_info(redis::RedisConnectionInfo::default().set_password(password)),
                current,
            },
        };
        Ok(Endpoint { target, ..self })
    }

    /// After a write on `conn`: `WAIT` until `wait_replicas` replicas hold
    /// it, for at most half the command timeout. Replication is
    /// asynchronous: without this, a write the master acknowledged can die
    /// with the master in a failover. `key` names the slot written (on a
    /// cluster, WAIT goes to that slot's master, over the connection that
    /// wrote).
    pub async fn confirm_replicated(&self, conn: &mut Connection, key: &str) -> Result<(), RedisError> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        let wait_ms = u64::try_from(self.command_timeout.as_millis() / 2)
            .unwrap_or(u64::MAX)
            .max(1);
        let mut wait = redis::cmd("WAIT");
        wait.arg(self.wait_replicas).arg(wait_ms);
        let acked: i64 = match conn {
            Connection::Node(conn) => self.command(wait.query_async(conn)).await?,
            Connection::Cluster(conn) => {
                let route = Route::new(key_slot(key.as_bytes()), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                let reply = self.command(conn.route_command(wait, routing)).await?;
                redis::from_redis_value(reply).map_err(redis::RedisError::from)?
            }
        };
        if acked < i64::from(self.wait_replicas) {
            return Err(RedisError::NotReplicated {
                acked,
                wanted: self.wait_replicas,
            });
        }
        Ok(())
    }

    /// True when connections go through sentinels.
    pub fn is_sentinel(&self) -> bool {
        matches!(self.target, Target::Sentinel { .. })
    }

    /// True for a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster { .. })
    }

    /// The client for the server to talk to now: the one configured, or
    /// the master the sentinels name (checked to say it is the master).
    async fn client(&self) -> Result<Client, RedisError> {
        match &self.target {
            Target::Direct(client) => Ok(client.clone()),
            Target::Cluster { seeds, next_seed } => {
                // A subscription: any node receives every PUBLISH.
                let i = next_seed.load(Ordering::Relaxed) % seeds.len().max(1);
                let info = seeds.get(i).cloned().ok_or(RedisError::Closed)?;
                Ok(Client::open(info)?)
            }
            Target::Sentinel {
                sentinels,
                master,
                node,
                current,
            } => {
                // The wait for the lock is inside the time bound too: lookups
                // queued behind a slow one give up with it, not after it.
                let client = within(self.connect_timeout + self.command_timeout, async {
                    let mut sentinels = sentinels.lock().await;
                    sentinels.async_master_for(master, Some(node)).await
                })
                .await?;
                // One line per failover (per process), whichever part of
                // tokengate reconnects first.
                let address = client.get_connection_info().addr().to_string();
                let mut current = current.lock().unwrap_or_else(|e| e.into_inner());
                if current.as_deref() != Some(address.as_str()) {
                    tracing::info!(
                        master_set = %master,
                        master = %address,
                        previous = current.as_deref().unwrap_or("-"),
                        "redis master from the sentinels"
                    );
                    *current = Some(address);
                }
                Ok(client)
            }
        }
    }

    /// The URL without its password, for logs.
    pub fn display_url(&self) -> &str {
        &self.display_url
    }

    /// A command connection with the configured connect and command timeouts.
    pub async fn connect(&self) -> Result<Connection, RedisError> {
        let limit = self.connect_timeout + self.command_timeout;
        if let Target::Cluster { seeds, .. } = &self.target {
            let client = redis::cluster::ClusterClientBuilder::new(seeds.iter().cloned())
                .connection_timeout(self.connect_timeout)
                .response_timeout(self.command_timeout)
                .build()?;
            return Ok(Connection::Cluster(within(limit, client.get_async_connection()).await?));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout));
        let client = self.client().await?;
        let conn = within(limit, client.get_multiplexed_async_connection_with_config(&config)).await?;
        Ok(Connection::Node(conn))
    }

    /// The role (`master`, `slave`) of the server at `address`, asked over
    /// `conn`: a demoted master answers `slave`. On a cluster, the node
    /// subscribed to (master or replica) is asked over a connection of its
    /// own, by the address as listed in the URL (the cluster may know it
    /// by another name).
    pub async fn role(&self, conn: &mut Connection, address: &str) -> Result<String, RedisError> {
        let reply: redis::Value = match (conn, &self.target) {
            (Connection::Cluster(_), Target::Cluster { seeds, .. }) => {
                let info = seeds
                    .iter()
                    .find(|s| s.addr().to_string() == address)
                    .cloned()
                    .ok_or(RedisError::Closed)?;
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(self.command_timeout));
                let mut node = within(
                    self.connect_timeout + self.command_timeout,
                    Client::open(info)?.get_multiplexed_async_connection_with_config(&config),
                )
                .await?;
                self.command(redis::cmd("ROLE").query_async(&mut node)).await?
            }
            (conn, _) => self.command(redis::cmd("ROLE").query_async(conn)).await?,
        };
        Ok(match reply {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(redis::Value::SimpleString(s)) => s.clone(),
                _ => "unknown".to_owned(),
            },
            _ => "unknown".to_owned(),
        })
    }

    /// After the revocation sync lost its session: on a cluster, the next
    /// subscription tries the next listed node (this one may be dead, or
    /// unreachable by the name listed).
    pub fn sync_failed(&self) {
        if let Target::Cluster { next_seed, .. } = &self.target {
            next_seed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A pub/sub connection subscribed to `channel`, and the address of
    /// the server it is on (with Sentinel, the master; on a cluster, the
    /// first listed node, then the next one after each
    /// [`Endpoint::sync_failed`]).
    pub async fn subscribe(&self, channel: &str) -> Result<(PubSub, String), RedisError> {
        let client = self.client().await?;
        let address = client.get_connection_info().addr().to_string();
        let mut pubsub = within(self.connect_timeout + self.command_timeout, client.get_async_pubsub()).await?;
        within(self.command_timeout, pubsub.subscribe(channel)).await?;
        Ok((pubsub, address))
    }

    /// Runs one command future under the command timeout.
    pub async fn command<T>(&self, fut: impl Future<Output = redis::RedisResult<T>>) -> Result<T, RedisError> {
        within(self.command_timeout, fut).await
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.display_url)
            .finish_non_exhaustive()
    }
}

/// Awaits `fut` for at most `limit`.
pub async fn within<T, E>(limit: Duration, fut: impl Future<Output = Result<T, E>>) -> Result<T, RedisError>
where
    RedisError: From<E>,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(RedisError::from),
        Err(_) => Err(RedisError::Timeout(limit)),
    }
}

/// A command connection: to one server, or to a cluster (which routes each
/// command to its slot's master and follows `MOVED`/`ASK` and failovers).
#[derive(Clone)]
pub enum Connection {
    /// One server (direct, or the master the sentinels named).
    Node(MultiplexedConnection),
    /// A cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Connection::Node(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Node(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// One command connection shared by concurrent callers (it multiplexes), opened
/// on first use and opened afresh after an exchange broke it.
pub struct SharedConnection {
    endpoint: Endpoint,
    conn: ArcSwapOption<Connection>,
}

impl fmt::Debug for SharedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedConnection")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl SharedConnection {
    /// Nothing is connected until the first [`SharedConnection::get`].
    pub fn new(endpoint: Endpoint) -> SharedConnection {
        SharedConnection {
            endpoint,
            conn: ArcSwapOption::empty(),
        }
    }

    /// The cached connection, or a new one.
    pub async fn get(&self) -> Result<Connection, RedisError> {
        if let Some(c) = self.conn.load_full() {
            return Ok(Connection::clone(&c));
        }
        let c = self.endpoint.connect().await?;
        self.conn.store(Some(Arc::new(c.clone())));
        Ok(c)
    }

    /// The endpoint this connection goes to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Notes a failed exchange: after a broken socket or a timeout, the next
    /// [`SharedConnection::get`] connects afresh instead of reusing it.
    pub fn failed(&self, e: &RedisError) {
        let cluster = matches!(self.conn.load().as_deref(), Some(Connection::Cluster(_)));
        let broken = match e {
            // The cluster client repairs its connections to single nodes
            // itself, and a new one could only start from the listed
            // nodes, which may be the ones down.
            RedisError::Redis(e) if cluster => e.is_unrecoverable_error(),
            _ if cluster => false,
            RedisError::Timeout(_) | RedisError::Closed => true,
            // READONLY: the server was demoted by a failover; reconnecting
            // asks the sentinels for the new master. Before Redis 7 an
            // error inside a script arrives as `ERR Error running script
            // ... READONLY ...`, so the text counts too.
            RedisError::Redis(e) => {
                e.code() == Some("READONLY")
                    || e.to_string().contains("READONLY")
                    || e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || e.is_unrecoverable_error()
            }
            RedisError::Late | RedisError::NotReplicated { .. } | RedisError::Random(_) => false,
        };
        if broken {
            self.conn.store(None);
        }
    }
}

/// The cluster slot of `key` (CRC16/XMODEM of its hash tag, or of the key
/// when it has none, modulo 16384), as Redis computes it.
fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    let crc = tagged.iter().fold(0u16, |mut crc, &b| {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
        crc
    });
    crc % 16384
}

/// The URL with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls() {
        let e = Endpoint::parse("redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/mymaster").unwrap();
        assert!(e.is_sentinel());
        assert_eq!(
            e.display_url(),
            "redis+sentinel://:***@10.0.0.1:26379,10.0.0.2:26379/mymaster"
        );
        assert!(Endpoint::parse("rediss+sentinel://s1:26379/m").unwrap().is_sentinel());
        assert!(!Endpoint::parse("redis://h").unwrap().is_sentinel());
        for bad in [
            "redis+sentinel://s1:26379",
            "redis+sentinel://s1:26379/",
            "redis+sentinel:///m",
            "redis+sentinel://s1/a/b",
        ] {
            assert!(matches!(Endpoint::parse(bad), Err(UrlError::Sentinel)), "{bad}");
        }
        assert!(matches!(Endpoint::parse("http+sentinel://s1/m"), Err(UrlError::Scheme)));
        assert!(matches!(
            Endpoint::parse("redis+sentinel://s1:x/m"),
            Err(UrlError::Invalid(_))
        ));
        // The master's password does not replace the sentinels'.
        let e = Endpoint::parse("redis+sentinel://s1:26379/m")
            .unwrap()
            .with_password("p".into())
            .unwrap();
        assert!(e.is_sentinel());
    }

    #[test]
    fn key_slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.0.
        assert_eq!(key_slot(b"{tokengate}"), 3372);
        assert_eq!(key_slot(b"{tokengate}:seq"), 3372);
        // The CRC16 check value, and the tag rules of the cluster spec.
        assert_eq!(key_slot(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
    }

    #[test]
    fn cluster_urls() {
        let e = Endpoint::parse("redis+cluster://:pw@10.0.0.1:6379,10.0.0.2:6379").unwrap();
        assert!(e.is_cluster() && !e.is_sentinel());
        assert_eq!(e.display_url(), "redis+cluster://:***@10.0.0.1:6379,10.0.0.2:6379");
        assert!(Endpoint::parse("rediss+cluster://n1:6379/").unwrap().is_cluster());
        for bad in [
            "redis+cluster://",
            "redis+cluster://n1:6379/0",
            "redis+cluster://n1,,n2",
        ] {
            assert!(matches!(Endpoint::parse(bad), Err(UrlError::Cluster)), "{bad}");
        }
        assert!(matches!(Endpoint::parse("http+cluster://n1"), Err(UrlError::Scheme)));
    }

    #[test]
    fn urls() {
        assert!(matches!(Endpoint::parse("http://x"), Err(UrlError::Scheme)));
        assert!(matches!(
            Endpoint::parse("redis://h:notaport"),
            Err(UrlError::Invalid(_))
        ));
        let e = Endpoint::parse("redis://u:secret@h:6380/2").unwrap();
        assert_eq!(e.display_url(), "redis://u:***@h:6380/2");
        assert!(!format!("{e:?}").contains("secret"));
        assert_eq!(redact_url("rediss://h:6379"), "rediss://h:6379");
        assert_eq!(redact_url("redis://:pw@h"), "redis://:***@h");
    }

    #[tokio::test]
    async fn a_silent_server_is_a_timeout_not_a_hang() {
        // Accepts, never answers: what a SIGSTOPped Redis looks like.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let short = Duration::from_millis(200);
        let mut e = Endpoint::parse(&format!("redis://{addr}")).unwrap();
        e.connect_timeout = short;
        e.command_timeout = short;
        let shared = SharedConnection::new(e.clone());
        let started = std::time::Instant::now();
        // Depending on the handshake, either the connect or the first command
        // must give up; neither may wait for ever.
        let err = match shared.get().await {
            Err(err) => err,
            Ok(mut conn) => match e.command(redis::cmd("PING").query_async::<String>(&mut conn)).await {
                Ok(pong) => panic!("an answer from a server that never answers: {pong}"),
                Err(err) => err,
            },
        };
        assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    }
}
