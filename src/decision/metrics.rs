//! What decision mode counts: decisions by front door, outcome and reason
//! (the proxy's reason vocabulary), and their duration by front door.

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

use super::original::FrontDoor;
use crate::metrics::Reason;

const BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25,
];

/// `tokengate_decisions_total{mode,outcome,reason}` and
/// `tokengate_decision_duration_seconds{mode}`, every series resolved at start-up.
pub struct DecisionMetrics {
    decisions: Vec<IntCounter>,
    duration: Vec<Histogram>,
}

impl DecisionMetrics {
    /// Registers both families on `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let decisions = IntCounterVec::new(
            Opts::new(
                "tokengate_decisions_total",
                "Decisions answered to an ingress or mesh, by front door, outcome and reason.",
            ),
            &["mode", "outcome", "reason"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "tokengate_decision_duration_seconds",
                "Time from a decision request's head to its answer, by front door.",
            )
            .buckets(BUCKETS.to_vec()),
            &["mode"],
        )?;
        let metrics = DecisionMetrics {
            decisions: FrontDoor::ALL
                .iter()
                .flat_map(|door| {
                    Reason::ALL
                        .iter()
                        .map(|r| decisions.with_label_values(&[door.label(), r.outcome().label(), r.label()]))
                })
                .collect(),
            duration: FrontDoor::ALL
                .iter()
                .map(|door| duration.with_label_values(&[door.label()]))
                .collect(),
        };
        registry.register(Box::new(decisions))?;
        registry.register(Box::new(duration))?;
        Ok(metrics)
    }

    /// Counts one decision.
    pub fn record(&self, door: FrontDoor, reason: Reason, elapsed: Duration) {
        self.decisions[door as usize * Reason::ALL.len() + reason.index()].inc();
        self.duration[door as usize].observe(elapsed.as_secs_f64());
    }
}
