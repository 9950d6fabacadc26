//! The outbound queue: mail for other domains, from the submission service
//! (and DSNs for remote senders), carried to the recipients' MXes on port
//! 25, or to a smarthost.
//!
//! Messages are stored in a second instance of the durable spool
//! (`data_dir/outbound`, same batch + done-log format and crash recovery as
//! the local one). On top of it:
//! - [`queue`]: the scheduler (per-recipient state, backoff with jitter,
//!   expiry, per-destination connection limits, connection reuse);
//! - [`journal`]: the writer thread for done logs, state and history;
//! - [`state`], [`reply`], [`backoff`], [`dsn`]: pure formats and rules;
//! - [`dns`]: MX/A/AAAA lookup with hickory-resolver, null MX;
//! - [`client`] and [`tls_policy`]: the SMTP client, STARTTLS policy.
//!
//! See docs/queue.md for the operator's view.

pub mod backoff;
pub mod client;
pub mod dns;
pub mod dsn;
pub mod journal;
pub mod queue;
pub mod reply;
pub mod settings;
pub mod state;
pub mod tls_policy;

pub use queue::run;
pub use settings::{Settings, Smarthost};

use port25_queue::{Spool, SpoolError, SpooledMessage};

/// Hands messages to the outbound queue: stored durably (fsynced) before
/// `enqueue` returns, then picked up by the scheduler.
#[derive(Clone)]
pub struct Enqueuer {
    spool: Spool,
}

impl Enqueuer {
    pub fn new(spool: Spool) -> Enqueuer {
        Enqueuer { spool }
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    pub async fn enqueue(&self, message: SpooledMessage) -> Result<(), SpoolError> {
        self.spool.commit(message).await
    }
}
