//! Verification through the real proxy: every algorithm, every forgery, every
//! claim check, and the 401/403 rows of the response table.

mod support;

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use support::*;

const ALL_ALGORITHMS: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn assert_invalid_token(reply: &Reply) {
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(
        reply.www_authenticate(),
        r#"Bearer realm="tokengate", error="invalid_token", error_description="invalid token""#
    );
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn every_algorithm_is_accepted_with_its_key() {
    let proxy = TestProxy::start().await;
    for alg in ALL_ALGORITHMS {
        let token = sign(alg, &claims("alice"));
        let reply = get_with_token(&proxy.url("/hello"), &token).await;
        assert_eq!(reply.status, 200, "{alg:?}: {reply:?}");
        assert_eq!(
            reply.upstream_header("x-auth-subject").as_deref(),
            Some("alice"),
            "{alg:?}"
        );
    }
    assert_eq!(reasons(proxy.admin).await["authorized"], 12.0);
}

#[tokio::test]
async fn no_token_is_401_with_a_bare_challenge() {
    let proxy = TestProxy::start().await;
    let reply = get(&proxy.url("/hello"), &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.www_authenticate(), r#"Bearer realm="tokengate""#);
    assert_eq!(reply.headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert!(body["error"].is_string() && body["error_description"].is_string());
    // A Basic credential is not a bearer token.
    let reply = get(&proxy.url("/hello"), &[("authorization", "Basic dXNlcjpwYXNz")]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reasons(proxy.admin).await["missing_token"], 2.0);
}

#[tokio::test]
async fn malformed_tokens_are_invalid() {
    let proxy = TestProxy::start().await;
    for bad in [
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.???.***",
        "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",
    ] {
        assert_invalid_token(&get_with_token(&proxy.url("/x"), bad).await);
    }
    let huge = "a".repeat(9000);
    assert_invalid_token(&get_with_token(&proxy.url("/x"), &huge).await);
    let r = reasons(proxy.admin).await;
    assert_eq!(r["malformed"], 5.0);
    assert_eq!(r["token_too_large"], 1.0);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let proxy = TestProxy::start().await;
    let c = claims("mallory");
    for (header, sig) in [
        (json!({"alg": "none", "typ": "JWT"}), ""),
        (json!({"alg": "none", "kid": "HS256"}), "x"),
        (json!({"alg": "None", "kid": "HS256"}), "x"),
    ] {
        assert_invalid_token(&get_with_token(&proxy.url("/x"), &raw_token(&header, &c, sig)).await);
    }
    assert_eq!(reasons(proxy.admin).await["algorithm_not_allowed"], 3.0);
}

#[tokio::test]
async fn hmac_signed_with_the_public_key_is_refused() {
    // The classic confusion attack: HS256 keyed with the RSA public key's PEM,
    // naming the RSA key's kid.
    let proxy = TestProxy::start().await;
    let pem = std::fs::read(fixtures().join("keys/rsa.pub.pem")).unwrap();
    let forged = sign_with(
        Algorithm::HS256,
        Some("RS256"),
        &claims("mallory"),
        &EncodingKey::from_secret(&pem),
    );
    assert_invalid_token(&get_with_token(&proxy.url("/x"), &forged).await);
    // An RS256 token naming the HS256 key is refused the same way.
    let rs = sign_with(
        Algorithm::RS256,
        Some("HS256"),
        &claims("mallory"),
        &signing_key(Algorithm::RS256),
    );
    assert_invalid_token(&get_with_token(&proxy.url("/x"), &rs).await);
    assert_eq!(reasons(proxy.admin).await["algorithm_not_allowed"], 2.0);
}

#[tokio::test]
async fn unknown_kid_wrong_issuer_bad_signature() {
    let proxy = TestProxy::start().await;
    let unknown = sign_with(
        Algorithm::HS256,
        Some("nope"),
        &claims("a"),
        &signing_key(Algorithm::HS256),
    );
    assert_invalid_token(&get_with_token(&proxy.url("/x"), &unknown).await);
    // No kid while the issuer has many keys is ambiguous.
    let no_kid = sign_with(Algorithm::HS256, None, &claims("a"), &signing_key(Algorithm::HS256));
    assert_invalid_token(&get_with_token(&proxy.url("/x"), &no_kid).await);

    let mut c = claims("a");
    c["iss"] = json!("https://evil.test/");
    assert_invalid_token(&get_with_token(&proxy.url("/x"), &sign(Algorithm::RS256, &c)).await);

    let wrong_secret = EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef-wrong");
    let bad_sig = sign_with(Algorithm::HS256, Some("HS256"), &claims("a"), &wrong_secret);
    assert_invalid_token(&get_with_token(&proxy.url("/x"), &bad_sig).await);

    // A valid token with its payload swapped keeps a signature that no longer matches.
    let good = sign(Algorithm::ES256, &claims("alice"));
    let other = sign(Algorithm::ES256, &claims("root"));
    let spliced = format!(
        "{}.{}.{}",
        good.split('.').next().unwrap(),
        other.split('.').nth(1).unwrap(),
        good.split('.').nth(2).unwrap()
    );
    assert_invalid_token(&get_with_token(&proxy.url("/x"), &spliced).await);

    let r = reasons(proxy.admin).await;
    assert_eq!(r["unknown_kid"], 2.0);
    assert_eq!(r["unknown_issuer"], 1.0);
    assert_eq!(r["bad_signature"], 2.0);
}

#[tokio::test]
async fn issuer_keys_only_verify_their_own_issuer() {
    // "other-issuer" shares the HS256 secret; its only key (no kid) must not
    // make tokens claiming the first issuer valid, nor the reverse.
    let proxy = TestProxy::start().await;
    let mut c = claims("a");
    c["iss"] = json!("other-issuer");
    c.as_object_mut().unwrap().remove("aud");
    let ok = sign_with(Algorithm::HS256, None, &c, &signing_key(Algorithm::HS256));
    assert_eq!(get_with_token(&proxy.url("/x"), &ok).await.status, 200);
    c["iss"] = json!("https://issuer.test/");
    let wrong = sign_with(Algorithm::HS256, None, &c, &signing_key(Algorithm::HS256));
    assert_invalid_token(&get_with_token(&proxy.url("/x"), &wrong).await);
}

#[tokio::test]
async fn audience_is_checked() {
    let proxy = TestProxy::start().await;
    let mut c = claims("a");
    c["aud"] = json!("another-app");
    assert_invalid_token(&get_with_token(&proxy.url("/x"), &sign(Algorithm::RS256, &c)).await);
    c["aud"] = json!(["another-app", "app"]);
    assert_eq!(
        get_with_token(&proxy.url("/x"), &sign(Algorithm::RS256, &c))
            .await
            .status,
        200
    );
    c.as_object_mut().unwrap().remove("aud");
    assert_invalid_token(&get_with_token(&proxy.url("/x"), &sign(Algorithm::RS256, &c)).await);
    c["aud"] = json!(7);
    assert_invalid_token(&get_with_token(&proxy.url("/x"), &sign(Algorithm::RS256, &c)).await);
    let r = reasons(proxy.admin).await;
    assert_eq!(r["wrong_audience"], 1.0);
    assert_eq!(r["missing_claim"], 1.0);
    assert_eq!(r["malformed"], 1.0);
}

#[tokio::test]
async fn exp_is_required_and_leeway_applies() {
    let proxy = TestProxy::start().await;
    let mut c = claims("a");
    c.as_object_mut().unwrap().remove("exp");
    assert_invalid_token(&get_with_token(&proxy.url("/x"), &sign(Algorithm::EdDSA, &c)).await);

    // 10 s past exp is inside the 30 s leeway.
    c["exp"] = json!(now() - 10);
    assert_eq!(
        get_with_token(&proxy.url("/x"), &sign(Algorithm::EdDSA, &c))
            .await
            .status,
        200
    );

    // 60 s past exp is beyond it.
    c["exp"] = json!(now() - 60);
    let reply = get_with_token(&proxy.url("/x"), &sign(Algorithm::EdDSA, &c)).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.www_authenticate(),
        r#"Bearer realm="tokengate", error="invalid_token", error_description="token expired""#
    );
    assert!(reply.body.contains("token expired"));
    let r = reasons(proxy.admin).await;
    assert_eq!(r["missing_claim"], 1.0);
    assert_eq!(r["expired"], 1.0);
}

#[tokio::test]
async fn nbf_in_the_future_is_refused() {
    let proxy = TestProxy::start().await;
    let mut c = claims("a");
    c["nbf"] = json!(now() + 3600);
    let reply = get_with_token(&proxy.url("/x"), &sign(Algorithm::ES384, &c)).await;
    assert_eq!(reply.status, 401);
    assert!(reply.www_authenticate().contains(r#"error="invalid_token""#));
    // Within leeway is fine.
    c["nbf"] = json!(now() + 10);
    assert_eq!(
        get_with_token(&proxy.url("/x"), &sign(Algorithm::ES384, &c))
            .await
            .status,
        200
    );
    assert_eq!(reasons(proxy.admin).await["not_yet_valid"], 1.0);
}

#[tokio::test]
async fn crit_headers_are_refused() {
    let proxy = TestProxy::start().await;
    let header = json!({"alg": "HS256", "kid": "HS256", "crit": ["b64"], "b64": false});
    let token = raw_token(&header, &claims("a"), "c2ln");
    assert_invalid_token(&get_with_token(&proxy.url("/x"), &token).await);
}

#[tokio::test]
async fn scopes_and_claims_requirements_are_403() {
    let proxy = TestProxy::start().await;
    let user = sign(Algorithm::RS256, &claims("alice"));
    let reply = get_with_token(&proxy.url("/admin/panel"), &user).await;
    assert_eq!(reply.status, 403);
    assert!(reply.www_authenticate().contains(r#"error="insufficient_scope""#));
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["error"], "insufficient_scope");

    let mut c = claims("bob");
    c["scope"] = json!("read admin");
    assert_eq!(
        get_with_token(&proxy.url("/admin/panel"), &sign(Algorithm::RS256, &c))
            .await
            .status,
        200
    );
    let mut c = claims("carol");
    c["scp"] = json!(["admin"]);
    assert_eq!(
        get_with_token(&proxy.url("/admin"), &sign(Algorithm::RS256, &c))
            .await
            .status,
        200
    );

    assert_eq!(get_with_token(&proxy.url("/staff/x"), &user).await.status, 403);
    let mut c = claims("dave");
    c["role"] = json!("staff");
    assert_eq!(
        get_with_token(&proxy.url("/staff/x"), &sign(Algorithm::RS256, &c))
            .await
            .status,
        200
    );
    c["role"] = json!(["user", "staff"]);
    assert_eq!(
        get_with_token(&proxy.url("/staff/x"), &sign(Algorithm::RS256, &c))
            .await
            .status,
        200
    );

    let r = reasons(proxy.admin).await;
    assert_eq!(r["insufficient_scope"], 1.0);
    assert_eq!(r["claim_mismatch"], 1.0);
}

#[tokio::test]
async fn token_sources_cookie_header_query() {
    let proxy = TestProxy::start().await;
    let token = sign(Algorithm::HS256, &claims("alice"));
    let cookie = format!("theme=dark; access_token={token}");
    assert_eq!(get(&proxy.url("/x"), &[("cookie", &cookie)]).await.status, 200);
    assert_eq!(get(&proxy.url("/x"), &[("x-access-token", &token)]).await.status, 200);
    let reply = get(&proxy.url(&format!("/x?a=1&access_token={token}&b=2")), &[]).await;
    assert_eq!(reply.status, 200);
    // The token never reaches the app through the query string.
    assert_eq!(reply.echo()["query"], "a=1&b=2");
    // The first configured source wins: a bad bearer is not rescued by a good cookie.
    let reply = get(
        &proxy.url("/x"),
        &[("authorization", "Bearer bad.bad.bad"), ("cookie", &cookie)],
    )
    .await;
    assert_eq!(reply.status, 401);
}

/// Signs `claims` with the HS256 fixture key under a hand-written `typ`.
fn with_typ(typ: Option<&str>, claims: &serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
    // `other-issuer` has one key and no kid.
    header.kid = (claims["iss"] != "other-issuer").then(|| "HS256".into());
    header.typ = typ.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &signing_key(Algorithm::HS256)).unwrap()
}

#[tokio::test]
async fn a_token_meant_for_something_else_is_refused() {
    // `other-issuer` requires RFC 9068 access tokens; the first issuer does not.
    let yaml = base_config().replace(
        "    - issuer: \"other-issuer\"\n",
        "    - issuer: \"other-issuer\"\n      token_type: application/AT+JWT\n",
    );
    let proxy = TestProxy::start_with(&yaml, start_echo().await).await;
    let url = proxy.url("/hello");
    for (typ, status) in [
        (None, 200),
        (Some("JWT"), 200),
        (Some("at+jwt"), 200),
        (Some("logout+jwt"), 401),
        (Some("dpop+jwt"), 401),
        (Some("application/secevent+jwt"), 401),
    ] {
        let reply = get_with_token(&url, &with_typ(typ, &claims("ann"))).await;
        assert_eq!(reply.status, status, "{typ:?}");
        if status == 401 {
            assert_invalid_token(&reply);
        }
    }
    let other = json!({"iss": "other-issuer", "sub": "ben", "exp": now() + 300});
    for (typ, status) in [(Some("at+jwt"), 200), (Some("JWT"), 401), (None, 401)] {
        let reply = get_with_token(&url, &with_typ(typ, &other)).await;
        assert_eq!(reply.status, status, "other-issuer {typ:?}");
    }
    assert_eq!(reasons(proxy.admin).await["wrong_type"], 5.0);
    proxy.stop().await;
}
