//! Reading and writing [`crate::http`] messages on a stream, with limits:
//! the head is bounded by `http::MAX_HEAD`, the body by the caller's
//! maximum, and every read by a timeout.

use crate::http::{self, Head};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub struct Conn<S> {
    pub stream: S,
    buf: Vec<u8>,
    timeout: Duration,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(stream: S, timeout: Duration) -> Conn<S> {
        Conn { stream, buf: Vec::new(), timeout }
    }

    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n =
            tokio::time::timeout(self.timeout, self.stream.read(&mut chunk)).await.map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "read timed out"))??;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The next message; `None` when the peer closed between messages.
    pub async fn read(&mut self, max_body: usize) -> io::Result<Option<(Head, Vec<u8>)>> {
        let (head, used) = loop {
            if let Some(h) = http::parse(&self.buf).map_err(invalid)? {
                break h;
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() { Ok(None) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
            }
        };
        self.buf.drain(..used);
        let len = head.content_length().map_err(invalid)?;
        if len > max_body {
            return Err(invalid(format!("body of {len} bytes is over the limit of {max_body}")));
        }
        while self.buf.len() < len {
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        let body: Vec<u8> = self.buf.drain(..len).collect();
        Ok(Some((head, body)))
    }

    pub async fn write(&mut self, start: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<()> {
        let mut out = format!("{start}\r\n");
        for (n, v) in headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(body);
        tokio::time::timeout(self.timeout, async {
            self.stream.write_all(&bytes).await?;
            self.stream.flush().await
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?
    }
}
