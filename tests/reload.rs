//! Hot reload: a changed config file or key file is picked up by the watcher,
//! SIGHUP reloads the real binary, and a broken file keeps the running
//! configuration serving.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use support::*;
use tokengate::Config;

const SECRET_A: &[u8] = b"first-secret-first-secret-first-secret!!";
const SECRET_B: &[u8] = b"second-secret-second-secret-second-secret";

/// A config whose HS256 key is `hs.secret` beside it; `/open/` is public
/// only when `open` is true.
fn write_config(file: &Path, upstream: std::net::SocketAddr, open: bool, watch: bool) {
    let open_route = if open {
        "  - prefix: /open/\n    public: true\n"
    } else {
        ""
    };
    std::fs::write(
        file,
        format!(
            r#"listen: "127.0.0.1:0"
admin: {{ listen: "127.0.0.1:0" }}
upstream: {{ url: "http://{upstream}" }}
reload: {{ watch: {watch}, watch_interval: 100ms }}
auth:
  issuers:
    - issuer: t
      keys: [{{ algorithm: HS256, secret_file: hs.secret }}]
routes:
{open_route}  - prefix: /
"#
        ),
    )
    .unwrap();
}

fn hs_token(secret: &[u8]) -> String {
    sign_with(
        Algorithm::HS256,
        None,
        &json!({"iss": "t", "sub": "u", "exp": now() + 300}),
        &EncodingKey::from_secret(secret),
    )
}

async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_changed_config_or_key_file_is_reloaded_and_a_broken_one_is_refused() {
    let upstream = start_echo().await;
    let dir = temp_dir("watch");
    let file = dir.join("tokengate.yaml");
    std::fs::write(dir.join("hs.secret"), SECRET_A).unwrap();
    write_config(&file, upstream, false, true);
    let proxy = TestProxy::start_config(Config::load(&file).unwrap(), upstream).await;
    let open = proxy.url("/open/page");
    assert_eq!(get(&open, &[]).await.status, 401);

    // A route change in the config file.
    write_config(&file, upstream, true, true);
    assert!(eventually(DEADLINE, async || get(&open, &[]).await.status == 200).await);
    assert_eq!(
        metric(proxy.admin, r#"tokengate_config_reloads_total{result="ok"}"#).await,
        1.0
    );

    // A key file change: the new secret verifies, the old one no longer does.
    let url = proxy.url("/private");
    assert_eq!(get_with_token(&url, &hs_token(SECRET_A)).await.status, 200);
    std::fs::write(dir.join("hs.secret"), SECRET_B).unwrap();
    assert!(
        eventually(DEADLINE, async || get_with_token(&url, &hs_token(SECRET_B))
            .await
            .status
            == 200)
        .await
    );
    assert_eq!(get_with_token(&url, &hs_token(SECRET_A)).await.status, 401);

    // A broken file: refused once, counted, and the running config keeps serving.
    std::fs::write(&file, "listen: [this is not\n").unwrap();
    assert!(
        eventually(DEADLINE, async || metric(
            proxy.admin,
            r#"tokengate_config_reloads_total{result="invalid"}"#
        )
        .await
            == 1.0)
        .await
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        metric(proxy.admin, r#"tokengate_config_reloads_total{result="invalid"}"#).await,
        1.0,
        "reported once, not on every poll"
    );
    assert_eq!(get(&open, &[]).await.status, 200);
    assert_eq!(get_with_token(&url, &hs_token(SECRET_B)).await.status, 200);
    assert_eq!(get(&format!("http://{}/readyz", proxy.admin), &[]).await.status, 200);
}

#[tokio::test]
async fn sighup_reloads_the_binary_and_a_broken_file_keeps_the_old_config() {
    let upstream = start_echo().await;
    let dir = temp_dir("sighup");
    let file = dir.join("tokengate.yaml");
    std::fs::write(dir.join("hs.secret"), SECRET_A).unwrap();
    write_config(&file, upstream, false, false);
    let (mut child, proxy, admin) = spawn_binary(&file, 2).await;
    let admin: std::net::SocketAddr = admin.parse().unwrap();
    assert!(
        eventually(DEADLINE, async || get(&format!("http://{admin}/readyz"), &[])
            .await
            .status
            == 200)
        .await
    );
    let open = format!("http://{proxy}/open/page");
    let hup = || {
        let pid = child.id().unwrap().to_string();
        assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    };

    write_config(&file, upstream, true, false);
    // Watching is off: nothing changes until the signal.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get(&open, &[]).await.status, 401);
    hup();
    assert!(eventually(DEADLINE, async || get(&open, &[]).await.status == 200).await);

    std::fs::write(&file, "upstream: { url: 42 }\n").unwrap();
    hup();
    assert!(
        eventually(DEADLINE, async || metric(
            admin,
            r#"tokengate_config_reloads_total{result="invalid"}"#
        )
        .await
            == 1.0)
        .await
    );
    assert_eq!(get(&open, &[]).await.status, 200, "the old config still serves");
    assert!(child.try_wait().unwrap().is_none(), "still running");
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn a_reload_that_changes_the_session_signing_key_is_refused() {
    let upstream = start_echo().await;
    let dir = temp_dir("sessions-reload");
    let file = dir.join("tokengate.yaml");
    let key = fixtures().join("keys/ec256.key.pem");
    let write = |kid: &str| {
        std::fs::write(
            &file,
            format!(
                r#"listen: "127.0.0.1:0"
admin: {{ listen: "127.0.0.1:0" }}
upstream: {{ url: "http://{upstream}" }}
reload: {{ watch: true, watch_interval: 100ms }}
auth: {{}}
sessions:
  signing_key: {{ private_key_file: "{}", kid: {kid} }}
  control: {{ listen: "127.0.0.1:0" }}
routes:
  - prefix: /
"#,
                key.display()
            ),
        )
        .unwrap()
    };
    write("first");
    let proxy = TestProxy::start_config(Config::load(&file).unwrap(), upstream).await;
    let open = || async {
        let reply = support::send(
            &http1(),
            http::Request::post(format!("http://{}/sessions", proxy.control.unwrap()))
                .body(http_body_util::Full::new(bytes::Bytes::from(r#"{"sub": "u"}"#)))
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        serde_json::from_str::<serde_json::Value>(&reply.body).unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let before = open().await;
    write("second");
    let refused = eventually(DEADLINE, async || {
        metric(proxy.admin, r#"tokengate_config_reloads_total{result="invalid"}"#).await >= 1.0
    })
    .await;
    assert!(refused, "a changed sessions section is refused");
    // The running service and its verifier still agree.
    assert_eq!(get_with_token(&proxy.url("/x"), &before).await.status, 200);
    assert_eq!(get_with_token(&proxy.url("/x"), &open().await).await.status, 200);
}

/// The logout receiver is built at start: turning it on by a reload would
/// silently not happen, so the reload is refused and says why.
#[tokio::test]
async fn a_reload_that_turns_on_backchannel_logout_is_refused() {
    let upstream = start_echo().await;
    let dir = temp_dir("backchannel-reload");
    let file = dir.join("tokengate.yaml");
    let secret = fixtures().join("keys/hs32.secret");
    let write = |logout: &str| {
        std::fs::write(
            &file,
            format!(
                "listen: \"127.0.0.1:0\"\nadmin: {{ listen: \"127.0.0.1:0\" }}\nupstream: {{ url: \"http://{upstream}\" }}\nreload: {{ watch: true, watch_interval: 100ms }}\nauth:\n  issuers:\n    - {{ issuer: op, keys: [{{ algorithm: HS256, secret_file: \"{}\" }}]{logout} }}\n",
                secret.display()
            ),
        )
        .unwrap()
    };
    write("");
    let proxy = TestProxy::start_config(Config::load(&file).unwrap(), upstream).await;
    // Harmless changes until one is reloaded: then the watcher is running
    // (it takes its baseline when it starts, which may be after a first write).
    let mut round = 0;
    let watching = eventually(DEADLINE, async || {
        round += 1;
        write(if round % 2 == 0 {
            ", audiences: [app]"
        } else {
            ", audiences: [app, other]"
        });
        metric(proxy.admin, r#"tokengate_config_reloads_total{result="ok"}"#).await >= 1.0
    })
    .await;
    assert!(watching, "no harmless change was reloaded");
    write(", backchannel_logout: { audiences: [rp] }");
    let refused = eventually(DEADLINE, async || {
        metric(proxy.admin, r#"tokengate_config_reloads_total{result="invalid"}"#).await >= 1.0
    })
    .await;
    assert!(refused, "turning the receiver on by a reload is refused");
    let reply = support::send(
        &http1(),
        http::Request::post(proxy.url("/.tokengate/backchannel-logout"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(http_body_util::Full::new(bytes::Bytes::from("logout_token=x")))
            .unwrap(),
    )
    .await;
    assert_ne!(reply.status, 400, "no receiver was started by the refused reload");
}

/// The library reloads on the trigger it is handed, as the binary does on
/// SIGHUP (`App::run_with_reloads`).
#[tokio::test]
async fn the_library_reloads_on_the_trigger_it_is_handed() {
    let upstream = start_echo().await;
    let dir = temp_dir("trigger");
    let file = dir.join("tokengate.yaml");
    std::fs::write(dir.join("hs.secret"), SECRET_A).unwrap();
    write_config(&file, upstream, false, false);
    let config = Config::load(&file).unwrap();
    let listeners = tokengate::Listeners {
        proxy: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        admin: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        control: None,
        decision: None,
    };
    let proxy = listeners.proxy.local_addr().unwrap();
    let (reload, reloads) = tokio::sync::mpsc::channel(1);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = tokengate::App::new(config).unwrap();
    let running = tokio::spawn(app.run_with_reloads(
        listeners,
        async {
            let _ = stopped.await;
        },
        Some(reloads),
    ));
    let open = format!("http://{proxy}/open/page");
    assert_eq!(get(&open, &[]).await.status, 401);
    write_config(&file, upstream, true, false);
    reload.send(()).await.unwrap();
    assert!(eventually(DEADLINE, async || get(&open, &[]).await.status == 200).await);
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
