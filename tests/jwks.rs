//! Keys from identity providers: a JWKS server inside the test (real HTTP on
//! port 0) that rotates keys, fails, comes up late and sets max-age; and the
//! verified-token cache, which must never outlive a token's `exp`.

mod support;

use std::time::{Duration, Instant};

use http::StatusCode;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use support::jwks::{JwksServer, jwk};
use support::*;

const IDP: &str = "https://idp.test/";

/// A config whose only issuer is `IDP`, keyed by the JWKS at `url`.
fn config(url: &str, jwks_tuning: &str) -> String {
    format!(
        r#"
listen: "127.0.0.1:0"
admin: {{ listen: "127.0.0.1:0" }}
upstream: {{ url: "http://{{upstream}}" }}
auth:
  leeway: 0s
  issuers:
    - issuer: "{IDP}"
      audiences: ["app"]
      algorithms: [ES256, EdDSA, RS256]
      jwks_url: "{url}"
      jwks: {{ {jwks_tuning} }}
"#
    )
}

fn idp_claims(sub: &str) -> Value {
    json!({"iss": IDP, "aud": "app", "sub": sub, "iat": now(), "exp": now() + 300})
}

fn token(alg: Algorithm, kid: &str, claims: &Value) -> String {
    sign_with(alg, Some(kid), claims, &signing_key(alg))
}

async fn status(proxy: &TestProxy, token: &str) -> StatusCode {
    get_with_token(&proxy.url("/x"), token).await.status
}

async fn ready(proxy: &TestProxy) -> bool {
    get(&format!("http://{}/readyz", proxy.admin), &[]).await.status == 200
}

async fn wait_ready(proxy: &TestProxy, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready(proxy).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_rotated_key_is_accepted_without_restart_and_the_old_one_dropped() {
    let idp = JwksServer::start(vec![jwk(Algorithm::ES256, "old")]).await;
    let proxy = TestProxy::start_with(&config(&idp.url(), "unknown_kid_cooldown: 100ms"), start_echo().await).await;
    assert!(wait_ready(&proxy, DEADLINE).await);
    let old = token(Algorithm::ES256, "old", &idp_claims("u"));
    assert_eq!(status(&proxy, &old).await, 200);
    assert_eq!(status(&proxy, &old).await, 200, "second time from the cache");

    idp.set_keys(vec![jwk(Algorithm::EdDSA, "new")]);
    let new = token(Algorithm::EdDSA, "new", &idp_claims("u"));
    // The first request with the new kid waits for the one refetch it starts.
    assert_eq!(status(&proxy, &new).await, 200);
    // The old key left the set: its cached token is verified again and refused.
    assert_eq!(status(&proxy, &old).await, 401);
    assert_eq!(
        metric(proxy.admin, r#"tokengate_jwks_keys{issuer="https://idp.test/"}"#).await,
        1.0
    );
    assert!(
        metric(
            proxy.admin,
            r#"tokengate_jwks_fetches_total{issuer="https://idp.test/",result="ok"}"#
        )
        .await
            >= 2.0
    );
}

#[tokio::test]
async fn a_flood_of_unknown_kids_causes_at_most_the_rate_limited_fetches() {
    let idp = JwksServer::start(vec![jwk(Algorithm::ES256, "k1")]).await;
    let proxy = TestProxy::start_with(&config(&idp.url(), "unknown_kid_cooldown: 10s"), start_echo().await).await;
    assert!(wait_ready(&proxy, DEADLINE).await);
    let after_start = idp.hits();
    let started = Instant::now();
    let url = proxy.url("/x");
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..20 {
        let url = url.clone();
        tasks.spawn(async move {
            let mut refused = 0;
            for i in 0..50 {
                let kid = format!("random-{worker}-{i}-{}", rand_suffix());
                let t = token(Algorithm::ES256, &kid, &idp_claims("flood"));
                if get_with_token(&url, &t).await.status == 401 {
                    refused += 1;
                }
            }
            refused
        });
    }
    let refused: usize = tasks.join_all().await.into_iter().sum();
    assert_eq!(refused, 1_000, "every random kid is refused");
    let elapsed = started.elapsed();
    let allowed = 1 + (elapsed.as_secs() / 10) as usize;
    let fetched = idp.hits() - after_start;
    assert!(
        fetched <= allowed,
        "{fetched} fetches for 1,000 unknown kids in {elapsed:?} (allowed {allowed})"
    );
    // A known kid never waited for any of it.
    let good = token(Algorithm::ES256, "k1", &idp_claims("u"));
    assert_eq!(status(&proxy, &good).await, 200);
}

fn rand_suffix() -> u64 {
    use std::hash::BuildHasher;
    std::hash::RandomState::new().hash_one(Instant::now())
}

#[tokio::test]
async fn a_provider_down_at_start_up_means_not_ready_until_it_answers() {
    // Reserve a port, release it, and bring the provider up there later.
    let addr = closed_port().await;
    let url = format!("http://{addr}/jwks.json");
    let proxy = TestProxy::start_with(&config(&url, "min_refresh_interval: 200ms"), start_echo().await).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!ready(&proxy).await, "not ready without keys");
    let body = get(&format!("http://{}/readyz", proxy.admin), &[]).await.body;
    assert!(body.contains("jwks"), "{body}");
    let t = token(Algorithm::ES256, "k1", &idp_claims("u"));
    assert_eq!(status(&proxy, &t).await, 401);

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let _idp = JwksServer::serve_on(listener, vec![jwk(Algorithm::ES256, "k1")]);
    assert!(wait_ready(&proxy, DEADLINE).await, "ready once the provider answers");
    assert_eq!(status(&proxy, &t).await, 200);
}

#[tokio::test]
async fn a_provider_failing_later_keeps_the_last_good_keys() {
    let idp = JwksServer::start(vec![jwk(Algorithm::RS256, "r")]).await;
    idp.set_max_age(Some(0));
    let proxy = TestProxy::start_with(
        &config(&idp.url(), "min_refresh_interval: 100ms, refresh_interval: 100ms"),
        start_echo().await,
    )
    .await;
    assert!(wait_ready(&proxy, DEADLINE).await);
    idp.set_failing(Some(StatusCode::SERVICE_UNAVAILABLE));
    let hits = idp.hits();
    let counted = wait_until(DEADLINE, || async {
        idp.hits() > hits
            && metric_opt(
                proxy.admin,
                r#"tokengate_jwks_fetches_total{issuer="https://idp.test/",result="status"}"#,
            )
            .await
            .is_some_and(|v| v >= 1.0)
    })
    .await;
    assert!(counted.is_some(), "the proxy kept trying, and counted the failures");
    // Fresh tokens (not cached) signed with the known key still verify.
    for i in 0..3 {
        let t = token(Algorithm::RS256, "r", &idp_claims(&format!("u{i}")));
        assert_eq!(status(&proxy, &t).await, 200);
    }
    assert!(ready(&proxy).await, "still ready on the last good set");
    // A provider that answers garbage is no better: the set is kept.
    idp.set_failing(None);
    idp.set_keys(vec![json!({"kty": "oct", "k": "c2VjcmV0c2VjcmV0", "kid": "r"})]);
    let invalid = wait_until(DEADLINE, || async {
        metric_opt(
            proxy.admin,
            r#"tokengate_jwks_fetches_total{issuer="https://idp.test/",result="invalid"}"#,
        )
        .await
        .is_some_and(|v| v >= 1.0)
    })
    .await;
    assert!(invalid.is_some(), "the garbage set was fetched and refused");
    let t = token(Algorithm::RS256, "r", &idp_claims("after-garbage"));
    assert_eq!(status(&proxy, &t).await, 200);
}

#[tokio::test]
async fn max_age_sets_the_refresh_period_within_bounds() {
    let idp = JwksServer::start(vec![jwk(Algorithm::ES256, "k")]).await;
    idp.set_max_age(Some(1));
    let proxy = TestProxy::start_with(
        &config(&idp.url(), "refresh_interval: 1h, min_refresh_interval: 100ms"),
        start_echo().await,
    )
    .await;
    assert!(wait_ready(&proxy, DEADLINE).await);
    // Three more fetches at max-age=1 take at least ~2 s (three 1 s periods,
    // the first of which may have begun before `start`), and arrive well
    // before the configured hour.
    let start = idp.hits();
    let began = Instant::now();
    let three = wait_until(DEADLINE, || async { idp.hits() >= start + 3 }).await;
    assert!(three.is_some(), "max-age=1 refreshes every second, not hourly");
    assert!(
        began.elapsed() >= Duration::from_millis(1900),
        "not faster than max-age: {:?}",
        began.elapsed()
    );

    // Without max-age the configured hour applies: nothing more is fetched.
    let quiet = JwksServer::start(vec![jwk(Algorithm::ES256, "k")]).await;
    let proxy2 = TestProxy::start_with(
        &config(&quiet.url(), "refresh_interval: 1h, min_refresh_interval: 100ms"),
        start_echo().await,
    )
    .await;
    assert!(wait_ready(&proxy2, DEADLINE).await);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(quiet.hits(), 1);
    drop(proxy);
}

#[tokio::test]
async fn each_issuer_verifies_only_with_its_own_keys() {
    let a = JwksServer::start(vec![jwk(Algorithm::ES256, "a")]).await;
    let b = JwksServer::start(vec![jwk(Algorithm::EdDSA, "b")]).await;
    let yaml = format!(
        r#"
listen: "127.0.0.1:0"
admin: {{ listen: "127.0.0.1:0" }}
upstream: {{ url: "http://{{upstream}}" }}
auth:
  issuers:
    - {{ issuer: "https://a.test/", audiences: [app-a], jwks_url: "{}" }}
    - {{ issuer: "https://b.test/", audiences: [app-b], jwks_url: "{}", jwks: {{ unknown_kid_cooldown: 1h }} }}
"#,
        a.url(),
        b.url()
    );
    let proxy = TestProxy::start_with(&yaml, start_echo().await).await;
    assert!(wait_ready(&proxy, DEADLINE).await);
    let claims = |iss: &str, aud: &str| json!({"iss": iss, "aud": aud, "sub": "s", "exp": now() + 60});
    let ok_a = token(Algorithm::ES256, "a", &claims("https://a.test/", "app-a"));
    let ok_b = token(Algorithm::EdDSA, "b", &claims("https://b.test/", "app-b"));
    assert_eq!(status(&proxy, &ok_a).await, 200);
    assert_eq!(status(&proxy, &ok_b).await, 200);
    // B's key, claiming to be A: A's set has no kid "b".
    let forged = token(Algorithm::EdDSA, "b", &claims("https://a.test/", "app-a"));
    assert_eq!(status(&proxy, &forged).await, 401);
    // A's audience on B's token.
    let wrong_aud = token(Algorithm::EdDSA, "b", &claims("https://b.test/", "app-a"));
    assert_eq!(status(&proxy, &wrong_aud).await, 401);
    let r = reasons(proxy.admin).await;
    assert_eq!(r.get("unknown_kid"), Some(&1.0), "{r:?}");
    assert_eq!(r.get("wrong_audience"), Some(&1.0), "{r:?}");
}

#[tokio::test]
async fn the_cache_skips_verification_but_never_accepts_an_expired_token() {
    let yaml = base_config().replace("leeway: 30s", "leeway: 0s");
    let proxy = TestProxy::start_with(&yaml, start_echo().await).await;
    let mut c = claims("short");
    c["exp"] = json!(now() + 2);
    let t = sign(Algorithm::ES256, &c);
    for _ in 0..3 {
        assert_eq!(get_with_token(&proxy.url("/x"), &t).await.status, 200);
    }
    assert_eq!(metric(proxy.admin, "tokengate_verify_cache_misses_total").await, 1.0);
    assert_eq!(metric(proxy.admin, "tokengate_verify_cache_hits_total").await, 2.0);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = 200;
    while Instant::now() < deadline {
        last = get_with_token(&proxy.url("/x"), &t).await.status.as_u16();
        if now() >= c["exp"].as_i64().unwrap() {
            break;
        }
        assert_eq!(last, 200, "refused before exp");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // From the second of `exp` on, every answer is 401, cached or not.
    for _ in 0..3 {
        let reply = get_with_token(&proxy.url("/x"), &t).await;
        assert_eq!(reply.status, 401, "accepted after exp (last {last})");
    }
    assert!(reasons(proxy.admin).await.get("expired").copied().unwrap_or(0.0) >= 3.0);
}

#[tokio::test]
async fn the_cache_can_be_switched_off() {
    let yaml = base_config().replace(
        "  identity_headers:",
        "  verify_cache: { enabled: false }\n  identity_headers:",
    );
    let proxy = TestProxy::start_with(&yaml, start_echo().await).await;
    let t = sign(Algorithm::HS256, &claims("u"));
    for _ in 0..3 {
        assert_eq!(get_with_token(&proxy.url("/x"), &t).await.status, 200);
    }
    assert_eq!(metric(proxy.admin, "tokengate_verify_cache_hits_total").await, 0.0);
    assert_eq!(metric(proxy.admin, "tokengate_verify_cache_misses_total").await, 0.0);
}

#[tokio::test]
async fn a_jwks_file_verifies_and_a_fetched_set_reports_its_age() {
    let dir = temp_dir("jwks-file");
    std::fs::write(
        dir.join("keys.json"),
        json!({ "keys": [jwk(Algorithm::EdDSA, "file-key")] }).to_string(),
    )
    .unwrap();
    let idp = JwksServer::start(vec![jwk(Algorithm::ES256, "remote-key")]).await;
    let upstream = start_echo().await;
    let file = dir.join("tokengate.yaml");
    std::fs::write(
        &file,
        format!(
            r#"listen: "127.0.0.1:0"
admin: {{ listen: "127.0.0.1:0" }}
upstream: {{ url: "http://{upstream}" }}
auth:
  issuers:
    - {{ issuer: "{IDP}", audiences: [app], jwks_file: keys.json, jwks_url: "{}" }}
"#,
            idp.url()
        ),
    )
    .unwrap();
    let proxy = TestProxy::start_config(tokengate::Config::load(&file).unwrap(), upstream).await;
    assert!(wait_ready(&proxy, DEADLINE).await);
    let from_file = token(Algorithm::EdDSA, "file-key", &idp_claims("f"));
    let from_url = token(Algorithm::ES256, "remote-key", &idp_claims("r"));
    assert_eq!(status(&proxy, &from_file).await, 200);
    assert_eq!(status(&proxy, &from_url).await, 200);
    let age = metric(proxy.admin, r#"tokengate_jwks_age_seconds{issuer="https://idp.test/"}"#).await;
    assert!((0.0..5.0).contains(&age), "age {age}");
}

/// One rule for both sources: a key not for us (`use: enc`) is skipped from
/// a `jwks_file` and from a `jwks_url` alike, each with an info log line
/// naming the key and the reason.
#[tokio::test]
async fn skipped_keys_are_logged_with_their_reason_from_a_file_and_from_a_url() {
    let dir = temp_dir("jwks-skip-log");
    let mut enc = jwk(Algorithm::ES256, "file-enc");
    enc["use"] = "enc".into();
    std::fs::write(
        dir.join("keys.json"),
        json!({ "keys": [enc, jwk(Algorithm::EdDSA, "file-key")] }).to_string(),
    )
    .unwrap();
    let mut remote_enc = jwk(Algorithm::ES256, "url-enc");
    remote_enc["use"] = "enc".into();
    let idp = JwksServer::start(vec![remote_enc, jwk(Algorithm::ES256, "url-key")]).await;
    let file = dir.join("tokengate.yaml");
    std::fs::write(
        &file,
        format!(
            "listen: \"127.0.0.1:0\"\nadmin: {{ listen: \"127.0.0.1:0\" }}\nupstream: {{ url: \"http://127.0.0.1:9\" }}\nauth:\n  issuers:\n    - {{ issuer: \"{IDP}\", jwks_file: keys.json, jwks_url: \"{}\" }}\n",
            idp.url()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tokengate"))
        .args(["--log-format", "json", "run", "--config"])
        .arg(&file)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stderr.take().unwrap()));
    let (mut from_file, mut from_url) = (None, None);
    while from_file.is_none() || from_url.is_none() {
        let line = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .expect("both skips are logged")
            .unwrap()
            .expect("the proxy is running");
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["level"] == "INFO" && line.contains("file-enc") {
            from_file = Some(v);
        } else if v["level"] == "INFO" && line.contains("url-enc") {
            from_url = Some(v);
        }
    }
    let (from_file, from_url) = (from_file.unwrap(), from_url.unwrap());
    assert!(
        from_file["note"]
            .as_str()
            .unwrap()
            .contains("use is \"enc\", not \"sig\""),
        "{from_file}"
    );
    assert_eq!(from_url["message"], "JWKS key skipped", "{from_url}");
    assert!(
        from_url["why"].as_str().unwrap().contains("use is \"enc\""),
        "{from_url}"
    );
    child.kill().await.unwrap();
}
