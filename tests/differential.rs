//! The differential check: real app servers behind the proxy (gunicorn and
//! the stdlib wsgiref server for WSGI, hypercorn for ASGI with h2c), each
//! running `tests/apps/probe_app.py`, which answers with how *that* server
//! read the request. For every attack request the invariant is:
//!
//! - the app reads the method the policy judged;
//! - the path the app routes on, and the path a Java server would route on
//!   (`;` parameters stripped), need no more than the credentials that were
//!   judged: the policy, applied to the app's own reading, agrees;
//! - the app sees identity headers only as the proxy set them: exactly the
//!   verified subject, or none on a public route, whatever the spelling;
//! - no connection is switched to another protocol (no 101, no HTTP/2).

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use support::raw::{exchange, statuses};
use support::*;
use tokengate::config::{Access, Config};
use tokengate::route::RoutePolicy;
use tokio::net::TcpStream;

/// A real app server process, killed on drop.
struct AppServer {
    name: &'static str,
    addr: SocketAddr,
    _child: tokio::process::Child,
}

fn apps_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/apps")
}

async fn start_server(name: &'static str) -> AppServer {
    let port = closed_port().await.port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let bind = addr.to_string();
    let args: Vec<String> = match name {
        "wsgiref" => vec!["probe_app.py".into(), port.to_string()],
        "gunicorn" => [
            "-m",
            "gunicorn",
            "--bind",
            &bind,
            "--workers",
            "1",
            "probe_app:application",
        ]
        .map(String::from)
        .to_vec(),
        "hypercorn" => ["-m", "hypercorn", "--bind", &bind, "--workers", "1", "probe_app:app"]
            .map(String::from)
            .to_vec(),
        other => panic!("unknown server {other}"),
    };
    let child = tokio::process::Command::new("python3")
        .args(&args)
        .current_dir(apps_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("python3 is required (bash scripts/test.sh installs it): {e}"));
    let up = wait_until(Duration::from_secs(30), || async {
        TcpStream::connect(addr).await.is_ok()
    })
    .await;
    assert!(
        up.is_some(),
        "{name} did not start on {addr}; `pip install gunicorn hypercorn` (bash scripts/test.sh does)"
    );
    AppServer {
        name,
        addr,
        _child: child,
    }
}

/// Who is calling, and what that grants.
#[derive(Clone, Copy, Debug)]
enum Caller {
    Anonymous,
    User,
    Admin,
}

impl Caller {
    fn token(self) -> Option<String> {
        let mut c = claims(match self {
            Caller::Anonymous => return None,
            Caller::User => "alice",
            Caller::Admin => "root",
        });
        if let Caller::Admin = self {
            c["scope"] = json!("admin");
        }
        Some(sign(Algorithm::ES256, &c))
    }

    fn subject(self) -> Option<&'static str> {
        match self {
            Caller::Anonymous => None,
            Caller::User => Some("alice"),
            Caller::Admin => Some("root"),
        }
    }

    fn scopes(self) -> &'static [&'static str] {
        match self {
            Caller::Admin => &["admin"],
            _ => &[],
        }
    }
}

fn config_yaml() -> String {
    base_config().replace(
        "routes:\n",
        "routes:\n  - prefix: /legacy/admin/\n    require: { scopes: [admin] }\n  - prefix: /legacy/\n    public: true\n  - prefix: /items/\n    methods: [DELETE]\n    require: { scopes: [admin] }\n  - prefix: /items/\n    public: true\n",
    )
}

/// `path` as the app has it (already decoded once by the server), with dot
/// segments and empty segments resolved and nothing decoded again.
fn resolve(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/').skip(1) {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let trailing = if path.ends_with('/') && !out.is_empty() {
        "/"
    } else {
        ""
    };
    format!("/{}{trailing}", out.join("/"))
}

/// Whether `caller` satisfies what the policy asks of `method path` as the
/// app reads it, compared as a case-insensitive router would, too.
fn granted(policy: &RoutePolicy, method: &str, path: &str, caller: Caller) -> bool {
    let path = resolve(path);
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
        return false;
    };
    [path.clone(), path.to_ascii_lowercase()]
        .iter()
        .all(|p| match policy.access(&method, p) {
            Access::Public => true,
            Access::Token(r) => {
                caller.subject().is_some()
                    && r.claims.is_empty()
                    && r.scopes.iter().all(|s| caller.scopes().contains(&s.as_str()))
            }
        })
}

/// Spoofed identity and forwarding headers, in every spelling.
const SPOOFS: &str = "X_Auth_Subject: root\r\nx-auth-subject: root\r\nX.Auth.Subject: root\r\nX-Auth_Email: root@x\r\nX_Forwarded_Host: admin.internal\r\nX_Forwarded_Proto: https\r\nX-Original-URL: /admin/panel\r\nX-HTTP-Method-Override: DELETE\r\n";

/// (method, target, extra header lines) sent by every caller.
fn corpus() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("GET", "/public/x", SPOOFS),
        ("GET", "/x", SPOOFS),
        ("GET", "/admin/panel", SPOOFS),
        ("GET", "/admin;jsessionid=0/panel", ""),
        ("GET", "/legacy/admin;x/panel", ""),
        ("GET", "/legacy/admin%3Bx/panel", ""),
        ("GET", "/legacy/x/..;/admin/panel", ""),
        ("GET", "/legacy/%2e%2e/admin/panel", ""),
        ("GET", "/public/%2e%2e/admin/panel", ""),
        ("GET", "/public/%252e%252e/admin/panel", ""),
        ("GET", "//admin/panel", ""),
        ("GET", "/ADMIN/panel", ""),
        ("GET", "/Legacy/Admin/panel", ""),
        ("GET", "/admin%2fpanel", ""),
        ("GET", "/public/..%5cadmin", ""),
        ("delete", "/items/1", ""),
        ("DELETE", "/items/1", ""),
        (
            "GET",
            "/public/x",
            "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
        ),
        (
            "GET",
            "/x",
            "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
        ),
        ("GET", "/public/x", "Transfer_Encoding: chunked\r\n"),
    ]
}

/// Checks one app's reading of one request against the invariant.
fn check(policy: &RoutePolicy, server: &str, what: &str, caller: Caller, method: &str, seen: &Value) {
    let context = format!("{server}: {what} as {caller:?}: {seen}");
    let seen_method = seen["method"].as_str().unwrap();
    assert_eq!(seen_method, method, "method: {context}");
    for key in ["path", "java_path"] {
        let path = seen[key].as_str().unwrap();
        assert!(
            granted(policy, seen_method, path, caller),
            "the app routes on {key} {path}, which {caller:?} may not reach: {context}"
        );
    }
    let env = &seen["env"];
    // A public route carries no identity (no token is inspected there); a
    // protected one carries exactly the verified subject, in one copy.
    let subject = env["HTTP_X_AUTH_SUBJECT"].as_str();
    assert!(subject.is_none() || subject == caller.subject(), "identity: {context}");
    let path = seen["path"].as_str().unwrap();
    if !granted(policy, seen_method, path, Caller::Anonymous) {
        assert_eq!(subject, caller.subject(), "identity on a protected route: {context}");
    }
    assert!(env["HTTP_X_AUTH_EMAIL"].is_null(), "{context}");
    assert_eq!(env["HTTP_X_FORWARDED_PROTO"], "http", "{context}");
    assert_eq!(env["HTTP_X_FORWARDED_HOST"], "app.test", "{context}");
    assert!(env["HTTP_TRANSFER_ENCODING"].is_null(), "{context}");
    assert!(env["HTTP_UPGRADE"].is_null(), "{context}");
    assert!(env["HTTP_X_ORIGINAL_URL"].is_null(), "{context}");
    assert!(env["HTTP_X_HTTP_METHOD_OVERRIDE"].is_null(), "{context}");
    let version = seen["version"].as_str().unwrap_or("");
    assert!(!version.contains('2'), "switched to HTTP/2: {context}");
}

async fn differential(name: &'static str) {
    let server = start_server(name).await;
    let yaml = config_yaml();
    let config: Config = load(&yaml, server.addr);
    let policy = RoutePolicy::new(config.routes.clone());
    let proxy = TestProxy::start_config(config, server.addr).await;
    let mut forwarded = 0;
    for (method, target, extra) in corpus() {
        for caller in [Caller::Anonymous, Caller::User, Caller::Admin] {
            let auth = caller
                .token()
                .map(|t| format!("Authorization: Bearer {t}\r\n"))
                .unwrap_or_default();
            let req = format!("{method} {target} HTTP/1.1\r\nHost: app.test\r\n{auth}{extra}Connection: close\r\n\r\n");
            let answer = exchange(proxy.addr, req.as_bytes()).await;
            let what = format!("{method} {target} [{}]", extra.replace("\r\n", "; "));
            let status = statuses(&answer);
            assert!(!status.contains(&101), "{name}: {what}: switched protocols\n{answer}");
            assert!(status.len() <= 1, "{name}: {what}: {answer}");
            if status == [200] {
                let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
                let seen: Value = serde_json::from_str(body)
                    .unwrap_or_else(|e| panic!("{name}: {what}: not the probe's answer ({e}): {answer}"));
                check(&policy, server.name, &what, caller, method, &seen);
                forwarded += 1;
            }
        }
    }
    // The corpus is not all refusals: the ordinary requests in it reached the app.
    assert!(forwarded >= 15, "{name}: only {forwarded} requests were forwarded");
}

#[tokio::test]
async fn wsgiref_reads_what_the_policy_judged() {
    differential("wsgiref").await;
}

#[tokio::test]
async fn gunicorn_reads_what_the_policy_judged() {
    differential("gunicorn").await;
}

#[tokio::test]
async fn hypercorn_reads_what_the_policy_judged() {
    differential("hypercorn").await;
}
