//! What verification counts: its duration and the verified-token cache.

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounter, Registry};

/// Verification time and cache hits and misses.
#[derive(Clone)]
pub struct VerifyMetrics {
    duration: Histogram,
    pub(super) cache_hits: IntCounter,
    pub(super) cache_misses: IntCounter,
}

const VERIFY_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.005, 0.01,
];

impl VerifyMetrics {
    /// Registers `tokengate_verify_duration_seconds` and the
    /// `tokengate_verify_cache_{hits,misses}_total` counters on `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "tokengate_verify_duration_seconds",
                "Time spent extracting and verifying a token.",
            )
            .buckets(VERIFY_BUCKETS.to_vec()),
        )?;
        let cache_hits = IntCounter::new(
            "tokengate_verify_cache_hits_total",
            "Tokens found in the verified-token cache (signature not verified again).",
        )?;
        let cache_misses = IntCounter::new(
            "tokengate_verify_cache_misses_total",
            "Tokens not in the verified-token cache (signature verified).",
        )?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(cache_hits.clone()))?;
        registry.register(Box::new(cache_misses.clone()))?;
        Ok(VerifyMetrics {
            duration,
            cache_hits,
            cache_misses,
        })
    }

    pub(super) fn record(&self, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
    }
}
