//! The MX policy: port 25 as transport only.
//!
//! Mail is accepted for the configured local domains (and, when a recipient
//! list is given, only for its addresses); every other recipient is refused
//! as relaying, whatever form it takes: another domain, an address literal
//! (even `[127.0.0.1]`), a source route, a `%` or `!` routing hack, or a
//! quoted local part that hides one. No AUTH is offered, so nothing can
//! unlock relaying here: submission is a different listener and policy.

use port25_engine::address::{Domain, ForwardPath, Mailbox};
use port25_engine::{Decision, Envelope, Hooks, Message, Reply, SessionInfo};
use port25_queue::{Spool, SpooledMessage};
use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct MxConfig {
    /// Local domains, any case.
    pub domains: Vec<String>,
    /// When set, only these addresses (plus postmaster) are accepted.
    pub recipients: Option<Vec<String>>,
    /// Address extension separator ("user+tag@..." delivers to "user").
    pub recipient_delimiter: Option<char>,
}

pub struct MxPolicy {
    domains: Vec<String>,
    recipients: Option<HashSet<String>>,
    delimiter: Option<char>,
    spool: Spool,
}

const RELAY_DENIED: &str = "Relay access denied: this MX accepts mail only for its own domains";

fn relay_denied(to: &ForwardPath, why: &str) -> Decision {
    Decision::Reject(Reply::owned(554, "5.7.1", format!("<{to}>: {RELAY_DENIED} ({why})")))
}

/// Characters allowed in a local part when no recipient list is configured
/// (catch-all per domain): what can safely become a mailbox directory.
fn plain_local_part(local: &str) -> bool {
    !local.starts_with('.') && local.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-=".contains(&b) || b >= 0x80)
}

impl MxPolicy {
    pub fn new(config: &MxConfig, spool: Spool) -> MxPolicy {
        MxPolicy {
            domains: config.domains.iter().map(|d| d.to_lowercase()).collect(),
            recipients: config.recipients.as_ref().map(|r| r.iter().map(|a| a.to_lowercase()).collect()),
            delimiter: config.recipient_delimiter,
            spool,
        }
    }

    fn primary_domain(&self) -> &str {
        self.domains.first().map(String::as_str).unwrap_or("localhost")
    }

    pub fn is_local(&self, domain: &Domain) -> bool {
        self.domains.iter().any(|d| domain.eq_name(d))
    }

    /// The mailbox a recipient is delivered to: lower case, extension removed.
    pub fn resolve(&self, to: &ForwardPath) -> String {
        match to {
            ForwardPath::Postmaster => format!("postmaster@{}", self.primary_domain()),
            ForwardPath::Mailbox { mailbox, .. } => {
                let local = mailbox.local.to_lowercase();
                let base = match self.delimiter {
                    Some(d) => local.split(d).next().unwrap_or(&local).to_owned(),
                    None => local,
                };
                format!("{base}@{}", mailbox.domain.to_string().to_lowercase())
            }
        }
    }

    /// The verdict on a recipient: local and deliverable, or refused as
    /// relaying or unknown. Submission uses it for its local recipients.
    pub fn check(&self, to: &ForwardPath) -> Decision {
        let (mailbox, source_route): (&Mailbox, _) = match to {
            ForwardPath::Postmaster => return Decision::Accept,
            ForwardPath::Mailbox { mailbox, source_route } => (mailbox, source_route),
        };
        if source_route.is_some() {
            return relay_denied(to, "source routes are not accepted");
        }
        if matches!(mailbox.domain, Domain::Literal(_)) {
            return relay_denied(to, "address literals are not local");
        }
        if !self.is_local(&mailbox.domain) {
            return relay_denied(to, "not a local domain");
        }
        if mailbox.quoted || mailbox.local.contains(['%', '!', '@', ':']) {
            return relay_denied(to, "routing characters in the local part are not accepted");
        }
        let address = self.resolve(to);
        if address.starts_with("postmaster@") {
            return Decision::Accept;
        }
        let known = match &self.recipients {
            Some(list) => list.contains(&address),
            None => plain_local_part(&mailbox.local),
        };
        if known {
            Decision::Accept
        } else {
            Decision::Reject(Reply::owned(550, "5.1.1", format!("<{to}>: Recipient address rejected: user unknown")))
        }
    }
}

/// AUTH on port 25 when legacy submission is off: tell the user what to do.
pub const USE_SUBMISSION: Reply = Reply::new(
    503,
    "5.5.1",
    "Port 25 is for mail between servers and offers no AUTH: set your mail client to port 587 (STARTTLS) or 465 (SSL/TLS) with your login",
);

impl Hooks for MxPolicy {
    fn auth_refused(&self, _info: &SessionInfo) -> Reply {
        USE_SUBMISSION
    }

    async fn rcpt(&self, _info: &SessionInfo, _envelope: &Envelope, to: &ForwardPath) -> Decision {
        self.check(to)
    }

    async fn data(&self, info: &SessionInfo, envelope: &Envelope, message: Message) -> Decision {
        let id = message.id.clone();
        // Received header and message are already one buffer: no copy.
        self.store(info, envelope, id, message.into_content()).await
    }
}

impl MxPolicy {
    /// Commits a message for local delivery (fsync'ed before it returns
    /// `Accept`); shared with submission, whose local recipients go the
    /// same way.
    pub async fn store(&self, info: &SessionInfo, envelope: &Envelope, id: String, content: Vec<u8>) -> Decision {
        let mut rcpts: Vec<String> = Vec::with_capacity(envelope.rcpts.len());
        for r in &envelope.rcpts {
            let a = self.resolve(r);
            if !rcpts.contains(&a) {
                rcpts.push(a);
            }
        }
        let spooled = SpooledMessage {
            id,
            received_at: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            peer: info.peer.to_string(),
            helo: info.helo.clone().unwrap_or_default(),
            from: envelope.from.to_string(),
            rcpts,
            content,
        };
        match self.spool.commit(spooled).await {
            Ok(()) => Decision::Accept,
            // The spool event says what failed; the client only learns to retry.
            Err(_) => Decision::Reject(port25_engine::reply::std_replies::LOCAL_ERROR),
        }
    }
}
