//! A real OpenID Provider (oidc-provider 9, `tests/provider/provider.mjs`)
//! in front of the real proxy: discovery from the issuer URL alone, every
//! algorithm the provider signs access tokens with, a provider restarted
//! with new keys, and the mix-up defence against a metadata document that
//! names another issuer (served by an in-test server, since a real
//! provider never does that on purpose).

mod support;

use http::StatusCode;
use jsonwebtoken::Algorithm;
use serde_json::json;
use support::jwks::{JwksServer, jwk};
use support::op::Op;
use support::*;

const PROVIDER_ALGORITHMS: [&str; 6] = ["RS256", "PS256", "ES256", "ES384", "EdDSA", "Ed25519"];

fn discovery_config(issuer: &str, extra: &str) -> String {
    format!(
        r#"
listen: "127.0.0.1:0"
admin: {{ listen: "127.0.0.1:0" }}
upstream: {{ url: "http://{{upstream}}" }}
auth:
  issuers:
    - issuer: "{issuer}"
      audiences: ["urn:api"]
      token_type: at+jwt
      discovery: true
      jwks: {{ unknown_kid_cooldown: 100ms, min_refresh_interval: 1s }}
{extra}
  identity_headers: {{ subject: X-Auth-Subject, claims: {{ client_id: X-Auth-Client }} }}
routes:
  - prefix: /
"#
    )
}

/// An RFC 9068 access token signed with the fixture key of `alg`.
fn access_token(alg: Algorithm, kid: &str, claims: &serde_json::Value) -> String {
    tokengate::install_crypto_providers();
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = Some(kid.into());
    header.typ = Some("at+jwt".into());
    jsonwebtoken::encode(&header, claims, &signing_key(alg)).unwrap()
}

async fn ready(proxy: &TestProxy) -> bool {
    get(&format!("http://{}/readyz", proxy.admin), &[]).await.status == StatusCode::OK
}

async fn wait_ready(proxy: &TestProxy) -> bool {
    wait_until(DEADLINE, || ready(proxy)).await.is_some()
}

#[tokio::test]
async fn discovery_from_the_issuer_url_alone_verifies_every_provider_algorithm() {
    let op = Op::start(None).await;
    let proxy = TestProxy::start_with(&discovery_config(&op.issuer(), ""), start_echo().await).await;
    assert!(wait_ready(&proxy).await, "the keys were not discovered");
    for alg in PROVIDER_ALGORITHMS {
        let token = op.access_token(&format!("urn:api:{alg}")).await;
        let reply = get_with_token(&proxy.url("/orders"), &token).await;
        assert_eq!(reply.status, StatusCode::OK, "{alg}: {}", reply.body);
        assert_eq!(
            reply.upstream_header("x-auth-subject").as_deref(),
            Some("api-client"),
            "{alg}"
        );
    }
    // The provider's encryption key was skipped, not fatal; the signing keys
    // are all in use.
    assert_eq!(
        metric(
            proxy.admin,
            &format!("tokengate_jwks_keys{{issuer=\"{}\"}}", op.issuer())
        )
        .await,
        PROVIDER_ALGORITHMS.len() as f64
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_provider_down_keeps_the_last_keys_and_one_back_with_new_keys_is_followed() {
    let mut op = Op::start(None).await;
    let proxy = TestProxy::start_with(&discovery_config(&op.issuer(), ""), start_echo().await).await;
    assert!(wait_ready(&proxy).await);
    let before = op.access_token("urn:api:ES256").await;
    assert_eq!(get_with_token(&proxy.url("/"), &before).await.status, StatusCode::OK);

    op.stop().await;
    // Metadata and keys unreachable: the last good ones keep serving.
    let unknown = serde_json::json!({"kid": "nobody", "alg": "ES256"});
    let forged = raw_token(&unknown, &json!({"iss": op.issuer()}), "AAAA");
    assert_eq!(
        get_with_token(&proxy.url("/"), &forged).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get_with_token(&proxy.url("/"), &before).await.status, StatusCode::OK);
    assert!(ready(&proxy).await, "a provider outage must not make the proxy unready");

    // Back on the same port with new keys (a rotation): a token under a new
    // kid makes the proxy read the metadata and the keys again.
    op.restart().await;
    let after = op.access_token("urn:api:ES256").await;
    let accepted = wait_until(DEADLINE, || async {
        get_with_token(&proxy.url("/"), &after).await.status == StatusCode::OK
    })
    .await;
    assert!(accepted.is_some(), "the new keys were never fetched");
    proxy.stop().await;
}

/// A document that names another issuer is refused whole (OIDC Discovery
/// §4.3), however close the name: nothing it points to is trusted.
#[tokio::test]
async fn a_metadata_document_naming_another_issuer_is_refused() {
    let idp = JwksServer::start(vec![jwk(Algorithm::ES256, "k1")]).await;
    let issuer = format!("{}/realms/main", idp.origin());
    let doc = |iss: &str| json!({"issuer": iss, "jwks_uri": idp.url()});
    idp.set_document(
        "/realms/main/.well-known/openid-configuration",
        doc(&format!("{issuer}/")),
    );
    let proxy = TestProxy::start_with(&discovery_config(&issuer, ""), start_echo().await).await;
    let mut claims = claims("mallory");
    claims["iss"] = issuer.clone().into();
    claims["aud"] = "urn:api".into();
    let token = access_token(Algorithm::ES256, "k1", &claims);
    let series = format!("tokengate_jwks_fetches_total{{issuer=\"{issuer}\",result=\"issuer_mismatch\"}}");
    let refused = wait_until(DEADLINE, || async {
        metric_opt(proxy.admin, &series).await.unwrap_or(0.0) >= 1.0
    })
    .await;
    assert!(refused.is_some(), "the mismatch was not counted");
    assert!(!ready(&proxy).await, "keys from a mismatched document were loaded");
    assert_eq!(
        get_with_token(&proxy.url("/"), &token).await.status,
        StatusCode::UNAUTHORIZED
    );

    // The document corrected, the same token passes: it was the issuer check.
    idp.set_document("/realms/main/.well-known/openid-configuration", doc(&issuer));
    assert!(wait_ready(&proxy).await);
    assert_eq!(get_with_token(&proxy.url("/"), &token).await.status, StatusCode::OK);
    proxy.stop().await;
}

/// An OAuth authorization server without OpenID metadata: RFC 8414's
/// well-known URL, with the issuer's path after the well-known part.
#[tokio::test]
async fn an_rfc_8414_authorization_server_is_found_when_the_openid_document_is_missing() {
    let idp = JwksServer::start(vec![jwk(Algorithm::EdDSA, "ed")]).await;
    let issuer = format!("{}/tenant-a", idp.origin());
    idp.set_document(
        "/.well-known/oauth-authorization-server/tenant-a",
        json!({"issuer": issuer, "jwks_uri": idp.url()}),
    );
    let proxy = TestProxy::start_with(&discovery_config(&issuer, ""), start_echo().await).await;
    assert!(wait_ready(&proxy).await, "RFC 8414 metadata was not used");
    let mut claims = claims("ada");
    claims["iss"] = issuer.clone().into();
    claims["aud"] = "urn:api".into();
    let token = access_token(Algorithm::EdDSA, "ed", &claims);
    let reply = get_with_token(&proxy.url("/"), &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    proxy.stop().await;
}
