//! Token-source confusion: two credentials in one request, where the proxy
//! could verify one and the app read the other. The proxy refuses to guess.

use super::*;
use crate::support::raw::{exchange, statuses};

#[tokio::test]
async fn two_credentials_are_refused_and_token_parameters_never_reach_the_app() {
    let (proxy, app) = raw_proxy(Behaviour::Ok, "").await;
    let user = user_token();
    let admin = admin_token();
    let cases = [
        format!("Authorization: Bearer {user}\r\nAuthorization: Bearer {admin}"),
        format!("Authorization: Bearer {user}, Bearer {admin}"),
        format!("Cookie: access_token={user}; access_token={admin}"),
        format!("Cookie: access_token={user}\r\nCookie: access_token={admin}"),
        format!("X-Access-Token: {user}\r\nX-Access-Token: {admin}"),
        // PHP reads `access.token` and ` access_token` as `access_token`.
        format!("Cookie: access.token={admin}; access_token={user}"),
        format!("Cookie: access_token={user}; ACCESS_TOKEN={admin}"),
    ];
    for headers in &cases {
        let answer = exchange(proxy.addr, &get_bytes("/admin/x", &[headers])).await;
        assert_eq!(statuses(&answer), [401], "{headers}");
    }
    for query in [
        format!("access_token={user}&access_token={admin}"),
        format!("access_token={user}&access%5Ftoken={admin}"),
        format!("access_token={user}&%61ccess_token={admin}"),
        // PHP's `$_GET` spellings, ASP.NET's case, and `;` as a separator.
        format!("access_token={user}&access.token={admin}"),
        format!("access_token={user}&access%20token={admin}"),
        format!("access_token={user}&access+token={admin}"),
        format!("access_token={user}&access[token={admin}"),
        format!("access_token={user}&+access_token={admin}"),
        format!("access_token={user}&Access_Token={admin}"),
        format!("a=1;access_token={admin}&access_token={user}"),
    ] {
        let answer = exchange(proxy.addr, &get_bytes(&format!("/admin/x?{query}"), &[])).await;
        assert_eq!(statuses(&answer), [401], "{query}");
    }
    assert!(app.received().is_empty(), "{:#?}", app.received());

    // A header token plus an encoded query parameter the app would decode
    // as `access_token`: the parameter is removed before forwarding.
    // Sources are tried in order, so the header wins; the query spellings
    // of the parameter, which the app would decode to its name, are removed.
    let target = format!("/x?a=1&access%5Ftoken={admin}&b=2;access.token={admin}");
    let answer = exchange(proxy.addr, &get_bytes(&target, &[&bearer(&user)])).await;
    assert_eq!(statuses(&answer), [200]);
    let answer = exchange(proxy.addr, &get_bytes(&format!("/x?a=1&access%5Ftoken={user}"), &[])).await;
    assert_eq!(statuses(&answer), [200]);
    let got = app.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].target(),
        "/x?a=1&b=2",
        "the token parameter never reaches the app"
    );
    assert_eq!(got[0].all("x-auth-subject"), ["alice"]);
    assert_eq!(got[1].target(), "/x?a=1");
}
