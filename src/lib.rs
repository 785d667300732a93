//! tokengate: a sidecar authentication reverse proxy.
//!
//! One tokengate runs beside each app instance. For every request it decides
//! whether the caller holds a valid JWT that the route requires, and forwards
//! only authorized traffic, with identity headers the app can trust.
//!
//! # Request lifecycle
//!
//! ```text
//! server      accept (TCP, optional rustls), HTTP/1.1 + HTTP/2 (hyper-util auto),
//!             connection cap, first-request deadline, idle close, bounded drain
//!   -> proxy::request  framing: one valid Host, canonical method, chunked only
//!   -> path      normalise the path (the one spelling the policy judges and the app
//!                gets); `;` parameters refused or stripped
//!   -> route     which rule matches: public / token required / scopes or claims
//!                required; refuse a path a case-insensitive router would put elsewhere
//!   -> auth      extract (Bearer, cookie, header, query) -> verify (key by iss+kid,
//!                pinned alg, signature, exp/nbf/aud with leeway) -> authorize
//!   -> revocation  local mirror: revoked jti or sid? subject cut off after this iat?
//!                (never Redis)
//!   -> proxy     strip hop-by-hop, oddly named, untrusted and spoofed identity headers,
//!                inject identity and X-Forwarded-*, forward over a capped stack of
//!                HTTP/1.1 connections, stream bodies, tunnel allowed upgrades
//!   -> respond   every rejection becomes its response in proxy::respond, nowhere else
//! ```
//!
//! `session` (optional) issues tokens: its endpoints under `/.tokengate` are
//! a kind of route the proxy answers itself, its control API on its own listener.
//! `browser` (optional) signs people in browsers in at an identity provider
//! and carries their session in cookies, refreshed in line.
//! `decision` (optional) answers the same decision to an ingress or a mesh
//! (nginx, Traefik, Caddy, Envoy over HTTP and gRPC) on its own listener.
//!
//! # Module map
//!
//! Dependencies point one way, from the wiring down to the leaves
//! (`scripts/check-modules.py`, run in CI, fails on a cycle or on a leaf
//! that imports one of ours):
//!
//! ```text
//! cli -> app -> decision -> reload -> proxy -> browser -> session -> auth -> revocation -> config -> keys
//!                admin, server, tls, jwks (remote key stores), route, redis_client
//! ```
//!
//! Leaves (import nothing of ours): `backoff`, `body`, `clock`, `json`, `keys`, `path`, `metrics`, `redis_client`,
//! `readiness`, `signal`.
#![forbid(unsafe_code)]
// The request future (hyper connection, decision, browser sign-in) nests
// deeper than the default limit of 128 when the compiler proves it `Send`.
#![recursion_limit = "256"]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

pub mod admin;
pub mod app;
pub mod auth;
pub mod backchannel;
pub mod backoff;
pub mod body;
pub mod browser;
pub mod cli;
pub mod clock;
pub mod config;
pub mod decision;
pub mod json;
pub mod jwks;
pub mod keys;
pub mod metrics;
pub mod path;
pub mod proxy;
pub mod readiness;
pub mod redis_client;
pub mod reload;
pub mod revocation;
pub mod route;
pub mod server;
pub mod session;
pub mod signal;
pub mod tls;

pub use app::{App, Listeners, RunError, run};
pub use config::{Config, ConfigError};

/// Selects aws-lc-rs as the process-wide provider for rustls and
/// jsonwebtoken. Idempotent. Without it, feature unification that enables a
/// second provider would make the first TLS handshake or JWT check panic.
pub fn install_crypto_providers() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER);
}
