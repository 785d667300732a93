//! The provider's side of a sign-in: the authorization URL, the code
//! exchange at the token endpoint, and the ID token's claims (OIDC Core
//! §3.1.3.7) once its signature has been checked.

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{Map, Value};

use super::login::Login;
use crate::config::{AssertionKey, BrowserConfig, ClientAuth};
use crate::jwks::fetch::HttpClient;

/// Largest token response read.
const MAX_RESPONSE: usize = 64 * 1024;

/// Why a callback could not sign the browser in; each is one answer.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The provider's metadata (endpoints) is not loaded yet (503).
    #[error("the provider's metadata is not available")]
    NoMetadata,
    /// The token endpoint did not answer usably (503).
    #[error("token endpoint: {0}")]
    Unreachable(String),
    /// The token endpoint refused the code (replayed, expired, not ours) or
    /// the client's credentials (401).
    #[error("the provider refused the code ({0}: {1} {2})")]
    CodeRefused(StatusCode, String, String),
    /// The ID token failed a check (401).
    #[error("ID token: {0}")]
    IdToken(&'static str),
}

/// The authorization request for `login` (RFC 6749 §4.1.1 with PKCE, OIDC
/// `nonce`): the URL the browser is sent to.
pub fn authorization_url(endpoint: &Uri, config: &BrowserConfig, redirect_uri: &str, login: &Login) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &config.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &config.scopes.join(" "))
        .append_pair("state", &login.state)
        .append_pair("nonce", &login.nonce)
        .append_pair("code_challenge", &super::login::challenge(&login.verifier))
        .append_pair("code_challenge_method", "S256")
        .finish();
    let sep = if endpoint.query().is_some() { '&' } else { '?' };
    format!("{endpoint}{sep}{query}")
}

/// Exchanges `code` at the token endpoint; returns the ID token.
pub async fn exchange(
    client: &HttpClient,
    endpoint: &Uri,
    config: &BrowserConfig,
    redirect_uri: &str,
    code: &str,
    verifier: &str,
) -> Result<String, SignInError> {
    // In a block: the serializer is not `Send`.
    let form = {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_verifier", verifier);
        if let Some(key) = &config.assertion {
            // RFC 7523 §2.2 / OIDC Core §9: the client proves itself with a
            // short-lived JWT signed by its key.
            let assertion = client_assertion(key, &config.client_id, &endpoint.to_string())?;
            form.append_pair("client_id", &config.client_id)
                .append_pair(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                )
                .append_pair("client_assertion", &assertion);
        } else if config.auth_method == ClientAuth::Post {
            form.append_pair("client_id", &config.client_id)
                .append_pair("client_secret", &config.client_secret);
        }
        form.finish()
    };
    let mut request = Request::post(endpoint.clone())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .header(header::USER_AGENT, concat!("tokengate/", env!("CARGO_PKG_VERSION")));
    if config.assertion.is_none() && config.auth_method == ClientAuth::Basic {
        // RFC 6749 §2.3.1: each part form-encoded before joining.
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", enc(&config.client_id), enc(&config.client_secret));
        let basic = base64::engine::general_purpose::STANDARD.encode(pair);
        request = request.header(header::AUTHORIZATION, format!("Basic {basic}"));
    }
    let request = request
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| SignInError::Unreachable(e.to_string()))?;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| SignInError::Unreachable(e.to_string()))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|_| SignInError::Unreachable("unreadable answer".into()))?;
        Ok::<_, SignInError>((status, body))
    };
    let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(10), exchange)
        .await
        .map_err(|_| SignInError::Unreachable("no answer in 10s".into()))??;
    if status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED {
        // The provider's own words, for the log (RFC 6749 §5.2 codes are
        // fixed words; the description is bounded).
        let doc = crate::json::unique_object(&body);
        let field = |k: &str| {
            doc.as_ref()
                .and_then(|d| d.get(k))
                .and_then(Value::as_str)
                .map(|v| v.chars().take(200).collect::<String>())
                .unwrap_or_default()
        };
        return Err(SignInError::CodeRefused(
            status,
            field("error"),
            field("error_description"),
        ));
    }
    if status != StatusCode::OK {
        return Err(SignInError::Unreachable(format!("status {status}")));
    }
    let doc = crate::json::unique_object(&body)
        .ok_or_else(|| SignInError::Unreachable("not a JSON object with unique members".into()))?;
    match doc.get("id_token") {
        Some(Value::String(t)) if !t.is_empty() => Ok(t.clone()),
        _ => Err(SignInError::IdToken("the token response has no id_token")),
    }
}

/// A `private_key_jwt` assertion for `audience` (the token endpoint): `iss`
/// and `sub` the client, a fresh `jti`, one minute of life.
fn client_assertion(key: &AssertionKey, client_id: &str, audience: &str) -> Result<String, SignInError> {
    let now = crate::clock::unix_now();
    let jti = super::login::random_b64(16).ok_or_else(|| SignInError::Unreachable("no randomness".into()))?;
    let claims = serde_json::json!({
        "iss": client_id, "sub": client_id, "aud": audience,
        "jti": jti, "iat": now, "exp": now + 60,
    });
    let mut header = jsonwebtoken::Header::new(key.algorithm);
    header.kid = key.kid.clone();
    jsonwebtoken::encode(&header, &claims, &key.key).map_err(|e| SignInError::Unreachable(e.to_string()))
}

/// OIDC Core §3.1.3.7 on claims whose signature and issuer were verified:
/// the audience is this client (and `azp`, when there are several or it is
/// present), the token is current, and it carries this sign-in's `nonce`.
/// Returns the subject.
pub fn check_id_token<'c>(
    claims: &'c Map<String, Value>,
    client_id: &str,
    nonce: &str,
    now: i64,
    leeway: i64,
) -> Result<&'c str, SignInError> {
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(SignInError::IdToken("no aud")),
    };
    if !audiences.contains(&client_id) {
        return Err(SignInError::IdToken("issued to another client"));
    }
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == client_id => {}
        Some(_) => return Err(SignInError::IdToken("azp names another client")),
        None if audiences.len() > 1 => return Err(SignInError::IdToken("several audiences and no azp")),
        None => {}
    }
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    match number("exp") {
        Some(exp) if now < exp.saturating_add(leeway) => {}
        Some(_) => return Err(SignInError::IdToken("expired")),
        None => return Err(SignInError::IdToken("no exp")),
    }
    if number("iat").is_none() {
        return Err(SignInError::IdToken("no iat"));
    }
    if number("nbf").is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
        return Err(SignInError::IdToken("not yet valid"));
    }
    let sent = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), nonce.as_bytes()).is_err() {
        return Err(SignInError::IdToken("nonce does not match this sign-in"));
    }
    match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => Ok(sub),
        _ => Err(SignInError::IdToken("no sub")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(extra: Value) -> Map<String, Value> {
        let mut m = json!({"sub": "alice", "aud": "tg", "exp": 2000, "iat": 1000, "nonce": "n1"})
            .as_object()
            .unwrap()
            .clone();
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                m.remove(k);
            } else {
                m.insert(k.clone(), v.clone());
            }
        }
        m
    }

    #[test]
    fn an_id_token_is_for_this_client_current_and_this_sign_in() {
        let ok = claims(json!({}));
        assert_eq!(check_id_token(&ok, "tg", "n1", 1500, 0).unwrap(), "alice");
        let refused = [
            (claims(json!({"aud": "other"})), "issued to another client"),
            (claims(json!({"aud": ["tg", "other"]})), "several audiences and no azp"),
            (
                claims(json!({"aud": ["tg", "other"], "azp": "other"})),
                "azp names another client",
            ),
            (claims(json!({"exp": 1400})), "expired"),
            (claims(json!({"exp": null})), "no exp"),
            (claims(json!({"iat": null})), "no iat"),
            (claims(json!({"nonce": "n2"})), "nonce does not match this sign-in"),
            (claims(json!({"nonce": null})), "nonce does not match this sign-in"),
            (claims(json!({"sub": ""})), "no sub"),
            (claims(json!({"nbf": 1600})), "not yet valid"),
        ];
        for (c, why) in refused {
            match check_id_token(&c, "tg", "n1", 1500, 0) {
                Err(SignInError::IdToken(w)) => assert_eq!(w, why),
                other => panic!("{why}: {other:?}"),
            }
        }
        let several = claims(json!({"aud": ["tg", "other"], "azp": "tg"}));
        assert!(check_id_token(&several, "tg", "n1", 1500, 0).is_ok());
    }

    #[test]
    fn the_authorization_url_carries_pkce_state_and_nonce() {
        let config = BrowserConfig {
            issuer: "https://op".into(),
            client_id: "tg app".into(),
            client_secret: "s".repeat(16),
            auth_method: ClientAuth::Basic,
            assertion: None,
            cookie_key: b"s".repeat(16),
            scopes: vec!["openid".into(), "email".into()],
            claims: vec![],
            public_origin: "https://app".into(),
            prefixes: vec!["/".into()],
            post_logout_redirect_uri: None,
            end_session_post: false,
            insecure_http: false,
            login_timeout: std::time::Duration::from_secs(600),
            ca: None,
        };
        let login = Login {
            state: "st".into(),
            nonce: "no".into(),
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            return_to: "/".into(),
            expires: 0,
        };
        let url = authorization_url(
            &"https://op/auth?x=1".parse().unwrap(),
            &config,
            "https://app/.tokengate/callback",
            &login,
        );
        assert_eq!(
            url,
            "https://op/auth?x=1&response_type=code&client_id=tg+app&redirect_uri=https%3A%2F%2Fapp%2F.tokengate%2Fcallback&scope=openid+email&state=st&nonce=no&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
        );
    }
}
