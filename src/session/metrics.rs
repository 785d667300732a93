//! What the session service counts: sessions opened and evicted, refresh
//! presentations by result, logouts by scope.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// The `result` label of `tokengate_session_refreshes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshResult {
    /// Spent and replaced.
    Rotated,
    /// Already spent: the session was revoked.
    Reused,
    /// Spent moments ago by a racing request (within `reuse_grace`).
    Concurrent,
    /// Past its expiry.
    Expired,
    /// Unknown, malformed, or its session has ended.
    Invalid,
    /// The store failed; nothing changed.
    Unavailable,
}

impl RefreshResult {
    const ALL: [RefreshResult; 6] = [
        RefreshResult::Rotated,
        RefreshResult::Reused,
        RefreshResult::Concurrent,
        RefreshResult::Expired,
        RefreshResult::Invalid,
        RefreshResult::Unavailable,
    ];

    /// The label value.
    pub const fn label(self) -> &'static str {
        match self {
            RefreshResult::Rotated => "rotated",
            RefreshResult::Reused => "reused",
            RefreshResult::Concurrent => "concurrent",
            RefreshResult::Expired => "expired",
            RefreshResult::Invalid => "invalid",
            RefreshResult::Unavailable => "unavailable",
        }
    }
}

/// The `scope` label of `tokengate_session_logouts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutScope {
    /// One session: logout, or a control-API revoke.
    Session,
    /// Every session of a subject: logout-all.
    Subject,
}

impl LogoutScope {
    const ALL: [LogoutScope; 2] = [LogoutScope::Session, LogoutScope::Subject];

    /// The label value.
    pub const fn label(self) -> &'static str {
        match self {
            LogoutScope::Session => "session",
            LogoutScope::Subject => "subject",
        }
    }
}

/// Session metrics.
#[derive(Clone)]
pub(super) struct SessionMetrics {
    pub(super) opened: IntCounter,
    refreshes: IntCounterVec,
    logouts: IntCounterVec,
    pub(super) evicted: IntCounter,
}

impl SessionMetrics {
    pub(super) fn new(registry: &Registry) -> Result<SessionMetrics, prometheus::Error> {
        let opened = IntCounter::new(
            "tokengate_sessions_opened_total",
            "Sessions opened on the control listener.",
        )?;
        let refreshes = IntCounterVec::new(
            Opts::new(
                "tokengate_session_refreshes_total",
                "Refresh token presentations, by result (rotated, reused, concurrent, expired, invalid, unavailable).",
            ),
            &["result"],
        )?;
        let logouts = IntCounterVec::new(
            Opts::new(
                "tokengate_session_logouts_total",
                "Sessions ended on request, by scope (session: logout or control revoke; subject: logout-all).",
            ),
            &["scope"],
        )?;
        let evicted = IntCounter::new(
            "tokengate_sessions_evicted_total",
            "Sessions revoked because the subject exceeded max_sessions_per_subject.",
        )?;
        for r in RefreshResult::ALL {
            refreshes.with_label_values(&[r.label()]);
        }
        for s in LogoutScope::ALL {
            logouts.with_label_values(&[s.label()]);
        }
        registry.register(Box::new(opened.clone()))?;
        registry.register(Box::new(refreshes.clone()))?;
        registry.register(Box::new(logouts.clone()))?;
        registry.register(Box::new(evicted.clone()))?;
        Ok(SessionMetrics {
            opened,
            refreshes,
            logouts,
            evicted,
        })
    }

    pub(super) fn refresh(&self, result: RefreshResult) {
        self.refreshes.with_label_values(&[result.label()]).inc();
    }

    pub(super) fn logout(&self, scope: LogoutScope) {
        self.logouts.with_label_values(&[scope.label()]).inc();
    }
}
