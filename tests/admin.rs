//! The admin listener: health, readiness, and metrics valid for promtool.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use jsonwebtoken::Algorithm;
use support::*;

#[tokio::test]
async fn health_and_readiness() {
    let proxy = TestProxy::start().await;
    let admin = |p: &str| format!("http://{}{p}", proxy.admin);
    assert_eq!(get(&admin("/healthz"), &[]).await.status, 200);
    let ready = get(&admin("/readyz"), &[]).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body, "ready\n");
    assert_eq!(get(&admin("/nope"), &[]).await.status, 404);
    // The admin port is not the proxy: no token checks, no forwarding.
    assert_eq!(get(&proxy.url("/healthz"), &[]).await.echo()["path"], "/healthz");
}

#[tokio::test]
async fn metrics_count_outcomes_and_pass_promtool() {
    let proxy = TestProxy::start().await;
    let token = sign(Algorithm::RS256, &claims("alice"));
    for _ in 0..3 {
        assert_eq!(get_with_token(&proxy.url("/x"), &token).await.status, 200);
    }
    assert_eq!(get(&proxy.url("/x"), &[]).await.status, 401);
    assert_eq!(get(&proxy.url("/public/x"), &[]).await.status, 200);

    let text = get(&format!("http://{}/metrics", proxy.admin), &[]).await.body;
    let count = |s: &str| parse_metric(&text, s);
    assert_eq!(
        count(r#"tokengate_requests_total{outcome="allowed",reason="authorized"}"#),
        3.0
    );
    assert_eq!(
        count(r#"tokengate_requests_total{outcome="allowed",reason="public"}"#),
        1.0
    );
    assert_eq!(
        count(r#"tokengate_requests_total{outcome="rejected",reason="missing_token"}"#),
        1.0
    );
    assert_eq!(
        count(r#"tokengate_request_duration_seconds_count{outcome="allowed"}"#),
        4.0
    );
    assert_eq!(count("tokengate_verify_duration_seconds_count"), 3.0);
    assert_eq!(
        count(&format!(
            r#"tokengate_build_info{{version="{}"}}"#,
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    assert!(count("process_resident_memory_bytes") > 0.0);
    for family in ["tokengate_upstream_errors_total", "tokengate_connections_open"] {
        assert!(text.contains(family), "{family} missing");
    }
    // Nothing token-shaped ever appears in the exposition.
    assert!(!text.contains(token.split('.').nth(1).unwrap()));

    let mut promtool = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("promtool is required (apt-get install prometheus; scripts/test.sh installs it): {e}"),
    };
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
