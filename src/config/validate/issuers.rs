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
    let discovery = raw.discovery.as_ref().is_some_and(|d| d.value);
    if raw.keys.is_empty()
        && raw.jwks_url.is_none()
        && raw.jwks_file.is_none()
        && !discovery
        && raw.introspection.is_none()
    {
        c.problem(
            format!("{path}.keys"),
            line(&raw.issuer),
            "needs at least one key, a jwks_url, a jwks_file, discovery: true or introspection",
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
    let remote = match (&raw.jwks_url, &raw.jwks, discovery) {
        (Some(url), _, true) => {
            c.problem(
                format!("{path}.jwks_url"),
                line(url),
                "discovery finds the JWKS URL in the provider's metadata; give one or the other",
            );
            None
        }
        (Some(url), jwks, false) => jwks_remote(c, path, url, jwks.as_ref(), algorithms),
        (None, jwks, true) => discovered_remote(c, path, &raw.issuer, jwks.as_ref(), algorithms),
        (None, Some(_), false) => {
            c.problem(
                format!("{path}.jwks"),
                line(&raw.issuer),
                "tunes a jwks_url or discovery, and neither is given",
            );
            None
        }
        (None, None, false) => None,
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
        backchannel_logout: issuer_logout(c, path, raw.backchannel_logout.as_ref()),
        introspection: introspection(c, path, raw.introspection.as_ref(), discovery),
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

/// An issuer found through OIDC discovery (or RFC 8414): its URL must be
/// one the JWKS could be fetched from, and the document URLs derive from it.
fn discovered_remote(
    c: &mut Check<'_>,
    path: &str,
    issuer: &S<String>,
    raw: Option<&RawJwks>,
    algorithms: Vec<Alg>,
) -> Option<JwksRemote> {
    let allow_http = raw.and_then(|j| j.allow_http.as_ref()).is_some_and(|a| a.value);
    let ipath = format!("{path}.issuer");
    let base = fetchable_url(c, &ipath, issuer, allow_http, KEYS_OVER_HTTP)?;
    if base.query().is_some() {
        c.problem(
            &ipath,
            line(issuer),
            "an issuer URL for discovery has no query or fragment (OpenID Connect Discovery §2)",
        );
        return None;
    }
    let trimmed = issuer.value.trim_end_matches('/');
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    let scheme = base.scheme_str().unwrap_or("https");
    let issuer_path = base.path().trim_end_matches('/');
    // OpenID Connect Discovery §4 appends; RFC 8414 §3.1 inserts before the path.
    let openid = format!("{trimmed}/.well-known/openid-configuration");
    let oauth = format!("{scheme}://{authority}/.well-known/oauth-authorization-server{issuer_path}");
    let (Ok(url), Ok(oauth_url)) = (openid.parse::<Uri>(), oauth.parse::<Uri>()) else {
        c.problem(&ipath, line(issuer), "no metadata URL can be formed from this issuer");
        return None;
    };
    let mut remote = remote_tuning(c, path, url, raw, algorithms)?;
    remote.discovery = Some(Discovery {
        issuer: issuer.value.clone(),
        oauth_url,
        allow_http,
    });
    Some(remote)
}

/// Why plain http is refused for keys and metadata.
const KEYS_OVER_HTTP: &str =
    "plain http lets anyone on the path substitute keys; use https, a loopback address, or set jwks.allow_http: true";

/// `url` parsed as an absolute http(s) URL without credentials that may be
/// fetched: https, or plain http to a loopback address or when `allow_http`
/// is set (else the problem `over_http`).
pub(super) fn fetchable_url(
    c: &mut Check<'_>,
    upath: &str,
    url: &S<String>,
    allow_http: bool,
    over_http: &str,
) -> Option<Uri> {
    let uri = match url.value.parse::<Uri>() {
        Ok(u) if u.host().is_some() && u.authority().is_some_and(|a| !a.as_str().contains('@')) => u,
        _ => {
            c.problem(
                upath,
                line(url),
                format!("`{}` is not an absolute http(s) URL without credentials", url.value),
            );
            return None;
        }
    };
    match uri.scheme_str() {
        Some("https") => Some(uri),
        Some("http") if allow_http || is_loopback_host(uri.host().unwrap_or_default()) => Some(uri),
        Some("http") => {
            c.problem(upath, line(url), over_http);
            None
        }
        _ => {
            c.problem(upath, line(url), "must be an http:// or https:// URL");
            None
        }
    }
}

pub(super) fn jwks_remote(
    c: &mut Check<'_>,
    path: &str,
    url: &S<String>,
    raw: Option<&RawJwks>,
    algorithms: Vec<Alg>,
) -> Option<JwksRemote> {
    let allow_http = raw.and_then(|j| j.allow_http.as_ref()).is_some_and(|a| a.value);
    let uri = fetchable_url(c, &format!("{path}.jwks_url"), url, allow_http, KEYS_OVER_HTTP)?;
    remote_tuning(c, path, uri, raw, algorithms)
}

/// The `jwks:` block: trust anchors and refresh timing, shared by a
/// `jwks_url` and discovery.
fn remote_tuning(
    c: &mut Check<'_>,
    path: &str,
    uri: Uri,
    raw: Option<&RawJwks>,
    algorithms: Vec<Alg>,
) -> Option<JwksRemote> {
    let ca = raw.and_then(|j| j.ca_file.as_ref()).and_then(|f| {
        let fpath = format!("{path}.jwks.ca_file");
        let pem = c.read(&fpath, f)?;
        certificates(c, &fpath, f, &pem)
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
        discovery: None,
        ca,
        algorithms,
        refresh_interval,
        min_refresh_interval,
        max_refresh_interval,
        unknown_kid_cooldown,
        fetch_timeout,
    })
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
                "auth.issuers[2].keys: needs at least one key, a jwks_url, a jwks_file, discovery: true or introspection",
                "auth.issuers[3].token_type: must be a media type such as at+jwt (RFC 9068 access tokens)",
            ],
        )]);
    }

    #[test]
    fn discovery() {
        let yaml = "upstream: { url: \"http://127.0.0.1:3000\" }
auth:
  issuers:
    - { issuer: \"https://op.example/realms/main\", discovery: true }
    - { issuer: \"http://127.0.0.1:8080\", discovery: true, jwks: { refresh_interval: 1m } }
    - { issuer: \"http://op.example\", discovery: true }
    - { issuer: \"https://op2.example\", discovery: true, jwks_url: \"https://op2.example/jwks\" }
    - { issuer: not-a-url, discovery: true }
    - { issuer: \"https://op3.example?x=1\", discovery: true }
    - { issuer: \"https://op4.example\", discovery: false }
";
        check(&[(
            yaml,
            &[
                "auth.issuers[2].issuer: plain http lets anyone on the path substitute keys; use https, a loopback address, or set jwks.allow_http: true",
                "auth.issuers[3].jwks_url: discovery finds the JWKS URL in the provider's metadata; give one or the other",
                "auth.issuers[4].issuer: must be an http:// or https:// URL",
                "auth.issuers[5].issuer: an issuer URL for discovery has no query or fragment (OpenID Connect Discovery §2)",
                "auth.issuers[6].keys: needs at least one key, a jwks_url, a jwks_file, discovery: true or introspection",
            ],
        )]);
        let config = crate::config::Config::from_yaml_str(
            "upstream: { url: \"http://127.0.0.1:3000\" }\nauth:\n  issuers:\n    - { issuer: \"https://op.example/realms/main/\", discovery: true }\n",
            crate::config::FileBase::Dir(std::path::Path::new(".")),
            "t",
        )
        .unwrap();
        let remote = config.auth.issuers[0].remote.as_ref().unwrap();
        assert_eq!(
            remote.url,
            "https://op.example/realms/main/.well-known/openid-configuration"
        );
        let d = remote.discovery.as_ref().unwrap();
        assert_eq!(
            d.oauth_url,
            "https://op.example/.well-known/oauth-authorization-server/realms/main"
        );
        assert_eq!(d.issuer, "https://op.example/realms/main/");
    }
}
