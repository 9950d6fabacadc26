//! port25's durable spool.
//!
//! [`record`] is the pure on-disk format; [`scan`] the one reader of a
//! spool's files (read-only: recovery, delivery and `port25 queue` use
//! it); [`spool`] the group-committing writer, the recovery after a crash
//! and the per-batch progress log;
//! [`gauges`] what a spool holds, kept in memory for `/metrics`.
//! The group-commit loop itself is port25_groupcommit, shared with the
//! outbound journal and the capture log (which must not depend on this
//! crate: the spampot cannot reach the spool).
//! [`smtputf8`] whether a spooled message needs SMTPUTF8 on its next hop. The
//! scheduler for remote delivery (retries, expiry, DSN) builds on these.

pub mod gauges;
pub mod record;
pub mod scan;
pub mod smtputf8;
pub mod spool;

pub use gauges::{Gauges, QueueStatus};
pub use record::SpooledMessage;
pub use scan::Scan;
pub use spool::{BatchRef, DoneLog, PendingBatch, Spool, SpoolError};
