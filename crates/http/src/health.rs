//! `/healthz` (the process answers: liveness) and `/readyz` (ready for
//! traffic: every SMTP listener bound and the spool open). A load balancer
//! sends mail only to a ready instance; a supervisor restarts one whose
//! /healthz stops answering.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Flags `port25 serve` sets as start-up proceeds.
#[derive(Clone, Default)]
pub struct Readiness {
    spool: Arc<AtomicBool>,
    listeners: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
}

impl Readiness {
    pub fn spool_open(&self) {
        self.spool.store(true, Ordering::SeqCst);
    }
    pub fn listeners_bound(&self) {
        self.listeners.store(true, Ordering::SeqCst);
    }
    /// Shutdown began: stop sending traffic here.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// `Ok` when ready, else what is missing.
    pub fn check(&self) -> Result<(), Vec<&'static str>> {
        let mut missing = Vec::new();
        if !self.spool.load(Ordering::SeqCst) {
            missing.push("spool not open");
        }
        if !self.listeners.load(Ordering::SeqCst) {
            missing.push("SMTP listeners not bound");
        }
        if self.stopping.load(Ordering::SeqCst) {
            missing.push("shutting down");
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ready_only_when_everything_is() {
        let r = super::Readiness::default();
        assert_eq!(r.check(), Err(vec!["spool not open", "SMTP listeners not bound"]));
        r.spool_open();
        r.listeners_bound();
        assert_eq!(r.check(), Ok(()));
        r.stopping();
        assert_eq!(r.check(), Err(vec!["shutting down"]));
    }
}
