//! Header and framing abuse: spellings RFC 9112 §3.2 says a server must
//! refuse, methods a framework may read differently, and header lines a
//! lenient parser would accept. None may reach the app.

use super::*;
use crate::support::raw::{exchange, statuses};

#[tokio::test]
async fn ambiguous_hosts_and_methods_are_400_and_never_forwarded() {
    // `delete` must not slip past a DELETE-only rule to the public catch-all.
    let extra = "";
    let yaml = base_config().replace(
        "routes:\n",
        "routes:\n  - prefix: /items/\n    methods: [DELETE]\n    require: { scopes: [admin] }\n  - prefix: /items/\n    public: true\n",
    );
    let app = RawApp::start(Behaviour::Ok).await;
    let proxy = TestProxy::start_with(&format!("{yaml}{extra}"), app.addr).await;
    let user = bearer(&user_token());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "two Host headers",
            b"GET /public/x HTTP/1.1\r\nHost: app.test\r\nHost: admin.internal\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "no Host on HTTP/1.1",
            b"GET /public/x HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "absolute-form target naming another host",
            b"GET http://admin.internal/public/x HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "Host with userinfo",
            b"GET /public/x HTTP/1.1\r\nHost: user@app.test\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "lower-case method past a DELETE-only rule",
            format!("delete /items/1 HTTP/1.1\r\nHost: app.test\r\n{user}\r\nConnection: close\r\n\r\n").into_bytes(),
        ),
        (
            "obsolete line folding",
            b"GET /public/x HTTP/1.1\r\nHost: app.test\r\nX-Note: a\r\n X-Auth-Subject: root\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "space before the colon",
            b"GET /public/x HTTP/1.1\r\nHost: app.test\r\nX-Auth-Subject : root\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "NUL in a header value",
            b"GET /public/x HTTP/1.1\r\nHost: app.test\r\nX-Note: a\0b\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "bare CR in a header value",
            b"GET /public/x HTTP/1.1\r\nHost: app.test\r\nX-Note: a\rX-Auth-Subject: root\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "CONNECT to an internal host",
            b"CONNECT admin.internal:443 HTTP/1.1\r\nHost: admin.internal:443\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "Host that is a list",
            b"GET /public/x HTTP/1.1\r\nHost: app.test, admin.internal\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "a transfer coding the app would get unmarked",
            b"POST /public/x HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n".to_vec(),
        ),
        (
            "asterisk-form target",
            b"OPTIONS * HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n".to_vec(),
        ),
    ];
    for (what, bytes) in &cases {
        let answer = exchange(proxy.addr, bytes).await;
        let status = statuses(&answer);
        assert!(
            status.is_empty() || status.iter().all(|s| (400..500).contains(s)),
            "{what}: {status:?}\n{answer}"
        );
    }
    assert!(app.received().is_empty(), "{:#?}", app.received());
    let reasons = reasons(proxy.admin).await;
    assert!(reasons["bad_request"] >= 7.0, "{reasons:?}");

    // Controls: the canonical spellings pass.
    for bytes in [
        format!(
            "DELETE /items/1 HTTP/1.1\r\nHost: app.test\r\n{}\r\nConnection: close\r\n\r\n",
            bearer(&admin_token())
        )
        .into_bytes(),
        b"GET http://app.test/public/x HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET /public/x HTTP/1.0\r\n\r\n".to_vec(),
    ] {
        let answer = exchange(proxy.addr, &bytes).await;
        assert_eq!(
            statuses(&answer),
            [200],
            "{}\n{answer}",
            String::from_utf8_lossy(&bytes)
        );
    }
    let got = app.received();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].method(), "DELETE");
    assert_eq!(got[1].target(), "/public/x", "origin form to the app");
    assert_eq!(got[1].all("host"), ["app.test"]);
}

/// HTTP/2's `:authority` gets the same scrutiny as `Host`.
#[tokio::test]
async fn an_h2_authority_with_userinfo_is_refused() {
    let (proxy, app) = raw_proxy(Behaviour::Ok, "").await;
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut statuses = Vec::new();
    for authority in ["u@app.test", "a@evil.example", "app.test"] {
        let mut client = client.clone().ready().await.unwrap();
        let req = http::Request::get(format!("http://{authority}/public/x"))
            .body(())
            .unwrap();
        let (response, _) = client.send_request(req, true).unwrap();
        let response = tokio::time::timeout(std::time::Duration::from_secs(10), response)
            .await
            .unwrap()
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [400, 400, 200]);
    let got = app.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].all("host"), ["app.test"]);
}
