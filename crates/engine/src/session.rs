//! One SMTP session: the RFC 5321 state machine over a [`Stream`].
//!
//! Replies are collected in `out` and written when the client is waiting
//! for them, i.e. when no further complete command is already buffered:
//! that is PIPELINING (RFC 2920) for free, and one write per batch.

use crate::address::{ForwardPath, ReversePath};
use crate::command::{self, Command, MailParams};
use crate::data::{DataReader, Outcome};
use crate::hooks::{Envelope, Hooks, Message, Reset, SessionInfo, TlsInfo, Verdict};
use crate::input::{Input, Line};
use crate::received;
use crate::reply::{std_replies as R, Reply};
use crate::settings::{ListenerSettings, TlsMode};
use crate::stream::Stream;
use port25_events as ev;
use port25_events::emit;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

mod auth;

/// What a message buffer starts with, reserved from the data budget
/// before DATA is answered 354.
const FIRST_DATA_BUFFER: usize = 16 * 1024;

/// Why the session loop ended.
enum End {
    Quit,
    ClientClosed,
    Closed(&'static str),
}

pub(crate) struct Session<H: Hooks> {
    pub info: SessionInfo,
    settings: Arc<ListenerSettings>,
    hooks: Arc<H>,
    /// The policy's state for this session ([`Hooks::State`]).
    state: H::State,
    /// The policy refused the session at connect: every command but QUIT
    /// gets 503 (RFC 5321 §3.1).
    refused: bool,
    stream: Stream,
    input: Input,
    out: Vec<u8>,
    envelope: Option<Envelope>,
    transactions: u32,
    accepted: u32,
    commands_before_mail: u32,
    errors: u32,
    started: Instant,
}

/// However the session ends (a return, a dropped task), the policy hears it.
impl<H: Hooks> Drop for Session<H> {
    fn drop(&mut self) {
        self.hooks.closed(&self.info, &mut self.state);
    }
}

impl<H: Hooks> Session<H> {
    pub(crate) fn new(
        info: SessionInfo,
        settings: Arc<ListenerSettings>,
        hooks: Arc<H>,
        stream: Stream,
        input: Input,
    ) -> Self {
        Session {
            info,
            settings,
            hooks,
            state: H::State::default(),
            refused: false,
            stream,
            input,
            out: Vec::new(),
            envelope: None,
            transactions: 0,
            accepted: 0,
            commands_before_mail: 0,
            errors: 0,
            started: Instant::now(),
        }
    }

    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        if let Some((version, cipher)) = self.stream.tls_info() {
            self.info.tls = Some(TlsInfo { version, cipher, client_cert: self.stream.client_cert_sha256() });
        }
        let end = match self.hooks.connect(&self.info, &mut self.state).await.verdict() {
            Verdict::Accept(banner) => {
                // A policy may give its own greeting (the spampot plays the
                // requested host's server, which must not say "port25").
                let banner = banner
                    .unwrap_or_else(|| Reply::owned(220, "2.0.0", format!("{} ESMTP port25", self.settings.hostname)));
                self.reply(banner);
                self.serve(&shutdown).await
            }
            Verdict::Refuse(r) => {
                emit!(info, ev::SESSION_REFUSED, session = %self.info.id, peer = %self.info.peer, reply = %r);
                self.reply(r);
                self.refused = true;
                self.serve(&shutdown).await
            }
            Verdict::Close(r) => {
                emit!(info, ev::SESSION_REFUSED, session = %self.info.id, peer = %self.info.peer, reply = %r);
                self.reply(r);
                End::Closed("refused at connect")
            }
        };
        let _ = self.flush().await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.stream.shutdown()).await;
        let reason = match end {
            End::Quit => "quit",
            End::ClientClosed => "client closed",
            End::Closed(why) => why,
        };
        emit!(info, ev::SESSION_CLOSED, session = %self.info.id, peer = %self.info.peer, reason,
            transactions = self.transactions, accepted = self.accepted, seconds = self.started.elapsed().as_secs_f64());
    }

    fn reply(&mut self, r: Reply) {
        r.write_to(&mut self.out);
    }

    fn refuse(&mut self, r: Reply) {
        self.errors += 1;
        self.reply(r);
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let timeout = self.settings.limits.command_timeout;
        let result = tokio::time::timeout(timeout, async {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await
        })
        .await;
        self.out.clear();
        if self.out.capacity() > 4096 {
            self.out.shrink_to(512);
        }
        match result {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out")),
        }
    }

    /// Waits for the next command line. Shutdown ends an idle session; a
    /// session in the middle of a transaction is let finish it.
    async fn next_line(&mut self, shutdown: &CancellationToken) -> Result<Line, End> {
        loop {
            if let Some(line) = self.input.take_line(self.settings.limits.max_command_line) {
                return Ok(line);
            }
            if self.flush().await.is_err() {
                return Err(End::ClientClosed);
            }
            let limits = &self.settings.limits;
            let in_transaction = self.envelope.is_some();
            let read = tokio::time::timeout(
                limits.command_timeout,
                self.input.fill(&mut self.stream, limits.max_command_line),
            );
            let result = tokio::select! {
                r = read => r,
                _ = shutdown.cancelled(), if !in_transaction => {
                    self.reply(R::SHUTDOWN);
                    return Err(End::Closed("shutdown"));
                }
            };
            match result {
                Err(_) => {
                    emit!(info, ev::SESSION_TIMEOUT, session = %self.info.id, peer = %self.info.peer, phase = "command");
                    self.reply(R::TIMEOUT);
                    return Err(End::Closed("timeout"));
                }
                Ok(Ok(0)) => return Err(End::ClientClosed),
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Err(End::ClientClosed),
            }
        }
    }

    async fn serve(&mut self, shutdown: &CancellationToken) -> End {
        loop {
            let line = match self.next_line(shutdown).await {
                Ok(l) => l,
                Err(end) => return end,
            };
            let line = match line {
                Line::Complete(l) => l,
                Line::BareLf => {
                    emit!(info, ev::SESSION_PROTOCOL_VIOLATION, session = %self.info.id, peer = %self.info.peer, violation = "bare LF in command");
                    self.reply(R::BARE_LF);
                    return End::Closed("bare LF");
                }
                Line::BareCr => {
                    emit!(info, ev::SESSION_PROTOCOL_VIOLATION, session = %self.info.id, peer = %self.info.peer, violation = "bare CR in command");
                    self.refuse(R::BARE_CR);
                    continue;
                }
                Line::TooLong => {
                    self.refuse(R::LINE_TOO_LONG);
                    continue;
                }
            };
            if let Some(end) = self.command(&line, shutdown).await {
                return end;
            }
            if self.errors > self.settings.limits.max_errors {
                emit!(info, ev::SESSION_LIMIT, session = %self.info.id, peer = %self.info.peer, limit = "max_errors");
                self.reply(R::TOO_MANY_ERRORS);
                return End::Closed("too many errors");
            }
            if self.envelope.is_none() && self.commands_before_mail > self.settings.limits.max_commands_before_mail {
                emit!(info, ev::SESSION_LIMIT, session = %self.info.id, peer = %self.info.peer, limit = "max_commands_before_mail");
                self.reply(R::TOO_MANY_COMMANDS);
                return End::Closed("too many commands");
            }
        }
    }

    /// Handles one command; `Some` ends the session.
    async fn command(&mut self, line: &[u8], shutdown: &CancellationToken) -> Option<End> {
        let cmd = match command::parse(line) {
            Ok(c) => c,
            Err(reply) => {
                emit!(debug, ev::SMTP_COMMAND_REJECTED, session = %self.info.id, reply = %reply);
                self.commands_before_mail += 1;
                self.refuse(reply);
                return None;
            }
        };
        if !matches!(cmd, Command::Mail { .. } | Command::Rcpt { .. } | Command::Data | Command::Quit) {
            self.commands_before_mail += 1;
        }
        if self.refused && !matches!(cmd, Command::Quit | Command::Http) {
            self.refuse(R::REFUSED_SESSION);
            return None;
        }
        match cmd {
            Command::Ehlo(helo) => return self.ehlo(helo, true).await,
            Command::Helo(helo) => return self.ehlo(helo, false).await,
            Command::Mail { from, params } => return self.mail(from, params).await,
            Command::Rcpt { to } => return self.rcpt(to).await,
            Command::Data => {
                let end = self.data().await;
                self.hooks.reset(&self.info, &mut self.state, Reset::Data);
                return end;
            }
            Command::Rset => {
                self.envelope = None;
                self.hooks.reset(&self.info, &mut self.state, Reset::Rset);
                self.reply(R::OK);
            }
            Command::Noop => self.reply(R::OK),
            Command::Quit => {
                self.reply(R::BYE);
                return Some(End::Quit);
            }
            // VRFY never confirms or denies a user (RFC 5321 §3.5.3, §7.3).
            Command::Vrfy => self.reply(R::VRFY),
            Command::Expn => self.refuse(Reply::new(502, "5.5.1", "EXPN is not available")),
            Command::Help => self.reply(R::HELP),
            Command::StartTls => return self.starttls().await,
            Command::Auth(args) => return self.auth(&args, shutdown).await,
            Command::NotImplemented => self.refuse(R::NOT_IMPLEMENTED),
            Command::Http => {
                emit!(info, ev::SESSION_PROTOCOL_VIOLATION, session = %self.info.id, peer = %self.info.peer, violation = "HTTP on an SMTP listener");
                self.reply(R::HTTP_ON_SMTP);
                return Some(End::Closed("HTTP request"));
            }
        }
        None
    }

    /// A policy's refusal that ends the session: its reply, then close.
    fn close(&mut self, r: Reply, why: &'static str) -> Option<End> {
        self.reply(r);
        Some(End::Closed(why))
    }

    async fn ehlo(&mut self, helo: String, esmtp: bool) -> Option<End> {
        let greeting = match self.hooks.ehlo(&self.info, &mut self.state, &helo).await.verdict() {
            Verdict::Accept(greeting) => greeting,
            Verdict::Refuse(r) => {
                self.refuse(r);
                return None;
            }
            Verdict::Close(r) => return self.close(r, "policy closed the session at EHLO"),
        };
        emit!(debug, ev::SMTP_EHLO, session = %self.info.id, helo = %helo, esmtp);
        // EHLO/HELO reset any transaction (RFC 5321 §4.1.4).
        self.envelope = None;
        self.hooks.reset(&self.info, &mut self.state, Reset::Helo);
        self.info.helo = Some(helo);
        self.info.esmtp = esmtp;
        let host = &self.settings.hostname;
        if !esmtp {
            self.reply(greeting.unwrap_or_else(|| Reply::owned(250, "2.0.0", host.clone())));
            return None;
        }
        // A policy's greeting replaces the first line; the extensions are
        // the engine's (they say what it does).
        let first = match greeting {
            Some(r) => r.text.replace(['\r', '\n'], " "),
            None => format!("{host} greets {}", self.info.peer.ip()),
        };
        let mut lines = vec![
            first,
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.settings.limits.max_message_size),
            "8BITMIME".to_owned(),
            "SMTPUTF8".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
        ];
        if self.settings.tls_mode == TlsMode::StartTls && self.info.tls.is_none() && self.settings.tls.is_some() {
            lines.push("STARTTLS".to_owned());
        }
        if self.auth_advertised() {
            lines.push("AUTH PLAIN LOGIN".to_owned());
        }
        // The EHLO reply has no enhanced codes on its keyword lines.
        Reply { code: 250, enhanced: None, text: lines.join("\n").into() }.write_to(&mut self.out);
        None
    }

    async fn mail(&mut self, from: ReversePath, params: MailParams) -> Option<End> {
        if self.info.helo.is_none() {
            self.refuse(R::NEED_HELO);
            return None;
        }
        if self.envelope.is_some() {
            self.refuse(R::NESTED_MAIL);
            return None;
        }
        if let ReversePath::Mailbox(m) = &from {
            if !m.is_ascii() && !params.smtputf8 {
                self.refuse(Reply::new(553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter"));
                return None;
            }
        }
        if params.size.is_some_and(|s| s > self.settings.limits.max_message_size as u64) {
            emit!(info, ev::SMTP_MAIL_REJECTED, session = %self.info.id, peer = %self.info.peer, from = %from, reason = "size");
            self.refuse(R::SIZE_EXCEEDED);
            return None;
        }
        match self.hooks.mail(&self.info, &mut self.state, &from, &params).await.verdict() {
            Verdict::Accept(reply) => {
                emit!(debug, ev::SMTP_MAIL_ACCEPTED, session = %self.info.id, from = %from);
                self.commands_before_mail = 0;
                self.envelope = Some(Envelope { from, params, rcpts: Vec::new() });
                self.reply(reply.unwrap_or(R::SENDER_OK));
                None
            }
            Verdict::Refuse(r) => {
                emit!(info, ev::SMTP_MAIL_REJECTED, session = %self.info.id, peer = %self.info.peer, from = %from, reply = %r);
                self.refuse(r);
                None
            }
            Verdict::Close(r) => {
                emit!(info, ev::SMTP_MAIL_REJECTED, session = %self.info.id, peer = %self.info.peer, from = %from, reply = %r);
                self.close(r, "policy closed the session at MAIL")
            }
        }
    }

    async fn rcpt(&mut self, to: ForwardPath) -> Option<End> {
        let Some(envelope) = self.envelope.as_ref() else {
            self.refuse(R::NEED_MAIL);
            return None;
        };
        if envelope.rcpts.len() >= self.settings.limits.max_recipients {
            emit!(info, ev::SMTP_RCPT_REJECTED, session = %self.info.id, peer = %self.info.peer, to = %to, reason = "max_recipients");
            self.reply(R::TOO_MANY_RCPTS);
            return None;
        }
        if let ForwardPath::Mailbox { mailbox, .. } = &to {
            if !mailbox.is_ascii() && !envelope.params.smtputf8 {
                self.refuse(Reply::new(553, "5.6.7", "Non-ASCII address requires SMTPUTF8 in MAIL FROM"));
                return None;
            }
        }
        match self.hooks.rcpt(&self.info, &mut self.state, envelope, &to).await.verdict() {
            Verdict::Accept(reply) => {
                emit!(debug, ev::SMTP_RCPT_ACCEPTED, session = %self.info.id, to = %to);
                if let Some(e) = self.envelope.as_mut() {
                    e.rcpts.push(to);
                }
                self.reply(reply.unwrap_or(R::RECIPIENT_OK));
                None
            }
            Verdict::Refuse(r) => {
                self.rcpt_rejected(&to, &r);
                self.refuse(r);
                None
            }
            Verdict::Close(r) => {
                self.rcpt_rejected(&to, &r);
                self.close(r, "policy closed the session at RCPT")
            }
        }
    }

    fn rcpt_rejected(&self, to: &ForwardPath, r: &Reply) {
        emit!(info, ev::SMTP_RCPT_REJECTED, session = %self.info.id, peer = %self.info.peer,
            from = %self.envelope.as_ref().map(|e| e.from.to_string()).unwrap_or_default(), to = %to, reply = %r);
    }

    /// DATA: the engine's checks, the message read in behind the trace
    /// header, the limits, then the policy's verdict.
    async fn data(&mut self) -> Option<End> {
        match &self.envelope {
            None => {
                self.refuse(R::NEED_MAIL);
                return None;
            }
            Some(e) if e.rcpts.is_empty() => {
                self.refuse(R::NEED_RCPT);
                return None;
            }
            Some(_) => {}
        }
        let id = crate::server::queue_id(&self.info.id, self.transactions + 1);
        let (mut body, header_len, mut reader) = self.begin_data(&id)?;
        self.reply(R::START_DATA);
        if self.flush().await.is_err() {
            return Some(End::ClientClosed);
        }
        if let Err(end) = self.read_message(&mut reader, &mut body).await {
            return Some(end);
        }
        self.transactions += 1;
        let envelope = self.envelope.take().expect("checked above");
        if let Some((reply, reason)) = self.over_limits(&reader) {
            emit!(info, ev::SMTP_DATA_REJECTED, session = %self.info.id, peer = %self.info.peer, from = %envelope.from, reason, size = reader.size);
            self.refuse(reply);
            return None;
        }
        let size = body.len();
        let message = Message::new(id.clone(), body, header_len);
        // `reader` holds the memory reservation until the policy is done
        // with the message (stored or refused).
        let verdict = self.hooks.data(&self.info, &mut self.state, &envelope, message).await.verdict();
        drop(reader);
        match verdict {
            Verdict::Accept(reply) => {
                self.accepted += 1;
                emit!(info, ev::SMTP_DATA_ACCEPTED, session = %self.info.id, peer = %self.info.peer, id = %id,
                    from = %envelope.from, rcpts = envelope.rcpts.len(), size);
                self.reply(reply.unwrap_or_else(|| Reply::owned(250, "2.0.0", format!("Ok: queued as {id}"))));
                None
            }
            Verdict::Refuse(r) => {
                emit!(info, ev::SMTP_DATA_REJECTED, session = %self.info.id, peer = %self.info.peer, from = %envelope.from, reply = %r);
                self.refuse(r);
                None
            }
            Verdict::Close(r) => {
                emit!(info, ev::SMTP_DATA_REJECTED, session = %self.info.id, peer = %self.info.peer, from = %envelope.from, reply = %r);
                self.close(r, "policy closed the session after DATA")
            }
        }
    }

    /// The message buffer with the trace header in it (the message is
    /// read in behind it, so storing both never copies the message), the
    /// header's length, and the reader holding the first memory
    /// reservation; `None` when the
    /// budget for DATA in flight is spent (refused, transaction over).
    fn begin_data(&mut self, id: &str) -> Option<(Vec<u8>, usize, DataReader)> {
        let received_header = received::header(&self.info, &self.settings.hostname, self.envelope.as_ref()?, id);
        let first = received_header.len() + FIRST_DATA_BUFFER;
        let reservation = self.settings.data_budget.start(first).and_then(|mut r| r.grow_to(first).then_some(r));
        let Some(reservation) = reservation else {
            emit!(warn, ev::SESSION_LIMIT, session = %self.info.id, peer = %self.info.peer, limit = "data_memory",
                in_flight = self.settings.data_budget.used());
            // The transaction ends here, as after any answer to DATA.
            self.envelope = None;
            self.refuse(R::DATA_BUDGET);
            return None;
        };
        let limits = &self.settings.limits;
        let mut body = Vec::with_capacity(first);
        body.extend_from_slice(&received_header);
        let reader = DataReader::new(limits.max_data_line, limits.max_message_size)
            .with_budget(received_header.len(), reservation);
        Some((body, received_header.len(), reader))
    }

    /// Reads the message up to its end mark; `Err` ends the session (a
    /// timeout, the client gone, a bare LF or CR: SMTP smuggling).
    async fn read_message(&mut self, reader: &mut DataReader, body: &mut Vec<u8>) -> Result<(), End> {
        let timeout = self.settings.limits.data_timeout;
        let outcome = loop {
            let (used, outcome) = reader.feed(self.input.buffered(), body);
            self.input.consume(used);
            if outcome != Outcome::NeedMore {
                break outcome;
            }
            match tokio::time::timeout(timeout, self.input.fill_data(&mut self.stream)).await {
                Err(_) => {
                    emit!(info, ev::SESSION_TIMEOUT, session = %self.info.id, peer = %self.info.peer, phase = "data");
                    self.reply(R::TIMEOUT);
                    return Err(End::Closed("timeout in DATA"));
                }
                Ok(Ok(0)) | Ok(Err(_)) => return Err(End::ClientClosed),
                Ok(Ok(_)) => {}
            }
        };
        self.input.shrink();
        let (reply, what) = match outcome {
            Outcome::End => return Ok(()),
            Outcome::BareLf => (R::BARE_LF, "bare LF in DATA"),
            Outcome::BareCr => (R::BARE_CR_DATA, "bare CR in DATA"),
            Outcome::NeedMore => unreachable!("the loop exits only on an end"),
        };
        self.transactions += 1;
        let from = self.envelope.take().map(|e| e.from.to_string()).unwrap_or_default();
        emit!(info, ev::SESSION_PROTOCOL_VIOLATION, session = %self.info.id, peer = %self.info.peer, violation = what);
        emit!(info, ev::SMTP_DATA_REJECTED, session = %self.info.id, peer = %self.info.peer, from = %from, reason = what);
        self.reply(reply);
        Err(End::Closed(what))
    }

    /// The limit a complete message broke, if any: its reply and reason.
    fn over_limits(&self, reader: &DataReader) -> Option<(Reply, &'static str)> {
        if reader.oversize {
            Some((R::SIZE_EXCEEDED, "size"))
        } else if reader.over_budget {
            emit!(warn, ev::SESSION_LIMIT, session = %self.info.id, peer = %self.info.peer, limit = "data_memory",
                in_flight = self.settings.data_budget.used());
            Some((R::DATA_BUDGET, "data_memory"))
        } else if reader.line_too_long {
            Some((R::DATA_LINE_TOO_LONG, "line length"))
        } else {
            None
        }
    }

    async fn starttls(&mut self) -> Option<End> {
        let config = match (&self.settings.tls, self.settings.tls_mode) {
            _ if self.info.tls.is_some() => {
                self.refuse(R::TLS_ACTIVE);
                return None;
            }
            (Some(c), TlsMode::StartTls) => c.clone(),
            _ => {
                self.refuse(R::TLS_UNAVAILABLE);
                return None;
            }
        };
        self.reply(R::READY_TLS);
        if self.flush().await.is_err() {
            return Some(End::ClientClosed);
        }
        let injected = self.input.clear();
        if injected > 0 {
            emit!(warn, ev::SESSION_PROTOCOL_VIOLATION, session = %self.info.id, peer = %self.info.peer,
                violation = "plaintext pipelined after STARTTLS (discarded)", bytes = injected);
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Upgrading) else {
            return Some(End::Closed("STARTTLS on a non-plain stream"));
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        match tokio::time::timeout(self.settings.limits.handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                self.stream = Stream::Tls(Box::new(tls));
                let (version, cipher) = self.stream.tls_info().unwrap_or_default();
                emit!(debug, ev::SMTP_STARTTLS, session = %self.info.id, version = %version, cipher = %cipher);
                self.info.tls = Some(TlsInfo { version, cipher, client_cert: self.stream.client_cert_sha256() });
                // RFC 3207 §4.2: forget everything learnt before TLS.
                self.info.helo = None;
                self.info.auth = None;
                self.envelope = None;
                self.hooks.reset(&self.info, &mut self.state, Reset::StartTls);
                None
            }
            Ok(Err(e)) => {
                emit!(info, ev::SMTP_STARTTLS_FAILED, session = %self.info.id, peer = %self.info.peer, error = %e);
                Some(End::Closed("TLS handshake failed"))
            }
            Err(_) => {
                emit!(info, ev::SMTP_STARTTLS_FAILED, session = %self.info.id, peer = %self.info.peer, error = "timeout");
                Some(End::Closed("TLS handshake timed out"))
            }
        }
    }
}
