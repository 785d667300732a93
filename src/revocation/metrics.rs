//! What the revocation mirror and its sync count: channel messages, full
//! reloads, and gauges of the mirror read at scrape time.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts};

use super::{Kind, Revocations};
use crate::clock::unix_ms;

/// What became of one channel message: the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageResult {
    /// The next `seq`: applied.
    Applied,
    /// A `seq` already seen (applied again, harmlessly).
    Duplicate,
    /// A `seq` that skipped numbers: applied, then a full reload.
    Gap,
    /// Unparseable: ignored, then a full reload.
    Malformed,
}

impl MessageResult {
    const ALL: [MessageResult; 4] = [
        MessageResult::Applied,
        MessageResult::Duplicate,
        MessageResult::Gap,
        MessageResult::Malformed,
    ];

    /// The label value.
    pub const fn label(self) -> &'static str {
        match self {
            MessageResult::Applied => "applied",
            MessageResult::Duplicate => "duplicate",
            MessageResult::Gap => "gap",
            MessageResult::Malformed => "malformed",
        }
    }
}

/// Counters the sync task moves.
#[derive(Clone)]
pub struct SyncMetrics {
    pub(super) messages: IntCounterVec,
    pub(super) reloads: IntCounterVec,
    /// 1 for the node the sync is on (`address`, `role`), no series while
    /// disconnected.
    pub(super) nodes: IntGaugeVec,
}

impl SyncMetrics {
    pub(super) fn new() -> Result<SyncMetrics, prometheus::Error> {
        let messages = IntCounterVec::new(
            Opts::new(
                "tokengate_revocation_messages_total",
                "Revocation channel messages, by result (applied, duplicate, gap, malformed).",
            ),
            &["result"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "tokengate_revocation_reloads_total",
                "Full reloads of the revocation mirror, by cause.",
            ),
            &["cause"],
        )?;
        for r in MessageResult::ALL {
            messages.with_label_values(&[r.label()]);
        }
        for c in ReloadCause::ALL {
            reloads.with_label_values(&[c.label()]);
        }
        let nodes = IntGaugeVec::new(
            Opts::new(
                "tokengate_revocation_sync_node",
                "1 for the Redis node the revocation sync is on, with the role it reported.",
            ),
            &["address", "role"],
        )?;
        Ok(SyncMetrics {
            messages,
            reloads,
            nodes,
        })
    }

    /// The node the sync is on now (one series), or none.
    pub fn node(&self, node: Option<(&str, &str)>) {
        self.nodes.reset();
        if let Some((address, role)) = node {
            self.nodes.with_label_values(&[address, role]).set(1);
        }
    }

    /// Counts one channel message.
    pub fn message(&self, result: MessageResult) {
        self.messages.with_label_values(&[result.label()]).inc();
    }

    /// Counts one reload.
    pub fn reload(&self, cause: ReloadCause) {
        self.reloads.with_label_values(&[cause.label()]).inc();
    }
}

/// Why the mirror was reloaded: the `cause` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadCause {
    /// First load after start.
    Startup,
    /// The connection was lost and re-established.
    Reconnect,
    /// A message's `seq` skipped numbers.
    Gap,
    /// The periodic check found `seq` ahead of the mirror.
    Behind,
    /// The periodic check found `seq` behind the mirror (Redis lost data).
    Reset,
    /// A message could not be parsed.
    Malformed,
}

impl ReloadCause {
    const ALL: [ReloadCause; 6] = [
        ReloadCause::Startup,
        ReloadCause::Reconnect,
        ReloadCause::Gap,
        ReloadCause::Behind,
        ReloadCause::Reset,
        ReloadCause::Malformed,
    ];

    /// The label value.
    pub const fn label(self) -> &'static str {
        match self {
            ReloadCause::Startup => "startup",
            ReloadCause::Reconnect => "reconnect",
            ReloadCause::Gap => "gap",
            ReloadCause::Behind => "behind",
            ReloadCause::Reset => "reset",
            ReloadCause::Malformed => "malformed",
        }
    }
}

/// Gauges computed at scrape time, so the age is exact even while the sync
/// task is stuck waiting on a dead Redis.
pub(super) struct MirrorCollector {
    revocations: Revocations,
    entries: IntGaugeVec,
    age: prometheus::Gauge,
    connected: IntGauge,
    stale: IntGauge,
    descs: Vec<Desc>,
}

impl MirrorCollector {
    pub(super) fn new(revocations: Revocations) -> Result<MirrorCollector, prometheus::Error> {
        let entries = IntGaugeVec::new(
            Opts::new(
                "tokengate_revocation_entries",
                "Entries in the revocation mirror, by kind.",
            ),
            &["kind"],
        )?;
        let age = prometheus::Gauge::new(
            "tokengate_revocation_sync_age_seconds",
            "Seconds since the revocation mirror was last confirmed current (0 for the memory backend).",
        )?;
        let connected = IntGauge::new(
            "tokengate_revocation_connected",
            "1 while the revocation sync has a working Redis connection (always 1 for memory).",
        )?;
        let stale = IntGauge::new(
            "tokengate_revocation_stale",
            "1 while the mirror is older than max_staleness (fail_open keeps serving from it).",
        )?;
        let descs = [entries.desc(), age.desc(), connected.desc(), stale.desc()]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        Ok(MirrorCollector {
            revocations,
            entries,
            age,
            connected,
            stale,
            descs,
        })
    }
}

impl Collector for MirrorCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let now = unix_ms();
        for kind in Kind::ALL {
            self.entries
                .with_label_values(&[kind.label()])
                .set(self.revocations.len(kind) as i64);
        }
        let age_ms = if self.revocations.is_loaded() {
            self.revocations.age_ms(now)
        } else {
            // Never loaded: as old as the epoch would be misleading; report 0
            // and let `connected` and readiness tell the story.
            0
        };
        self.age.set(age_ms as f64 / 1000.0);
        self.connected.set(i64::from(self.revocations.is_connected()));
        self.stale.set(i64::from(
            self.revocations.is_loaded() && self.revocations.is_stale(now),
        ));
        let mut out = self.entries.collect();
        out.extend(self.age.collect());
        out.extend(self.connected.collect());
        out.extend(self.stale.collect());
        out
    }
}
