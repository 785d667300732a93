//! Revocation through a real redis-server that each test starts on a free
//! port: the Lua script, several proxies, subject cut-offs, Redis dying,
//! restarting empty, hanging, and sending garbage.

mod support;

use jsonwebtoken::Algorithm;
use serde_json::json;
use support::redis::RedisServer;
use support::*;
use tokengate::revocation::{Keys, Revocation, protocol};

fn config(redis: &RedisServer, on_stale: &str) -> String {
    format!(
        r#"{}
revocation:
  backend: redis
  redis:
    url: "{}"
    connect_timeout: 300ms
    command_timeout: 300ms
    check_interval: 200ms
  max_staleness: 1s
  on_stale: {on_stale}
"#,
        base_config(),
        redis.url()
    )
}

async fn start(redis: &RedisServer, on_stale: &str) -> TestProxy {
    let proxy = TestProxy::start_with(&config(redis, on_stale), start_echo().await).await;
    wait_until(DEADLINE, || async {
        get(&format!("http://{}/readyz", proxy.admin), &[]).await.status == 200
    })
    .await
    .expect("ready after the first load");
    proxy
}

fn token(jti: &str, sub: &str, iat: i64) -> String {
    let mut c = claims(sub);
    c["jti"] = json!(jti);
    c["iat"] = json!(iat);
    sign(Algorithm::HS256, &c)
}

async fn status(proxy: &TestProxy, token: &str) -> u16 {
    get_with_token(&proxy.url("/x"), token).await.status.as_u16()
}

async fn revoke(redis: &RedisServer, revocation: Revocation) -> u64 {
    let mut conn = redis.conn().await;
    protocol::revoke(&mut conn, &Keys::new("tokengate"), &revocation)
        .await
        .unwrap()
}

fn jti(id: &str) -> Revocation {
    Revocation::Jti {
        id: id.into(),
        exp: now() + 300,
    }
}

#[tokio::test]
async fn a_revoked_token_is_refused_once_the_message_arrives() {
    let redis = RedisServer::start();
    let proxy = start(&redis, "fail_open").await;
    let t = token("tok-1", "alice", now());
    let other = token("tok-2", "alice", now());
    assert_eq!(status(&proxy, &t).await, 200);
    assert_eq!(revoke(&redis, jti("tok-1")).await, 1);
    let took = wait_until(DEADLINE, || async { status(&proxy, &t).await == 401 }).await;
    assert!(
        took.is_some(),
        "refused once the message arrives (latency: bench-scripts/, not here)"
    );
    let reply = get_with_token(&proxy.url("/x"), &t).await;
    assert!(reply.www_authenticate().contains(r#"error="invalid_token""#));
    assert_eq!(status(&proxy, &other).await, 200, "only that jti");
    assert_eq!(reasons(proxy.admin).await["revoked"], 2.0);
    assert_eq!(
        metric(proxy.admin, r#"tokengate_revocation_messages_total{result="applied"}"#).await,
        1.0
    );
    assert_eq!(
        metric(proxy.admin, r#"tokengate_revocation_entries{kind="jti"}"#).await,
        1.0
    );
    assert_eq!(metric(proxy.admin, "tokengate_revocation_connected").await, 1.0);
}

#[tokio::test]
async fn three_proxies_on_one_redis_all_refuse() {
    let redis = RedisServer::start();
    let proxies = [
        start(&redis, "fail_open").await,
        start(&redis, "fail_open").await,
        start(&redis, "fail_closed").await,
    ];
    let t = token("shared", "bob", now());
    for p in &proxies {
        assert_eq!(status(p, &t).await, 200);
    }
    revoke(&redis, jti("shared")).await;
    for p in &proxies {
        let took = wait_until(DEADLINE, || async { status(p, &t).await == 401 }).await;
        assert!(took.is_some(), "every proxy refuses");
    }
}

#[tokio::test]
async fn subject_cutoff_refuses_older_tokens_and_accepts_newer_via_redis_cli() {
    let redis = RedisServer::start();
    let proxy = start(&redis, "fail_open").await;
    let cutoff = now() - 50;
    let older = token("o", "carol", now() - 100);
    let at = token("a", "carol", cutoff);
    let newer = token("n", "carol", now() - 10);
    let mut no_iat = claims("carol");
    no_iat.as_object_mut().unwrap().remove("iat");
    let no_iat = sign(Algorithm::HS256, &no_iat);
    let someone_else = token("e", "dave", now() - 100);
    // Exactly what the README tells an issuer to run.
    let seq = redis.cli(&[
        "EVAL",
        protocol::REVOKE_SCRIPT,
        "2",
        "{tokengate}:revoked:sub",
        "{tokengate}:seq",
        "sub",
        "carol",
        &cutoff.to_string(),
        "tokengate:revocations",
    ]);
    assert_eq!(seq.trim(), "1");
    assert!(
        wait_until(DEADLINE, || async { status(&proxy, &older).await == 401 })
            .await
            .is_some()
    );
    assert_eq!(status(&proxy, &at).await, 401, "iat equal to the cut-off is revoked");
    assert_eq!(status(&proxy, &no_iat).await, 401, "no iat counts as the epoch");
    assert_eq!(status(&proxy, &newer).await, 200, "issued after the cut-off");
    assert_eq!(status(&proxy, &someone_else).await, 200);
}

#[tokio::test]
async fn redis_killed_fail_open_serves_and_fail_closed_answers_503() {
    let mut redis = RedisServer::start();
    let open = start(&redis, "fail_open").await;
    let closed = start(&redis, "fail_closed").await;
    let t = token("k", "erin", now());
    redis.kill();
    // Within max_staleness (1 s) both keep serving from the mirror.
    assert_eq!(status(&open, &t).await, 200);
    assert_eq!(status(&closed, &t).await, 200);
    // Past max_staleness (1 s): fail_closed turns to 503.
    assert!(
        wait_until(DEADLINE, || async { status(&closed, &t).await == 503 })
            .await
            .is_some()
    );
    assert_eq!(status(&open, &t).await, 200, "fail_open keeps serving");
    let reply = get_with_token(&closed.url("/x"), &t).await;
    assert_eq!(reply.status, 503, "fail_closed refuses once stale");
    assert!(reply.headers.contains_key("retry-after"));
    // Public routes need no revocation state.
    assert_eq!(get(&closed.url("/public/x"), &[]).await.status, 200);
    assert_eq!(get(&format!("http://{}/readyz", closed.admin), &[]).await.status, 503);
    assert_eq!(get(&format!("http://{}/readyz", open.admin), &[]).await.status, 200);
    assert_eq!(metric(open.admin, "tokengate_revocation_stale").await, 1.0);
    assert_eq!(metric(open.admin, "tokengate_revocation_connected").await, 0.0);
    assert!(metric(open.admin, "tokengate_revocation_sync_age_seconds").await >= 1.0);
    assert!(reasons(closed.admin).await["revocation_stale"] >= 1.0);

    // Redis back: both recover without a restart.
    redis.restart();
    assert!(
        wait_until(DEADLINE, || async { status(&closed, &t).await == 200 })
            .await
            .is_some()
    );
    assert_eq!(get(&format!("http://{}/readyz", closed.admin), &[]).await.status, 200);
}

#[tokio::test]
async fn a_revocation_written_while_disconnected_is_enforced_after_reconnect() {
    let mut redis = RedisServer::start();
    let proxy = start(&redis, "fail_open").await;
    let t = token("offline", "frank", now());
    redis.kill();
    assert!(
        wait_until(DEADLINE, || async {
            metric(proxy.admin, "tokengate_revocation_connected").await == 0.0
        })
        .await
        .is_some()
    );
    redis.restart();
    // Written before the proxy has reconnected: no message reaches it.
    revoke(&redis, jti("offline")).await;
    assert!(
        wait_until(DEADLINE, || async { status(&proxy, &t).await == 401 })
            .await
            .is_some()
    );
    assert!(metric(proxy.admin, r#"tokengate_revocation_reloads_total{cause="reconnect"}"#).await >= 1.0);
}

#[tokio::test]
async fn redis_losing_its_data_does_not_unrevoke() {
    let mut redis = RedisServer::start();
    let proxy = start(&redis, "fail_open").await;
    let t = token("sticky", "gina", now());
    revoke(&redis, jti("sticky")).await;
    revoke(
        &redis,
        Revocation::Subject {
            id: "harry".into(),
            before: now(),
        },
    )
    .await;
    let h = token("h1", "harry", now() - 5);
    assert!(
        wait_until(DEADLINE, || async { status(&proxy, &t).await == 401 })
            .await
            .is_some()
    );

    redis.restart(); // no persistence: empty
    assert!(
        wait_until(DEADLINE, || async {
            metric(proxy.admin, r#"tokengate_revocation_reloads_total{cause="reconnect"}"#).await >= 1.0
        })
        .await
        .is_some()
    );
    assert_eq!(status(&proxy, &t).await, 401, "still refused after an empty restart");
    assert_eq!(status(&proxy, &h).await, 401);

    // FLUSHALL on a live connection: seq goes backwards, the reload merges.
    revoke(&redis, jti("after-restart")).await;
    redis.cli(&["FLUSHALL"]);
    // The periodic seq check (200 ms) sees seq go backwards and reloads.
    assert!(
        wait_until(DEADLINE, || async {
            metric_opt(proxy.admin, r#"tokengate_revocation_reloads_total{cause="reset"}"#)
                .await
                .is_some_and(|v| v >= 1.0)
        })
        .await
        .is_some()
    );
    assert_eq!(status(&proxy, &t).await, 401, "still refused after FLUSHALL");
    assert_eq!(status(&proxy, &token("after-restart", "ivy", now())).await, 401);
    assert!(metric(proxy.admin, r#"tokengate_revocation_reloads_total{cause="reset"}"#).await >= 1.0);
    assert_eq!(
        metric(proxy.admin, r#"tokengate_revocation_entries{kind="jti"}"#).await,
        2.0
    );
}

#[tokio::test]
async fn a_paused_redis_is_detected_by_timeouts_and_recovers() {
    let redis = RedisServer::start();
    let proxy = start(&redis, "fail_open").await;
    redis.pause();
    // command_timeout 300 ms + check_interval 200 ms: detected well within 2 s.
    let detected = wait_until(DEADLINE, || async {
        metric(proxy.admin, "tokengate_revocation_connected").await == 0.0
    })
    .await;
    redis.resume();
    assert!(detected.is_some(), "a hung Redis is noticed without a closed socket");
    assert!(
        wait_until(DEADLINE, || async {
            metric(proxy.admin, "tokengate_revocation_connected").await == 1.0
        })
        .await
        .is_some()
    );
    let t = token("after-pause", "jack", now());
    revoke(&redis, jti("after-pause")).await;
    assert!(
        wait_until(DEADLINE, || async { status(&proxy, &t).await == 401 })
            .await
            .is_some()
    );
}

#[tokio::test]
async fn a_malformed_message_is_counted_ignored_and_triggers_a_reload() {
    let redis = RedisServer::start();
    let proxy = start(&redis, "fail_open").await;
    redis.cli(&["PUBLISH", "tokengate:revocations", "{not json"]);
    assert!(
        wait_until(DEADLINE, || async {
            metric(
                proxy.admin,
                r#"tokengate_revocation_messages_total{result="malformed"}"#,
            )
            .await
                == 1.0
        })
        .await
        .is_some()
    );
    assert!(metric(proxy.admin, r#"tokengate_revocation_reloads_total{cause="malformed"}"#).await >= 1.0);
    let t = token("fine", "kate", now());
    assert_eq!(status(&proxy, &t).await, 200);
    revoke(&redis, jti("fine")).await;
    assert!(
        wait_until(DEADLINE, || async { status(&proxy, &t).await == 401 })
            .await
            .is_some()
    );
}

#[tokio::test]
async fn a_seq_gap_triggers_a_reload() {
    let redis = RedisServer::start();
    let proxy = start(&redis, "fail_open").await;
    // An issuer bypassing the script: the set and seq move, the message skips.
    redis.cli(&["ZADD", "{tokengate}:revoked:jti", &(now() + 300).to_string(), "skipped"]);
    redis.cli(&["SET", "{tokengate}:seq", "5"]);
    redis.cli(&[
        "PUBLISH",
        "tokengate:revocations",
        r#"{"seq": 6, "kind": "jti", "id": "six", "exp": 4102444800}"#,
    ]);
    let t = token("skipped", "liam", now());
    assert!(
        wait_until(DEADLINE, || async { status(&proxy, &t).await == 401 })
            .await
            .is_some()
    );
    assert!(metric(proxy.admin, r#"tokengate_revocation_messages_total{result="gap"}"#).await >= 1.0);
}

#[tokio::test]
async fn a_hundred_thousand_revocations_at_start_up_are_all_enforced() {
    let _heavy = heavy().await;
    let redis = RedisServer::start();
    let mut conn = redis.conn().await;
    let exp = now() + 3600;
    for chunk in 0..10 {
        let mut cmd = ::redis::cmd("ZADD");
        cmd.arg("{tokengate}:revoked:jti");
        for i in chunk * 10_000..(chunk + 1) * 10_000 {
            cmd.arg(exp).arg(format!("bulk-{i}"));
        }
        let _: i64 = cmd.query_async(&mut conn).await.unwrap();
    }
    let _: () = ::redis::cmd("SET")
        .arg("{tokengate}:seq")
        .arg(100_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    let proxy = start(&redis, "fail_closed").await;
    assert_eq!(
        metric(proxy.admin, r#"tokengate_revocation_entries{kind="jti"}"#).await,
        100_000.0
    );
    for i in [0, 1, 4_999, 50_000, 77_777, 99_998, 99_999] {
        assert_eq!(
            status(&proxy, &token(&format!("bulk-{i}"), "m", now())).await,
            401,
            "bulk-{i}"
        );
    }
    assert_eq!(status(&proxy, &token("bulk-100000", "m", now())).await, 200);
}

#[tokio::test]
async fn a_load_racing_with_prunes_skips_no_live_entry() {
    let _heavy = heavy().await;
    // Small pages and another sidecar pruning expired entries (a prefix of low
    // scores) while this proxy pages through the set: every live entry, and
    // one revoked "for ever" (+inf), must still reach the mirror.
    let redis = RedisServer::start();
    let mut conn = redis.conn().await;
    let (expired, live): (i64, i64) = (30_000, 20_000);
    for (range, base) in [(0..expired, now() - 100_000), (expired..expired + live, now() + 3_600)] {
        let mut cmd = ::redis::cmd("ZADD");
        cmd.arg("{tokengate}:revoked:jti");
        for i in range {
            cmd.arg(base + i).arg(format!("e-{i}"));
        }
        let _: i64 = cmd.query_async(&mut conn).await.unwrap();
    }
    let _: i64 = ::redis::cmd("ZADD")
        .arg("{tokengate}:revoked:jti")
        .arg("+inf")
        .arg("for-ever")
        .query_async(&mut conn)
        .await
        .unwrap();
    let pruner = tokio::spawn(async move {
        let mut removed = 0;
        while removed < expired {
            let n: i64 = ::redis::cmd("ZREMRANGEBYRANK")
                .arg("{tokengate}:revoked:jti")
                .arg(0)
                .arg(49)
                .query_async(&mut conn)
                .await
                .unwrap();
            removed += n;
        }
    });
    let cfg =
        config(&redis, "fail_closed").replace("check_interval: 200ms", "check_interval: 200ms\n    page_size: 100");
    let proxy = TestProxy::start_with(&cfg, start_echo().await).await;
    pruner.await.unwrap();
    wait_until(DEADLINE, || async {
        get(&format!("http://{}/readyz", proxy.admin), &[]).await.status == 200
    })
    .await
    .expect("ready after the first load");
    assert_eq!(
        metric(proxy.admin, r#"tokengate_revocation_entries{kind="jti"}"#).await,
        (live + 1) as f64
    );
    for i in [expired, expired + 1, expired + 9_999, expired + live - 1] {
        assert_eq!(
            status(&proxy, &token(&format!("e-{i}"), "m", now())).await,
            401,
            "e-{i}"
        );
    }
    assert_eq!(status(&proxy, &token("for-ever", "m", now())).await, 401);
}

#[tokio::test]
async fn the_admin_port_revokes_for_loopback_callers() {
    let redis = RedisServer::start();
    let proxy = start(&redis, "fail_open").await;
    let t = token("via-admin", "nina", now());
    let admin = format!("http://{}/revoke", proxy.admin);
    let body = format!(r#"{{"jti": "via-admin", "exp": {}}}"#, now() + 300);
    let req = http::Request::post(&admin)
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let reply = send(&http1(), req).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        wait_until(DEADLINE, || async { status(&proxy, &t).await == 401 })
            .await
            .is_some()
    );
    let bad = http::Request::post(&admin)
        .body(http_body_util::Full::new(bytes::Bytes::from("{}")))
        .unwrap();
    assert_eq!(send(&http1(), bad).await.status, 400);
}
