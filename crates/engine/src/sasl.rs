//! SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms:
//! the pure part. The AUTH command's arguments, each client response line,
//! strict base64 and the PLAIN message are parsed here without I/O, so the
//! session code only moves lines and every parser can be fuzzed alone.
//!
//! Strictness: base64 is RFC 4648 §4 with padding and canonical trailing
//! bits, nothing else (no spaces, no URL alphabet). A response of `*` cancels
//! (RFC 4954 §4: 501). A PLAIN message has exactly two NULs, a non-empty
//! login and password, and is UTF-8 (RFC 4616 §2).

use crate::reply::Reply;
use port25_wire::base64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }
}

/// `AUTH <mechanism> [initial-response]`, the response already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCommand {
    pub mechanism: Mechanism,
    /// `=` stands for an empty initial response (RFC 4954 §4).
    pub initial: Option<Vec<u8>>,
}

/// What the client proved it knows; handed to the policy.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub mechanism: Mechanism,
    /// PLAIN's authorization identity when the client sent one.
    pub authzid: Option<String>,
    pub username: String,
    pub password: String,
}

// The password must never reach a log line through `{:?}`.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("mechanism", &self.mechanism)
            .field("authzid", &self.authzid)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

pub const CANCELLED: Reply = Reply::new(501, "5.0.0", "Authentication cancelled");
pub const BAD_BASE64: Reply = Reply::new(501, "5.5.2", "Cannot decode the response: it is not valid base64");
pub const UNKNOWN_MECHANISM: Reply =
    Reply::new(504, "5.5.4", "Unrecognized authentication type; this server offers PLAIN and LOGIN");
pub const SYNTAX: Reply = Reply::new(501, "5.5.4", "Syntax: AUTH <mechanism> [initial-response]");
pub const BAD_PLAIN: Reply =
    Reply::new(501, "5.5.2", "Malformed PLAIN response: expected [authzid] NUL login NUL password in UTF-8");
pub const BAD_LOGIN: Reply =
    Reply::new(501, "5.5.2", "Malformed LOGIN response: the login and the password must be non-empty UTF-8");

/// Longest login or password accepted (RFC 4616 §2 allows up to 255 octets
/// each; a little more room costs nothing and helps long passphrases).
pub const MAX_FIELD: usize = 1024;

/// Parses the arguments of AUTH (the text after "AUTH ").
pub fn parse_auth(args: &str) -> Result<AuthCommand, Reply> {
    let words: Vec<&str> = args.split(' ').collect();
    if words.len() > 2 {
        return Err(SYNTAX);
    }
    let mechanism = match words[0] {
        "" => return Err(SYNTAX),
        m if m.eq_ignore_ascii_case("PLAIN") => Mechanism::Plain,
        m if m.eq_ignore_ascii_case("LOGIN") => Mechanism::Login,
        _ => return Err(UNKNOWN_MECHANISM),
    };
    let initial = match words.get(1) {
        None => None,
        Some(&"=") => Some(Vec::new()),
        Some(r) => Some(decode_response(r.as_bytes())?),
    };
    Ok(AuthCommand { mechanism, initial })
}

/// Decodes one client response line (CRLF removed): `*` cancels.
pub fn decode_response(line: &[u8]) -> Result<Vec<u8>, Reply> {
    if line == b"*" {
        return Err(CANCELLED);
    }
    base64::decode(line).ok_or(BAD_BASE64)
}

fn field(bytes: &[u8]) -> Option<String> {
    if bytes.len() > MAX_FIELD {
        return None;
    }
    String::from_utf8(bytes.to_vec()).ok()
}

/// Parses a PLAIN message: `[authzid] NUL authcid NUL passwd`.
pub fn parse_plain(msg: &[u8]) -> Result<Credentials, Reply> {
    let mut parts = msg.split(|&b| b == 0);
    let (Some(authzid), Some(user), Some(pass), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(BAD_PLAIN);
    };
    if user.is_empty() || pass.is_empty() {
        return Err(BAD_PLAIN);
    }
    let authzid = field(authzid).ok_or(BAD_PLAIN)?;
    Ok(Credentials {
        mechanism: Mechanism::Plain,
        authzid: (!authzid.is_empty()).then_some(authzid),
        username: field(user).ok_or(BAD_PLAIN)?,
        password: field(pass).ok_or(BAD_PLAIN)?,
    })
}

/// One field of LOGIN (the login or the password).
pub fn parse_login_field(bytes: &[u8]) -> Result<String, Reply> {
    if bytes.is_empty() || bytes.contains(&0) {
        return Err(BAD_LOGIN);
    }
    field(bytes).ok_or(BAD_LOGIN)
}

/// The LOGIN mechanism's prompts, already base64 ("Username:", "Password:").
pub const LOGIN_USER_PROMPT: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASSWORD_PROMPT: &str = "UGFzc3dvcmQ6";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_prompts_are_the_base64_of_their_words() {
        assert_eq!(base64::encode(b"Username:"), LOGIN_USER_PROMPT);
        assert_eq!(base64::encode(b"Password:"), LOGIN_PASSWORD_PROMPT);
    }

    #[test]
    fn auth_command_arguments() {
        assert_eq!(parse_auth("PLAIN").unwrap(), AuthCommand { mechanism: Mechanism::Plain, initial: None });
        assert_eq!(parse_auth("plain =").unwrap().initial, Some(Vec::new()));
        assert_eq!(
            parse_auth("LOGIN YWxpY2U=").unwrap(),
            AuthCommand { mechanism: Mechanism::Login, initial: Some(b"alice".to_vec()) }
        );
        assert_eq!(parse_auth("CRAM-MD5").unwrap_err().code, 504);
        assert_eq!(parse_auth("").unwrap_err().code, 501);
        assert_eq!(parse_auth("PLAIN a b").unwrap_err(), SYNTAX);
        assert_eq!(parse_auth("PLAIN !!!!").unwrap_err(), BAD_BASE64);
        assert_eq!(parse_auth("PLAIN *").unwrap_err(), CANCELLED);
        assert_eq!(decode_response(b"*").unwrap_err().code, 501);
    }

    #[test]
    fn plain_messages() {
        let c = parse_plain(b"\0alice@example.net\0s3cret").unwrap();
        assert_eq!((c.authzid, c.username.as_str(), c.password.as_str()), (None, "alice@example.net", "s3cret"));
        let c = parse_plain(b"admin\0alice\0pw").unwrap();
        assert_eq!(c.authzid.as_deref(), Some("admin"));
        for bad in [&b"alice\0pw"[..], b"\0\0pw", b"\0alice\0", b"\0a\0b\0c", b"\0\xff\0pw", b""] {
            assert_eq!(parse_plain(bad).unwrap_err(), BAD_PLAIN, "{bad:?}");
        }
        assert!(!format!("{:?}", parse_plain(b"\0u\0hunter2").unwrap()).contains("hunter2"));
    }

    #[test]
    fn login_fields() {
        assert_eq!(parse_login_field(b"alice").unwrap(), "alice");
        assert!(parse_login_field(b"").is_err());
        assert!(parse_login_field(b"a\0b").is_err());
        assert!(parse_login_field(&[b'x'; MAX_FIELD + 1]).is_err());
    }
}
