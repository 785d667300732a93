//! Token forgery: tokens an attacker builds without the key. Each must be
//! refused, and the app must receive nothing at all.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

use super::*;
use crate::support::raw::{exchange, statuses};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn admin_claims() -> serde_json::Value {
    let mut c = claims("root");
    c["scope"] = json!("admin");
    c
}

/// Forged tokens, each with what it tries.
fn forgeries() -> Vec<(&'static str, String)> {
    let c = admin_claims();
    let rsa_public = std::fs::read(fixtures().join("keys/rsa.pub.pem")).unwrap();
    let ec_public = std::fs::read(fixtures().join("keys/ec256.pub.pem")).unwrap();
    let valid = sign(Algorithm::ES256, &c);
    let (valid_head, valid_body) = {
        let mut parts = valid.split('.');
        (parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned())
    };
    let tampered_body = b64(
        json!({"iss": "https://issuer.test/", "aud": "app", "sub": "mallory", "scope": "admin", "exp": now() + 300})
            .to_string()
            .as_bytes(),
    );
    vec![
        ("alg none", raw_token(&json!({"alg": "none", "typ": "JWT"}), &c, "")),
        ("alg None", raw_token(&json!({"alg": "None", "kid": "ES256"}), &c, "")),
        ("alg nOnE", raw_token(&json!({"alg": "nOnE", "kid": "ES256"}), &c, "x")),
        (
            "HS256 keyed with the RSA public key (key confusion)",
            sign_with(
                Algorithm::HS256,
                Some("RS256"),
                &c,
                &EncodingKey::from_secret(&rsa_public),
            ),
        ),
        (
            "HS256 keyed with the EC public key (key confusion)",
            sign_with(
                Algorithm::HS256,
                Some("ES256"),
                &c,
                &EncodingKey::from_secret(&ec_public),
            ),
        ),
        (
            "psychic signature (ES256 r = s = 0)",
            raw_token(&json!({"alg": "ES256", "kid": "ES256"}), &c, &b64(&[0u8; 64])),
        ),
        ("empty signature", format!("{valid_head}.{valid_body}.")),
        ("two parts", format!("{valid_head}.{valid_body}")),
        ("payload swapped under a valid signature", {
            let sig = valid.rsplit('.').next().unwrap();
            format!("{valid_head}.{tampered_body}.{sig}")
        }),
        (
            "embedded jwk of the attacker",
            raw_token(
                &json!({"alg": "HS256", "jwk": {"kty": "oct", "k": b64(b"attacker")}}),
                &c,
                "x",
            ),
        ),
        (
            "jku pointing at the attacker",
            raw_token(&json!({"alg": "RS256", "jku": "http://127.0.0.1:1/jwks.json"}), &c, "x"),
        ),
        (
            "kid path traversal to an empty file",
            sign_with(
                Algorithm::HS256,
                Some("../../../../dev/null"),
                &c,
                &EncodingKey::from_secret(b""),
            ),
        ),
        (
            "kid of another algorithm's key",
            sign_with(Algorithm::HS256, Some("EdDSA"), &c, &EncodingKey::from_secret(b"x")),
        ),
        (
            "unknown critical header",
            raw_token(&json!({"alg": "ES256", "kid": "ES256", "crit": ["exp"]}), &c, "x"),
        ),
        ("whitespace inside", valid.replacen('.', ". ", 1)),
        ("JWE-shaped (five parts)", format!("{valid_head}.{valid_body}.a.b.c")),
    ]
}

#[tokio::test]
async fn forged_tokens_never_reach_the_app() {
    let (proxy, app) = raw_proxy(Behaviour::Ok, "").await;
    for (what, token) in forgeries() {
        let answer = exchange(proxy.addr, &get_bytes("/admin/panel", &[&bearer(&token)])).await;
        let status = statuses(&answer);
        assert!(status == [401] || status == [400], "{what}: {status:?}\n{answer}");
    }
    assert!(app.received().is_empty(), "{:?}", app.received());
    // The control: a genuine admin token does reach the app.
    let answer = exchange(proxy.addr, &get_bytes("/admin/panel", &[&bearer(&admin_token())])).await;
    assert_eq!(statuses(&answer), [200]);
    assert_eq!(app.received().len(), 1);
}

/// A token the issuer really signed, but that two JWT libraries would read
/// differently: duplicate claim names (one keeps the first `sub`, another the
/// last), or scopes separated by a tab instead of a space.
#[tokio::test]
async fn ambiguous_signed_payloads_are_refused() {
    let (proxy, app) = raw_proxy(Behaviour::Ok, "").await;
    let signed = |payload: &str| {
        let head = b64(br#"{"alg":"ES256","kid":"ES256","typ":"JWT"}"#);
        let message = format!("{head}.{}", b64(payload.as_bytes()));
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &signing_key(Algorithm::ES256), Algorithm::ES256).unwrap();
        format!("{message}.{signature}")
    };
    let exp = now() + 300;
    let duplicate = signed(&format!(
        r#"{{"iss":"https://issuer.test/","aud":"app","exp":{exp},"sub":"bob","sub":"root","scope":"read","scope":"admin"}}"#
    ));
    let answer = exchange(proxy.addr, &get_bytes("/admin/x", &[&bearer(&duplicate)])).await;
    assert_eq!(statuses(&answer), [401], "{answer}");
    let tabbed = signed(&format!(
        r#"{{"iss":"https://issuer.test/","aud":"app","exp":{exp},"sub":"bob","scope":"read\tadmin"}}"#
    ));
    let answer = exchange(proxy.addr, &get_bytes("/admin/x", &[&bearer(&tabbed)])).await;
    assert_eq!(statuses(&answer), [403], "a tab does not separate scopes: {answer}");
    assert!(app.received().is_empty());
    // The control: the same payload, unambiguous, is accepted.
    let clean = signed(&format!(
        r#"{{"iss":"https://issuer.test/","aud":"app","exp":{exp},"sub":"root","scope":"read admin"}}"#
    ));
    let answer = exchange(proxy.addr, &get_bytes("/admin/x", &[&bearer(&clean)])).await;
    assert_eq!(statuses(&answer), [200]);
}
