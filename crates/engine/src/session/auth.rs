//! The AUTH exchange (RFC 4954): offer, challenges, cancel, the policy's
//! verdict. Parsing is in [`crate::sasl`]; what a login may do afterwards
//! is the policy's business (the session only remembers who it is).

use super::{End, Session};
use crate::hooks::{AuthOffer, Hooks, Verdict};
use crate::input::Line;
use crate::reply::{std_replies as R, Reply};
use crate::sasl::{self, Credentials, Mechanism};
use port25_events as ev;
use port25_events::emit;
use std::borrow::Cow;
use tokio_util::sync::CancellationToken;

pub const NEED_TLS: Reply = Reply::new(
    538,
    "5.7.11",
    "Encryption required for requested authentication mechanism: send STARTTLS first (or connect to port 465), so that your password never crosses the network in clear",
);
const NEED_EHLO: Reply = Reply::new(503, "5.5.1", "Send EHLO first: AUTH is an ESMTP extension");
const ALREADY: Reply = Reply::new(503, "5.5.1", "Already authenticated");
const IN_TRANSACTION: Reply =
    Reply::new(503, "5.5.1", "AUTH is not permitted during a mail transaction; send RSET first");
const SUCCESS: Reply = Reply::new(235, "2.7.0", "Authentication successful");

/// Why an exchange stopped before the policy saw credentials.
enum Abort {
    Refuse(Reply),
    End(End),
}

impl<H: Hooks> Session<H> {
    pub(super) fn auth_advertised(&self) -> bool {
        match self.hooks.auth_offer(&self.info) {
            AuthOffer::No => false,
            AuthOffer::AfterTls => self.info.tls.is_some(),
            AuthOffer::Always => true,
        }
    }

    pub(super) async fn auth(&mut self, args: &str, shutdown: &CancellationToken) -> Option<End> {
        let precondition = match self.hooks.auth_offer(&self.info) {
            AuthOffer::No => Some(self.hooks.auth_refused(&self.info)),
            AuthOffer::AfterTls if self.info.tls.is_none() => Some(NEED_TLS),
            _ if self.info.helo.is_none() || !self.info.esmtp => Some(NEED_EHLO),
            _ if self.info.auth.is_some() => Some(ALREADY),
            _ if self.envelope.is_some() => Some(IN_TRANSACTION),
            _ => None,
        };
        if let Some(r) = precondition {
            emit!(info, ev::SMTP_AUTH_REJECTED, session = %self.info.id, peer = %self.info.peer, reply = %r);
            self.refuse(r);
            return None;
        }
        let credentials = match self.exchange(args, shutdown).await {
            Ok(c) => c,
            Err(Abort::Refuse(r)) => {
                emit!(info, ev::SMTP_AUTH_REJECTED, session = %self.info.id, peer = %self.info.peer, reply = %r);
                self.refuse(r);
                return None;
            }
            Err(Abort::End(end)) => return Some(end),
        };
        let verdict = self.hooks.authenticate(&self.info, &mut self.state, &credentials).await.verdict();
        let (user, mechanism) = (&credentials.username, credentials.mechanism.name());
        match verdict {
            Verdict::Accept(reply) => {
                emit!(info, ev::SMTP_AUTH_ACCEPTED, session = %self.info.id, peer = %self.info.peer, user = %user, mechanism);
                self.info.auth = Some(credentials.username);
                self.reply(reply.unwrap_or(SUCCESS));
                None
            }
            Verdict::Refuse(r) => {
                emit!(info, ev::SMTP_AUTH_REJECTED, session = %self.info.id, peer = %self.info.peer, user = %user, mechanism, reply = %r);
                self.refuse(r);
                None
            }
            Verdict::Close(r) => {
                emit!(info, ev::SMTP_AUTH_REJECTED, session = %self.info.id, peer = %self.info.peer, user = %user, mechanism, reply = %r);
                self.close(r, "policy closed the session after AUTH")
            }
        }
    }

    /// Runs the mechanism's challenges and returns what the client claims.
    async fn exchange(&mut self, args: &str, shutdown: &CancellationToken) -> Result<Credentials, Abort> {
        let command = sasl::parse_auth(args).map_err(Abort::Refuse)?;
        match command.mechanism {
            Mechanism::Plain => {
                let message = match command.initial {
                    Some(m) => m,
                    None => self.response("", shutdown).await?,
                };
                sasl::parse_plain(&message).map_err(Abort::Refuse)
            }
            Mechanism::Login => {
                let user = match command.initial {
                    Some(u) => u,
                    None => self.response(sasl::LOGIN_USER_PROMPT, shutdown).await?,
                };
                let username = sasl::parse_login_field(&user).map_err(Abort::Refuse)?;
                let pass = self.response(sasl::LOGIN_PASSWORD_PROMPT, shutdown).await?;
                let password = sasl::parse_login_field(&pass).map_err(Abort::Refuse)?;
                Ok(Credentials { mechanism: Mechanism::Login, authzid: None, username, password })
            }
        }
    }

    /// Sends a 334 challenge and reads the client's decoded answer.
    async fn response(&mut self, prompt: &'static str, shutdown: &CancellationToken) -> Result<Vec<u8>, Abort> {
        self.reply(Reply { code: 334, enhanced: None, text: Cow::Borrowed(prompt) });
        match self.next_line(shutdown).await.map_err(Abort::End)? {
            Line::Complete(line) => sasl::decode_response(&line).map_err(Abort::Refuse),
            Line::BareLf => {
                emit!(info, ev::SESSION_PROTOCOL_VIOLATION, session = %self.info.id, peer = %self.info.peer, violation = "bare LF in AUTH response");
                self.reply(R::BARE_LF);
                Err(Abort::End(End::Closed("bare LF")))
            }
            Line::BareCr => Err(Abort::Refuse(R::BARE_CR)),
            Line::TooLong => Err(Abort::Refuse(R::LINE_TOO_LONG)),
        }
    }
}
