//! `sessions.browser`: browser sign-in at an identity provider.

use super::*;

pub(super) fn browser(
    c: &mut Check<'_>,
    raw: &RawBrowser,
    issuers: &[Issuer],
    sessions: &mut SessionsConfig,
    reuse_grace_given: bool,
) -> Option<BrowserConfig> {
    let p = "sessions.browser";
    let issuer = match &raw.issuer {
        Some(i)
            if issuers
                .iter()
                .any(|x| x.issuer == i.value && x.remote.as_ref().is_some_and(|r| r.discovery.is_some())) =>
        {
            i.value.clone()
        }
        other => {
            c.problem(
                format!("{p}.issuer"),
                other.as_ref().and_then(line),
                "must name an auth.issuers entry with `discovery: true` (its metadata names the authorization, token and end-session endpoints, and its keys verify the ID token)",
            );
            String::new()
        }
    };
    let client_id = match &raw.client_id {
        Some(id) if !id.value.is_empty() && !id.value.chars().any(char::is_control) => id.value.clone(),
        other => {
            c.problem(
                format!("{p}.client_id"),
                other.as_ref().and_then(line),
                "must name tokengate's client at the provider",
            );
            String::new()
        }
    };
    let private_key_jwt = raw.auth_method.as_ref().is_some_and(|m| m.value == "private_key_jwt");
    let auth_method = match raw.auth_method.as_ref().map(|m| (m, m.value.as_str())) {
        None | Some((_, "client_secret_basic" | "private_key_jwt")) => ClientAuth::Basic,
        Some((_, "client_secret_post")) => ClientAuth::Post,
        Some((m, _)) => {
            c.problem(
                format!("{p}.auth_method"),
                line(m),
                "must be client_secret_basic (default), client_secret_post or private_key_jwt",
            );
            ClientAuth::Basic
        }
    };
    let (client_secret, assertion, cookie_key) = if private_key_jwt {
        match assertion_key(c, p, raw) {
            Some((key, pem)) => (Some(String::new()), Some(key), Some(pem)),
            None => (Some(String::new()), None, None),
        }
    } else {
        if raw.private_key_file.is_some() {
            c.problem(
                format!("{p}.private_key_file"),
                raw.private_key_file.as_ref().and_then(line),
                "is for auth_method: private_key_jwt",
            );
        }
        let secret = secret(
            c,
            p,
            (raw.secret_file.as_ref(), raw.secret_env.as_ref()),
            None,
            "needs exactly one of secret_file or secret_env (the client secret), or auth_method: private_key_jwt",
        )
        .and_then(|s| match String::from_utf8(s) {
            Ok(s) if s.len() >= 16 => Some(s),
            _ => {
                c.problem(
                    p,
                    None,
                    "the client secret must be UTF-8 text of at least 16 bytes (it also keys the sign-in cookies)",
                );
                None
            }
        });
        let key = secret.as_ref().map(|s| s.as_bytes().to_vec());
        (secret, None, key)
    };
    let mut scopes: Vec<String> = raw
        .scopes
        .as_ref()
        .map(|v| v.iter().map(|s| s.value.clone()).collect())
        .unwrap_or_default();
    if scopes
        .iter()
        .any(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'))
    {
        c.problem(format!("{p}.scopes"), None, "each scope is one word of visible ASCII");
    }
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".to_owned());
    }
    let claims: Vec<String> = raw
        .claims
        .as_ref()
        .map(|v| v.iter().map(|s| s.value.clone()).collect())
        .unwrap_or_default();
    for claim in &claims {
        if RESERVED_SESSION_CLAIMS.contains(&claim.as_str()) || claim == "nonce" || claim == "azp" {
            c.problem(
                format!("{p}.claims"),
                None,
                format!("`{claim}` is set by the session service itself and cannot be copied"),
            );
        }
    }
    let insecure_http = raw.insecure_http.as_ref().is_some_and(|b| b.value);
    let public_origin = match &raw.public_url {
        Some(u) => origin(c, &format!("{p}.public_url"), u, insecure_http),
        None => {
            c.problem(
                format!("{p}.public_url"),
                None,
                "is required: the origin browsers reach the app at (https://app.example.com); the provider sends them back to its callback",
            );
            None
        }
    };
    let prefixes = match &raw.prefixes {
        None => vec!["/".to_owned()],
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, v)| routes::route_path(c, &format!("{p}.prefixes[{i}]"), v))
            .collect(),
    };
    let post_logout_redirect_uri = raw
        .post_logout_redirect_uri
        .as_ref()
        .and_then(|u| match u.value.parse::<Uri>() {
            Ok(uri) if uri.scheme().is_some() && uri.authority().is_some() => Some(u.value.clone()),
            _ => {
                c.problem(
                    format!("{p}.post_logout_redirect_uri"),
                    line(u),
                    "must be an absolute URL (registered at the provider)",
                );
                None
            }
        });
    let end_session_post = match raw.end_session.as_ref().map(|m| (m, m.value.as_str())) {
        None | Some((_, "get")) => false,
        Some((_, "post")) => true,
        Some((m, _)) => {
            c.problem(
                format!("{p}.end_session"),
                line(m),
                "must be get (a redirect without the ID token, the default) or post (a form carrying it as id_token_hint)",
            );
            false
        }
    };
    let login_timeout = c.positive_duration(
        &format!("{p}.login_timeout"),
        raw.login_timeout.as_ref(),
        Duration::from_secs(600),
    );
    if sessions.access_token_ttl.as_secs() == 0 {
        c.problem(
            "sessions.access_token_ttl",
            None,
            "must be at least a second for browser cookies",
        );
    }
    // A page's parallel requests spread over several sidecars spend one
    // refresh cookie at once; without a grace the losers would end the
    // session as a reuse.
    if sessions.reuse_grace.is_zero() {
        if reuse_grace_given {
            c.problem(
                "sessions.reuse_grace",
                None,
                "must be more than 0s with sessions.browser: a page's parallel requests on several sidecars spend one refresh cookie at once (default with browser: 10s)",
            );
        } else {
            sessions.reuse_grace = Duration::from_secs(10);
        }
    }
    let ca = issuers
        .iter()
        .find(|x| x.issuer == issuer)
        .and_then(|x| x.remote.as_ref())
        .and_then(|r| r.ca.clone());
    Some(BrowserConfig {
        issuer,
        client_id,
        client_secret: client_secret?,
        auth_method,
        assertion,
        cookie_key: cookie_key?,
        scopes,
        claims,
        public_origin: public_origin?,
        prefixes,
        post_logout_redirect_uri,
        end_session_post,
        insecure_http,
        login_timeout,
        ca,
    })
}

/// The `private_key_jwt` key: a PEM private key of `key_algorithm`
/// (ES256 by default), checked by signing a test assertion; with the
/// file's bytes (they key the sign-in cookies).
fn assertion_key(c: &mut Check<'_>, p: &str, raw: &RawBrowser) -> Option<(AssertionKey, Vec<u8>)> {
    let Some(file) = &raw.private_key_file else {
        c.problem(
            format!("{p}.private_key_file"),
            None,
            "auth_method: private_key_jwt needs the client's private key (PEM)",
        );
        return None;
    };
    let apath = format!("{p}.key_algorithm");
    let algorithm = match raw.key_algorithm.as_ref().map(|a| a.value.as_str()).unwrap_or("ES256") {
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "RS256" => Algorithm::RS256,
        "PS256" => Algorithm::PS256,
        "EdDSA" => Algorithm::EdDSA,
        other => {
            c.problem(
                apath,
                raw.key_algorithm.as_ref().and_then(line),
                format!("`{other}`: use ES256 (default), ES384, RS256, PS256 or EdDSA"),
            );
            return None;
        }
    };
    let fpath = format!("{p}.private_key_file");
    let pem = c.read(&fpath, file)?;
    let key = match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        _ => EncodingKey::from_rsa_pem(&pem),
    };
    let usable = key.ok().filter(|k| {
        jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), &serde_json::json!({"t": 1}), k).is_ok()
    });
    let Some(key) = usable else {
        c.problem(
            fpath,
            line(file),
            format!("not a PEM private key that signs {algorithm:?}"),
        );
        return None;
    };
    Some((
        AssertionKey {
            algorithm,
            kid: raw.key_id.as_ref().map(|k| k.value.clone()),
            key,
        },
        pem,
    ))
}

/// `scheme://host[:port]` of `v`: https, or http to loopback with
/// `insecure_http` (cookies without `Secure` travel in clear otherwise).
fn origin(c: &mut Check<'_>, path: &str, v: &S<String>, insecure_http: bool) -> Option<String> {
    let uri = v.value.parse::<Uri>().ok();
    let (Some(scheme), Some(authority)) = (
        uri.as_ref().and_then(|u| u.scheme_str()),
        uri.as_ref().and_then(|u| u.authority()),
    ) else {
        c.problem(path, line(v), "must be an absolute URL such as https://app.example.com");
        return None;
    };
    if uri
        .as_ref()
        .is_some_and(|u| !matches!(u.path(), "" | "/") || u.query().is_some())
    {
        c.problem(path, line(v), "must be an origin only (no path or query)");
        return None;
    }
    if authority.as_str().contains('@') {
        c.problem(path, line(v), "must not carry user information");
        return None;
    }
    let loopback = matches!(authority.host(), "localhost" | "127.0.0.1" | "[::1]" | "::1");
    match (scheme, insecure_http) {
        ("https", false) => {}
        ("http", true) if loopback => {}
        ("http", true) => {
            c.problem(
                path,
                line(v),
                "plain http is allowed only on loopback (localhost, 127.0.0.1): the cookies would travel in clear",
            );
            return None;
        }
        ("https", true) => {
            c.problem(path, line(v), "insecure_http is for an http:// URL on loopback only");
            return None;
        }
        _ => {
            c.problem(
                path,
                line(v),
                "must be https (or http on loopback with insecure_http: true, for development)",
            );
            return None;
        }
    }
    Some(format!("{scheme}://{}", authority.as_str().to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::super::table::check;

    const SECRET: &str = "secret_file: dev-hs256-secret.DEVELOPMENT-ONLY.txt";

    fn config(issuer: &str, browser: &str) -> String {
        format!(
            "upstream: {{ url: \"http://127.0.0.1:3000\" }}
auth:
  issuers:
    - {issuer}
sessions:
  signing_key: {{ algorithm: HS256, {SECRET} }}
  browser: {{ {browser} }}
"
        )
    }

    #[test]
    fn table() {
        let op = "{ issuer: \"https://op.example\", discovery: true }";
        let ok =
            format!("issuer: \"https://op.example\", client_id: web, {SECRET}, public_url: \"https://app.example\"");
        check(&[
            (&config(op, &ok), &[]),
            (
                &config(
                    op,
                    "issuer: \"https://op.example\", client_id: web, public_url: \"https://app.example\", auth_method: private_key_jwt",
                ),
                &[
                    "sessions.browser.private_key_file: auth_method: private_key_jwt needs the client's private key (PEM)",
                ],
            ),
            (
                &config(
                    op,
                    &format!("{ok}, auth_method: private_key_jwt, private_key_file: k.pem, key_algorithm: HS256"),
                ),
                &["sessions.browser.key_algorithm: `HS256`: use ES256 (default), ES384, RS256, PS256 or EdDSA"],
            ),
            (
                &config(op, &format!("{ok}, private_key_file: k.pem")),
                &["sessions.browser.private_key_file: is for auth_method: private_key_jwt"],
            ),
            (
                &config(op, &ok).replace("sessions:\n", "sessions:\n  reuse_grace: 0s\n"),
                &[
                    "sessions.reuse_grace: must be more than 0s with sessions.browser: a page's parallel requests on several sidecars spend one refresh cookie at once (default with browser: 10s)",
                ],
            ),
            (
                &config(
                    op,
                    &format!(
                        "{ok}, post_logout_redirect_uri: \"https://app.example/bye\", claims: [email], scopes: [email], prefixes: [/app/], end_session: post"
                    ),
                ),
                &[],
            ),
            (
                &config(
                    &format!("{{ issuer: \"https://op.example\", {SECRET} }}")
                        .replace(SECRET, &format!("keys: [{{ algorithm: HS256, {SECRET} }}]")),
                    &ok,
                ),
                &[
                    "sessions.browser.issuer: must name an auth.issuers entry with `discovery: true` (its metadata names the authorization, token and end-session endpoints, and its keys verify the ID token)",
                ],
            ),
            (
                &config(op, "issuer: \"https://op.example\""),
                &[
                    "sessions.browser.client_id: must name tokengate's client at the provider",
                    "sessions.browser: needs exactly one of secret_file or secret_env (the client secret), or auth_method: private_key_jwt",
                    "sessions.browser.public_url: is required: the origin browsers reach the app at (https://app.example.com); the provider sends them back to its callback",
                ],
            ),
            (
                &config(op, &ok.replace("https://app.example", "http://app.example")),
                &[
                    "sessions.browser.public_url: must be https (or http on loopback with insecure_http: true, for development)",
                ],
            ),
            (
                &config(
                    op,
                    &format!(
                        "{}, insecure_http: true",
                        ok.replace("https://app.example", "http://app.example")
                    ),
                ),
                &[
                    "sessions.browser.public_url: plain http is allowed only on loopback (localhost, 127.0.0.1): the cookies would travel in clear",
                ],
            ),
            (
                &config(
                    op,
                    &format!(
                        "{}, insecure_http: true",
                        ok.replace("https://app.example", "http://127.0.0.1:8080")
                    ),
                ),
                &[],
            ),
            (
                &config(op, &format!("{ok}, insecure_http: true")),
                &["sessions.browser.public_url: insecure_http is for an http:// URL on loopback only"],
            ),
            (
                &config(op, &ok.replace("https://app.example", "https://app.example/path")),
                &["sessions.browser.public_url: must be an origin only (no path or query)"],
            ),
            (
                &config(op, &ok.replace("https://app.example", "https://u:p@app.example")),
                &["sessions.browser.public_url: must not carry user information"],
            ),
            (
                &config(
                    op,
                    &format!(
                        "{ok}, claims: [sub, sid, email], scopes: [\"two words\"], prefixes: [/a/../b], post_logout_redirect_uri: /bye, auth_method: tls_client_auth, login_timeout: 0s, end_session: delete"
                    ),
                ),
                &[
                    "sessions.browser.auth_method: must be client_secret_basic (default), client_secret_post or private_key_jwt",
                    "sessions.browser.scopes: each scope is one word of visible ASCII",
                    "sessions.browser.claims: `sub` is set by the session service itself and cannot be copied",
                    "sessions.browser.claims: `sid` is set by the session service itself and cannot be copied",
                    "sessions.browser.prefixes[0]: `/a/../b` is not in normal form; requests are matched after normalisation, write `/b`",
                    "sessions.browser.post_logout_redirect_uri: must be an absolute URL (registered at the provider)",
                    "sessions.browser.end_session: must be get (a redirect without the ID token, the default) or post (a form carrying it as id_token_hint)",
                    "sessions.browser.login_timeout: must be greater than zero",
                ],
            ),
        ]);
    }
}
