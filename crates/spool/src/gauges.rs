//! What is waiting in a spool, kept in memory as it changes: the committer
//! adds each batch it writes, the done logs take off finished recipients,
//! a removed or quarantined batch leaves. `/metrics` and the dashboard read
//! these figures; they never open a spool file, so a scrape costs the same
//! with ten batches waiting as with a million (it used to read and decode
//! every batch file per request).
//!
//! Per batch only its size and, per message, the arrival time and the count
//! of recipients left are kept (16 bytes a message), never contents.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStatus {
    pub batches: usize,
    pub messages: usize,
    /// Recipients not delivered yet.
    pub recipients: usize,
    /// Age in seconds of the oldest message with a recipient left.
    pub oldest_age: u64,
    pub bytes: u64,
    pub quarantined: usize,
}

/// One spool's figures; clones share them.
#[derive(Debug, Clone, Default)]
pub struct Gauges(Arc<Mutex<Inner>>);

#[derive(Debug, Default)]
struct Inner {
    batches: BTreeMap<u64, Batch>,
    quarantined: usize,
}

#[derive(Debug)]
struct Batch {
    bytes: u64,
    /// Per message: (received_at, recipients left).
    messages: Vec<(u64, u32)>,
}

impl Gauges {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A batch on disk: its file size and, per message, (received_at,
    /// recipients not done yet).
    pub(crate) fn add(&self, seq: u64, bytes: u64, messages: Vec<(u64, u32)>) {
        self.inner().batches.insert(seq, Batch { bytes, messages });
    }

    /// (message, recipient) pairs recorded as finished.
    pub(crate) fn finished(&self, seq: u64, finished: &[(usize, usize)]) {
        let mut inner = self.inner();
        let Some(batch) = inner.batches.get_mut(&seq) else { return };
        for (m, _) in finished {
            if let Some((_, left)) = batch.messages.get_mut(*m) {
                *left = left.saturating_sub(1);
            }
        }
    }

    pub(crate) fn remove(&self, seq: u64) {
        self.inner().batches.remove(&seq);
    }

    pub(crate) fn set_quarantined(&self, n: usize) {
        self.inner().quarantined = n;
    }

    pub(crate) fn quarantine(&self, seq: u64) {
        let mut inner = self.inner();
        inner.batches.remove(&seq);
        inner.quarantined += 1;
    }

    /// The figures now (`now`: seconds since the Unix epoch).
    pub fn status(&self, now: u64) -> QueueStatus {
        let inner = self.inner();
        let mut s =
            QueueStatus { batches: inner.batches.len(), quarantined: inner.quarantined, ..QueueStatus::default() };
        for b in inner.batches.values() {
            s.bytes += b.bytes;
            for (at, left) in &b.messages {
                if *left > 0 {
                    s.messages += 1;
                    s.recipients += *left as usize;
                    s.oldest_age = s.oldest_age.max(now.saturating_sub(*at));
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_is_left() {
        let g = Gauges::default();
        g.add(1, 300, vec![(100, 2), (900, 1)]);
        g.add(2, 50, vec![(950, 1)]);
        g.finished(1, &[(0, 0), (0, 1), (1, 0)]);
        assert_eq!(
            g.status(1000),
            QueueStatus { batches: 2, messages: 1, recipients: 1, oldest_age: 50, bytes: 350, quarantined: 0 }
        );
        g.remove(2);
        g.quarantine(1);
        assert_eq!(g.status(1000), QueueStatus { quarantined: 1, ..QueueStatus::default() });
        // Records for a batch already gone change nothing.
        g.finished(7, &[(0, 0)]);
        assert_eq!(g.status(1000).batches, 0);
    }
}
