//! `auth.issuers[]`: each trusted issuer, its audiences and its remote JWKS.

use super::*;

pub(super) fn issuer(c: &mut Check<'_>, path: &str, raw: &RawIssuer) -> Issuer {
    if raw.issuer.value.is_empty() {
        c.problem(format!("{path}.issuer"), line(&raw.issuer), "must not be empty");
    }
    let mut audiences = Vec::new();
    for (i, a) in raw.audiences.iter().enumerate() {
        if a.value.is_empty() {
            c.problem(format!("{path}.audiences[{i}]"), line(a), "must not be empty");
        }
        audiences.push(a.value.clone());
    }
    if raw.keys.is_empty() && raw.jwks_url.is_none() && raw.jwks_file.is_none() {
        c.problem(
            format!("{path}.keys"),
            line(&raw.issuer),
            "needs at least one key, a jwks_url or a jwks_file",
        );
    }
    let mut keys: Vec<Key> = Vec::new();
    for (i, rk) in raw.keys.iter().enumerate() {
        let kpath = format!("{path}.keys[{i}]");
        if raw.keys.len() > 1 && rk.kid.is_none() {
            c.problem(
                format!("{kpath}.kid"),
                line(&rk.algorithm),
                "is required when an issuer has more than one key",
            );
        }
        if let Some(kid) = &rk.kid {
            if kid.value.is_empty() {
                c.problem(format!("{kpath}.kid"), line(kid), "must not be empty");
            } else if keys.iter().any(|k| k.kid.as_deref() == Some(kid.value.as_str())) {
                c.problem(
                    format!("{kpath}.kid"),
                    line(kid),
                    format!("`{}` is used twice in this issuer", kid.value),
                );
            }
        }
        if let Some(k) = key(c, &kpath, rk) {
            keys.push(k);
        }
    }
    let algorithms = jwks_algorithms(c, path, raw.algorithms.as_deref());
    let jwks_file_keys = raw.jwks_file.as_ref().and_then(|file| {
        let fpath = format!("{path}.jwks_file");
        let doc = c.read(&fpath, file)?;
        match crate::keys::jwks::parse(&doc, &algorithms) {
            Ok(parsed) => {
                // One rule with jwks_url: a provider's set often holds keys
                // not for us (`use: enc`), and they are skipped, not fatal.
                for why in parsed.skipped {
                    c.notes.push(format!("{fpath}: {why}, skipped"));
                }
                Some(parsed.set)
            }
            Err(e) => {
                c.problem(&fpath, line(file), e.to_string());
                None
            }
        }
    });
    let remote = match (&raw.jwks_url, &raw.jwks) {
        (Some(url), jwks) => jwks_remote(c, path, url, jwks.as_ref(), algorithms),
        (None, Some(_)) => {
            c.problem(
                format!("{path}.jwks"),
                line(&raw.issuer),
                "tunes a jwks_url, and none is given",
            );
            None
        }
        (None, None) => None,
    };
    let token_type = raw.token_type.as_ref().and_then(|t| {
        let normal = media_type(&t.value);
        if normal.is_empty() || !normal.bytes().all(|b| b.is_ascii_graphic()) {
            c.problem(
                format!("{path}.token_type"),
                line(t),
                "must be a media type such as at+jwt (RFC 9068 access tokens)",
            );
            return None;
        }
        Some(normal)
    });
    Issuer {
        issuer: raw.issuer.value.clone(),
        audiences,
        keys,
        jwks_file_keys,
        remote,
        token_type,
    }
}

pub(super) fn jwks_algorithms(c: &mut Check<'_>, path: &str, raw: Option<&[S<String>]>) -> Vec<Alg> {
    let asymmetric = crate::keys::jwks::ASYMMETRIC_ALGORITHMS;
    let Some(list) = raw else {
        return asymmetric.to_vec();
    };
    if list.is_empty() {
        c.problem(format!("{path}.algorithms"), None, "must name at least one algorithm");
    }
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        match Alg::from_str(&a.value) {
            Ok(alg) if asymmetric.contains(&alg) => out.push(alg),
            Ok(_) => c.problem(
                format!("{path}.algorithms[{i}]"),
                line(a),
                "HMAC keys are never taken from a JWKS; configure them under keys with secret_file",
            ),
            Err(_) => c.problem(
                format!("{path}.algorithms[{i}]"),
                line(a),
                format!("`{}` is not one of {}", a.value, Alg::names(asymmetric)),
            ),
        }
    }
    out
}

pub(super) fn jwks_remote(
    c: &mut Check<'_>,
    path: &str,
    url: &S<String>,
    raw: Option<&RawJwks>,
    algorithms: Vec<Alg>,
) -> Option<JwksRemote> {
    let upath = format!("{path}.jwks_url");
    let allow_http = raw.and_then(|j| j.allow_http.as_ref()).is_some_and(|a| a.value);
    let uri = match url.value.parse::<Uri>() {
        Ok(u) if u.host().is_some() && u.authority().is_some_and(|a| !a.as_str().contains('@')) => u,
        _ => {
            c.problem(
                &upath,
                line(url),
                format!("`{}` is not an absolute http(s) URL without credentials", url.value),
            );
            return None;
        }
    };
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if allow_http || is_loopback_host(uri.host().unwrap_or_default()) => {}
        Some("http") => {
            c.problem(
                &upath,
                line(url),
                "plain http lets anyone on the path substitute keys; use https, a loopback address, or set jwks.allow_http: true",
            );
            return None;
        }
        _ => {
            c.problem(&upath, line(url), "must be an http:// or https:// URL");
            return None;
        }
    }
    let ca = raw.and_then(|j| j.ca_file.as_ref()).and_then(|f| {
        let fpath = format!("{path}.jwks.ca_file");
        let pem = c.read(&fpath, f)?;
        match CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>() {
            Ok(certs) if !certs.is_empty() => Some(certs),
            _ => {
                c.problem(&fpath, line(f), "holds no PEM certificate");
                None
            }
        }
    });
    let jpath = format!("{path}.jwks");
    let field = |f: fn(&RawJwks) -> Option<&S<String>>| raw.and_then(f);
    let refresh_interval = c.positive_duration(
        &format!("{jpath}.refresh_interval"),
        field(|j| j.refresh_interval.as_ref()),
        Duration::from_secs(300),
    );
    let min_refresh_interval = c.positive_duration(
        &format!("{jpath}.min_refresh_interval"),
        field(|j| j.min_refresh_interval.as_ref()),
        Duration::from_secs(30),
    );
    let max_refresh_interval = c.positive_duration(
        &format!("{jpath}.max_refresh_interval"),
        field(|j| j.max_refresh_interval.as_ref()),
        Duration::from_secs(3600),
    );
    if min_refresh_interval > max_refresh_interval {
        c.problem(
            format!("{jpath}.min_refresh_interval"),
            field(|j| j.min_refresh_interval.as_ref()).and_then(line),
            "is longer than max_refresh_interval",
        );
    }
    let unknown_kid_cooldown = c.positive_duration(
        &format!("{jpath}.unknown_kid_cooldown"),
        field(|j| j.unknown_kid_cooldown.as_ref()),
        Duration::from_secs(10),
    );
    let fetch_timeout = c.positive_duration(
        &format!("{jpath}.fetch_timeout"),
        field(|j| j.fetch_timeout.as_ref()),
        Duration::from_secs(5),
    );
    Some(JwksRemote {
        url: uri,
        ca,
        algorithms,
        refresh_interval,
        min_refresh_interval,
        max_refresh_interval,
        unknown_kid_cooldown,
        fetch_timeout,
    })
}

pub(super) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::super::table::check;

    #[test]
    fn table() {
        let yaml = "upstream: { url: \"http://127.0.0.1:3000\" }
auth:
  issuers:
    - issuer: t
      keys: [{ algorithm: HS256, secret_file: dev-hs256-secret.DEVELOPMENT-ONLY.txt }]
    - issuer: t
      jwks_url: \"http://idp.example/jwks\"
      algorithms: [HS256, none]
    - issuer: u
    - issuer: v
      keys: [{ algorithm: HS256, secret_file: dev-hs256-secret.DEVELOPMENT-ONLY.txt }]
      token_type: \"at jwt\"
";
        check(&[(
            yaml,
            &[
                "auth.issuers[1].issuer: is listed twice",
                "auth.issuers[1].algorithms[0]: HMAC keys are never taken from a JWKS; configure them under keys with secret_file",
                "auth.issuers[1].algorithms[1]: `none` is not one of RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA Ed25519",
                "auth.issuers[1].jwks_url: plain http lets anyone on the path substitute keys; use https, a loopback address, or set jwks.allow_http: true",
                "auth.issuers[2].keys: needs at least one key, a jwks_url or a jwks_file",
                "auth.issuers[3].token_type: must be a media type such as at+jwt (RFC 9068 access tokens)",
            ],
        )]);
    }
}
