//! Request smuggling and desync: framing that a lenient hop reads as one
//! request and the next as two. Whatever the client sends, the app receives
//! no more requests than the client got answers for, never one for a path
//! the client could not reach, and a malformed body is the client's fault.

use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::support::raw::{exchange_for, statuses};

/// A request for `/admin/` hidden in the body of a public one.
const HIDDEN: &str = "GET /admin/secret HTTP/1.1\r\nHost: app.test\r\n\r\n";

fn smuggles() -> Vec<(&'static str, String)> {
    let head = "POST /public/x HTTP/1.1\r\nHost: app.test\r\n";
    let chunked_hidden = format!("0\r\n\r\n{HIDDEN}");
    let n = chunked_hidden.len();
    vec![
        (
            "CL.TE",
            format!("{head}Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n\r\n{chunked_hidden}"),
        ),
        (
            "TE.CL",
            format!("{head}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n{chunked_hidden}"),
        ),
        (
            "TE with a leading space",
            format!("{head}Transfer-Encoding:  chunked\r\nContent-Length: {n}\r\n\r\n{chunked_hidden}"),
        ),
        (
            "TE xchunked",
            format!("{head}Transfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\n{chunked_hidden}"),
        ),
        (
            "TE chunked, identity",
            format!("{head}Transfer-Encoding: chunked, identity\r\n\r\n{chunked_hidden}"),
        ),
        (
            "TE twice",
            format!("{head}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n{chunked_hidden}"),
        ),
        (
            "TE with a tab",
            format!("{head}Transfer-Encoding:\tchunked\r\nContent-Length: 3\r\n\r\n{chunked_hidden}"),
        ),
        (
            "TE_ underscore",
            format!("{head}Transfer_Encoding: chunked\r\nContent-Length: 3\r\n\r\n{chunked_hidden}"),
        ),
        (
            "two different CL",
            format!("{head}Content-Length: 3\r\nContent-Length: {n}\r\n\r\n{chunked_hidden}"),
        ),
        (
            "CL with a plus",
            format!("{head}Content-Length: +{n}\r\n\r\n{chunked_hidden}"),
        ),
        (
            "CL list",
            format!("{head}Content-Length: 3, {n}\r\n\r\n{chunked_hidden}"),
        ),
        (
            "chunk size 0x",
            format!("{head}Transfer-Encoding: chunked\r\n\r\n0x0\r\n\r\n{HIDDEN}"),
        ),
        (
            "chunk extension with a bare LF",
            format!("{head}Transfer-Encoding: chunked\r\n\r\n0;a\n\r\n{HIDDEN}"),
        ),
        (
            "huge chunk size",
            format!("{head}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{HIDDEN}"),
        ),
        (
            "bare LF line endings",
            format!(
                "POST /public/x HTTP/1.1\nHost: app.test\nContent-Length: 3\nTransfer-Encoding: chunked\n\n{chunked_hidden}"
            ),
        ),
        (
            "HTTP/1.0 with TE",
            format!(
                "POST /public/x HTTP/1.0\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nContent-Length: {n}\r\n\r\n{chunked_hidden}"
            ),
        ),
        (
            "GET with a body",
            format!(
                "GET /public/x HTTP/1.1\r\nHost: app.test\r\nContent-Length: {}\r\n\r\n{HIDDEN}",
                HIDDEN.len()
            ),
        ),
        (
            "pipelined after a public request",
            format!("GET /public/x HTTP/1.1\r\nHost: app.test\r\n\r\n{HIDDEN}"),
        ),
    ]
}

#[tokio::test]
async fn smuggled_requests_never_reach_the_app() {
    let (proxy, app) = raw_proxy(Behaviour::Ok, "").await;
    for (what, bytes) in smuggles() {
        let before = app.received().len();
        let answer = exchange_for(proxy.addr, bytes.as_bytes(), Duration::from_millis(500)).await;
        let answered = statuses(&answer).iter().filter(|s| **s == 200).count();
        let got = &app.received()[before..];
        assert!(
            got.iter().all(|r| !r.target().starts_with("/admin")),
            "{what}: the hidden request reached the app: {got:#?}"
        );
        assert!(
            got.len() <= answered,
            "{what}: the app read {} requests, the client got {answered} answers\n{answer}",
            got.len()
        );
    }
}

#[tokio::test]
async fn a_malformed_chunked_body_is_the_clients_400() {
    let (proxy, _app) = raw_proxy(Behaviour::Ok, "").await;
    let bytes = b"POST /public/x HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n";
    let answer = exchange_for(proxy.addr, bytes, Duration::from_secs(2)).await;
    assert_eq!(statuses(&answer), [400], "{answer}");
    let reasons = reasons(proxy.admin).await;
    assert_eq!(reasons.get("client_body").copied(), Some(1.0), "{reasons:?}");
    assert_eq!(reasons.get("upstream_reset").copied(), Some(0.0), "{reasons:?}");
    let errors = metric(proxy.admin, "tokengate_upstream_errors_total{kind=\"reset\"}").await;
    assert_eq!(errors, 0.0, "no upstream-errors alert from a client's bad body");
}

/// HTTP/2 to HTTP/1.1: an h2 request whose `content-length` disagrees with
/// its DATA must not become two requests on the app's HTTP/1.1 connection.
#[tokio::test]
async fn h2_content_length_mismatch_is_not_a_second_request() {
    let (proxy, app) = raw_proxy(Behaviour::Ok, "").await;
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.unwrap();
    let body = format!("abc{HIDDEN}");
    let req = http::Request::post(format!("http://{}/public/x", proxy.addr))
        .header("content-length", "3")
        .body(())
        .unwrap();
    if let Ok((response, mut stream)) = client.send_request(req, false) {
        let _ = stream.send_data(Bytes::from(body), true);
        let _ = tokio::time::timeout(Duration::from_secs(3), response).await;
    }
    // A header HTTP/2 forbids, which an HTTP/1.1 app would obey.
    let mut client = client.ready().await.unwrap();
    let req = http::Request::post(format!("http://{}/public/y", proxy.addr))
        .header("transfer-encoding", "chunked")
        .body(())
        .unwrap();
    if let Ok((response, mut stream)) = client.send_request(req, false) {
        let _ = stream.send_data(Bytes::from(format!("0\r\n\r\n{HIDDEN}")), true);
        let _ = tokio::time::timeout(Duration::from_secs(3), response).await;
    }
    // A sentinel on the same connection: anything smuggled ahead of it on
    // the app's connection has been read by the time it is answered.
    let mut client = client.ready().await.unwrap();
    let req = http::Request::get(format!("http://{}/public/sentinel", proxy.addr))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(req, true).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    let got = app.received();
    assert!(got.iter().all(|r| !r.target().starts_with("/admin")), "{got:#?}");
    assert!(got.len() <= 3, "{got:#?}");
    assert_eq!(got.last().unwrap().target(), "/public/sentinel");
}
