//! port25's durable spool.
//!
//! [`record`] is the pure on-disk format; [`spool`] the group-committing
//! writer, the recovery after a crash and the per-batch progress log;
//! [`gauges`] what a spool holds, kept in memory for `/metrics`. The
//! scheduler for remote delivery (retries, expiry, DSN) builds on these.

pub mod gauges;
pub mod record;
pub mod spool;

pub use gauges::{Gauges, QueueStatus};
pub use record::SpooledMessage;
pub use spool::{BatchRef, DoneLog, PendingBatch, Spool, SpoolError};
