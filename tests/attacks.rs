//! The adversarial suite: what a hostile client, a confused app or a dying
//! connection does to the proxy, organised by attack class. Requests are raw
//! bytes wherever a client library would tidy the attack away, and the
//! assertions are on what the app received (`support::raw::RawApp` records
//! its bytes), not only on the status the attacker got back.
//!
//! The invariant every test defends: no request reaches the app unless the
//! policy judged exactly that request, and the app sees no identity header
//! the proxy did not set.

mod support;

#[path = "attacks/forgery.rs"]
mod forgery;
#[path = "attacks/framing.rs"]
mod framing;
#[path = "attacks/keepalive.rs"]
mod keepalive;
#[path = "attacks/paths.rs"]
mod paths;
#[path = "attacks/resources.rs"]
mod resources;
#[path = "attacks/smuggling.rs"]
mod smuggling;
#[path = "attacks/sources.rs"]
mod sources;
#[path = "attacks/spoofing.rs"]
mod spoofing;
#[path = "attacks/upgrades.rs"]
mod upgrades;

use jsonwebtoken::Algorithm;
use serde_json::json;
use support::raw::{Behaviour, RawApp};
use support::*;

/// A token for `alice` with no scope.
fn user_token() -> String {
    sign(Algorithm::ES256, &claims("alice"))
}

/// A token for `root` with the `admin` scope.
fn admin_token() -> String {
    let mut c = claims("root");
    c["scope"] = json!("admin");
    sign(Algorithm::ES256, &c)
}

/// The base config (public `/public/`, admin-only `/admin/`, token elsewhere)
/// with `extra` YAML appended at the top level, in front of a raw app.
async fn raw_proxy(behaviour: Behaviour, extra: &str) -> (TestProxy, RawApp) {
    let app = RawApp::start(behaviour).await;
    let yaml = format!("{}{extra}", base_config());
    (TestProxy::start_with(&yaml, app.addr).await, app)
}

/// `GET target` with `headers` (each `Name: value`), closing after the answer.
fn get_bytes(target: &str, headers: &[&str]) -> Vec<u8> {
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// `Authorization: Bearer <token>`.
fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}
