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

// ---- Back-channel logout -------------------------------------------------

const LOGOUT_PATH: &str = "/.tokengate/backchannel-logout";

/// A sidecar trusting `issuer` (discovery) and taking its logout tokens for
/// the `rp` client (or `audience`); revocations in memory, or in `redis`.
fn logout_config(issuer: &str, audience: &str, revoke: &str, redis: Option<&str>) -> String {
    let revocation = match redis {
        None => String::new(),
        Some(url) => format!(
            "revocation:\n  backend: redis\n  redis: {{ url: \"{url}\", connect_timeout: 300ms, command_timeout: 500ms, check_interval: 200ms }}\n  max_staleness: 5s\n"
        ),
    };
    let config = discovery_config(
        issuer,
        &format!("      backchannel_logout: {{ audiences: [{audience}] }}"),
    );
    format!("{config}backchannel_logout: {{ revoke: {revoke}, max_age: 2m }}\n{revocation}")
}

/// Records the logout tokens a provider sends, answering 200 like a receiver.
struct Capture {
    url: String,
    tokens: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Capture {
    async fn start() -> Capture {
        use http_body_util::BodyExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/logout", listener.local_addr().unwrap());
        let tokens = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = tokens.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            for (k, v) in form_urlencoded::parse(&body) {
                                if k == "logout_token" {
                                    seen.lock().unwrap().push(v.into_owned());
                                }
                            }
                            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                                bytes::Bytes::new(),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Capture { url, tokens }
    }

    /// The provider's logout token for `sub`/`sid`, as it sent it.
    async fn logout_token(&self, op: &Op, sub: &str, sid: &str) -> String {
        let before = self.tokens.lock().unwrap().len();
        let reply = op.backchannel_logout(sub, sid).await;
        assert_eq!(
            reply.status,
            StatusCode::NO_CONTENT,
            "the provider did not deliver: {}",
            reply.body
        );
        let tokens = self.tokens.lock().unwrap();
        assert_eq!(tokens.len(), before + 1);
        tokens[before].clone()
    }
}

/// POSTs a form body to the sidecar's receiver.
async fn post_logout(proxy: &TestProxy, body: &str) -> Reply {
    let req = http::Request::post(proxy.url(LOGOUT_PATH))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_owned())))
        .unwrap();
    send(&http1(), req).await
}

async fn status_of(proxy: &TestProxy, token: &str) -> StatusCode {
    get_with_token(&proxy.url("/orders"), token).await.status
}

/// The end-to-end promise: the provider's logout reaches one sidecar, and
/// the user's tokens stop on every sidecar sharing the Redis.
#[tokio::test]
async fn a_logout_at_the_provider_stops_the_users_tokens_on_every_sidecar() {
    let redis = support::redis::RedisServer::start();
    let port = support::op::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let yaml = logout_config(&issuer, "rp", "subject", Some(&redis.url()));
    let a = TestProxy::start_with(&yaml, start_echo().await).await;
    let b = TestProxy::start_with(&yaml, start_echo().await).await;
    let op = Op::start_at(port, Some(&a.url(LOGOUT_PATH))).await;
    assert!(wait_ready(&a).await && wait_ready(&b).await);
    let token = op.access_token("urn:api:RS256").await;
    assert_eq!(status_of(&a, &token).await, StatusCode::OK);
    assert_eq!(status_of(&b, &token).await, StatusCode::OK);

    // The provider sends its logout token to sidecar a, which must answer
    // 200 (the provider reports anything else as a failure).
    let reply = op.backchannel_logout("api-client", "op-session-1").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(
        metric(a.admin, "tokengate_backchannel_logouts_total{result=\"revoked\"}").await,
        1.0
    );
    for sidecar in [&a, &b] {
        let stopped = wait_until(DEADLINE, || async {
            status_of(sidecar, &token).await == StatusCode::UNAUTHORIZED
        })
        .await;
        assert!(stopped.is_some(), "the token still works on a sidecar");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_logout_token_is_acted_on_once_and_never_passes_as_anything_else() {
    let capture = Capture::start().await;
    let op = Op::start(Some(&capture.url)).await;
    let sidecar = TestProxy::start_with(&logout_config(&op.issuer(), "rp", "subject", None), start_echo().await).await;
    let elsewhere = TestProxy::start_with(
        &logout_config(&op.issuer(), "another-client", "subject", None),
        start_echo().await,
    )
    .await;
    assert!(wait_ready(&sidecar).await && wait_ready(&elsewhere).await);
    let access = op.access_token("urn:api:ES256").await;
    let logout = capture.logout_token(&op, "api-client", "op-session-2").await;

    // Not for this audience: refused, nothing revoked.
    let reply = post_logout(&elsewhere, &format!("logout_token={logout}")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(status_of(&elsewhere, &access).await, StatusCode::OK);

    // A logout token is not an access token, whatever its signature.
    let reply = get_with_token(&sidecar.url("/orders"), &logout).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(!reply.body.contains("\"headers\""), "the app saw a logout token");

    // Malformed requests change nothing.
    let (head, sig) = logout.rsplit_once('.').unwrap();
    let flipped = format!("{head}.{}{}", if sig.starts_with('A') { "B" } else { "A" }, &sig[1..]);
    for (body, what) in [
        (format!("logout_token={flipped}"), "a changed signature"),
        (format!("logout_token={logout}&logout_token={logout}"), "two tokens"),
        ("logout_token=".to_owned(), "an empty token"),
        (format!("token={logout}"), "another field"),
    ] {
        let reply = post_logout(&sidecar, &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}: {}", reply.body);
        assert_eq!(reply.headers["cache-control"], "no-store");
        assert!(!reply.body.contains(&logout[..20]), "{what}: the body echoes the token");
    }
    let reply = get(&sidecar.url(LOGOUT_PATH), &[]).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "POST");
    let json = http::Request::post(sidecar.url(LOGOUT_PATH))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(format!(
            "{{\"logout_token\":\"{logout}\"}}"
        ))))
        .unwrap();
    assert_eq!(send(&http1(), json).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        status_of(&sidecar, &access).await,
        StatusCode::OK,
        "a refused logout revoked something"
    );

    // The real thing, once.
    let reply = post_logout(&sidecar, &format!("logout_token={logout}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(status_of(&sidecar, &access).await, StatusCode::UNAUTHORIZED);
    // Replayed: refused, and no new cut-off is written.
    let reply = post_logout(&sidecar, &format!("logout_token={logout}")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("already processed"), "{}", reply.body);
    let count = |result: &'static str| {
        let admin = sidecar.admin;
        async move {
            metric(
                admin,
                &format!("tokengate_backchannel_logouts_total{{result=\"{result}\"}}"),
            )
            .await
        }
    };
    assert_eq!(count("revoked").await, 1.0);
    assert_eq!(count("replayed").await, 1.0);
    assert_eq!(count("invalid_token").await, 1.0);
    assert_eq!(count("bad_request").await, 5.0);
    assert_eq!(
        metric(
            elsewhere.admin,
            "tokengate_backchannel_logouts_total{result=\"invalid_token\"}"
        )
        .await,
        1.0
    );
    sidecar.stop().await;
    elsewhere.stop().await;
}

/// `revoke: session` ends the tokens carrying the logout's `sid` only: the
/// same user's other session keeps working.
#[tokio::test]
async fn revoke_session_ends_only_the_session_the_provider_names() {
    let capture = Capture::start().await;
    let op = Op::start(Some(&capture.url)).await;
    let sidecar = TestProxy::start_with(&logout_config(&op.issuer(), "rp", "session", None), start_echo().await).await;
    assert!(wait_ready(&sidecar).await);
    let laptop = op.access_token_with("urn:api:PS256", &[("test_sid", "laptop")]).await;
    let phone = op.access_token_with("urn:api:PS256", &[("test_sid", "phone")]).await;
    let logout = capture.logout_token(&op, "api-client", "laptop").await;
    assert_eq!(
        post_logout(&sidecar, &format!("logout_token={logout}")).await.status,
        StatusCode::OK
    );
    assert_eq!(status_of(&sidecar, &laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of(&sidecar, &phone).await, StatusCode::OK);
    sidecar.stop().await;
}

/// Redis hung: 503 with Retry-After, never a 200 for a logout not written.
/// A script Redis runs once it resumes finds its deadline passed and
/// changes nothing, so the provider's retry performs the logout.
#[tokio::test]
async fn a_hung_redis_answers_503_and_the_logout_holds_after_the_retry() {
    let redis = support::redis::RedisServer::start();
    let capture = Capture::start().await;
    let op = Op::start(Some(&capture.url)).await;
    let sidecar = TestProxy::start_with(
        &logout_config(&op.issuer(), "rp", "subject", Some(&redis.url())),
        start_echo().await,
    )
    .await;
    assert!(wait_ready(&sidecar).await);
    let access = op.access_token("urn:api:EdDSA").await;
    let logout = capture.logout_token(&op, "api-client", "op-session-3").await;
    redis.pause();
    let reply = post_logout(&sidecar, &format!("logout_token={logout}")).await;
    redis.resume();
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.body);
    assert_eq!(reply.headers["retry-after"], "1");
    // Whatever Redis did with the first attempt once resumed, it changed
    // nothing (its deadline had passed), so the retry is the logout.
    let retry = wait_until(DEADLINE, || async {
        post_logout(&sidecar, &format!("logout_token={logout}")).await.status != StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert!(retry.is_some(), "redis never came back");
    assert_eq!(
        metric(sidecar.admin, "tokengate_backchannel_logouts_total{result=\"revoked\"}").await,
        1.0,
        "the retry was not the logout"
    );
    let stopped = wait_until(DEADLINE, || async {
        status_of(&sidecar, &access).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(stopped.is_some(), "the logout was lost");
    sidecar.stop().await;
}

// ---- Introspection (RFC 7662) ---------------------------------------------

/// A sidecar introspecting `issuer`'s opaque tokens as `client` (whose
/// secret is in a file), its JWTs verified by discovered keys.
fn introspection_config(issuer: &str, client: &str, method: &str, endpoint: Option<&str>) -> String {
    introspection_config_with(issuer, (client, support::op::TOKENGATE_CLIENT.1), method, endpoint)
}

fn introspection_config_with(
    issuer: &str,
    (client, secret): (&str, &str),
    method: &str,
    endpoint: Option<&str>,
) -> String {
    let dir = temp_dir(&format!("introspection-{client}-{}", support::op::free_port()));
    let secret_file = dir.join("client.secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let secret = secret_file;
    let endpoint = endpoint.map_or(String::new(), |e| format!(", endpoint: \"{e}\""));
    let block = format!(
        "      introspection: {{ client_id: {client}, secret_file: \"{}\", auth_method: {method}, cache_max: 1s, negative_cache: 30s, timeout: 500ms{endpoint} }}",
        secret.display()
    );
    discovery_config(issuer, &block)
        .replace(
            "audiences: [\"urn:api\"]",
            "audiences: [\"urn:api\", \"urn:api:opaque\"]",
        )
        .replace("      token_type: at+jwt\n", "")
}

async fn introspections(proxy: &TestProxy, result: &str) -> f64 {
    metric_opt(
        proxy.admin,
        &format!("tokengate_introspections_total{{result=\"{result}\"}}"),
    )
    .await
    .unwrap_or(0.0)
}

#[tokio::test]
async fn opaque_tokens_are_introspected_once_cached_and_refused_once_inactive() {
    let op = Op::start(None).await;
    let sidecar = TestProxy::start_with(
        &introspection_config(&op.issuer(), "tokengate", "client_secret_basic", None),
        start_echo().await,
    )
    .await;
    assert!(wait_ready(&sidecar).await);
    let opaque = op.access_token("urn:api:opaque").await;
    assert!(!opaque.contains('.'), "not an opaque token: {opaque}");

    let reply = get_with_token(&sidecar.url("/orders"), &opaque).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // The provider's answer names the client (a client-credentials token
    // has no subject), and the identity headers come from that answer.
    assert_eq!(reply.upstream_header("x-auth-client").as_deref(), Some("api-client"));
    assert_eq!(reply.upstream_header("x-auth-subject"), None);
    // Repeats come from the cache, not the provider.
    for _ in 0..5 {
        assert_eq!(status_of(&sidecar, &opaque).await, StatusCode::OK);
    }
    assert_eq!(introspections(&sidecar, "active").await, 1.0);
    assert!(introspections(&sidecar, "cache_hit").await >= 5.0);

    // Twenty requests at once with a token never seen: one introspection.
    let fresh = op
        .access_token_with("urn:api:opaque", &[("test_sub", "opaque-user")])
        .await;
    let all = futures_util::future::join_all((0..20).map(|_| status_of(&sidecar, &fresh))).await;
    assert!(all.iter().all(|s| *s == StatusCode::OK), "{all:?}");
    assert_eq!(
        introspections(&sidecar, "active").await,
        2.0,
        "concurrent requests were not coalesced"
    );

    // A made-up token: inactive, and asked about once.
    for _ in 0..3 {
        let reply = get_with_token(&sidecar.url("/orders"), "made-up-opaque-token").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(introspections(&sidecar, "inactive").await, 1.0);

    // Revoked at the provider: refused once the cached answer (cache_max
    // 1s) has lapsed.
    let revoked = op
        .post_form("/token/revocation", support::op::API_CLIENT, &[("token", &opaque)])
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    let refused = wait_until(DEADLINE, || async {
        status_of(&sidecar, &opaque).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused.is_some(), "a token revoked at the provider kept working");

    // The revocation mirror applies to introspected tokens too: a cut-off
    // for the subject the provider reports stops the other token at once,
    // cached or not.
    let revoke = json!({"sub": "opaque-user"}).to_string();
    let cut = http::Request::post(format!("http://{}/revoke", sidecar.admin))
        .body(http_body_util::Full::new(bytes::Bytes::from(revoke)))
        .unwrap();
    assert_eq!(send(&http1(), cut).await.status, StatusCode::OK);
    assert_eq!(status_of(&sidecar, &fresh).await, StatusCode::UNAUTHORIZED);

    // JWTs of the same issuer are still verified locally, never introspected.
    let asked = introspections(&sidecar, "active").await + introspections(&sidecar, "inactive").await;
    let jwt = op.access_token("urn:api:ES256").await;
    let _ = status_of(&sidecar, &jwt).await;
    assert_eq!(
        introspections(&sidecar, "active").await + introspections(&sidecar, "inactive").await,
        asked
    );
    sidecar.stop().await;
}

#[tokio::test]
async fn client_secret_post_and_an_explicit_endpoint_work_too() {
    let op = Op::start(None).await;
    let endpoint = format!("{}/token/introspection", op.issuer());
    let sidecar = TestProxy::start_with(
        &introspection_config(&op.issuer(), "tokengate-post", "client_secret_post", Some(&endpoint)),
        start_echo().await,
    )
    .await;
    assert!(wait_ready(&sidecar).await);
    let opaque = op.access_token("urn:api:opaque").await;
    let reply = get_with_token(&sidecar.url("/orders"), &opaque).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    sidecar.stop().await;
}

/// The provider refusing tokengate's credentials, hanging, or gone: 503 with
/// Retry-After (the token may be valid; a 401 would make clients drop it),
/// never cached, and JWTs keep working.
#[tokio::test]
async fn an_unusable_introspection_endpoint_answers_503_and_caches_nothing() {
    let op = Op::start(None).await;
    // Accepts connections and never answers.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_url = format!("http://{}/introspect", hung.local_addr().unwrap());
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hung.accept().await {
            held.push(s);
        }
    });
    let wrong_secret = introspection_config_with(
        &op.issuer(),
        ("tokengate", "not-the-secret-at-all-0123456789"),
        "client_secret_basic",
        None,
    );
    for (yaml, what) in [
        (wrong_secret, "credentials the provider refuses"),
        (
            introspection_config(&op.issuer(), "tokengate", "client_secret_basic", Some(&hung_url)),
            "an endpoint that never answers",
        ),
    ] {
        let sidecar = TestProxy::start_with(&yaml, start_echo().await).await;
        assert!(wait_ready(&sidecar).await);
        let opaque = op.access_token("urn:api:opaque").await;
        let started = std::time::Instant::now();
        for _ in 0..2 {
            let reply = get_with_token(&sidecar.url("/orders"), &opaque).await;
            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {}", reply.body);
            assert_eq!(reply.headers["retry-after"], "1", "{what}");
            assert!(!reply.body.contains(&opaque), "{what}: the token is echoed");
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{what}: the timeout was not kept"
        );
        assert_eq!(
            introspections(&sidecar, "unavailable").await,
            2.0,
            "{what}: a failure was cached"
        );
        let jwt = op.access_token("urn:api:RS256").await;
        assert_eq!(status_of(&sidecar, &jwt).await, StatusCode::OK, "{what}");
        sidecar.stop().await;
    }
}

/// Tokens that are not bearer access tokens, whatever `typ` says or omits:
/// an untyped logout token (where its audience is also an access-token
/// audience), a key-bound token (`cnf`), and introspection answers for a
/// refresh token or a bound token. And an introspection answer that names a
/// member twice is not believed.
#[tokio::test]
async fn only_bearer_access_tokens_pass_as_access_tokens() {
    let idp = JwksServer::start(vec![jwk(Algorithm::ES256, "k1")]).await;
    let issuer = idp.origin();
    idp.set_document(
        "/.well-known/openid-configuration",
        json!({"issuer": issuer, "jwks_uri": idp.url(), "introspection_endpoint": format!("{issuer}/introspect")}),
    );
    let dir = temp_dir("bearer-only");
    std::fs::write(dir.join("secret"), "s3cret\n").unwrap();
    let yaml = format!(
        r#"
listen: "127.0.0.1:0"
admin: {{ listen: "127.0.0.1:0" }}
upstream: {{ url: "http://{{upstream}}" }}
auth:
  issuers:
    - issuer: "{issuer}"
      discovery: true
      audiences: [rp]
      backchannel_logout: {{ audiences: [rp] }}
      introspection: {{ client_id: tg, secret_file: "{}", negative_cache: 0s }}
  identity_headers: {{ subject: X-Auth-Subject }}
routes:
  - prefix: /
"#,
        dir.join("secret").display()
    );
    let proxy = TestProxy::start_with(&yaml, start_echo().await).await;
    assert!(wait_ready(&proxy).await);
    let sign = |claims: serde_json::Value| {
        tokengate::install_crypto_providers();
        let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        header.typ = None;
        jsonwebtoken::encode(&header, &claims, &signing_key(Algorithm::ES256)).unwrap()
    };
    let base = || json!({"iss": issuer, "aud": "rp", "sub": "alice", "iat": now(), "exp": now() + 300, "jti": format!("j{}", now())});
    let plain = sign(base());
    assert_eq!(status_of(&proxy, &plain).await, StatusCode::OK);

    let mut logout = base();
    logout["events"] = json!({ "http://schemas.openid.net/event/backchannel-logout": {} });
    logout.as_object_mut().unwrap().remove("exp");
    let logout = sign(logout);
    let reply = get_with_token(&proxy.url("/orders"), &logout).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "an untyped logout token passed: {}",
        reply.body
    );
    let mut bound = base();
    bound["cnf"] = json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"});
    assert_eq!(
        status_of(&proxy, &sign(bound)).await,
        StatusCode::UNAUTHORIZED,
        "a DPoP-bound token passed as bearer"
    );
    assert_eq!(
        metric(
            proxy.admin,
            "tokengate_requests_total{outcome=\"rejected\",reason=\"wrong_type\"}"
        )
        .await,
        2.0
    );

    for (n, (answer, expected)) in [
        (
            json!({"active": true, "aud": "rp", "sub": "u", "token_type": "Bearer"}),
            StatusCode::OK,
        ),
        (
            json!({"active": true, "aud": "rp", "sub": "u", "token_type": "refresh_token"}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            json!({"active": true, "aud": "rp", "sub": "u", "cnf": {"x5t#S256": "abc"}}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            json!({"active": true, "aud": "rp", "sub": "u", "token_type": "DPoP"}),
            StatusCode::UNAUTHORIZED,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        idp.set_document("/introspect", answer.clone());
        let reply = get_with_token(&proxy.url("/orders"), &format!("opaque-{n}")).await;
        assert_eq!(reply.status, expected, "{answer}: {}", reply.body);
    }
    // A raw answer naming `active` twice (serde_json would keep the last).
    idp.set_raw_document(
        "/introspect",
        r#"{"active": false, "active": true, "aud": "rp", "sub": "u"}"#,
    );
    let reply = get_with_token(&proxy.url("/orders"), "opaque-dup").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.body);

    // The untyped logout token is still a valid logout token.
    let reply = post_logout(&proxy, &format!("logout_token={logout}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(status_of(&proxy, &plain).await, StatusCode::UNAUTHORIZED);
    proxy.stop().await;
}
