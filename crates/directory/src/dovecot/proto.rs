//! The Dovecot authentication protocol, the pure half: framing, parsing
//! and escaping, no I/O (fuzzed: fuzz/fuzz_targets/dovecot_reply.rs).
//!
//! Lines end in LF; fields are separated by TAB; inside a field, byte 0x01
//! escapes: `\x01 1` is 0x01, `t` TAB, `r` CR, `n` LF, `0` NUL. A line from
//! the server is refused (and the connection dropped, the login answered
//! 454) when it is longer than [`MAX_LINE`] bytes (Dovecot's own limit for
//! the auth client protocol, `AUTH_CLIENT_MAX_LINE_LENGTH`), is not UTF-8,
//! carries a raw control character (anything below 0x20 but TAB and the
//! escape byte, DEL, and the C1 controls U+0080 to U+009F), or a field
//! that unescapes to one: nothing a
//! server sends can smuggle a line break or a NUL into a login name or an
//! address.
//!
//! Two protocols share the framing: the client protocol (`auth-client`
//! socket: VERSION, MECH, SPID, CUID, COOKIE, DONE, then OK / FAIL / CONT
//! per request) and the master protocol (`auth-userdb` socket: USER,
//! NOTFOUND, FAIL), which port25 uses for recipient and address lookups.

/// The longest line accepted from the server, LF included.
pub const MAX_LINE: usize = 16384;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// A line over [`MAX_LINE`] bytes.
    TooLong,
    /// A raw or escaped control character.
    ControlCharacter(u8),
    NotUtf8,
    /// A bad escape, a missing or bad request id, an empty command.
    Malformed(&'static str),
}

impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtoError::TooLong => write!(f, "a reply line longer than {MAX_LINE} bytes"),
            ProtoError::ControlCharacter(b) => write!(f, "a reply line with control character 0x{b:02x}"),
            ProtoError::NotUtf8 => write!(f, "a reply line that is not UTF-8"),
            ProtoError::Malformed(why) => write!(f, "a malformed reply line: {why}"),
        }
    }
}

/// Takes the first complete line (without its LF) out of `buf`; `Ok(None)`
/// when no LF has arrived yet. Refuses a line over [`MAX_LINE`] as soon as
/// it is known to be one, so a server that never sends LF cannot grow the
/// buffer past the limit.
pub fn take_line(buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, ProtoError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(end) if end + 1 > MAX_LINE => Err(ProtoError::TooLong),
        Some(end) => {
            let mut line: Vec<u8> = buf.drain(..=end).collect();
            line.pop();
            Ok(Some(line))
        }
        None if buf.len() >= MAX_LINE => Err(ProtoError::TooLong),
        None => Ok(None),
    }
}

/// A line split into unescaped fields.
pub fn fields(line: &[u8]) -> Result<Vec<String>, ProtoError> {
    if line.len() + 1 > MAX_LINE {
        return Err(ProtoError::TooLong);
    }
    if let Some(&b) = line.iter().find(|&&b| (b < 0x20 && b != b'\t' && b != 0x01) || b == 0x7f) {
        return Err(ProtoError::ControlCharacter(b));
    }
    let text = std::str::from_utf8(line).map_err(|_| ProtoError::NotUtf8)?;
    // The C1 controls (U+0080 to U+009F, e.g. U+0085 NEL, a line break to
    // some readers) are control characters too, in two UTF-8 bytes.
    if let Some(c) = text.chars().find(|&c| c.is_control() && c != '\t' && c != '\u{1}') {
        return Err(ProtoError::ControlCharacter(u8::try_from(u32::from(c)).unwrap_or(0xff)));
    }
    text.split('\t').map(unescape).collect()
}

fn unescape(field: &str) -> Result<String, ProtoError> {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1}' {
            out.push(c);
            continue;
        }
        let b = match chars.next() {
            Some('1') => 0x01,
            Some('t') => b'\t',
            Some('r') => b'\r',
            Some('n') => b'\n',
            Some('0') => 0,
            _ => return Err(ProtoError::Malformed("a bad escape (0x01 not followed by 0, 1, t, r or n)")),
        };
        // Escaped or not, a control character in a value is refused.
        return Err(ProtoError::ControlCharacter(b));
    }
    Ok(out)
}

/// A field value as Dovecot expects it in a request.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\u{1}' => out.push_str("\u{1}1"),
            '\t' => out.push_str("\u{1}t"),
            '\r' => out.push_str("\u{1}r"),
            '\n' => out.push_str("\u{1}n"),
            '\0' => out.push_str("\u{1}0"),
            c => out.push(c),
        }
    }
    out
}

/// `key=value` fields after the command and id; a field without `=` is a
/// flag (value empty). Keys are kept as sent.
pub type Params = Vec<(String, String)>;

/// What a server line means to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLine {
    Version {
        major: u32,
        minor: u32,
    },
    /// An authentication mechanism the server offers.
    Mech(String),
    /// The end of the client-protocol handshake.
    Done,
    /// The login is right (client protocol).
    Ok {
        id: u32,
        params: Params,
    },
    /// Wrong password, unknown user, or a temporary failure (`temp` flag)
    /// (both protocols).
    Fail {
        id: u32,
        params: Params,
    },
    /// A challenge (client protocol): port25 sends whole PLAIN responses,
    /// so a challenge is a protocol error for it.
    Cont {
        id: u32,
    },
    /// A userdb lookup found the user (master protocol).
    User {
        id: u32,
        user: String,
        params: Params,
    },
    /// A userdb lookup did not (master protocol).
    NotFound {
        id: u32,
    },
    /// SPID, CUID, COOKIE and anything newer: ignored, as the protocol
    /// asks of clients.
    Other(String),
}

impl ServerLine {
    /// The request id a reply answers.
    pub fn id(&self) -> Option<u32> {
        match self {
            ServerLine::Ok { id, .. }
            | ServerLine::Fail { id, .. }
            | ServerLine::Cont { id }
            | ServerLine::User { id, .. }
            | ServerLine::NotFound { id } => Some(*id),
            _ => None,
        }
    }
}

fn id(field: Option<&String>) -> Result<u32, ProtoError> {
    let f = field.ok_or(ProtoError::Malformed("no request id"))?;
    if f.is_empty() || f.len() > 10 || !f.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProtoError::Malformed("a request id that is not a number"));
    }
    f.parse().map_err(|_| ProtoError::Malformed("a request id that is not a number"))
}

fn params(rest: &[String]) -> Params {
    rest.iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (f.clone(), String::new()),
        })
        .collect()
}

/// Parses one line (without its LF) from either protocol.
pub fn parse(line: &[u8]) -> Result<ServerLine, ProtoError> {
    let f = fields(line)?;
    let command = f.first().map(String::as_str).unwrap_or_default();
    Ok(match command {
        "" => return Err(ProtoError::Malformed("an empty command")),
        "VERSION" => {
            let n = |i: usize| {
                f.get(i).and_then(|v| v.parse::<u32>().ok()).ok_or(ProtoError::Malformed("VERSION without two numbers"))
            };
            ServerLine::Version { major: n(1)?, minor: n(2)? }
        }
        "MECH" => ServerLine::Mech(f.get(1).cloned().ok_or(ProtoError::Malformed("MECH without a name"))?),
        "DONE" => ServerLine::Done,
        "OK" => ServerLine::Ok { id: id(f.get(1))?, params: params(f.get(2..).unwrap_or_default()) },
        "FAIL" => ServerLine::Fail { id: id(f.get(1))?, params: params(f.get(2..).unwrap_or_default()) },
        "CONT" => ServerLine::Cont { id: id(f.get(1))? },
        "USER" => ServerLine::User {
            id: id(f.get(1))?,
            user: f.get(2).cloned().ok_or(ProtoError::Malformed("USER without a user name"))?,
            params: params(f.get(3..).unwrap_or_default()),
        },
        "NOTFOUND" => ServerLine::NotFound { id: id(f.get(1))? },
        other => ServerLine::Other(other.to_owned()),
    })
}

/// The value of `key` among `params` (the first one).
pub fn param<'a>(params: &'a Params, key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The client protocol's opening lines.
pub fn client_hello(pid: u32) -> String {
    format!("VERSION\t1\t2\nCPID\t{pid}\n")
}

/// The master protocol's opening line.
pub fn master_hello() -> String {
    "VERSION\t1\t0\n".to_owned()
}

/// An AUTH PLAIN request carrying the whole response (RFC 4616).
pub fn auth_plain(
    id: u32,
    service: &str,
    login: &str,
    password: &str,
    client: Option<std::net::IpAddr>,
    secured: bool,
) -> String {
    let mut response = Vec::with_capacity(login.len() + password.len() + 2);
    response.push(0);
    response.extend_from_slice(login.as_bytes());
    response.push(0);
    response.extend_from_slice(password.as_bytes());
    let mut line = format!("AUTH\t{id}\tPLAIN\tservice={}", escape(service));
    if secured {
        line.push_str("\tsecured");
    }
    if let Some(ip) = client {
        line.push_str(&format!("\trip={}", ip.to_canonical()));
    }
    // Dovecot's own brute-force penalty would otherwise delay every
    // failure from the one address port25 talks from.
    line.push_str("\tno-penalty");
    line.push_str(&format!("\tresp={}\n", port25_wire::base64::encode(&response)));
    line
}

/// A userdb lookup (master protocol).
pub fn user_lookup(id: u32, service: &str, user: &str) -> String {
    format!("USER\t{id}\t{}\tservice={}\n", escape(user), escape(service))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_bounded() {
        let mut buf = b"VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nDON".to_vec();
        assert_eq!(take_line(&mut buf).unwrap().unwrap(), b"VERSION\t1\t2");
        assert_eq!(take_line(&mut buf).unwrap().unwrap(), b"MECH\tPLAIN\tplaintext");
        assert_eq!(take_line(&mut buf).unwrap(), None);
        assert_eq!(buf, b"DON");
        let mut long = vec![b'a'; MAX_LINE];
        assert_eq!(take_line(&mut long), Err(ProtoError::TooLong), "no LF within the limit");
        let mut exact = vec![b'a'; MAX_LINE - 1];
        exact.push(b'\n');
        assert_eq!(take_line(&mut exact).unwrap().unwrap().len(), MAX_LINE - 1, "LF included, exactly the limit");
        let mut over = vec![b'a'; MAX_LINE];
        over.push(b'\n');
        assert_eq!(take_line(&mut over), Err(ProtoError::TooLong));
    }

    #[test]
    fn replies_of_both_protocols() {
        assert_eq!(parse(b"VERSION\t1\t2").unwrap(), ServerLine::Version { major: 1, minor: 2 });
        assert_eq!(parse(b"MECH\tPLAIN\tplaintext").unwrap(), ServerLine::Mech("PLAIN".into()));
        assert_eq!(parse(b"COOKIE\tabc").unwrap(), ServerLine::Other("COOKIE".into()));
        assert_eq!(
            parse(b"OK\t7\tuser=alice@x.example\tport25_addresses=a@x.example b@x.example").unwrap(),
            ServerLine::Ok {
                id: 7,
                params: vec![
                    ("user".into(), "alice@x.example".into()),
                    ("port25_addresses".into(), "a@x.example b@x.example".into())
                ]
            }
        );
        let fail = parse(b"FAIL\t8\tuser=bob\ttemp\treason=a\x01tb").unwrap_err();
        assert_eq!(fail, ProtoError::ControlCharacter(b'\t'), "an escaped TAB is still a control character in a value");
        assert_eq!(
            parse(b"FAIL\t8\tuser=bob\ttemp").unwrap(),
            ServerLine::Fail { id: 8, params: vec![("user".into(), "bob".into()), ("temp".into(), String::new())] }
        );
        assert_eq!(parse(b"NOTFOUND\t3").unwrap(), ServerLine::NotFound { id: 3 });
        assert!(
            matches!(parse(b"USER\t4\talice\tmail=a@x.example").unwrap(), ServerLine::User { id: 4, ref user, .. } if user == "alice")
        );
    }

    #[test]
    fn hostile_lines_are_refused() {
        assert_eq!(parse(b"OK\t1\tuser=alice\rbob"), Err(ProtoError::ControlCharacter(b'\r')));
        assert_eq!(parse(b"OK\t1\tuser=alice\x00"), Err(ProtoError::ControlCharacter(0)));
        assert_eq!(parse(b"OK\t1\tuser=al\x7fice"), Err(ProtoError::ControlCharacter(0x7f)));
        assert_eq!(parse(b"OK\t1\tuser=a\x01nb"), Err(ProtoError::ControlCharacter(b'\n')), "escaped LF");
        assert!(matches!(parse(b"OK\t1\tuser=a\x01"), Err(ProtoError::Malformed(_))));
        assert!(matches!(parse(b"OK\t1\tuser=a\x01x"), Err(ProtoError::Malformed(_))));
        assert_eq!(parse(b"OK\t1\tuser=\xff"), Err(ProtoError::NotUtf8));
        assert!(matches!(parse(b"OK\tx\tuser=a"), Err(ProtoError::Malformed(_))));
        assert!(matches!(parse(b"OK\t99999999999\tuser=a"), Err(ProtoError::Malformed(_))));
        assert!(matches!(parse(b"OK"), Err(ProtoError::Malformed(_))));
        assert!(matches!(parse(b""), Err(ProtoError::Malformed(_))));
        assert_eq!(parse(&vec![b'a'; MAX_LINE]), Err(ProtoError::TooLong));
    }

    /// Found by the dovecot_reply fuzz property "no value holds a control
    /// character": U+0085 (NEL) and the other C1 controls passed, being
    /// two UTF-8 bytes above 0x7f (fuzz/seeds/dovecot_reply/c1_control).
    #[test]
    fn c1_control_characters_are_refused() {
        assert_eq!(parse("OK\t1\tuser=a\u{85}b".as_bytes()), Err(ProtoError::ControlCharacter(0x85)));
        assert_eq!(parse("USER\t2\t\u{80}alice".as_bytes()), Err(ProtoError::ControlCharacter(0x80)));
        assert_eq!(parse("FAIL\t3\treason=\u{9f}".as_bytes()), Err(ProtoError::ControlCharacter(0x9f)));
        assert_eq!(parse("MECH\tPL\u{8d}AIN".as_bytes()), Err(ProtoError::ControlCharacter(0x8d)));
        // Not controls: accepted as they are.
        assert!(parse("OK\t1\tuser=\u{a0}\u{e9}l\u{e8}ve\u{2028}".as_bytes()).is_ok());
    }

    #[test]
    fn requests_escape_what_they_carry() {
        assert_eq!(escape("a\tb\nc\u{1}d\re\0"), "a\u{1}tb\u{1}nc\u{1}1d\u{1}re\u{1}0");
        let line = auth_plain(5, "smtp", "alice", "pw\tx", Some("::ffff:192.0.2.1".parse().unwrap()), true);
        assert_eq!(
            line,
            format!(
                "AUTH\t5\tPLAIN\tservice=smtp\tsecured\trip=192.0.2.1\tno-penalty\tresp={}\n",
                port25_wire::base64::encode(b"\0alice\0pw\tx")
            )
        );
        assert_eq!(user_lookup(1, "smtp", "a\tb"), "USER\t1\ta\u{1}tb\tservice=smtp\n");
        assert_eq!(fields(b"a\x01tb").unwrap_err(), ProtoError::ControlCharacter(b'\t'));
    }
}
