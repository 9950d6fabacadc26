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
    /// Every byte read from the stream so far (the collector logs it with a
    /// refusal: what an unauthenticated peer made us read).
    read_total: u64,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(stream: S, timeout: Duration) -> Conn<S> {
        Conn { stream, buf: Vec::new(), timeout, read_total: 0 }
    }

    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(self.timeout, self.stream.read(&mut chunk))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "read timed out"))??;
        self.buf.extend_from_slice(&chunk[..n]);
        self.read_total += n as u64;
        Ok(n)
    }

    pub fn bytes_read(&self) -> u64 {
        self.read_total
    }

    /// The next message; `None` when the peer closed between messages.
    pub async fn read(&mut self, max_body: usize) -> io::Result<Option<(Head, Vec<u8>)>> {
        let Some(head) = self.read_head().await? else {
            return Ok(None);
        };
        let len = head.content_length().map_err(invalid)?;
        if len > max_body {
            return Err(invalid(format!("body of {len} bytes is over the limit of {max_body}")));
        }
        let body = self.read_body(len).await?;
        Ok(Some((head, body)))
    }

    /// The next head only (at most `http::MAX_HEAD`), so that the caller can
    /// judge it (the collector checks the token) before any body is read;
    /// `None` when the peer closed between messages.
    pub async fn read_head(&mut self) -> io::Result<Option<Head>> {
        let (head, used) = loop {
            if let Some(h) = http::parse(&self.buf).map_err(invalid)? {
                break h;
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() { Ok(None) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
            }
        };
        self.buf.drain(..used);
        Ok(Some(head))
    }

    /// The `len` bytes of body after a head; the caller has checked `len`
    /// against its limit.
    pub async fn read_body(&mut self, len: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < len {
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..len).collect())
    }

    /// Writes bytes as they are (an interim `100 Continue`).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        tokio::time::timeout(self.timeout, async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?
    }

    /// Ends the connection after a final answer that closes it: shuts the
    /// write side (TLS close_notify, then FIN), then reads and discards what
    /// the peer was still sending, at most `max` bytes and for at most
    /// `wait`, so that the peer reads the answer instead of a reset
    /// ("lingering close"); then the stream is dropped. Returns every byte
    /// read on the connection.
    pub async fn close_lingering(mut self, max: u64, wait: Duration) -> u64 {
        let _ = tokio::time::timeout(self.timeout, self.stream.shutdown()).await;
        let start = self.read_total;
        let _ = tokio::time::timeout(wait, async {
            let mut chunk = [0u8; 16 * 1024];
            while self.read_total - start < max {
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.read_total += n as u64,
                }
            }
        })
        .await;
        self.read_total
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
