//! The two session backends are one state machine: random sequences of
//! open (with and without a cap), refresh (of current, spent and unknown
//! tokens, inside and outside the reuse grace), logout, logout-all and list
//! run on the memory store and on a real redis-server, and every outcome must
//! be the same.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use support::redis::RedisServer;
use support::*;
use tokengate::config::RedisConfig;
use tokengate::config::RevocationBackend;
use tokengate::session::store::{NewSession, Opened, Refreshed, Rotation, Store, TokenHash};

#[derive(Debug, Clone)]
enum Op {
    /// Open a session for subject `user` with an optional cap.
    Open { user: u8, cap: Option<u32> },
    /// Refresh the `pick`-th token ever issued (current or spent), or an unknown one.
    Refresh { pick: usize, unknown: bool },
    /// Log out the `pick`-th session ever opened.
    End { pick: usize },
    /// Log out every session of `user`.
    EndSubject { user: u8 },
    /// List `user`'s sessions.
    List { user: u8 },
    /// Let time pass (milliseconds), to step outside the reuse grace.
    Wait { ms: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..3, prop::option::of(1u32..3)).prop_map(|(user, cap)| Op::Open { user, cap }),
        4 => (0usize..64, prop::bool::weighted(0.1)).prop_map(|(pick, unknown)| Op::Refresh { pick, unknown }),
        1 => (0usize..64).prop_map(|pick| Op::End { pick }),
        1 => (0u8..3).prop_map(|user| Op::EndSubject { user }),
        1 => (0u8..3).prop_map(|user| Op::List { user }),
        1 => (0u16..1500).prop_map(|ms| Op::Wait { ms }),
    ]
}

fn hash(n: u64) -> TokenHash {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&n.to_le_bytes());
    h[31] = 0x5a;
    h
}

/// Runs `ops` on `store` from `start` (unix seconds, the same for both
/// backends) and describes every outcome as text.
async fn run(store: &Store, ops: &[Op], prefix: &str, start: i64) -> Vec<String> {
    static IDS: AtomicU64 = AtomicU64::new(1);
    let base_ms = start * 1000;
    let exp = start + 3600;
    let mut clock = 0i64;
    let mut tokens: Vec<TokenHash> = Vec::new();
    let mut sessions: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        clock += 1;
        let now_ms = base_ms + clock;
        let line = match op {
            Op::Open { user, cap } => {
                let sid = format!("{prefix}-s{i}");
                let token = hash(IDS.fetch_add(1, Ordering::Relaxed));
                let opened: Opened = store
                    .open(&NewSession {
                        sid: &sid,
                        sub: &format!("u{user}"),
                        claims: "{}",
                        token,
                        token_exp: exp,
                        now_ms,
                        access_exp: exp - 1800 + i as i64,
                        cap: *cap,
                    })
                    .await
                    .unwrap();
                tokens.push(token);
                sessions.push(sid);
                format!("open -> evicted {:?}", opened.evicted)
            }
            Op::Refresh { pick, unknown } => {
                let presented = if *unknown || tokens.is_empty() {
                    hash(u64::MAX - i as u64)
                } else {
                    tokens[pick % tokens.len()]
                };
                let next = hash(IDS.fetch_add(1, Ordering::Relaxed));
                let result = store
                    .refresh(&Rotation {
                        presented,
                        next,
                        next_exp: exp,
                        now_ms,
                        access_exp: exp - 900 + i as i64,
                        grace_ms: 1000,
                    })
                    .await
                    .unwrap();
                tokens.push(next);
                match result {
                    // The logout-all cut-off is the mirror's business for the
                    // memory store (the session service asks it), the script's
                    // for Redis: compared in tests/sessions.rs, not here.
                    Refreshed::Rotated { sid, sub, claims, .. } => format!("refresh -> rotated {sid} {sub} {claims}"),
                    other => format!("refresh -> {other:?}"),
                }
            }
            Op::End { pick } => {
                let sid = sessions.get(pick % sessions.len().max(1)).cloned().unwrap_or_default();
                let ended = store.end(&sid, 0).await.unwrap();
                format!("end -> {ended:?}")
            }
            Op::EndSubject { user } => {
                // The cut-off may differ by design (see the comment above).
                let (n, _cutoff) = store.end_subject(&format!("u{user}"), now_ms / 1000).await.unwrap();
                format!("end subject -> {n}")
            }
            Op::List { user } => {
                let list = store.list(&format!("u{user}"), now_ms / 1000).await.unwrap();
                let sids: Vec<&str> = list.iter().map(|s| s.sid.as_str()).collect();
                format!("list -> {sids:?}")
            }
            Op::Wait { ms } => {
                clock += i64::from(*ms);
                "wait".to_owned()
            }
        };
        // Session ids carry the run's prefix; compare without it.
        out.push(line.replace(prefix, "S"));
    }
    out
}

/// Random sequences of operations on both stores; one redis-server for
/// every case (flushed between cases), owned by the test so that it is
/// stopped when the test ends (a `static` is never dropped, and its server
/// would outlive the run).
#[test]
fn memory_and_redis_give_the_same_outcomes() {
    let redis = RedisServer::start();
    let target = redis_target(&redis);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let run_id = AtomicU64::new(0);
    let result = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
        rt.block_on(async {
            redis.cli(&["FLUSHALL"]);
            let prefix = format!("r{}", run_id.fetch_add(1, Ordering::Relaxed));
            let start = now();
            let memory = run(&Store::memory(), &ops, &prefix, start).await;
            let remote = run(&Store::redis(&target), &ops, &prefix, start).await;
            for (i, (m, r)) in memory.iter().zip(&remote).enumerate() {
                prop_assert_eq!(
                    m,
                    r,
                    "op {} {:?}\nmemory: {:#?}\nredis:  {:#?}",
                    i,
                    ops[i],
                    memory,
                    remote
                );
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The session store's Redis settings for `server`.
fn redis_target(server: &RedisServer) -> RedisConfig {
    let yaml = format!(
        "{}revocation:\n  backend: redis\n  redis: {{ url: \"{}\" }}\n",
        base_config(),
        server.url()
    );
    let config = load(&yaml, "127.0.0.1:1".parse().unwrap());
    let RevocationBackend::Redis(redis) = &config.revocation.backend else {
        panic!("a redis backend");
    };
    (**redis).clone()
}
