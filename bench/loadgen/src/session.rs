//! One client session, as a mail client does it: connect, TLS (implicit or
//! STARTTLS, or none for the MX path), EHLO, AUTH PLAIN, a number of
//! messages one after another (no pipelining: smtp-source and the usual
//! mail clients wait for each reply), QUIT.

use crate::smtp::Smtp;
use anyhow::{Context, Result};
use base64::Engine;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    let tcp = TcpStream::connect(plan.server).await.context("connect")?;
    tcp.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::try_from("bench.invalid").expect("a valid name");
    match plan.tls {
        Tls::None => {
            let mut s = Smtp::new(tcp);
            s.expect(220, "greeting").await?;
            ehlo(&mut s).await?;
            dialogue(plan, s).await
        }
        Tls::Implicit => {
            let tls = plan.connector.connect(name, tcp).await.context("TLS handshake")?;
            let mut s = Smtp::new(tls);
            s.expect(220, "greeting").await?;
            ehlo(&mut s).await?;
            dialogue(plan, s).await
        }
        Tls::Starttls => {
            let mut s = Smtp::new(tcp);
            s.expect(220, "greeting").await?;
            ehlo(&mut s).await?;
            s.command(b"STARTTLS\r\n", 220, "STARTTLS").await?;
            let tls = plan.connector.connect(name, s.into_inner()?).await.context("TLS handshake")?;
            let mut s = Smtp::new(tls);
            ehlo(&mut s).await?;
            dialogue(plan, s).await
        }
    }
}

async fn ehlo<S: AsyncRead + AsyncWrite + Unpin>(s: &mut Smtp<S>) -> Result<()> {
    s.command(b"EHLO bench.example\r\n", 250, "EHLO").await.map(drop)
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
    fn plain_initial_response_is_rfc_4616() {
        // base64("\0user\0pass")
        assert_eq!(plain_initial_response("user", "pass"), "AHVzZXIAcGFzcw==");
    }
}
