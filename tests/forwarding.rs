//! Forwarding through the real proxy: header hygiene, path normalisation,
//! upstream failures, HTTP/2 (h2c and TLS), protocol upgrades, streaming,
//! draining and idle connections.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use jsonwebtoken::Algorithm;
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn user_token() -> String {
    let mut c = claims("alice");
    c["email"] = json!("alice@example.com");
    sign(Algorithm::ES256, &c)
}

fn admin_token() -> String {
    let mut c = claims("root");
    c["scope"] = json!("admin");
    sign(Algorithm::ES256, &c)
}

#[tokio::test]
async fn identity_headers_cannot_be_spoofed() {
    let proxy = TestProxy::start().await;
    let spoof = [
        ("x-auth-subject", "root"),
        ("X-Auth-Email", "root@evil"),
        ("x-auth-role", "admin"),
    ];

    // Public route: no identity at all reaches the app.
    let reply = get(&proxy.url("/public/info"), &spoof).await;
    assert_eq!(reply.status, 200);
    for h in ["x-auth-subject", "x-auth-email", "x-auth-role"] {
        assert_eq!(reply.upstream_header(h), None, "{h} leaked on a public route");
    }

    // Protected route: only the token's identity reaches the app.
    let auth = format!("Bearer {}", user_token());
    let mut headers = spoof.to_vec();
    headers.push(("authorization", &auth));
    let reply = get(&proxy.url("/hello"), &headers).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.upstream_header("x-auth-subject").as_deref(), Some("alice"));
    assert_eq!(
        reply.upstream_header("x-auth-email").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        reply.upstream_header("x-auth-role"),
        None,
        "the token has no role claim"
    );
}

#[tokio::test]
async fn path_tricks_never_skip_a_requirement() {
    let proxy = TestProxy::start().await;
    let tricks = [
        "/public/../admin/x",
        "//admin/x",
        "/%61dmin/x",
        "/admin/./x",
        "/public/%2e%2e/admin/x",
        "/public/%2E%2E/admin/x",
    ];
    for trick in tricks {
        let anonymous = get(&proxy.url(trick), &[]).await;
        assert_eq!(anonymous.status, 401, "{trick} without a token");
        let user = get_with_token(&proxy.url(trick), &user_token()).await;
        assert_eq!(user.status, 403, "{trick} without the admin scope");
        let admin = get_with_token(&proxy.url(trick), &admin_token()).await;
        assert_eq!(admin.status, 200, "{trick} with the admin scope");
        // The app receives exactly the path that was judged.
        assert_eq!(admin.echo()["path"], "/admin/x", "{trick}");
    }
    for refused in [
        "/public/..;/admin/x",
        "/public/%2e%2e;/admin/x",
        "/admin%2fx",
        "/public/%5c../admin/x",
    ] {
        let reply = get_with_token(&proxy.url(refused), &admin_token()).await;
        assert_eq!(reply.status, 400, "{refused}");
    }
    // Query strings are untouched by normalisation.
    let reply = get(&proxy.url("/public/./a?x=%2e%2e&y=1"), &[]).await;
    assert_eq!(reply.echo()["path"], "/public/a");
    assert_eq!(reply.echo()["query"], "x=%2e%2e&y=1");
    assert_eq!(reasons(proxy.admin).await["bad_path"], 4.0);
}

#[tokio::test]
async fn hop_by_hop_dropped_and_forwarded_headers_set() {
    let proxy = TestProxy::start().await;
    let reply = get(
        &proxy.url("/public/h"),
        &[
            ("connection", "keep-alive, x-hop-secret"),
            ("x-hop-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic eDp5"),
            ("te", "trailers"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-end-to-end", "kept"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    for h in ["x-hop-secret", "keep-alive", "proxy-authorization", "te"] {
        assert_eq!(reply.upstream_header(h), None, "{h} was forwarded");
    }
    assert_eq!(reply.upstream_header("x-end-to-end").as_deref(), Some("kept"));
    assert_eq!(
        reply.upstream_header("x-forwarded-for").as_deref(),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(reply.upstream_header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(reply.upstream_header("x-forwarded-host"), Some(proxy.addr.to_string()));
    assert_eq!(reply.upstream_header("host"), Some(proxy.addr.to_string()));
}

#[tokio::test]
async fn refused_upstream_is_502() {
    let proxy = TestProxy::start_with(&base_config(), closed_port().await).await;
    let reply = get(&proxy.url("/public/x"), &[]).await;
    assert_eq!(reply.status, 502);
    assert!(reply.body.contains("bad_gateway"));
    assert_eq!(
        metric(proxy.admin, r#"tokengate_upstream_errors_total{kind="connect"}"#).await,
        1.0
    );
    assert_eq!(reasons(proxy.admin).await["upstream_connect"], 1.0);
}

#[tokio::test]
async fn slow_upstream_is_504() {
    let proxy = TestProxy::start().await;
    let started = Instant::now();
    let reply = get(&proxy.url("/public/slow"), &[("x-echo-delay-ms", "8000")]).await;
    assert_eq!(reply.status, 504);
    assert!(started.elapsed() < Duration::from_secs(6), "request_timeout is 1s");
    assert_eq!(
        metric(proxy.admin, r#"tokengate_upstream_errors_total{kind="timeout"}"#).await,
        1.0
    );
}

#[tokio::test]
async fn upstream_reset_is_502() {
    // An upstream that accepts, reads the request, and closes without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            drop(s);
        }
    });
    let proxy = TestProxy::start_with(&base_config(), upstream).await;
    let reply = get(&proxy.url("/public/x"), &[]).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reasons(proxy.admin).await["upstream_reset"], 1.0);
}

#[tokio::test]
async fn upstream_connect_timeout_is_502() {
    // A listener with a full accept queue: the kernel drops further SYNs, so
    // connecting hangs until the proxy's 300ms connect_timeout.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let upstream = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(upstream)).await {
            fillers.push(s);
        }
    }
    // request_timeout 10 s, connect_timeout 300 ms: the bound below tells
    // them apart with room for a loaded machine.
    let yaml = base_config().replace("request_timeout: 1s", "request_timeout: 10s");
    let proxy = TestProxy::start_with(&yaml, upstream).await;
    let started = Instant::now();
    let reply = get(&proxy.url("/public/x"), &[]).await;
    assert_eq!(reply.status, 502, "{reply:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "connect timeout, not request timeout"
    );
    assert_eq!(reasons(proxy.admin).await["upstream_connect"], 1.0);
    drop(listener);
}

#[tokio::test]
async fn h2c_prior_knowledge() {
    let proxy = TestProxy::start().await;
    let req = Request::get(proxy.url("/hello"))
        .header("authorization", format!("Bearer {}", user_token()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let reply = send(&h2c(), req).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.version, http::Version::HTTP_2);
    assert_eq!(reply.echo()["version"], "HTTP/1.1", "the app gets HTTP/1.1");
    assert_eq!(
        reply.upstream_header("host"),
        Some(proxy.addr.to_string()),
        ":authority becomes Host"
    );
    let req = Request::get(proxy.url("/hello")).body(Full::new(Bytes::new())).unwrap();
    assert_eq!(send(&h2c(), req).await.status, 401);
}

#[tokio::test]
async fn tls_with_h2_and_http11() {
    let yaml = base_config().replace(
        "upstream:",
        "tls:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\nupstream:",
    );
    let upstream = start_echo().await;
    let proxy = TestProxy::start_with(&yaml, upstream).await;

    for (alpn, version) in [
        (&b"h2"[..], http::Version::HTTP_2),
        (&b"http/1.1"[..], http::Version::HTTP_11),
    ] {
        let stream = tls_connect(proxy.addr, alpn).await;
        let io = hyper_util::rt::TokioIo::new(stream);
        let req = Request::get(format!("https://localhost:{}/hello", proxy.addr.port()))
            .header("authorization", format!("Bearer {}", user_token()))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = if version == http::Version::HTTP_2 {
            let (mut sender, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            sender.send_request(req).await.unwrap()
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            let (mut parts, body) = req.into_parts();
            parts.uri = "/hello".parse().unwrap();
            parts
                .headers
                .insert("host", format!("localhost:{}", proxy.addr.port()).parse().unwrap());
            sender.send_request(Request::from_parts(parts, body)).await.unwrap()
        };
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), version);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(echo["headers"]["x-forwarded-proto"], "https");
        assert_eq!(echo["headers"]["x-auth-subject"], "alice");
    }
}

async fn tls_connect(addr: std::net::SocketAddr, alpn: &[u8]) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    tokengate::install_crypto_providers();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fixtures().join("tls/ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn));
    stream
}

async fn raw_upgrade(proxy: &TestProxy, auth: Option<&str>) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let auth_line = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: test\r\n{auth_line}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "connection closed before the response head ended");
        head.push(byte[0]);
    }
    (s, String::from_utf8(head).unwrap())
}

#[tokio::test]
async fn websocket_upgrade_passes_after_authorization() {
    let proxy = TestProxy::start().await;
    let (_, head) = raw_upgrade(&proxy, None).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");

    let token = user_token();
    let (mut s, head) = raw_upgrade(&proxy, Some(&token)).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: websocket"), "{head}");
    for msg in [&b"hello through the tunnel"[..], b"second frame"] {
        s.write_all(msg).await.unwrap();
        let mut buf = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(buf, msg);
    }
}

#[tokio::test]
async fn request_bodies_stream_to_the_app() {
    let proxy = TestProxy::start().await;
    let body = vec![b'x'; 8 * 1024 * 1024];
    let req = Request::post(proxy.url("/hello"))
        .header("authorization", format!("Bearer {}", user_token()))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let reply = send(&http1(), req).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.echo()["body_bytes"], 8 * 1024 * 1024);
}

#[tokio::test]
async fn drain_lets_in_flight_requests_finish() {
    // A request slow enough to be in flight through the whole drain check.
    let yaml = base_config().replace("request_timeout: 1s", "request_timeout: 20s");
    let proxy = TestProxy::start_with(&yaml, start_echo().await).await;
    let url = proxy.url("/public/slow");
    let in_flight = tokio::spawn(async move { get(&url, &[("x-echo-delay-ms", "3000")]).await });
    let admin = proxy.admin;
    assert!(
        wait_until(DEADLINE, || async {
            metric(admin, "tokengate_connections_open").await == 1.0
        })
        .await
        .is_some(),
        "the request is in flight"
    );
    let addr = proxy.addr;
    let stopping = tokio::spawn(proxy.stop());
    // Draining: readiness reports it, and the port no longer accepts.
    let draining = wait_until(DEADLINE, || async {
        get(&format!("http://{admin}/readyz"), &[]).await.status == 503
    })
    .await;
    assert!(draining.is_some());
    let closed = wait_until(DEADLINE, || async { TcpStream::connect(addr).await.is_err() }).await;
    assert!(closed.is_some(), "the proxy port closed");
    assert!(!in_flight.is_finished(), "still in flight while draining");
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200, "in-flight request completed");
    stopping.await.unwrap();
}

#[tokio::test]
async fn silent_connections_are_closed() {
    let yaml = base_config().replace(
        "shutdown:",
        "limits: { header_read_timeout: 300ms, idle_timeout: 500ms }\nshutdown:",
    );
    let proxy = TestProxy::start_with(&yaml, start_echo().await).await;
    let started = Instant::now();
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let mut buf = [0u8; 256];
    // hyper may answer 408 before closing; either way the connection ends.
    loop {
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
            .await
            .expect("the proxy closes a silent connection")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
    }
    assert!(started.elapsed() < Duration::from_secs(2));

    // An idle HTTP/2 connection is closed too (GOAWAY, then EOF).
    let client = h2c();
    let req = Request::get(proxy.url("/public/a"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send(&client, req).await.status, 200);
    assert_eq!(metric(proxy.admin, "tokengate_connections_open").await, 1.0);
    let closed = wait_until(DEADLINE, || async {
        metric(proxy.admin, "tokengate_connections_open").await == 0.0
    })
    .await;
    assert!(closed.is_some(), "the idle HTTP/2 connection is closed");
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let proxy = TestProxy::start().await;
    let big = "v".repeat(40 * 1024);
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    let req = format!("GET /public/x HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n");
    let _ = s.write_all(req.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 431") || text.is_empty(), "{text}");
}

/// An app that answers 200 and counts the connections it accepted.
async fn counting_upstream() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn upstream_connections_are_reused() {
    let (upstream, accepted) = counting_upstream().await;
    let proxy = TestProxy::start_with(&base_config(), upstream).await;
    for _ in 0..20 {
        assert_eq!(get(&proxy.url("/healthz"), &[]).await.status, 200);
    }
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "sequential requests share one connection"
    );
    // Concurrent requests open at most one connection each, and those are kept.
    let burst = || {
        let url = proxy.url("/healthz");
        async move {
            let tasks: Vec<_> = (0..10)
                .map(|_| {
                    let url = url.clone();
                    tokio::spawn(async move { get(&url, &[]).await.status.as_u16() })
                })
                .collect();
            for t in tasks {
                assert_eq!(t.await.unwrap(), 200);
            }
        }
    };
    burst().await;
    let after_first = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=11).contains(&after_first), "{after_first}");
    burst().await;
    burst().await;
    let after_three = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        after_three <= after_first + 10,
        "idle connections are reused: {after_first} then {after_three}"
    );
}

#[tokio::test]
async fn every_request_carries_one_request_id_to_the_app_and_back() {
    let proxy = TestProxy::start().await;
    let reply = get(&proxy.url("/public/x"), &[]).await;
    let sent = reply.upstream_header("x-request-id").expect("the app got an id");
    assert_eq!(sent.len(), 32);
    assert_eq!(
        reply.headers["x-request-id"],
        sent.as_str(),
        "the client gets the same id"
    );
    // A client's plain id is kept; a token-shaped one never reaches the app.
    let reply = get(&proxy.url("/public/x"), &[("x-request-id", "trace-7f3a")]).await;
    assert_eq!(reply.upstream_header("x-request-id").as_deref(), Some("trace-7f3a"));
    let token = user_token();
    let reply = get(&proxy.url("/public/x"), &[("x-request-id", &token)]).await;
    let got = reply.upstream_header("x-request-id").unwrap();
    assert_ne!(got, token);
    assert_eq!(got.len(), 32);
    // Rejections carry one too.
    let reply = get(&proxy.url("/x"), &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.headers["x-request-id"].len(), 32);
}
