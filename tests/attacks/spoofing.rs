//! Header spoofing: a client's own copy of an identity or forwarding header,
//! spelled so that the proxy misses it and the app reads it. CGI, WSGI, PHP
//! and Rack read `X_Auth_Subject` as `HTTP_X_AUTH_SUBJECT`, the same variable
//! as the real `X-Auth-Subject` (Puma's CVE-2024-45614 is this class), and
//! lighttpd's CGI/FastCGI maps every non-alphanumeric character the same way
//! (`X.Auth.Subject`). Headers only a trusted proxy may set, some of which
//! rewrite the path or method the app routes on, never pass either.

use super::*;
use crate::support::raw::{exchange, statuses};

const SPOOFS: &[&str] = &[
    "X_Auth_Subject: root",
    "x_auth_subject: root",
    "X.Auth.Subject: root",
    "X~Auth!Subject: root",
    "X'Auth*Subject: root",
    "X.Auth.Email: root@example.com",
    "X-Auth_Subject: root",
    "X_Auth_Email: root@example.com",
    "X_Forwarded_Proto: https",
    "X_Forwarded_Host: admin.internal",
    "X_Forwarded_For: 10.0.0.1",
    "Transfer_Encoding: chunked",
    "Content_Length: 99",
    "X_Access_Token: forged",
    "X-Auth-Subject: root",
    "x-auth-subject: root",
    "X-Auth-Role: staff",
    "X-Original-URL: /admin/panel",
    "X-Rewrite-URL: /admin/panel",
    "X-HTTP-Method-Override: DELETE",
    "X-Forwarded-Prefix: /admin",
    "Forwarded: for=10.0.0.1;proto=https;host=admin.internal",
    "X-Real-IP: 10.0.0.1",
];

fn request(target: &str, token: Option<&str>) -> Vec<u8> {
    let mut headers: Vec<String> = SPOOFS.iter().map(|s| (*s).to_owned()).collect();
    headers.push("X_Custom_Flag: 1".into());
    if let Some(t) = token {
        headers.push(bearer(t));
    }
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    get_bytes(target, &refs)
}

#[tokio::test]
async fn underscore_and_duplicate_identity_headers_never_reach_the_app() {
    let (proxy, app) = raw_proxy(Behaviour::Ok, "").await;
    assert_eq!(
        statuses(&exchange(proxy.addr, &request("/public/x", None)).await),
        [200]
    );
    assert_eq!(
        statuses(&exchange(proxy.addr, &request("/x", Some(&user_token()))).await),
        [200]
    );
    let got = app.received();
    assert_eq!(got.len(), 2);
    for r in &got {
        assert!(
            r.headers
                .iter()
                .all(|(n, _)| n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')),
            "only letters, digits and `-` in forwarded names by default: {:?}",
            r.headers
        );
        for untrusted in [
            "x-original-url",
            "x-rewrite-url",
            "x-http-method-override",
            "x-forwarded-prefix",
            "forwarded",
            "x-real-ip",
        ] {
            assert!(r.all(untrusted).is_empty(), "{untrusted} reached the app");
        }
        assert!(r.all("x-auth-role").is_empty());
        assert!(r.all("x-forwarded-host").iter().all(|h| *h == "app.test"));
        assert_eq!(r.all("x-forwarded-proto"), ["http"]);
        assert!(
            !String::from_utf8_lossy(&r.raw).to_ascii_lowercase().contains("root"),
            "{}",
            String::from_utf8_lossy(&r.raw)
        );
    }
    assert!(got[0].all("x-auth-subject").is_empty(), "public route: no identity");
    assert_eq!(got[1].all("x-auth-subject"), ["alice"], "exactly the token's subject");
}

#[tokio::test]
async fn lenient_header_names_still_never_spell_ours() {
    let (proxy, app) = raw_proxy(
        Behaviour::Ok,
        "http: { header_names: lenient, strip_headers: [x-original-url] }\n",
    )
    .await;
    assert_eq!(
        statuses(&exchange(proxy.addr, &request("/x", Some(&user_token()))).await),
        [200]
    );
    let r = &app.received()[0];
    assert_eq!(r.all("x_custom_flag"), ["1"], "opted in: other underscore headers pass");
    for owned in [
        "x-auth-subject",
        "x-auth-email",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-for",
        "transfer-encoding",
        "content-length",
        "x-access-token",
    ] {
        let folded = |n: &str| -> String {
            n.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect()
        };
        let spellings: Vec<&str> = r
            .headers
            .iter()
            .filter(|(n, _)| n != owned && folded(n) == owned)
            .map(|(n, _)| n.as_str())
            .collect();
        assert!(spellings.is_empty(), "{owned} spelled {spellings:?} reached the app");
    }
    assert_eq!(r.all("x-auth-subject"), ["alice"]);
    // A custom strip list replaces the default one.
    assert!(r.all("x-original-url").is_empty());
    assert_eq!(r.all("x-real-ip"), ["10.0.0.1"]);
}

/// Trailers after a chunked body are headers too, to some app servers.
#[tokio::test]
async fn identity_headers_in_trailers_never_reach_the_app() {
    let (proxy, app) = raw_proxy(Behaviour::Ok, "").await;
    let bytes = format!(
        "POST /x HTTP/1.1\r\nHost: app.test\r\n{}\r\nTransfer-Encoding: chunked\r\nTrailer: X-Auth-Subject\r\nTE: trailers\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Auth-Subject: root\r\nX_Auth_Subject: root\r\n\r\n",
        bearer(&user_token())
    );
    let answer = exchange(proxy.addr, bytes.as_bytes()).await;
    assert_eq!(statuses(&answer), [200], "{answer}");
    let r = &app.received()[0];
    assert_eq!(r.body, b"hello");
    let raw = String::from_utf8_lossy(&r.raw).to_ascii_lowercase();
    assert!(!raw.contains("root"), "{raw}");
}
