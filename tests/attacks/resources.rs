//! Resource abuse: connections that say nothing, or only part of the HTTP/2
//! preface, must not hold the connection cap until `idle_timeout`; HTTP/2
//! streams must not multiply connections to the app past its cap.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::*;

#[tokio::test]
async fn silent_and_half_preface_connections_do_not_starve_real_clients() {
    let yaml = base_config().replace(
        "shutdown:",
        "limits: { max_connections: 10, header_read_timeout: 500ms, idle_timeout: 120s }\nshutdown:",
    );
    let proxy = TestProxy::start_with(&yaml, start_echo().await).await;
    let mut hogs = Vec::new();
    for i in 0..30 {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        match i % 3 {
            0 => {}
            1 => s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap(),
            _ => s.write_all(b"GET /public/x HTTP/1.1\r\nHost:").await.unwrap(),
        }
        hogs.push(s);
    }
    let started = Instant::now();
    let url = proxy.url("/public/x");
    let reply = tokio::time::timeout(Duration::from_secs(30), get(&url, &[]))
        .await
        .expect("served long before idle_timeout");
    assert_eq!(reply.status, 200);
    // 30 hogs through 10 slots, each closed at header_read_timeout: about
    // 1.5 s; idle_timeout (the old bound) would be 120 s.
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    drop(hogs);
}

#[tokio::test]
async fn http2_streams_cannot_multiply_app_connections_past_the_cap() {
    let app = RawApp::start(Behaviour::Delay(100)).await;
    let yaml = base_config().replace("request_timeout: 1s", "request_timeout: 30s\n  max_connections: 4");
    let proxy = TestProxy::start_with(&yaml, app.addr).await;
    let client = h2c();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let client = client.clone();
            let url = proxy.url(&format!("/public/fan{i}"));
            tokio::spawn(async move {
                let req = http::Request::get(url)
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap();
                send(&client, req).await.status
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200, "every stream is served, in turn");
    }
    assert_eq!(app.received().len(), 40);
    assert!(
        app.connections() <= 4,
        "{} connections to the app for one client's 40 streams",
        app.connections()
    );
}
