//! The decision: one typed step from a request to forward-or-answer, used
//! by the proxy, by benchmarks, and by tests without sockets.

use std::borrow::Cow;
use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;

use super::respond::Rejection;
use super::{Proxy, Snapshot, headers, request};
use crate::auth::{Claims, authorize};
use crate::clock::unix_ms;
use crate::config::{Access, CaseAmbiguousPaths, PathParameters};
use crate::path;
use crate::session::http::Endpoint;

impl Proxy {
    /// The whole decision for one request, without I/O beyond a JWKS
    /// refetch for an unknown kid: framing checks, the path's normal form,
    /// the route (a session endpoint is a kind of route), case ambiguity,
    /// then token, revocation and requirements, and which protocol switch
    /// the route allows. The proxy acts on it; tests call it without sockets.
    pub async fn decide<B>(&self, snapshot: &Snapshot, req: &Request<B>) -> Result<Decision, Rejection> {
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
        let claims = self
            .judge(snapshot, &rule.access, req.headers(), req.uri().query())
            .await?;
        // Only after the full decision, and only to a protocol this route
        // allows; any other `Upgrade` is dropped with the hop-by-hop headers.
        let upgrade = headers::requested_upgrade(req)
            .filter(|p| rule.allows_upgrade(p))
            .map(str::to_owned);
        Ok(Decision::Forward {
            normalised,
            claims,
            upgrade,
        })
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
    },
    /// A session endpoint answers it (refresh, logout, JWKS).
    Session(Endpoint),
    /// The OIDC back-channel logout receiver answers it.
    BackchannelLogout,
}
