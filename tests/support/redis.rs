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
