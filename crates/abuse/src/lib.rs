//! The abuse desk: "who sent this?" in seconds, and compromised accounts
//! stopped before the provider lands on a blocklist.
//!
//! - [`index`]: the trace index (sessions, messages, recipients and their
//!   outcomes) in SQLite, written by one thread as the server runs, with a
//!   retention; the lookups of `port25 trace`.
//! - [`feed`]: the tracing layer that feeds the index from the event
//!   catalogue (beside the metrics layer).
//! - [`signals`]: pure rules: a jump against the login's own history,
//!   the action each signal takes (tag, hold, lock); fixed memory per login.
//! - [`complaints`]: pure: a report (the report crate's ARF parser) matched
//!   to mail we really sent (our queue id in our Received header and the
//!   same Message-ID), the per-reporter rate limit.
//! - [`desk`]: the state (actions, signals with evidence, history), the
//!   abuse mailbox reader, what `port25 users explain|release` and
//!   `port25 queue held|release` read and change.
//!
//! It reads events and the index; it never sends mail (notices to the
//! operator are handed to the binary, which stores them).

pub mod complaints;
pub mod desk;
pub mod feed;
pub mod index;
pub mod signals;

pub use desk::{Config, Desk, Notice};

/// The maps touched for every message (per event, per round, per login):
/// foldhash, seeded per process, instead of SipHash. Their keys are ids
/// the server made (sessions, queue ids) or logins that authenticated.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
