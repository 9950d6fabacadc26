//! Delivery of spooled mail.
//!
//! Local delivery for now: [`maildir`] (the embedded default) and [`lmtp`]
//! (hand-off to an existing mailbox server such as Dovecot). [`local`] is
//! the loop that takes committed batches from the spool, delivers each
//! recipient, records progress in the batch's done log and retries what was
//! deferred. Remote delivery over SMTP (DNS MX, STARTTLS, DSN) comes next
//! and shares the loop's bookkeeping.

pub mod lmtp;
pub mod local;
pub mod maildir;
pub mod outcome;

pub use local::{run, Target};
pub use outcome::RcptOutcome;
