//! A redis-server of the test's own on a free port, which the test can kill,
//! restart (empty: no persistence), pause (SIGSTOP) and resume.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// Extra arguments (a replica's `--replicaof`, a sentinel's config file).
    extra: Vec<String>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(Vec::new())
    }

    /// A server with extra arguments, on a free port.
    pub fn start_with(extra: Vec<String>) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
            extra,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            // A directory of its own: a replica writes the RDB it receives
            // from its master as dump.rdb in its dir, and any server started
            // later in a shared dir would load it (stale keys, a seq not 0).
            .args(["--dir", &self.dir().display().to_string()])
            // A replica's first sync without the default 5 s wait for more.
            .args(["--repl-diskless-sync-delay", "0"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn dir(&self) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tokengate-redis-{}-{}", std::process::id(), self.port));
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    fn pid(&self) -> String {
        self.child.as_ref().unwrap().id().to_string()
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-CONT", &c.id().to_string()]).status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills and starts a fresh, empty server on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn pause(&self) {
        assert!(
            Command::new("kill")
                .args(["-STOP", &self.pid()])
                .status()
                .unwrap()
                .success()
        );
    }

    pub fn resume(&self) {
        assert!(
            Command::new("kill")
                .args(["-CONT", &self.pid()])
                .status()
                .unwrap()
                .success()
        );
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Runs redis-cli against this server, as an operator or issuer would.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli is installed with redis-server");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(self.dir());
    }
}

/// A Sentinel-managed pair: a master, one replica and three sentinels on
/// loopback, failing over one second after the master stops answering.
pub struct SentinelSet {
    pub master: RedisServer,
    /// The first replica (the one promoted when it is the only one).
    pub replica: RedisServer,
    /// Any further replicas.
    pub others: Vec<RedisServer>,
    sentinels: Vec<Child>,
    pub sentinel_ports: Vec<u16>,
    /// The sentinels' config files (they rewrite them).
    dir: std::path::PathBuf,
}

pub const MASTER_NAME: &str = "tokengate-master";

impl SentinelSet {
    pub fn start() -> SentinelSet {
        SentinelSet::start_with_replicas(1)
    }

    /// A master with `replicas` replicas (at least one) and three sentinels.
    pub fn start_with_replicas(replicas: usize) -> SentinelSet {
        let master = RedisServer::start();
        let replica_of =
            || RedisServer::start_with(vec!["--replicaof".into(), "127.0.0.1".into(), master.port.to_string()]);
        let replica = replica_of();
        let others: Vec<RedisServer> = (1..replicas).map(|_| replica_of()).collect();
        let expected_replicas = replicas.max(1).to_string();
        let dir = std::env::temp_dir().join(format!("tokengate-sentinels-{}-{}", std::process::id(), master.port));
        std::fs::create_dir_all(&dir).unwrap();
        let mut sentinels = Vec::new();
        let mut sentinel_ports = Vec::new();
        for i in 0..3 {
            let port = free_port();
            let conf = dir.join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {MASTER_NAME} 127.0.0.1 {} 2\nsentinel down-after-milliseconds {MASTER_NAME} 1000\nsentinel failover-timeout {MASTER_NAME} 10000\nsentinel parallel-syncs {MASTER_NAME} 1\n",
                    dir.display(),
                    master.port
                ),
            )
            .unwrap();
            sentinels.push(
                Command::new("redis-server")
                    .arg(&conf)
                    .arg("--sentinel")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("redis-server runs as a sentinel"),
            );
            sentinel_ports.push(port);
        }
        let set = SentinelSet {
            master,
            replica,
            others,
            sentinels,
            sentinel_ports,
            dir,
        };
        // Ready once every sentinel knows the replica and the other sentinels
        // (a failover needs both).
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = set.sentinel_ports.iter().all(|p| {
                let info = cli_at(*p, &["SENTINEL", "MASTER", MASTER_NAME]);
                field_after(&info, "num-slaves") == Some(expected_replicas.as_str())
                    && field_after(&info, "num-other-sentinels") == Some("2")
            });
            if ready {
                return set;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the sentinels never saw the replica and each other");
    }

    /// `redis+sentinel://` for tokengate.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.sentinel_ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// Every replica's port.
    pub fn replica_ports(&self) -> Vec<u16> {
        std::iter::once(&self.replica)
            .chain(&self.others)
            .map(|r| r.port)
            .collect()
    }

    /// The port the sentinels name as the master now.
    pub fn master_port(&self) -> Option<u16> {
        let out = cli_at(
            self.sentinel_ports[0],
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
        );
        out.lines().nth(1)?.trim().parse().ok()
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for s in &mut self.sentinels {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// redis-cli against `port`, its output (empty when it fails).
pub fn cli_at(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// In redis-cli's one-value-per-line output of a flat map, the value after `name`.
fn field_after<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let mut lines = text.lines().map(str::trim);
    lines.by_ref().find(|l| *l == name)?;
    lines.next()
}

/// A Redis Cluster on loopback: three masters, each with one replica,
/// made by `redis-cli --cluster create`, failing a master over one second
/// after it stops answering.
pub struct ClusterSet {
    /// Every node, masters first as created (their roles change in a failover).
    pub nodes: Vec<RedisServer>,
}

/// A node as `CLUSTER NODES` describes it.
pub struct ClusterNode {
    pub port: u16,
    pub id: String,
    /// `master`, `replica` or `failed`.
    pub role: String,
    /// Slot ranges served (masters).
    pub slots: Vec<(u16, u16)>,
}

/// The slot of tokengate's default hash tag `{tokengate}`.
pub const TAG_SLOT: u16 = 3372;

fn cluster_node() -> RedisServer {
    RedisServer::start_with(vec![
        "--cluster-enabled".into(),
        "yes".into(),
        "--cluster-config-file".into(),
        "nodes.conf".into(),
        "--cluster-node-timeout".into(),
        "1000".into(),
        // The bus port is the port + 10000 unless given: in the
        // kernel's ephemeral range, where it can be taken.
        "--cluster-port".into(),
        super::free_port().to_string(),
    ])
}

impl ClusterSet {
    pub fn start() -> ClusterSet {
        let nodes: Vec<RedisServer> = (0..6).map(|_| cluster_node()).collect();
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let set = ClusterSet { nodes };
        // Ready once every node says the cluster is ok and the tag's master
        // has a replica online (a failover needs one).
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ok = set
                .nodes
                .iter()
                .all(|n| cli_at(n.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"));
            let replicated = set
                .slot_master()
                .is_some_and(|m| cli_at(m, &["INFO", "replication"]).contains("connected_slaves:1"));
            if ok && replicated {
                return set;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the cluster never became ok");
    }

    /// Adds a second replica to the master of tokengate's slot (so it keeps
    /// one after a failover, for `wait_for_replicas: 1`).
    pub fn add_slot_replica(&mut self) {
        let master = self.slot_master().unwrap();
        let id = self.id_of(master).unwrap();
        let node = cluster_node();
        let out = Command::new("redis-cli")
            .args(["--cluster", "add-node", &format!("127.0.0.1:{}", node.port)])
            .arg(format!("127.0.0.1:{master}"))
            .args(["--cluster-slave", "--cluster-master-id", &id])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "add-node: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        self.nodes.push(node);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if cli_at(master, &["INFO", "replication"]).contains("connected_slaves:2") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the second replica never linked");
    }

    /// `redis+cluster://` naming the nodes at `ports`, in that order.
    pub fn url_of(ports: &[u16]) -> String {
        let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// `redis+cluster://` naming every node.
    pub fn url(&self) -> String {
        ClusterSet::url_of(&self.ports())
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// Every node, as a live node sees them.
    pub fn topology(&self) -> Vec<ClusterNode> {
        for n in &self.nodes {
            if n.child.is_none() {
                continue;
            }
            let out = cli_at(n.port, &["CLUSTER", "NODES"]);
            if out.trim().is_empty() {
                continue;
            }
            return out
                .lines()
                .filter_map(|line| {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let port = f.get(1)?.split('@').next()?.rsplit(':').next()?.parse().ok()?;
                    let role = if f.get(2)?.contains("master") {
                        "master"
                    } else {
                        "replica"
                    };
                    let failed = f.get(2)?.contains("fail") && !f.get(2)?.contains("pfail");
                    let slots = f
                        .get(8..)
                        .unwrap_or_default()
                        .iter()
                        .filter(|s| !s.starts_with('['))
                        .filter_map(|s| match s.split_once('-') {
                            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                            None => s.parse().ok().map(|a| (a, a)),
                        })
                        .collect();
                    let role = if failed { "failed" } else { role };
                    Some(ClusterNode {
                        port,
                        id: f.first()?.to_string(),
                        role: role.to_owned(),
                        slots,
                    })
                })
                .collect();
        }
        Vec::new()
    }

    /// The port of the master serving tokengate's slot now.
    pub fn slot_master(&self) -> Option<u16> {
        self.topology()
            .into_iter()
            .find(|n| n.role == "master" && n.slots.iter().any(|&(a, b)| a <= TAG_SLOT && TAG_SLOT <= b))
            .map(|n| n.port)
    }

    /// A master that does not serve tokengate's slot.
    pub fn other_master(&self) -> Option<u16> {
        let owner = self.slot_master()?;
        self.topology()
            .into_iter()
            .find(|n| n.role == "master" && n.port != owner)
            .map(|n| n.port)
    }

    /// The node id of the node at `port`.
    pub fn id_of(&self, port: u16) -> Option<String> {
        self.topology().into_iter().find(|n| n.port == port).map(|n| n.id)
    }

    /// The node at `port`.
    pub fn node(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of the set")
    }

    /// Starts moving `slot` with its keys from the master at `from` to the
    /// one at `to`, as `redis-cli --cluster reshard` does: importing and
    /// migrating marks, then MIGRATE of every key. The slot is still
    /// `from`'s, which sends clients on to `to` with ASK, until
    /// [`ClusterSet::finish_migration`].
    pub fn begin_migration(&self, slot: u16, from: u16, to: u16) {
        let (from_id, to_id) = (self.id_of(from).unwrap(), self.id_of(to).unwrap());
        let s = slot.to_string();
        let ok = |out: String| assert!(out.trim() == "OK", "{out}");
        ok(cli_at(to, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &from_id]));
        ok(cli_at(from, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &to_id]));
        let to_port = to.to_string();
        loop {
            let keys = cli_at(from, &["CLUSTER", "GETKEYSINSLOT", &s, "100"]);
            let keys: Vec<&str> = keys.lines().map(str::trim).filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let mut args = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
            args.extend(keys);
            let out = cli_at(from, &args);
            assert!(out.trim() == "OK" || out.trim() == "NOKEY", "MIGRATE: {out}");
        }
    }

    /// Hands `slot` over to the master at `to` on every node (clients are
    /// then sent there with MOVED).
    pub fn finish_migration(&self, slot: u16, to: u16) {
        let to_id = self.id_of(to).unwrap();
        let s = slot.to_string();
        let out = cli_at(to, &["CLUSTER", "SETSLOT", &s, "NODE", &to_id]);
        assert!(out.trim() == "OK", "{out}");
        for n in &self.nodes {
            if n.port != to && n.child.is_some() {
                let _ = cli_at(n.port, &["CLUSTER", "SETSLOT", &s, "NODE", &to_id]);
            }
        }
    }
}
