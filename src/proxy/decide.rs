//! The decision: one typed step from a request to forward-or-answer, used
//! by the proxy, by benchmarks, and by tests without sockets.

use std::borrow::Cow;
use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;

use http::HeaderValue;

use super::respond::Rejection;
use super::{Proxy, Snapshot, headers, request};
use crate::auth::{AuthError, Claims, authorize};
use crate::browser::Browser;
use crate::clock::unix_ms;
use crate::config::{Access, CaseAmbiguousPaths, PathParameters, Requirements};
use crate::path;
use crate::session::http::Endpoint;

impl Proxy {
    /// The whole decision for one request, without I/O beyond a JWKS
    /// refetch for an unknown kid: framing checks, the path's normal form,
    /// the route (a session endpoint is a kind of route), case ambiguity,
    /// then token, revocation and requirements, and which protocol switch
    /// the route allows. The proxy acts on it; tests call it without sockets.
    /// Browser sign-in takes part (decision mode calls [`Proxy::decide_with`]
    /// without it: it cannot set the cookies an in-line refresh needs).
    pub async fn decide<B>(&self, snapshot: &Snapshot, req: &Request<B>) -> Result<Decision, Rejection> {
        self.decide_with(snapshot, req, true).await
    }

    /// [`Proxy::decide`], with browser sign-in (cookies, in-line refresh,
    /// redirects) only when `browser` is true.
    pub async fn decide_with<B>(
        &self,
        snapshot: &Snapshot,
        req: &Request<B>,
        browser: bool,
    ) -> Result<Decision, Rejection> {
        request::check(req)?;
        let mut normalised: Option<String> = match path::normalise(req.uri().path())? {
            Cow::Borrowed(_) => None,
            Cow::Owned(p) => Some(p),
        };
        let strip = snapshot.http.path_parameters == PathParameters::Strip;
        if let Cow::Owned(p) = path::parameters(normalised.as_deref().unwrap_or(req.uri().path()), strip)? {
            normalised = Some(p);
        }
        let path = normalised.as_deref().unwrap_or(req.uri().path());
        if self.backchannel.as_ref().is_some_and(|b| b.is_path(path)) {
            return Ok(Decision::BackchannelLogout);
        }
        if let Some(sessions) = &self.sessions
            && let Some(endpoint) = sessions.endpoint(path)
        {
            return Ok(Decision::Session(endpoint));
        }
        let rule = snapshot.policy.rule(req.method(), path);
        if snapshot.http.case_ambiguous_paths == CaseAmbiguousPaths::Reject
            && snapshot.policy.case_ambiguous(req.method(), path, rule)
        {
            return Err(Rejection::BadPath(path::PathError::CaseAmbiguous));
        }
        let signed_in = self
            .browser
            .as_deref()
            .filter(|b| browser && b.covers(path))
            .zip(match &rule.access {
                Access::Token(requirements) => Some(requirements),
                Access::Public => None,
            });
        let (claims, cookies) = match signed_in {
            Some((b, requirements)) => match self.judge_browser(snapshot, b, requirements, req).await? {
                Browsed::Admitted(claims, cookies) => (Some(claims), cookies),
                Browsed::SignIn => {
                    let return_to = match req.uri().query() {
                        Some(q) => format!("{path}?{q}"),
                        None => path.to_owned(),
                    };
                    return Ok(Decision::SignIn { return_to });
                }
            },
            None => (
                self.judge(snapshot, &rule.access, req.headers(), req.uri().query())
                    .await?,
                Vec::new(),
            ),
        };
        // Only after the full decision, and only to a protocol this route
        // allows; any other `Upgrade` is dropped with the hop-by-hop headers.
        let upgrade = headers::requested_upgrade(req)
            .filter(|p| rule.allows_upgrade(p))
            .map(str::to_owned);
        Ok(Decision::Forward {
            normalised,
            claims,
            upgrade,
            cookies,
        })
    }

    /// A request on a route browsers sign in on: a bearer token (any
    /// configured source) is judged as anywhere else; without one, the
    /// access cookie, else the refresh cookie (spent in line for a new
    /// pair, set on the response), else a sign-in.
    async fn judge_browser<B>(
        &self,
        snapshot: &Snapshot,
        browser: &Browser,
        requirements: &Requirements,
        req: &Request<B>,
    ) -> Result<Browsed, Rejection> {
        let headers = req.headers();
        match self.authenticated(snapshot, headers, req.uri().query()).await {
            Err(Rejection::Auth(AuthError::MissingToken)) => {}
            Ok(claims) => {
                authorize(requirements, &claims)?;
                return Ok(Browsed::Admitted(claims, Vec::new()));
            }
            Err(e) => return Err(e),
        }
        let sign_in = || {
            if browser.is_navigation(req.method(), headers) {
                Ok(Browsed::SignIn)
            } else {
                Err(Rejection::Auth(AuthError::MissingToken))
            }
        };
        let access = browser.access_cookie(headers);
        let refresh = browser.refresh_cookie(headers);
        if access.is_none() && refresh.is_none() {
            return sign_in();
        }
        if !browser.same_origin(req.method(), headers) {
            return Err(Rejection::CrossSite);
        }
        if let Some(token) = access {
            match self.token_claims(snapshot, token).await {
                Ok(claims) => {
                    authorize(requirements, &claims)?;
                    return Ok(Browsed::Admitted(claims, Vec::new()));
                }
                // Ended elsewhere (a logout, the provider's back-channel
                // logout): no refresh brings it back.
                Err(Rejection::Revocation(crate::revocation::RevocationError::Revoked)) => return sign_in(),
                Err(e @ Rejection::Revocation(_)) => return Err(e),
                // Expired (or its key rotated away): the refresh cookie decides.
                Err(_) => {}
            }
        }
        let Some(refresh) = refresh else { return sign_in() };
        match browser.refresh(refresh).await {
            Ok(pair) => {
                let cookies = browser.session_cookies(&pair, None);
                // Whatever the answer, it carries the new cookies.
                let refreshed = |e: Rejection| Rejection::Refreshed(Box::new(e), cookies.clone());
                let claims = self
                    .token_claims(snapshot, &pair.access_token)
                    .await
                    .map_err(refreshed)?;
                authorize(requirements, &claims).map_err(|e| refreshed(e.into()))?;
                Ok(Browsed::Admitted(claims, cookies))
            }
            Err(e) if matches!(*e, crate::session::SessionError::Store(_)) => Err(Rejection::SessionUnavailable),
            Err(_) => sign_in(),
        }
    }

    /// `token`'s verified claims, if the mirror does not revoke them.
    async fn token_claims(&self, snapshot: &Snapshot, token: &str) -> Result<Arc<Claims>, Rejection> {
        let claims = snapshot.auth.verify(token, &self.verify).await?;
        self.revocations.check(claims.token_ref(), unix_ms())?;
        Ok(claims)
    }

    /// The decision for a request whose path is already normalised: which
    /// route rule applies, then (unless public) extract and verify the token,
    /// check the revocation mirror and the route's requirements. Returns the
    /// claims, or `None` on a public route. No I/O except a JWKS refetch for
    /// an unknown kid; `benches/decision.rs` measures it alone.
    pub async fn admit(
        &self,
        snapshot: &Snapshot,
        method: &http::Method,
        path: &str,
        headers: &http::HeaderMap,
        query: Option<&str>,
    ) -> Result<Option<Arc<Claims>>, Rejection> {
        self.judge(snapshot, snapshot.policy.access(method, path), headers, query)
            .await
    }

    /// The decision once the route rule is known.
    async fn judge(
        &self,
        snapshot: &Snapshot,
        access: &Access,
        headers: &http::HeaderMap,
        query: Option<&str>,
    ) -> Result<Option<Arc<Claims>>, Rejection> {
        match access {
            Access::Public => Ok(None),
            Access::Token(requirements) => {
                let claims = self.authenticated(snapshot, headers, query).await?;
                authorize(requirements, &claims)?;
                Ok(Some(claims))
            }
        }
    }

    /// The request's verified claims, if the mirror does not revoke them.
    async fn authenticated(
        &self,
        snapshot: &Snapshot,
        headers: &http::HeaderMap,
        query: Option<&str>,
    ) -> Result<Arc<Claims>, Rejection> {
        let claims = snapshot.auth.authenticate(headers, query, &self.verify).await?;
        self.revocations.check(claims.token_ref(), unix_ms())?;
        Ok(claims)
    }

    /// The request's verified, unrevoked claims, for the logout endpoints.
    pub(super) async fn caller(&self, snapshot: &Snapshot, req: &Request<Incoming>) -> Result<Arc<Claims>, String> {
        self.authenticated(snapshot, req.headers(), req.uri().query())
            .await
            .map_err(|e| e.to_string())
    }
}

/// How a browser's request was judged.
enum Browsed {
    /// Signed in (perhaps refreshed: the cookies to set).
    Admitted(Arc<Claims>, Vec<HeaderValue>),
    /// Not signed in, and a navigation: send it to sign in.
    SignIn,
}

/// What the policy decided for one request.
#[derive(Debug)]
pub enum Decision {
    /// Forward to the app.
    Forward {
        /// The path the app receives, when it differs from the one sent.
        normalised: Option<String>,
        /// The verified claims; `None` on a public route.
        claims: Option<Arc<Claims>>,
        /// The protocol the client may switch to (`Upgrade`), if the route allows it.
        upgrade: Option<String>,
        /// `Set-Cookie` values for the response: a browser's session
        /// refreshed in line. Empty otherwise (no allocation).
        cookies: Vec<HeaderValue>,
    },
    /// A browser without a session: send it to sign in, then back to
    /// `return_to` (this request's path and query).
    SignIn {
        /// Where to come back to.
        return_to: String,
    },
    /// A session endpoint answers it (refresh, logout, JWKS).
    Session(Endpoint),
    /// The OIDC back-channel logout receiver answers it.
    BackchannelLogout,
}
