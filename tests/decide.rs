//! The decision as one typed step, without sockets: `Proxy::decide` on
//! request heads, for every kind of outcome (forward, with or without
//! identity, with a protocol switch; each rejection by its metric reason).

mod support;

use std::sync::Arc;

use http::Request;
use jsonwebtoken::Algorithm;
use serde_json::json;
use support::*;
use tokengate::metrics::Metrics;
use tokengate::proxy::forward::Upstream;
use tokengate::proxy::{Decision, Proxy, Snapshot};
use tokengate::revocation::{Revocation, Revocations};

fn proxy() -> Proxy {
    let config = load(&base_config(), "127.0.0.1:1".parse().unwrap());
    let metrics = Metrics::new().unwrap();
    let revocations = Revocations::new(&config.revocation, config.auth.leeway).unwrap();
    revocations.apply(&Revocation::Jti {
        id: "revoked".into(),
        exp: now() + 600,
    });
    let snapshot = Snapshot::from_config(&config, &[], Arc::new(Upstream::new(&config.upstream)));
    Proxy::new(snapshot, revocations, metrics.registry()).unwrap()
}

/// The decision in one line: `forward <path> <subject> <upgrade>` or `reject <reason>`.
async fn decide(proxy: &Proxy, method: &str, uri: &str, headers: &[(&str, &str)]) -> String {
    let mut b = Request::builder().method(method).uri(uri).header("host", "app.test");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(()).unwrap();
    match proxy.decide(&proxy.snapshot(), &req).await {
        Ok(Decision::Forward {
            normalised,
            claims,
            upgrade,
            cookies,
        }) => format!(
            "forward {} {} {}{}",
            normalised.as_deref().unwrap_or("-"),
            claims
                .as_ref()
                .and_then(|c| c.subject().map(str::to_owned))
                .unwrap_or("-".into()),
            upgrade.as_deref().unwrap_or("-"),
            if cookies.is_empty() { "" } else { " +cookies" }
        ),
        Ok(Decision::Session(e)) => format!("session {e:?}"),
        Ok(Decision::SignIn { return_to }) => format!("sign in {return_to}"),
        Ok(Decision::BackchannelLogout) => "backchannel logout".into(),
        Err(rejection) => format!("reject {}", rejection.reason().label()),
    }
}

/// Method, URI, headers, expected decision.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a str);

#[tokio::test]
async fn table() {
    let proxy = proxy();
    let user = format!("Bearer {}", sign(Algorithm::ES256, &claims("alice")));
    let mut admin_claims = claims("root");
    admin_claims["scope"] = json!("admin");
    let admin = format!("Bearer {}", sign(Algorithm::ES256, &admin_claims));
    let mut revoked_claims = claims("eve");
    revoked_claims["jti"] = json!("revoked");
    let revoked = format!("Bearer {}", sign(Algorithm::ES256, &revoked_claims));
    let mut expired_claims = claims("old");
    expired_claims["exp"] = json!(now() - 3600);
    let expired = format!("Bearer {}", sign(Algorithm::ES256, &expired_claims));
    let ws = [("connection", "Upgrade"), ("upgrade", "websocket")];
    let h2c = [("connection", "Upgrade"), ("upgrade", "h2c")];
    let cases: Vec<Case<'_>> = vec![
        ("GET", "/public/x", vec![], "forward - - -"),
        ("GET", "/public/../x", vec![], "reject missing_token"),
        (
            "GET",
            "/public/%2e%2e/admin/x",
            vec![("authorization", &user)],
            "reject insufficient_scope",
        ),
        ("GET", "/x", vec![("authorization", &user)], "forward - alice -"),
        ("GET", "//x/./y", vec![("authorization", &user)], "forward /x/y alice -"),
        ("GET", "/admin/x", vec![("authorization", &admin)], "forward - root -"),
        ("GET", "/x", vec![("authorization", &revoked)], "reject revoked"),
        ("GET", "/x", vec![("authorization", &expired)], "reject expired"),
        ("GET", "/x", vec![("authorization", "Bearer a.b.c")], "reject malformed"),
        ("GET", "/admin;x/y", vec![("authorization", &admin)], "reject bad_path"),
        ("GET", "/ADMIN/x", vec![("authorization", &user)], "reject bad_path"),
        ("GET", "/public/ws", ws.to_vec(), "forward - - websocket"),
        ("GET", "/public/ws", h2c.to_vec(), "forward - - -"),
        ("delete", "/x", vec![("authorization", &user)], "reject bad_request"),
        ("GET", "/x", vec![("host", "other")], "reject bad_request"),
    ];
    for (method, uri, headers, want) in cases {
        assert_eq!(
            decide(&proxy, method, uri, &headers).await,
            want,
            "{method} {uri} {headers:?}"
        );
    }
}
