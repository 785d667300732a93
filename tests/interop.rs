//! Tokens from two JOSE libraries that share no code with ours (`jose` for
//! Node and `joserfc` for Python), for every algorithm the README promises:
//! RS/PS 256-512, ES256/384/512, EdDSA and Ed25519 from a JWKS file (as a
//! provider publishes them, `alg` and `use` set), the asymmetric ones again
//! as PEM files, and HS256-512 with base64-encoded secrets. The app must see
//! the subject each token names; the same token with one signature byte
//! changed must be refused before the app sees anything.
//!
//! `scripts/test.sh` installs both libraries (tests/provider/package.json,
//! joserfc from PyPI).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde_json::Value;
use support::*;

const ASYMMETRIC: [&str; 11] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519",
];
const HMAC: [&str; 3] = ["HS256", "HS384", "HS512"];

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/provider")
}

/// Runs one library's signer; its JSON output.
fn signed_by(library: &str, issuer: &str) -> Value {
    let dir = provider_dir();
    let mut cmd = match library {
        "jose" => {
            assert!(
                dir.join("node_modules/jose").is_dir(),
                "the jose library is missing: run scripts/test.sh (it runs npm ci in tests/provider)"
            );
            let mut c = Command::new("node");
            c.arg(dir.join("sign.mjs"));
            c
        }
        "joserfc" => {
            let mut c = Command::new("python3");
            c.args(["-W", "ignore"]).arg(dir.join("sign_joserfc.py"));
            c
        }
        other => panic!("unknown library {other}"),
    };
    let out = cmd.args([issuer, "app"]).output().expect("the signer runs");
    assert!(
        out.status.success(),
        "{library} signer failed (scripts/test.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the signer prints JSON")
}

/// The config for one library's keys, written under `dir`.
fn config_for(library: &str, issuer: &str, signed: &Value, dir: &Path) -> String {
    std::fs::write(dir.join("jwks.json"), signed["jwks"].to_string()).unwrap();
    let mut keys = String::new();
    for alg in HMAC {
        let file = dir.join(format!("{alg}.b64"));
        std::fs::write(&file, signed["secrets"][alg].as_str().unwrap()).unwrap();
        keys += &format!(
            "        - {{ kid: {library}-{alg}, algorithm: {alg}, secret_file: \"{}\", secret_encoding: base64 }}\n",
            file.display()
        );
    }
    let mut pem_keys = String::new();
    if let Some(spki) = signed.get("spki").and_then(Value::as_object) {
        for (alg, pem) in spki {
            let file = dir.join(format!("{alg}.pub.pem"));
            std::fs::write(&file, pem.as_str().unwrap()).unwrap();
            pem_keys += &format!(
                "        - {{ kid: {library}-{alg}, algorithm: {alg}, public_key_file: \"{}\" }}\n",
                file.display()
            );
        }
    }
    let pem_issuer = if pem_keys.is_empty() {
        String::new()
    } else {
        format!("    - issuer: \"{issuer}/pem\"\n      audiences: [app]\n      keys:\n{pem_keys}")
    };
    format!(
        r#"
listen: "127.0.0.1:0"
admin: {{ listen: "127.0.0.1:0" }}
upstream: {{ url: "http://{{upstream}}" }}
auth:
  issuers:
    - issuer: "{issuer}"
      audiences: [app]
      jwks_file: "{jwks}"
      keys:
{keys}{pem_issuer}
  identity_headers: {{ subject: X-Auth-Subject }}
routes:
  - prefix: /
"#,
        jwks = dir.join("jwks.json").display(),
    )
}

/// The token with one bit of its signature flipped.
fn tampered(token: &str) -> String {
    let (head, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[0] ^= 1;
    format!("{head}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

async fn check_library(library: &str) {
    let issuer = format!("https://interop.test/{library}");
    let signed = signed_by(library, &issuer);
    let dir = temp_dir(&format!("interop-{library}"));
    let yaml = config_for(library, &issuer, &signed, &dir);
    let proxy = TestProxy::start_with(&yaml, start_echo().await).await;
    let mut cases: Vec<(String, String)> = ASYMMETRIC
        .iter()
        .chain(&HMAC)
        .map(|alg| (alg.to_string(), signed["tokens"][alg].as_str().unwrap().to_owned()))
        .collect();
    if let Some(pem) = signed.get("pem_tokens").and_then(Value::as_object) {
        cases.extend(
            pem.iter()
                .map(|(alg, t)| (format!("{alg} (PEM)"), t.as_str().unwrap().to_owned())),
        );
    }
    assert!(cases.len() >= 14, "{library}: {} tokens", cases.len());
    for (alg, token) in &cases {
        let reply = get_with_token(&proxy.url("/interop"), token).await;
        assert_eq!(reply.status, StatusCode::OK, "{library} {alg}: {}", reply.body);
        let sub = alg.split(' ').next().unwrap();
        assert_eq!(
            reply.upstream_header("x-auth-subject").as_deref(),
            Some(format!("{library}-{sub}").as_str()),
            "{library} {alg}"
        );
        let reply = get_with_token(&proxy.url("/interop"), &tampered(token)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{library} {alg} tampered");
        assert!(
            !reply.body.contains("\"headers\""),
            "{library} {alg}: the app saw a forgery"
        );
    }
    proxy.stop().await;
}

#[tokio::test]
async fn every_algorithm_from_jose() {
    check_library("jose").await;
}

#[tokio::test]
async fn every_algorithm_from_joserfc() {
    check_library("joserfc").await;
}

/// `alg: Ed25519` and `alg: EdDSA` name the same curve but are pinned apart:
/// a token must carry the name its key was published under.
#[tokio::test]
async fn a_key_published_as_ed25519_does_not_verify_an_eddsa_header() {
    let issuer = "https://interop.test/pinning";
    let signed = signed_by("jose", issuer);
    let token = signed["tokens"]["Ed25519"].as_str().unwrap();
    let (header, rest) = token.split_once('.').unwrap();
    let mut h: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    h["alg"] = "EdDSA".into();
    let renamed = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(h.to_string()));
    let dir = temp_dir("interop-pinning");
    let proxy = TestProxy::start_with(&config_for("jose", issuer, &signed, &dir), start_echo().await).await;
    assert_eq!(get_with_token(&proxy.url("/"), token).await.status, StatusCode::OK);
    let reply = get_with_token(&proxy.url("/"), &renamed).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(
        metric(
            proxy.admin,
            "tokengate_requests_total{outcome=\"rejected\",reason=\"algorithm_not_allowed\"}"
        )
        .await,
        1.0
    );
    proxy.stop().await;
}
