//! What the tests of replicated Redis (Sentinel, Cluster) share: a
//! sidecar config on a Redis URL, revocations through the admin port, and
//! tokens to check them with.

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use jsonwebtoken::Algorithm;
use serde_json::json;

use super::*;

/// A sidecar on the Redis at `url`, with sessions.
pub fn config(url: &str) -> String {
    config_waiting(url, 0)
}

/// [`config`] with `wait_for_replicas: replicas`.
pub fn config_waiting(url: &str, replicas: u32) -> String {
    format!(
        "{}
revocation:
  backend: redis
  redis:
    url: \"{url}\"
    wait_for_replicas: {replicas}
    connect_timeout: 300ms
    command_timeout: 1s
    check_interval: 200ms
  max_staleness: 30s
sessions:
  signing_key: {{ private_key_file: keys/ec256.key.pem }}
  control: {{ listen: \"127.0.0.1:0\" }}
",
        base_config()
    )
}

/// Revokes `jti` through `proxy`'s admin port: the status.
pub async fn admin_revoke(proxy: &TestProxy, jti: &str) -> u16 {
    admin_revoke_reply(proxy, jti).await.status.as_u16()
}

/// [`admin_revoke`], the whole reply.
pub async fn admin_revoke_reply(proxy: &TestProxy, jti: &str) -> Reply {
    let body = json!({"jti": jti, "exp": now() + 600}).to_string();
    let req = Request::post(format!("http://{}/revoke", proxy.admin))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    send(&http1(), req).await
}

/// The status `proxy` answers a request with `token`.
pub async fn status(proxy: &TestProxy, token: &str) -> u16 {
    get_with_token(&proxy.url("/x"), token).await.status.as_u16()
}

/// A valid token with `jti`.
pub fn token_with_jti(jti: &str) -> String {
    let mut c = claims("sentinel-user");
    c["jti"] = jti.into();
    sign(Algorithm::HS256, &c)
}

/// A POST of `body` as `content_type`, with `authorization` if given.
async fn post_to(url: String, content_type: &str, authorization: Option<&str>, body: String) -> Reply {
    let mut req = Request::post(url).header("content-type", content_type);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    send(&http1(), req.body(Full::new(Bytes::from(body))).unwrap()).await
}

/// Opens a session for `sub` on `proxy`'s control listener: the reply.
pub async fn open_session(proxy: &TestProxy, sub: &str) -> Reply {
    let url = format!("http://{}/sessions", proxy.control.expect("control listener"));
    post_to(url, "application/json", None, json!({ "sub": sub }).to_string()).await
}

/// Spends `refresh_token` at `proxy`: the reply.
pub async fn refresh_session(proxy: &TestProxy, refresh_token: &str) -> Reply {
    let body = format!("grant_type=refresh_token&refresh_token={refresh_token}");
    post_to(
        proxy.url("/.tokengate/refresh"),
        "application/x-www-form-urlencoded",
        None,
        body,
    )
    .await
}

/// Ends the session of `access_token` at `proxy`: the reply.
pub async fn logout(proxy: &TestProxy, access_token: &str) -> Reply {
    let bearer = format!("Bearer {access_token}");
    post_to(
        proxy.url("/.tokengate/logout"),
        "application/x-www-form-urlencoded",
        Some(&bearer),
        String::new(),
    )
    .await
}

/// A field of a JSON reply.
pub fn json_field(reply: &Reply, name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_else(|_| panic!("JSON: {}", reply.body));
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {}", reply.body))
        .to_owned()
}

/// Waits until `proxy`'s `/readyz` is 200.
pub async fn wait_ready(proxy: &TestProxy) -> bool {
    wait_until(DEADLINE, || async {
        get(&format!("http://{}/readyz", proxy.admin), &[]).await.status == 200
    })
    .await
    .is_some()
}

/// Every revocation in `acknowledged` is in the set of the master at
/// `master`, and every one of `sidecars` refuses a token carrying it.
pub async fn assert_every_acknowledged_kept(master: u16, acknowledged: &[String], sidecars: &[&TestProxy]) {
    for jti in acknowledged {
        let held = super::redis::cli_at(master, &["ZSCORE", "{tokengate}:revoked:jti", jti]);
        assert!(!held.trim().is_empty(), "{jti} was acknowledged and lost");
    }
    for p in sidecars {
        let all = wait_until(DEADLINE, || async {
            for jti in acknowledged {
                if status(p, &token_with_jti(jti)).await != 401 {
                    return false;
                }
            }
            true
        })
        .await;
        assert!(
            all.is_some(),
            "a sidecar does not enforce every acknowledged revocation"
        );
    }
}
