//! SMTP replies as a client reads them (RFC 5321 §4.2; LMTP's are the
//! same, RFC 2033): the outbound SMTP client and LMTP delivery. Pure, fuzzed.
//!
//! [`parse`] takes the bytes read so far and returns a complete reply and
//! the bytes it used, `None` when more input is needed, or an error for
//! input that is no SMTP reply. A server that sends garbage, mixes codes in
//! one multi-line reply or never ends a line is treated as a broken
//! connection (a temporary failure), never guessed at.

/// Lines longer than this are not SMTP (RFC 5321 §4.5.3.1.5 allows 512).
pub const MAX_LINE: usize = 4096;
/// More continuation lines than this: a server stuck in a loop.
pub const MAX_LINES: usize = 200;
/// [`Reply::one_line`] keeps at most this many characters of the text.
pub const MAX_ONE_LINE: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The text of each line, without code, separator or CRLF.
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("reply line does not start with a three-digit code: {0:?}")]
    BadLine(String),
    #[error("multi-line reply mixes codes {0} and {1}")]
    MixedCodes(u16, u16),
    #[error("reply line or reply too long")]
    TooLong,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    pub fn is_temporary(&self) -> bool {
        (400..500).contains(&self.code)
    }
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The enhanced status code (RFC 3463) at the start of the first line.
    pub fn enhanced(&self) -> Option<&str> {
        let first = self.lines.first()?;
        let word = first.split(' ').next()?;
        let mut parts = word.split('.');
        let class = parts.next()?;
        let ok = matches!(class, "2" | "4" | "5")
            && parts.clone().count() == 2
            && parts.all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
        ok.then_some(word)
    }

    /// "550 5.1.1 text text": for logs, queue records and DSNs. The text
    /// is the remote server's: control characters (a bare CR inside a
    /// line, a tab that would split a history.log field) become spaces,
    /// and it is cut after [`MAX_ONE_LINE`] characters.
    pub fn one_line(&self) -> String {
        let text: String =
            self.lines.join(" ").chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_ONE_LINE).collect();
        let text = text.trim();
        if text.is_empty() {
            self.code.to_string()
        } else {
            format!("{} {text}", self.code)
        }
    }

    /// The EHLO keywords (first word of each line after the greeting), upper case.
    pub fn ehlo_keywords(&self) -> impl Iterator<Item = (String, &str)> {
        self.lines.iter().skip(1).map(|l| {
            let (k, rest) = l.split_once(' ').unwrap_or((l, ""));
            (k.to_ascii_uppercase(), rest.trim())
        })
    }
}

/// Parses one reply from the front of `buf`.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut pos = 0;
    let mut code = None;
    let mut lines = Vec::new();
    loop {
        let rest = &buf[pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() > MAX_LINE {
                return Err(ReplyError::TooLong);
            }
            return Ok(None);
        };
        if nl > MAX_LINE || lines.len() >= MAX_LINES {
            return Err(ReplyError::TooLong);
        }
        // Servers should end lines in CRLF; a bare LF is tolerated here (it
        // cannot smuggle anything into a reply) but a lone CR is not text.
        let raw = &rest[..nl];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = String::from_utf8_lossy(raw);
        pos += nl + 1;
        let b = line.as_bytes();
        if b.len() < 3
            || !b[..3].iter().all(u8::is_ascii_digit)
            || b[0] < b'2'
            || b[0] > b'5'
            || (b.len() > 3 && b[3] != b' ' && b[3] != b'-')
        {
            return Err(ReplyError::BadLine(line.chars().take(80).collect()));
        }
        let this = b[..3].iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        match code {
            None => code = Some(this),
            Some(c) if c != this => return Err(ReplyError::MixedCodes(c, this)),
            Some(_) => {}
        }
        let more = b.len() > 3 && b[3] == b'-';
        lines.push(line.get(4..).unwrap_or("").to_owned());
        if !more {
            return Ok(Some((Reply { code: this, lines }, pos)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_multi_and_partial() {
        let (r, n) = parse(b"250 2.0.0 ok\r\nextra").unwrap().unwrap();
        assert_eq!((r.code, n, r.enhanced()), (250, 14, Some("2.0.0")));
        let ehlo = b"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 STARTTLS\r\n";
        let (r, n) = parse(ehlo).unwrap().unwrap();
        assert_eq!(n, ehlo.len());
        let kw: Vec<_> = r.ehlo_keywords().map(|(k, v)| (k, v.to_owned())).collect();
        assert_eq!(
            kw,
            vec![("PIPELINING".into(), "".into()), ("SIZE".into(), "1000".into()), ("STARTTLS".into(), "".into())]
        );
        for cut in 0..ehlo.len() {
            assert_eq!(parse(&ehlo[..cut]).unwrap(), None, "cut {cut}");
        }
        assert_eq!(parse(b"250\r\n").unwrap().unwrap().0.one_line(), "250");
    }

    #[test]
    fn one_line_is_one_bounded_line_of_text() {
        let mut evil = b"550-5.1.1 gone\rInjected: yes\tX\x1b[2J\r\n".to_vec();
        for _ in 0..100 {
            evil.extend_from_slice(format!("550-{}\r\n", "A".repeat(1000)).as_bytes());
        }
        evil.extend_from_slice(b"550 end\r\n");
        let (r, _) = parse(&evil).unwrap().unwrap();
        let line = r.one_line();
        assert!(line.starts_with("550 5.1.1 gone Injected: yes X [2J AAA"), "{line}");
        assert!(!line.chars().any(char::is_control));
        assert!(line.chars().count() <= MAX_ONE_LINE + 4);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(b"hello\r\n").is_err());
        assert!(parse(b"250-a\r\n251 b\r\n").is_err());
        assert!(parse(b"250x\r\n").is_err());
        assert!(parse(b"650 x\r\n").is_err());
        assert!(parse(&vec![b'2'; MAX_LINE + 2]).is_err());
    }
}
