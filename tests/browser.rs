//! Browser sign-in against the real OpenID Provider (`oidc-provider` with
//! its development login and consent pages), driven by a scripted browser
//! (`support::browser`: a cookie jar, redirects, the provider's forms):
//! sign-in back to the page first asked for, in-line refresh, tabs
//! refreshing at once, browsers and APIs apart, CSRF, sign-out, and the
//! provider's back-channel logout; and the callback's refusals.

mod support;

use std::time::Duration;

use base64::Engine as _;
use http::Method;
use support::browser::Browser;
use support::op::{Op, WEB_CLIENT};
use support::*;

fn config(issuer: &str, secret_file: &str, extra: &str) -> String {
    format!(
        r#"
listen: "127.0.0.1:0"
admin: {{ listen: "127.0.0.1:0" }}
upstream: {{ url: "http://{{upstream}}" }}
auth:
  leeway: 0s
  issuers:
    - issuer: "{issuer}"
      audiences: ["urn:api"]
      discovery: true
      jwks: {{ unknown_kid_cooldown: 100ms, min_refresh_interval: 1s }}
      backchannel_logout: {{ audiences: [web] }}
  identity_headers: {{ subject: X-Auth-Subject, claims: {{ email: X-Auth-Email }} }}
routes:
  - prefix: /public/
    public: true
  - prefix: /admin/
    require: {{ scopes: [admin] }}
  - prefix: /
backchannel_logout: {{ revoke: subject, max_age: 2m }}
sessions:
  signing_key: {{ private_key_file: keys/ec256.key.pem }}
  access_token_ttl: 2s
  control: {{ listen: "127.0.0.1:0" }}
  browser:
    issuer: "{issuer}"
    client_id: web
    secret_file: "{secret_file}"
    scopes: [openid, email]
    claims: [email]
    public_url: "http://127.0.0.1:{{proxy_port}}"
    insecure_http: true
    post_logout_redirect_uri: "http://127.0.0.1:{{proxy_port}}/"
{extra}"#
    )
}

/// A proxy with browser sign-in and the provider it signs in at.
async fn start(name: &str) -> (TestProxy, Op, String) {
    start_with(name, "").await
}

/// [`start`] with more lines under `sessions.browser`.
async fn start_with(name: &str, extra: &str) -> (TestProxy, Op, String) {
    start_before(name, extra, start_echo().await).await
}

/// [`start_with`] in front of `upstream`.
async fn start_before(name: &str, extra: &str, upstream: std::net::SocketAddr) -> (TestProxy, Op, String) {
    start_full(name, extra, upstream, None).await
}

/// [`start_before`]; with `public_key_pem`, the provider's `web` client
/// takes private_key_jwt under that key.
async fn start_full(
    name: &str,
    extra: &str,
    upstream: std::net::SocketAddr,
    public_key_pem: Option<&str>,
) -> (TestProxy, Op, String) {
    let dir = temp_dir(name);
    let secret = dir.join("web-secret");
    std::fs::write(&secret, WEB_CLIENT.1).unwrap();
    let op_port = free_port();
    let issuer = format!("http://127.0.0.1:{op_port}");
    let mut yaml = config(&issuer, &secret.display().to_string(), extra);
    if extra.contains("private_key_jwt") {
        // No secret at all: the key is the only credential.
        yaml = yaml.replace(&format!("    secret_file: \"{}\"\n", secret.display()), "");
    }
    let proxy = TestProxy::start_bound(&yaml, upstream).await;
    let app = format!("http://127.0.0.1:{}", proxy.addr.port());
    let op = Op::start_web_with(op_port, &app, public_key_pem).await;
    let ready = wait_until(DEADLINE, || async {
        get(&format!("http://{}/readyz", proxy.admin), &[]).await.status == 200
    })
    .await;
    assert!(ready.is_some(), "the proxy never loaded the provider's metadata");
    (proxy, op, app)
}

fn host(app: &str) -> String {
    app.trim_start_matches("http://").to_owned()
}

/// `exp` of the JWT `token`.
fn exp_of(token: &str) -> i64 {
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["exp"].as_i64().unwrap()
}

/// Waits until the browser's access cookie has expired.
async fn until_expired(b: &Browser, app: &str) {
    let exp = exp_of(b.cookie(&host(app), "tokengate-access").expect("an access cookie"));
    let expired = wait_until(Duration::from_secs(10), || async { now() >= exp }).await;
    assert!(expired.is_some());
}

async fn signins(proxy: &TestProxy, result: &str) -> f64 {
    metric_opt(
        proxy.admin,
        &format!("tokengate_browser_signins_total{{result=\"{result}\"}}"),
    )
    .await
    .unwrap_or(0.0)
}

#[tokio::test]
async fn a_browser_signs_in_is_refreshed_in_line_and_signs_out() {
    let (proxy, op, app) = start("browser-flow").await;
    let mut b = Browser::default();

    // Sign in: to the provider and back to the page first asked for.
    let page = b.navigate(&format!("{app}/orders?item=1"), "alice").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        b.visited.iter().any(|u| u.starts_with(&op.issuer())),
        "never went to the provider"
    );
    let echo = page.echo();
    assert_eq!(echo["path"], "/orders");
    assert_eq!(echo["query"], "item=1");
    assert_eq!(page.upstream_header("x-auth-subject").as_deref(), Some("alice"));
    assert_eq!(
        page.upstream_header("x-auth-email").as_deref(),
        Some("alice@example.test")
    );
    // The app never sees tokengate's cookies.
    let sent = page.upstream_header("cookie").unwrap_or_default();
    assert!(!sent.contains("tokengate-"), "the app got our cookies: {sent}");
    // Every cookie tokengate set is HttpOnly, Lax, host-wide, and none on
    // the provider's side holds a token.
    let ours: Vec<&String> = b
        .set_cookies
        .iter()
        .filter(|(u, _)| u.starts_with(&app))
        .map(|(_, c)| c)
        .collect();
    assert!(ours.iter().any(|c| c.starts_with("tokengate-access=")));
    for c in &ours {
        assert!(
            c.contains("; HttpOnly") && c.contains("SameSite=Lax") && c.contains("Path=/"),
            "{c}"
        );
    }
    // No code or token in a URL after the callback, and the callback's
    // answer forbids the Referer it would cause.
    let callback = b
        .visited
        .iter()
        .position(|u| u.contains("/.tokengate/callback"))
        .unwrap();
    for u in &b.visited[callback + 1..] {
        assert!(!u.contains("code=") && !u.contains("token"), "{u}");
    }
    let (_, callback_headers) = b
        .answers
        .iter()
        .find(|(u, _)| u.contains("/.tokengate/callback"))
        .unwrap();
    assert_eq!(callback_headers["referrer-policy"], "no-referrer");
    assert_eq!(callback_headers["location"], "/orders?item=1");

    // The access token expires; the next navigation is refreshed in line:
    // no provider, one rotation.
    until_expired(&b, &app).await;
    b.visited.clear();
    let page = b.navigate(&format!("{app}/orders"), "alice").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(b.visited, vec![format!("{app}/orders")], "went to the provider again");
    assert_eq!(page.upstream_header("x-auth-subject").as_deref(), Some("alice"));
    assert_eq!(signins(&proxy, "refreshed").await, 1.0);

    // Five tabs at once with the same expired cookies: all served, one rotation.
    until_expired(&b, &app).await;
    let tabs = (0..5).map(|_| {
        let mut tab = b.clone();
        let url = format!("{app}/orders");
        async move { tab.navigate(&url, "alice").await.status }
    });
    let statuses = futures_util::future::join_all(tabs).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(signins(&proxy, "refreshed").await, 2.0, "one rotation for five tabs");
    assert_eq!(signins(&proxy, "refresh_refused").await, 0.0);
    // The jar takes the newest pair, as the browser would from any tab.
    let page = b.navigate(&format!("{app}/orders"), "alice").await;
    assert_eq!(page.status, 200);

    // Browsers and APIs apart: a script's request without a session gets
    // 401, not a redirect; with the cookies it is served.
    let api = [("accept", "application/json"), ("sec-fetch-mode", "cors")];
    let mut stranger = Browser::default();
    let reply = stranger
        .request(Method::GET, &format!("{app}/orders"), &api, None)
        .await;
    assert_eq!(reply.status, 401);
    let reply = b.request(Method::GET, &format!("{app}/orders"), &api, None).await;
    assert_eq!(reply.status, 200);
    // A bearer token works on the same route.
    let access = b.cookie(&host(&app), "tokengate-access").unwrap().to_owned();
    assert_eq!(get_with_token(&format!("{app}/orders"), &access).await.status, 200);

    // CSRF: a state-changing request with the cookies from another site,
    // or from nowhere it can prove, is refused; from this origin it passes.
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "http://evil.example")],
        vec![],
    ] {
        let reply = b
            .request(Method::POST, &format!("{app}/orders"), &headers, Some(&[]))
            .await;
        assert_eq!(reply.status, 403, "{headers:?}");
    }
    let reply = b
        .request(Method::POST, &format!("{app}/orders"), &[("origin", &app)], Some(&[]))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = b
        .request(
            Method::DELETE,
            &format!("{app}/orders"),
            &[("sec-fetch-site", "same-origin")],
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Sign out: a cross-site sign-out is refused; from this origin the
    // session ends everywhere, the cookies go, and the browser is sent to
    // the provider's end-session endpoint, with no token in the URL.
    let logout = format!("{app}/.tokengate/logout");
    let reply = b
        .request(Method::POST, &logout, &[("sec-fetch-site", "cross-site")], Some(&[]))
        .await;
    assert_eq!(reply.status, 403);
    let reply = b
        .request(Method::GET, &logout, &[("sec-fetch-site", "cross-site")], None)
        .await;
    assert_eq!(reply.status, 403);
    let reply = b
        .request(Method::POST, &logout, &[("sec-fetch-site", "same-origin")], Some(&[]))
        .await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    let to = reply.headers["location"].to_str().unwrap();
    let expected = format!(
        "{}/session/end?client_id=web&post_logout_redirect_uri={}",
        op.issuer(),
        form_urlencoded::byte_serialize(format!("{app}/").as_bytes()).collect::<String>()
    );
    assert_eq!(to, expected);
    assert!(b.cookie(&host(&app), "tokengate-access").is_none(), "{:?}", b.jar);
    assert!(b.cookie(&host(&app), "tokengate-refresh").is_none());
    assert!(
        b.cookie(&host(&app), "tokengate-id").is_none(),
        "the ID token is kept only for end_session: post"
    );
    assert_eq!(get_with_token(&format!("{app}/orders"), &access).await.status, 401);
    // The next navigation goes to the provider.
    b.visited.clear();
    let page = b.navigate(&format!("{app}/orders"), "alice").await;
    assert_eq!(page.status, 200);
    assert!(
        b.visited
            .iter()
            .any(|u| u.starts_with(&format!("{}/auth", op.issuer())))
    );

    // Signed in again, then logged out at the provider (back-channel): the
    // next navigation goes to the provider again.
    let reply = op.backchannel_logout_to("web", "alice", "op-session").await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    b.visited.clear();
    let page = b.navigate(&format!("{app}/orders"), "alice").await;
    assert_eq!(page.status, 200);
    assert!(
        b.visited
            .iter()
            .any(|u| u.starts_with(&format!("{}/auth", op.issuer()))),
        "the back-channel logout left the browser signed in: {:?}",
        b.visited
    );
    // Also after the access token has expired (the refresh cookie of the
    // ended session must not bring it back).
    let reply = op.backchannel_logout_to("web", "alice", "op-session").await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    until_expired(&b, &app).await;
    b.visited.clear();
    let page = b.navigate(&format!("{app}/orders"), "alice").await;
    assert_eq!(page.status, 200);
    assert!(
        b.visited
            .iter()
            .any(|u| u.starts_with(&format!("{}/auth", op.issuer())))
    );
    proxy.stop().await;
}

/// What an attacker sends the callback, and where a sign-in may return to.
#[tokio::test]
async fn the_callback_refuses_forgeries_replays_and_other_origins() {
    let (proxy, op, app) = start_with("browser-attacks", "    end_session: post\n").await;
    let callback = format!("{app}/.tokengate/callback");

    // A sign-in asked to come back to another origin comes back to `/`.
    let mut b = Browser::default();
    for rd in ["//evil.example/", "https://evil.example/", "/\\evil.example"] {
        let url = format!(
            "{app}/.tokengate/login?rd={}",
            form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        );
        let page = b.navigate(&url, "mallory").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.echo()["path"], "/", "{rd}");
        let (_, headers) = b
            .answers
            .iter()
            .rev()
            .find(|(u, _)| u.contains("/.tokengate/callback"))
            .unwrap();
        assert_eq!(headers["location"], "/", "{rd}");
    }

    // A real callback URL, captured instead of followed.
    let mut victim = Browser::default();
    let reply = victim
        .navigate_until(&format!("{app}/orders"), "victim", Some(&callback))
        .await;
    let callback_url = reply.headers["location"].to_str().unwrap().to_owned();
    assert!(callback_url.contains("code="), "{callback_url}");
    // The state without its cookie (another browser: login CSRF) is refused.
    let mut attacker = Browser::default();
    let reply = attacker.request(Method::GET, &callback_url, &[], None).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(attacker.cookie(&host(&app), "tokengate-access").is_none());
    // A changed state is refused.
    let tampered = callback_url.replace("state=", "state=x");
    let reply = victim.clone().request(Method::GET, &tampered, &[], None).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    // An answer naming another provider (mix-up) is refused.
    let mixed = callback_url.replace(
        &format!(
            "iss={}",
            form_urlencoded::byte_serialize(op.issuer().as_bytes()).collect::<String>()
        ),
        "iss=https%3A%2F%2Fevil.example",
    );
    assert_ne!(mixed, callback_url);
    let reply = victim.clone().request(Method::GET, &mixed, &[], None).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    // The real one signs in; replayed with the same cookie, the code is refused.
    let mut replay = victim.clone();
    let reply = victim.request(Method::GET, &callback_url, &[], None).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert!(victim.cookie(&host(&app), "tokengate-access").is_some());
    let reply = replay.request(Method::GET, &callback_url, &[], None).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert!(replay.cookie(&host(&app), "tokengate-access").is_none());
    assert_eq!(signins(&proxy, "code_refused").await, 1.0);
    // A session cookie on a public route is neither needed nor looked at,
    // and one from this app is worthless under another name.
    let mut planted = Browser::default();
    let token = victim.cookie(&host(&app), "tokengate-access").unwrap().to_owned();
    planted
        .jar
        .insert((host(&app), "__Host-tokengate-access".into()), token.clone());
    let reply = planted.fetch(&format!("{app}/orders")).await;
    assert_eq!(reply.status, 401);
    // `end_session: post`: sign-out is a page that POSTs the ID token as
    // the hint (never in a URL), under a CSP allowing its one script.
    let id_token = victim
        .cookie(&host(&app), "tokengate-id")
        .expect("the hint's cookie")
        .to_owned();
    let reply = victim
        .request(
            Method::POST,
            &format!("{app}/.tokengate/logout"),
            &[("origin", &app)],
            Some(&[]),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body.contains(&format!(r#"action="{}/session/end""#, op.issuer())),
        "{}",
        reply.body
    );
    assert!(
        reply
            .body
            .contains(&format!(r#"name="id_token_hint" value="{id_token}""#)),
        "{}",
        reply.body
    );
    let csp = reply.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'; script-src 'sha256-"), "{csp}");
    // The form may go to the provider, and follow its redirect back here.
    assert!(csp.ends_with(&format!("form-action {} {app}", op.issuer())), "{csp}");
    assert!(victim.cookie(&host(&app), "tokengate-access").is_none());
    proxy.stop().await;
}

/// `auth_method: private_key_jwt`: the code exchange is authenticated by an
/// assertion signed with the client's key (the provider knows only the
/// public key; the client secret is not configured), and a browser only
/// covered below `/app/` is signed in there and nowhere else.
#[tokio::test]
async fn private_key_jwt_signs_the_exchange_and_cookies_stay_on_their_routes() {
    let public = std::fs::read_to_string(fixtures().join("keys/ec256.pub.pem")).unwrap();
    let extra = "    auth_method: private_key_jwt\n    private_key_file: keys/ec256.key.pem\n    key_id: web-key-1\n    prefixes: [/app/]\n";
    let (proxy, _op, app) = start_full("browser-pkjwt", extra, start_echo().await, Some(&public)).await;
    let mut b = Browser::default();
    let page = b.navigate(&format!("{app}/app/orders"), "erin").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.upstream_header("x-auth-subject").as_deref(), Some("erin"));
    assert_eq!(signins(&proxy, "signed_in").await, 1.0);
    // Outside the covered prefix the cookies are neither read nor a reason
    // to send anyone to sign in; they do not reach the app either.
    let reply = b.fetch(&format!("{app}/other")).await;
    assert_eq!(reply.status, 401);
    let reply = b
        .request(
            Method::GET,
            &format!("{app}/other"),
            &[("accept", "text/html"), ("sec-fetch-mode", "navigate")],
            None,
        )
        .await;
    assert_eq!(
        reply.status, 401,
        "a navigation outside the covered routes was sent to sign in"
    );
    let reply = b.request(Method::GET, &format!("{app}/public/x"), &[], None).await;
    assert_eq!(reply.status, 200);
    assert!(
        !reply
            .upstream_header("cookie")
            .unwrap_or_default()
            .contains("tokengate-")
    );
    proxy.stop().await;
}

/// An app that answers with the `Cookie` header it got, and `Set-Cookie`s
/// for tokengate's names (a confused or hostile app) beside its own.
async fn cookie_app() -> std::net::SocketAddr {
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    let got: Vec<String> = req
                        .headers()
                        .get_all("cookie")
                        .iter()
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                        .collect();
                    let body = serde_json::json!({ "cookie": got }).to_string();
                    let mut r = http::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
                    let h = r.headers_mut();
                    h.insert("cache-control", "public, max-age=600".parse().unwrap());
                    h.insert("cdn-cache-control", "max-age=600".parse().unwrap());
                    h.insert("surrogate-control", "max-age=600".parse().unwrap());
                    for c in [
                        "tokengate-access=fixed; Path=/",
                        "__Host-tokengate-refresh=fixed; Path=/; Secure",
                        "app=1; Path=/",
                    ] {
                        h.append("set-cookie", c.parse().unwrap());
                    }
                    Ok::<_, std::convert::Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// What a hostile neighbour (a sibling subdomain's cookies, a cross-site
/// WebSocket), a confused app, and a hostile page (a cookie bomb, a
/// replayed logout token) can do to a signed-in browser: nothing.
#[tokio::test]
async fn neighbours_apps_and_pages_cannot_fix_steal_or_bomb_the_session() {
    let (proxy, op, app) = start_before("browser-neighbours", "", cookie_app().await).await;
    let h = host(&app);
    let mut b = Browser::default();
    let page = b.navigate(&format!("{app}/orders"), "carol").await;
    assert_eq!(page.status, 200, "{}", page.body);
    // The app's Set-Cookie for our names never reach the browser; its own do.
    let set: Vec<&String> = b.set_cookies.iter().map(|(_, c)| c).collect();
    assert!(set.iter().any(|c| c.starts_with("app=1")), "{set:?}");
    assert!(!set.iter().any(|c| c.contains("=fixed")), "{set:?}");
    assert_ne!(b.cookie(&h, "tokengate-access"), Some("fixed"));

    // A neighbour's non-ASCII cookie beside ours: still signed in, and the
    // app gets the neighbour's cookie but none of ours.
    let mut req = http::Request::get(format!("{app}/orders"))
        .header("accept", "application/json")
        .header(
            "cookie",
            b.jar
                .iter()
                .filter(|((hh, _), _)| *hh == h)
                .map(|((_, n), v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    req.headers_mut()
        .append("cookie", http::HeaderValue::from_bytes(b"x=\xc3\xa9").unwrap());
    let reply = send(&http1(), req).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let got: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let got = got["cookie"].as_array().unwrap();
    assert_eq!(got.len(), 1, "one Cookie header for the app: {got:?}");
    let got = got[0].as_str().unwrap();
    assert!(got.contains("x=") && !got.contains("tokengate-"), "{got}");

    // A cross-site (or same-site) page opening a WebSocket with the cookies.
    for site in ["cross-site", "same-site"] {
        let reply = b
            .request(
                Method::GET,
                &format!("{app}/ws"),
                &[
                    ("upgrade", "websocket"),
                    ("connection", "upgrade"),
                    ("sec-fetch-site", site),
                    ("sec-fetch-mode", "websocket"),
                ],
                None,
            )
            .await;
        assert_eq!(reply.status, 403, "{site}");
    }

    // Refreshed in line: the answer carries the new cookies and no cache
    // may keep it, even where the app said `public`; on a route the
    // session may not use (403), the new cookies still come.
    until_expired(&b, &app).await;
    let reply = b.fetch(&format!("{app}/orders")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["cache-control"], "private, no-store");
    assert!(!reply.headers.contains_key("cdn-cache-control") && !reply.headers.contains_key("surrogate-control"));
    assert!(
        reply
            .headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("tokengate-refresh="))
    );
    until_expired(&b, &app).await;
    let before = b.cookie(&h, "tokengate-refresh").unwrap().to_owned();
    let reply = b.fetch(&format!("{app}/admin/x")).await;
    assert_eq!(reply.status, 403);
    let after = b.cookie(&h, "tokengate-refresh").unwrap().to_owned();
    assert_ne!(
        before, after,
        "a refusal after an in-line refresh lost the new refresh token"
    );
    let reply = b.fetch(&format!("{app}/orders")).await;
    assert_eq!(reply.status, 200, "the session survived the 403");

    // A cookie bomb: a long return address becomes `/`, and a fourth
    // unfinished sign-in clears the first three.
    let mut bomb = Browser::default();
    let long = format!("/{}", "a".repeat(2000));
    let nav = [("accept", "text/html"), ("sec-fetch-mode", "navigate")];
    let reply = bomb.request(Method::GET, &format!("{app}{long}"), &nav, None).await;
    assert_eq!(reply.status, 302);
    let login = bomb
        .jar
        .iter()
        .find(|((_, n), _)| n.starts_with("tokengate-login-"))
        .unwrap()
        .1
        .clone();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(login.split('.').next().unwrap())
        .unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(payload["r"], "/");
    for _ in 0..3 {
        bomb.request(Method::GET, &format!("{app}/orders"), &nav, None).await;
    }
    let pending = bomb
        .jar
        .keys()
        .filter(|(_, n)| n.starts_with("tokengate-login-"))
        .count();
    assert_eq!(pending, 1, "unfinished sign-ins pile up: {:?}", bomb.jar.keys());

    // Sign-out with only the access cookie left ends the session too.
    let access = b.cookie(&h, "tokengate-access").unwrap().to_owned();
    b.jar.remove(&(h.clone(), "tokengate-refresh".into()));
    let reply = b
        .request(
            Method::POST,
            &format!("{app}/.tokengate/logout"),
            &[("sec-fetch-site", "same-origin")],
            Some(&[]),
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(get_with_token(&format!("{app}/orders"), &access).await.status, 401);
    // An image or a fetch on the page cannot sign out.
    let mut c = Browser::default();
    c.navigate(&format!("{app}/orders"), "carol").await;
    let reply = c
        .request(
            Method::GET,
            &format!("{app}/.tokengate/logout"),
            &[("sec-fetch-site", "same-origin"), ("sec-fetch-mode", "no-cors")],
            None,
        )
        .await;
    assert_eq!(reply.status, 403);

    // A logout token replayed after the user signed in again ends nothing.
    let token = op.logout_token("web", "carol", "op-session").await;
    let deliver = |token: String| {
        let url = format!("{app}/.tokengate/backchannel-logout");
        async move {
            let req = http::Request::post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(http_body_util::Full::new(bytes::Bytes::from(format!(
                    "logout_token={token}"
                ))))
                .unwrap();
            send(&http1(), req).await.status
        }
    };
    assert_eq!(deliver(token.clone()).await, 200);
    let mut again = Browser::default();
    assert_eq!(again.navigate(&format!("{app}/orders"), "carol").await.status, 200);
    assert_eq!(deliver(token).await, 400, "a replay is refused");
    let reply = again.fetch(&format!("{app}/orders")).await;
    assert_eq!(reply.status, 200, "the replay ended the newer session");
    until_expired(&again, &app).await;
    let reply = again.fetch(&format!("{app}/orders")).await;
    assert_eq!(reply.status, 200, "the replay ended the newer session's refresh");
    proxy.stop().await;
}

/// The same promises in a real browser: headless Chromium (Debian's
/// `chromium` and `chromium-driver`, driven by selenium from
/// `tests/browser/chromium.py`) against the provider's interactive pages.
/// A screenshot of each step is kept in `target/browser-artifacts/`.
#[tokio::test]
async fn a_real_browser_signs_in_is_refreshed_signs_out_and_follows_the_providers_logout() {
    let _heavy = heavy().await;
    let (proxy, op, app) = start("browser-chromium").await;
    let shots = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/chromium.py");
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new("python3")
            .arg(script)
            .env("APP", &app)
            .env("OP", op.issuer())
            .env("ADMIN", format!("http://{}", proxy.admin))
            .env("SHOTS", &shots)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser run finishes within 3 minutes")
    .expect("python3 runs (scripts/test.sh installs chromium, chromium-driver and selenium)");
    assert!(
        out.status.success(),
        "the browser did not see what a user must:\n{}\n{}\n(screenshots in {})",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        shots.display()
    );
    let taken = std::fs::read_dir(&shots).unwrap().count();
    assert!(taken >= 6, "{taken} screenshots");
    proxy.stop().await;
}
