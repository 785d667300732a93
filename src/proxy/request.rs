//! Framing checks made before anything else reads a request: the spellings
//! RFC 9112 §3.2 and RFC 9113 §8.3 tell a server to refuse, because the
//! proxy and the app could each read them their own way.

use http::header::{HOST, TRANSFER_ENCODING};
use http::{Request, Version};

/// Why a request's framing is refused (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    /// More than one `Host` header: which one the app uses is anyone's guess.
    #[error("more than one Host header")]
    DuplicateHost,
    /// An HTTP/1.1 request without `Host` (RFC 9112 §3.2).
    #[error("HTTP/1.1 request without Host")]
    MissingHost,
    /// `Host` is not a bare `host[:port]`.
    #[error("Host is not a host[:port]")]
    InvalidHost,
    /// An absolute-form target or `:authority` names another host than `Host`.
    #[error("Host differs from the request target's authority")]
    HostMismatch,
    /// A method with lower-case letters: methods are case-sensitive, so
    /// `delete` is not `DELETE` to the policy, but some frameworks upper-case it.
    #[error("method is not in canonical upper case")]
    MethodCase,
    /// A transfer coding other than one `chunked`: hyper undoes only
    /// chunked, so the app would get the other coding's bytes unmarked.
    #[error("transfer coding other than chunked")]
    TransferCoding,
    /// Decision mode: the ingress did not say which request to judge (its
    /// method and URI headers are missing or unusable).
    #[error("the ingress did not name the original request ({0})")]
    NoOriginalRequest(&'static str),
    /// Decision mode: a header name the app would read as one tokengate
    /// owns (`X_Auth_Subject`); the ingress forwards it as sent, so it is
    /// refused rather than stripped.
    #[error("a header name that reads as an owned header once folded")]
    DisguisedHeader,
    /// Decision mode: a protocol switch the route does not allow; the
    /// ingress would open the tunnel, so it is refused rather than dropped.
    #[error("a protocol switch this route does not allow")]
    UpgradeNotAllowed,
}

/// Refuses ambiguous framing; `Ok` for every ordinary request.
pub fn check<B>(req: &Request<B>) -> Result<(), BadRequest> {
    if req.method().as_str().bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(BadRequest::MethodCase);
    }
    let mut codings = req
        .headers()
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii);
    if let Some(first) = codings.next()
        && (!first.eq_ignore_ascii_case(b"chunked") || codings.next().is_some())
    {
        return Err(BadRequest::TransferCoding);
    }
    let mut hosts = req.headers().get_all(HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(BadRequest::DuplicateHost);
    }
    // The target's authority: absolute-form over HTTP/1.1, `:authority` over HTTP/2.
    let target = req.uri().authority().map(|a| a.as_str().as_bytes());
    if target.is_some_and(|t| !valid_host(t)) {
        return Err(BadRequest::InvalidHost);
    }
    match (host.map(|h| h.as_bytes()), target) {
        (None, _) if req.version() == Version::HTTP_11 => Err(BadRequest::MissingHost),
        (None, _) => Ok(()),
        // RFC 9112 §3.2: an empty Host for a target without authority.
        (Some([]), None) => Ok(()),
        (Some([]), Some(_)) => Err(BadRequest::HostMismatch),
        (Some(host), _) if !valid_host(host) => Err(BadRequest::InvalidHost),
        (Some(host), Some(t)) if !host.eq_ignore_ascii_case(t) => Err(BadRequest::HostMismatch),
        (Some(_), _) => Ok(()),
    }
}

/// `host[:port]` as a client names a server: a DNS name or IPv4 address
/// (letters, digits, `-`, `.`, `_`) or a bracketed IPv6 address, and an
/// optional port up to 65535. No userinfo, no list, no other punctuation:
/// whatever the app makes of those, it is not what we would.
fn valid_host(bytes: &[u8]) -> bool {
    let (host, port) = match bytes.iter().rposition(|&b| b == b':') {
        Some(i) if !bytes[i..].contains(&b']') => (&bytes[..i], Some(&bytes[i + 1..])),
        _ => (bytes, None),
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.iter().all(u8::is_ascii_digit)
            && std::str::from_utf8(p)
                .ok()
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|n| n <= 65_535)
    });
    let host_ok = match host {
        [b'[', inner @ .., b']'] => {
            !inner.is_empty() && inner.iter().all(|b| b.is_ascii_hexdigit() || b":.".contains(b))
        }
        [] => false,
        name => name.iter().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(b)),
    };
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: Version, uri: &str, hosts: &[&str]) -> Request<()> {
        let mut b = Request::get(uri).version(version);
        for h in hosts {
            b = b.header(HOST, *h);
        }
        b.body(()).unwrap()
    }

    type Case = (Version, &'static str, &'static [&'static str], Result<(), BadRequest>);

    #[test]
    fn table() {
        use BadRequest::*;
        use Version as V;
        let cases: &[Case] = &[
            (V::HTTP_11, "/", &["app"], Ok(())),
            (V::HTTP_11, "/", &["app:8080"], Ok(())),
            (V::HTTP_11, "/", &["[::1]:8080"], Ok(())),
            (V::HTTP_11, "/", &[""], Ok(())),
            (V::HTTP_10, "/", &[], Ok(())),
            (V::HTTP_2, "http://app/", &[], Ok(())),
            (V::HTTP_2, "http://app/", &["APP"], Ok(())),
            (V::HTTP_11, "http://app/x", &["app"], Ok(())),
            (V::HTTP_11, "/", &[], Err(MissingHost)),
            (V::HTTP_11, "/", &["a", "b"], Err(DuplicateHost)),
            (V::HTTP_11, "/", &["a", "a"], Err(DuplicateHost)),
            (V::HTTP_2, "http://app/", &["a", "b"], Err(DuplicateHost)),
            (V::HTTP_11, "/", &["a b"], Err(InvalidHost)),
            (V::HTTP_11, "/", &["user@app"], Err(InvalidHost)),
            (V::HTTP_11, "/", &["app/x"], Err(InvalidHost)),
            (V::HTTP_11, "http://admin.internal/x", &["app"], Err(HostMismatch)),
            (V::HTTP_11, "http://app/x", &[""], Err(HostMismatch)),
            (V::HTTP_2, "http://admin.internal/", &["app"], Err(HostMismatch)),
            (V::HTTP_2, "http://u@app/", &[], Err(InvalidHost)),
            (V::HTTP_2, "http://a@evil.example/", &[], Err(InvalidHost)),
            (V::HTTP_11, "/", &["a,b"], Err(InvalidHost)),
            (V::HTTP_11, "/", &["a;b"], Err(InvalidHost)),
            (V::HTTP_11, "/", &["a'b"], Err(InvalidHost)),
            (V::HTTP_11, "/", &["a:99999"], Err(InvalidHost)),
            (V::HTTP_11, "/", &["a:"], Err(InvalidHost)),
            (V::HTTP_11, "/", &["[::1"], Err(InvalidHost)),
            (V::HTTP_11, "/", &["my_app:8080"], Ok(())),
            (V::HTTP_11, "/", &["10.0.0.1:80"], Ok(())),
        ];
        for (version, uri, hosts, want) in cases {
            assert_eq!(check(&req(*version, uri, hosts)), *want, "{version:?} {uri} {hosts:?}");
        }
    }

    #[test]
    fn only_chunked_transfer_coding() {
        for (codings, ok) in [
            (&["chunked"][..], true),
            (&["Chunked"][..], true),
            (&["gzip, chunked"][..], false),
            (&["gzip", "chunked"][..], false),
            (&["chunked", "chunked"][..], false),
            (&["identity"][..], false),
        ] {
            let mut r = req(Version::HTTP_11, "/", &["app"]);
            for c in codings {
                r.headers_mut()
                    .append(TRANSFER_ENCODING, http::HeaderValue::from_static(c));
            }
            assert_eq!(check(&r).is_ok(), ok, "{codings:?}");
        }
    }

    #[test]
    fn methods_must_be_upper_case() {
        let mut r = req(Version::HTTP_11, "/", &["app"]);
        *r.method_mut() = http::Method::from_bytes(b"delete").unwrap();
        assert_eq!(check(&r), Err(BadRequest::MethodCase));
        *r.method_mut() = http::Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(check(&r), Ok(()));
    }
}
