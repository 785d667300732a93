//! `tokengate demo` (and `tokengate` with no config): the embedded
//! development config in front of the built-in echo app, with tokens and
//! curl lines to try.
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use super::config_failure;
use super::mint::{MintOptions, mint};
use crate::app::Listeners;
use crate::clock::unix_now;
use crate::config::Config;

pub(super) async fn demo(listen: SocketAddr, admin_listen: SocketAddr) -> ExitCode {
    tracing::warn!("no --config given: running the embedded DEVELOPMENT config (public HS256 secret); never deploy it");
    let mut config = match Config::embedded_dev() {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let echo = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tokengate demo: cannot start the echo app: {e}");
            return ExitCode::FAILURE;
        }
    };
    let echo_addr = echo.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tokio::spawn(super::echo::serve(echo));
    match echo_addr.parse() {
        Ok(a) => config.upstream.authority = a,
        Err(e) => {
            eprintln!("tokengate demo: echo address {echo_addr}: {e}");
            return ExitCode::FAILURE;
        }
    }
    config.listen = listen;
    config.admin.listen = admin_listen;

    let now = unix_now();
    let user = MintOptions {
        subject: "alice".into(),
        ttl: Duration::from_secs(3600),
        scope: Some("read".into()),
        claims: vec![
            ("email".into(), "alice@example.com".into()),
            ("role".into(), "user".into()),
        ],
        ..MintOptions::default()
    };
    let revocable = MintOptions {
        subject: "carol".into(),
        claims: vec![("jti".into(), "demo-carol-1".into())],
        ..user.clone()
    };
    let admin = MintOptions {
        subject: "bob".into(),
        scope: Some("read admin".into()),
        claims: vec![("role".into(), "admin".into())],
        ..user.clone()
    };
    let expired = MintOptions {
        expires_at: Some(now - 3600),
        claims: vec![("iat".into(), (now - 7200).into())],
        ..user.clone()
    };
    let tokens = [&user, &admin, &expired, &revocable].map(|o| mint(&config.auth, o, now));
    let [Ok(user_token), Ok(admin_token), Ok(expired_token), Ok(carol_token)] = tokens else {
        eprintln!("tokengate demo: cannot mint demo tokens");
        return ExitCode::FAILURE;
    };

    let listeners = match Listeners::bind(&config).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tokengate demo: {e} (pick other ports with --listen / --admin-listen)");
            return ExitCode::FAILURE;
        }
    };
    let p = listeners.proxy.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let a = listeners.admin.local_addr().map(|a| a.to_string()).unwrap_or_default();
    println!(
        r#"tokengate demo: proxy http://{p}  admin http://{a}  echo app http://{echo_addr}
Paste these into another terminal (Ctrl-C here stops the demo):

# 1. allowed: 200, the echo app shows the X-Auth-* headers tokengate added
curl -s http://{p}/hello -H 'Authorization: Bearer {user_token}'

# 2. no token: 401 with WWW-Authenticate: Bearer realm="tokengate"
curl -si http://{p}/hello

# 3. expired token: 401, error_description="token expired"
curl -si http://{p}/hello -H 'Authorization: Bearer {expired_token}'

# 4. valid token without the admin scope on /admin/: 403 insufficient_scope
curl -si http://{p}/admin/panel -H 'Authorization: Bearer {user_token}'

# 5. admin token on /admin/: 200
curl -s http://{p}/admin/panel -H 'Authorization: Bearer {admin_token}'

# 6. public route, spoofed identity header: 200, and X-Auth-Subject is gone
curl -s http://{p}/public/info -H 'X-Auth-Subject: root'

# 7. revocation: carol's token works, is revoked (admin port, loopback only), then refused with 401
curl -s -o /dev/null -w '%{{http_code}}\n' http://{p}/hello -H 'Authorization: Bearer {carol_token}'
curl -s -X POST http://{a}/revoke -d '{{"jti": "demo-carol-1", "exp": {carol_exp}}}'
curl -si http://{p}/hello -H 'Authorization: Bearer {carol_token}'
#    (the same from a shell: tokengate revoke --jti demo-carol-1 --exp {carol_exp};
#     log alice out everywhere: tokengate revoke --sub alice)

# 8. what happened, by reason
curl -s http://{a}/metrics | grep '^tokengate_requests_total'
"#,
        carol_exp = now + 3600
    );
    let shutdown = async {
        crate::signal::shutdown().await;
    };
    match super::serve::serve(config, listeners, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokengate demo: {e}");
            ExitCode::FAILURE
        }
    }
}
