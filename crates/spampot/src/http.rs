//! HTTP proxy requests: `CONNECT host:port` (RFC 9110 §9.3.6) and
//! absolute-URI requests (`GET http://host/path HTTP/1.1`). Pure: the
//! request head in, a [`Request`] out; `Ok(None)` means more bytes needed.
//!
//! Only the head is parsed; a request body (POST) is never read past the
//! head, because nothing is fetched or forwarded.

use base64::Engine;

/// The head (request line and headers) must fit in this many bytes.
pub const MAX_HEAD: usize = 8192;
const MAX_HEADERS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// CONNECT authority.
    Connect { host: String, port: u16 },
    /// An absolute URI: a proxy request for a web page.
    Absolute { scheme: String, host: String, port: u16, url: String },
    /// An origin-form path: a plain web request to the sensor itself.
    Origin(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: Target,
    pub version: String,
    pub user_agent: Option<String>,
    /// `Proxy-Authorization: Basic`, decoded into (user, password); other
    /// schemes are kept whole as the user with an empty password.
    pub credentials: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("request head longer than 8192 bytes")]
    TooLong,
    #[error("malformed request line")]
    RequestLine,
    #[error("malformed header line")]
    Header,
    #[error("more than 100 header lines")]
    TooManyHeaders,
    #[error("malformed authority or URI")]
    Target,
}

/// End of the head: the index just past the blank line. Bare-LF line ends
/// are accepted (old proxy checkers send them).
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(n) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + n;
        let next = nl + 1;
        if buf.get(next) == Some(&b'\n') {
            return Some(next + 1);
        }
        if buf.get(next) == Some(&b'\r') && buf.get(next + 1) == Some(&b'\n') {
            return Some(next + 2);
        }
        i = next;
    }
    None
}

/// `host:port`, `[v6]:port`, or `host` with `default` port.
pub fn parse_authority(s: &str, default: Option<u16>) -> Result<(String, u16), Error> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or(Error::Target)?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(Error::Target),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse().map_err(|_| Error::Target)?
        }
        Some(_) => return Err(Error::Target),
        None => default.ok_or(Error::Target)?,
    };
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"-._:~%".contains(&b);
    if host.is_empty() || host.len() > 255 || !host.bytes().all(ok) {
        return Err(Error::Target);
    }
    Ok((host.to_ascii_lowercase(), port))
}

fn parse_target(method: &str, t: &str) -> Result<Target, Error> {
    if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = parse_authority(t, None)?;
        return Ok(Target::Connect { host, port });
    }
    if t.starts_with('/') || t == "*" {
        return Ok(Target::Origin(t.to_owned()));
    }
    let (scheme, rest) = t.split_once("://").ok_or(Error::Target)?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        "ftp" => 21,
        _ => return Err(Error::Target),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // userinfo@host is possible in a URI; the host is after the last '@'.
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = parse_authority(authority, Some(default))?;
    Ok(Target::Absolute { scheme: scheme.to_ascii_lowercase(), host, port, url: t.to_owned() })
}

fn credentials(value: &str) -> (String, String) {
    let value = value.trim();
    if let Some((scheme, token)) = value.split_once(' ') {
        if scheme.eq_ignore_ascii_case("basic") {
            if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(token.trim()) {
                let text = String::from_utf8_lossy(&raw).into_owned();
                return match text.split_once(':') {
                    Some((u, p)) => (u.to_owned(), p.to_owned()),
                    None => (text, String::new()),
                };
            }
        }
    }
    (value.to_owned(), String::new())
}

pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, Error> {
    let Some(end) = head_end(&buf[..buf.len().min(MAX_HEAD)]) else {
        return if buf.len() >= MAX_HEAD { Err(Error::TooLong) } else { Ok(None) };
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| Error::Header)?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().ok_or(Error::RequestLine)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::RequestLine);
    };
    if method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !version.starts_with("HTTP/1.")
        || version.len() != 8
    {
        return Err(Error::RequestLine);
    }
    let target = parse_target(method, target)?;
    let mut user_agent = None;
    let mut creds = None;
    let mut count = 0;
    for line in lines.filter(|l| !l.is_empty()) {
        count += 1;
        if count > MAX_HEADERS {
            return Err(Error::TooManyHeaders);
        }
        let (name, value) = line.split_once(':').ok_or(Error::Header)?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err(Error::Header);
        }
        if name.eq_ignore_ascii_case("user-agent") {
            user_agent = Some(value.trim().to_owned());
        } else if name.eq_ignore_ascii_case("proxy-authorization") {
            creds = Some(credentials(value));
        }
    }
    Ok(Some((
        Request { method: method.to_owned(), target, version: version.to_owned(), user_agent, credentials: creds },
        end,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_with_credentials_incrementally() {
        let req =
            b"CONNECT mx.example.com:25 HTTP/1.1\r\nHost: mx.example.com:25\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\nUser-Agent: curl/8\r\n\r\nEHLO x\r\n";
        let head_len = req.len() - 8;
        for n in 0..head_len {
            assert_eq!(parse(&req[..n]), Ok(None), "prefix {n}");
        }
        let (r, used) = parse(req).unwrap().unwrap();
        assert_eq!(used, head_len);
        assert_eq!(r.target, Target::Connect { host: "mx.example.com".into(), port: 25 });
        assert_eq!(r.credentials, Some(("user".into(), "pass".into())));
        assert_eq!(r.user_agent.as_deref(), Some("curl/8"));
    }

    #[test]
    fn absolute_origin_and_ipv6() {
        let (r, _) = parse(b"GET http://user@Example.COM:8080/judge.php?x=1 HTTP/1.0\n\n").unwrap().unwrap();
        assert_eq!(
            r.target,
            Target::Absolute {
                scheme: "http".into(),
                host: "example.com".into(),
                port: 8080,
                url: "http://user@Example.COM:8080/judge.php?x=1".into()
            }
        );
        let (r, _) = parse(b"POST http://example.org HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert!(matches!(r.target, Target::Absolute { port: 80, .. }));
        let (r, _) = parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap().unwrap();
        assert_eq!(r.target, Target::Origin("/".into()));
        let (r, _) = parse(b"CONNECT [2001:db8::1]:587 HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!(r.target, Target::Connect { host: "2001:db8::1".into(), port: 587 });
    }

    #[test]
    fn refusals() {
        assert_eq!(parse(b"CONNECT mx.example.com HTTP/1.1\r\n\r\n"), Err(Error::Target));
        assert_eq!(parse(b"CONNECT a:99999 HTTP/1.1\r\n\r\n"), Err(Error::Target));
        assert_eq!(parse(b"GET gopher://x/ HTTP/1.1\r\n\r\n"), Err(Error::Target));
        assert_eq!(parse(b"get / HTTP/1.1\r\n\r\n"), Err(Error::RequestLine));
        assert_eq!(parse(b"GET /  HTTP/1.1\r\n\r\n"), Err(Error::RequestLine));
        assert_eq!(parse(b"GET / HTTP/1.1\r\nbad header\r\n\r\n"), Err(Error::Header));
        assert_eq!(parse(&vec![b'A'; MAX_HEAD]), Err(Error::TooLong));
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(101));
        assert_eq!(parse(many.as_bytes()), Err(Error::TooManyHeaders));
    }
}
