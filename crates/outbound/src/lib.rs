//! The outbound queue: mail for other domains, from the submission service
//! (and DSNs for remote senders), carried to the recipients' MXes on port
//! 25, or to a smarthost.
//!
//! Messages are stored in a second instance of the durable spool
//! (`data_dir/outbound`, same batch + done-log format and crash recovery as
//! the local one). On top of it:
//! - [`queue`]: the scheduler (per-recipient state, backoff with jitter,
//!   expiry, DSNs, operator commands);
//! - `route`, `dest`, `connection`: a domain's MX addresses in order; the
//!   job queue and connection limit of each MX address, shared by every
//!   domain it serves; one connection task, which carries those jobs one
//!   after another and idles briefly for more (connection reuse);
//! - [`journal`]: the writer thread for done logs, state and history;
//! - [`state`], [`backoff`], [`dsn`]: pure formats and rules (replies are
//!   parsed by [`port25_wire::reply`]);
//! - [`dns`]: MX/A/AAAA lookup with hickory-resolver, null MX;
//! - [`targets`]: which MX addresses may be connected to (no private
//!   ranges unless allowed, never our own listeners);
//! - [`client`] and [`tls_policy`]: the SMTP client, STARTTLS policy;
//! - [`mta_sts`] and [`tls_rpt`]: recipient domains' MTA-STS policies
//!   (RFC 8461, fetched and cached) and the TLS-RPT reports (RFC 8460) of
//!   sessions under them (docs/outbound-tls.md).
//!
//! See docs/queue.md for the operator's view.

pub mod backoff;
pub mod bounce;
pub mod client;
mod connection;
pub mod control;
pub mod dane;
mod dest;
pub mod dkim;
pub mod dns;
pub mod dnssec;
pub mod dsn;
pub mod journal;
pub mod mta_sts;
pub mod queue;
mod route;
pub mod settings;
pub mod state;
pub mod targets;
pub mod tls_policy;
pub mod tls_rpt;

pub use queue::run;
pub use settings::{Settings, Smarthost};

use port25_spool::{Spool, SpoolError, SpooledMessage};

/// Hands messages to the outbound queue: DKIM-signed when the From:
/// domain has a key, stored durably (fsynced) before `enqueue` returns,
/// then picked up by the scheduler.
#[derive(Clone)]
pub struct Enqueuer {
    spool: Spool,
    dkim: std::sync::Arc<dkim::Dkim>,
}

impl Enqueuer {
    pub fn new(spool: Spool) -> Enqueuer {
        Enqueuer { spool, dkim: Default::default() }
    }

    pub fn with_dkim(spool: Spool, dkim: dkim::Dkim) -> Enqueuer {
        Enqueuer { spool, dkim: std::sync::Arc::new(dkim) }
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    pub async fn enqueue(&self, mut message: SpooledMessage) -> Result<(), SpoolError> {
        // DSNs (null sender) are ours, not the user's: never signed.
        if !self.dkim.is_empty() && !message.from.is_empty() {
            let dkim = self.dkim.clone();
            let (m, signed) = tokio::task::spawn_blocking(move || {
                let signed = dkim.sign(&message.content);
                (message, signed)
            })
            .await
            .map_err(|_| SpoolError::Stopped)?;
            message = m;
            match signed {
                Some(Ok(header)) => {
                    let mut content = header.into_bytes();
                    content.extend_from_slice(&message.content);
                    message.content = content;
                }
                // Sent unsigned rather than not at all; the event says why.
                Some(Err(e)) => {
                    port25_events::emit!(error, port25_events::OUTBOUND_DKIM_FAILED, id = %message.id, error = %e)
                }
                None => {}
            }
        }
        self.spool.commit(message).await
    }
}
