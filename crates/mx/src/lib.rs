//! The MX policy: port 25 as transport only.
//!
//! Mail is accepted for the configured local domains, and there only for
//! recipients that exist ([`directory`]: the `[mx] recipients` lists,
//! `port25 users` accounts, the LMTP server's answer, or a domain the
//! operator made a catch-all); every other recipient is refused as
//! relaying, whatever form it takes: another domain, an address literal
//! (even `[127.0.0.1]`), a source route, a `%` or `!` routing hack, or a
//! quoted local part that hides one. No AUTH is offered, so nothing can
//! unlock relaying here: submission is a different listener and policy.
//!
//! The mailbox an address resolves to (lower case, extension after the
//! delimiter removed) is what is judged, never the raw local part: what
//! RCPT accepts is exactly what local delivery will deliver, so a message
//! accepted here does not come back later as a bounce to a sender that may
//! be forged (backscatter).

pub mod auth;
pub mod directory;
pub mod greylist;

use directory::{AnyOf, Exists, Listed, RecipientDirectory};
use port25_engine::address::{Domain, ForwardPath, Mailbox};
use port25_engine::{Decision, Envelope, Hooks, Message, Reply, SessionInfo};
use port25_events as ev;
use port25_events::emit;
use port25_spool::{Spool, SpooledMessage};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct MxConfig {
    /// Local domains, any case.
    pub domains: Vec<String>,
    /// Addresses known to exist: `[mx] recipients` and `recipients_file`.
    /// More directories: [`MxPolicy::with_directory`].
    pub recipients: Option<Vec<String>>,
    /// Address extension separator ("user+tag@..." delivers to "user").
    pub recipient_delimiter: Option<char>,
    /// Local domains where any plain local part is accepted (one mailbox
    /// each): only where the operator wrote so (`[mx] catch_all`).
    pub catch_all: Vec<String>,
    /// Local delivery makes a directory per mailbox (Maildir): a mailbox
    /// whose name is not a plain local part could never be delivered, so
    /// it is refused at RCPT, whatever a directory says.
    pub plain_names_only: bool,
}

pub struct MxPolicy {
    domains: Vec<String>,
    catch_all: Vec<String>,
    plain_names_only: bool,
    directory: AnyOf,
    delimiter: Option<char>,
    spool: Spool,
    /// Sender authentication at the end of DATA ([`auth`]).
    auth: Option<Arc<auth::Authenticator>>,
    /// Greylisting at RCPT ([`greylist`]).
    greylist: Option<Arc<greylist::Greylist>>,
}

const RELAY_DENIED: &str = "Relay access denied: this MX accepts mail only for its own domains";

fn relay_denied(to: &ForwardPath, why: &str) -> Decision {
    Decision::Reject(Reply::owned(554, "5.7.1", format!("<{to}>: {RELAY_DENIED} ({why})")))
}

fn user_unknown(to: &ForwardPath) -> Decision {
    Decision::Reject(Reply::owned(550, "5.1.1", format!("<{to}>: Recipient address rejected: user unknown")))
}

/// Characters allowed in a local part of a catch-all domain (and, with
/// Maildir, of every mailbox): what can safely become a mailbox directory
/// (crates/delivery/src/maildir.rs accepts the same).
fn plain_local_part(local: &str) -> bool {
    // Non-ASCII only as letters and digits: no control, format (bidi
    // overrides, zero-width), separator (U+2028) or lone combining marks,
    // which would make names that look alike or break a listing.
    !local.starts_with('.')
        && local.len() <= 255
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-=".contains(c) || (!c.is_ascii() && c.is_alphanumeric()))
}

impl MxPolicy {
    pub fn new(config: &MxConfig, spool: Spool) -> MxPolicy {
        MxPolicy {
            domains: config.domains.iter().map(|d| d.to_lowercase()).collect(),
            catch_all: config.catch_all.iter().map(|d| d.to_lowercase()).collect(),
            plain_names_only: config.plain_names_only,
            directory: AnyOf(
                config.recipients.iter().map(|r| Arc::new(Listed::new(r)) as Arc<dyn RecipientDirectory>).collect(),
            ),
            delimiter: config.recipient_delimiter,
            spool,
            auth: None,
            greylist: None,
        }
    }

    /// Checks SPF, DKIM, DMARC and iprev of every message at the end of
    /// DATA and adds our Authentication-Results field ([`auth`]).
    pub fn with_auth(mut self, auth: Arc<auth::Authenticator>) -> MxPolicy {
        self.auth = Some(auth);
        self
    }

    /// Greylists recipients at RCPT ([`greylist`]).
    pub fn with_greylist(mut self, greylist: Arc<greylist::Greylist>) -> MxPolicy {
        self.greylist = Some(greylist);
        self
    }

    /// Adds a directory asked at RCPT after the configured lists (accounts,
    /// the LMTP server): a recipient exists when any directory knows it.
    pub fn with_directory(mut self, directory: Arc<dyn RecipientDirectory>) -> MxPolicy {
        self.directory.0.push(directory);
        self
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
            ForwardPath::Mailbox { mailbox, .. } => self.resolve_parts(&mailbox.local, &mailbox.domain.to_string()),
        }
    }

    fn resolve_parts(&self, local: &str, domain: &str) -> String {
        let local = local.to_lowercase();
        let base = match self.delimiter {
            Some(d) => local.split(d).next().unwrap_or(&local).to_owned(),
            None => local,
        };
        format!("{base}@{}", domain.to_lowercase())
    }

    /// Whether a resolved address has a mailbox: postmaster always with
    /// Maildir delivery (RFC 5321 §4.5.1), as the LMTP server says with LMTP; never an empty base (`+tag@`), any plain local part of
    /// a catch-all domain, else what the directories say.
    async fn exists(&self, address: &str) -> Exists {
        let Some((base, domain)) = address.rsplit_once('@') else { return Exists::No };
        if base == "postmaster" {
            // A Maildir makes the one postmaster/ mailbox per domain; a
            // mailbox server is asked like for anyone (it must have the
            // mailbox or an alias), or the mail would be lost after a 250.
            return if self.plain_names_only { Exists::Yes } else { self.directory.exists(address).await };
        }
        if base.is_empty() || (self.plain_names_only && !plain_local_part(base)) {
            return Exists::No;
        }
        if self.catch_all.iter().any(|d| d == domain) {
            return if plain_local_part(base) { Exists::Yes } else { Exists::No };
        }
        self.directory.exists(address).await
    }

    /// The mailbox a DSN to `sender` (an address in a local domain, as
    /// written in MAIL FROM) is delivered to, resolved as RCPT would:
    /// `Ok(None)` when it has none (a forged local sender gets no mailbox
    /// made for it), `Err` when the directory cannot tell now.
    pub async fn mailbox_of(&self, sender: &str) -> Result<Option<String>, String> {
        let Some((local, domain)) = sender.rsplit_once('@') else { return Ok(None) };
        if !self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
            return Ok(None);
        }
        let address = self.resolve_parts(local, domain);
        match self.exists(&address).await {
            Exists::Yes => Ok(Some(address)),
            Exists::No => Ok(None),
            Exists::CannotTell(why) => Err(why),
        }
    }

    /// The verdict on a recipient: local and deliverable, refused as
    /// relaying or unknown, or 450 while its directory cannot tell.
    /// Submission uses it for its local recipients.
    pub async fn check(&self, to: &ForwardPath) -> Decision {
        let (mailbox, source_route): (&Mailbox, _) = match to {
            // Bare <Postmaster> is the primary domain's postmaster, judged
            // as that address is.
            ForwardPath::Postmaster => return self.verdict(to).await,
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
        self.verdict(to).await
    }

    /// Accept, 550 or 450 for a local recipient, as its resolved mailbox
    /// exists, does not or cannot be told now.
    async fn verdict(&self, to: &ForwardPath) -> Decision {
        match self.exists(&self.resolve(to)).await {
            Exists::Yes => Decision::Accept,
            Exists::No => user_unknown(to),
            Exists::CannotTell(why) => {
                emit!(warn, ev::MX_VERIFY_FAILED, to = %to, reason = %why);
                let text = format!("<{to}>: Recipient address rejected: unverified address: the mailbox server cannot tell now; try again later");
                Decision::Reject(Reply::owned(450, "4.1.1", text))
            }
        }
    }
}

/// AUTH on port 25 when legacy submission is off: tell the user what to do.
pub const USE_SUBMISSION: Reply = Reply::new(
    503,
    "5.5.1",
    "Port 25 is for mail between servers and offers no AUTH: set your mail client to port 587 (STARTTLS) or 465 (SSL/TLS) with your login",
);

/// The MX decides from its configuration and directories alone: it keeps
/// no state per session (a screening policy composed with it keeps its own).
impl Hooks for MxPolicy {
    type State = ();

    fn auth_refused(&self, _info: &SessionInfo) -> Reply {
        USE_SUBMISSION
    }

    async fn rcpt(&self, info: &SessionInfo, _state: &mut (), envelope: &Envelope, to: &ForwardPath) -> Decision {
        let decision = self.check(to).await;
        match (&self.greylist, &decision) {
            (Some(greylist), Decision::Accept) => self.greylisted(greylist, info, envelope, to).await,
            _ => decision,
        }
    }

    async fn data(&self, info: &SessionInfo, _state: &mut (), envelope: &Envelope, message: Message) -> Decision {
        let id = message.id.clone();
        let content = match &self.auth {
            Some(auth) => match authenticate(auth, info, envelope, message).await {
                Ok(content) => content,
                Err(refused) => return refused,
            },
            // Received header and message are already one buffer: no copy.
            None => message.into_content(),
        };
        self.spool(info, envelope, id, content, true).await
    }
}

/// The SMTP view of a session for the checks: canonical client address,
/// HELO name, MAIL FROM without brackets.
fn sender_of<'a>(info: &'a SessionInfo, from: &'a str) -> auth::Sender<'a> {
    auth::Sender { ip: info.peer.ip().to_canonical(), helo: info.helo.as_deref().unwrap_or(""), mail_from: from }
}

/// Runs the checks on a message; `Ok` is the content to store (our
/// Received field, our Authentication-Results field, the message without
/// fields that claim our authserv-id), `Err` the refusal.
async fn authenticate(
    auth: &auth::Authenticator,
    info: &SessionInfo,
    envelope: &Envelope,
    message: Message,
) -> Result<Vec<u8>, Decision> {
    let from = envelope.from.to_string();
    {
        let sender = sender_of(info, &from);
        let report = auth.check(&sender, message.body()).await;
        let results: Vec<String> =
            report.checks.iter().map(|c| format!("{}={}", c.method, c.outcome.as_str())).collect();
        let results = results.join(" ");
        if let auth::Verdict::Reject(why) = &report.verdict {
            emit!(info, ev::MX_AUTH_REJECTED, session = %info.id, peer = %info.peer, from = %from, results = %results, reason = %why);
            let text = format!("Message rejected: {why}");
            return Err(Decision::Reject(Reply::owned(550, "5.7.1", text)));
        }
        let tag = match &report.verdict {
            auth::Verdict::Tag(why) => Some(why.clone()),
            _ => None,
        };
        emit!(info, ev::MX_AUTH, session = %info.id, peer = %info.peer, from = %from, results = %results, tagged = tag.is_some());
        let header_len = message.received_header().len();
        let mut content = message.into_content();
        let ours: Vec<std::ops::Range<usize>> =
            auth::header::strip_ours(&content[header_len..], &auth.settings().authserv_id)
                .into_iter()
                .map(|r| r.start + header_len..r.end + header_len)
                .collect();
        auth::header::remove_ranges(&mut content, &ours);
        let mut fields = auth.header(&report);
        if let Some(why) = tag {
            fields.push_str(&format!("X-Port25-Tag: {}\r\n", auth::header::value(&why)));
        }
        content.splice(header_len..header_len, fields.into_bytes());
        Ok(content)
    }
}

impl MxPolicy {
    async fn greylisted(
        &self,
        greylist: &greylist::Greylist,
        info: &SessionInfo,
        envelope: &Envelope,
        to: &ForwardPath,
    ) -> Decision {
        let from = envelope.from.to_string();
        let rcpt = self.resolve(to);
        match greylist.check(&sender_of(info, &from), &rcpt).await {
            greylist::Answer::Pass(why) => {
                emit!(info, ev::MX_GREYLIST, session = %info.id, peer = %info.peer, from = %from, to = %rcpt, action = "pass", reason = %why);
                Decision::Accept
            }
            greylist::Answer::Defer(secs) => {
                emit!(info, ev::MX_GREYLIST, session = %info.id, peer = %info.peer, from = %from, to = %rcpt, action = "defer", reason = %format!("{secs}s to wait"));
                let text = format!("<{to}>: Greylisted: this server delays mail from new senders; please try again in {secs} seconds (RFC 6647)");
                Decision::Reject(Reply::owned(451, "4.7.1", text))
            }
            greylist::Answer::Error(why) => {
                emit!(warn, ev::MX_GREYLIST, session = %info.id, peer = %info.peer, from = %from, to = %rcpt, action = "error", reason = %why);
                Decision::Reject(Reply::owned(
                    451,
                    "4.3.0",
                    format!("<{to}>: Temporary local problem; please try again later"),
                ))
            }
        }
    }
}

impl MxPolicy {
    /// Commits a message for local delivery (fsync'ed before it returns
    /// `Accept`); shared with submission, whose local recipients go the
    /// same way.
    pub async fn store(&self, info: &SessionInfo, envelope: &Envelope, id: String, content: Vec<u8>) -> Decision {
        self.spool(info, envelope, id, content, false).await
    }

    /// `from_mx`: unauthenticated port-25 mail, whose sender is unverified.
    async fn spool(
        &self,
        info: &SessionInfo,
        envelope: &Envelope,
        id: String,
        content: Vec<u8>,
        from_mx: bool,
    ) -> Decision {
        let mut rcpts: Vec<String> = Vec::with_capacity(envelope.rcpts.len());
        for r in &envelope.rcpts {
            let a = self.resolve(r);
            if !rcpts.contains(&a) {
                rcpts.push(a);
            }
        }
        let spooled = SpooledMessage {
            id,
            received_at: port25_time::unix_secs(),
            peer: info.peer.to_string(),
            helo: info.helo.clone().unwrap_or_default(),
            from: envelope.from.to_string(),
            rcpts,
            content,
            from_mx,
        };
        match self.spool.commit(spooled).await {
            Ok(()) => Decision::Accept,
            // The spool event says what failed; the client only learns to retry.
            Err(_) => Decision::Reject(port25_engine::reply::std_replies::LOCAL_ERROR),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn catch_all_names_are_letters_digits_and_a_few_marks() {
        for ok in ["alice", "a.b_c+d-e=f", "\u{e9}lise", "\u{4e2d}\u{6587}", "x1"] {
            assert!(plain_local_part(ok), "{ok:?}");
        }
        // Control, format (bidi override, zero-width, BOM), separators, a
        // lone combining mark: names that look alike or break a listing.
        for bad in [
            ".a",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{202e}b",
            "a\u{200b}b",
            "\u{feff}a",
            "\u{301}",
            "a b",
            "a/b",
            "a\\b",
            "",
        ] {
            assert!(!plain_local_part(bad) || bad.is_empty(), "{bad:?}");
        }
    }

    use super::directory::Answer;
    use super::*;
    use port25_engine::address::parse_forward_path;

    /// Knows nobody, and cannot tell for "down@...": a mailbox server.
    struct Server;
    impl RecipientDirectory for Server {
        fn exists<'a>(&'a self, address: &'a str) -> Answer<'a> {
            let down = address.starts_with("down@");
            Box::pin(async move {
                if down {
                    Exists::CannotTell("connection refused".into())
                } else {
                    Exists::No
                }
            })
        }
    }

    fn policy(dir: &std::path::Path, delimiter: char) -> MxPolicy {
        let (spool, _) =
            Spool::open(dir, tokio::sync::mpsc::unbounded_channel().0, port25_spool::Gauges::default()).unwrap();
        let config = MxConfig {
            domains: vec!["example.net".into(), "open.example".into()],
            recipients: Some(vec!["alice@example.net".into()]),
            recipient_delimiter: Some(delimiter),
            catch_all: vec!["open.example".into()],
            plain_names_only: false,
        };
        MxPolicy::new(&config, spool).with_directory(Arc::new(Server))
    }

    fn code(mx: &MxPolicy, rt: &tokio::runtime::Runtime, to: &str) -> u16 {
        match rt.block_on(mx.check(&parse_forward_path(to).unwrap())) {
            Decision::Accept | Decision::AcceptWith(_) => 250,
            Decision::Reject(r) | Decision::Disconnect(r) => r.code,
        }
    }

    #[test]
    fn only_mailboxes_that_exist_are_accepted_judged_after_the_delimiter() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mx = policy(dir.path(), '+');
        let cases = [
            ("alice@example.net", 250),
            ("Alice+news@EXAMPLE.net", 250),
            ("alice+@example.net", 250),
            ("+a@example.net", 550),
            ("+@example.net", 550),
            ("+alice@example.net", 550),
            ("bob@example.net", 550),
            ("root@example.net", 550),
            ("admin@example.net", 550),
            ("bob+alice@example.net", 550),
            ("down@example.net", 450),
            // A mailbox server is asked about postmaster too (this one has none).
            ("postmaster@example.net", 550),
            ("Postmaster", 550),
            ("anyone@open.example", 250),
            ("+x@open.example", 550),
            ("a/b@open.example", 550),
            ("alice@elsewhere.example", 554),
        ];
        for (to, want) in cases {
            assert_eq!(code(&mx, &rt, to), want, "{to}");
        }
        let mx = policy(dir.path(), '-');
        assert_eq!(code(&mx, &rt, "-x@example.net"), 550);
        // With Maildir delivery postmaster always has its one mailbox.
        let (spool, _) = Spool::open(
            &dir.path().join("m"),
            tokio::sync::mpsc::unbounded_channel().0,
            port25_spool::Gauges::default(),
        )
        .unwrap();
        let config = MxConfig {
            domains: vec!["example.net".into()],
            recipients: None,
            recipient_delimiter: None,
            catch_all: vec![],
            plain_names_only: true,
        };
        let maildir = MxPolicy::new(&config, spool).with_directory(Arc::new(Server));
        assert_eq!(code(&maildir, &rt, "postmaster@example.net"), 250);
        assert_eq!(code(&maildir, &rt, "Postmaster"), 250);
        assert_eq!(code(&mx, &rt, "alice-x@example.net"), 250);
        assert_eq!(code(&mx, &rt, "alice+x@example.net"), 550, "only the configured delimiter");

        // With Maildir, a listed mailbox that cannot be a directory name is
        // refused now rather than failing at delivery.
        let (spool, _) =
            Spool::open(dir.path(), tokio::sync::mpsc::unbounded_channel().0, port25_spool::Gauges::default()).unwrap();
        let config = MxConfig {
            domains: vec!["example.net".into()],
            recipients: Some(vec!["o/brien@example.net".into(), "ok@example.net".into()]),
            recipient_delimiter: None,
            catch_all: vec![],
            plain_names_only: true,
        };
        let mx = MxPolicy::new(&config, spool);
        assert_eq!(code(&mx, &rt, "o/brien@example.net"), 550);
        assert_eq!(code(&mx, &rt, "ok@example.net"), 250);
    }

    #[test]
    fn a_local_senders_mailbox_is_resolved_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mx = policy(dir.path(), '+');
        let of = |s: &str| rt.block_on(mx.mailbox_of(s));
        assert_eq!(of("Alice+news@Example.NET"), Ok(Some("alice@example.net".into())));
        assert_eq!(of("forged@example.net"), Ok(None));
        assert_eq!(of("+x@example.net"), Ok(None));
        assert_eq!(of("someone@remote.example"), Ok(None));
        assert!(of("down@example.net").is_err());
    }
}
