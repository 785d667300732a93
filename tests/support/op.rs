//! A real OpenID Provider (`tests/provider/provider.mjs`, panva's
//! oidc-provider) on a free port, which a test can stop and start again on
//! the same port (with new keys: a rotation).

use std::path::PathBuf;
use std::process::Stdio;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

pub use super::free_port;
use super::{DEADLINE, http1, send};

/// The client that gets access tokens (client-credentials grant).
pub const API_CLIENT: (&str, &str) = ("api-client", "api-client-secret-0123456789abcdef");
/// tokengate's browser sign-in client (`web`, with the `start_web` provider).
pub const WEB_CLIENT: (&str, &str) = ("web", "web-client-secret-0123456789abcdef");
/// tokengate's own client at the provider, for introspection.
pub const TOKENGATE_CLIENT: (&str, &str) = ("tokengate", "tokengate-introspection-secret-0123");

pub struct Op {
    pub port: u16,
    config: Value,
    child: Option<tokio::process::Child>,
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/provider")
}

impl Op {
    /// Starts a provider whose `rp` client has `backchannel_logout_uri`.
    pub async fn start(backchannel_logout_uri: Option<&str>) -> Op {
        Op::start_at(free_port(), backchannel_logout_uri).await
    }

    /// A provider on `port` whose `web` client signs browsers in to the app
    /// at `app` (its origin: callback, sign-out return and back-channel
    /// logout under it), with the development login and consent pages.
    pub async fn start_web(port: u16, app: &str) -> Op {
        Op::start_web_with(port, app, None).await
    }

    /// [`Op::start_web`]; with `public_key_pem`, the `web` client
    /// authenticates with private_key_jwt under that key (kid `web-key-1`).
    pub async fn start_web_with(port: u16, app: &str, public_key_pem: Option<&str>) -> Op {
        let mut config = json!({ "port": port, "introspection_secret": TOKENGATE_CLIENT.1 });
        config["web"] = json!({
            "redirect_uri": format!("{app}/.tokengate/callback"),
            "post_logout_redirect_uri": format!("{app}/"),
            "backchannel_logout_uri": format!("{app}/.tokengate/backchannel-logout"),
        });
        if let Some(pem) = public_key_pem {
            config["web"]["public_key_pem"] = pem.into();
            config["web"]["key_id"] = "web-key-1".into();
        }
        let mut op = Op {
            port,
            config,
            child: None,
        };
        op.spawn().await;
        op
    }

    /// [`Op::start`] on `port` (so configs can name the issuer first).
    pub async fn start_at(port: u16, backchannel_logout_uri: Option<&str>) -> Op {
        assert!(
            provider_dir().join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is missing: run scripts/test.sh (it runs npm ci in tests/provider)"
        );
        let mut config = json!({ "port": port, "introspection_secret": TOKENGATE_CLIENT.1 });
        if let Some(uri) = backchannel_logout_uri {
            config["backchannel_logout_uri"] = uri.into();
        }
        let mut op = Op {
            port,
            config,
            child: None,
        };
        op.spawn().await;
        op
    }

    async fn spawn(&mut self) {
        let mut child = tokio::process::Command::new("node")
            .arg(provider_dir().join("provider.mjs"))
            .arg(self.config.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Kept so a provider that fails to start says why.
        let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
        let stderr = tokio::spawn(async move {
            let mut kept = String::new();
            while let Ok(Some(line)) = errors.next_line().await {
                if kept.len() < 8192 {
                    kept.push_str(&line);
                    kept.push('\n');
                }
            }
            kept
        });
        if !listening(&mut lines).await {
            let _ = child.kill().await;
            let why = stderr.await.unwrap_or_default();
            panic!("the provider did not start on port {}: {why}", self.port);
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }

    /// The issuer (`http://127.0.0.1:PORT`).
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the provider (its keys and tokens are gone with it).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same port, with new keys.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    /// A POST of a form to `path`, as `client` with HTTP Basic.
    pub async fn post_form(&self, path: &str, client: (&str, &str), form: &[(&str, &str)]) -> super::Reply {
        use base64::Engine as _;
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", client.0, client.1));
        let req = Request::post(format!("{}{path}", self.issuer()))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Basic {basic}"))
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        send(&http1(), req).await
    }

    /// An access token from the client-credentials grant for `resource`
    /// (`urn:api:<ALG>`: an RFC 9068 JWT signed with ALG; `urn:api:opaque`:
    /// an opaque token).
    pub async fn access_token(&self, resource: &str) -> String {
        self.access_token_with(resource, &[]).await
    }

    /// [`Op::access_token`] with more form fields (`test_sid`: the token's `sid`).
    pub async fn access_token_with(&self, resource: &str, extra: &[(&str, &str)]) -> String {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("resource", resource),
            ("scope", "read"),
        ];
        form.extend_from_slice(extra);
        let reply = self.post_form("/token", API_CLIENT, &form).await;
        assert_eq!(reply.status, 200, "token request: {}", reply.body);
        let v: Value = serde_json::from_str(&reply.body).unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    /// Has the provider send its back-channel logout token for `sub`/`sid`
    /// to the `rp` client; the provider's view of the receiver's answer.
    pub async fn backchannel_logout(&self, sub: &str, sid: &str) -> super::Reply {
        self.backchannel_logout_to("rp", sub, sid).await
    }

    /// A logout token for `client` (`sub`, `sid`), handed over instead of sent.
    pub async fn logout_token(&self, client: &str, sub: &str, sid: &str) -> String {
        let reply = self.test_route("logout-token", client, sub, sid).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// A POST to the provider's test route `/test/{route}` for `client`, `sub`, `sid`.
    async fn test_route(&self, route: &str, client: &str, sub: &str, sid: &str) -> super::Reply {
        let req = Request::post(format!(
            "{}/test/{route}?sub={}&sid={}&client={}",
            self.issuer(),
            urlencode(sub),
            urlencode(sid),
            urlencode(client)
        ))
        .body(Full::new(Bytes::new()))
        .unwrap();
        send(&http1(), req).await
    }

    /// [`Op::backchannel_logout`] to `client`'s back-channel URI.
    pub async fn backchannel_logout_to(&self, client: &str, sub: &str, sid: &str) -> super::Reply {
        self.test_route("backchannel-logout", client, sub, sid).await
    }
}

/// Waits (up to [`DEADLINE`]) for a provider's `listening ...` line.
pub async fn listening<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut tokio::io::Lines<R>) -> bool {
    let seen = tokio::time::timeout(DEADLINE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("listening ") {
                return true;
            }
        }
        false
    })
    .await;
    seen == Ok(true)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
