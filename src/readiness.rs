//! Readiness: `/readyz` is 200 only while every latch is released and the
//! process is not draining.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// Shared readiness state; clones observe and change the same state.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<Inner>);

/// A condition asked on every `/readyz`: `Some(why)` means not ready.
pub type Check = Arc<dyn Fn() -> Option<&'static str> + Send + Sync>;

#[derive(Default)]
struct Inner {
    /// Latches not yet released (e.g. a first sync still running).
    pending: AtomicUsize,
    /// Set once on SIGTERM; never cleared.
    draining: AtomicBool,
    /// Conditions that can come and go (e.g. a stale fail-closed mirror).
    checks: RwLock<Vec<Check>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("pending", &self.pending)
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

/// Holds readiness back until released or dropped.
#[derive(Debug)]
#[must_use = "readiness is released when the latch is dropped"]
pub struct Latch(Option<Arc<Inner>>);

impl Readiness {
    /// New, ready state (no latches, not draining).
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns a latch that keeps the process not ready until it is released.
    pub fn latch(&self) -> Latch {
        self.0.pending.fetch_add(1, Ordering::AcqRel);
        Latch(Some(self.0.clone()))
    }

    /// Adds a condition consulted on every readiness query.
    pub fn add_check(&self, check: Check) {
        self.0.checks.write().unwrap_or_else(|e| e.into_inner()).push(check);
    }

    /// Marks the process as draining: not ready from now on.
    pub fn set_draining(&self) {
        self.0.draining.store(true, Ordering::Release);
    }

    /// Why the process is not ready, or `None` when it is.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if self.0.draining.load(Ordering::Acquire) {
            Some("draining")
        } else if self.0.pending.load(Ordering::Acquire) > 0 {
            Some("starting")
        } else {
            let checks = self.0.checks.read().unwrap_or_else(|e| e.into_inner());
            checks.iter().find_map(|check| check())
        }
    }

    /// True when `/readyz` should answer 200.
    pub fn is_ready(&self) -> bool {
        self.not_ready_reason().is_none()
    }
}

impl Latch {
    /// Releases the latch now (dropping it does the same).
    pub fn release(mut self) {
        self.release_inner();
    }

    fn release_inner(&mut self) {
        if let Some(inner) = self.0.take() {
            inner.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Latch {
    fn drop(&mut self) {
        self.release_inner();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latches_and_draining() {
        let r = Readiness::new();
        assert!(r.is_ready());
        let a = r.latch();
        let b = r.latch();
        assert_eq!(r.not_ready_reason(), Some("starting"));
        a.release();
        assert!(!r.is_ready());
        drop(b);
        assert!(r.is_ready());
        r.set_draining();
        assert_eq!(r.not_ready_reason(), Some("draining"));
    }
}
