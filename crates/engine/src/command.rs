//! SMTP command parser (RFC 5321 §4.1, RFC 1870 SIZE, RFC 6152 8BITMIME,
//! RFC 6531 SMTPUTF8). Pure: a line in, a [`Command`] or a [`Reply`] out.
//!
//! The line handed in has its CRLF already removed by the line reader, which
//! is where bare CR and LF are refused.

use crate::address::{self, ForwardPath, PathError, ReversePath};
use crate::reply::Reply;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailParams {
    pub size: Option<u64>,
    pub body: Option<Body>,
    pub smtputf8: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    Mail {
        from: ReversePath,
        params: MailParams,
    },
    Rcpt {
        to: ForwardPath,
    },
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    /// AUTH with its raw arguments: the session parses them (see
    /// [`crate::sasl`]) only where AUTH is offered, so a service without
    /// AUTH answers every form of it the same way.
    Auth(String),
    /// BDAT, ETRN, TURN and the like: recognised, not offered.
    NotImplemented,
    /// An HTTP request line or header field: a web client or a proxy
    /// abuser, never an SMTP client. The session answers 521 and closes
    /// (Postfix's smtpd_forbidden_commands).
    Http,
}

/// HTTP methods (RFC 9110 §9, RFC 5789 PATCH, the HTTP/2 preface's PRI).
const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PRI"];

/// True for a line that can only be HTTP: it starts with an HTTP method and
/// a space, ends in an HTTP version (`PROPFIND / HTTP/1.1`), or is a header
/// field (`Host: ...`, `User-Agent:...`: a token and a colon as its first
/// word, a form no SMTP command has).
pub fn is_http(line: &[u8]) -> bool {
    let first_word = line.split(|&b| b == b' ').next().unwrap_or_default();
    if line.len() > first_word.len() && HTTP_METHODS.iter().any(|m| first_word.eq_ignore_ascii_case(m.as_bytes())) {
        return true;
    }
    let last_word = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    if line.len() > last_word.len() && last_word.len() > 5 && last_word[..5].eq_ignore_ascii_case(b"HTTP/") {
        return true;
    }
    // RFC 9110 §5.1: field-name = token; tchar below. White space before
    // the colon (`Host\t: x`, `User-Agent : curl`, the obsolete form) is a
    // header too: no SMTP command is one token, blanks, then a colon.
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    let name = line.iter().take_while(|b| tchar(b)).count();
    let blanks = line.iter().skip(name).take_while(|&&b| b == b' ' || b == b'\t').count();
    name > 0 && line.get(name + blanks) == Some(&b':')
}

const fn syntax(text: &'static str) -> Reply {
    Reply::new(501, "5.5.4", text)
}

fn path_error(enhanced: &'static str, what: &str, e: PathError) -> Reply {
    Reply::owned(501, enhanced, format!("Bad {what} address syntax: {}", e.0))
}

/// Parses one command line (without CRLF).
pub fn parse(line: &[u8]) -> Result<Command, Reply> {
    if is_http(line) {
        return Ok(Command::Http);
    }
    let line = std::str::from_utf8(line).map_err(|_| Reply::new(500, "5.5.2", "Command is not valid UTF-8"))?;
    if line.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
        return Err(Reply::new(500, "5.5.2", "Control character in command"));
    }
    let (verb, rest) = match line.split_once(' ') {
        Some(split) => split,
        None => (line, ""),
    };
    let no_args = |cmd: Command| {
        if rest.trim().is_empty() {
            Ok(cmd)
        } else {
            Err(syntax("Syntax error: this command takes no arguments"))
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" => Ok(Command::Ehlo(parse_helo_arg(rest)?)),
        "HELO" => Ok(Command::Helo(parse_helo_arg(rest)?)),
        "MAIL" => parse_mail(rest),
        "RCPT" => parse_rcpt(rest),
        "DATA" => no_args(Command::Data),
        "RSET" => no_args(Command::Rset),
        // NOOP and HELP may carry an argument, which is ignored (§4.1.1.9).
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "QUIT" => no_args(Command::Quit),
        "VRFY" if !rest.trim().is_empty() => Ok(Command::Vrfy),
        "VRFY" => Err(syntax("Syntax: VRFY <address>")),
        "EXPN" => Ok(Command::Expn),
        "STARTTLS" => no_args(Command::StartTls),
        "AUTH" => Ok(Command::Auth(rest.trim_end_matches(' ').to_owned())),
        "BDAT" | "ETRN" | "TURN" | "ATRN" | "SEND" | "SOML" | "SAML" | "XCLIENT" | "XFORWARD" => {
            Ok(Command::NotImplemented)
        }
        "" => Err(Reply::new(500, "5.5.2", "Empty command")),
        _ => Err(Reply::new(500, "5.5.2", "Command unrecognized")),
    }
}

fn parse_helo_arg(rest: &str) -> Result<String, Reply> {
    let arg = rest.trim();
    if arg.is_empty() || arg.contains(' ') {
        return Err(syntax("Syntax: EHLO/HELO <domain or address literal>"));
    }
    if arg.len() > 255 {
        return Err(syntax("EHLO/HELO argument too long"));
    }
    Ok(arg.to_owned())
}

/// Strips a case-insensitive keyword like "FROM:" and the optional space
/// some clients put after the colon (tolerated, as every MTA does).
fn strip_keyword<'a>(rest: &'a str, kw: &str) -> Option<&'a str> {
    let head = rest.get(..kw.len())?;
    if !head.eq_ignore_ascii_case(kw) {
        return None;
    }
    Some(rest.get(kw.len()..)?.trim_start_matches(' '))
}

fn parse_mail(rest: &str) -> Result<Command, Reply> {
    let rest = strip_keyword(rest, "FROM:").ok_or(syntax("Syntax: MAIL FROM:<address> [parameters]"))?;
    let (inner, params) = address::split_angle(rest).map_err(|e| path_error("5.1.7", "sender", e))?;
    let from = address::parse_reverse_path(inner).map_err(|e| path_error("5.1.7", "sender", e))?;
    let mut out = MailParams::default();
    for param in split_params(params)? {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (param, None),
        };
        match (key.to_ascii_uppercase().as_str(), value) {
            ("SIZE", Some(v)) => {
                let n = v.parse::<u64>().map_err(|_| syntax("Bad SIZE parameter"))?;
                out.size = Some(n);
            }
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => out.body = Some(Body::SevenBit),
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => out.body = Some(Body::EightBitMime),
            ("BODY", _) => {
                return Err(Reply::new(555, "5.5.4", "Unsupported BODY type (7BIT and 8BITMIME are supported)"))
            }
            ("SMTPUTF8", None) => out.smtputf8 = true,
            _ => return Err(Reply::owned(555, "5.5.4", format!("Unsupported MAIL parameter {key}"))),
        }
    }
    Ok(Command::Mail { from, params: out })
}

fn parse_rcpt(rest: &str) -> Result<Command, Reply> {
    let rest = strip_keyword(rest, "TO:").ok_or(syntax("Syntax: RCPT TO:<address>"))?;
    let (inner, params) = address::split_angle(rest).map_err(|e| path_error("5.1.3", "recipient", e))?;
    let to = address::parse_forward_path(inner).map_err(|e| path_error("5.1.3", "recipient", e))?;
    if let Some(p) = split_params(params)?.first() {
        // No RCPT extension (DSN NOTIFY/ORCPT) is advertised yet.
        return Err(Reply::owned(555, "5.5.4", format!("Unsupported RCPT parameter {p}")));
    }
    Ok(Command::Rcpt { to })
}

fn split_params(params: &str) -> Result<Vec<&str>, Reply> {
    if params.is_empty() {
        return Ok(Vec::new());
    }
    let params = params.strip_prefix(' ').ok_or(syntax("Parameters must follow the address after a space"))?;
    Ok(params.split(' ').filter(|p| !p.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(parse(b"ehlo client.example").unwrap(), Command::Ehlo("client.example".into()));
        assert_eq!(parse(b"QuIt").unwrap(), Command::Quit);
        assert_eq!(parse(b"NOOP anything").unwrap(), Command::Noop);
    }

    #[test]
    fn mail_with_parameters() {
        let Command::Mail { from, params } =
            parse(b"MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME SMTPUTF8").unwrap()
        else {
            panic!()
        };
        assert_eq!(from.to_string(), "a@b.example");
        assert_eq!(params, MailParams { size: Some(1000), body: Some(Body::EightBitMime), smtputf8: true });
        assert_eq!(
            parse(b"MAIL FROM:<>").unwrap(),
            Command::Mail { from: ReversePath::Null, params: MailParams::default() }
        );
        assert!(parse(b"mail from: <a@b.example>").is_ok(), "space after colon is tolerated");
    }

    #[test]
    fn errors_carry_codes() {
        assert_eq!(parse(b"MAIL FROM:<a@b.example> FOO=1").unwrap_err().code, 555);
        assert_eq!(parse(b"MAIL FROM:a@b.example").unwrap_err().enhanced, Some("5.1.7"));
        assert_eq!(parse(b"RCPT TO:<>").unwrap_err().enhanced, Some("5.1.3"));
        assert_eq!(parse(b"XYZZY").unwrap_err().code, 500);
        assert_eq!(parse(b"DATA now").unwrap_err().code, 501);
        assert_eq!(parse(b"HELO").unwrap_err().code, 501);
        assert_eq!(parse(b"NOOP \x01").unwrap_err().code, 500);
        assert_eq!(parse(b"\xff").unwrap_err().code, 500);
    }

    #[test]
    fn http_requests_and_header_fields_are_recognised() {
        for line in [
            &b"GET / HTTP/1.0"[..],
            b"get /index.html HTTP/1.1",
            b"POST /x HTTP/1.1",
            b"HEAD / HTTP/1.1",
            b"PUT /f HTTP/1.1",
            b"CONNECT mx.example:25 HTTP/1.0",
            b"OPTIONS * HTTP/1.1",
            b"PRI * HTTP/2.0",
            b"PROPFIND /dav HTTP/1.1",
            b"Host: 127.0.0.1:2525",
            b"host:127.0.0.1",
            b"User-Agent: curl/8.5.0",
            b"Accept: */*",
            b"X-Forwarded-For: 192.0.2.1",
            b"Content-Length: 0",
            b"Subject: a header line after a refused DATA",
            b"User-Agent : curl/8.5.0",
            b"Host\t: x",
            b"X-Foo  \t :bar",
        ] {
            assert_eq!(parse(line), Ok(Command::Http), "{}", String::from_utf8_lossy(line));
        }
        // SMTP commands, including ones whose words contain colons.
        for line in [
            &b"MAIL FROM:<a@b.example>"[..],
            b"RCPT TO:<postmaster>",
            b"EHLO get",
            b"HELO [IPv6:2001:db8::1]",
            b"NOOP GET / HTTP",
            b"GET",
            b"QUIT",
            b"MAIL FROM :<a@b.example>",
            b"EHLO x:y",
        ] {
            assert_ne!(parse(line), Ok(Command::Http), "{}", String::from_utf8_lossy(line));
        }
    }
}
