//! LMTP client (RFC 2033) for handing mail to an existing mailbox server
//! such as Dovecot. One connection per batch carries all its messages; LMTP
//! answers DATA once per accepted recipient, so outcomes are per recipient.

use crate::outcome::{RcptOutcome, Work};
use port25_wire::reply;
use port25_wire::stuff::dot_stuff;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufStream};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LmtpAddress {
    Tcp(String),
    Unix(PathBuf),
}

impl std::str::FromStr for LmtpAddress {
    type Err = String;
    /// "unix:/run/dovecot/lmtp" or "host:port".
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            return Ok(LmtpAddress::Unix(path.into()));
        }
        if s.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) {
            return Ok(LmtpAddress::Tcp(s.to_owned()));
        }
        Err(format!("bad LMTP address {s:?}: use \"unix:/path/to/socket\" or \"host:port\""))
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Debug, Clone)]
pub struct Lmtp {
    pub address: LmtpAddress,
    pub hostname: String,
    pub timeout: Duration,
}

type Conn = BufStream<Box<dyn Io>>;

async fn read_reply(conn: &mut Conn) -> std::io::Result<(u16, String)> {
    let (code, lines) = read_reply_lines(conn).await?;
    Ok((code, format!("{code} {}", lines.join(" "))))
}

/// A reply's code and the text of each of its lines, read with the one
/// reply parser (port25_wire::reply) one line at a time, so nothing after
/// the reply is taken from the connection. What is not a reply (no code,
/// codes mixed in one reply, a line or a reply too long) is an error.
async fn read_reply_lines(conn: &mut Conn) -> std::io::Result<(u16, Vec<String>)> {
    let mut buf = Vec::new();
    loop {
        let n = (&mut *conn).take(reply::MAX_LINE as u64 + 2).read_until(b'\n', &mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "LMTP server closed the connection"));
        }
        match reply::parse(&buf) {
            Ok(Some((r, _))) => return Ok((r.code, r.lines.iter().map(|l| l.trim_end().to_owned()).collect())),
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::other(format!("malformed LMTP reply: {e}"))),
        }
    }
}

async fn command(conn: &mut Conn, line: &str) -> std::io::Result<(u16, String)> {
    conn.write_all(line.as_bytes()).await?;
    conn.write_all(b"\r\n").await?;
    conn.flush().await?;
    read_reply(conn).await
}

fn judge(code: u16, text: String) -> RcptOutcome {
    match code {
        200..=299 => RcptOutcome::Delivered,
        500..=599 => RcptOutcome::Failed(text),
        _ => RcptOutcome::Deferred(text),
    }
}

/// What the server's LHLO reply offers that the client uses.
#[derive(Debug, Clone, Copy, Default)]
struct Offers {
    smtputf8: bool,
}

impl Lmtp {
    /// Connects and says LHLO; what the server offers comes with it.
    async fn connect(&self) -> std::io::Result<(Conn, Offers)> {
        let io: Box<dyn Io> = match &self.address {
            LmtpAddress::Tcp(a) => Box::new(tokio::net::TcpStream::connect(a).await?),
            LmtpAddress::Unix(p) => Box::new(tokio::net::UnixStream::connect(p).await?),
        };
        let mut conn = BufStream::new(io);
        let (code, text) = read_reply(&mut conn).await?;
        if code != 220 {
            return Err(std::io::Error::other(format!("LMTP greeting: {text}")));
        }
        conn.write_all(format!("LHLO {}\r\n", self.hostname).as_bytes()).await?;
        conn.flush().await?;
        let (code, lines) = read_reply_lines(&mut conn).await?;
        if code != 250 {
            return Err(std::io::Error::other(format!("LHLO refused: {code} {}", lines.join(" "))));
        }
        // The first line greets; each other starts with a keyword.
        let keyword = |k: &str| {
            lines.iter().skip(1).any(|l| l.split_whitespace().next().is_some_and(|w| w.eq_ignore_ascii_case(k)))
        };
        Ok((conn, Offers { smtputf8: keyword("SMTPUTF8") }))
    }

    pub async fn deliver(&self, work: &[Work]) -> Vec<(usize, usize, RcptOutcome)> {
        let mut results = Vec::new();
        let mut pending: Vec<(usize, usize)> =
            work.iter().flat_map(|w| w.rcpts.iter().map(|&r| (w.index, r))).collect();
        let attempt = tokio::time::timeout(self.timeout, async {
            let (mut conn, offers) = self.connect().await?;
            for w in work {
                // RFC 6531: SMTPUTF8 when the message needs it; a server
                // without it cannot take the message (5.6.7), as outbound.
                let utf8 = port25_spool::smtputf8::needed(
                    &w.message.from,
                    w.rcpts.iter().map(|&r| w.message.rcpts[r].as_str()),
                    &w.message.content,
                );
                if utf8 && !offers.smtputf8 {
                    let text = format!(
                        "554 5.6.7 LMTP server {:?} does not support SMTPUTF8 (RFC 6531), which this message needs",
                        self.address
                    );
                    for &r in &w.rcpts {
                        results.push((w.index, r, RcptOutcome::Failed(text.clone())));
                    }
                    pending.retain(|(m, _)| *m != w.index);
                    continue;
                }
                let utf8 = if utf8 { " SMTPUTF8" } else { "" };
                let (code, text) = command(&mut conn, &format!("MAIL FROM:<{}>{utf8}", w.message.from)).await?;
                if code / 100 != 2 {
                    for &r in &w.rcpts {
                        results.push((w.index, r, judge(code, text.clone())));
                    }
                    pending.retain(|(m, _)| *m != w.index);
                    command(&mut conn, "RSET").await?;
                    continue;
                }
                let mut accepted = Vec::new();
                for &r in &w.rcpts {
                    let (code, text) = command(&mut conn, &format!("RCPT TO:<{}>", w.message.rcpts[r])).await?;
                    if code / 100 == 2 {
                        accepted.push(r);
                    } else {
                        results.push((w.index, r, judge(code, text)));
                        pending.retain(|&p| p != (w.index, r));
                    }
                }
                if accepted.is_empty() {
                    command(&mut conn, "RSET").await?;
                    continue;
                }
                let (code, text) = command(&mut conn, "DATA").await?;
                if code != 354 {
                    for &r in &accepted {
                        results.push((w.index, r, judge(code, text.clone())));
                        pending.retain(|&p| p != (w.index, r));
                    }
                    continue;
                }
                let mut body = Vec::new();
                dot_stuff(&w.message.content, &mut body);
                conn.write_all(&body).await?;
                conn.flush().await?;
                for &r in &accepted {
                    let (code, text) = read_reply(&mut conn).await?;
                    results.push((w.index, r, judge(code, text)));
                    pending.retain(|&p| p != (w.index, r));
                }
            }
            let _ = command(&mut conn, "QUIT").await;
            Ok::<(), std::io::Error>(())
        })
        .await;
        let error = match attempt {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("LMTP {:?}: {e}", self.address)),
            Err(_) => Some(format!("LMTP {:?}: timed out", self.address)),
        };
        if let Some(e) = error {
            for (m, r) in pending {
                results.push((m, r, RcptOutcome::Deferred(e.clone())));
            }
        }
        results
    }
}

/// The mailbox server's answer to "does this recipient exist?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Exists,
    /// Refused for good (5xx): the server's reply.
    Unknown(String),
    /// Down, slow, or a 4xx: why.
    CannotTell(String),
}

impl Lmtp {
    /// Asks the server whether `rcpt` exists, as delivery will ask it:
    /// LHLO, `MAIL FROM:<>`, `RCPT TO:<rcpt>`, then RSET and QUIT, no DATA
    /// (Postfix's address verification). The MX asks it at RCPT time so it
    /// refuses there what delivery would refuse after acceptance.
    pub async fn probe(&self, rcpt: &str, timeout: Duration) -> Probe {
        if rcpt.chars().any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>') {
            return Probe::Unknown(format!("{rcpt:?} is not an address"));
        }
        let attempt = tokio::time::timeout(timeout, async {
            let (mut conn, offers) = self.connect().await?;
            // A non-ASCII mailbox is asked about as delivery will send it:
            // with SMTPUTF8, and refused where the server lacks it (delivery
            // would fail 5.6.7 after acceptance).
            let mail = match (rcpt.is_ascii(), offers.smtputf8) {
                (true, _) => "MAIL FROM:<>",
                (false, true) => "MAIL FROM:<> SMTPUTF8",
                (false, false) => {
                    let _ = command(&mut conn, "QUIT").await;
                    return Ok(Probe::Unknown(
                        "5.6.7 the mailbox server does not offer SMTPUTF8 for a non-ASCII address".into(),
                    ));
                }
            };
            let (code, text) = command(&mut conn, mail).await?;
            if code / 100 != 2 {
                return Ok(Probe::CannotTell(format!("MAIL FROM:<> refused: {text}")));
            }
            let (code, text) = command(&mut conn, &format!("RCPT TO:<{rcpt}>")).await?;
            let _ = command(&mut conn, "RSET").await;
            let _ = command(&mut conn, "QUIT").await;
            Ok::<Probe, std::io::Error>(match code {
                200..=299 => Probe::Exists,
                500..=599 => Probe::Unknown(text),
                _ => Probe::CannotTell(text),
            })
        })
        .await;
        match attempt {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => Probe::CannotTell(format!("LMTP {:?}: {e}", self.address)),
            Err(_) => Probe::CannotTell(format!("LMTP {:?}: no answer within {} s", self.address, timeout.as_secs())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!("unix:/run/lmtp".parse::<LmtpAddress>(), Ok(LmtpAddress::Unix("/run/lmtp".into())));
        assert_eq!("127.0.0.1:24".parse::<LmtpAddress>(), Ok(LmtpAddress::Tcp("127.0.0.1:24".into())));
        assert!("nonsense".parse::<LmtpAddress>().is_err());
    }

    /// Replies are read with the wire crate's parser, one at a time, and
    /// what is no reply is an error (the old reader took "+12" for a code
    /// and let a multi-line reply change its code).
    #[tokio::test]
    async fn replies_are_read_one_at_a_time_and_garbage_is_an_error() {
        async fn conn(server_says: &[u8]) -> Conn {
            let (client, mut server) = tokio::io::duplex(1 << 16);
            server.write_all(server_says).await.unwrap();
            drop(server);
            BufStream::new(Box::new(client) as Box<dyn Io>)
        }
        let mut c =
            conn(b"250-lmtp.example\r\n250-SMTPUTF8\r\n250 PIPELINING \r\n250 2.1.5 ok\r\n452 4.2.2 full\r\n").await;
        assert_eq!(
            read_reply_lines(&mut c).await.unwrap(),
            (250, vec!["lmtp.example".into(), "SMTPUTF8".into(), "PIPELINING".into()])
        );
        assert_eq!(read_reply(&mut c).await.unwrap(), (250, "250 2.1.5 ok".into()));
        assert_eq!(read_reply(&mut c).await.unwrap(), (452, "452 4.2.2 full".into()));
        assert_eq!(read_reply(&mut c).await.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
        for garbage in [&b"+12 x\r\n"[..], b"250-a\r\n550 b\r\n", b"hello\r\n", b"650 x\r\n"] {
            let mut c = conn(garbage).await;
            let e = read_reply(&mut c).await.unwrap_err();
            assert!(e.to_string().starts_with("malformed LMTP reply"), "{garbage:?}: {e}");
        }
        let mut long = vec![b'2'; reply::MAX_LINE + 10];
        long.extend_from_slice(b"\r\n");
        let mut c = conn(&long).await;
        assert!(read_reply(&mut c).await.unwrap_err().to_string().starts_with("malformed LMTP reply"));
    }
}
