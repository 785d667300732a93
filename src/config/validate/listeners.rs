//! The listener-side sections: `upstream`, `tls` and `limits`.

use super::*;

pub(super) fn upstream(c: &mut Check<'_>, raw: &RawUpstream) -> UpstreamConfig {
    let fallback = Authority::from_static("127.0.0.1:1");
    let authority = match raw.url.value.parse::<Uri>() {
        Ok(uri) => {
            let mut why = None;
            if uri.scheme_str() != Some("http") {
                why = Some("must be an http:// URL: the app listens beside the proxy, in the same pod or host");
            } else if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
                why = Some("must not have a path or query: requests keep their own path");
            }
            match (why, uri.authority()) {
                (None, Some(a)) if a.port_u16().is_some() || !a.host().is_empty() => a.clone(),
                (Some(why), _) => {
                    c.problem("upstream.url", line(&raw.url), why);
                    fallback
                }
                _ => {
                    c.problem("upstream.url", line(&raw.url), "has no host");
                    fallback
                }
            }
        }
        Err(e) => {
            c.problem(
                "upstream.url",
                line(&raw.url),
                format!("`{}` is not a URL: {e}", raw.url.value),
            );
            fallback
        }
    };
    UpstreamConfig {
        authority,
        connect_timeout: c.positive_duration(
            "upstream.connect_timeout",
            raw.connect_timeout.as_ref(),
            Duration::from_secs(2),
        ),
        request_timeout: c.positive_duration(
            "upstream.request_timeout",
            raw.request_timeout.as_ref(),
            Duration::from_secs(60),
        ),
        pool_idle_timeout: c.positive_duration(
            "upstream.pool_idle_timeout",
            raw.pool_idle_timeout.as_ref(),
            Duration::from_secs(90),
        ),
        pool_max_idle: c.count("upstream.pool_max_idle", raw.pool_max_idle.as_ref(), 256, 0, 65_536) as usize,
        max_connections: c.count(
            "upstream.max_connections",
            raw.max_connections.as_ref(),
            1024,
            1,
            1_000_000,
        ) as usize,
    }
}

pub(super) fn tls(c: &mut Check<'_>, raw: &RawTls) -> Option<TlsConfig> {
    server_tls(c, "tls", &raw.cert_file, &raw.key_file)
}

/// A certificate chain and its key from PEM files; `at` names the section.
pub(super) fn server_tls(
    c: &mut Check<'_>,
    at: &str,
    cert_file: &S<String>,
    key_file: &S<String>,
) -> Option<TlsConfig> {
    let cert_at = format!("{at}.cert_file");
    let key_at = format!("{at}.key_file");
    let cert_pem = c.read(&cert_at, cert_file);
    let key_pem = c.read(&key_at, key_file);
    let certs: Vec<CertificateDer<'static>> = match cert_pem {
        Some(pem) => certificates(c, &cert_at, cert_file, &pem)?,
        None => return None,
    };
    let key = match PrivateKeyDer::from_pem_slice(&key_pem?) {
        Ok(key) => key,
        Err(e) => {
            c.problem(&key_at, line(key_file), format!("not a PEM private key: {e}"));
            return None;
        }
    };
    Some(TlsConfig {
        certs,
        key,
        client_ca: None,
    })
}

/// The PEM certificates of `pem`, at least one.
pub(super) fn certificates(
    c: &mut Check<'_>,
    at: &str,
    file: &S<String>,
    pem: &[u8],
) -> Option<Vec<CertificateDer<'static>>> {
    match CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>() {
        Ok(certs) if !certs.is_empty() => Some(certs),
        Ok(_) => {
            c.problem(at, line(file), "holds no PEM certificate");
            None
        }
        Err(e) => {
            c.problem(at, line(file), format!("not a PEM certificate chain: {e}"));
            None
        }
    }
}

pub(super) fn limits(c: &mut Check<'_>, raw: Option<&RawLimits>) -> Limits {
    let max_header_bytes = c.count(
        "limits.max_header_bytes",
        raw.and_then(|r| r.max_header_bytes.as_ref()),
        32 * 1024,
        MIN_HEADER_BYTES,
        1024 * 1024,
    );
    let max_token_bytes = c.count(
        "limits.max_token_bytes",
        raw.and_then(|r| r.max_token_bytes.as_ref()),
        8 * 1024,
        256,
        max_header_bytes,
    );
    Limits {
        max_header_bytes: max_header_bytes as usize,
        max_token_bytes: max_token_bytes as usize,
        header_read_timeout: c.positive_duration(
            "limits.header_read_timeout",
            raw.and_then(|r| r.header_read_timeout.as_ref()),
            Duration::from_secs(30),
        ),
        idle_timeout: c.positive_duration(
            "limits.idle_timeout",
            raw.and_then(|r| r.idle_timeout.as_ref()),
            Duration::from_secs(120),
        ),
        tunnel_idle_timeout: c.positive_duration(
            "limits.tunnel_idle_timeout",
            raw.and_then(|r| r.tunnel_idle_timeout.as_ref()),
            DEFAULT_TUNNEL_IDLE_TIMEOUT,
        ),
        tls_handshake_timeout: c.positive_duration(
            "limits.tls_handshake_timeout",
            raw.and_then(|r| r.tls_handshake_timeout.as_ref()),
            Duration::from_secs(10),
        ),
        max_connections: c.count(
            "limits.max_connections",
            raw.and_then(|r| r.max_connections.as_ref()),
            10_000,
            1,
            1_000_000,
        ) as usize,
        max_concurrent_streams: c.count(
            "limits.max_concurrent_streams",
            raw.and_then(|r| r.max_concurrent_streams.as_ref()),
            256,
            1,
            10_000,
        ) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{BASE, check};

    #[test]
    fn table() {
        const ISSUER: &str = "auth:\n  issuers:\n    - issuer: t\n      keys: [{ algorithm: HS256, secret_file: dev-hs256-secret.DEVELOPMENT-ONLY.txt }]\n";
        let https = format!("upstream: {{ url: \"https://127.0.0.1:3000\" }}\n{ISSUER}");
        let path = format!("upstream: {{ url: \"http://127.0.0.1:3000/app\", connect_timeout: 0s }}\n{ISSUER}");
        let limits = format!("{BASE}limits: {{ max_header_bytes: 100, max_connections: 0, idle_timeout: 5x }}\n");
        let listen = format!("{BASE}listen: nowhere\nadmin: {{ listen: \"127.0.0.1:8080\" }}\n");
        let same = format!("{BASE}listen: \"127.0.0.1:8080\"\nadmin: {{ listen: \"127.0.0.1:8080\" }}\n");
        check(&[
            (BASE, &[]),
            (
                &https,
                &["upstream.url: must be an http:// URL: the app listens beside the proxy, in the same pod or host"],
            ),
            (
                &path,
                &[
                    "upstream.url: must not have a path or query: requests keep their own path",
                    "upstream.connect_timeout: must be greater than zero",
                ],
            ),
            (
                &limits,
                &[
                    "limits.max_header_bytes: 100 is outside 8192..=1048576",
                    "limits.idle_timeout: `5x` has an unknown unit `x`; use ms, s, m, h or d",
                    "limits.max_connections: 0 is outside 1..=1000000",
                ],
            ),
            (
                &listen,
                &["listen: `nowhere` is not an IP:port address (e.g. 0.0.0.0:8080 or [::]:8080)"],
            ),
            (
                &same,
                &["admin.listen: must differ from `listen`: metrics and health stay off the proxy port"],
            ),
        ]);
    }
}
