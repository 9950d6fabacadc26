//! The client side of one SMTP conversation: write a command, read the
//! whole (possibly multi-line) reply, insist on the expected code. Any other
//! reply ends the session with an error naming the command and the reply, so
//! a benchmark cannot count a refused message as sent.

use anyhow::{anyhow, bail, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

pub struct Smtp<S> {
    io: BufReader<S>,
    line: String,
}

/// A reply: its code and its last line (enough for errors).
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<S> {
    pub fn new(stream: S) -> Smtp<S> {
        Smtp { io: BufReader::with_capacity(4096, stream), line: String::new() }
    }

    /// The stream back, for STARTTLS. Refuses if the server sent anything
    /// after its 220 (data injected before the handshake, RFC 3207 §5).
    pub fn into_inner(self) -> Result<S> {
        if !self.io.buffer().is_empty() {
            bail!("server sent {} bytes after its STARTTLS reply", self.io.buffer().len());
        }
        Ok(self.io.into_inner())
    }

    pub async fn reply(&mut self) -> Result<Reply> {
        loop {
            self.line.clear();
            if self.io.read_line(&mut self.line).await? == 0 {
                bail!("connection closed by the server");
            }
            let l = self.line.trim_end_matches(['\r', '\n']);
            let code: u16 = l.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| anyhow!("not an SMTP reply: {l:?}"))?;
            if l.as_bytes().get(3) != Some(&b'-') {
                let text = l.to_string();
                return Ok(Reply { code, text });
            }
        }
    }

    pub async fn expect(&mut self, want: u16, what: &str) -> Result<Reply> {
        let r = self.reply().await?;
        if r.code != want {
            bail!("{what}: expected {want}, got {:?}", r.text);
        }
        Ok(r)
    }

    pub async fn command(&mut self, bytes: &[u8], want: u16, what: &str) -> Result<Reply> {
        self.send(bytes).await?;
        self.expect(want, what).await
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        let w = self.io.get_mut();
        w.write_all(bytes).await?;
        w.flush().await?;
        Ok(())
    }
}
