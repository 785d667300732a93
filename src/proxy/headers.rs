//! Headers as a security boundary: pure functions that strip hop-by-hop and
//! spoofable identity headers and set forwarding and identity headers.

use std::net::IpAddr;

use http::header::{CONNECTION, HOST, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Version};
use serde_json::Value;

use crate::auth::Claims;
use crate::config::{HeaderNames, IdentityHeaders};

/// Hop-by-hop headers of RFC 9110 §7.6.1, the legacy ones proxies still
/// see, and `HTTP2-Settings`, which only an h2c upgrade uses (RFC 9113
/// deprecates it; nothing forwarded may start one).
// Names, not strings: removing by `&str` parses and validates the name on
// every request (it showed in the profile).
const HOP_BY_HOP_COUNT: usize = 10;
const HOP_BY_HOP: [HeaderName; HOP_BY_HOP_COUNT] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    UPGRADE,
    HeaderName::from_static("http2-settings"),
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Names the proxy sets, strips or reads framing from, whatever the
/// config: a client header that spells one of these with other punctuation
/// (`X_Forwarded_Host`, `Transfer.Encoding`) is never forwarded, since a
/// CGI-style server would read it as the real one.
pub const OWNED: [&str; 14] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

/// True for a name of letters, digits and `-` only (names are lower-case).
fn is_plain_name(name: &HeaderName) -> bool {
    name.as_str()
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `name` as a CGI-style server reads it: every character other than a
/// letter or digit becomes `-`.
fn folded(name: &HeaderName) -> String {
    name.as_str()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Removes the client headers the app must not see: names in `strip`, and
/// names beyond letters, digits and `-`: every one (`strict`), or
/// (`lenient`) those that read as a name in `owned` once folded.
pub fn strip_client_headers(headers: &mut HeaderMap, rule: HeaderNames, owned: &[String], strip: &[HeaderName]) {
    // One pass over the names present; the common case removes nothing
    // and allocates nothing.
    let mut doomed: Vec<HeaderName> = Vec::new();
    for name in headers.keys() {
        let remove = if is_plain_name(name) {
            strip.contains(name)
        } else {
            match rule {
                HeaderNames::Strict => true,
                HeaderNames::Lenient => owned.contains(&folded(name)),
            }
        };
        if remove {
            doomed.push(name.clone());
        }
    }
    for name in doomed {
        headers.remove(name);
    }
}

/// The first header whose name the app could read as a name in `owned`
/// though it is spelled otherwise: with `strict`, any name beyond letters,
/// digits and `-`. Decision mode refuses such a request, since the ingress
/// forwards headers as the client sent them.
pub fn disguised_header<'a>(headers: &'a HeaderMap, rule: HeaderNames, owned: &[String]) -> Option<&'a HeaderName> {
    headers.keys().find(|name| {
        !is_plain_name(name)
            && match rule {
                HeaderNames::Strict => true,
                HeaderNames::Lenient => owned.contains(&folded(name)),
            }
    })
}

/// The protocol an HTTP/1.1 request asks to switch to: its one `Upgrade`
/// header with one token, and `upgrade` among the `Connection` tokens.
/// A request offering several protocols gets none (it is forwarded as a
/// plain request).
pub fn requested_upgrade<B>(req: &Request<B>) -> Option<&str> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let mut values = req.headers().get_all(UPGRADE).iter();
    let protocol = values.next()?.to_str().ok()?.trim();
    if values.next().is_some() || protocol.is_empty() || protocol.contains(',') {
        return None;
    }
    connection_tokens(req.headers())
        .any(|t| t.eq_ignore_ascii_case(b"upgrade"))
        .then_some(protocol)
}

/// The tokens of every `Connection` header, as bytes: a value with obs-text
/// in one token still names the others.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop headers, including every header named in `Connection`.
/// With `keep_upgrade`, `Upgrade` survives and `Connection: upgrade` is
/// re-added, which a protocol switch needs on both hops.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Remove only what is there: one pass over the few names present (enum
    // or short byte comparisons) instead of nine hashed removals, which
    // callgrind counted at ~3,500 instructions a message. Names are kept on
    // the stack: `keys()` yields each name once, so at most nine match.
    let mut present: [Option<HeaderName>; HOP_BY_HOP_COUNT] = Default::default();
    for (slot, name) in present
        .iter_mut()
        .zip(headers.keys().filter(|n| HOP_BY_HOP.contains(n)))
    {
        *slot = Some(name.clone());
    }
    if present[0].is_none() {
        return;
    }
    // Headers `Connection` names beyond the standard ones (rare: heap only then).
    let named: Vec<HeaderName> = if present.iter().flatten().any(|n| *n == CONNECTION) {
        connection_tokens(headers)
            .filter(|t| !HOP_BY_HOP.iter().any(|h| h.as_str().as_bytes().eq_ignore_ascii_case(t)))
            .filter_map(|t| HeaderName::from_bytes(t).ok())
            .collect()
    } else {
        Vec::new()
    };
    let upgrade = if keep_upgrade { headers.remove(UPGRADE) } else { None };
    for name in present.into_iter().flatten().chain(named) {
        headers.remove(name);
    }
    if let Some(protocol) = upgrade {
        headers.insert(UPGRADE, protocol);
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Removes every header the proxy injects as identity, whatever the route:
/// the app must be able to trust that only tokengate set them.
pub fn strip_identity(headers: &mut HeaderMap, identity: &IdentityHeaders) {
    for name in identity.names() {
        headers.remove(name);
    }
}

/// Sets `X-Forwarded-For` (appending the peer), `-Proto` and `-Host`.
pub fn set_forwarded(headers: &mut HeaderMap, peer: IpAddr, proto: &'static str, host: Option<HeaderValue>) {
    // One buffer, handed to the header without a copy.
    let mut chain = Vec::with_capacity(48);
    for v in headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()) {
        chain.extend_from_slice(v.trim().as_bytes());
        chain.extend_from_slice(b", ");
    }
    push_ip(&mut chain, peer);
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(chain)) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    match host {
        Some(h) => {
            headers.insert(X_FORWARDED_HOST, h);
        }
        None => {
            headers.remove(X_FORWARDED_HOST);
        }
    }
}

/// Appends `ip` in its usual text form. IPv4 by hand: `Display` for an
/// address cost about 900 instructions a request (docs/benchmarks.md).
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// The host the client addressed: `Host`, or the HTTP/2 `:authority`.
pub fn client_host<B>(req: &Request<B>) -> Option<HeaderValue> {
    req.headers().get(HOST).cloned().or_else(|| {
        req.uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    })
}

/// Sets the identity headers from verified claims. A claim that is absent or
/// cannot be a header value (an object, control characters) sets nothing.
pub fn inject_identity(headers: &mut HeaderMap, identity: &IdentityHeaders, claims: &Claims) {
    if let Some(name) = &identity.subject
        && let Some(v) = claims.subject().and_then(|s| HeaderValue::from_str(s).ok())
    {
        headers.insert(name.clone(), v);
    }
    for (claim, name) in &identity.claims {
        if let Some(v) = claims.get(claim).and_then(claim_value) {
            headers.insert(name.clone(), v);
        }
    }
}

fn claim_value(v: &Value) -> Option<HeaderValue> {
    match v {
        Value::String(s) => HeaderValue::from_str(s).ok(),
        Value::Number(n) => HeaderValue::from_str(&n.to_string()).ok(),
        Value::Bool(b) => Some(HeaderValue::from_static(if *b { "true" } else { "false" })),
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
                .collect();
            HeaderValue::from_str(&parts?.join(",")).ok()
        }
        Value::Null | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_display_would() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "192.168.9.90",
            "::1",
            "2001:db8::8a2e:370:7334",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string().into_bytes());
        }
    }

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic x"),
            ("upgrade", "websocket"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-kept"], "yes");
    }

    #[test]
    fn obs_text_in_connection_still_names_the_rest() {
        let mut h = map(&[("x-hop", "1"), ("http2-settings", "AAMA"), ("x-kept", "yes")]);
        h.insert(CONNECTION, HeaderValue::from_bytes(b"x-hop, h\xb1p").unwrap());
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["x-kept"]);
    }

    #[test]
    fn upgrade_survives_when_asked() {
        let mut h = map(&[
            ("connection", "Upgrade, x-hop"),
            ("upgrade", "websocket"),
            ("x-hop", "1"),
        ]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
        assert!(!h.contains_key("x-hop"));
    }

    #[test]
    fn detects_upgrade_requests() {
        let req = Request::builder()
            .header("connection", "keep-alive, Upgrade")
            .header("upgrade", "websocket")
            .body(())
            .unwrap();
        assert_eq!(requested_upgrade(&req), Some("websocket"));
        let req = Request::builder().header("upgrade", "websocket").body(()).unwrap();
        assert_eq!(requested_upgrade(&req), None);
        let req = Request::builder()
            .header("connection", "Upgrade")
            .header("upgrade", "websocket, h2c")
            .body(())
            .unwrap();
        assert_eq!(requested_upgrade(&req), None);
        let req = Request::builder()
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("upgrade", "h2c")
            .body(())
            .unwrap();
        assert_eq!(requested_upgrade(&req), None);
        let req = Request::builder()
            .version(Version::HTTP_10)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .body(())
            .unwrap();
        assert_eq!(requested_upgrade(&req), None);
    }

    #[test]
    fn unusual_and_untrusted_names() {
        let owned = vec!["x-auth-subject".to_owned(), "transfer-encoding".to_owned()];
        let strip: Vec<HeaderName> = crate::config::DEFAULT_STRIP_HEADERS
            .iter()
            .map(|n| HeaderName::from_static(n))
            .collect();
        let sample = || {
            map(&[
                ("x_auth_subject", "root"),
                ("x.auth.subject", "root"),
                ("x~auth!subject", "root"),
                ("transfer_encoding", "chunked"),
                ("x_custom", "1"),
                ("x-auth-email", "kept"),
                ("x-original-url", "/admin"),
                ("x-http-method-override", "DELETE"),
                ("forwarded", "for=1.2.3.4"),
            ])
        };
        let mut h = sample();
        strip_client_headers(&mut h, HeaderNames::Strict, &owned, &strip);
        assert_eq!(h.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["x-auth-email"]);
        let mut h = sample();
        strip_client_headers(&mut h, HeaderNames::Lenient, &owned, &strip);
        assert_eq!(
            h.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["x_custom", "x-auth-email"]
        );
        let mut h = sample();
        strip_client_headers(&mut h, HeaderNames::Strict, &owned, &[]);
        assert_eq!(h.len(), 4, "an empty strip list keeps the plain names");
    }

    #[test]
    fn forwarded_headers_append_and_overwrite() {
        let mut h = map(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
        ]);
        set_forwarded(
            &mut h,
            "10.1.2.3".parse().unwrap(),
            "http",
            Some(HeaderValue::from_static("app.example")),
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.7, 10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "app.example");
    }

    #[test]
    fn claim_values_become_headers_safely() {
        assert_eq!(claim_value(&serde_json::json!("a@b.c")).unwrap(), "a@b.c");
        assert_eq!(claim_value(&serde_json::json!(42)).unwrap(), "42");
        assert_eq!(claim_value(&serde_json::json!(["a", "b"])).unwrap(), "a,b");
        assert!(claim_value(&serde_json::json!("line\r\nInjected: yes")).is_none());
        assert!(claim_value(&serde_json::json!({"o": 1})).is_none());
        assert!(claim_value(&serde_json::json!(null)).is_none());
    }
}
