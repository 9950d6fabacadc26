//! The memory budget for message data in flight: one per process, shared by
//! every listener. Each session in DATA reserves the buffer it grows before
//! it grows it; when the budget is spent, the message is no longer kept
//! (the session reads on to the final dot and answers 452 4.3.1, or answers
//! DATA itself with 452 when nothing is left). Without it, a few hundred
//! clients streaming 25 MiB each without the final dot hold gigabytes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug)]
pub struct DataBudget {
    limit: usize,
    used: AtomicUsize,
}

/// Bytes of a budget held by one message; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<DataBudget>,
    bytes: usize,
}

impl DataBudget {
    pub fn new(limit: usize) -> Arc<DataBudget> {
        Arc::new(DataBudget { limit, used: AtomicUsize::new(0) })
    }

    /// A budget that never runs out (tests and tools that bound memory
    /// some other way).
    pub fn unlimited() -> Arc<DataBudget> {
        DataBudget::new(usize::MAX)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// An empty reservation, or `None` when less than `min` is left (a new
    /// message would not get far: refuse it at DATA).
    pub fn start(self: &Arc<Self>, min: usize) -> Option<Reservation> {
        (self.limit.saturating_sub(self.used()) >= min).then(|| Reservation { budget: self.clone(), bytes: 0 })
    }

    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }
}

impl Reservation {
    /// Grows the reservation to `total` bytes; false (and nothing taken)
    /// when the budget cannot give that much.
    pub fn grow_to(&mut self, total: usize) -> bool {
        if total <= self.bytes {
            return true;
        }
        if !self.budget.take(total - self.bytes) {
            return false;
        }
        self.bytes = total;
        true
    }

    /// Gives everything back (the message is no longer kept).
    pub fn release(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        self.bytes = 0;
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_limit_and_give_back_on_drop() {
        let b = DataBudget::new(100);
        let mut a = b.start(10).unwrap();
        assert!(a.grow_to(60));
        let mut c = b.start(10).unwrap();
        assert!(!c.grow_to(50), "60 + 50 is over 100");
        assert_eq!(b.used(), 60);
        assert!(c.grow_to(40));
        assert!(b.start(1).is_none(), "nothing left for a new message");
        drop(a);
        assert_eq!(b.used(), 40);
        c.release();
        assert_eq!(b.used(), 0);
        assert!(c.grow_to(100));
        drop(c);
        assert_eq!(b.used(), 0);
        assert!(DataBudget::unlimited().start(usize::MAX).is_some());
    }
}
