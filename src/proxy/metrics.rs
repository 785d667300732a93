//! What the request path counts: requests by outcome and reason, their
//! duration, and failed exchanges with the app.

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

use crate::metrics::{Outcome, Reason};

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
    /// Every kind, in index order.
    pub const ALL: [UpstreamErrorKind; 4] = [
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

/// The request families, resolved to one series per label set at start-up.
pub struct RequestMetrics {
    requests: Vec<IntCounter>,
    duration: Vec<Histogram>,
    upstream_errors: Vec<IntCounter>,
}

const REQUEST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl RequestMetrics {
    /// Registers `tokengate_requests_total`, `tokengate_request_duration_seconds`
    /// and `tokengate_upstream_errors_total` on `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
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
        let upstream_vec = IntCounterVec::new(
            Opts::new(
                "tokengate_upstream_errors_total",
                "Failed exchanges with the upstream app, by kind.",
            ),
            &["kind"],
        )?;
        let metrics = RequestMetrics {
            requests: Reason::ALL
                .iter()
                .map(|r| requests_vec.with_label_values(&[r.outcome().label(), r.label()]))
                .collect(),
            duration: Outcome::ALL
                .iter()
                .map(|o| duration_vec.with_label_values(&[o.label()]))
                .collect(),
            upstream_errors: UpstreamErrorKind::ALL
                .iter()
                .map(|k| upstream_vec.with_label_values(&[k.label()]))
                .collect(),
        };
        registry.register(Box::new(requests_vec))?;
        registry.register(Box::new(duration_vec))?;
        registry.register(Box::new(upstream_vec))?;
        Ok(metrics)
    }

    /// Counts one finished request and its duration.
    pub fn record(&self, reason: Reason, elapsed: Duration) {
        self.requests[reason.index()].inc();
        self.duration[reason.outcome() as usize].observe(elapsed.as_secs_f64());
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn kind_indexes_match_all() {
        for (i, k) in UpstreamErrorKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }

    #[test]
    fn every_series_is_exported_from_the_start() {
        let all = Metrics::new().unwrap();
        let m = RequestMetrics::new(all.registry()).unwrap();
        m.record(Reason::UpstreamTimeout, Duration::from_millis(3));
        let text = String::from_utf8(all.render()).unwrap();
        for r in Reason::ALL {
            let series = format!(
                "tokengate_requests_total{{outcome=\"{}\",reason=\"{}\"}}",
                r.outcome().label(),
                r.label()
            );
            assert!(text.contains(&series), "missing {series}");
        }
        assert!(text.contains("tokengate_upstream_errors_total{kind=\"timeout\"} 1"));
    }
}
