//! The answers an HTTP front door gets. An allow is 200 with every identity
//! header the configuration names: set from the verified claims, or, when
//! the claim is absent (or the route is public), set empty for nginx,
//! Traefik and Caddy (they copy the header onto the forwarded request,
//! replacing the client's) and listed in `x-envoy-auth-headers-to-remove`
//! for Envoy. A client's own `X-Auth-Subject` thus never reaches the app
//! through an ingress that copies what it is told to. A denial is the
//! proxy's own rejection response (status, `WWW-Authenticate`, body), which
//! every front door hands to the client.

use std::time::Duration;

use bytes::Bytes;
use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderName, HeaderValue, Response};
use http_body_util::Full;

use super::original::FrontDoor;
use crate::auth::Claims;
use crate::config::IdentityHeaders;
use crate::proxy::headers::inject_identity;

/// Envoy removes the headers this response header lists from the request
/// it forwards.
pub const ENVOY_HEADERS_TO_REMOVE: HeaderName = HeaderName::from_static("x-envoy-auth-headers-to-remove");

/// The identity headers for an allowed request: the ones the claims set,
/// and the names left unset (all of them on a public route).
pub fn identity(identity: &IdentityHeaders, claims: Option<&Claims>) -> (HeaderMap, Vec<HeaderName>) {
    let mut set = HeaderMap::new();
    if let Some(claims) = claims {
        inject_identity(&mut set, identity, claims);
    }
    let unset = identity.names().filter(|n| !set.contains_key(*n)).cloned().collect();
    (set, unset)
}

/// How long an ingress may keep this allow: `max_age`, never past the
/// token's `exp`; `None` when it must not be kept.
pub fn cache_for(max_age: Duration, claims: Option<&Claims>, now: i64) -> Option<u64> {
    let configured = max_age.as_secs();
    if configured == 0 {
        return None;
    }
    let left = match claims {
        Some(c) => u64::try_from(c.exp.saturating_sub(now)).unwrap_or(0),
        None => configured,
    };
    Some(configured.min(left)).filter(|s| *s > 0)
}

/// 200 for an HTTP front door.
pub fn allow(
    door: FrontDoor,
    identity_headers: &IdentityHeaders,
    claims: Option<&Claims>,
    cache: Option<u64>,
) -> Response<Full<Bytes>> {
    let (set, unset) = identity(identity_headers, claims);
    let mut response = Response::new(Full::new(Bytes::new()));
    let headers = response.headers_mut();
    headers.extend(set);
    match door {
        FrontDoor::EnvoyHttp => {
            if !unset.is_empty() {
                let list = unset.iter().map(HeaderName::as_str).collect::<Vec<_>>().join(",");
                if let Ok(v) = HeaderValue::from_str(&list) {
                    headers.insert(ENVOY_HEADERS_TO_REMOVE, v);
                }
            }
        }
        FrontDoor::Nginx | FrontDoor::ForwardAuth | FrontDoor::EnvoyGrpc => {
            for name in unset {
                headers.insert(name, HeaderValue::from_static(""));
            }
        }
    }
    // Not `private`: the ingress's cache is the intended reader (nginx
    // never stores a `private` answer). `Vary` names the credentials; the
    // cache key must still hold the method and the URI (README).
    let cache_control = match cache {
        Some(seconds) => HeaderValue::from_str(&format!("max-age={seconds}")).ok(),
        None => None,
    };
    match cache_control {
        Some(v) => {
            headers.insert(CACHE_CONTROL, v);
            headers.insert(http::header::VARY, HeaderValue::from_static("authorization, cookie"));
        }
        None => {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    response
}
