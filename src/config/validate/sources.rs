//! The `auth` section: leeway, realm, token sources and identity headers.

use super::*;

pub(super) fn auth(c: &mut Check<'_>, raw: &RawAuth, has_sessions: bool) -> AuthConfig {
    let leeway = c.duration("auth.leeway", raw.leeway.as_ref(), Duration::from_secs(30));
    if leeway > Duration::from_secs(600) {
        c.problem(
            "auth.leeway",
            raw.leeway.as_ref().and_then(line),
            "more than 10m of clock skew would let expired tokens through for too long",
        );
    }
    let realm = match &raw.realm {
        Some(r)
            if r.value.is_empty()
                || !r
                    .value
                    .chars()
                    .all(|ch| ch.is_ascii_graphic() && ch != '"' && ch != '\\' || ch == ' ') =>
        {
            c.problem(
                "auth.realm",
                line(r),
                "must be non-empty printable ASCII without quotes or backslashes (it is quoted in WWW-Authenticate)",
            );
            "tokengate".to_owned()
        }
        Some(r) => r.value.clone(),
        None => "tokengate".to_owned(),
    };
    let sources = match &raw.sources {
        None => vec![TokenSource::Bearer],
        Some(list) if list.is_empty() => {
            c.problem(
                "auth.sources",
                None,
                "needs at least one source, e.g. `- header: authorization`",
            );
            vec![TokenSource::Bearer]
        }
        Some(list) => {
            let mut out: Vec<TokenSource> = Vec::new();
            for (i, s) in list.iter().enumerate() {
                let path = format!("auth.sources[{i}]");
                if let Some(src) = source(c, &path, s) {
                    if out.contains(&src) {
                        c.problem(path, None, "is listed twice");
                    } else {
                        out.push(src);
                    }
                }
            }
            out
        }
    };
    if raw.issuers.is_empty() && !has_sessions {
        c.problem(
            "auth.issuers",
            None,
            "needs at least one issuer with keys (or a `sessions` section, whose issuer is added)",
        );
    }
    let mut issuers: Vec<Issuer> = Vec::new();
    for (i, ri) in raw.issuers.iter().enumerate() {
        let path = format!("auth.issuers[{i}]");
        if issuers.iter().any(|x| x.issuer == ri.issuer.value) {
            c.problem(format!("{path}.issuer"), line(&ri.issuer), "is listed twice");
        }
        issuers.push(issuer(c, &path, ri));
    }
    let identity = identity_headers(c, raw.identity_headers.as_ref());
    let cache = raw.verify_cache.as_ref();
    let verify_cache = VerifyCacheConfig {
        enabled: cache.and_then(|v| v.enabled.as_ref()).is_none_or(|e| e.value),
        max_entries: c.count(
            "auth.verify_cache.max_entries",
            cache.and_then(|v| v.max_entries.as_ref()),
            10_000,
            1,
            10_000_000,
        ),
    };
    AuthConfig {
        leeway,
        realm,
        sources,
        issuers,
        identity,
        verify_cache,
    }
}

pub(super) fn source(c: &mut Check<'_>, path: &str, raw: &RawSource) -> Option<TokenSource> {
    match (&raw.header, &raw.cookie, &raw.query) {
        (Some(h), None, None) => {
            let name = h.value.to_ascii_lowercase();
            match HeaderName::from_str(&name) {
                Ok(n) if n == http::header::AUTHORIZATION => Some(TokenSource::Bearer),
                Ok(n) if n == http::header::COOKIE => {
                    c.problem(format!("{path}.header"), line(h), "use `cookie: NAME` for cookies");
                    None
                }
                Ok(n) => Some(TokenSource::Header(n)),
                Err(_) => {
                    c.problem(
                        format!("{path}.header"),
                        line(h),
                        format!("`{}` is not a header name", h.value),
                    );
                    None
                }
            }
        }
        (None, Some(k), None) => {
            if k.value.is_empty() || !k.value.bytes().all(is_token_char) {
                c.problem(
                    format!("{path}.cookie"),
                    line(k),
                    format!("`{}` is not a cookie name", k.value),
                );
                return None;
            }
            Some(TokenSource::Cookie(k.value.clone()))
        }
        (None, None, Some(q)) => {
            if q.value.is_empty()
                || !q
                    .value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
            {
                c.problem(
                    format!("{path}.query"),
                    line(q),
                    format!(
                        "`{}` must be a plain parameter name (letters, digits, - . _ ~)",
                        q.value
                    ),
                );
                return None;
            }
            Some(TokenSource::Query(q.value.clone()))
        }
        _ => {
            c.problem(path, None, "needs exactly one of `header`, `cookie` or `query`");
            None
        }
    }
}

/// RFC 9110 `tchar`, which cookie names must also be.
pub(super) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub(super) fn identity_headers(c: &mut Check<'_>, raw: Option<&RawIdentityHeaders>) -> IdentityHeaders {
    let mut out = IdentityHeaders::default();
    let header = |c: &mut Check<'_>, path: String, v: &S<String>| -> Option<HeaderName> {
        let name = match HeaderName::from_str(&v.value.to_ascii_lowercase()) {
            Ok(n) => n,
            Err(_) => {
                c.problem(path, line(v), format!("`{}` is not a header name", v.value));
                return None;
            }
        };
        if RESERVED_HEADERS.contains(&name.as_str()) {
            c.problem(path, line(v), format!("`{name}` is reserved and cannot carry identity"));
            return None;
        }
        Some(name)
    };
    match raw.and_then(|r| r.subject.as_ref()) {
        Some(v) => out.subject = header(c, "auth.identity_headers.subject".into(), v),
        None => out.subject = Some(HeaderName::from_static("x-auth-subject")),
    }
    if let Some(raw) = raw {
        for (claim, v) in &raw.claims {
            let path = format!("auth.identity_headers.claims.{claim}");
            if let Some(name) = header(c, path.clone(), v) {
                if out.names().any(|n| *n == name) {
                    c.problem(
                        path,
                        line(v),
                        format!("`{name}` is already used by another identity header"),
                    );
                } else {
                    out.claims.push((claim.clone(), name));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::table::check;

    #[test]
    fn table() {
        let yaml = "upstream: { url: \"http://127.0.0.1:3000\" }
auth:
  leeway: 11m
  realm: \"a\\\"b\"
  sources: [{ header: authorization, cookie: x }, { query: \"\" }, {}]
  identity_headers: { subject: Host, claims: { email: \"bad name\" } }
  issuers:
    - issuer: t
      keys: [{ algorithm: HS256, secret_file: dev-hs256-secret.DEVELOPMENT-ONLY.txt }]
";
        check(&[(
            yaml,
            &[
                "auth.leeway: more than 10m of clock skew would let expired tokens through for too long",
                "auth.realm: must be non-empty printable ASCII without quotes or backslashes (it is quoted in WWW-Authenticate)",
                "auth.sources[0]: needs exactly one of `header`, `cookie` or `query`",
                "auth.sources[1].query: `` must be a plain parameter name (letters, digits, - . _ ~)",
                "auth.sources[2]: needs exactly one of `header`, `cookie` or `query`",
                "auth.identity_headers.subject: `host` is reserved and cannot carry identity",
                "auth.identity_headers.claims.email: `bad name` is not a header name",
            ],
        )]);
    }
}
