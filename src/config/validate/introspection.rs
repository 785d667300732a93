//! `auth.issuers[].introspection`: RFC 7662 for an issuer's opaque tokens.

use super::*;

pub(super) fn introspection(
    c: &mut Check<'_>,
    path: &str,
    raw: Option<&RawIntrospection>,
    discovery: bool,
) -> Option<Introspection> {
    let raw = raw?;
    let ipath = format!("{path}.introspection");
    let allow_http = raw.allow_http.as_ref().is_some_and(|a| a.value);
    let endpoint = match &raw.endpoint {
        Some(e) => fetchable_url(
            c,
            &format!("{ipath}.endpoint"),
            e,
            allow_http,
            "plain http lets anyone on the path read the tokens sent; use https, a loopback address, or set introspection.allow_http: true",
        ),
        None if discovery => None,
        None => {
            c.problem(
                format!("{ipath}.endpoint"),
                None,
                "is required unless the issuer uses discovery (which names it)",
            );
            None
        }
    };
    let client_id = match &raw.client_id {
        Some(id) if !id.value.is_empty() => id.value.clone(),
        other => {
            c.problem(
                format!("{ipath}.client_id"),
                other.as_ref().and_then(line),
                "must name tokengate's client at the provider",
            );
            String::new()
        }
    };
    let secret = secret(
        c,
        &ipath,
        (raw.secret_file.as_ref(), raw.secret_env.as_ref()),
        None,
        "needs exactly one of secret_file or secret_env (the client secret)",
    )
    .and_then(|s| match String::from_utf8(s) {
        Ok(s) if !s.is_empty() => Some(s),
        _ => {
            c.problem(&ipath, None, "the client secret must be non-empty UTF-8 text");
            None
        }
    });
    let auth_method = match raw.auth_method.as_ref().map(|m| (m, m.value.as_str())) {
        None | Some((_, "client_secret_basic")) => ClientAuth::Basic,
        Some((_, "client_secret_post")) => ClientAuth::Post,
        Some((m, _)) => {
            c.problem(
                format!("{ipath}.auth_method"),
                line(m),
                "must be client_secret_basic (default) or client_secret_post",
            );
            ClientAuth::Basic
        }
    };
    let timeout = c.positive_duration(
        &format!("{ipath}.timeout"),
        raw.timeout.as_ref(),
        Duration::from_secs(2),
    );
    let cache_max = c.positive_duration(
        &format!("{ipath}.cache_max"),
        raw.cache_max.as_ref(),
        Duration::from_secs(300),
    );
    let negative_cache = c.duration(
        &format!("{ipath}.negative_cache"),
        raw.negative_cache.as_ref(),
        Duration::from_secs(10),
    );
    let max_entries = raw.max_entries.as_ref().map_or(100_000, |m| m.value);
    if max_entries == 0 {
        c.problem(
            format!("{ipath}.max_entries"),
            raw.max_entries.as_ref().and_then(line),
            "must be greater than zero",
        );
    }
    let ca = raw.ca_file.as_ref().and_then(|f| {
        let fpath = format!("{ipath}.ca_file");
        let pem = c.read(&fpath, f)?;
        certificates(c, &fpath, f, &pem)
    });
    Some(Introspection {
        endpoint,
        client_id,
        client_secret: secret?,
        auth_method,
        timeout,
        cache_max,
        negative_cache,
        max_entries,
        ca,
        allow_http,
    })
}

/// One issuer at most: an opaque token names no issuer, so it can be sent
/// to only one provider without leaking it to the others.
pub(super) fn one_introspecting_issuer(c: &mut Check<'_>, issuers: &[Issuer]) {
    let mut introspecting = issuers.iter().enumerate().filter(|(_, i)| i.introspection.is_some());
    if let (Some(_), Some((second, _))) = (introspecting.next(), introspecting.next()) {
        c.problem(
            format!("auth.issuers[{second}].introspection"),
            None,
            "only one issuer may introspect: an opaque token names no issuer, and sending it to another provider would leak it",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::check;

    #[test]
    fn table() {
        let base = "upstream: { url: \"http://127.0.0.1:3000\" }\nauth:\n  issuers:\n";
        let secret = "secret_file: dev-hs256-secret.DEVELOPMENT-ONLY.txt";
        check(&[
            (
                &format!(
                    "{base}    - {{ issuer: a, introspection: {{ client_id: \"\", auth_method: jwt, timeout: 0s }} }}\n"
                ),
                &[
                    "auth.issuers[0].introspection.endpoint: is required unless the issuer uses discovery (which names it)",
                    "auth.issuers[0].introspection.client_id: must name tokengate's client at the provider",
                    "auth.issuers[0].introspection: needs exactly one of secret_file or secret_env (the client secret)",
                    "auth.issuers[0].introspection.auth_method: must be client_secret_basic (default) or client_secret_post",
                    "auth.issuers[0].introspection.timeout: must be greater than zero",
                ],
            ),
            (
                &format!(
                    "{base}    - {{ issuer: a, introspection: {{ endpoint: \"http://op.example/introspect\", client_id: tg, {secret} }} }}\n    - {{ issuer: b, introspection: {{ endpoint: \"https://op.example/i\", client_id: tg, {secret} }} }}\n"
                ),
                &[
                    "auth.issuers[0].introspection.endpoint: plain http lets anyone on the path read the tokens sent; use https, a loopback address, or set introspection.allow_http: true",
                    "auth.issuers[1].introspection: only one issuer may introspect: an opaque token names no issuer, and sending it to another provider would leak it",
                ],
            ),
        ]);
    }
}
