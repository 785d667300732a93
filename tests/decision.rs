//! Decision mode at the protocol level: every front door of the decision
//! listener, driven as nginx, Traefik/Caddy and Envoy (HTTP and a real gRPC
//! client built from Envoy's protos) drive it. The real ingresses are in
//! `tests/ingress.rs`.

mod support;

use std::net::SocketAddr;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use jsonwebtoken::Algorithm;
use serde_json::json;
use support::*;

const SECRET: &str = "decision-secret-0123456789";

/// The base config without its query token source, which decision mode
/// refuses (the ingress would forward the token in the URL).
fn config(decision: &str) -> String {
    let base = base_config().replace("    - query: access_token\n", "");
    format!("{base}decision: {decision}\n")
}

async fn start(decision: &str) -> (TestProxy, SocketAddr) {
    let upstream = closed_port().await;
    let proxy = TestProxy::start_with(&config(decision), upstream).await;
    let addr = proxy.decision.expect("a decision listener");
    (proxy, addr)
}

fn token(sub: &str, extra: serde_json::Value) -> String {
    let mut c = claims(sub);
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    sign(Algorithm::HS256, &c)
}

async fn nginx(addr: SocketAddr, method: &str, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("x-original-method", method), ("x-original-uri", uri)];
    all.extend_from_slice(headers);
    get(&format!("http://{addr}/nginx"), &all).await
}

#[tokio::test]
async fn nginx_auth_request_allows_with_identity_and_refuses_with_the_proxys_answers() {
    let (proxy, addr) = start("{}").await;
    let good = token("alice", json!({"email": "a@x", "scope": "read"}));
    let bearer = format!("Bearer {good}");

    let ok = nginx(addr, "GET", "/orders/1?x=2", &[("authorization", &bearer)]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.headers["x-auth-subject"], "alice");
    assert_eq!(ok.headers["x-auth-email"], "a@x");
    // Absent claim: set empty, so the ingress overwrites a client's own.
    assert_eq!(ok.headers["x-auth-role"], "");
    assert_eq!(ok.headers["cache-control"], "no-store");

    let missing = nginx(addr, "GET", "/orders/1", &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.www_authenticate(), r#"Bearer realm="tokengate""#);

    let expired = token("bob", json!({"exp": now() - 3600, "iat": now() - 7200}));
    let r = nginx(
        addr,
        "GET",
        "/orders/1",
        &[("authorization", &format!("Bearer {expired}"))],
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(
        r.www_authenticate().contains("token expired"),
        "{}",
        r.www_authenticate()
    );

    let r = nginx(addr, "GET", "/admin/panel", &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 403);
    assert!(r.www_authenticate().contains("insufficient_scope"));

    // Public: allowed, and every identity header is blanked.
    let r = nginx(addr, "GET", "/public/x", &[("x-auth-subject", "root")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-auth-subject"], "");

    // The method is part of what is judged.
    assert_eq!(
        metric(
            proxy.admin,
            "tokengate_decisions_total{mode=\"nginx\",outcome=\"allowed\",reason=\"authorized\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(
            proxy.admin,
            "tokengate_decisions_total{mode=\"nginx\",outcome=\"rejected\",reason=\"missing_token\"}"
        )
        .await,
        1.0
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_revocation_wins_on_the_next_decision() {
    let (proxy, addr) = start("{ cache_max_age: 60s }").await;
    let t = token("carol", json!({"jti": "dec-carol-1"}));
    let bearer = format!("Bearer {t}");
    let first = nginx(addr, "GET", "/x", &[("authorization", &bearer)]).await;
    assert_eq!(first.status, 200);
    // Cacheable, but never past the token's exp (300 s) nor the setting.
    assert_eq!(first.headers["cache-control"], "max-age=60");
    assert_eq!(first.headers["vary"], "authorization, cookie");
    let body = format!(r#"{{"jti": "dec-carol-1", "exp": {}}}"#, now() + 300);
    let req = Request::post(format!("http://{}/revoke", proxy.admin))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    assert_eq!(send(&http1(), req).await.status, 200);
    let after = nginx(addr, "GET", "/x", &[("authorization", &bearer)]).await;
    assert_eq!(after.status, 401);
    assert!(after.www_authenticate().contains("token revoked"));
    assert_eq!(after.headers["cache-control"], "no-store");

    let short = token("dan", json!({"exp": now() + 20}));
    let r = nginx(addr, "GET", "/x", &[("authorization", &format!("Bearer {short}"))]).await;
    let age: u64 = r.headers["cache-control"]
        .to_str()
        .unwrap()
        .trim_start_matches("max-age=")
        .parse()
        .unwrap();
    assert!(age <= 20, "max-age {age} past the token's exp");
    proxy.stop().await;
}

/// A name, the front door's headers, the status expected.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16);

#[tokio::test]
async fn what_the_proxy_would_refuse_is_refused_and_nothing_is_guessed() {
    let (proxy, addr) = start("{}").await;
    let bearer = format!("Bearer {}", token("erin", json!({"scope": "admin"})));
    let cases: &[Case<'_>] = &[
        // No method, no URI: never judged as some default.
        ("no method", &[("x-original-uri", "/public/x")], 400),
        ("no uri", &[("x-original-method", "GET")], 400),
        // A path the proxy would normalise: the app would get the raw one.
        (
            "dot segments",
            &[("x-original-method", "GET"), ("x-original-uri", "/public/../admin/x")],
            400,
        ),
        (
            "encoded dots",
            &[
                ("x-original-method", "GET"),
                ("x-original-uri", "/public/%2e%2e/admin/x"),
            ],
            400,
        ),
        (
            "path parameter",
            &[("x-original-method", "GET"), ("x-original-uri", "/public;x/../admin/x")],
            400,
        ),
        (
            "encoded slash",
            &[("x-original-method", "GET"), ("x-original-uri", "/public%2f..%2fadmin")],
            400,
        ),
        (
            "not a path",
            &[("x-original-method", "GET"), ("x-original-uri", "http://evil/admin")],
            400,
        ),
        (
            "lower-case method",
            &[("x-original-method", "get"), ("x-original-uri", "/public/x")],
            400,
        ),
        // An identity header in a spelling the app folds onto the real one.
        (
            "disguised identity",
            &[
                ("x-original-method", "GET"),
                ("x-original-uri", "/public/x"),
                ("x_auth_subject", "root"),
            ],
            400,
        ),
        // An upgrade the route does not allow (the default allows websocket only).
        (
            "h2c upgrade",
            &[
                ("x-original-method", "GET"),
                ("x-original-uri", "/public/x"),
                ("upgrade", "h2c"),
                ("connection", "upgrade"),
            ],
            400,
        ),
        // Two protocols offered: the proxy would drop the header; an ingress
        // might switch to the first.
        (
            "two upgrades",
            &[
                ("x-original-method", "GET"),
                ("x-original-uri", "/public/x"),
                ("upgrade", "websocket, h2c"),
                ("connection", "upgrade"),
            ],
            400,
        ),
        // A method override the app could route on.
        (
            "method override",
            &[
                ("x-original-method", "GET"),
                ("x-original-uri", "/public/x"),
                ("x-http-method-override", "DELETE"),
            ],
            400,
        ),
        // ingress-nginx's URL built from `Host: app#`.
        (
            "fragment",
            &[
                ("x-original-method", "GET"),
                ("x-original-url", "http://app.example#/admin/x"),
            ],
            400,
        ),
    ];
    for (name, headers, status) in cases {
        let mut all = headers.to_vec();
        all.push(("authorization", &bearer));
        let r = get(&format!("http://{addr}/nginx"), &all).await;
        assert_eq!(r.status, *status, "{name}: {}", r.body);
    }
    // Two URIs: which one would the ingress forward? Refused (raw bytes,
    // since a client library might merge them).
    let raw = format!(
        "GET /nginx HTTP/1.1\r\nHost: a\r\nX-Original-Method: GET\r\nX-Original-URI: /admin/x\r\nX-Original-URI: /public/x\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n"
    );
    let answer = raw::exchange(addr, raw.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // An unknown front door is no decision.
    assert_eq!(get(&format!("http://{addr}/auth"), &[]).await.status, 404);
    let series =
        |reason: &str| format!("tokengate_decisions_total{{mode=\"nginx\",outcome=\"rejected\",reason=\"{reason}\"}}");
    assert_eq!(
        metric(proxy.admin, &series("bad_path")).await,
        4.0,
        "the four path cases"
    );
    assert_eq!(
        metric(proxy.admin, &series("bad_request")).await,
        10.0,
        "the rest, and the raw one"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn forward_auth_reads_traefiks_and_caddys_headers() {
    let (proxy, addr) = start("{}").await;
    let url = format!("http://{addr}/forward-auth");
    let bearer = format!("Bearer {}", token("frank", json!({"role": "staff"})));
    let ok = get(
        &url,
        &[
            ("x-forwarded-method", "POST"),
            ("x-forwarded-uri", "/staff/area?y=1"),
            ("x-forwarded-host", "app.example"),
            ("x-forwarded-proto", "https"),
            ("authorization", &bearer),
        ],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.headers["x-auth-subject"], "frank");
    assert_eq!(ok.headers["x-auth-role"], "staff");
    let other = token("gina", json!({}));
    let r = get(
        &url,
        &[
            ("x-forwarded-method", "GET"),
            ("x-forwarded-uri", "/staff/area"),
            ("authorization", &format!("Bearer {other}")),
        ],
    )
    .await;
    assert_eq!(r.status, 403);
    let r = get(&url, &[("x-forwarded-uri", "/public/x")]).await;
    assert_eq!(r.status, 400, "no method: {}", r.body);
    proxy.stop().await;
}

#[tokio::test]
async fn envoy_http_removes_the_headers_it_does_not_set() {
    let (proxy, addr) = start("{}").await;
    let bearer = format!("Bearer {}", token("hank", json!({"email": "h@x"})));
    let req = Request::delete(format!("http://{addr}/envoy/orders/7?z=1"))
        .header("host", "app.example")
        .header("authorization", &bearer)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let ok = send(&http1(), req).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.headers["x-auth-subject"], "hank");
    assert_eq!(ok.headers["x-auth-email"], "h@x");
    assert_eq!(ok.headers["x-envoy-auth-headers-to-remove"], "x-auth-role");
    let denied = get(&format!("http://{addr}/envoy/admin/x"), &[("authorization", &bearer)]).await;
    assert_eq!(denied.status, 403);
    assert!(denied.body.contains("insufficient_scope"));
    proxy.stop().await;
}

#[tokio::test]
async fn a_secret_restricts_who_may_ask() {
    let dir = temp_dir("decision-secret");
    let file = dir.join("secret");
    std::fs::write(&file, SECRET).unwrap();
    let (proxy, addr) = start(&format!("{{ secret_file: \"{}\" }}", file.display())).await;
    let bearer = format!("Bearer {}", token("ivy", json!({})));
    let r = nginx(addr, "GET", "/x", &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 403, "no secret");
    let r = nginx(
        addr,
        "GET",
        "/x",
        &[("authorization", &bearer), ("x-tokengate-secret", "wrong")],
    )
    .await;
    assert_eq!(r.status, 403, "wrong secret");
    let r = nginx(addr, "GET", "/public/x", &[("x-tokengate-secret", "wrong")]).await;
    assert_eq!(r.status, 403, "even for a public path");
    let r = nginx(
        addr,
        "GET",
        "/x",
        &[("authorization", &bearer), ("x-tokengate-secret", SECRET)],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        metric(
            proxy.admin,
            "tokengate_decisions_total{mode=\"nginx\",outcome=\"rejected\",reason=\"untrusted_caller\"}"
        )
        .await,
        3.0
    );
    proxy.stop().await;
}

mod grpc {
    use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as AttrRequest};
    use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
    use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
    use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};

    use super::*;

    fn check(method: &str, path: &str, headers: &[(&str, &str)]) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(AttrRequest {
                    http: Some(HttpRequest {
                        method: method.into(),
                        path: path.into(),
                        host: "app.example".into(),
                        headers: headers.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
                        ..HttpRequest::default()
                    }),
                    ..AttrRequest::default()
                }),
                ..AttributeContext::default()
            }),
        }
    }

    #[tokio::test]
    async fn envoy_grpc_check_allows_and_denies_to_the_letter_of_the_api() {
        let (proxy, addr) = start("{}").await;
        let mut client = AuthorizationClient::connect(format!("http://{addr}")).await.unwrap();
        let bearer = format!("Bearer {}", token("jack", json!({"role": "staff"})));

        let ok = client
            .check(check(
                "GET",
                "/staff/x?y=1",
                &[("authorization", &bearer), (":path", "/ignored")],
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ok.status.as_ref().map(|s| s.code), Some(0));
        let Some(HttpResponse::OkResponse(allowed)) = ok.http_response else {
            panic!("an OkHttpResponse: {ok:?}")
        };
        let set: Vec<(String, String, i32)> = allowed
            .headers
            .iter()
            .map(|h| {
                let hv = h.header.as_ref().unwrap();
                (hv.key.clone(), hv.value.clone(), h.append_action)
            })
            .collect();
        assert!(set.contains(&("x-auth-subject".into(), "jack".into(), 2)), "{set:?}");
        assert!(set.contains(&("x-auth-role".into(), "staff".into(), 2)), "{set:?}");
        assert_eq!(allowed.headers_to_remove, vec!["x-auth-email".to_owned()]);

        let denied = client.check(check("GET", "/staff/x", &[])).await.unwrap().into_inner();
        assert_eq!(denied.status.as_ref().map(|s| s.code), Some(16), "UNAUTHENTICATED");
        let Some(HttpResponse::DeniedResponse(d)) = denied.http_response else {
            panic!("a DeniedHttpResponse: {denied:?}")
        };
        assert_eq!(d.status.map(|s| s.code), Some(401));
        assert!(
            d.headers.iter().any(|h| h
                .header
                .as_ref()
                .is_some_and(|v| v.key == "www-authenticate" && v.value == r#"Bearer realm="tokengate""#)),
            "{:?}",
            d.headers
        );
        assert!(d.body.contains("invalid_request"), "{}", d.body);

        let forbidden = client
            .check(check("GET", "/admin/x", &[("authorization", &bearer)]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(forbidden.status.map(|s| s.code), Some(7), "PERMISSION_DENIED");

        // Raw headers (`encode_raw_headers`): two Authorization headers stay
        // two, and a token source seen twice is refused.
        let mut raw = check("GET", "/staff/x", &[]);
        if let Some(http) = raw
            .attributes
            .as_mut()
            .and_then(|a| a.request.as_mut())
            .and_then(|r| r.http.as_mut())
        {
            http.header_map = Some(HeaderMap {
                headers: vec![
                    HeaderValue {
                        key: "authorization".into(),
                        raw_value: bearer.clone().into_bytes(),
                        ..HeaderValue::default()
                    },
                    HeaderValue {
                        key: "authorization".into(),
                        raw_value: b"Bearer other".to_vec(),
                        ..HeaderValue::default()
                    },
                ],
            });
        }
        let twice = client.check(raw).await.unwrap().into_inner();
        assert_ne!(
            twice.status.map(|s| s.code),
            Some(0),
            "two credentials are never an allow"
        );

        let path = client
            .check(check("GET", "/public/../staff/x", &[("authorization", &bearer)]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            path.status.map(|s| s.code),
            Some(3),
            "INVALID_ARGUMENT for a non-normal path"
        );

        let empty = client.check(CheckRequest::default()).await.unwrap().into_inner();
        assert_ne!(empty.status.map(|s| s.code), Some(0), "no attributes is never an allow");
        assert_eq!(
            metric(
                proxy.admin,
                "tokengate_decisions_total{mode=\"envoy_grpc\",outcome=\"allowed\",reason=\"authorized\"}"
            )
            .await,
            1.0
        );
        proxy.stop().await;
    }

    #[tokio::test]
    async fn an_untrusted_grpc_caller_gets_permission_denied() {
        let dir = temp_dir("decision-grpc-secret");
        let file = dir.join("secret");
        std::fs::write(&file, SECRET).unwrap();
        let (proxy, addr) = start(&format!("{{ secret_file: \"{}\" }}", file.display())).await;
        let mut client = AuthorizationClient::connect(format!("http://{addr}")).await.unwrap();
        let status = client.check(check("GET", "/public/x", &[])).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        let mut req = tonic::Request::new(check("GET", "/public/x", &[]));
        req.metadata_mut().insert("x-tokengate-secret", SECRET.parse().unwrap());
        let ok = client.check(req).await.unwrap().into_inner();
        assert_eq!(ok.status.map(|s| s.code), Some(0));
        proxy.stop().await;
    }
}

mod mutual_tls {
    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// One HTTP/1.1 request over TLS, presenting `client` (cert, key) if given.
    async fn ask(addr: SocketAddr, client: Option<(&str, &str)>, bearer: &str) -> Result<String, String> {
        tokengate::install_crypto_providers();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(fixtures().join("tls/ca.pem")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let config = match client {
            Some((cert, key)) => {
                let certs = CertificateDer::pem_file_iter(fixtures().join(cert))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                let key = PrivateKeyDer::from_pem_file(fixtures().join(key)).unwrap();
                builder.with_client_auth_cert(certs, key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
        let req = format!(
            "GET /nginx HTTP/1.1\r\nHost: localhost\r\nX-Original-Method: GET\r\nX-Original-URI: /x\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n"
        );
        // TLS 1.3 reports a refused client certificate on the first read.
        tls.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        tls.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    #[tokio::test]
    async fn client_certificates_restrict_who_may_ask() {
        let f = fixtures();
        let yaml = format!(
            "{{ listen: \"0.0.0.0:0\", tls: {{ cert_file: \"{}\", key_file: \"{}\", client_ca_file: \"{}\" }} }}",
            f.join("tls/cert.pem").display(),
            f.join("tls/key.pem").display(),
            f.join("tls/client-ca.pem").display()
        );
        let (proxy, addr) = start(&yaml).await;
        let addr = SocketAddr::from(([127, 0, 0, 1], addr.port()));
        let bearer = format!("Bearer {}", token("kim", json!({})));
        let ok = ask(addr, Some(("tls/client.pem", "tls/client.key.pem")), &bearer)
            .await
            .unwrap();
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("x-auth-subject: kim"), "{ok}");
        for client in [None, Some(("tls/other-client.pem", "tls/other-client.key.pem"))] {
            let refused = ask(addr, client, &bearer).await;
            assert!(
                refused.as_ref().is_err() || refused.as_ref().is_ok_and(|r| r.is_empty()),
                "{client:?} got an answer: {refused:?}"
            );
        }
        proxy.stop().await;
    }
}
