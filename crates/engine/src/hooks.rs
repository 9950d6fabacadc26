//! The one seam between the engine and a policy (mx, submission, spampot).
//!
//! The engine owns the protocol: framing, state, limits, replies to syntax
//! errors. A policy owns the decisions: who may connect, which recipients
//! are accepted, what happens to a message. Anything a policy does not
//! accept is refused; there is no default that relays.

use crate::address::{ForwardPath, ReversePath};
use crate::command::MailParams;
use crate::reply::Reply;
use crate::sasl::Credentials;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
    /// SHA-256 of the client's certificate, when it sent one that the
    /// listener's device CA verified (see [`crate::device_tls`]).
    pub client_cert: Option<String>,
}

/// What the engine knows about a session; handed to every hook.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Unique id, also the prefix of every message id from this session.
    pub id: String,
    pub listener: Arc<str>,
    /// The client: the socket peer, or the address a PROXY header named.
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Set when a PROXY header replaced the socket addresses.
    pub proxied_by: Option<SocketAddr>,
    pub helo: Option<String>,
    pub esmtp: bool,
    pub tls: Option<TlsInfo>,
    /// The login the client authenticated as (SMTP AUTH), if any; as
    /// the policy's [`Hooks::authenticate`] accepted it.
    pub auth: Option<String>,
}

impl SessionInfo {
    /// A session that has just connected: nothing said, no TLS, no login.
    /// (One constructor, so a field added later has one place to start.)
    pub fn new(id: String, listener: Arc<str>, peer: SocketAddr, local: SocketAddr) -> SessionInfo {
        SessionInfo { id, listener, peer, local, proxied_by: None, helo: None, esmtp: false, tls: None, auth: None }
    }
}

/// Whether a listener's policy offers SMTP AUTH (RFC 4954).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOffer {
    /// AUTH is answered 503 (the MX, the spampot).
    No,
    /// Offered once TLS is active; before it AUTH gets 538 5.7.11 (RFC 8314:
    /// a password never crosses the network in clear).
    AfterTls,
    /// Offered with or without TLS: only for tests and trusted loopback.
    Always,
}

#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: ReversePath,
    pub params: MailParams,
    pub rcpts: Vec<ForwardPath>,
}

/// A received message: the trace header the engine wrote, then the message
/// exactly as received (dot-stuffing removed, CRLF line ends), in one
/// buffer. The engine writes the header before reading the message into
/// the same buffer, so storing header and message never copies the
/// message (it may be 25 MiB, times every session in DATA).
#[derive(Debug)]
pub struct Message {
    pub id: String,
    content: Vec<u8>,
    header_len: usize,
}

impl Message {
    /// `content` is the trace header (its first `header_len` bytes), then
    /// the message.
    pub fn new(id: String, content: Vec<u8>, header_len: usize) -> Message {
        assert!(header_len <= content.len(), "the header is part of the content");
        Message { id, content, header_len }
    }

    pub fn received_header(&self) -> &[u8] {
        &self.content[..self.header_len]
    }

    /// The message as the client sent it, without our trace header.
    pub fn body(&self) -> &[u8] {
        &self.content[self.header_len..]
    }

    /// Adds header fields right after the trace header (submission's
    /// Message-ID and Date). The message moves within its buffer; it is
    /// copied to a new one only when the buffer has no room left.
    pub fn insert_after_received(&mut self, fields: &[u8]) {
        self.content.splice(self.header_len..self.header_len, fields.iter().copied());
    }

    /// Trace header and message: what is stored.
    pub fn into_content(self) -> Vec<u8> {
        self.content
    }

    /// The message without the trace header (the spampot stores what the
    /// client sent); the header is removed in place.
    pub fn into_body(mut self) -> Vec<u8> {
        self.content.drain(..self.header_len);
        self.content
    }

    pub fn len(&self) -> usize {
        self.content.len()
    }

    pub fn is_empty(&self) -> bool {
        self.content.is_empty()
    }
}

/// A policy's answer at one stage. The engine honours every variant at
/// every stage ([`Hooks`] says what each means where):
///
/// | stage | `Accept` | `AcceptWith(r)` | `Reject(r)` | `Disconnect(r)` |
/// |---|---|---|---|---|
/// | connect | `220` banner | `r` is the banner | `r`, then `503` to every command but QUIT (RFC 5321 §3.1) | `r`, close |
/// | EHLO/HELO | `250` and the extensions | `r`'s text opens the `250` reply, the extensions follow | `r`, no HELO learnt | `r`, close |
/// | AUTH | `235` | `r` | `r` | `r`, close |
/// | MAIL, RCPT | `250` | `r` | `r`, the command had no effect | `r`, close |
/// | DATA | `250 … queued as <id>` | `r` | `r` | `r`, close |
///
/// An accepting reply must be 2xx and a refusing one 4xx or 5xx: the
/// client must see what the engine did. A 2xx refusal is answered `451
/// 4.3.0` instead (a refusal never looks like a success); a non-2xx
/// acceptance gets the stage's standard reply. A refusal with code 421
/// closes the session, as that code says it does (RFC 5321 §4.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Accept with the engine's standard reply.
    Accept,
    /// Accept with this (2xx) reply.
    AcceptWith(Reply),
    /// Refuse with this (4xx/5xx) reply; the session goes on.
    Reject(Reply),
    /// Refuse with this reply (421 is the one RFC 5321 gives for it) and
    /// close the connection.
    Disconnect(Reply),
}

/// What the engine does with a [`Decision`], its replies made consistent
/// with it (see the table on [`Decision`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accepted; `Some` replaces the stage's standard reply.
    Accept(Option<Reply>),
    /// Refused; the session goes on.
    Refuse(Reply),
    /// Refused; the session ends after this reply.
    Close(Reply),
}

impl Decision {
    pub(crate) fn verdict(self) -> Verdict {
        let negative = |r: Reply| if r.code >= 400 { r } else { crate::reply::std_replies::LOCAL_ERROR };
        match self {
            Decision::Accept => Verdict::Accept(None),
            Decision::AcceptWith(r) => Verdict::Accept((200..300).contains(&r.code).then_some(r)),
            Decision::Reject(r) if r.code == 421 => Verdict::Close(r),
            Decision::Reject(r) => Verdict::Refuse(negative(r)),
            Decision::Disconnect(r) => Verdict::Close(negative(r)),
        }
    }

    pub fn is_accept(&self) -> bool {
        matches!(self, Decision::Accept | Decision::AcceptWith(_))
    }
}

/// Why a transaction ended: the argument of [`Hooks::reset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// RSET.
    Rset,
    /// An EHLO or HELO the policy accepted (RFC 5321 §4.1.4).
    Helo,
    /// A completed STARTTLS handshake: the engine has forgotten the HELO
    /// name and the login (RFC 3207 §4.2); a policy forgets what it learnt
    /// from the client's commands, and may keep what it learnt about the
    /// connection (its address, a DNS lookup made at connect).
    StartTls,
    /// DATA answered, accepted or refused.
    Data,
}

/// The policy of one listener: the engine asks it at each stage of a
/// session and does what it answers ([`Decision`]). Anything a policy does
/// not accept is refused; there is no default that relays.
///
/// Every session has its own [`Hooks::State`], created (`Default`) when
/// the connection is accepted, filled by the hooks and handed to each of
/// them, and dropped with the session: what a policy resolves once (who
/// the client is, the sender's login and limits) lives there, instead of
/// being looked up again at every command or kept in a map keyed by the
/// session id. Hooks that may wait (DNS, a directory, a database, the
/// spool's fsync) return futures; a hook that must not block its runtime
/// thread does its blocking work with `tokio::task::spawn_blocking`. The
/// synchronous ones ([`Hooks::auth_offer`], [`Hooks::auth_refused`],
/// [`Hooks::reset`], [`Hooks::closed`]) decide from memory only.
///
/// What the engine forgets, and the policy hears through [`Hooks::reset`]:
/// RSET and an accepted EHLO/HELO end the transaction (sender and
/// recipients); DATA answered either way ends it too; STARTTLS also
/// forgets the HELO name and the login. Nothing resets the state between
/// sessions: each session starts with a new one.
pub trait Hooks: Send + Sync + 'static {
    /// The policy's per-session state (`()` when it keeps none).
    type State: Default + Send + 'static;

    /// Once per connection, after the PROXY header and the implicit TLS
    /// handshake, before the greeting: the place for pre-banner checks (a
    /// blocklist lookup). The answer decides the greeting (`AcceptWith`:
    /// the policy's own banner, as the spampot plays the server the client
    /// asked for).
    fn connect(&self, _info: &SessionInfo, _state: &mut Self::State) -> impl Future<Output = Decision> + Send {
        async { Decision::Accept }
    }

    /// EHLO or HELO with its name (`info.helo` is still the previous one,
    /// if any). Accepting it resets the transaction ([`Reset::Helo`]).
    fn ehlo(
        &self,
        _info: &SessionInfo,
        _state: &mut Self::State,
        _helo: &str,
    ) -> impl Future<Output = Decision> + Send {
        async { Decision::Accept }
    }

    /// Whether AUTH is offered (asked at EHLO and at AUTH).
    fn auth_offer(&self, _info: &SessionInfo) -> AuthOffer {
        AuthOffer::No
    }

    /// The answer to AUTH where it is not offered; a policy may say where
    /// to go instead (the MX points mail clients to port 587).
    fn auth_refused(&self, _info: &SessionInfo) -> Reply {
        crate::reply::std_replies::NO_AUTH
    }

    /// Checks a login: each AUTH exchange that completed, outside a
    /// transaction, while the session is not authenticated (STARTTLS
    /// forgets the login). `Accept` authenticates the session (235, and
    /// `info.auth` names the login from the next hook on); `Reject`
    /// carries the failure reply (535 5.7.8, or 454 4.7.0 when locked
    /// out). Password hashing is slow on purpose, and a policy may also
    /// delay failures to slow down guessing.
    fn authenticate(
        &self,
        _info: &SessionInfo,
        _state: &mut Self::State,
        _credentials: &Credentials,
    ) -> impl Future<Output = Decision> + Send {
        async { Decision::Reject(crate::reply::std_replies::NO_AUTH) }
    }

    /// MAIL FROM, after the engine's own checks (HELO first, no nested
    /// MAIL, SMTPUTF8, SIZE): the start of a transaction, where a policy
    /// resolves what holds for all of it (who sends, with which limits)
    /// and keeps it in its state until [`Hooks::reset`].
    fn mail(
        &self,
        _info: &SessionInfo,
        _state: &mut Self::State,
        _from: &ReversePath,
        _params: &MailParams,
    ) -> impl Future<Output = Decision> + Send {
        async { Decision::Accept }
    }

    /// RCPT TO, for each recipient, with the envelope so far (the
    /// recipients accepted before this one).
    fn rcpt(
        &self,
        info: &SessionInfo,
        state: &mut Self::State,
        envelope: &Envelope,
        to: &ForwardPath,
    ) -> impl Future<Output = Decision> + Send;

    /// The message is complete and within the limits; answering `Accept`
    /// promises it is stored. [`Hooks::reset`] follows, whatever the answer.
    fn data(
        &self,
        info: &SessionInfo,
        state: &mut Self::State,
        envelope: &Envelope,
        message: Message,
    ) -> impl Future<Output = Decision> + Send;

    /// The transaction (if any) is over ([`Reset`] says why). What a policy
    /// reserved for it at MAIL or RCPT and did not commit in `data` is
    /// given back here.
    fn reset(&self, _info: &SessionInfo, _state: &mut Self::State, _why: Reset) {}

    /// The session has ended, however it ended (called once, on drop,
    /// also when it was refused at connect).
    fn closed(&self, _info: &SessionInfo, _state: &mut Self::State) {}
}

#[cfg(test)]
mod tests {
    use super::Message;

    #[test]
    fn message_parts_share_one_buffer() {
        let mut m = Message::new("id".into(), b"Received: x\r\nSubject: s\r\n\r\nbody\r\n".to_vec(), 13);
        assert_eq!(m.received_header(), b"Received: x\r\n");
        assert_eq!(m.body(), b"Subject: s\r\n\r\nbody\r\n");
        m.insert_after_received(b"Date: d\r\n");
        assert_eq!(m.received_header(), b"Received: x\r\n");
        assert_eq!(m.body(), b"Date: d\r\nSubject: s\r\n\r\nbody\r\n");
        assert_eq!(m.len(), m.received_header().len() + m.body().len());
        assert_eq!(m.into_body(), b"Date: d\r\nSubject: s\r\n\r\nbody\r\n");
    }
}
