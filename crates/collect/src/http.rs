//! The little HTTP/1.1 the shipper and the collector speak to each other:
//! a head (request or status line, headers) and a Content-Length body, on a
//! keep-alive connection. Pure parser here; I/O in [`crate::wire`].
//! Not a general HTTP implementation: no chunked encoding, no
//! continuation lines; anything else is refused.

pub const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Request line (`POST /v1/... HTTP/1.1`) or status line.
    pub start: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("message head longer than 16 KiB")]
    TooLong,
    #[error("malformed message head")]
    Malformed,
    #[error("chunked transfer encoding is not supported")]
    Chunked,
    #[error("bad Content-Length")]
    Length,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn content_length(&self) -> Result<usize, Error> {
        if self.header("transfer-encoding").is_some() {
            return Err(Error::Chunked);
        }
        match self.header("content-length") {
            None => Ok(0),
            Some(v) if !v.is_empty() && v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit()) => {
                v.parse().map_err(|_| Error::Length)
            }
            Some(_) => Err(Error::Length),
        }
    }

    /// (method, target) of a request line.
    pub fn request(&self) -> Option<(&str, &str)> {
        let mut p = self.start.split(' ');
        match (p.next(), p.next(), p.next(), p.next()) {
            (Some(m), Some(t), Some("HTTP/1.1"), None) => Some((m, t)),
            _ => None,
        }
    }

    /// The status code of a status line.
    pub fn status(&self) -> Option<u16> {
        let rest = self.start.strip_prefix("HTTP/1.1 ")?;
        rest.get(..3)?.parse().ok()
    }
}

/// Parses a head at the start of `buf`: `Ok(None)` means more bytes needed.
pub fn parse(buf: &[u8]) -> Result<Option<(Head, usize)>, Error> {
    let window = &buf[..buf.len().min(MAX_HEAD)];
    let Some(end) = window.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() >= MAX_HEAD { Err(Error::TooLong) } else { Ok(None) };
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| Error::Malformed)?;
    let mut lines = text.split("\r\n");
    let start = lines.next().filter(|s| !s.is_empty()).ok_or(Error::Malformed)?;
    if start.bytes().any(|b| b.is_ascii_control()) {
        return Err(Error::Malformed);
    }
    let mut headers = Vec::new();
    for line in lines {
        let (n, v) = line.split_once(':').ok_or(Error::Malformed)?;
        if n.is_empty()
            || n.bytes().any(|b| !b.is_ascii_graphic())
            || v.bytes().any(|b| b.is_ascii_control() && b != b'\t')
        {
            return Err(Error::Malformed);
        }
        headers.push((n.to_owned(), v.trim().to_owned()));
    }
    Ok(Some((Head { start: start.to_owned(), headers }, end + 4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_status() {
        let req = b"POST /v1/events/x?offset=0 HTTP/1.1\r\nContent-Length: 5\r\nAuthorization: Bearer t\r\n\r\nhello";
        for n in 0..req.len() - 5 {
            assert_eq!(parse(&req[..n]), Ok(None), "{n}");
        }
        let (h, used) = parse(req).unwrap().unwrap();
        assert_eq!(used, req.len() - 5);
        assert_eq!(h.request(), Some(("POST", "/v1/events/x?offset=0")));
        assert_eq!(h.content_length(), Ok(5));
        assert_eq!(h.header("authorization"), Some("Bearer t"));
        let (h, _) = parse(b"HTTP/1.1 409 Conflict\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.status(), Some(409));
        assert_eq!(parse(b"GET / HTTP/1.1\r\nbad\r\n\r\n"), Err(Error::Malformed));
        let (h, _) = parse(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.content_length(), Err(Error::Chunked));
        let (h, _) = parse(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.content_length(), Err(Error::Length));
        assert_eq!(parse(&vec![b'a'; MAX_HEAD]), Err(Error::TooLong));
    }
}
