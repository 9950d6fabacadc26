//! The capture policy over the SMTP engine: the fake mail server a spammer
//! reaches through the bait. Every recipient is accepted, every message is
//! stored and answered `250 2.0.0 Ok: queued as <id>`, nothing is ever
//! delivered (this crate has no way to: it does not depend on the queue or
//! delivery crates). One policy value per session: it carries what the
//! proxy layer learnt (who, through which proxy, to which host).

use crate::probe;
use crate::Shared;
use port25_capture::Event;
use port25_engine::address::{ForwardPath, ReversePath};
use port25_engine::{Decision, Envelope, Hooks, Message, Reply, SessionInfo};
use port25_events as ev;
use port25_events::emit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct CapturePolicy {
    shared: Arc<Shared>,
    /// Template for this session's events (session, source, proxy...).
    base: Event,
    /// The host the client believes it reached, for the banner.
    host: String,
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
}

/// Paths as text without brackets; the null sender is "".
fn path_text(p: &ReversePath) -> String {
    p.to_string()
}

fn rcpt_text(p: &ForwardPath) -> String {
    p.to_string()
}

impl CapturePolicy {
    pub fn new(shared: Arc<Shared>, base: Event, host: String) -> CapturePolicy {
        CapturePolicy { shared, base, host, messages: AtomicU64::new(0), bytes: AtomicU64::new(0) }
    }

    async fn capture(&self, info: &SessionInfo, envelope: &Envelope, message: Message) -> Result<Reply, Reply> {
        let size = message.body().len() as u64;
        let total = self.bytes.fetch_add(size, Ordering::Relaxed) + size;
        if total > self.shared.config.limits.max_session_bytes {
            emit!(info, ev::SPAMPOT_LIMIT, session = %info.id, peer = %info.peer, reason = "max_session_bytes");
            let mut e = self.event(ev::SPAMPOT_LIMIT);
            e.reason = Some("max_session_bytes".into());
            self.shared.store.record(&e);
            return Err(Reply::new(421, "4.7.0", "Too much mail from you for now, closing connection"));
        }
        let earlier = self.shared.sources.message(info.peer.ip());
        let mut addresses: Vec<String> = self.shared.config.public_addresses.iter().map(|a| a.to_string()).collect();
        addresses.push(info.local.ip().to_string());
        let facts = probe::Facts {
            earlier_from_source: earlier,
            rcpts: envelope.rcpts.len(),
            body: message.body(),
            sensor_addresses: &addresses,
            sensor_port: info.local.port(),
        };
        let (is_probe, reasons) = probe::classify(&facts, self.shared.config.probe_first_messages);
        let id = message.id.clone();
        let stored = self.shared.store.store_body(message.into_body()).await.map_err(|e| {
            emit!(error, ev::SPAMPOT_STORE_FAILED, what = "body", error = %e);
            Reply::new(451, "4.3.0", "Temporary failure, please try again later")
        })?;
        let mut e = self.event(ev::SPAMPOT_MESSAGE);
        e.helo = info.helo.clone();
        e.mail_from = Some(path_text(&envelope.from));
        e.rcpt_to = envelope.rcpts.iter().map(rcpt_text).collect();
        e.message_id = Some(id.clone());
        e.digest = Some(stored.digest.clone());
        e.size = Some(stored.size);
        e.duplicate = Some(stored.duplicate);
        e.probe = Some(is_probe);
        e.probe_reasons = reasons.iter().map(|r| r.to_string()).collect();
        self.shared.store.record_durable(&e).await.map_err(|err| {
            emit!(error, ev::SPAMPOT_STORE_FAILED, what = "event log", error = %err);
            Reply::new(451, "4.3.0", "Temporary failure, please try again later")
        })?;
        self.messages.fetch_add(1, Ordering::Relaxed);
        emit!(info, ev::SPAMPOT_MESSAGE, session = %info.id, peer = %info.peer, id = %id, from = %envelope.from,
            rcpts = envelope.rcpts.len(), size = stored.size, digest = %stored.digest, probe = is_probe);
        Ok(Reply::owned(250, "2.0.0", format!("Ok: queued as {id}")))
    }

    /// An event of this session, stamped now.
    pub fn event(&self, id: &str) -> Event {
        let mut e = self.base.clone();
        e.event = id.to_owned();
        e.time = port25_time::rfc3339_millis(std::time::SystemTime::now());
        e
    }
}

/// The policy value is already one per session (it carries the proxy
/// layer's facts), so the engine's per-session state is unused.
impl Hooks for CapturePolicy {
    type State = ();

    async fn connect(&self, _info: &SessionInfo, _state: &mut ()) -> Decision {
        // Postfix's default greeting, without an enhanced code as Postfix sends it.
        Decision::AcceptWith(Reply {
            code: 220,
            enhanced: None,
            text: format!("{} ESMTP {}", self.host, self.shared.config.smtp_software).into(),
        })
    }

    async fn rcpt(&self, _info: &SessionInfo, _state: &mut (), _envelope: &Envelope, _to: &ForwardPath) -> Decision {
        Decision::Accept
    }

    async fn data(&self, info: &SessionInfo, _state: &mut (), envelope: &Envelope, message: Message) -> Decision {
        match self.capture(info, envelope, message).await {
            Ok(r) => Decision::AcceptWith(r),
            Err(r) if r.code == 421 => Decision::Disconnect(r),
            Err(r) => Decision::Reject(r),
        }
    }
}
