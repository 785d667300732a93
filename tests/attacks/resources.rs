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

/// A body announced and never sent, to the endpoints tokengate answers
/// itself (session refresh, back-channel logout): once the head is complete
/// no connection timeout applies, so each is given up after
/// `body::BODY_TIMEOUT` with 408, and its slot is free again.
#[tokio::test]
async fn a_body_announced_and_never_sent_to_our_own_endpoints_is_given_up() {
    let yaml = base_config()
        .replace(
            "shutdown:",
            "limits: { max_connections: 4, header_read_timeout: 500ms }\nshutdown:",
        )
        .replace(
            "    - issuer: \"other-issuer\"\n",
            "    - issuer: \"other-issuer\"\n      backchannel_logout: { audiences: [rp] }\n",
        )
        + "sessions:\n  signing_key: { private_key_file: keys/ec256.key.pem }\n  control: { listen: \"127.0.0.1:0\" }\n";
    let proxy = TestProxy::start_with(&yaml, start_echo().await).await;
    let started = Instant::now();
    let mut hogs = Vec::new();
    for path in ["/.tokengate/refresh", "/.tokengate/backchannel-logout"].repeat(2) {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 16000\r\n\r\nlogout_token="
        );
        s.write_all(head.as_bytes()).await.unwrap();
        hogs.push(tokio::spawn(async move {
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(
                Duration::from_secs(60),
                tokio::io::AsyncReadExt::read_to_end(&mut s, &mut answer),
            )
            .await;
            String::from_utf8_lossy(&answer).into_owned()
        }));
    }
    for hog in hogs {
        let answer = hog.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    let reply = tokio::time::timeout(Duration::from_secs(10), get(&proxy.url("/public/x"), &[]))
        .await
        .expect("the slots are free again");
    assert_eq!(reply.status, 200);
}
