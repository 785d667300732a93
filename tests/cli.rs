//! The binary as an operator runs it: check-config, token mint, every example
//! config, and SIGTERM draining a real process.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_tokengate");

fn check_config(path: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(["check-config"])
        .arg(path)
        .env(
            "TOKENGATE_EXAMPLE_HS256_SECRET",
            "example-secret-for-tests-0123456789abcdef",
        )
        .output()
        .unwrap()
}

#[test]
fn every_file_in_config_loads() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let out = check_config(&path);
        assert!(
            out.status.success(),
            "{} does not validate:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 2, "config/ holds dev.yaml and tokengate.yaml at least");
    // The embedded default is config/dev.yaml, compiled in.
    tokengate::Config::embedded_dev().unwrap();
}

#[test]
fn check_config_names_an_unknown_field_and_its_line() {
    let dir = temp_dir("unknown-field");
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "upstream:\n  url: http://127.0.0.1:3000\nauth:\n  issuers:\n    - issuer: x\n      keys:\n        - algorithm: HS256\n          secret_env: X\n          bogus_field: 1\n",
    )
    .unwrap();
    let out = check_config(&file);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field `bogus_field`"), "{stderr}");
    assert!(stderr.contains("line 9"), "{stderr}");
}

#[test]
fn check_config_lists_every_problem_with_its_path() {
    let dir = temp_dir("problems");
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        r#"listen: "nowhere"
upstream:
  url: "https://app:3000/base"
  request_timeout: 10 minutes
auth:
  issuers:
    - issuer: a
      keys:
        - { kid: k1, algorithm: none, secret_file: x }
        - { kid: k2, algorithm: RS256, secret_file: secret.txt }
        - { kid: k3, algorithm: HS256, secret_file: missing.txt }
routes:
  - prefix: /public/../admin
    public: true
"#,
    )
    .unwrap();
    let out = check_config(&file);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "listen (line 1)",
        "upstream.url (line 3)",
        "upstream.request_timeout (line 4)",
        "auth.issuers[0].keys[0].algorithm",
        "`none` is never accepted",
        "auth.issuers[0].keys[1].secret_file",
        "auth.issuers[0].keys[2].secret_file",
        "routes[0].prefix (line 13)",
        "write `/admin`",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
}

#[test]
fn check_config_refuses_unsafe_jwks_settings() {
    let dir = temp_dir("jwks-config");
    let file = dir.join("jwks.yaml");
    std::fs::write(
        dir.join("bad-jwks.json"),
        r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#,
    )
    .unwrap();
    std::fs::write(
        &file,
        r#"upstream: { url: "http://127.0.0.1:3000" }
auth:
  issuers:
    - issuer: plain-http
      jwks_url: "http://idp.example.com/jwks"
    - issuer: hmac-from-jwks
      algorithms: [HS256]
      jwks_url: "https://idp.example.com/jwks"
    - issuer: tuning-alone
      jwks: { refresh_interval: 1m }
    - issuer: credentials
      jwks_url: "https://user:pw@idp.example.com/jwks"
    - issuer: bounds
      jwks_url: "https://idp.example.com/jwks"
      jwks: { min_refresh_interval: 2h }
    - issuer: symmetric-file
      jwks_file: bad-jwks.json
    - issuer: loopback-http
      jwks_url: "http://127.0.0.1:8081/jwks"
"#,
    )
    .unwrap();
    let out = check_config(&file);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "auth.issuers[0].jwks_url",
        "plain http",
        "auth.issuers[1].algorithms[0]",
        "HMAC keys are never taken from a JWKS",
        "auth.issuers[2].jwks",
        "auth.issuers[3].jwks_url",
        "auth.issuers[4].jwks.min_refresh_interval",
        "auth.issuers[5].jwks_file",
        "symmetric (oct) keys are never taken",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("issuers[6]"), "loopback http is allowed:\n{stderr}");
}

/// A copy of a provider's published set (an encryption key, an algorithm we
/// do not verify beside the signing keys) loads as a `jwks_file`: the keys
/// not for us are skipped with a note saying which and why, as they are
/// when the same set is fetched from a `jwks_url`.
#[test]
fn a_providers_real_key_set_loads_as_a_jwks_file_with_its_skipped_keys_noted() {
    let dir = temp_dir("cli-jwks-notes");
    let file = dir.join("tokengate.yaml");
    let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    let y = "_9l3n6b8Ty8qVTPrVRTTs8DGgFu-Rk2ygJlTb5bZ3_0";
    let jwks = serde_json::json!({"keys": [
        {"kty": "EC", "crv": "P-256", "use": "enc", "alg": "ECDH-ES", "kid": "enc-1", "x": x, "y": y},
        {"kty": "EC", "crv": "P-256", "alg": "ES256K", "kid": "k1", "x": x, "y": y},
        {"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "sig-1", "x": x, "y": y},
    ]});
    std::fs::write(dir.join("provider-jwks.json"), jwks.to_string()).unwrap();
    std::fs::write(
        &file,
        "upstream: { url: \"http://127.0.0.1:3000\" }\nauth:\n  issuers:\n    - { issuer: https://op.example.com, jwks_file: provider-jwks.json }\n",
    )
    .unwrap();
    let out = check_config(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "note: auth.issuers[0].jwks_file: key 0 (kid enc-1): use is \"enc\", not \"sig\", skipped",
        "note: auth.issuers[0].jwks_file: key 1 (kid k1): unsupported alg ES256K, skipped",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("sig-1"), "the usable key is not noted:\n{stdout}");
}

/// The README's configs for Keycloak-, Auth0- and oidc-provider-style
/// issuers check as written (every new issuer field: discovery, token_type,
/// backchannel_logout, introspection by secret_env and secret_file).
#[test]
fn the_readmes_provider_configs_check() {
    let readme = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("### Minimal configs for common providers")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("the README has the provider section");
    let snippets: Vec<&str> = section
        .split("```yaml\n")
        .skip(1)
        .filter_map(|s| s.split("```").next())
        .collect();
    assert_eq!(snippets.len(), 3, "Keycloak, Auth0, oidc-provider");
    let dir = temp_dir("cli-readme-providers");
    let secret = dir.join("op-introspection");
    std::fs::write(&secret, "a-client-secret\n").unwrap();
    for (i, snippet) in snippets.iter().enumerate() {
        let file = dir.join(format!("provider-{i}.yaml"));
        let yaml = snippet.replace("/secrets/op-introspection", &secret.display().to_string());
        std::fs::write(&file, format!("upstream: {{ url: \"http://127.0.0.1:3000\" }}\n{yaml}")).unwrap();
        let out = check_config(&file);
        assert!(
            out.status.success(),
            "README provider config {i} does not check:\n{yaml}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn token_mint_signs_with_the_embedded_dev_key() {
    let out = Command::new(BIN)
        .args([
            "token",
            "mint",
            "--sub",
            "alice",
            "--scope",
            "read admin",
            "--claim",
            "role=ops",
            "--ttl",
            "10m",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    let config = tokengate::Config::embedded_dev().unwrap();
    let verifier = tokengate::auth::Verifier::new(&config.auth.issuers, 0);
    let claims = verifier.verify(token.trim(), now()).unwrap();
    assert_eq!(claims.subject(), Some("alice"));
    assert_eq!(claims.scopes().collect::<Vec<_>>(), ["read", "admin"]);
    assert_eq!(claims.get("role").unwrap(), "ops");
    assert!((claims.exp - now() - 600).abs() <= 2);
}

#[test]
fn token_mint_count_prints_distinct_valid_tokens() {
    let out = Command::new(BIN)
        .args(["token", "mint", "--sub", "bench", "--count", "50"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let config = tokengate::Config::embedded_dev().unwrap();
    let verifier = tokengate::auth::Verifier::new(&config.auth.issuers, 0);
    let mut jtis = std::collections::HashSet::new();
    for token in text.lines() {
        let claims = verifier.verify(token, now()).unwrap();
        jtis.insert(claims.jti().unwrap().to_owned());
    }
    assert_eq!(jtis.len(), 50, "50 tokens, each with its own jti");
    let zero = Command::new(BIN)
        .args(["token", "mint", "--sub", "x", "--count", "0"])
        .output()
        .unwrap();
    assert!(!zero.status.success());
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let upstream = start_echo().await;
    let dir = temp_dir("sigterm");
    let file = dir.join("tokengate.yaml");
    std::fs::copy(fixtures().join("keys/hs32.secret"), dir.join("hs.secret")).unwrap();
    std::fs::write(
        &file,
        format!(
            r#"listen: "127.0.0.1:0"
admin: {{ listen: "127.0.0.1:0" }}
upstream: {{ url: "http://{upstream}" }}
shutdown: {{ drain_timeout: 10s }}
auth:
  issuers:
    - issuer: t
      keys: [{{ algorithm: HS256, secret_file: hs.secret }}]
routes:
  - prefix: /public/
    public: true
"#
        ),
    )
    .unwrap();
    let (mut child, proxy, admin) = spawn_binary(&file, 1).await;
    assert_eq!(get(&format!("http://{admin}/readyz"), &[]).await.status, 200);

    let url = format!("http://{proxy}/public/slow");
    let in_flight = tokio::spawn(async move { get(&url, &[("x-echo-delay-ms", "1000")]).await });
    let started = wait_until(DEADLINE, || async {
        metric(admin.parse().unwrap(), "tokengate_connections_open").await == 1.0
    })
    .await;
    assert!(started.is_some(), "the request is in flight");
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());

    let started = Instant::now();
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200, "the in-flight request completed");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn bad_config_at_run_exits_64_before_binding() {
    let dir = temp_dir("run-bad");
    let file = dir.join("bad.yaml");
    std::fs::write(&file, "upstream: { url: ftp://x }\nauth: { issuers: [] }\n").unwrap();
    let out = Command::new(BIN).args(["run", "--config"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("upstream.url") && stderr.contains("auth.issuers"),
        "{stderr}"
    );
}

/// The README's first command: no config means the embedded development
/// config in front of the built-in echo app, with tokens and curl lines.
#[tokio::test]
async fn the_demo_serves_the_echo_app_and_its_printed_curl_line_works() {
    let mut child = tokio::process::Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let curl = loop {
        let line = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .expect("the demo prints its curl lines")
            .unwrap()
            .expect("the demo is running");
        if line.starts_with("curl -s http://") && line.contains("/hello -H 'Authorization: Bearer ") {
            break line;
        }
    };
    let url = curl.split_whitespace().nth(2).unwrap().to_owned();
    let token = curl.split("Bearer ").nth(1).unwrap().trim_end_matches('\'').to_owned();
    let reply = get_with_token(&url, &token).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.upstream_header("x-auth-subject").as_deref(), Some("alice"));
    let _ = child.kill().await;
}

#[test]
fn demo_refuses_a_config_it_would_ignore() {
    let out = Command::new(BIN)
        .args(["demo", "--config", "config/dev.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokengate run --config"));
}

#[test]
fn the_reference_config_checks_without_its_secret_in_the_environment() {
    // Both commands on the reference file, in an environment without its secret.
    let without_secret = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env_remove("TOKENGATE_EXAMPLE_HS256_SECRET")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    let out = without_secret(&["check-config", "config/tokengate.yaml"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("`TOKENGATE_EXAMPLE_HS256_SECRET` is not set here"),
        "{stdout}"
    );
    // Running needs it: the same file is refused by `run` (exit 64).
    let out = without_secret(&["run", "--config", "config/tokengate.yaml"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TOKENGATE_EXAMPLE_HS256_SECRET"));
}

#[test]
fn a_missing_file_is_reported_where_it_was_looked_for() {
    let dir = temp_dir("missing-file");
    let file = dir.join("c.yaml");
    let yaml = "upstream: { url: \"http://127.0.0.1:1\" }\nauth:\n  issuers:\n    - issuer: x\n      keys: [{ algorithm: RS256, public_key_file: nope.pem }]\n";
    std::fs::write(&file, yaml).unwrap();
    let out = check_config(&file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        stderr.contains(&format!("(looked for {})", dir.join("nope.pem").display())),
        "{stderr}"
    );
}

#[test]
fn revoke_without_arguments_names_every_way_to_revoke() {
    let out = Command::new(BIN).arg("revoke").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    for flag in ["--jti", "--sid", "--sub"] {
        assert!(stderr.contains(flag), "{stderr}");
    }
}

#[test]
fn token_mint_on_the_embedded_config_prints_only_the_token() {
    let out = Command::new(BIN)
        .args(["token", "mint", "--sub", "a"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim().split('.').count(), 3);
}

#[test]
fn token_inspect_says_why_a_token_would_be_refused() {
    let inspect = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let mint = |extra: &[&str]| {
        let mut args = vec!["token", "mint", "--sub", "alice"];
        args.extend_from_slice(extra);
        let out = Command::new(BIN).args(&args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let dev = concat!(env!("CARGO_MANIFEST_DIR"), "/config/dev.yaml");
    let token = mint(&[]);
    let (code, out) = inspect(&["token", "inspect", &token]);
    assert_eq!(code, Some(0));
    assert!(out.contains("\"sub\": \"alice\"") && out.contains("exp: "), "{out}");
    let (code, out) = inspect(&["--config", dev, "token", "inspect", &token, "--path", "/admin/x"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("valid (signature") && out.contains("refused (403)") && out.contains("scopes admin"),
        "{out}"
    );
    let admin = mint(&["--scope", "admin"]);
    let (code, out) = inspect(&["--config", dev, "token", "inspect", &admin, "--path", "/admin/x"]);
    assert_eq!(code, Some(0), "{out}");
    // A signature that does not verify: the cause a 401 hides is shown here.
    let forged = format!("{}x", &token[..token.len() - 1]);
    let (code, out) = inspect(&["--config", dev, "token", "inspect", &forged]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("refused:"), "{out}");
    let (code, _) = inspect(&["token", "inspect", "not-a-token"]);
    assert_eq!(code, Some(2));
}

#[tokio::test]
async fn the_access_log_has_one_line_per_request_and_never_a_token() {
    let dir = temp_dir("access-log");
    let upstream = start_echo().await;
    let file = dir.join("tokengate.yaml");
    std::fs::write(dir.join("hs.secret"), "access-log-test-secret-0123456789abcdef").unwrap();
    std::fs::write(
        &file,
        format!(
            r#"listen: "127.0.0.1:0"
admin: {{ listen: "127.0.0.1:0" }}
upstream: {{ url: "http://{upstream}" }}
access_log: true
auth:
  sources: [{{ header: authorization }}, {{ query: access_token }}]
  issuers:
    - issuer: "t"
      keys: [{{ algorithm: HS256, secret_file: hs.secret }}]
"#
        ),
    )
    .unwrap();
    let (mut child, proxy, _admin, mut lines) = spawn_binary_logs(&file, 1).await;
    let claims = serde_json::json!({"iss": "t", "sub": "dora", "exp": now() + 300});
    let token = sign_with(
        jsonwebtoken::Algorithm::HS256,
        None,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"access-log-test-secret-0123456789abcdef"),
    );
    let ok = get(
        &format!("http://{proxy}/a/b?access_token={token}&q=1"),
        &[("x-request-id", "req-1")],
    )
    .await;
    assert_eq!(ok.status, 200);
    let refused = get(&format!("http://{proxy}/c"), &[("x-request-id", "req-2")]).await;
    assert_eq!(refused.status, 401);
    let mut found = Vec::new();
    while found.len() < 2 {
        let line = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(!line.contains(&token), "a token reached the log: {line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["target"] == "tokengate::access" {
            found.push(v);
        }
    }
    let served = &found[0];
    assert_eq!(served["message"], "request served");
    assert_eq!(served["status"], 200);
    assert_eq!(served["reason"], "authorized");
    assert_eq!(served["method"], "GET");
    assert_eq!(served["path"], "/a/b");
    assert_eq!(served["subject"], "dora");
    assert_eq!(served["request_id"], "req-1");
    assert!(served["latency_ms"].as_f64().unwrap() >= served["upstream_ms"].as_f64().unwrap());
    let rejected = &found[1];
    assert_eq!(rejected["message"], "request rejected");
    assert_eq!(rejected["status"], 401);
    assert_eq!(rejected["request_id"], "req-2");
    let _ = child.kill().await;
}

#[test]
fn parse_errors_name_the_file_the_field_and_the_expected_type() {
    let dir = temp_dir("parse-errors");
    let case = |name: &str, yaml: &str| {
        let file = dir.join(name);
        std::fs::write(&file, yaml).unwrap();
        let out = check_config(&file);
        assert_eq!(out.status.code(), Some(64));
        (file, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let issuer = "auth:\n  issuers:\n    - issuer: t\n      keys: [{ algorithm: HS256, secret_env: X }]\n";
    let (file, err) = case(
        "type.yaml",
        &format!("upstream: {{ url: \"http://127.0.0.1:1\", connect_timeout: [2s] }}\n{issuer}"),
    );
    assert!(err.contains("at `upstream.connect_timeout`"), "{err}");
    assert!(
        err.contains(&format!("{}:1:", file.display())),
        "the file, not <input>: {err}"
    );
    assert!(!err.contains("<input>"), "{err}");
    let (_, err) = case(
        "bool.yaml",
        &format!(
            "upstream: {{ url: \"http://127.0.0.1:1\" }}\n{issuer}routes:\n  - prefix: /\n    public: \"yes please\"\n"
        ),
    );
    assert!(
        err.contains("at `routes[0].public`") && err.contains("invalid boolean"),
        "{err}"
    );
    let (_, err) = case("missing.yaml", &format!("{issuer}revocation:\n  backend: memory\n"));
    assert!(
        err.contains("the top level is missing the required field `upstream`"),
        "{err}"
    );
    assert!(!err.contains("line 5"), "not pointed at an unrelated line: {err}");
}

#[test]
fn every_shape_error_is_reported_not_only_the_first() {
    let dir = temp_dir("shape-errors");
    let file = dir.join("c.yaml");
    let yaml = "upstream: { url: \"http://127.0.0.1:1\", connect_timeout: [2s] }\nauth:\n  issuers:\n    - issuer: t\n      keys: [{ algorithm: HS256, secret_env: X }]\nlimits: { max_connections: many }\nroutes:\n  - prefix: /\n    public: \"yes please\"\n";
    std::fs::write(&file, yaml).unwrap();
    let out = check_config(&file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64));
    assert!(err.contains("3 shape errors"), "{err}");
    for (field, form, at) in [
        ("upstream.connect_timeout", "expected one value", ":1:"),
        ("limits.max_connections", "expected a whole number", ":6:"),
        ("routes[0].public", "expected true or false", ":9:"),
    ] {
        assert!(err.contains(&format!("at `{field}`: {form}")), "{field}: {err}");
        assert!(err.contains(&format!("{}{at}", file.display())), "{field}: {err}");
    }
}

#[test]
fn a_missing_config_file_is_shown_where_it_was_looked_for() {
    let dir = temp_dir("missing-config");
    let out = Command::new(BIN)
        .args(["check-config", "no-such.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    let expected = std::fs::canonicalize(&dir).unwrap().join("no-such.yaml");
    assert!(err.contains(&expected.display().to_string()), "{err}");
}
