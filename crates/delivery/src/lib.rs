//! Delivery of spooled mail.
//!
//! Local delivery: [`maildir`] (the embedded default) and [`lmtp`]
//! (hand-off to an existing mailbox server such as Dovecot). [`local`] is
//! the loop that takes committed batches from the spool, delivers each
//! recipient, records progress in the batch's done log, retries what was
//! deferred (without holding a slot or the batch in memory while it waits)
//! and has the sender told (a DSN, through the [`local::Bounce`] hook) of
//! what failed for good or stayed deferred past its lifetime. Remote delivery is the outbound crate's.

pub mod lmtp;
pub mod local;
pub mod maildir;
pub mod outcome;

pub use local::{run, Retry, Target};
pub use outcome::RcptOutcome;
