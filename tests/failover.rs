//! Redis behind Sentinel: real `redis-server` processes on loopback (a
//! master, a replica, three sentinels). Sidecars given a `redis+sentinel://`
//! URL find the master, follow a failover when it is killed, and keep every
//! revocation they had; the session store follows too.

mod support;

use std::time::Instant;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use support::ha::*;
use support::redis::{SentinelSet, cli_at};
use support::*;

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
    // /readyz and the metrics say which node the sync is on, and its role.
    let original = set.master.port;
    let readyz = get(&format!("http://{}/readyz", a.admin), &[]).await.body;
    assert!(
        readyz.contains(&format!("revocation sync: 127.0.0.1:{original} (master)")),
        "{readyz}"
    );
    let on = |port: u16| format!("tokengate_revocation_sync_node{{address=\"127.0.0.1:{port}\",role=\"master\"}}");
    assert_eq!(metric(a.admin, &on(original)).await, 1.0);
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
    let promoted_port = set.replica.port;
    for p in [&a, &b] {
        let moved = wait_until(DEADLINE, || async {
            metric_opt(p.admin, &on(promoted_port)).await == Some(1.0)
                && metric_opt(p.admin, &on(original)).await.is_none()
        })
        .await;
        assert!(moved.is_some(), "the node metric did not follow the failover");
        let readyz = get(&format!("http://{}/readyz", p.admin), &[]).await.body;
        assert!(
            readyz.contains(&format!("127.0.0.1:{promoted_port} (master)")),
            "{readyz}"
        );
    }
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

/// A write on `master`, then `WAIT 1` on the same connection: true when a
/// replica acknowledged it.
fn replica_acknowledges(master: u16) -> bool {
    use std::io::Write;
    let Ok(mut cli) = std::process::Command::new("redis-cli")
        .args(["-p", &master.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    else {
        return false;
    };
    let _ = cli
        .stdin
        .take()
        .unwrap()
        .write_all(b"INCR tokengate-test-probe\nWAIT 1 1000\n");
    let out = cli
        .wait_with_output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    out.is_ok_and(|o| o.lines().last().map(str::trim) == Some("1"))
}

/// `wait_for_replicas: 1`: a revocation (admin port, `tokengate revoke`,
/// logout) is acknowledged only once a replica holds it, so a failover
/// right after cannot lose it; with the replica stopped it is 503.
#[tokio::test]
async fn wait_for_replicas_acknowledges_only_what_a_replica_holds() {
    let master = support::redis::RedisServer::start();
    let replica = support::redis::RedisServer::start_with(vec![
        "--replicaof".into(),
        "127.0.0.1".into(),
        master.port.to_string(),
    ]);
    // Linked once a write is acknowledged (a replica still loading the
    // master's snapshot is online but cannot acknowledge yet).
    let linked = wait_until(DEADLINE, || async { replica_acknowledges(master.port) }).await;
    assert!(linked.is_some(), "the replica never acknowledged a write");
    let proxy = TestProxy::start_with(&config_waiting(&master.url(), 1), start_echo().await).await;
    let ready = wait_until(DEADLINE, || async {
        get(&format!("http://{}/readyz", proxy.admin), &[]).await.status == 200
    })
    .await;
    assert!(ready.is_some());

    // Acknowledged means the replica has it, at that moment.
    for n in 0..5 {
        let jti = format!("confirmed-{n}");
        let reply = admin_revoke_reply(&proxy, &jti).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let held = cli_at(replica.port, &["ZSCORE", "{tokengate}:revoked:jti", &jti]);
        assert!(!held.trim().is_empty(), "{jti} acknowledged before the replica held it");
    }
    // No replica answering: not acknowledged (the master has it; a retry is harmless).
    replica.pause();
    let reply = admin_revoke_reply(&proxy, "unconfirmed").await;
    replica.resume();
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.body.contains("confirmed by 0 of 1"), "{}", reply.body);
    // A logout too.
    let open = Request::post(format!("http://{}/sessions", proxy.control.unwrap()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(r#"{"sub": "replicated"}"#)))
        .unwrap();
    let pair: serde_json::Value = serde_json::from_str(&send(&http1(), open).await.body).unwrap();
    let access = pair["access_token"].as_str().unwrap().to_owned();
    // A login at the same time must not queue behind the logout's WAIT
    // (that runs on a connection of its own; the WAIT lasts 500 ms).
    let login = Request::post(format!("http://{}/sessions", proxy.control.unwrap()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(r#"{"sub": "unhindered"}"#)))
        .unwrap();
    replica.pause();
    let logout = Request::post(proxy.url("/.tokengate/logout"))
        .header("authorization", format!("Bearer {access}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let client = http1();
    let (reply, opened) = tokio::join!(send(&client, logout), async {
        // Once the logout's WAIT blocks on the master.
        let blocked = wait_until(DEADLINE, || async {
            cli_at(master.port, &["INFO", "clients"]).contains("blocked_clients:1")
        })
        .await;
        assert!(blocked.is_some(), "the logout never waited for the replica");
        send(&client, login).await
    });
    replica.resume();
    assert_eq!(
        reply.status, 503,
        "a logout no replica holds was acknowledged: {}",
        reply.body
    );
    assert_eq!(
        opened.status, 200,
        "a login waited behind the logout's WAIT: {}",
        opened.body
    );
    proxy.stop().await;
}

/// Nothing acknowledged is lost: two sidecars take revocations without
/// pause while the master is killed. With `wait_for_replicas: 1` and two
/// replicas, every revocation a sidecar acknowledged (200) before, during
/// and after the failover is in the new master's set and refused by both
/// sidecars; the ones answered 503 may or may not have happened, and a
/// retry is harmless.
#[tokio::test]
async fn every_revocation_acknowledged_across_a_failover_is_kept() {
    let _heavy = heavy().await;
    let mut set = SentinelSet::start_with_replicas(2);
    let yaml = config_waiting(&set.url(), 1);
    let a = TestProxy::start_with(&yaml, start_echo().await).await;
    let b = TestProxy::start_with(&yaml, start_echo().await).await;
    for p in [&a, &b] {
        let ready = wait_until(DEADLINE, || async {
            get(&format!("http://{}/readyz", p.admin), &[]).await.status == 200
        })
        .await;
        assert!(ready.is_some());
    }
    let original = set.master.port;
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut killed_at = None;
    let started = Instant::now();
    for n in 0.. {
        let jti = format!("w-{n}");
        let via = if n % 2 == 0 { &a } else { &b };
        match admin_revoke(via, &jti).await {
            200 => acknowledged.push(jti),
            _ => refused += 1,
        }
        if killed_at.is_none() && acknowledged.len() == 20 {
            set.master.kill();
            killed_at = Some(acknowledged.len());
        }
        let promoted = set.master_port().is_some_and(|p| p != original);
        if promoted && acknowledged.len() >= killed_at.unwrap_or(usize::MAX) + 20 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(90),
            "no progress after the failover"
        );
    }
    let new_master = set.master_port().unwrap();
    assert!(set.replica_ports().contains(&new_master));
    // In Redis and on every sidecar: every acknowledged revocation survived.
    assert_every_acknowledged_kept(new_master, &acknowledged, &[&a, &b]).await;
    eprintln!(
        "writes across the failover: {} acknowledged, {refused} answered 503",
        acknowledged.len()
    );
    a.stop().await;
    b.stop().await;
}
