//! What browser sign-in answers itself: the redirect to the provider, the
//! callback (`{prefix}/callback`), an explicit start (`{prefix}/login`) and
//! the browser's sign-out (`{prefix}/logout` carrying the cookies). No
//! answer puts a token or code in a URL, and every one forbids caching and
//! the `Referer` of the page it leads to.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, REFERRER_POLICY, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use http_body_util::Full;
use serde_json::{Map, Value};

use super::Browser;
use super::cookie::Jar;
use super::login::{Login, random_b64, same_origin_path};
use super::provider::{SignInError, authorization_url, check_id_token, exchange};
use crate::auth::Authenticator;
use crate::clock::unix_now;
use crate::session::SessionError;

/// Longest page address a sign-in returns to (longer ones return to `/`).
const MAX_RETURN_TO: usize = 1024;

/// Sign-ins in flight per browser before the older ones are dropped.
const MAX_PENDING_SIGN_INS: usize = 3;

/// A plain-text page (never HTML: nothing from the request is echoed).
fn page(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    no_store(h);
    r
}

fn no_store(h: &mut HeaderMap) {
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

/// 303 to `location`, setting `cookies`.
fn see_other(location: &str, cookies: Vec<HeaderValue>) -> Response<Full<Bytes>> {
    let Ok(location) = HeaderValue::from_str(location) else {
        return page(StatusCode::INTERNAL_SERVER_ERROR, "bad redirect target\n");
    };
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    let h = r.headers_mut();
    h.insert(LOCATION, location);
    for c in cookies {
        h.append(SET_COOKIE, c);
    }
    no_store(h);
    r
}

impl Browser {
    /// The callback's full URL (registered at the provider).
    fn redirect_uri(&self) -> String {
        self.config.redirect_uri(&self.path_prefix)
    }

    /// Sends the browser to the provider to sign in, then back to
    /// `return_to` (a path on this origin); clears stale session cookies.
    pub fn sign_in(&self, auth: &Authenticator, return_to: &str, headers: &HeaderMap) -> Response<Full<Bytes>> {
        let Some(endpoint) = auth
            .metadata(&self.config.issuer)
            .and_then(|m| m.authorization_endpoint.clone())
        else {
            self.count("unavailable");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "sign-in is unavailable: the identity provider's metadata is not loaded yet; retry shortly\n",
            );
        };
        let (Some(state), Some(nonce), Some(verifier)) = (random_b64(32), random_b64(32), random_b64(32)) else {
            return page(StatusCode::INTERNAL_SERVER_ERROR, "no randomness\n");
        };
        let timeout = self.config.login_timeout.as_secs();
        // A long target would make a cookie a hostile page can multiply
        // until the browser's requests no longer fit (a cookie bomb).
        let return_to = if return_to.len() > MAX_RETURN_TO {
            "/"
        } else {
            return_to
        };
        let login = Login {
            state,
            nonce,
            verifier,
            return_to: same_origin_path(return_to).to_owned(),
            expires: unix_now().saturating_add(i64::try_from(timeout).unwrap_or(i64::MAX)),
        };
        let url = authorization_url(&endpoint, &self.config, &self.redirect_uri(), &login);
        let mut cookies = self.clear_cookies();
        // Sign-ins left unfinished are forgotten past a few, so a page that
        // opens many cannot fill the browser's cookie jar.
        let pending = self.cookies.login_names(headers);
        if pending.len() >= MAX_PENDING_SIGN_INS {
            cookies.extend(
                pending
                    .iter()
                    .filter_map(|n| HeaderValue::try_from(self.cookies.clear_named(n)).ok()),
            );
        }
        if let Ok(c) = HeaderValue::try_from(self.cookies.set_login(&login.state, &self.signer.seal(&login), timeout)) {
            cookies.push(c);
        }
        self.count("redirected");
        let mut r = see_other(&url, cookies);
        *r.status_mut() = StatusCode::FOUND;
        r
    }

    /// `GET {prefix}/login?rd=PATH`: starts a sign-in explicitly (a
    /// "sign in" link), returning to `rd` if it is a path on this origin.
    pub fn login(
        &self,
        auth: &Authenticator,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Response<Full<Bytes>> {
        if !matches!(*method, Method::GET | Method::HEAD) {
            return page(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        }
        let rd = uri
            .query()
            .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "rd"))
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| "/".to_owned());
        self.sign_in(auth, &rd, headers)
    }

    /// `GET {prefix}/callback?code&state`: checks the sign-in cookie for
    /// `state`, exchanges the code, checks the ID token, opens a session and
    /// sends the browser to the page first asked for with the session's
    /// cookies.
    pub async fn callback(
        &self,
        auth: &Authenticator,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Response<Full<Bytes>> {
        if *method != Method::GET {
            return page(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        }
        let mut query: Map<String, Value> = Map::new();
        for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
            if query.insert(k.into_owned(), Value::String(v.into_owned())).is_some() {
                self.count("bad_request");
                return page(StatusCode::BAD_REQUEST, "a parameter was given twice\n");
            }
        }
        let text = |k: &str| query.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
        let Some(state) = text("state") else {
            self.count("bad_request");
            return page(StatusCode::BAD_REQUEST, "no state\n");
        };
        let login = match self
            .cookies
            .get_login(headers, state)
            .ok_or(super::login::LoginError::Malformed)
            .and_then(|v| self.signer.open(v, state, unix_now()))
        {
            Ok(login) => login,
            Err(e) => {
                tracing::info!(error = %e, "browser sign-in callback refused");
                self.count("bad_state");
                return page(
                    StatusCode::BAD_REQUEST,
                    "this sign-in was not started here, took too long, or was already used; start again\n",
                );
            }
        };
        let clear_login = HeaderValue::try_from(self.cookies.clear_login(&login.state)).ok();
        let refuse = |status: StatusCode, result: &'static str, text: &'static str| {
            self.count(result);
            let mut r = page(status, text);
            if let Some(c) = clear_login.clone() {
                r.headers_mut().append(SET_COOKIE, c);
            }
            r
        };
        // RFC 9207: an answer naming another provider is a mix-up.
        if text("iss").is_some_and(|iss| iss != self.config.issuer) {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the answer names another identity provider\n",
            );
        }
        if text("error").is_some() {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "provider_error",
                "the identity provider did not sign you in\n",
            );
        }
        let Some(code) = text("code") else {
            return refuse(StatusCode::BAD_REQUEST, "bad_request", "no code\n");
        };
        let failure = match self.finish(auth, code, &login).await {
            Ok(mut cookies) => {
                cookies.extend(clear_login);
                self.count("signed_in");
                return see_other(same_origin_path(&login.return_to), cookies);
            }
            Err(failure) => failure,
        };
        // The cause goes to the log; the browser gets one of three answers.
        tracing::info!(error = %failure, "browser sign-in failed");
        match failure {
            Finish::SignIn(SignInError::NoMetadata | SignInError::Unreachable(_)) => refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the identity provider could not be reached; start again shortly\n",
            ),
            Finish::Session(_) => refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the session could not be opened; start again shortly\n",
            ),
            Finish::SignIn(SignInError::CodeRefused(..)) => refuse(
                StatusCode::UNAUTHORIZED,
                "code_refused",
                "the identity provider refused this sign-in (a used or expired code); start again\n",
            ),
            Finish::SignIn(SignInError::IdToken(_)) | Finish::Auth(_) => refuse(
                StatusCode::UNAUTHORIZED,
                "bad_id_token",
                "the sign-in could not be verified\n",
            ),
        }
    }

    /// Code → ID token → session: the session's cookies.
    async fn finish(&self, auth: &Authenticator, code: &str, login: &Login) -> Result<Vec<HeaderValue>, Finish> {
        let endpoint = auth
            .metadata(&self.config.issuer)
            .and_then(|m| m.token_endpoint.clone())
            .ok_or(Finish::SignIn(SignInError::NoMetadata))?;
        let id_token = exchange(
            &self.client,
            &endpoint,
            &self.config,
            &self.redirect_uri(),
            code,
            &login.verifier,
        )
        .await
        .map_err(Finish::SignIn)?;
        let claims = auth
            .verify_id_token(&id_token, &self.config.issuer)
            .await
            .map_err(Finish::Auth)?;
        let sub = check_id_token(&claims, &self.config.client_id, &login.nonce, unix_now(), auth.leeway())
            .map_err(Finish::SignIn)?;
        let kept: Map<String, Value> = self
            .config
            .claims
            .iter()
            .filter_map(|name| Some((name.clone(), claims.get(name)?.clone())))
            .collect();
        let pair = self.sessions.open(sub, &kept).await.map_err(Finish::Session)?;
        // The ID token is kept only to be the sign-out's hint.
        let hint = self.config.end_session_post.then_some(id_token.as_str());
        Ok(self.session_cookies(&pair, hint))
    }

    /// `{prefix}/logout` from a browser (its cookies, no bearer token): ends
    /// the session on every sidecar, clears the cookies, and sends the
    /// browser to the provider's end-session endpoint (RP-initiated logout)
    /// or to `post_logout_redirect_uri`. A GET must be this origin's own
    /// navigation (`Sec-Fetch-Site`), a POST pass the CSRF check.
    pub async fn logout(&self, auth: &Authenticator, method: &Method, headers: &HeaderMap) -> Response<Full<Bytes>> {
        let allowed = match *method {
            // A link the user followed: not an image or a script's fetch
            // that content on the page could aim at it.
            Method::GET => {
                headers
                    .get("sec-fetch-site")
                    .is_some_and(|s| matches!(s.as_bytes(), b"same-origin" | b"none"))
                    && headers
                        .get("sec-fetch-mode")
                        .is_some_and(|m| m.as_bytes() == b"navigate")
            }
            Method::POST => self.same_origin(method, headers),
            _ => return page(StatusCode::METHOD_NOT_ALLOWED, "use POST\n"),
        };
        if !allowed {
            self.count("cross_site");
            return page(StatusCode::FORBIDDEN, "sign-out must come from this site\n");
        }
        let ended = match (self.refresh_cookie(headers), self.access_cookie(headers)) {
            (Some(refresh), _) => Some(self.sessions.end_session_of_refresh_token(refresh).await),
            // Only the access cookie: its session, if the token is ours.
            (None, Some(access)) => match auth.verify(access, &self.verify).await {
                Ok(claims) => match claims.token_ref().sid {
                    Some(sid) => Some(self.sessions.end_session(sid, claims.exp).await),
                    None => None,
                },
                Err(_) => None,
            },
            (None, None) => None,
        };
        if let Some(ended) = ended {
            match ended {
                Ok(_) => {}
                Err(SessionError::Store(e)) => {
                    tracing::warn!(error = %e, "browser sign-out: the session store is unavailable");
                    self.count("unavailable");
                    let mut r = page(StatusCode::SERVICE_UNAVAILABLE, "sign-out failed; retry shortly\n");
                    r.headers_mut()
                        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
                    return r;
                }
                // Unknown or spent: nothing left to end here.
                Err(_) => {}
            }
        }
        self.count("signed_out");
        let id_token = self.cookies.get(headers, Jar::Id);
        let Some(end) = auth
            .metadata(&self.config.issuer)
            .and_then(|m| m.end_session_endpoint.clone())
        else {
            let target = self.config.post_logout_redirect_uri.as_deref().unwrap_or("/");
            return see_other(target, self.clear_cookies());
        };
        let mut fields = vec![("client_id", self.config.client_id.as_str())];
        if let Some(uri) = &self.config.post_logout_redirect_uri {
            fields.push(("post_logout_redirect_uri", uri));
        }
        let mut r = match id_token.filter(|_| self.config.end_session_post) {
            // RP-initiated logout by POST (its §2 requires providers to take
            // either): the ID token hint stays out of URLs, logs and `Referer`.
            Some(hint) => {
                fields.push(("id_token_hint", hint));
                let allowed = [Some(end.to_string()), self.config.post_logout_redirect_uri.clone()];
                form_post(&end.to_string(), &fields, &allowed)
            }
            // By redirect, without the hint: no token in a URL; the
            // provider may ask the user to confirm.
            None => {
                let query = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields.iter())
                    .finish();
                let sep = if end.query().is_some() { '&' } else { '?' };
                see_other(&format!("{end}{sep}{query}"), Vec::new())
            }
        };
        for c in self.clear_cookies() {
            r.headers_mut().append(SET_COOKIE, c);
        }
        r
    }
}

/// The one script of the sign-out page, allowed by its hash alone.
const SUBMIT: &str = "document.forms[0].submit()";

/// A page that POSTs `fields` to `action` at once (a button without scripts).
/// `form-action` covers `targets` too: browsers apply it to the redirects
/// that follow the POST (the provider back to `post_logout_redirect_uri`).
fn form_post(action: &str, fields: &[(&str, &str)], targets: &[Option<String>]) -> Response<Full<Bytes>> {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| format!(r#"<input type="hidden" name="{}" value="{}">"#, html(k), html(v)))
        .collect();
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Signing out</title><form method=post action=\"{}\">{inputs}<button>Continue signing out</button></form><script>{SUBMIT}</script>\n",
        html(action)
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, SUBMIT.as_bytes());
    let hash = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, digest.as_ref());
    let mut origins: Vec<String> = targets.iter().flatten().map(|t| origin_of(t)).collect();
    origins.dedup();
    let csp = format!(
        "default-src 'none'; script-src 'sha256-{hash}'; form-action {}",
        origins.join(" ")
    );
    let mut r = Response::new(Full::new(Bytes::from(body)));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(http::header::CONTENT_SECURITY_POLICY, v);
    }
    no_store(h);
    r
}

/// `scheme://authority` of an absolute URL (the form's only allowed target).
fn origin_of(url: &str) -> String {
    match url.parse::<Uri>() {
        Ok(u) => match (u.scheme_str(), u.authority()) {
            (Some(s), Some(a)) => format!("{s}://{a}"),
            _ => "'none'".to_owned(),
        },
        Err(_) => "'none'".to_owned(),
    }
}

/// Text safe inside an HTML attribute value.
fn html(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// Why finishing a sign-in failed.
#[derive(Debug, thiserror::Error)]
enum Finish {
    #[error("{0}")]
    SignIn(SignInError),
    #[error("the ID token failed verification: {0}")]
    Auth(crate::auth::AuthError),
    #[error("no session could be opened: {0}")]
    Session(SessionError),
}
