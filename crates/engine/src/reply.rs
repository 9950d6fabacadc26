//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463).
//!
//! Every refusal in port25 is a [`Reply`]: it carries the code the client
//! sees, so errors travel up as values and the client never sees internals.

use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code "class.subject.detail", e.g. "5.7.1".
    pub enhanced: Option<&'static str>,
    pub text: Cow<'static, str>,
}

impl Reply {
    pub const fn new(code: u16, enhanced: &'static str, text: &'static str) -> Reply {
        Reply { code, enhanced: Some(enhanced), text: Cow::Borrowed(text) }
    }

    pub fn owned(code: u16, enhanced: &'static str, text: impl Into<String>) -> Reply {
        Reply { code, enhanced: Some(enhanced), text: Cow::Owned(text.into()) }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    pub fn is_temporary(&self) -> bool {
        (400..500).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// Writes the reply in wire form: one line per text line, `-` on all but
    /// the last, each ending in CRLF. Newlines inside `text` split lines;
    /// control characters are replaced so a reply can never break framing.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let lines: Vec<&str> = self.text.split('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.extend_from_slice(format!("{}{}", self.code, sep).as_bytes());
            if let Some(enh) = self.enhanced {
                out.extend_from_slice(enh.as_bytes());
                out.push(b' ');
            }
            for b in line.trim_end_matches('\r').bytes() {
                out.push(if b < 0x20 || b == 0x7f { b'?' } else { b });
            }
            out.extend_from_slice(b"\r\n");
        }
    }

    pub fn to_wire(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v);
        v
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.enhanced {
            Some(e) => write!(f, "{} {} {}", self.code, e, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

/// The replies the engine itself gives, in one place so their wording is
/// consistent and tests can name them.
pub mod std_replies {
    use super::Reply;
    pub const OK: Reply = Reply::new(250, "2.0.0", "Ok");
    pub const SENDER_OK: Reply = Reply::new(250, "2.1.0", "Sender ok");
    pub const RECIPIENT_OK: Reply = Reply::new(250, "2.1.5", "Recipient ok");
    pub const START_DATA: Reply =
        Reply { code: 354, enhanced: None, text: std::borrow::Cow::Borrowed("End data with <CR><LF>.<CR><LF>") };
    pub const BYE: Reply = Reply::new(221, "2.0.0", "Bye");
    pub const VRFY: Reply = Reply::new(252, "2.5.0", "Cannot VRFY user; send some mail and I will try my best");
    pub const READY_TLS: Reply = Reply::new(220, "2.0.0", "Ready to start TLS");
    pub const SYNTAX: Reply = Reply::new(500, "5.5.2", "Syntax error, command unrecognized");
    pub const LINE_TOO_LONG: Reply = Reply::new(500, "5.5.2", "Line too long");
    pub const BARE_CR: Reply = Reply::new(500, "5.5.2", "Bare <CR> in command; SMTP lines end with <CR><LF>");
    pub const BARE_LF: Reply = Reply::new(
        521,
        "5.5.2",
        "Bare <LF> received; SMTP lines end with <CR><LF> (RFC 5321 2.3.8); closing connection",
    );
    pub const BARE_CR_DATA: Reply = Reply::new(
        521,
        "5.5.2",
        "Bare <CR> in message; SMTP lines end with <CR><LF> (RFC 5321 2.3.8); closing connection",
    );
    pub const NOT_IMPLEMENTED: Reply = Reply::new(502, "5.5.1", "Command not implemented");
    /// Every command but QUIT after a greeting that refused the session (RFC 5321 §3.1).
    pub const REFUSED_SESSION: Reply =
        Reply::new(503, "5.5.1", "Bad sequence of commands: this server refused the session; send QUIT");
    pub const NEED_HELO: Reply = Reply::new(503, "5.5.1", "Send EHLO or HELO first");
    pub const NESTED_MAIL: Reply = Reply::new(503, "5.5.1", "Sender already specified; send RSET to start over");
    pub const NEED_MAIL: Reply = Reply::new(503, "5.5.1", "Send MAIL first");
    pub const NEED_RCPT: Reply = Reply::new(503, "5.5.1", "Send RCPT first; no valid recipients");
    pub const TLS_ACTIVE: Reply = Reply::new(503, "5.5.1", "TLS already active");
    pub const TLS_UNAVAILABLE: Reply = Reply::new(454, "4.7.0", "TLS not available");
    pub const NO_AUTH: Reply = Reply::new(503, "5.5.1", "AUTH is not offered on this service");
    pub const TOO_MANY_RCPTS: Reply = Reply::new(452, "4.5.3", "Too many recipients");
    pub const SIZE_EXCEEDED: Reply = Reply::new(552, "5.3.4", "Message size exceeds fixed maximum message size");
    pub const DATA_LINE_TOO_LONG: Reply =
        Reply::new(500, "5.5.2", "Message line longer than the limit (RFC 5321 4.5.3.1.6: 1000 octets with CRLF)");
    pub const TIMEOUT: Reply = Reply::new(421, "4.4.2", "Timeout exceeded; closing connection");
    pub const SHUTDOWN: Reply = Reply::new(421, "4.3.2", "Service shutting down; try again later");
    pub const TOO_MANY_CONNECTIONS: Reply = Reply::new(421, "4.7.0", "Too many connections; try again later");
    pub const TOO_MANY_FROM_CLIENT: Reply = Reply::new(
        421,
        "4.7.0",
        "Too many connections from your address (IPv6: your /64); close some and try again later",
    );
    pub const DATA_BUDGET: Reply =
        Reply::new(452, "4.3.1", "Insufficient system storage: too much mail in progress; try again later");
    pub const HTTP_ON_SMTP: Reply =
        Reply::new(521, "5.7.0", "This is an SMTP server, not a web server; closing connection");
    pub const TOO_MANY_COMMANDS: Reply =
        Reply::new(421, "4.7.0", "Too many commands without a transaction; closing connection");
    pub const TOO_MANY_ERRORS: Reply = Reply::new(421, "4.7.0", "Too many errors; closing connection");
    pub const LOCAL_ERROR: Reply = Reply::new(451, "4.3.0", "Local error in processing; try again later");
    pub const HELP: Reply =
        Reply::new(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS\nSee RFC 5321");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_and_control_characters() {
        let r = Reply::owned(250, "2.0.0", "first\nsecond\u{7}");
        assert_eq!(r.to_wire(), b"250-2.0.0 first\r\n250 2.0.0 second?\r\n");
        assert_eq!(std_replies::START_DATA.to_wire(), b"354 End data with <CR><LF>.<CR><LF>\r\n");
    }
}
