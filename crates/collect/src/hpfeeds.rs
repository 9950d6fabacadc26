//! Publishing capture events to an hpfeeds broker, the honeypot community's
//! feed (cowrie, dionaea and friends publish there): each event's JSON line
//! goes to one channel as it is logged.
//!
//! Best effort by design, like other honeypots' hpfeeds outputs: events
//! that arrive while the broker is unreachable, or faster than it takes
//! them (past a bounded queue), are dropped and counted; the capture log
//! and the collector are the durable path.
//!
//! Wire format (hpfeeds v1): every message is `u32 length` (big-endian,
//! header included) `u8 opcode` then fields; strings are `u8 length` +
//! bytes. The broker opens with INFO (name, 4-byte nonce); the client
//! answers AUTH (ident, SHA-1(nonce ‖ secret)) and then sends PUBLISH
//! (ident, channel, payload).

use port25_events as ev;
use port25_events::emit;
use serde::Deserialize;
use sha1::{Digest, Sha1};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const OP_ERROR: u8 = 0;
pub const OP_INFO: u8 = 1;
pub const OP_AUTH: u8 = 2;
pub const OP_PUBLISH: u8 = 3;
/// Larger broker messages are refused rather than buffered.
const MAX_MESSAGE: usize = 1 << 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpfeedsConfig {
    /// `host:port` of the broker.
    pub broker: String,
    pub ident: String,
    pub secret: String,
    #[serde(default = "default_channel")]
    pub channel: String,
}

fn default_channel() -> String {
    "spampot.events".into()
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(s.len().min(255) as u8);
    out.extend_from_slice(&s[..s.len().min(255)]);
}

fn frame(op: u8, body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 5) as u32).to_be_bytes().to_vec();
    out.push(op);
    out.extend_from_slice(body);
    out
}

pub fn auth(ident: &str, nonce: &[u8], secret: &str) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, ident.as_bytes());
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(secret.as_bytes());
    body.extend_from_slice(&h.finalize());
    frame(OP_AUTH, &body)
}

pub fn publish(ident: &str, channel: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, ident.as_bytes());
    put_str(&mut body, channel.as_bytes());
    body.extend_from_slice(payload);
    frame(OP_PUBLISH, &body)
}

/// (opcode, body, bytes used) of one message.
pub type Frame<'a> = (u8, &'a [u8], usize);

/// The complete message at the start of `buf`; `Ok(None)`: more bytes
/// needed. Pure.
pub fn parse(buf: &[u8]) -> Result<Option<Frame<'_>>, &'static str> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(5..=MAX_MESSAGE).contains(&len) {
        return Err("bad hpfeeds message length");
    }
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some((buf[4], &buf[5..len], len)))
}

/// The nonce of an INFO body (name, then 4 random bytes).
pub fn info_nonce(body: &[u8]) -> Option<&[u8]> {
    let n = *body.first()? as usize;
    body.get(1 + n..).filter(|r| r.len() == 4)
}

async fn session(
    config: &HpfeedsConfig,
    rx: &mut mpsc::Receiver<Vec<u8>>,
    shutdown: &CancellationToken,
) -> io::Result<()> {
    let mut s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&config.broker))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    let mut buf = Vec::new();
    let nonce = loop {
        if let Some((op, body, _)) = parse(&buf).map_err(io::Error::other)? {
            if op != OP_INFO {
                return Err(io::Error::other("broker did not start with INFO"));
            }
            break info_nonce(body).ok_or_else(|| io::Error::other("malformed INFO"))?.to_vec();
        }
        let mut chunk = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    s.write_all(&auth(&config.ident, &nonce, &config.secret)).await?;
    let (mut read, mut write) = s.into_split();
    let mut scratch = [0u8; 512];
    loop {
        tokio::select! {
            line = rx.recv() => {
                let Some(line) = line else { return Ok(()) };
                let payload = line.strip_suffix(b"\n").unwrap_or(&line);
                write.write_all(&publish(&config.ident, &config.channel, payload)).await?;
            }
            // The broker only writes to a publisher to say it is wrong
            // (ERROR, e.g. bad secret or channel), then closes.
            n = read.read(&mut scratch) => {
                let n = n?;
                let why = parse(&scratch[..n]).ok().flatten().filter(|(op, _, _)| *op == OP_ERROR).map(|(_, b, _)| String::from_utf8_lossy(b).into_owned());
                return Err(io::Error::other(why.unwrap_or_else(|| "broker closed the connection".into())));
            }
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}

/// Publishes what arrives on `rx` until `shutdown`, reconnecting with a
/// growing pause; events that arrive while disconnected are dropped.
pub async fn run(config: HpfeedsConfig, mut rx: mpsc::Receiver<Vec<u8>>, shutdown: CancellationToken) {
    let mut backoff = Duration::from_secs(1);
    loop {
        if let Err(e) = session(&config, &mut rx, &shutdown).await {
            emit!(warn, ev::SPAMPOT_HPFEEDS_FAILED, broker = %config.broker, error = %e, retry_in_ms = backoff.as_millis() as u64);
        }
        if shutdown.is_cancelled() || rx.is_closed() {
            return;
        }
        let until = tokio::time::Instant::now() + backoff;
        let mut dropped = 0u64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                m = rx.recv() => if m.is_none() { return } else { dropped += 1 },
                _ = shutdown.cancelled() => return,
            }
        }
        if dropped > 0 {
            emit!(warn, ev::SPAMPOT_HPFEEDS_FAILED, broker = %config.broker, dropped, error = "events dropped while the broker was unreachable");
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_auth() {
        let p = publish("sensor", "chan", b"{}");
        assert_eq!(p, b"\x00\x00\x00\x13\x03\x06sensor\x04chan{}");
        assert_eq!(parse(&p).unwrap(), Some((OP_PUBLISH, &p[5..], p.len())));
        assert_eq!(parse(&p[..7]).unwrap(), None);
        assert!(parse(b"\x00\x00\x00\x01\x03").is_err());
        let info = frame(OP_INFO, b"\x07hpfeeds\x01\x02\x03\x04");
        let (_, body, _) = parse(&info).unwrap().unwrap();
        assert_eq!(info_nonce(body), Some(&[1u8, 2, 3, 4][..]));
        // SHA-1("\x01\x02\x03\x04" + "s3cret"), as the broker computes it.
        let a = auth("id", &[1, 2, 3, 4], "s3cret");
        let mut h = Sha1::new();
        h.update([1u8, 2, 3, 4]);
        h.update(b"s3cret");
        assert_eq!(&a[a.len() - 20..], &h.finalize()[..]);
    }
}
