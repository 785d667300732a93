//! Redis Cluster: real `redis-server` processes on loopback, three masters
//! with a replica each. Sidecars given a `redis+cluster://` URL share
//! revocations and sessions whichever node they know, follow the slot of
//! their keys when it moves (ASK, then MOVED) and when its master is killed,
//! and keep every revocation they had.

mod support;

use std::time::{Duration, Instant};

use support::ha::*;
use support::redis::{ClusterSet, TAG_SLOT};
use support::*;

/// The protocol's revoke script, run by an issuer with `redis-cli -c`
/// (which follows MOVED to the slot's master) rather than by tokengate.
fn issuer_revokes(cluster: &ClusterSet, jti: &str) -> String {
    let script = include_str!("../src/revocation/revoke.lua");
    let port = cluster.ports()[0].to_string();
    let exp = (now() + 600).to_string();
    let out = std::process::Command::new("redis-cli")
        .args(["-c", "-p", &port, "EVAL", script, "2"])
        .args(["{tokengate}:revoked:jti", "{tokengate}:seq", "jti", jti, &exp])
        .arg("tokengate:revocations")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn sync_node(proxy: &TestProxy) -> String {
    get(&format!("http://{}/readyz", proxy.admin), &[]).await.body
}

/// Three sidecars, each knowing one node only: the slot's master, another
/// master, and a replica. Revocations from any of them and from an issuer
/// reach all three; a session opened through one is refreshed and ended
/// through the others.
#[tokio::test]
async fn sidecars_on_any_node_share_revocations_and_sessions() {
    let _heavy = heavy().await;
    let cluster = ClusterSet::start();
    let owner = cluster.slot_master().unwrap();
    let other = cluster.other_master().unwrap();
    let replica = cluster
        .topology()
        .into_iter()
        .find(|n| n.role == "replica")
        .map(|n| n.port)
        .unwrap();
    let mut sidecars = Vec::new();
    for port in [owner, other, replica] {
        let proxy = TestProxy::start_with(&config(&ClusterSet::url_of(&[port])), start_echo().await).await;
        assert!(wait_ready(&proxy).await, "a sidecar seeded with :{port} never loaded");
        // The subscription is on the node it was given; commands reach
        // the slot's master whichever node that is.
        let readyz = sync_node(&proxy).await;
        assert!(readyz.contains(&format!("127.0.0.1:{port} (")), "{readyz}");
        sidecars.push(proxy);
    }
    let [a, b, c] = [&sidecars[0], &sidecars[1], &sidecars[2]];
    for (n, via) in [a, b, c].into_iter().enumerate() {
        let jti = format!("through-sidecar-{n}");
        assert_eq!(admin_revoke(via, &jti).await, 200);
        let token = token_with_jti(&jti);
        for p in [a, b, c] {
            let refused = wait_until(DEADLINE, || async { status(p, &token).await == 401 }).await;
            assert!(refused.is_some(), "{jti} not enforced by a sidecar");
        }
    }
    let seq = issuer_revokes(&cluster, "from-an-issuer");
    assert!(seq.trim().parse::<u64>().is_ok(), "the issuer's script: {seq}");
    let token = token_with_jti("from-an-issuer");
    for p in [a, b, c] {
        let refused = wait_until(DEADLINE, || async { status(p, &token).await == 401 }).await;
        assert!(refused.is_some(), "an issuer's revocation not enforced by a sidecar");
    }
    // A session through the replica's sidecar, refreshed through the other
    // master's and ended through the owner's.
    let opened = open_session(c, "cluster-user").await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let refreshed = refresh_session(b, &json_field(&opened, "refresh_token")).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let access = json_field(&refreshed, "access_token");
    assert_eq!(status(a, &access).await, 200);
    let ended = logout(a, &access).await;
    assert!(ended.status.is_success(), "{}", ended.body);
    for p in [a, b, c] {
        let refused = wait_until(DEADLINE, || async { status(p, &access).await == 401 }).await;
        assert!(refused.is_some(), "a logout not enforced by a sidecar");
    }
    // The spent and the ended refresh tokens are refused.
    assert_eq!(
        refresh_session(c, &json_field(&opened, "refresh_token")).await.status,
        401
    );
    assert_eq!(
        refresh_session(c, &json_field(&refreshed, "refresh_token"))
            .await
            .status,
        401
    );
    for p in sidecars {
        p.stop().await;
    }
}

/// The slot moves to another master, as `redis-cli --cluster reshard`
/// moves it. While its keys are at the new master and the old one answers
/// ASK, tokengate's own writes are refused (503) and change nothing (a
/// script that runs with some of its keys elsewhere would give wrong
/// answers), an issuer's revocation through `redis-cli -c` still reaches
/// every sidecar, and the mirrors keep answering; after the handover
/// (MOVED) everything works without a restart, with the same tokens.
#[tokio::test]
async fn a_slot_migration_is_followed() {
    let _heavy = heavy().await;
    let cluster = ClusterSet::start();
    let from = cluster.slot_master().unwrap();
    let to = cluster.other_master().unwrap();
    let a = TestProxy::start_with(&config(&cluster.url()), start_echo().await).await;
    let b = TestProxy::start_with(&config(&cluster.url()), start_echo().await).await;
    assert!(wait_ready(&a).await && wait_ready(&b).await);
    assert_eq!(admin_revoke(&a, "before-migration").await, 200);
    let opened = open_session(&a, "migrating").await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let refresh_token = json_field(&opened, "refresh_token");
    let access = json_field(&opened, "access_token");

    cluster.begin_migration(TAG_SLOT, from, to);
    let refreshed = refresh_session(&b, &refresh_token).await;
    assert_eq!(
        refreshed.status, 503,
        "a refresh while the slot moved: {}",
        refreshed.body
    );
    let ended = logout(&b, &access).await;
    assert_eq!(ended.status, 503, "a logout while the slot moved: {}", ended.body);
    assert_eq!(admin_revoke(&b, "refused-during-migration").await, 503);
    let seq = issuer_revokes(&cluster, "issuer-during-migration");
    assert!(seq.trim().parse::<u64>().is_ok(), "the issuer's script (ASK): {seq}");
    for p in [&a, &b] {
        let token = token_with_jti("issuer-during-migration");
        let refused = wait_until(DEADLINE, || async { status(p, &token).await == 401 }).await;
        assert!(refused.is_some(), "an issuer's revocation during the move not enforced");
        assert_eq!(status(p, &access).await, 200, "the mirror stopped answering");
    }
    cluster.finish_migration(TAG_SLOT, to);
    assert_eq!(cluster.slot_master(), Some(to));

    // After the handover (MOVED): the refused calls changed nothing, so the
    // same refresh token rotates (no reuse) and the logout ends the session.
    let refreshed = refresh_session(&a, &refresh_token).await;
    assert_eq!(
        refreshed.status, 200,
        "a refresh after the slot moved: {}",
        refreshed.body
    );
    let access = json_field(&refreshed, "access_token");
    assert_eq!(admin_revoke(&a, "after-migration").await, 200);
    let ended = logout(&b, &access).await;
    assert!(
        ended.status.is_success(),
        "a logout after the slot moved: {}",
        ended.body
    );
    for p in [&a, &b] {
        let all = wait_until(DEADLINE, || async {
            for jti in ["before-migration", "issuer-during-migration", "after-migration"] {
                if status(p, &token_with_jti(jti)).await != 401 {
                    return false;
                }
            }
            status(p, &access).await == 401
        })
        .await;
        assert!(all.is_some(), "a sidecar lost a revocation across the migration");
    }
    a.stop().await;
    b.stop().await;
}

/// The slot's master is killed while two sidecars take revocations without
/// pause. With `wait_for_replicas: 1`, every revocation acknowledged
/// before, during and after the failover is at the promoted replica and
/// refused by both sidecars, and sessions work on the new master.
#[tokio::test]
async fn every_revocation_acknowledged_across_a_cluster_failover_is_kept() {
    let _heavy = heavy().await;
    let mut cluster = ClusterSet::start();
    cluster.add_slot_replica();
    let original = cluster.slot_master().unwrap();
    let yaml = config_waiting(&cluster.url(), 1);
    let a = TestProxy::start_with(&yaml, start_echo().await).await;
    let b = TestProxy::start_with(&yaml, start_echo().await).await;
    // Subscribed on the master about to die (the first listed node), with
    // another node to move to.
    let other = cluster.other_master().unwrap();
    let c = TestProxy::start_with(
        &config_waiting(&ClusterSet::url_of(&[original, other]), 1),
        start_echo().await,
    )
    .await;
    assert!(wait_ready(&a).await && wait_ready(&b).await && wait_ready(&c).await);
    let readyz = sync_node(&c).await;
    assert!(readyz.contains(&format!("127.0.0.1:{original} (master)")), "{readyz}");
    let opened = open_session(&a, "across-failover").await;
    assert_eq!(opened.status, 200, "{}", opened.body);

    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut killed = None;
    let started = Instant::now();
    for n in 0.. {
        let jti = format!("c-{n}");
        let via = if n % 2 == 0 { &a } else { &b };
        match admin_revoke(via, &jti).await {
            200 => acknowledged.push(jti),
            _ => refused += 1,
        }
        if killed.is_none() && acknowledged.len() == 20 {
            cluster.node(original).kill();
            killed = Some((acknowledged.len(), Instant::now()));
        }
        let promoted = cluster.slot_master().is_some_and(|p| p != original);
        if let Some((at, _)) = killed
            && promoted
            && acknowledged.len() >= at + 20
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no progress after the failover"
        );
    }
    let new_master = cluster.slot_master().unwrap();
    assert_every_acknowledged_kept(new_master, &acknowledged, &[&a, &b, &c]).await;
    // The sidecar whose node died subscribed on the next listed one.
    let moved = wait_until(DEADLINE, || async {
        sync_node(&c).await.contains(&format!("127.0.0.1:{other} ("))
    })
    .await;
    assert!(moved.is_some(), "{}", sync_node(&c).await);
    // The session opened before the failover is refreshed after it.
    let refreshed = wait_until(DEADLINE, || async {
        refresh_session(&b, &json_field(&opened, "refresh_token")).await.status == 200
    })
    .await;
    assert!(refreshed.is_some(), "the session store did not follow the failover");
    eprintln!(
        "cluster failover: {} acknowledged, {refused} answered 503, 20 more acknowledged after the promotion {:?} after the kill",
        acknowledged.len(),
        killed.map(|(_, at)| at.elapsed()).unwrap_or_default()
    );
    a.stop().await;
    b.stop().await;
    c.stop().await;
}

/// The guard every state-changing script runs in: a resend of one call
/// (same done key) gets the first answer and changes nothing more; a call
/// Redis starts after its deadline changes nothing.
#[tokio::test]
async fn a_guarded_script_runs_once_per_call_and_never_late() {
    let server = support::redis::RedisServer::start();
    let conn = server.conn().await;
    let script = tokengate::redis_client::guarded_script("return {redis.call('INCR', KEYS[1]), 'ran'}");
    let run = |done: &'static str, deadline: i64| {
        let mut conn = conn.clone();
        let script = &script;
        async move {
            script
                .key("{t}:counter")
                .key(done)
                .arg(deadline)
                .invoke_async::<::redis::Value>(&mut conn)
                .await
                .unwrap()
        }
    };
    let soon = now() * 1000 + 60_000;
    let first = run("{t}:done:1", soon).await;
    let resent = run("{t}:done:1", soon).await;
    assert_eq!(first, resent, "a resend answers as the first run did");
    assert_eq!(server.cli(&["GET", "{t}:counter"]).trim(), "1", "a resend ran again");
    let other = run("{t}:done:2", soon).await;
    assert_ne!(other, first);
    assert_eq!(server.cli(&["GET", "{t}:counter"]).trim(), "2");
    let late = run("{t}:done:3", now() * 1000 - 1).await;
    assert!(tokengate::redis_client::late_by(&late).is_some(), "{late:?}");
    assert_eq!(server.cli(&["GET", "{t}:counter"]).trim(), "2", "a late call ran");
    let ttl: i64 = server.cli(&["PTTL", "{t}:done:1"]).trim().parse().unwrap();
    assert!(
        (60_000..=71_000).contains(&ttl),
        "kept until past the deadline: {ttl} ms"
    );
}
