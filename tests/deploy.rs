//! The files in deploy/ against the real proxy: the configs the Kubernetes
//! and compose examples ship serve, mint and revoke as their walk-throughs
//! say; every metric the Grafana dashboard and the alert rules query is one
//! tokengate exports; and a real Prometheus scrapes the admin port.
//! (scripts/check-deploy.sh validates the same files with schema tools.)

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use http::StatusCode;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use support::jwks::{JwksServer, jwk};
use support::redis::RedisServer;
use support::*;
use tokengate::Config;
use tokengate::config::FileBase;

const BIN: &str = env!("CARGO_BIN_EXE_tokengate");

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(path)
}

/// `text` with each `(from, to)` replaced, failing if `from` is absent, so a
/// change to the shipped file cannot silently leave the test on old values.
fn substitute(mut text: String, pairs: &[(&str, &str)]) -> String {
    for (from, to) in pairs {
        assert!(text.contains(from), "the shipped config no longer contains {from}");
        text = text.replace(from, to);
    }
    text
}

async fn ready(proxy: &TestProxy) {
    let up = wait_until(DEADLINE, || async {
        get(&format!("http://{}/readyz", proxy.admin), &[]).await.status == 200
    })
    .await;
    assert!(up.is_some(), "proxy ready");
}

/// deploy/kubernetes/components/tokengate/tokengate.yaml, laid out as the
/// projected volume lays it out in the pod (keys/issuer.pub.pem and
/// keys/redis-password beside it), against a Redis that requires the
/// password: ready, tokens of the configured issuer reach the app with the
/// identity headers, everything else is refused.
#[tokio::test]
async fn kubernetes_config_serves_from_its_pod_layout() {
    let component = deploy("kubernetes/components/tokengate");
    let dir = temp_dir("k8s-layout");
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    // The key material the README says to replace: the fixture RSA key.
    std::fs::copy(fixtures().join("keys/rsa.pub.pem"), dir.join("keys/issuer.pub.pem")).unwrap();
    // As a Secret file: with a trailing newline, which is not the password.
    let password = "s3cret-redis-password";
    std::fs::write(dir.join("keys/redis-password"), format!("{password}\n")).unwrap();
    let redis = RedisServer::start();
    redis.cli(&["CONFIG", "SET", "requirepass", password]);

    let upstream = start_echo().await;
    let text = std::fs::read_to_string(component.join("tokengate.yaml")).unwrap();
    let text = substitute(
        text,
        &[
            ("http://127.0.0.1:3000", &format!("http://{upstream}")),
            ("redis://tokengate-redis:6379/0", &redis.url()),
        ],
    );
    let config = Config::from_yaml_str(&text, FileBase::Dir(&dir), "k8s tokengate.yaml").unwrap();
    let proxy = TestProxy::start_config(config, upstream).await;
    ready(&proxy).await;

    let claims = json!({
        "iss": "https://idp.example.com/", "aud": "example-app", "sub": "alice",
        "email": "alice@example.com", "iat": now(), "exp": now() + 300,
    });
    let token = sign_with(
        Algorithm::RS256,
        Some("issuer-1"),
        &claims,
        &signing_key(Algorithm::RS256),
    );
    let ok = get_with_token(&proxy.url("/orders"), &token).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.upstream_header("x-auth-subject").as_deref(), Some("alice"));
    assert_eq!(ok.upstream_header("x-auth-email").as_deref(), Some("alice@example.com"));

    assert_eq!(get(&proxy.url("/healthz"), &[]).await.status, StatusCode::OK);
    assert_eq!(get(&proxy.url("/orders"), &[]).await.status, StatusCode::UNAUTHORIZED);
    let wrong_aud = json!({"iss": "https://idp.example.com/", "aud": "other", "sub": "a", "exp": now() + 300});
    let t = sign_with(
        Algorithm::RS256,
        Some("issuer-1"),
        &wrong_aud,
        &signing_key(Algorithm::RS256),
    );
    assert_eq!(
        get_with_token(&proxy.url("/orders"), &t).await.status,
        StatusCode::UNAUTHORIZED
    );

    // The mirror is fed by the password-protected Redis.
    assert_eq!(metric(proxy.admin, "tokengate_revocation_connected").await, 1.0);
    proxy.stop().await;
}

fn run_bin(args: &[&str], config: &Path) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tokengate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The compose walk-through (deploy/compose/README.md) without Docker: its
/// tokengate.yaml in front of an app, with a generated secret and a real
/// Redis; `token mint` and `revoke` run as the README runs them.
#[tokio::test]
async fn compose_walkthrough_mints_calls_and_revokes() {
    let dir = temp_dir("compose-walkthrough");
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    // Step 1: `openssl rand -hex 32 > secrets/hs256.key`.
    let secret: String = (0..32).map(|i| format!("{:02x}", (i * 37 + 11) % 256)).collect();
    std::fs::write(dir.join("secrets/hs256.key"), format!("{secret}\n")).unwrap();
    let redis = RedisServer::start();
    let upstream = start_echo().await;
    let text = std::fs::read_to_string(deploy("compose/tokengate.yaml")).unwrap();
    let text = substitute(
        text,
        &[
            ("http://app:3000", &format!("http://{upstream}")),
            ("redis://redis:6379/0", &redis.url()),
        ],
    );
    let file = dir.join("tokengate.yaml");
    std::fs::write(&file, &text).unwrap();
    let proxy = TestProxy::start_config(Config::load(&file).unwrap(), upstream).await;
    ready(&proxy).await;

    // Step 2.
    assert_eq!(get(&proxy.url("/health"), &[]).await.status, StatusCode::OK);
    let refused = get(&proxy.url("/"), &[]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.www_authenticate().starts_with("Bearer realm=\"tokengate\""));

    // Step 3.
    let token = run_bin(
        &["token", "mint", "--sub", "alice", "--scope", "read", "--ttl", "10m"],
        &file,
    );
    let ok = get_with_token(&proxy.url("/orders"), &token).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.upstream_header("x-auth-subject").as_deref(), Some("alice"));
    assert_eq!(ok.upstream_header("x-auth-scope").as_deref(), Some("read"));
    assert_eq!(
        get_with_token(&proxy.url("/admin/"), &token).await.status,
        StatusCode::FORBIDDEN
    );

    // Step 4.
    run_bin(&["revoke", "--sub", "alice"], &file);
    let revoked = wait_until(DEADLINE, || async {
        get_with_token(&proxy.url("/orders"), &token).await.status == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(revoked.is_some(), "revocation reaches the proxy");

    // Step 5: the series the README queries.
    let counts = reasons(proxy.admin).await;
    for reason in ["authorized", "missing_token", "insufficient_scope", "revoked"] {
        assert!(
            counts.get(reason).copied().unwrap_or(0.0) >= 1.0,
            "{reason}: {counts:?}"
        );
    }
    proxy.stop().await;
}

/// Metric families and the label values each exports, from /metrics.
fn exported(text: &str) -> HashMap<String, Vec<HashMap<String, String>>> {
    let mut families: HashMap<String, Vec<HashMap<String, String>>> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            families.entry(name.to_owned()).or_default();
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    families.entry(format!("{name}{suffix}")).or_default();
                }
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap();
        let labels = match line[name_end..].strip_prefix('{') {
            Some(rest) => matchers(&rest[..rest.find('}').unwrap()])
                .into_iter()
                .map(|m| (m.label, m.value))
                .collect(),
            None => HashMap::new(),
        };
        families.entry(line[..name_end].to_owned()).or_default().push(labels);
    }
    families
}

/// One `label op "value"` of a selector.
struct Matcher {
    label: String,
    op: String,
    value: String,
}

/// The matchers of a label list (`a="x", b=~"y|z"`).
fn matchers(list: &str) -> Vec<Matcher> {
    let mut out = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let name_end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap();
        let name = rest[..name_end].to_owned();
        rest = rest[name_end..].trim_start();
        let op_end = rest.find('"').unwrap();
        let op = rest[..op_end].trim().to_owned();
        rest = &rest[op_end + 1..];
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let close = loop {
            match chars.next().unwrap() {
                (_, '\\') => value.push(chars.next().unwrap().1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        out.push(Matcher { label: name, op, value });
        rest = rest[close + 1..].trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// Every `tokengate_*`/`process_*` selector in a PromQL expression: the
/// metric name and its label matchers.
fn selectors(expr: &str) -> Vec<(String, Vec<Matcher>)> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < expr.len() {
        let at = &expr[i..];
        let starts = (at.starts_with("tokengate_") || at.starts_with("process_"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if !starts {
            i += 1;
            continue;
        }
        let end = at
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(at.len());
        let name = at[..end].to_owned();
        let list = at[end..]
            .strip_prefix('{')
            .map(|r| matchers(&r[..r.find('}').unwrap()]))
            .unwrap_or_default();
        out.push((name, list));
        i += end;
    }
    out
}

/// Labels the scrape target adds (Kubernetes, Prometheus), not tokengate.
const TARGET_LABELS: [&str; 5] = ["namespace", "pod", "instance", "job", "container"];

/// Checks each selector against the families: the name exists, and every
/// literal label value an equality or alternation matcher names is one some
/// series of that family has.
fn check_selectors(
    source: &str,
    exprs: &[String],
    families: &HashMap<String, Vec<HashMap<String, String>>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for expr in exprs {
        let found = selectors(expr);
        if found.is_empty() {
            problems.push(format!("{source}: no tokengate metric found in `{expr}`"));
        }
        for (name, list) in found {
            let Some(series) = families.get(&name) else {
                problems.push(format!("{source}: {name} is not exported"));
                continue;
            };
            for Matcher { label, op, value } in list {
                if TARGET_LABELS.contains(&label.as_str()) || value.contains('$') || op.starts_with('!') {
                    continue;
                }
                let wanted: Vec<&str> = if op == "=~" {
                    value.split('|').collect()
                } else {
                    vec![value.as_str()]
                };
                for w in wanted {
                    if !series.iter().any(|s| s.get(&label).map(String::as_str) == Some(w)) {
                        problems.push(format!("{source}: no {name} series has {label}=\"{w}\""));
                    }
                }
            }
        }
    }
    problems
}

/// Every metric (and label value) the Grafana dashboard and the alert rules
/// query exists in /metrics of a tokengate with every optional part on
/// (a JWKS issuer, sessions), once a JWKS fetch has succeeded.
#[tokio::test]
async fn dashboard_and_alerts_query_exported_metrics() {
    let idp = JwksServer::start(vec![jwk(Algorithm::ES256, "k1")]).await;
    let config = format!(
        r#"
listen: "127.0.0.1:0"
admin: {{ listen: "127.0.0.1:0" }}
upstream: {{ url: "http://{{upstream}}" }}
auth:
  issuers:
    - issuer: "https://issuer.test/"
      keys:
        - {{ kid: HS256, algorithm: HS256, secret_file: keys/hs32.secret }}
    - issuer: "https://idp.test/"
      jwks_url: "{}"
sessions:
  signing_key: {{ private_key_file: keys/ec256.key.pem }}
  control: {{ listen: "127.0.0.1:0" }}
"#,
        idp.url()
    );
    let proxy = TestProxy::start_with(&config, start_echo().await).await;
    ready(&proxy).await;
    let text = get(&format!("http://{}/metrics", proxy.admin), &[]).await.body;
    let families = exported(&text);
    assert!(
        families.contains_key("tokengate_jwks_fetches_total"),
        "JWKS issuer configured"
    );
    assert!(
        families.contains_key("tokengate_sessions_opened_total"),
        "sessions configured"
    );

    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(deploy("grafana/tokengate.json")).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let exprs: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(exprs.len() >= 20, "dashboard queries: {}", exprs.len());
    let mut problems = check_selectors("deploy/grafana/tokengate.json", &exprs, &families);

    let rules: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(deploy("kubernetes/monitoring/prometheusrule.yaml")).unwrap())
            .unwrap();
    let rule_exprs: Vec<String> = rules["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .map(|r| r["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(rule_exprs.len() >= 5, "alert rules: {}", rule_exprs.len());
    problems.extend(check_selectors("prometheusrule.yaml", &rule_exprs, &families));
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The check can fail: a misspelt name and an unknown label value are caught.
    let bogus = vec![r#"rate(tokengate_request_total[5m]) + tokengate_requests_total{outcome="refused"}"#.to_owned()];
    assert_eq!(check_selectors("bogus", &[exprs, bogus].concat(), &families).len(), 2);
    proxy.stop().await;
}

/// A real Prometheus (Debian's `prometheus`) scrapes the admin port and
/// answers a query for tokengate_requests_total through its HTTP API.
#[tokio::test]
async fn prometheus_scrapes_the_admin_port() {
    if Command::new("prometheus").arg("--version").output().is_err() {
        eprintln!(
            "SKIPPED prometheus_scrapes_the_admin_port: no `prometheus` binary \
             (apt-get install prometheus; scripts/test.sh and .ci/run install it)"
        );
        return;
    }
    let proxy = TestProxy::start().await;
    ready(&proxy).await;
    for _ in 0..3 {
        assert_eq!(get(&proxy.url("/x"), &[]).await.status, StatusCode::UNAUTHORIZED);
    }

    let dir = temp_dir("prometheus");
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             scrape_configs:\n  - job_name: tokengate\n    static_configs:\n      - targets: [\"{}\"]\n",
            proxy.admin
        ),
    )
    .unwrap();
    let port = support::free_port();
    let mut server = tokio::process::Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let query = |q: &'static str| async move {
        let url = format!(
            "http://127.0.0.1:{port}/api/v1/query?query={}",
            form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        );
        // Refused until Prometheus listens: no panicking helper here.
        let req = http::Request::get(url)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .ok()?;
        let resp = tokio::time::timeout(Duration::from_secs(2), http1().request(req))
            .await
            .ok()?
            .ok()?;
        if resp.status() != StatusCode::OK {
            return None;
        }
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .ok()?
            .to_bytes();
        serde_json::from_slice::<Value>(&body).ok()
    };
    let missing = r#"tokengate_requests_total{job="tokengate", reason="missing_token"}"#;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let answer = loop {
        if let Some(v) = query(missing).await
            && v["data"]["result"].as_array().is_some_and(|r| !r.is_empty())
        {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Prometheus stored a scrape within 60s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(answer["status"], "success");
    let sample = &answer["data"]["result"][0];
    assert_eq!(sample["metric"]["outcome"], "rejected");
    assert_eq!(sample["metric"]["instance"], proxy.admin.to_string());
    assert_eq!(sample["value"][1], "3", "the three refused requests");

    let up = query(r#"up{job="tokengate"}"#).await.unwrap();
    assert_eq!(up["data"]["result"][0]["value"][1], "1");
    server.kill().await.unwrap();
    proxy.stop().await;
}

/// The browser sign-in compose example (deploy/compose/README.md, "Browser
/// sign-in") without Docker: its development provider (`dev-provider/
/// provider.mjs`, with the tests' oidc-provider beside it) and its
/// tokengate-browser.yaml in front of an app and a real Redis, with the
/// compose names replaced by loopback addresses; a browser signs in through
/// the provider's login and consent pages and reaches the app as that user.
#[tokio::test]
async fn compose_browser_walkthrough_signs_a_browser_in() {
    let dir = temp_dir("compose-browser");
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    // Step 1: a client secret shared by the provider and tokengate, and the
    // session signing key.
    std::fs::write(
        dir.join("secrets/web-client-secret"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("keys/ec256.key.pem"),
        dir.join("secrets/session-signing.pem"),
    )
    .unwrap();
    // The provider script as shipped, with the tests' node_modules beside it.
    std::fs::copy(deploy("compose/dev-provider/provider.mjs"), dir.join("provider.mjs")).unwrap();
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/provider/node_modules");
    assert!(modules.is_dir(), "run scripts/test.sh (it installs oidc-provider)");
    std::os::unix::fs::symlink(&modules, dir.join("node_modules")).unwrap();

    let redis = RedisServer::start();
    let op_port = free_port();
    let issuer = format!("http://127.0.0.1:{op_port}");
    let secrets = dir.join("secrets").display().to_string();
    let text = substitute(
        std::fs::read_to_string(deploy("compose/tokengate-browser.yaml")).unwrap(),
        &[
            ("http://oidc.localhost:9000", &issuer),
            ("0.0.0.0:8080", "127.0.0.1:0"),
            ("0.0.0.0:9090", "127.0.0.1:0"),
            ("http://app:3000", "http://{upstream}"),
            ("http://localhost:8080", "http://127.0.0.1:{proxy_port}"),
            ("redis://redis:6379", &redis.url()),
            ("secrets/", &format!("{secrets}/")),
        ],
    );
    let proxy = TestProxy::start_bound(&text, start_echo().await).await;
    let app = format!("http://127.0.0.1:{}", proxy.addr.port());
    let mut provider = tokio::process::Command::new("node")
        .arg(dir.join("provider.mjs"))
        .env("ISSUER", &issuer)
        .env("PORT", op_port.to_string())
        .env("APP_URL", &app)
        .env("BACKCHANNEL_URL", format!("{app}/.tokengate/backchannel-logout"))
        .env("CLIENT_SECRET_FILE", dir.join("secrets/web-client-secret"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(provider.stdout.take().unwrap()));
    assert!(
        support::op::listening(&mut lines).await,
        "the development provider did not start"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    ready(&proxy).await;

    // Step 3: a browser asks for a page, signs in, and the app sees the user.
    let mut b = support::browser::Browser::default();
    let page = b.navigate(&format!("{app}/orders"), "dana").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.upstream_header("x-auth-subject").as_deref(), Some("dana"));
    assert_eq!(
        page.upstream_header("x-auth-email").as_deref(),
        Some("dana@example.test")
    );
    let _ = provider.kill().await;
    proxy.stop().await;
}
