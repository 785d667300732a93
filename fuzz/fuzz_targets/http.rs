//! The HTTP layer end to end: request bytes in, what the app received out.
//! One proxy (the real one, on loopback) runs in front of a raw app that
//! records every request it reads; each input is written to a fresh
//! connection (with `TOKEN` replaced by a valid token for `alice`, who has
//! no scope), and every request the app received meanwhile must satisfy the
//! invariant: the policy judged exactly that request, and no identity or
//! framing header reached the app that the proxy did not set.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokengate::config::{Access, FileBase};
use tokengate::route::RoutePolicy;
use tokengate::{Config, Listeners};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const CONFIG: &str = r#"
listen: "127.0.0.1:0"
admin: { listen: "127.0.0.1:0" }
upstream: { url: "http://{upstream}", request_timeout: 2s }
limits: { header_read_timeout: 1s }
auth:
  sources:
    - header: authorization
    - cookie: access_token
    - query: access_token
  issuers:
    - issuer: "https://issuer.test/"
      audiences: ["app"]
      keys:
        - { kid: HS256, algorithm: HS256, secret_file: keys/hs32.secret }
  identity_headers:
    subject: X-Auth-Subject
    claims: { email: X-Auth-Email }
routes:
  - prefix: /public/
    public: true
  - prefix: /admin/
    require: { scopes: [admin] }
  - prefix: /
"#;

/// One request as the app read it.
#[derive(Debug, Clone)]
struct Received {
    line: String,
    headers: Vec<(String, String)>,
}

struct Harness {
    rt: Runtime,
    proxy: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
    token: Vec<u8>,
    policy: RoutePolicy,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        // libFuzzer's main, unlike Rust's, leaves SIGPIPE fatal: a write to a
        // connection the proxy already closed must be an error, not a kill.
        // SAFETY: setting a signal disposition to SIG_IGN at start-up, before
        // any other thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        tokengate::install_crypto_providers();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let log = Arc::new(Mutex::new(Vec::new()));
        let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures"));
        let (proxy, policy) = rt.block_on(async {
            let app = TcpListener::bind("127.0.0.1:0").await.expect("app port");
            let upstream = app.local_addr().expect("app addr");
            tokio::spawn(app_loop(app, log.clone()));
            let yaml = CONFIG.replace("{upstream}", &upstream.to_string());
            let config = Config::from_yaml_str(&yaml, FileBase::Dir(&dir), "fuzz").expect("fuzz config loads");
            let policy = RoutePolicy::new(config.routes.clone());
            let listeners = Listeners {
                proxy: TcpListener::bind("127.0.0.1:0").await.expect("proxy port"),
                admin: TcpListener::bind("127.0.0.1:0").await.expect("admin port"),
                control: None,
            };
            let proxy = listeners.proxy.local_addr().expect("proxy addr");
            tokio::spawn(tokengate::run(config, listeners, std::future::pending()));
            (proxy, policy)
        });
        let secret = std::fs::read(dir.join("keys/hs32.secret")).expect("secret");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("HS256".into());
        let claims = serde_json::json!({
            "iss": "https://issuer.test/", "aud": "app", "sub": "alice",
            "email": "alice@example.com", "exp": 4_000_000_000u64,
        });
        let token = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(secret.trim_ascii_end()))
            .expect("token");
        Harness {
            rt,
            proxy,
            log,
            token: token.into_bytes(),
            policy,
        }
    })
}

/// The raw app: reads requests (Content-Length or chunked framing), records
/// them, answers 200.
async fn app_loop(listener: TcpListener, log: Arc<Mutex<Vec<Received>>>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let log = log.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(req) = read_request(&mut stream, &mut buf).await {
                log.lock().unwrap_or_else(|e| e.into_inner()).push(req);
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await.ok()?;
    (n > 0).then(|| buf.extend_from_slice(&chunk[..n]))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Received> {
    let end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(stream, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    if chunked {
        loop {
            let i = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                fill(stream, buf).await?;
            };
            let size = usize::from_str_radix(String::from_utf8_lossy(&buf[..i]).split(';').next()?.trim(), 16).ok()?;
            buf.drain(..i + 2);
            if size == 0 {
                loop {
                    match find(buf, b"\r\n") {
                        Some(0) => {
                            buf.drain(..2);
                            break;
                        }
                        Some(i) => {
                            buf.drain(..i + 2);
                        }
                        None => fill(stream, buf).await?,
                    }
                }
                break;
            }
            while buf.len() < size + 2 {
                fill(stream, buf).await?;
            }
            buf.drain(..size + 2);
        }
    } else if let Some(n) = length {
        while buf.len() < n {
            fill(stream, buf).await?;
        }
        buf.drain(..n);
    }
    Some(Received { line, headers })
}

/// The invariant for one request the app received.
fn check(h: &Harness, r: &Received) {
    let mut parts = r.line.split(' ');
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    assert!(!method.bytes().any(|b| b.is_ascii_lowercase()), "non-canonical method: {r:?}");
    assert!(target.starts_with('/'), "not origin-form: {r:?}");
    let path = target.split('?').next().unwrap_or("");
    assert!(
        tokengate::path::normalise(path).is_ok_and(|n| n == path),
        "path not in normal form: {r:?}"
    );
    assert!(!tokengate::path::has_parameters(path), "path parameters: {r:?}");
    for (name, _) in &r.headers {
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "header name beyond letters, digits and '-': {r:?}"
        );
    }
    let count = |n: &str| r.headers.iter().filter(|(h, _)| h == n).count();
    assert_eq!(count("host"), 1, "Host count: {r:?}");
    assert!(!(count("transfer-encoding") > 0 && count("content-length") > 0), "CL and TE: {r:?}");
    assert_eq!(count("http2-settings"), 0, "h2c settings: {r:?}");
    assert_eq!(count("x-http-method-override") + count("x-original-url") + count("forwarded"), 0, "untrusted: {r:?}");
    for (n, v) in &r.headers {
        if n == "upgrade" {
            assert!(v.eq_ignore_ascii_case("websocket"), "upgrade {v}: {r:?}");
        }
    }
    let subjects: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n == "x-auth-subject")
        .map(|(_, v)| v.as_str())
        .collect();
    assert!(subjects.is_empty() || subjects == ["alice"], "identity: {r:?}");
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
        panic!("method: {r:?}");
    };
    match h.policy.access(&method, path) {
        Access::Public => assert!(subjects.is_empty(), "identity on a public route: {r:?}"),
        Access::Token(req) => {
            assert!(req.scopes.is_empty(), "alice has no scope, yet reached {path}: {r:?}");
            assert_eq!(subjects, ["alice"], "protected route without identity: {r:?}");
        }
    }
    // A case-insensitive app must not route it under another rule either.
    if let Access::Token(req) = h.policy.access(&method, &path.to_ascii_lowercase()) {
        assert!(req.scopes.is_empty(), "case-folded {path} needs a scope: {r:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let mut input = Vec::with_capacity(data.len() + 256);
    let mut rest = data;
    while let Some(i) = find(rest, b"TOKEN") {
        input.extend_from_slice(&rest[..i]);
        input.extend_from_slice(&h.token);
        rest = &rest[i + 5..];
    }
    input.extend_from_slice(rest);
    // Not a half-close (hyper drops a request whose client shut its write
    // side): a last request that closes the connection once answered.
    input.extend_from_slice(b"GET /public/end HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let before = h.log.lock().unwrap_or_else(|e| e.into_inner()).len();
    h.rt.block_on(async {
        let Ok(mut s) = TcpStream::connect(h.proxy).await else { return };
        let _ = s.write_all(&input).await;
        let mut sink = [0u8; 8192];
        let _ = tokio::time::timeout(Duration::from_millis(50), async {
            while let Ok(n) = s.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    });
    let got: Vec<Received> = h.log.lock().unwrap_or_else(|e| e.into_inner())[before..].to_vec();
    for r in &got {
        check(h, r);
    }
});
