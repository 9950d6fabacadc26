//! One client session, as a mail client does it: connect, TLS (implicit or
//! STARTTLS, or none for the MX path), EHLO, AUTH PLAIN, a number of
//! messages one after another (no pipelining: smtp-source and the usual
//! mail clients wait for each reply), QUIT.

use crate::smtp::Smtp;
use anyhow::bail;
use anyhow::{Context, Result};
use base64::Engine;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tls {
    /// Plain SMTP (the MX path; no AUTH then, unless asked for)
    None,
    /// STARTTLS after the first EHLO (port 587)
    Starttls,
    /// TLS from the first byte (port 465, RFC 8314)
    Implicit,
}

pub struct Plan {
    pub server: SocketAddr,
    pub tls: Tls,
    pub connector: TlsConnector,
    /// The PLAIN initial response, already base64-encoded.
    pub auth: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub messages: usize,
    /// The message without its Message-ID line, which is added per message.
    pub body: Vec<u8>,
    /// Messages sent by every session so far (acknowledged with 250).
    pub sent: AtomicU64,
    pub message_ids: AtomicU64,
    /// Local addresses to connect from, in turn (empty: the kernel's choice).
    pub sources: Vec<IpAddr>,
    pub next_source: AtomicU64,
    /// "EHLO name\r\n"
    pub ehlo: Vec<u8>,
    /// --refused: sessions refused before the banner, and let in.
    pub refused: AtomicU64,
    pub let_in: AtomicU64,
}

/// The most source addresses one run takes (a range is expanded).
const MAX_SOURCES: u64 = 1 << 16;

/// `--source` values: single addresses, or inclusive IPv4 ranges `A-B`.
pub fn sources(args: &[String]) -> Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for a in args {
        match a.split_once('-') {
            Some((first, last)) => {
                let first: Ipv4Addr = first.trim().parse().with_context(|| format!("--source {a}: first address"))?;
                let last: Ipv4Addr = last.trim().parse().with_context(|| format!("--source {a}: last address"))?;
                let (first, last) = (u32::from(first), u32::from(last));
                if last < first || u64::from(last - first) + out.len() as u64 >= MAX_SOURCES {
                    bail!("--source {a}: empty range or more than {MAX_SOURCES} addresses");
                }
                out.extend((first..=last).map(|n| IpAddr::V4(Ipv4Addr::from(n))));
            }
            None => out.push(a.trim().parse().with_context(|| format!("--source {a}: not an address"))?),
        }
    }
    Ok(out)
}

/// A prepared message (`--message`): CRLF line ends, dot-stuffed, ending
/// in CRLF, ready to go between DATA and the final dot.
pub fn from_file(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32 + 2);
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn connect(plan: &Plan) -> Result<TcpStream> {
    let tcp = if plan.sources.is_empty() {
        TcpStream::connect(plan.server).await.context("connect")?
    } else {
        let i = plan.next_source.fetch_add(1, Ordering::Relaxed) % plan.sources.len() as u64;
        let source = plan.sources[i as usize];
        let socket = match source {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.bind(SocketAddr::new(source, 0)).with_context(|| format!("bind {source}"))?;
        socket.connect(plan.server).await.with_context(|| format!("connect from {source}"))?
    };
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// How long a refused session may take (the server's greet wait and its
/// DNS questions) before it counts as a failure.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(60);

/// A session that the server should refuse before its banner ends: reads
/// reply lines (a `220-` teaser may come first) until a 4xx/5xx line (then
/// the close) or a complete `220 ` banner (let in: QUIT). A line that is
/// not a reply, more than 64 KiB, or no decision within REFUSAL_TIMEOUT is a
/// failure.
pub async fn expect_refusal(plan: &Plan) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = connect(plan).await?;
    let work = async {
        let mut buf = Vec::with_capacity(512);
        let mut chunk = [0u8; 1024];
        loop {
            while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let code = line.get(..3).filter(|c| c.iter().all(u8::is_ascii_digit));
                match (code.map(|c| c[0]), line.get(3)) {
                    (Some(b'4' | b'5'), _) => return Ok(true),
                    (Some(b'2'), Some(b' ')) if code == Some(b"220") => return Ok(false),
                    (Some(b'2'), Some(b'-')) => {}
                    _ => bail!("not a greeting line: {:?}", String::from_utf8_lossy(&line)),
                }
            }
            if buf.len() > 65536 {
                bail!("greeting longer than 64 KiB");
            }
            let n = tcp.read(&mut chunk).await?;
            if n == 0 {
                bail!("closed before any refusal or banner");
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    match tokio::time::timeout(REFUSAL_TIMEOUT, work).await {
        Err(_) => bail!("no refusal and no banner within {REFUSAL_TIMEOUT:?}"),
        Ok(Err(e)) => Err(e),
        Ok(Ok(true)) => {
            plan.refused.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Ok(Ok(false)) => {
            plan.let_in.fetch_add(1, Ordering::Relaxed);
            let _ = tcp.write_all(b"QUIT\r\n").await;
            Ok(())
        }
    }
}

pub fn plain_initial_response(login: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0{login}\0{password}"))
}

/// A message of about `size` bytes: the headers a mail client writes (the
/// Message-ID comes per message), then 78-byte lines. Lines never start
/// with a dot, so no dot-stuffing is needed.
pub fn body(from: &str, to: &str, size: usize) -> Vec<u8> {
    let mut b = format!("Date: Tue, 1 Dec 2026 12:00:00 +0000\r\nFrom: <{from}>\r\nTo: <{to}>\r\nSubject: bench\r\nMIME-Version: 1.0\r\n\r\n").into_bytes();
    while b.len() + 78 <= size {
        b.extend_from_slice(&[b'x'; 76]);
        b.extend_from_slice(b"\r\n");
    }
    b
}

pub async fn run(plan: &Arc<Plan>) -> Result<()> {
    let tcp = connect(plan).await?;
    let name = rustls::pki_types::ServerName::try_from("bench.invalid").expect("a valid name");
    match plan.tls {
        Tls::None => {
            let mut s = Smtp::new(tcp);
            s.expect(220, "greeting").await?;
            ehlo(plan, &mut s).await?;
            dialogue(plan, s).await
        }
        Tls::Implicit => {
            let tls = plan.connector.connect(name, tcp).await.context("TLS handshake")?;
            let mut s = Smtp::new(tls);
            s.expect(220, "greeting").await?;
            ehlo(plan, &mut s).await?;
            dialogue(plan, s).await
        }
        Tls::Starttls => {
            let mut s = Smtp::new(tcp);
            s.expect(220, "greeting").await?;
            ehlo(plan, &mut s).await?;
            s.command(b"STARTTLS\r\n", 220, "STARTTLS").await?;
            let tls = plan.connector.connect(name, s.into_inner()?).await.context("TLS handshake")?;
            let mut s = Smtp::new(tls);
            ehlo(plan, &mut s).await?;
            dialogue(plan, s).await
        }
    }
}

async fn ehlo<S: AsyncRead + AsyncWrite + Unpin>(plan: &Plan, s: &mut Smtp<S>) -> Result<()> {
    s.command(&plan.ehlo, 250, "EHLO").await.map(drop)
}

async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(plan: &Plan, mut s: Smtp<S>) -> Result<()> {
    if let Some(auth) = &plan.auth {
        s.command(format!("AUTH PLAIN {auth}\r\n").as_bytes(), 235, "AUTH PLAIN").await?;
    }
    let mail = format!("MAIL FROM:<{}>\r\n", plan.from).into_bytes();
    let rcpts: Vec<Vec<u8>> = plan.to.iter().map(|t| format!("RCPT TO:<{t}>\r\n").into_bytes()).collect();
    let mut data = Vec::with_capacity(plan.body.len() + 64);
    for _ in 0..plan.messages {
        s.command(&mail, 250, "MAIL FROM").await?;
        for r in &rcpts {
            s.command(r, 250, "RCPT TO").await?;
        }
        s.command(b"DATA\r\n", 354, "DATA").await?;
        let id = plan.message_ids.fetch_add(1, Ordering::Relaxed);
        data.clear();
        data.extend_from_slice(format!("Message-ID: <{id}.{}@bench.example>\r\n", std::process::id()).as_bytes());
        data.extend_from_slice(&plan.body);
        data.extend_from_slice(b".\r\n");
        s.command(&data, 250, "end of data").await?;
        plan.sent.fetch_add(1, Ordering::Relaxed);
    }
    s.command(b"QUIT\r\n", 221, "QUIT").await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_about_the_size_asked_in_crlf_lines_that_need_no_dot_stuffing() {
        for size in [0, 300, 2048, 100_000] {
            let b = body("a@x.example", "b@y.example", size);
            assert!(b.len() <= size.max(160) && b.len() + 78 > size, "{size}: {} bytes", b.len());
            let text = String::from_utf8(b).unwrap();
            assert!(text.ends_with("\r\n") && !text.replace("\r\n", "").contains(['\r', '\n']), "CRLF only");
            assert!(text.split("\r\n").all(|l| !l.starts_with('.')));
            assert!(text.contains("\r\nFrom: <a@x.example>\r\n"));
        }
    }

    #[test]
    fn message_files_become_crlf_and_dot_stuffed() {
        assert_eq!(from_file(b"A: b\n\n.x\r\ny\n..\nlast"), b"A: b\r\n\r\n..x\r\ny\r\n...\r\nlast\r\n");
    }

    #[test]
    fn sources_expand_ranges_and_refuse_nonsense() {
        let s = sources(&["127.0.3.1-127.0.3.3".into(), "::1".into()]).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s[2], "127.0.3.3".parse::<IpAddr>().unwrap());
        assert!(sources(&["127.0.3.3-127.0.3.1".into()]).is_err());
        assert!(sources(&["0.0.0.0-255.255.255.255".into()]).is_err());
        assert!(sources(&["host".into()]).is_err());
    }

    #[test]
    fn plain_initial_response_is_rfc_4616() {
        // base64("\0user\0pass")
        assert_eq!(plain_initial_response("user", "pass"), "AHVzZXIAcGFzcw==");
    }
}
