//! Browser sign-in for apps with no login of their own: people in browsers
//! carry a tokengate session in cookies. An unauthenticated navigation is
//! sent to the identity provider (authorization code flow, PKCE S256,
//! `state` and `nonce` in a signed cookie); the callback checks the ID
//! token and opens a session; an expired access cookie is refreshed in line
//! from the refresh cookie; sign-out ends the session everywhere and at the
//! provider.
//!
//! `cookie` names and reads the cookies, `login` signs the sign-in in
//! flight, `provider` talks to the provider, `endpoints` serves the
//! callback, login and logout paths; this file holds what the request path
//! asks of a request on a signed-in route.

pub mod cookie;
pub mod endpoints;
pub mod login;
pub mod provider;

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};
use prometheus::{IntCounterVec, Opts, Registry};

use self::cookie::{Cookies, Jar};
use self::login::Signer;
use crate::config::BrowserConfig;
use crate::jwks::fetch::{HttpClient, https_client};
use crate::session::{SessionError, Sessions, TokenResponse};

/// How long a refresh's answer is shared with requests carrying the same
/// refresh cookie: the page's other requests, sent before the browser
/// stored the new cookies.
const SHARED_REFRESH: Duration = Duration::from_secs(10);

/// Distinct refresh tokens being spent at once, at most.
const MAX_IN_FLIGHT: usize = 4096;

/// A refresh's outcome: the new pair, or why not.
pub type RefreshOutcome = Result<Arc<TokenResponse>, Arc<SessionError>>;

/// A refresh running in its own task, awaited by every request carrying its token.
type Refreshing = futures_util::future::Shared<futures_util::future::BoxFuture<'static, RefreshOutcome>>;

/// Browser sign-in: configuration, cookie signer, the provider client and
/// the refreshes in flight.
pub struct Browser {
    config: BrowserConfig,
    /// The session endpoints' prefix (`/.tokengate`): the callback is under it.
    path_prefix: String,
    cookies: Cookies,
    signer: Signer,
    client: HttpClient,
    sessions: Arc<Sessions>,
    /// New pairs by the SHA-256 of the refresh token they replaced, shared
    /// briefly (see [`SHARED_REFRESH`]).
    refreshed: moka::sync::Cache<[u8; 32], Arc<TokenResponse>>,
    /// Refreshes running, one per refresh token (each removes itself).
    in_flight: Arc<std::sync::Mutex<std::collections::HashMap<[u8; 32], Refreshing>>>,
    results: IntCounterVec,
    /// For the sign-out's check of an access cookie (kept off the request
    /// path's verification metrics).
    verify: crate::auth::VerifyMetrics,
}

impl Browser {
    /// Browser sign-in over `sessions`; registers its counter on `registry`.
    pub fn new(
        config: BrowserConfig,
        path_prefix: &str,
        sessions: Arc<Sessions>,
        registry: &Registry,
    ) -> Result<Browser, prometheus::Error> {
        let results = IntCounterVec::new(
            Opts::new(
                "tokengate_browser_signins_total",
                "Browser sign-in steps (redirects to the provider, callbacks, in-line refreshes, sign-outs), by result.",
            ),
            &["result"],
        )?;
        registry.register(Box::new(results.clone()))?;
        Ok(Browser {
            cookies: Cookies::new(!config.insecure_http),
            signer: Signer::new(&config.cookie_key),
            client: https_client(config.ca.as_deref(), Duration::from_secs(5)),
            path_prefix: path_prefix.to_owned(),
            sessions,
            refreshed: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(SHARED_REFRESH)
                .build(),
            in_flight: Arc::default(),
            results,
            verify: crate::auth::VerifyMetrics::new(&Registry::new())?,
            config,
        })
    }

    fn count(&self, result: &str) {
        self.results.with_label_values(&[result]).inc();
    }

    /// True when `path` (normalised) is on a route browsers are signed in on.
    pub fn covers(&self, path: &str) -> bool {
        self.config.prefixes.iter().any(|p| {
            p == "/"
                || path
                    .strip_prefix(p.trim_end_matches('/'))
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    /// The access cookie's token, if the request carries it once.
    pub fn access_cookie<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        self.cookies.get(headers, Jar::Access)
    }

    /// The refresh cookie's token, if the request carries it once.
    pub fn refresh_cookie<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        self.cookies.get(headers, Jar::Refresh)
    }

    /// Spends `refresh_token` once for every request that carries it at
    /// the same time (a page's parallel requests, tabs), sharing the new
    /// pair with them.
    pub async fn refresh(&self, refresh_token: &str) -> RefreshOutcome {
        use futures_util::FutureExt as _;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, refresh_token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        if let Some(pair) = self.refreshed.get(&key) {
            self.count("refresh_shared");
            return Ok(pair);
        }
        let refreshing = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            match in_flight.get(&key) {
                Some(refreshing) => refreshing.clone(),
                None => {
                    if in_flight.len() >= MAX_IN_FLIGHT {
                        return Err(Arc::new(SessionError::Store(crate::session::store::StoreError::Busy)));
                    }
                    // In a task of its own, awaited by every request that
                    // carries the token: a request that goes away (an HTTP/2
                    // reset) neither stops it nor makes another request
                    // spend the token again; the new pair is kept for the
                    // browser's next request.
                    let sessions = self.sessions.clone();
                    let refreshed = self.refreshed.clone();
                    let results = self.results.clone();
                    let in_flight_map = self.in_flight.clone();
                    let token = refresh_token.to_owned();
                    let task = tokio::spawn(async move {
                        let result = sessions.refresh(&token).await.map(Arc::new).map_err(Arc::new);
                        let label = match &result {
                            Ok(_) => "refreshed",
                            Err(e) if matches!(**e, SessionError::Store(_)) => "unavailable",
                            Err(_) => "refresh_refused",
                        };
                        results.with_label_values(&[label]).inc();
                        if let Ok(pair) = &result {
                            refreshed.insert(key, pair.clone());
                        }
                        // After the pair is kept: a request from now on finds it there.
                        in_flight_map.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
                        result
                    });
                    let refreshing = async move {
                        task.await.unwrap_or_else(|_| {
                            Err(Arc::new(SessionError::Store(crate::session::store::StoreError::Busy)))
                        })
                    }
                    .boxed()
                    .shared();
                    in_flight.insert(key, refreshing.clone());
                    refreshing
                }
            }
        };
        refreshing.await
    }

    /// `Set-Cookie` values that hold `pair` (and the provider's ID token,
    /// when given and small enough to be a cookie).
    pub fn session_cookies(&self, pair: &TokenResponse, id_token: Option<&str>) -> Vec<HeaderValue> {
        let refresh_ttl = pair.refresh_expires_in;
        let mut set = vec![
            self.cookies.set(Jar::Access, &pair.access_token, pair.expires_in),
            self.cookies.set(Jar::Refresh, &pair.refresh_token, refresh_ttl),
        ];
        // A browser drops a cookie over 4 KB; sign-out then goes without a hint.
        if let Some(id) = id_token.filter(|t| t.len() < 3500) {
            set.push(self.cookies.set(Jar::Id, id, refresh_ttl));
        }
        set.into_iter().filter_map(|c| HeaderValue::try_from(c).ok()).collect()
    }

    /// `Set-Cookie` values that delete the session's cookies.
    pub fn clear_cookies(&self) -> Vec<HeaderValue> {
        [Jar::Access, Jar::Refresh, Jar::Id]
            .into_iter()
            .filter_map(|j| HeaderValue::try_from(self.cookies.clear(j)).ok())
            .collect()
    }

    /// Removes tokengate's own cookies from a request before it goes to the
    /// app: the tokens are ours, and would otherwise reach the app's logs.
    /// The rest stays, joined into one header.
    pub fn strip_cookies(&self, headers: &mut HeaderMap) {
        // Most requests carry no cookie of ours in one header: nothing to do.
        if !cookie::needs_stripping(headers, &self.cookies) {
            return;
        }
        let kept = cookie::without_ours(headers, &self.cookies);
        headers.remove(http::header::COOKIE);
        if let Some(kept) = kept {
            headers.insert(http::header::COOKIE, kept);
        }
    }

    /// Drops the app's `Set-Cookie`s for tokengate's cookie names (a
    /// confused or hostile app fixing a session), and, when tokengate sets
    /// `cookies`, makes the response uncacheable: a shared cache must never
    /// hand one user's tokens to another.
    pub fn finish_response(&self, headers: &mut HeaderMap, cookies: Vec<HeaderValue>) {
        let names_ours = |v: &HeaderValue| {
            self.cookies
                .names_ours(v.as_bytes().split(|&b| b == b';').next().unwrap_or_default())
        };
        if headers.get_all(http::header::SET_COOKIE).iter().any(names_ours) {
            let theirs: Vec<HeaderValue> = headers.get_all(http::header::SET_COOKIE).iter().cloned().collect();
            headers.remove(http::header::SET_COOKIE);
            for value in theirs.into_iter().filter(|v| !names_ours(v)) {
                headers.append(http::header::SET_COOKIE, value);
            }
        }
        if cookies.is_empty() {
            return;
        }
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        // CDNs that obey their own header over Cache-Control.
        headers.remove("cdn-cache-control");
        headers.remove("surrogate-control");
        for cookie in cookies {
            headers.append(http::header::SET_COOKIE, cookie);
        }
    }

    /// CSRF defence for a cookie-authenticated request: a method that
    /// changes state, or a protocol switch, must come from this origin, as
    /// `Sec-Fetch-Site` says
    /// (`same-origin`, or `none` for what the user typed) or, from browsers
    /// without it, `Origin` does. Neither header: refused.
    pub fn same_origin(&self, method: &Method, headers: &HeaderMap) -> bool {
        // A protocol switch (WebSocket) is a GET that opens a channel in the
        // user's name: judged like a POST (cross-site WebSocket hijacking).
        let upgrade = headers.contains_key(http::header::UPGRADE)
            || headers
                .get("sec-fetch-mode")
                .is_some_and(|m| m.as_bytes() == b"websocket");
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) && !upgrade {
            return true;
        }
        if let Some(site) = headers.get("sec-fetch-site") {
            return matches!(site.as_bytes(), b"same-origin" | b"none");
        }
        headers
            .get(http::header::ORIGIN)
            .is_some_and(|o| o.as_bytes().eq_ignore_ascii_case(self.config.public_origin.as_bytes()))
    }

    /// True for a top-level navigation that should be sent to sign in: a
    /// GET or HEAD the browser calls a navigation, or that accepts HTML and
    /// is not marked as a script's. Everything else (fetch, XHR, APIs) gets
    /// 401.
    pub fn is_navigation(&self, method: &Method, headers: &HeaderMap) -> bool {
        if !matches!(*method, Method::GET | Method::HEAD) || headers.contains_key("x-requested-with") {
            return false;
        }
        match headers.get("sec-fetch-mode") {
            Some(mode) => mode.as_bytes() == b"navigate",
            None => headers
                .get_all(http::header::ACCEPT)
                .iter()
                .any(|a| a.to_str().is_ok_and(|a| a.contains("text/html"))),
        }
    }
}
