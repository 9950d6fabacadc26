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
    /// The login the client authenticated as (SMTP AUTH), if any.
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Accept with the engine's standard reply.
    Accept,
    /// Accept with this (2xx/3xx) reply.
    AcceptWith(Reply),
    /// Refuse with this (4xx/5xx) reply; the session goes on.
    Reject(Reply),
    /// Refuse and close the connection.
    Disconnect(Reply),
}

/// Policy hooks. Synchronous hooks are for decisions made from memory;
/// RCPT and DATA may wait (directory lookups, the spool's fsync).
pub trait Hooks: Send + Sync + 'static {
    fn connect(&self, _info: &SessionInfo) -> Decision {
        Decision::Accept
    }

    /// The 220 greeting; `None` gives the engine's standard banner.
    fn connect_banner(&self, _info: &SessionInfo) -> Option<Reply> {
        None
    }

    fn ehlo(&self, _info: &SessionInfo, _helo: &str) -> Decision {
        Decision::Accept
    }

    fn auth_offer(&self, _info: &SessionInfo) -> AuthOffer {
        AuthOffer::No
    }

    /// The answer to AUTH where it is not offered; a policy may say where
    /// to go instead (the MX points mail clients to port 587).
    fn auth_refused(&self, _info: &SessionInfo) -> Reply {
        crate::reply::std_replies::NO_AUTH
    }

    /// Checks a login. `Accept` authenticates the session (235); `Reject`
    /// carries the failure reply (535 5.7.8, or 454 4.7.0 when locked out).
    /// Asynchronous: password hashing is slow on purpose, and a policy may
    /// also delay failures to slow down guessing.
    fn authenticate(&self, _info: &SessionInfo, _credentials: &Credentials) -> impl Future<Output = Decision> + Send {
        async { Decision::Reject(crate::reply::std_replies::NO_AUTH) }
    }

    fn mail(&self, _info: &SessionInfo, _from: &ReversePath, _params: &MailParams) -> Decision {
        Decision::Accept
    }

    fn rcpt(&self, info: &SessionInfo, envelope: &Envelope, to: &ForwardPath) -> impl Future<Output = Decision> + Send;

    /// The message is complete; answering `Accept` promises it is stored.
    fn data(&self, info: &SessionInfo, envelope: &Envelope, message: Message) -> impl Future<Output = Decision> + Send;

    /// The transaction (if any) is over: RSET, EHLO/HELO, STARTTLS, or
    /// DATA answered either way. What a policy reserved for it at MAIL or
    /// RCPT and did not commit in `data` is given back here.
    fn reset(&self, _info: &SessionInfo) {}

    /// The session has ended, however it ended (called once, on drop).
    fn closed(&self, _info: &SessionInfo) {}
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
