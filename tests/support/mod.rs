//! Test harness: the real proxy on port 0 in front of the real echo app,
//! clients for HTTP/1.1, h2c and TLS, and token minting from fixture keys.
#![allow(dead_code)] // each test binary uses a different subset

// The binary's echo app, compiled into the tests too: it is the upstream
// whose report of what it received the tests assert on, and it is not
// part of the library API.
pub mod browser;
#[path = "../../src/cli/echo.rs"]
mod echo;
pub mod ha;
pub mod jwks;
pub mod op;
pub mod raw;
pub mod redis;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokengate::config::FileBase;
use tokengate::{Config, Listeners};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Directory of test keys and certificates.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A port for a server a test starts as its own process (a redis-server,
/// the provider, prometheus), free now and below the kernel's ephemeral
/// range (`net.ipv4.ip_local_port_range`, 32768 and up by default). A port
/// taken by binding port 0 can be handed by the kernel to any outgoing
/// connection (a proxy's Redis client, a JWKS poller) or port-0 listener
/// before the child binds it, which then fails to start: seen in CI.
/// Ports are handed out once per process, from an offset that differs per
/// process, and each is checked free on loopback.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let low = ephemeral_low.saturating_sub(12_000).max(1_024);
    let span = ephemeral_low.saturating_sub(low);
    if span < 1_000 {
        // No room below the ephemeral range: the kernel's choice it is.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        return listener.local_addr().unwrap().port();
    }
    let offset = std::process::id().wrapping_mul(2_654_435_761) % span;
    for _ in 0..span {
        let port = (low + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {low} and {ephemeral_low}");
}

/// A fresh directory under the system temp dir, unique to this process and `name`.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tokengate-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the real binary on `config` with `--threads threads` (1: the
/// current-thread scheduler; more: the multi-thread one) and waits for it to
/// log its addresses: (child, proxy address, admin address). Its log pipe is
/// drained in the background so it never blocks.
pub async fn spawn_binary(config: &std::path::Path, threads: u32) -> (tokio::process::Child, String, String) {
    let (child, proxy, admin, mut lines) = spawn_binary_logs(config, threads).await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, proxy, admin)
}

/// The JSON log lines of a spawned binary, after its "listening" line.
pub type LogLines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>;

/// [`spawn_binary`], handing over the rest of its log instead of draining it.
pub async fn spawn_binary_logs(
    config: &std::path::Path,
    threads: u32,
) -> (tokio::process::Child, String, String, LogLines) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokengate"))
        .args([
            "--log-format",
            "json",
            "--threads",
            &threads.to_string(),
            "run",
            "--config",
        ])
        .arg(config)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    let (proxy, admin) = loop {
        let line = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .expect("the proxy logs its addresses")
            .unwrap()
            .expect("the proxy is running");
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["message"] == "tokengate listening" {
            break (
                v["proxy"].as_str().unwrap().to_owned(),
                v["admin"].as_str().unwrap().to_owned(),
            );
        }
    };
    (child, proxy, admin, lines)
}

pub fn now() -> i64 {
    tokengate::clock::unix_now()
}

/// The echo app on an ephemeral port.
pub async fn start_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(echo::serve(listener));
    addr
}

/// A port nothing listens on (bound, then released).
pub async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// Issuers for every algorithm, keyed by kid = algorithm name.
pub const ISSUERS: &str = r#"
  issuers:
    - issuer: "https://issuer.test/"
      audiences: ["app"]
      keys:
        - { kid: HS256, algorithm: HS256, secret_file: keys/hs32.secret }
        - { kid: HS384, algorithm: HS384, secret_file: keys/hs48.secret }
        - { kid: HS512, algorithm: HS512, secret_file: keys/hs64.secret }
        - { kid: RS256, algorithm: RS256, public_key_file: keys/rsa.pub.pem }
        - { kid: RS384, algorithm: RS384, public_key_file: keys/rsa.pub.pem }
        - { kid: RS512, algorithm: RS512, public_key_file: keys/rsa.pub.pem }
        - { kid: PS256, algorithm: PS256, public_key_file: keys/rsa.pub.pem }
        - { kid: PS384, algorithm: PS384, public_key_file: keys/rsa.pub.pem }
        - { kid: PS512, algorithm: PS512, public_key_file: keys/rsa.pub.pem }
        - { kid: ES256, algorithm: ES256, public_key_file: keys/ec256.pub.pem }
        - { kid: ES384, algorithm: ES384, public_key_file: keys/ec384.pub.pem }
        - { kid: EdDSA, algorithm: EdDSA, public_key_file: keys/ed25519.pub.pem }
    - issuer: "other-issuer"
      keys:
        - { algorithm: HS256, secret_file: keys/hs32.secret }
"#;

/// A complete config: `{upstream}` is replaced with the upstream address.
pub fn base_config() -> String {
    format!(
        r#"
listen: "127.0.0.1:0"
admin: {{ listen: "127.0.0.1:0" }}
upstream:
  url: "http://{{upstream}}"
  connect_timeout: 300ms
  request_timeout: 1s
shutdown: {{ drain_timeout: 5s }}
auth:
  leeway: 30s
  sources:
    - header: authorization
    - cookie: access_token
    - header: x-access-token
    - query: access_token
{ISSUERS}
  identity_headers:
    subject: X-Auth-Subject
    claims: {{ email: X-Auth-Email, role: X-Auth-Role }}
routes:
  - path: /healthz
    public: true
  - prefix: /public/
    public: true
  - prefix: /admin/
    require: {{ scopes: [admin] }}
  - prefix: /staff/
    require: {{ claims: {{ role: staff }} }}
  - prefix: /
"#
    )
}

/// A running proxy and its echo upstream.
pub struct TestProxy {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// The session control listener, when the config has `sessions`.
    pub control: Option<SocketAddr>,
    /// The decision listener, when `decision` is configured.
    pub decision: Option<SocketAddr>,
    pub upstream: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), tokengate::RunError>>>,
}

impl TestProxy {
    /// Starts the base config in front of a fresh echo app.
    pub async fn start() -> TestProxy {
        let upstream = start_echo().await;
        Self::start_with(&base_config(), upstream).await
    }

    /// Starts `yaml` (with `{upstream}` replaced) in front of `upstream`.
    pub async fn start_with(yaml: &str, upstream: SocketAddr) -> TestProxy {
        Self::start_config(load(yaml, upstream), upstream).await
    }

    /// [`TestProxy::start_with`], its proxy listener bound first so that
    /// `{proxy_port}` in `yaml` names its port (a public URL, a callback).
    pub async fn start_bound(yaml: &str, upstream: SocketAddr) -> TestProxy {
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = proxy.local_addr().unwrap().port().to_string();
        let config = load(&yaml.replace("{proxy_port}", &port), upstream);
        Self::start_on(config, upstream, proxy).await
    }

    /// Starts an already loaded config (e.g. from a file, so it can reload).
    pub async fn start_config(config: Config, upstream: SocketAddr) -> TestProxy {
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(config, upstream, proxy).await
    }

    async fn start_on(config: Config, upstream: SocketAddr, proxy: TcpListener) -> TestProxy {
        let control = match &config.sessions {
            // Port 0 on the configured address: loopback, or wider for the
            // tests of the control secret.
            Some(s) => Some(TcpListener::bind((s.control.listen.ip(), 0)).await.unwrap()),
            None => None,
        };
        let decision = match &config.decision {
            Some(d) => Some(TcpListener::bind((d.listen.ip(), 0)).await.unwrap()),
            None => None,
        };
        let listeners = Listeners {
            proxy,
            admin: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            control,
            decision,
        };
        let addr = listeners.proxy.local_addr().unwrap();
        let admin = listeners.admin.local_addr().unwrap();
        let control = listeners.control.as_ref().map(|c| c.local_addr().unwrap());
        let decision = listeners.decision.as_ref().map(|c| c.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(tokengate::run(config, listeners, async {
            let _ = rx.await;
        }));
        TestProxy {
            addr,
            admin,
            control,
            decision,
            upstream,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Triggers shutdown and waits for the drain to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), h)
                .await
                .expect("proxy stops within 10s")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn load(yaml: &str, upstream: SocketAddr) -> Config {
    let yaml = yaml.replace("{upstream}", &upstream.to_string());
    let dir = fixtures();
    Config::from_yaml_str(&yaml, FileBase::Dir(&dir), "test config").unwrap_or_else(|e| panic!("{e}"))
}

/// A response, read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    pub version: http::Version,
}

impl Reply {
    /// The echo app's JSON description of what it received.
    pub fn echo(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not an echo body: {}", self.body))
    }

    /// A header the upstream received, per the echo app.
    pub fn upstream_header(&self, name: &str) -> Option<String> {
        self.echo()["headers"][name].as_str().map(str::to_owned)
    }

    pub fn www_authenticate(&self) -> String {
        self.headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

pub fn http1() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub fn h2c() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).http2_only(true).build_http()
}

pub async fn send(client: &Client<HttpConnector, Full<Bytes>>, req: Request<Full<Bytes>>) -> Reply {
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .expect("response within 10s")
        .expect("request succeeds");
    let status = resp.status();
    let version = resp.version();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        version,
    }
}

/// GET `url` with `headers` over HTTP/1.1.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut b = Request::get(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(&http1(), b.body(Full::new(Bytes::new())).unwrap()).await
}

/// GET with `Authorization: Bearer token`.
pub async fn get_with_token(url: &str, token: &str) -> Reply {
    get(url, &[("authorization", &format!("Bearer {token}"))]).await
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("keys").join(name)).unwrap()
}

/// The signing key for a fixture algorithm.
pub fn signing_key(alg: Algorithm) -> EncodingKey {
    let secret = |n: &str| {
        let s = read_fixture(n);
        EncodingKey::from_secret(s.trim_ascii_end())
    };
    match alg {
        Algorithm::HS256 => secret("hs32.secret"),
        Algorithm::HS384 => secret("hs48.secret"),
        Algorithm::HS512 => secret("hs64.secret"),
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => EncodingKey::from_rsa_pem(&read_fixture("rsa.key.pem")).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&read_fixture("ec256.key.pem")).unwrap(),
        Algorithm::ES384 => EncodingKey::from_ec_pem(&read_fixture("ec384.key.pem")).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&read_fixture("ed25519.key.pem")).unwrap(),
        other => panic!("no fixture for {other:?}"),
    }
}

/// Claims valid for the base config's first issuer.
pub fn claims(sub: &str) -> Value {
    json!({
        "iss": "https://issuer.test/",
        "aud": "app",
        "sub": sub,
        "iat": now(),
        "exp": now() + 300,
        "jti": format!("jti-{sub}-{}", now()),
    })
}

/// Signs `claims` with the fixture key of `alg`, kid = the algorithm name.
pub fn sign(alg: Algorithm, claims: &Value) -> String {
    sign_with(alg, Some(&format!("{alg:?}")), claims, &signing_key(alg))
}

pub fn sign_with(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    tokengate::install_crypto_providers();
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A token with a hand-written header (for `none` and other forgeries).
pub fn raw_token(header: &Value, claims: &Value, signature: &str) -> String {
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{}", b64(header), b64(claims), signature)
}

/// Reads a metric value from the admin endpoint; a missing series fails the
/// test (a renamed or unregistered metric must not read as zero).
pub async fn metric(admin: SocketAddr, series: &str) -> f64 {
    let text = get(&format!("http://{admin}/metrics"), &[]).await.body;
    parse_metric(&text, series)
}

/// A metric value, or `None` while the series does not exist yet (for
/// polling a series that appears with its first event).
pub async fn metric_opt(admin: SocketAddr, series: &str) -> Option<f64> {
    let text = get(&format!("http://{admin}/metrics"), &[]).await.body;
    parse_metric_opt(&text, series)
}

/// The value of `series` in an exposition; panics when it is missing.
pub fn parse_metric(text: &str, series: &str) -> f64 {
    parse_metric_opt(text, series).unwrap_or_else(|| panic!("series `{series}` is missing from /metrics"))
}

/// The value of `series` in an exposition, if present.
pub fn parse_metric_opt(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
}

/// Counts of `tokengate_requests_total` by reason.
pub async fn reasons(admin: SocketAddr) -> HashMap<String, f64> {
    let text = get(&format!("http://{admin}/metrics"), &[]).await.body;
    text.lines()
        .filter(|l| l.starts_with("tokengate_requests_total{"))
        .filter_map(|l| {
            let reason = l.split("reason=\"").nth(1)?.split('"').next()?.to_owned();
            let value = l.rsplit(' ').next()?.parse().ok()?;
            Some((reason, value))
        })
        .collect()
}

/// How long a test waits for something that must happen: generous, since
/// a 2-core machine running the whole suite can be slow, and a wait on a
/// condition costs nothing when the condition comes quickly.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Tests that load the machine heavily (hundreds of thousands of Redis
/// entries, long bursts) take this lock, so two of them never starve each
/// other inside one test binary.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

/// Polls `f` every 10 ms until it is true; returns how long that took.
pub async fn wait_until<F, Fut>(limit: Duration, mut f: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if f().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}
