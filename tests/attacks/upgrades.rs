//! Upgrade abuse: a protocol switch turns the connection into a tunnel the
//! policy never sees again. Only the protocols a route allows (WebSocket by
//! default, never `h2c`) are forwarded, only after the full decision, and
//! only an app's 101 naming that same protocol opens a tunnel. Tunnels count
//! against the connection cap and are drained like connections.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::support::raw::{exchange, statuses};

fn h2c_upgrade(target: &str, auth: Option<&str>) -> Vec<u8> {
    let mut headers = vec![
        "Connection: Upgrade, HTTP2-Settings".to_owned(),
        "Upgrade: h2c".to_owned(),
        "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA".to_owned(),
    ];
    if let Some(t) = auth {
        headers.push(bearer(t));
    }
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: app.test\r\n");
    for h in headers {
        req.push_str(&h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// The upgrade request of RFC 6455 §4.1 for `target`.
fn websocket(target: &str, protocols: &str, auth: Option<&str>) -> Vec<u8> {
    let auth = auth.map(|t| format!("{}\r\n", bearer(t))).unwrap_or_default();
    format!(
        "GET {target} HTTP/1.1\r\nHost: app.test\r\n{auth}Connection: Upgrade\r\nUpgrade: {protocols}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn h2c_is_never_forwarded_and_an_unasked_101_is_refused() {
    // A confused (or h2c-capable) app that switches whenever it can.
    let (proxy, app) = raw_proxy(Behaviour::Switch("h2c"), "").await;
    for (target, token) in [("/public/x", None), ("/x", Some(user_token()))] {
        let answer = exchange(proxy.addr, &h2c_upgrade(target, token.as_deref())).await;
        assert_eq!(statuses(&answer), [502], "{target}: {answer}");
        assert!(!answer.contains("101"), "{answer}");
    }
    let got = app.received();
    assert_eq!(got.len(), 2);
    for r in got {
        assert!(r.all("upgrade").is_empty(), "{:?}", r.headers);
        assert!(r.all("http2-settings").is_empty(), "{:?}", r.headers);
    }
    let reasons = reasons(proxy.admin).await;
    assert_eq!(reasons["upstream_protocol"], 2.0);
}

#[tokio::test]
async fn only_the_protocols_a_route_allows_are_forwarded() {
    let yaml = base_config().replace(
        "routes:\n",
        "routes:\n  - prefix: /nows/\n    public: true\n    upgrades: []\n  - prefix: /irc/\n    public: true\n    upgrades: [irc]\n",
    );
    let app = RawApp::start(Behaviour::Ok).await;
    let proxy = TestProxy::start_with(&yaml, app.addr).await;
    for (target, protocols) in [
        ("/nows/x", "websocket"),
        ("/public/x", "h2c"),
        ("/public/x", "websocket, h2c"),
        ("/public/x", "WebSocket/../h2c"),
        ("/irc/x", "websocket"),
    ] {
        let answer = exchange(proxy.addr, &websocket(target, protocols, None)).await;
        assert_eq!(statuses(&answer), [200], "{target} {protocols}: {answer}");
        let r = app.received().pop().unwrap();
        assert!(r.all("upgrade").is_empty(), "{target} {protocols}: {:?}", r.headers);
        assert!(
            r.all("connection")
                .iter()
                .all(|c| !c.to_ascii_lowercase().contains("upgrade"))
        );
    }
    // Allowed ones keep their Upgrade header.
    let answer = exchange(proxy.addr, &websocket("/irc/x", "IRC", None)).await;
    assert_eq!(statuses(&answer), [200]);
    assert_eq!(app.received().pop().unwrap().all("upgrade"), ["IRC"]);
    let answer = exchange(proxy.addr, &websocket("/public/x", "websocket", None)).await;
    assert_eq!(statuses(&answer), [200]);
    assert_eq!(app.received().pop().unwrap().all("upgrade"), ["websocket"]);
}

#[tokio::test]
async fn the_app_must_switch_to_the_protocol_asked_for() {
    let (proxy, _app) = raw_proxy(Behaviour::Switch("h2c"), "").await;
    let answer = exchange(proxy.addr, &websocket("/public/ws", "websocket", None)).await;
    assert_eq!(statuses(&answer), [502], "{answer}");
    let (proxy, _app) = raw_proxy(Behaviour::Switch("websocket"), "").await;
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(&websocket("/public/ws", "websocket", None)).await.unwrap();
    let mut buf = vec![0u8; 12];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 101");
}

#[tokio::test]
async fn an_unauthorized_upgrade_never_reaches_the_app() {
    let (proxy, app) = raw_proxy(Behaviour::Switch("websocket"), "").await;
    let answer = exchange(proxy.addr, &websocket("/admin/ws", "websocket", None)).await;
    assert_eq!(statuses(&answer), [401]);
    let answer = exchange(proxy.addr, &websocket("/admin/ws", "websocket", Some(&user_token()))).await;
    assert_eq!(statuses(&answer), [403]);
    assert!(app.received().is_empty());
}

/// Opens a WebSocket tunnel through the proxy to the echo app and checks it echoes.
async fn tunnel(proxy: &TestProxy) -> TcpStream {
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(&websocket("/public/ws", "websocket", None)).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 1, "closed before the 101 ended");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    echo_once(&mut s).await;
    s
}

async fn echo_once(s: &mut TcpStream) {
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
        .await
        .expect("the tunnel echoes")
        .unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test]
async fn tunnels_hold_a_connection_slot_and_show_in_the_gauge() {
    let yaml = base_config().replace("shutdown:", "limits: { max_connections: 3 }\nshutdown:");
    let proxy = TestProxy::start_with(&yaml, start_echo().await).await;
    let mut tunnels = Vec::new();
    for _ in 0..3 {
        tunnels.push(tunnel(&proxy).await);
    }
    assert_eq!(metric(proxy.admin, "tokengate_connections_open").await, 3.0);
    // A fourth client waits in the accept queue while the three tunnels live.
    let url = proxy.url("/public/x");
    let fourth = tokio::spawn(async move { get(&url, &[]).await.status });
    let waited = tokio::time::timeout(Duration::from_millis(500), async {
        while !fourth.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(waited.is_err(), "the fourth connection was served beside three tunnels");
    tunnels.pop();
    assert_eq!(fourth.await.unwrap(), 200, "served once a tunnel closed");
    let closed = wait_until(Duration::from_secs(10), || async {
        metric(proxy.admin, "tokengate_connections_open").await == 2.0
    })
    .await;
    assert!(closed.is_some(), "the gauge follows the tunnels");
}

#[tokio::test]
async fn the_drain_waits_for_tunnels_then_cuts_them() {
    let yaml = base_config().replace("drain_timeout: 5s", "drain_timeout: 2s");
    let proxy = TestProxy::start_with(&yaml, start_echo().await).await;
    let mut s = tunnel(&proxy).await;
    let admin = proxy.admin;
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(proxy.stop());
    let draining = wait_until(Duration::from_secs(10), || async {
        get(&format!("http://{admin}/readyz"), &[]).await.status == 503
    })
    .await;
    assert!(draining.is_some());
    // Still echoing while the drain runs (shutdown.delay is 0 here).
    echo_once(&mut s).await;
    assert!(!stopping.is_finished(), "the drain waits for the tunnel");
    // At the drain deadline the tunnel is cut.
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("the tunnel is cut at the drain deadline")
        .unwrap_or(0);
    assert_eq!(n, 0);
    stopping.await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_idle_tunnel_is_closed() {
    let yaml = base_config().replace("shutdown:", "limits: { tunnel_idle_timeout: 1s }\nshutdown:");
    let proxy = TestProxy::start_with(&yaml, start_echo().await).await;
    let mut s = tunnel(&proxy).await;
    // Traffic every 300 ms keeps it open well past the 1 s timeout...
    for _ in 0..5 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        echo_once(&mut s).await;
    }
    // ...silence closes it.
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(DEADLINE, s.read(&mut buf))
        .await
        .expect("an idle tunnel is closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let freed = wait_until(DEADLINE, || async {
        metric(proxy.admin, "tokengate_connections_open").await == 0.0
    })
    .await;
    assert!(freed.is_some(), "its slot is free again");
}
