//! Where a DSN goes once built: to the original sender, by local delivery
//! when the sender's domain is one of ours, through the outbound queue
//! otherwise. Shared by the outbound queue (remote failures, expiry,
//! warnings) and by local delivery (a mailbox server that refuses a
//! recipient for good after the message was accepted): both must tell the
//! sender, RFC 5321 §6.1, and never a null sender.
//!
//! Two exceptions keep port25 from sending backscatter. A local sender's
//! DSN goes to the mailbox its address resolves to, as the MX resolves a
//! recipient (`alice+news@` to alice's), and only when that mailbox exists:
//! a forged local sender gets no mailbox made for it. And mail that came
//! unauthenticated on port 25 (its sender is whatever the client claimed)
//! gets no DSN after acceptance unless `[mx] bounce_after_accept` says so;
//! the MX refuses unknown recipients at RCPT, so this is rare (docs/mx.md).

use crate::dsn::{self, Kind, RcptReport};
use crate::Enqueuer;
use port25_events as ev;
use port25_events::emit;
use port25_spool::{Spool, SpooledMessage};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The DSN for `msg` as a message of its own: from the null sender to
/// `msg.from` (which must not be empty), its id the original's with "B"
/// (bounce) or "W" (warning) and a random suffix.
pub fn dsn_message(
    hostname: &str,
    msg: &SpooledMessage,
    kind: Kind,
    reports: &[RcptReport],
    now: u64,
) -> SpooledMessage {
    let content = dsn::build(hostname, msg, kind, reports, now);
    let tag = if matches!(kind, Kind::Failed) { "B" } else { "W" };
    SpooledMessage {
        id: format!("{}{tag}{:04X}", msg.id, fastrand::u16(..)),
        received_at: now,
        peer: "local".into(),
        helo: hostname.to_owned(),
        from: String::new(),
        rcpts: vec![msg.from.clone()],
        content,
        from_mx: false,
    }
}

pub type MailboxAnswer<'a> = Pin<Box<dyn Future<Output = Result<Option<String>, String>> + Send + 'a>>;

/// The mailbox a local sender's DSN is delivered to (the MX's answer in
/// `port25 serve`): `Ok(None)` when the address has none, `Err` when its
/// directory cannot tell now (the DSN is then tried again later).
pub trait LocalMailboxes: Send + Sync {
    fn mailbox_of<'a>(&'a self, sender: &'a str) -> MailboxAnswer<'a>;
}

/// Where DSNs are stored: the local spool for our own domains' senders,
/// the outbound queue for everyone else's.
#[derive(Clone)]
pub struct DsnStore {
    pub local_domains: Vec<String>,
    pub local: Spool,
    pub mailboxes: Arc<dyn LocalMailboxes>,
    pub outbound: Enqueuer,
    /// `[mx] bounce_after_accept`: DSNs for unauthenticated port-25 mail.
    pub bounce_after_accept: bool,
}

/// What became of a DSN.
enum Stored {
    Stored,
    /// Not sent, and never will be: why.
    Suppressed(&'static str),
}

impl DsnStore {
    /// Stores `dsn` durably (returns once it is fsynced).
    async fn store(&self, mut dsn: SpooledMessage) -> Result<Stored, String> {
        let to = dsn.rcpts.first().cloned().unwrap_or_default();
        let domain = crate::queue::domain_of(&to);
        if !self.local_domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
            return self.outbound.enqueue(dsn).await.map(|()| Stored::Stored).map_err(|e| e.to_string());
        }
        match self.mailboxes.mailbox_of(&to).await {
            Ok(Some(mailbox)) => {
                dsn.rcpts = vec![mailbox];
                self.local.commit(dsn).await.map(|()| Stored::Stored).map_err(|e| e.to_string())
            }
            Ok(None) => Ok(Stored::Suppressed("the sender is in a local domain but has no mailbox")),
            Err(why) => Err(format!("cannot tell whether the sender has a mailbox: {why}")),
        }
    }

    /// Stores the DSN about message `id` and logs it; `None` is the
    /// decision that none is due (RFC 5321 §6.1: never to a null
    /// reverse-path). Ok once the sender is told or need not be.
    pub async fn send(
        &self,
        id: &str,
        dsn: Option<SpooledMessage>,
        kind: &str,
        recipients: usize,
    ) -> Result<(), String> {
        let Some(dsn) = dsn else {
            emit!(info, ev::OUTBOUND_DSN, id = %id, to = "", kind = "none (null sender)", recipients);
            return Ok(());
        };
        let (dsn_id, to) = (dsn.id.clone(), dsn.rcpts[0].clone());
        match self.store(dsn).await {
            Ok(Stored::Stored) => {
                emit!(info, ev::OUTBOUND_DSN, id = %id, dsn = %dsn_id, to = %to, kind, recipients);
                Ok(())
            }
            Ok(Stored::Suppressed(reason)) => {
                emit!(warn, ev::OUTBOUND_DSN_SUPPRESSED, id = %id, to = %to, reason, recipients);
                Ok(())
            }
            Err(e) => {
                emit!(error, ev::OUTBOUND_DSN, id = %id, to = %to, kind, error = %e);
                Err(e)
            }
        }
    }
}

impl DsnStore {
    /// The bounce for recipients of `msg` that local delivery failed for
    /// good after the message was accepted (`failed`: recipient index and
    /// why, e.g. the mailbox server's "550 5.1.1 no such user"): one DSN
    /// to the sender, stored before Ok; none for a null sender, nor for
    /// unauthenticated port-25 mail unless `bounce_after_accept`.
    pub async fn bounce_local(
        &self,
        hostname: &str,
        msg: &SpooledMessage,
        failed: &[(usize, String)],
    ) -> Result<(), String> {
        if msg.from_mx && !self.bounce_after_accept && !msg.from.is_empty() {
            let reason = "unauthenticated port-25 mail and [mx] bounce_after_accept = false";
            emit!(warn, ev::OUTBOUND_DSN_SUPPRESSED, id = %msg.id, to = %msg.from, reason, recipients = failed.len());
            return Ok(());
        }
        let reports: Vec<RcptReport> = failed
            .iter()
            .map(|(r, why)| RcptReport {
                rcpt: msg.rcpts[*r].clone(),
                status: status_of_text(why),
                remote_mta: None,
                diagnostic: why.clone(),
            })
            .collect();
        let dsn = (!msg.from.is_empty())
            .then(|| dsn_message(hostname, msg, Kind::Failed, &reports, port25_time::unix_secs()));
        self.send(&msg.id, dsn, "failed", failed.len()).await
    }
}

/// The RFC 3463 status of a reply given as text ("550 5.1.1 ..."): its
/// enhanced code, else one from its basic code; 5.0.0 for a reason that is
/// not a reply at all (a mailbox name that cannot be made safe).
/// Read with the one reply parser, so "+12 x" is no reply (it was code 12).
fn status_of_text(why: &str) -> String {
    let line = [why.as_bytes(), b"\r\n"].concat();
    match port25_wire::reply::parse(&line) {
        Ok(Some((reply, _))) => dsn::status_of(reply.enhanced(), reply.code),
        _ => "5.0.0".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_from_a_mailbox_servers_reply_text() {
        assert_eq!(super::status_of_text("550 5.1.1 No such user"), "5.1.1");
        assert_eq!(super::status_of_text("552 Mailbox over quota"), "5.0.0");
        assert_eq!(super::status_of_text("no safe mailbox name for ../x@example.net"), "5.0.0");
        assert_eq!(super::status_of_text("+12 not a reply"), "5.0.0");
        assert_eq!(super::status_of_text("550"), "5.0.0");
    }
}
