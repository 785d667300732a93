//! Path confusion: spellings a server could route differently from the
//! policy (dot segments, encodings, `;` parameters as Java servers strip
//! them, case as Express and ASP.NET ignore it). For every one, either the
//! proxy refuses it or the app receives a path that the policy judges under
//! the same rule as the one that admitted it.

use super::*;
use crate::support::raw::{exchange, statuses};

/// `/legacy/` public with a protected `/legacy/admin/` inside it.
fn legacy_config(extra: &str) -> String {
    let yaml = base_config().replace(
        "routes:\n",
        "routes:\n  - prefix: /legacy/admin/\n    require: { scopes: [admin] }\n  - prefix: /legacy/\n    public: true\n",
    );
    format!("{yaml}{extra}")
}

/// What a Java server (Tomcat, Jetty, Spring) routes: `;...` removed from
/// every segment, then dot segments and `//` resolved.
fn java_view(target: &str) -> String {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let stripped: Vec<&str> = path.split('/').map(|s| s.split(';').next().unwrap_or("")).collect();
    let mut out: Vec<&str> = Vec::new();
    for s in stripped.iter().skip(1) {
        match *s {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/")).to_ascii_lowercase()
}

#[tokio::test]
async fn path_parameters_cannot_cross_a_rule() {
    let app = RawApp::start(Behaviour::Ok).await;
    let proxy = TestProxy::start_with(&legacy_config(""), app.addr).await;
    let user = bearer(&user_token());
    for target in [
        "/legacy/admin;x/panel",
        "/legacy/admin;jsessionid=0/panel",
        "/legacy/admin%3Bx/panel",
        "/legacy/admin%3bx/panel",
        "/legacy/;/admin/panel",
        "/admin;jsessionid=0/panel",
        "/legacy/x/..;/admin/panel",
    ] {
        for auth in [None, Some(user.as_str())] {
            let headers: Vec<&str> = auth.into_iter().collect();
            let answer = exchange(proxy.addr, &get_bytes(target, &headers)).await;
            assert_eq!(statuses(&answer), [400], "{target} {auth:?}: {answer}");
        }
    }
    assert!(app.received().is_empty(), "{:#?}", app.received());
    assert!(reasons(proxy.admin).await["bad_path"] >= 14.0);
}

#[tokio::test]
async fn stripped_path_parameters_are_judged_and_served_without_them() {
    let app = RawApp::start(Behaviour::Ok).await;
    let proxy = TestProxy::start_with(&legacy_config("http: { path_parameters: strip }\n"), app.addr).await;
    let anonymous = exchange(proxy.addr, &get_bytes("/legacy/admin;x/panel", &[])).await;
    assert_eq!(statuses(&anonymous), [401], "judged as /legacy/admin/panel");
    let user = exchange(
        proxy.addr,
        &get_bytes("/legacy/admin;x/panel", &[&bearer(&user_token())]),
    )
    .await;
    assert_eq!(statuses(&user), [403]);
    assert!(app.received().is_empty());
    let admin = exchange(
        proxy.addr,
        &get_bytes("/legacy/admin;x/panel;y?q=1", &[&bearer(&admin_token())]),
    )
    .await;
    assert_eq!(statuses(&admin), [200]);
    let public = exchange(proxy.addr, &get_bytes("/legacy/page;v=2", &[])).await;
    assert_eq!(statuses(&public), [200]);
    let encoded = exchange(proxy.addr, &get_bytes("/legacy/admin%3Bx/panel", &[])).await;
    assert_eq!(
        statuses(&encoded),
        [400],
        "an encoded ';' is refused even when stripping"
    );
    let got: Vec<String> = app.received().iter().map(|r| r.target().to_owned()).collect();
    assert_eq!(got, ["/legacy/admin/panel?q=1", "/legacy/page"]);
}

#[tokio::test]
async fn no_spelling_reaches_an_admin_path_without_the_admin_scope() {
    let (proxy, app) = raw_proxy(Behaviour::Ok, "").await;
    let user = bearer(&user_token());
    let targets = [
        "/public/../admin/x",
        "/public/%2e%2e/admin/x",
        "/public/%2E%2E/admin/x",
        "/public/.%2e/admin/x",
        "//admin/x",
        "/./admin/x",
        "/%61dmin/x",
        "/public/..;/admin/x",
        "/public/.;/../admin/x",
        "/admin%2fx",
        "/admin%2Fx",
        "/public%2f..%2fadmin/x",
        "/public/..%5cadmin/x",
        "/public\\..\\admin/x",
        "/public/%00/../admin/x",
        "/public/x?/../admin/x",
        "/public/x#/../../admin/x",
        "/ADMIN/x",
        "/Admin/x",
        "/admin;/x",
        "/admin%3b/x",
        "/public/%252e%252e/admin/x",
        "http://app.test/public/../admin/x",
    ];
    for target in targets {
        for headers in [vec![], vec![user.as_str()]] {
            let answer = exchange(proxy.addr, &get_bytes(target, &headers)).await;
            let status = statuses(&answer);
            assert!(status.len() <= 1, "{target}: {answer}");
            if status == [200] {
                let got = app.received();
                let last = got.last().unwrap();
                let served = java_view(last.target());
                assert!(
                    !served.starts_with("/admin"),
                    "{target} reached the app as {} without the admin scope",
                    last.target()
                );
            }
        }
    }
    for r in app.received() {
        assert!(!java_view(r.target()).starts_with("/admin"), "{}", r.line);
    }
}

#[tokio::test]
async fn case_ambiguous_paths_are_refused_unless_allowed() {
    let (proxy, app) = raw_proxy(Behaviour::Ok, "").await;
    let user = bearer(&user_token());
    for target in ["/ADMIN/x", "/Admin", "/PUBLIC/x"] {
        let answer = exchange(proxy.addr, &get_bytes(target, &[&user])).await;
        assert_eq!(statuses(&answer), [400], "{target}: {answer}");
    }
    assert!(app.received().is_empty());
    // Mixed case that no rule cares about is forwarded untouched.
    let answer = exchange(proxy.addr, &get_bytes("/Users/AbC", &[&user])).await;
    assert_eq!(statuses(&answer), [200]);
    assert_eq!(app.received()[0].target(), "/Users/AbC");

    let (proxy, app) = raw_proxy(Behaviour::Ok, "http: { case_ambiguous_paths: allow }\n").await;
    let answer = exchange(proxy.addr, &get_bytes("/ADMIN/x", &[&user])).await;
    assert_eq!(statuses(&answer), [200], "judged as sent for a case-sensitive app");
    assert_eq!(app.received()[0].target(), "/ADMIN/x");
}
