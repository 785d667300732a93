//! A dying upstream connection: the app closes a keep-alive connection just
//! as the proxy sends the next request on it. Idempotent bodiless requests
//! are resent once on a fresh connection; anything else is never resent,
//! since the app may already have acted on it.

use super::*;
use crate::support::raw::{exchange, statuses};

#[tokio::test]
async fn idempotent_requests_lost_to_a_closing_connection_are_resent_once() {
    // The app answers the first request on a connection, then reads the
    // second and closes without answering.
    for method in ["GET", "HEAD", "OPTIONS"] {
        let (proxy, app) = raw_proxy(Behaviour::DropSecond, "").await;
        let before = app.received().len();
        let first = exchange(
            proxy.addr,
            format!("{method} /public/a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert_eq!(statuses(&first), [200], "{method}: {first}");
        let second = exchange(
            proxy.addr,
            format!("{method} /public/b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert_eq!(
            statuses(&second),
            [200],
            "{method} lost to the race is resent: {second}"
        );
        let got: Vec<String> = app.received()[before..].iter().map(|r| r.line.clone()).collect();
        assert_eq!(
            got,
            [
                format!("{method} /public/a HTTP/1.1"),
                format!("{method} /public/b HTTP/1.1"),
                format!("{method} /public/b HTTP/1.1"),
            ],
            "the lost request was sent again, once"
        );
    }
}

#[tokio::test]
async fn other_requests_are_never_resent() {
    let (proxy, app) = raw_proxy(Behaviour::DropSecond, "").await;
    let post = |path: &str| {
        format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello").into_bytes()
    };
    assert_eq!(statuses(&exchange(proxy.addr, &post("/public/a")).await), [200]);
    assert_eq!(statuses(&exchange(proxy.addr, &post("/public/b")).await), [502]);
    let posts = app
        .received()
        .iter()
        .filter(|r| r.line.starts_with("POST /public/b"))
        .count();
    assert_eq!(posts, 1, "a POST the app may have acted on is not sent twice");

    // A GET with a body is not bodiless: not resent either.
    let get_body = |path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi").into_bytes()
    };
    assert_eq!(statuses(&exchange(proxy.addr, &get_body("/public/c")).await), [200]);
    assert_eq!(statuses(&exchange(proxy.addr, &get_body("/public/d")).await), [502]);
    let gets = app
        .received()
        .iter()
        .filter(|r| r.line.starts_with("GET /public/d"))
        .count();
    assert_eq!(gets, 1);
}
