//! The client side of one SMTP conversation: write a command, read the
//! whole (possibly multi-line) reply, insist on the expected code. Any other
//! reply ends the session with an error naming the command and the reply, so
//! a benchmark cannot count a refused message as sent. Replies are parsed by
//! the outbound client's parser (`port25_wire::reply`), not a second one.

use anyhow::{bail, Result};
use port25_wire::reply::{self, Reply};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub struct Smtp<S> {
    io: S,
    /// Read but not yet parsed.
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<S> {
    pub fn new(stream: S) -> Smtp<S> {
        Smtp { io: stream, buf: Vec::with_capacity(4096) }
    }

    /// The stream back, for STARTTLS. Refuses if the server sent anything
    /// after its 220 (data injected before the handshake, RFC 3207 §5).
    pub fn into_inner(self) -> Result<S> {
        if !self.buf.is_empty() {
            bail!("server sent {} bytes after its STARTTLS reply", self.buf.len());
        }
        Ok(self.io)
    }

    pub async fn reply(&mut self) -> Result<Reply> {
        loop {
            if let Some((r, used)) = reply::parse(&self.buf)? {
                self.buf.drain(..used);
                return Ok(r);
            }
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed by the server");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn expect(&mut self, want: u16, what: &str) -> Result<Reply> {
        let r = self.reply().await?;
        if r.code != want {
            bail!("{what}: expected {want}, got {:?}", r.one_line());
        }
        Ok(r)
    }

    pub async fn command(&mut self, bytes: &[u8], want: u16, what: &str) -> Result<Reply> {
        self.send(bytes).await?;
        self.expect(want, what).await
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await?;
        Ok(())
    }
}
