//! The request an ingress asks about, rebuilt from what each front door
//! sends, so that the proxy's own decision judges it: nginx `auth_request`
//! (`X-Original-Method`, `X-Original-URI` or `X-Original-URL`), Traefik
//! `forwardAuth` and Caddy `forward_auth` (`X-Forwarded-Method`,
//! `X-Forwarded-Uri`, `X-Forwarded-Host`), Envoy `ext_authz` over HTTP (the
//! original method, and the original path under `/envoy`) and over gRPC
//! (the `CheckRequest`'s HTTP attributes).
//!
//! Nothing is guessed: a front door's request that lacks the headers naming
//! the original method and target is refused, never judged as some default.

use http::header::HOST;
use http::uri::{PathAndQuery, Uri};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Version};

use crate::proxy::request::BadRequest;

/// The path gRPC clients call for Envoy's `Authorization.Check`.
pub const GRPC_CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";
/// The prefix Envoy's HTTP `ext_authz` is configured to put before the
/// original path (`path_prefix: /envoy`).
pub const ENVOY_PREFIX: &str = "/envoy";
/// The header a caller proves it is the ingress with, when a secret is set.
pub const SECRET_HEADER: HeaderName = HeaderName::from_static("x-tokengate-secret");

const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers an app may route on instead of the request line (method and URL
/// overrides). The proxy strips them; an ingress forwards them, so a
/// request that carries one the front door did not set itself is refused:
/// it would be judged as one request and served as another.
const ROUTING_OVERRIDES: [HeaderName; 11] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
    HeaderName::from_static("x-rewrite-url"),
    X_ORIGINAL_URL,
    X_ORIGINAL_URI,
    X_ORIGINAL_METHOD,
    X_FORWARDED_URI,
    X_FORWARDED_METHOD,
    HeaderName::from_static("x-forwarded-path"),
    HeaderName::from_static("x-forwarded-prefix"),
];

/// Which ingress protocol a decision request speaks: the `mode` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontDoor {
    /// nginx `auth_request`, ingress-nginx `auth-url`: `/nginx`.
    Nginx,
    /// Traefik `forwardAuth`, Caddy `forward_auth`: `/forward-auth`.
    ForwardAuth,
    /// Envoy / Istio `ext_authz` over HTTP: `/envoy/<original path>`.
    EnvoyHttp,
    /// Envoy / Istio `ext_authz` over gRPC.
    EnvoyGrpc,
}

impl FrontDoor {
    /// Every front door, in index order.
    pub const ALL: [FrontDoor; 4] = [
        FrontDoor::Nginx,
        FrontDoor::ForwardAuth,
        FrontDoor::EnvoyHttp,
        FrontDoor::EnvoyGrpc,
    ];

    /// The `mode` label value.
    pub const fn label(self) -> &'static str {
        match self {
            FrontDoor::Nginx => "nginx",
            FrontDoor::ForwardAuth => "forward_auth",
            FrontDoor::EnvoyHttp => "envoy_http",
            FrontDoor::EnvoyGrpc => "envoy_grpc",
        }
    }

    /// The front door a decision-listener path names.
    pub fn of_path(path: &str) -> Option<FrontDoor> {
        match path {
            "/nginx" => Some(FrontDoor::Nginx),
            "/forward-auth" => Some(FrontDoor::ForwardAuth),
            GRPC_CHECK_PATH => Some(FrontDoor::EnvoyGrpc),
            p if p == ENVOY_PREFIX || p.starts_with("/envoy/") => Some(FrontDoor::EnvoyHttp),
            _ => None,
        }
    }

    /// The headers this front door uses to describe the original request;
    /// they are not the client's and are left out of the rebuilt request.
    fn own_headers(self) -> &'static [HeaderName] {
        static NGINX: [HeaderName; 4] = [X_ORIGINAL_METHOD, X_ORIGINAL_URI, X_ORIGINAL_URL, SECRET_HEADER];
        static FORWARD: [HeaderName; 3] = [X_FORWARDED_METHOD, X_FORWARDED_URI, SECRET_HEADER];
        static ENVOY: [HeaderName; 1] = [SECRET_HEADER];
        match self {
            FrontDoor::Nginx => &NGINX,
            FrontDoor::ForwardAuth => &FORWARD,
            FrontDoor::EnvoyHttp | FrontDoor::EnvoyGrpc => &ENVOY,
        }
    }
}

/// The original request behind an HTTP front door's auth request: its
/// method, target and host, with the client's headers (the credentials).
pub fn from_http<B>(door: FrontDoor, auth: &Request<B>) -> Result<Request<()>, BadRequest> {
    let headers = auth.headers();
    let one = |name: &HeaderName| -> Result<Option<&str>, BadRequest> {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => v
                .to_str()
                .map(Some)
                .map_err(|_| BadRequest::NoOriginalRequest("a header naming it is not text")),
            // Two answers to "which request": neither can be trusted.
            (Some(_), Some(_)) => Err(BadRequest::NoOriginalRequest("a header naming it is repeated")),
        }
    };
    let (method, target, host): (Method, Uri, Option<HeaderValue>) = match door {
        FrontDoor::Nginx => {
            let method = one(&X_ORIGINAL_METHOD)?.ok_or(BadRequest::NoOriginalRequest("no X-Original-Method"))?;
            let (target, host) = match (one(&X_ORIGINAL_URI)?, one(&X_ORIGINAL_URL)?) {
                (Some(uri), None) => (origin_form(uri)?, forwarded_host(headers, auth)?),
                (None, Some(url)) => absolute_form(url)?,
                (None, None) => return Err(BadRequest::NoOriginalRequest("no X-Original-URI or X-Original-URL")),
                // An ingress sets one of them (ingress-nginx: the URL) and
                // passes the client's headers along: the other one is the
                // client's, naming a request of its choice.
                (Some(_), Some(_)) => {
                    return Err(BadRequest::NoOriginalRequest(
                        "both X-Original-URI and X-Original-URL; one is the client's",
                    ));
                }
            };
            (parse_method(method)?, target, host)
        }
        FrontDoor::ForwardAuth => {
            let method = one(&X_FORWARDED_METHOD)?.ok_or(BadRequest::NoOriginalRequest("no X-Forwarded-Method"))?;
            let uri = one(&X_FORWARDED_URI)?.ok_or(BadRequest::NoOriginalRequest("no X-Forwarded-Uri"))?;
            (parse_method(method)?, origin_form(uri)?, forwarded_host(headers, auth)?)
        }
        FrontDoor::EnvoyHttp => {
            let path = auth.uri().path().strip_prefix(ENVOY_PREFIX).unwrap_or_default();
            let path = if path.is_empty() { "/" } else { path };
            let target = match auth.uri().query() {
                Some(q) => origin_form(&format!("{path}?{q}"))?,
                None => origin_form(path)?,
            };
            (auth.method().clone(), target, headers.get(HOST).cloned())
        }
        FrontDoor::EnvoyGrpc => return Err(BadRequest::NoOriginalRequest("gRPC is not an HTTP front door")),
    };
    let mut out = Request::new(());
    *out.method_mut() = method;
    *out.uri_mut() = target;
    *out.version_mut() = Version::HTTP_11;
    let own = door.own_headers();
    let copy = out.headers_mut();
    for (name, value) in headers {
        if name != HOST && !own.contains(name) {
            copy.append(name.clone(), value.clone());
        }
    }
    if let Some(host) = host {
        copy.insert(HOST, host);
    }
    refuse_overrides(copy)?;
    Ok(out)
}

/// Refuses a routing override among the client's headers.
fn refuse_overrides(headers: &HeaderMap) -> Result<(), BadRequest> {
    if ROUTING_OVERRIDES.iter().any(|h| headers.contains_key(h)) {
        return Err(BadRequest::NoOriginalRequest(
            "a method or URL override header the app could route on",
        ));
    }
    Ok(())
}

/// The original request of an Envoy `CheckRequest`'s HTTP attributes.
pub fn from_attributes<'a>(
    method: &str,
    path: &str,
    host: &str,
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Result<Request<()>, BadRequest> {
    if method.is_empty() || path.is_empty() {
        return Err(BadRequest::NoOriginalRequest("no method or path in the check request"));
    }
    let mut out = Request::new(());
    *out.method_mut() = parse_method(method)?;
    *out.uri_mut() = origin_form(path)?;
    *out.version_mut() = Version::HTTP_11;
    let copy = out.headers_mut();
    for (name, value) in headers {
        // Pseudo-headers (`:path`, `:authority`) are the attributes above.
        if name.starts_with(':') {
            continue;
        }
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) else {
            return Err(BadRequest::NoOriginalRequest(
                "a header of the check request is not a valid header",
            ));
        };
        if name != HOST && name != SECRET_HEADER {
            copy.append(name, value);
        }
    }
    if !host.is_empty() {
        let host = HeaderValue::from_str(host).map_err(|_| BadRequest::InvalidHost)?;
        copy.insert(HOST, host);
    }
    refuse_overrides(copy)?;
    Ok(out)
}

fn parse_method(text: &str) -> Result<Method, BadRequest> {
    Method::from_bytes(text.as_bytes()).map_err(|_| BadRequest::NoOriginalRequest("not a method"))
}

/// A path and query exactly as the client sent them (`/a/b?c`).
fn origin_form(text: &str) -> Result<Uri, BadRequest> {
    if !text.starts_with('/') {
        return Err(BadRequest::NoOriginalRequest("the original URI is not a path"));
    }
    // A parser drops a fragment silently; a request target never has one,
    // so a `#` means the text is not the target the app gets.
    if text.contains('#') {
        return Err(BadRequest::NoOriginalRequest("a '#' in the original URI"));
    }
    PathAndQuery::try_from(text)
        .map(Uri::from)
        .map_err(|_| BadRequest::NoOriginalRequest("the original URI is not a valid request target"))
}

/// An absolute URL (ingress-nginx's `X-Original-URL`): its path and query,
/// and its authority as the host.
fn absolute_form(text: &str) -> Result<(Uri, Option<HeaderValue>), BadRequest> {
    // ingress-nginx builds it from the client's Host: `Host: a#` would make
    // `http://a#/admin`, which parses as `http://a/` with a fragment.
    if text.contains('#') {
        return Err(BadRequest::NoOriginalRequest("a '#' in X-Original-URL"));
    }
    let url = Uri::try_from(text).map_err(|_| BadRequest::NoOriginalRequest("X-Original-URL is not a URL"))?;
    let (Some(authority), Some(target)) = (url.authority(), url.path_and_query()) else {
        return Err(BadRequest::NoOriginalRequest("X-Original-URL is not an absolute URL"));
    };
    // The target must be exactly what follows the authority in the text,
    // not something the parser made up (`http://a` reads back as `/`).
    let after_authority = text
        .split_once("://")
        .map(|(_, rest)| &rest[authority.as_str().len().min(rest.len())..]);
    if after_authority != Some(target.as_str()) {
        return Err(BadRequest::NoOriginalRequest(
            "X-Original-URL has no path after its host",
        ));
    }
    let host = HeaderValue::from_str(authority.as_str()).map_err(|_| BadRequest::InvalidHost)?;
    Ok((origin_form(target.as_str())?, Some(host)))
}

/// The host the client addressed, as the front door reports it: its
/// `X-Forwarded-Host` (one), else the auth request's own `Host`.
fn forwarded_host<B>(headers: &HeaderMap, auth: &Request<B>) -> Result<Option<HeaderValue>, BadRequest> {
    let mut values = headers.get_all(X_FORWARDED_HOST).iter();
    match (values.next(), values.next()) {
        (Some(_), Some(_)) => Err(BadRequest::NoOriginalRequest("X-Forwarded-Host is repeated")),
        (Some(v), None) => Ok(Some(v.clone())),
        (None, _) => Ok(auth.headers().get(HOST).cloned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method("GET").uri(path);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn nginx_names_the_request_in_its_headers() {
        let r = auth(
            "/nginx",
            &[
                ("host", "auth.local"),
                ("x-original-method", "DELETE"),
                ("x-original-uri", "/admin/x?y=1"),
                ("x-forwarded-host", "app.example"),
                ("authorization", "Bearer t"),
                ("x-tokengate-secret", "s"),
            ],
        );
        let o = from_http(FrontDoor::Nginx, &r).unwrap();
        assert_eq!(o.method(), Method::DELETE);
        assert_eq!(o.uri(), "/admin/x?y=1");
        assert_eq!(o.headers()["host"], "app.example");
        assert_eq!(o.headers()["authorization"], "Bearer t");
        assert!(!o.headers().contains_key("x-original-uri"));
        assert!(!o.headers().contains_key("x-tokengate-secret"));
    }

    #[test]
    fn ingress_nginx_sends_an_absolute_url() {
        let r = auth(
            "/nginx",
            &[
                ("x-original-method", "GET"),
                ("x-original-url", "https://app.example/a%2e%2e/b"),
            ],
        );
        let o = from_http(FrontDoor::Nginx, &r).unwrap();
        assert_eq!(o.uri(), "/a%2e%2e/b", "as sent: the decision normalises it");
        assert_eq!(o.headers()["host"], "app.example");
    }

    #[test]
    fn a_request_without_the_front_doors_headers_is_refused() {
        for (door, headers) in [
            (FrontDoor::Nginx, vec![("x-original-uri", "/a")]),
            (FrontDoor::Nginx, vec![("x-original-method", "GET")]),
            (FrontDoor::ForwardAuth, vec![("x-forwarded-method", "GET")]),
            (FrontDoor::ForwardAuth, vec![("x-forwarded-uri", "/a")]),
            (
                FrontDoor::ForwardAuth,
                vec![
                    ("x-forwarded-method", "GET"),
                    ("x-forwarded-uri", "/a"),
                    ("x-forwarded-uri", "/public"),
                ],
            ),
            (
                FrontDoor::ForwardAuth,
                vec![("x-forwarded-method", "GET"), ("x-forwarded-uri", "http://x/a")],
            ),
            (
                FrontDoor::Nginx,
                vec![("x-original-method", "G T"), ("x-original-uri", "/a")],
            ),
        ] {
            let r = auth("/x", &headers);
            assert!(
                matches!(from_http(door, &r), Err(BadRequest::NoOriginalRequest(_))),
                "{door:?} {headers:?}"
            );
        }
    }

    #[test]
    fn envoy_puts_the_original_path_under_its_prefix() {
        let r = Request::builder()
            .method("PUT")
            .uri("/envoy/api/v1?q=2")
            .header("host", "app.example")
            .body(())
            .unwrap();
        let o = from_http(FrontDoor::EnvoyHttp, &r).unwrap();
        assert_eq!(
            (o.method(), o.uri().to_string().as_str()),
            (&Method::PUT, "/api/v1?q=2")
        );
        let root = Request::builder().uri("/envoy").body(()).unwrap();
        assert_eq!(from_http(FrontDoor::EnvoyHttp, &root).unwrap().uri(), "/");
    }

    #[test]
    fn paths_name_front_doors() {
        assert_eq!(FrontDoor::of_path("/nginx"), Some(FrontDoor::Nginx));
        assert_eq!(FrontDoor::of_path("/envoy/x"), Some(FrontDoor::EnvoyHttp));
        assert_eq!(FrontDoor::of_path("/envoyx"), None);
        assert_eq!(FrontDoor::of_path(GRPC_CHECK_PATH), Some(FrontDoor::EnvoyGrpc));
        assert_eq!(FrontDoor::of_path("/nginx/"), None);
    }
}
