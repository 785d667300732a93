//! Prometheus metrics, registered on a registry the app owns (never the global
//! default, so tests and several apps in one process do not share state).
//! Label values come from the closed enums below; every counter a request can
//! touch is resolved once at start-up, so the request path does no label
//! lookup and no formatting.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Why a request ended the way it did: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Forwarded with a valid token.
    Authorized,
    /// Forwarded on a public route.
    Public,
    /// 400: the path has no safe normal form.
    BadPath,
    /// 400: ambiguous framing: Host missing, repeated, invalid or contradicted
    /// by the target, or a method not in canonical upper case.
    BadRequest,
    /// 400: the client's body was malformed (bad chunking) or cut short.
    ClientBody,
    /// 401: no token in any configured source.
    MissingToken,
    /// 401: longer than `limits.max_token_bytes`.
    TokenTooLarge,
    /// 401: not a well-formed JWS/JWT.
    Malformed,
    /// 401: `alg` is not the key's pinned algorithm (or is `none`).
    AlgorithmNotAllowed,
    /// 401: `iss` names no configured issuer.
    UnknownIssuer,
    /// 401: `kid` names no key of the issuer.
    UnknownKid,
    /// 401: the signature does not verify.
    BadSignature,
    /// 401: `exp` is past (beyond leeway).
    Expired,
    /// 401: `nbf` is ahead (beyond leeway).
    NotYetValid,
    /// 401: `aud` matches none of the issuer's audiences.
    WrongAudience,
    /// 401: a required claim (`exp`, `iss`, `aud`) is absent.
    MissingClaim,
    /// 401: the token's jti, or its subject up to its iat, is revoked.
    Revoked,
    /// 403: a required scope is missing.
    InsufficientScope,
    /// 403: a required claim value is missing.
    ClaimMismatch,
    /// 503: the revocation mirror is stale and the policy is fail-closed.
    RevocationStale,
    /// 502: the upstream refused the connection or the connect timed out.
    UpstreamConnect,
    /// 502: the upstream reset or broke the exchange.
    UpstreamReset,
    /// 504: no response headers within `upstream.request_timeout`.
    UpstreamTimeout,
    /// 502: the upstream switched protocols (101) to one nobody asked for.
    UpstreamProtocol,
    /// Answered by the session service itself (refresh, logout, JWKS); its
    /// outcomes are counted by the `tokengate_session_*` families.
    SessionEndpoint,
}

impl Reason {
    /// Every reason, for pre-registering label sets.
    pub const ALL: [Reason; 25] = [
        Reason::Authorized,
        Reason::Public,
        Reason::BadPath,
        Reason::BadRequest,
        Reason::ClientBody,
        Reason::MissingToken,
        Reason::TokenTooLarge,
        Reason::Malformed,
        Reason::AlgorithmNotAllowed,
        Reason::UnknownIssuer,
        Reason::UnknownKid,
        Reason::BadSignature,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::WrongAudience,
        Reason::MissingClaim,
        Reason::Revoked,
        Reason::InsufficientScope,
        Reason::ClaimMismatch,
        Reason::RevocationStale,
        Reason::UpstreamConnect,
        Reason::UpstreamReset,
        Reason::UpstreamTimeout,
        Reason::UpstreamProtocol,
        Reason::SessionEndpoint,
    ];

    /// The `reason` label value.
    pub const fn label(self) -> &'static str {
        match self {
            Reason::Authorized => "authorized",
            Reason::Public => "public",
            Reason::BadPath => "bad_path",
            Reason::BadRequest => "bad_request",
            Reason::ClientBody => "client_body",
            Reason::MissingToken => "missing_token",
            Reason::TokenTooLarge => "token_too_large",
            Reason::Malformed => "malformed",
            Reason::AlgorithmNotAllowed => "algorithm_not_allowed",
            Reason::UnknownIssuer => "unknown_issuer",
            Reason::UnknownKid => "unknown_kid",
            Reason::BadSignature => "bad_signature",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::WrongAudience => "wrong_audience",
            Reason::MissingClaim => "missing_claim",
            Reason::Revoked => "revoked",
            Reason::RevocationStale => "revocation_stale",
            Reason::InsufficientScope => "insufficient_scope",
            Reason::ClaimMismatch => "claim_mismatch",
            Reason::UpstreamConnect => "upstream_connect",
            Reason::UpstreamReset => "upstream_reset",
            Reason::UpstreamTimeout => "upstream_timeout",
            Reason::UpstreamProtocol => "upstream_protocol",
            Reason::SessionEndpoint => "session_endpoint",
        }
    }

    /// The coarser `outcome` label this reason belongs to.
    pub const fn outcome(self) -> Outcome {
        match self {
            Reason::Authorized | Reason::Public => Outcome::Allowed,
            Reason::BadPath
            | Reason::BadRequest
            | Reason::ClientBody
            | Reason::MissingToken
            | Reason::TokenTooLarge
            | Reason::Malformed
            | Reason::AlgorithmNotAllowed
            | Reason::UnknownIssuer
            | Reason::UnknownKid
            | Reason::BadSignature
            | Reason::Expired
            | Reason::NotYetValid
            | Reason::WrongAudience
            | Reason::MissingClaim
            | Reason::Revoked
            | Reason::InsufficientScope
            | Reason::ClaimMismatch
            | Reason::RevocationStale => Outcome::Rejected,
            Reason::UpstreamConnect | Reason::UpstreamReset | Reason::UpstreamTimeout | Reason::UpstreamProtocol => {
                Outcome::UpstreamError
            }
            Reason::SessionEndpoint => Outcome::Session,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The `outcome` label: allowed, rejected by policy, or failed upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded to the app (whatever the app answered).
    Allowed,
    /// Refused by the proxy (400/401/403/503).
    Rejected,
    /// The app could not be reached or did not answer (502/504).
    UpstreamError,
    /// Answered by the session endpoints, never forwarded.
    Session,
}

impl Outcome {
    const ALL: [Outcome; 4] = [
        Outcome::Allowed,
        Outcome::Rejected,
        Outcome::UpstreamError,
        Outcome::Session,
    ];

    /// The `outcome` label value.
    pub const fn label(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Rejected => "rejected",
            Outcome::UpstreamError => "upstream_error",
            Outcome::Session => "session",
        }
    }
}

/// The `kind` label of `tokengate_upstream_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// Connection refused or connect timeout.
    Connect,
    /// No response headers in time.
    Timeout,
    /// Reset, closed or protocol error mid-exchange.
    Reset,
    /// A protocol switch (101) the client did not ask for.
    Protocol,
}

impl UpstreamErrorKind {
    const ALL: [UpstreamErrorKind; 4] = [
        UpstreamErrorKind::Connect,
        UpstreamErrorKind::Timeout,
        UpstreamErrorKind::Reset,
        UpstreamErrorKind::Protocol,
    ];

    /// The `kind` label value.
    pub const fn label(self) -> &'static str {
        match self {
            UpstreamErrorKind::Connect => "connect",
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::Reset => "reset",
            UpstreamErrorKind::Protocol => "protocol",
        }
    }
}

/// The `result` label of `tokengate_config_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// The new configuration serves.
    Ok,
    /// Refused; the running configuration keeps serving.
    Invalid,
}

impl ReloadResult {
    const ALL: [ReloadResult; 2] = [ReloadResult::Ok, ReloadResult::Invalid];

    /// The `result` label value.
    pub const fn label(self) -> &'static str {
        match self {
            ReloadResult::Ok => "ok",
            ReloadResult::Invalid => "invalid",
        }
    }
}

/// Every metric tokengate exports, resolved to concrete series at start-up.
pub struct Metrics {
    registry: Registry,
    requests: Vec<IntCounter>,
    request_duration: Vec<Histogram>,
    verify_duration: Histogram,
    upstream_errors: Vec<IntCounter>,
    /// Connections currently open on the proxy listener.
    pub connections_open: IntGauge,
    /// Verified-token cache hits (signature verification skipped).
    pub verify_cache_hits: IntCounter,
    /// Verified-token cache misses (signature verified).
    pub verify_cache_misses: IntCounter,
    config_reloads: IntCounterVec,
}

const REQUEST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const VERIFY_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.005, 0.01,
];

impl Metrics {
    /// Registers every family on `registry`, plus process metrics.
    pub fn new(registry: Registry) -> Result<Self, prometheus::Error> {
        let requests_vec = IntCounterVec::new(
            Opts::new("tokengate_requests_total", "Requests handled, by outcome and reason."),
            &["outcome", "reason"],
        )?;
        let duration_vec = HistogramVec::new(
            HistogramOpts::new(
                "tokengate_request_duration_seconds",
                "Time from request head to response head, by outcome.",
            )
            .buckets(REQUEST_BUCKETS.to_vec()),
            &["outcome"],
        )?;
        let verify_duration = Histogram::with_opts(
            HistogramOpts::new(
                "tokengate_verify_duration_seconds",
                "Time spent extracting and verifying a token.",
            )
            .buckets(VERIFY_BUCKETS.to_vec()),
        )?;
        let upstream_vec = IntCounterVec::new(
            Opts::new(
                "tokengate_upstream_errors_total",
                "Failed exchanges with the upstream app, by kind.",
            ),
            &["kind"],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new("tokengate_build_info", "Build information; the value is always 1."),
            &["version"],
        )?;
        let connections_open = IntGauge::new(
            "tokengate_connections_open",
            "Client connections currently open on the proxy listener.",
        )?;

        let verify_cache_hits = IntCounter::new(
            "tokengate_verify_cache_hits_total",
            "Tokens found in the verified-token cache (signature not verified again).",
        )?;
        let verify_cache_misses = IntCounter::new(
            "tokengate_verify_cache_misses_total",
            "Tokens not in the verified-token cache (signature verified).",
        )?;
        let config_reloads = IntCounterVec::new(
            Opts::new("tokengate_config_reloads_total", "Configuration reloads, by result."),
            &["result"],
        )?;
        for result in ReloadResult::ALL {
            config_reloads.with_label_values(&[result.label()]);
        }

        let requests = Reason::ALL
            .iter()
            .map(|r| requests_vec.with_label_values(&[r.outcome().label(), r.label()]))
            .collect();
        let request_duration = Outcome::ALL
            .iter()
            .map(|o| duration_vec.with_label_values(&[o.label()]))
            .collect();
        let upstream_errors = UpstreamErrorKind::ALL
            .iter()
            .map(|k| upstream_vec.with_label_values(&[k.label()]))
            .collect();
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);

        registry.register(Box::new(requests_vec))?;
        registry.register(Box::new(duration_vec))?;
        registry.register(Box::new(verify_duration.clone()))?;
        registry.register(Box::new(upstream_vec))?;
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(connections_open.clone()))?;
        registry.register(Box::new(verify_cache_hits.clone()))?;
        registry.register(Box::new(verify_cache_misses.clone()))?;
        registry.register(Box::new(config_reloads.clone()))?;
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;

        Ok(Metrics {
            registry,
            requests,
            request_duration,
            verify_duration,
            upstream_errors,
            connections_open,
            verify_cache_hits,
            verify_cache_misses,
            config_reloads,
        })
    }

    /// Counts one reload attempt.
    pub fn record_reload(&self, result: ReloadResult) {
        self.config_reloads.with_label_values(&[result.label()]).inc();
    }

    /// The registry, for components that add their own families.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts one finished request and its duration.
    pub fn record_request(&self, reason: Reason, elapsed: Duration) {
        self.requests[reason.index()].inc();
        self.request_duration[reason.outcome() as usize].observe(elapsed.as_secs_f64());
        let kind = match reason {
            Reason::UpstreamConnect => Some(UpstreamErrorKind::Connect),
            Reason::UpstreamTimeout => Some(UpstreamErrorKind::Timeout),
            Reason::UpstreamReset => Some(UpstreamErrorKind::Reset),
            Reason::UpstreamProtocol => Some(UpstreamErrorKind::Protocol),
            _ => None,
        };
        if let Some(kind) = kind {
            self.upstream_errors[kind as usize].inc();
        }
    }

    /// Records how long token verification took.
    pub fn record_verify(&self, elapsed: Duration) {
        self.verify_duration.observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition of every registered family.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail on I/O; a family that fails to
        // encode is a bug worth seeing in the scrape, not a panic.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            out.extend_from_slice(format!("# encoding error: {e}\n").as_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_indexes_match_all() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i);
        }
        for (i, k) in UpstreamErrorKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }

    #[test]
    fn every_series_is_exported_from_the_start() {
        let m = Metrics::new(Registry::new()).unwrap();
        m.record_request(Reason::UpstreamTimeout, Duration::from_millis(3));
        let text = String::from_utf8(m.render()).unwrap();
        for r in Reason::ALL {
            let series = format!(
                "tokengate_requests_total{{outcome=\"{}\",reason=\"{}\"}}",
                r.outcome().label(),
                r.label()
            );
            assert!(text.contains(&series), "missing {series}");
        }
        assert!(text.contains("tokengate_upstream_errors_total{kind=\"timeout\"} 1"));
        assert!(text.contains("tokengate_build_info{version="));
        assert!(text.contains("process_resident_memory_bytes"));
    }
}
