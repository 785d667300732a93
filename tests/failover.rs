//! Redis behind Sentinel: real `redis-server` processes on loopback (a
//! master, a replica, three sentinels). Sidecars given a `redis+sentinel://`
//! URL find the master, follow a failover when it is killed, and keep every
//! revocation they had; the session store follows too.

mod support;

use std::time::Instant;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use jsonwebtoken::Algorithm;
use serde_json::json;
use support::redis::{SentinelSet, cli_at};
use support::*;

fn config(url: &str) -> String {
    format!(
        "{}
revocation:
  backend: redis
  redis:
    url: \"{url}\"
    connect_timeout: 300ms
    command_timeout: 500ms
    check_interval: 200ms
  max_staleness: 30s
sessions:
  signing_key: {{ private_key_file: keys/ec256.key.pem }}
  control: {{ listen: \"127.0.0.1:0\" }}
",
        base_config()
    )
}

async fn admin_revoke(proxy: &TestProxy, jti: &str) -> u16 {
    let body = json!({"jti": jti, "exp": now() + 600}).to_string();
    let req = Request::post(format!("http://{}/revoke", proxy.admin))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    send(&http1(), req).await.status.as_u16()
}

async fn status(proxy: &TestProxy, token: &str) -> u16 {
    get_with_token(&proxy.url("/x"), token).await.status.as_u16()
}

fn token_with_jti(jti: &str) -> String {
    let mut c = claims("sentinel-user");
    c["jti"] = jti.into();
    sign(Algorithm::HS256, &c)
}

#[tokio::test]
async fn sidecars_follow_a_sentinel_failover_and_forget_no_revocation() {
    let _heavy = heavy().await;
    let mut set = SentinelSet::start();
    let a = TestProxy::start_with(&config(&set.url()), start_echo().await).await;
    let b = TestProxy::start_with(&config(&set.url()), start_echo().await).await;
    for p in [&a, &b] {
        let ready = wait_until(DEADLINE, || async {
            get(&format!("http://{}/readyz", p.admin), &[]).await.status == 200
        })
        .await;
        assert!(
            ready.is_some(),
            "a sidecar never loaded the mirror through the sentinels"
        );
    }
    let before = token_with_jti("before-failover");
    let after = token_with_jti("after-failover");
    assert_eq!(admin_revoke(&a, "before-failover").await, 200);
    for p in [&a, &b] {
        assert!(
            wait_until(DEADLINE, || async { status(p, &before).await == 401 })
                .await
                .is_some()
        );
    }
    // Acknowledged and replicated (the protocol's guarantee needs the
    // replica to hold it; see the README on asynchronous replication).
    let replicated = wait_until(DEADLINE, || async {
        !cli_at(
            set.replica.port,
            &["ZSCORE", "{tokengate}:revoked:jti", "before-failover"],
        )
        .trim()
        .is_empty()
    })
    .await;
    assert!(replicated.is_some());

    let killed = Instant::now();
    set.master.kill();
    let promoted = wait_until(std::time::Duration::from_secs(60), || async {
        set.master_port() == Some(set.replica.port)
    })
    .await;
    assert!(promoted.is_some(), "the sentinels never promoted the replica");
    // A revocation written through either sidecar once the new master is up.
    let written = wait_until(std::time::Duration::from_secs(60), || async {
        admin_revoke(&b, "after-failover").await == 200
    })
    .await;
    assert!(written.is_some(), "revocations could not be written after the failover");
    for p in [&a, &b] {
        let current = wait_until(DEADLINE, || async {
            status(p, &after).await == 401 && status(p, &before).await == 401
        })
        .await;
        assert!(current.is_some(), "a sidecar's mirror did not follow the new master");
    }
    eprintln!(
        "failover: promoted {:?} after the kill, every mirror current {:?} after it",
        promoted.unwrap(),
        killed.elapsed()
    );
    // The session store follows the new master too.
    let opened = wait_until(DEADLINE, || async {
        let req = Request::post(format!("http://{}/sessions", a.control.unwrap()))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(r#"{"sub": "after-failover"}"#)))
            .unwrap();
        send(&http1(), req).await.status == 200
    })
    .await;
    assert!(opened.is_some(), "the session store did not follow the failover");
    a.stop().await;
    b.stop().await;
}
