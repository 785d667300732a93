//! Benchmark (not a test): revocation propagation latency.
//!
//! Starts N tokengate instances in this process, all subscribed to the Redis
//! at `REDIS_URL` (default redis://127.0.0.1:6379; use a scratch server), then
//! for each of M revocations measures the time from the Lua script returning
//! to the moment every instance's mirror refuses the token, and checks with a
//! real HTTP request that one instance answers 401. Prints p50/p99/max.
//!
//!     cargo run --release --example revocation_propagation -- 10 1000

use std::time::{Duration, Instant};

use tokengate::config::FileBase;
use tokengate::revocation::{Keys, Revocation, Revocations, protocol};
use tokengate::{App, Config, Listeners};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let proxies: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let revocations: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    tokengate::install_crypto_providers();

    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let yaml = format!(
        "{}\nrevocation:\n  backend: redis\n  redis: {{ url: \"{url}\", prefix: bench }}\n",
        tokengate::config::EMBEDDED_DEV_CONFIG
            .split("\nrevocation:")
            .next()
            .unwrap_or_default()
            .replace("127.0.0.1:8080", "127.0.0.1:0")
            .replace("127.0.0.1:9090", "127.0.0.1:0")
    );
    let load = || Config::from_yaml_str(&yaml, FileBase::Dir(&dir), "bench").expect("bench config");
    let mut mirrors: Vec<Revocations> = Vec::new();
    let mut first_addr = None;
    for _ in 0..proxies {
        let app = App::new(load()).expect("app");
        mirrors.push(app.revocations());
        let listeners = Listeners {
            proxy: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            admin: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            control: None,
            decision: None,
        };
        first_addr.get_or_insert(listeners.proxy.local_addr().unwrap());
        let readiness = app.readiness();
        tokio::spawn(app.run(listeners, std::future::pending()));
        while !readiness.is_ready() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let verifier = tokengate::auth::Verifier::new(&load().auth.issuers, 0);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys = Keys::new("bench");
    let secret = std::fs::read(dir.join(tokengate::config::EMBEDDED_DEV_SECRET_NAME)).expect("dev secret");
    let now = tokengate::clock::unix_now();
    let run = format!("{}-{}", std::process::id(), now);

    let mut samples = Vec::with_capacity(revocations);
    let mut http_checked = 0;
    for i in 0..revocations {
        let jti = format!("prop-{run}-{i}");
        let token = dev_token(&secret, &jti, now);
        let verifier_claims = verifier.verify(&token, now).unwrap();
        protocol::revoke(
            &mut conn,
            &keys,
            &Revocation::Jti {
                id: jti,
                exp: now + 600,
            },
        )
        .await
        .unwrap();
        let returned = Instant::now();
        loop {
            let ms = tokengate::clock::unix_ms();
            if mirrors
                .iter()
                .all(|m| m.check(verifier_claims.token_ref(), ms).is_err())
            {
                break;
            }
            tokio::task::yield_now().await;
            assert!(
                returned.elapsed() < Duration::from_secs(5),
                "revocation {i} did not propagate"
            );
        }
        samples.push(returned.elapsed());
        if i % 100 == 0 {
            let addr = first_addr.unwrap();
            let status = http_status(addr, &token).await;
            assert_eq!(status, 401, "the proxy refuses the revoked token");
            http_checked += 1;
        }
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "proxies={proxies} revocations={revocations} p50={:?} p99={:?} max={:?} (http 401 confirmed {http_checked} times)",
        pct(0.50),
        pct(0.99),
        samples[samples.len() - 1]
    );
    std::process::exit(0);
}

async fn http_status(addr: std::net::SocketAddr, token: &str) -> u16 {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/x")
        .header("host", "bench")
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    sender.send_request(req).await.unwrap().status().as_u16()
}

/// A token the embedded development issuer accepts, revocable by `jti`.
fn dev_token(secret: &[u8], jti: &str, now: i64) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("dev".into());
    let claims = serde_json::json!({
        "iss": "tokengate-dev", "aud": "dev-app", "sub": "bench",
        "iat": now, "exp": now + 600, "jti": jti,
    });
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(secret)).unwrap()
}
