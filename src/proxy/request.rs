//! Framing checks made before anything else reads a request: the spellings
//! RFC 9112 §3.2 and RFC 9113 §8.3 tell a server to refuse, because the
//! proxy and the app could each read them their own way.

use http::header::HOST;
use http::uri::Authority;
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
}

/// Refuses ambiguous framing; `Ok` for every ordinary request.
pub fn check<B>(req: &Request<B>) -> Result<(), BadRequest> {
    if req.method().as_str().bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(BadRequest::MethodCase);
    }
    let mut hosts = req.headers().get_all(HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(BadRequest::DuplicateHost);
    }
    let target = req.uri().authority();
    match (host, target) {
        (None, _) if req.version() == Version::HTTP_11 => Err(BadRequest::MissingHost),
        (None, _) => Ok(()),
        (Some(host), target) => {
            let bytes = host.as_bytes();
            if bytes.is_empty() {
                // RFC 9112 §3.2: an empty Host for a target without authority.
                return if target.is_some() {
                    Err(BadRequest::HostMismatch)
                } else {
                    Ok(())
                };
            }
            let parsed = Authority::try_from(bytes).map_err(|_| BadRequest::InvalidHost)?;
            if bytes.contains(&b'@') {
                return Err(BadRequest::InvalidHost);
            }
            match target {
                Some(t) if !t.as_str().eq_ignore_ascii_case(parsed.as_str()) => Err(BadRequest::HostMismatch),
                _ => Ok(()),
            }
        }
    }
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
        ];
        for (version, uri, hosts, want) in cases {
            assert_eq!(check(&req(*version, uri, hosts)), *want, "{version:?} {uri} {hosts:?}");
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
