//! The SMTP client for one connection to a remote MX or the smarthost:
//! greeting, EHLO (HELO when EHLO is refused), STARTTLS, AUTH PLAIN, then
//! any number of transactions on the same connection (the queue sends the
//! next message for the same destination instead of reconnecting).
//!
//! SMTPUTF8 (RFC 6531) goes on MAIL FROM when the message needs it
//! (port25_spool::smtputf8); a server that does not offer it gets no such
//! message: its recipients fail with 5.6.7.
//!
//! With PIPELINING (RFC 2920) MAIL, every RCPT and DATA go out in one
//! write and the replies are read in order; without it, one at a time.
//! Every read has a timeout. A reply that is not SMTP or a connection that
//! drops ends the connection, and what was in flight is deferred: only a
//! 250 to the final dot counts as delivered.

use crate::tls_policy::TlsPolicy;
use port25_wire::reply::{self, Reply};
use port25_wire::stuff::dot_stuff;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub helo_name: String,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// For the reply to the final dot (RFC 5321 §4.5.3.2.6: 10 minutes).
    pub data_timeout: Duration,
    /// For remote MXes: any certificate (opportunistic TLS).
    pub tls: Arc<rustls::ClientConfig>,
    /// For the smarthost ([`TlsPolicy::Verified`] and
    /// [`TlsPolicy::VerifiedIfOffered`]): a verifying configuration
    /// (`tls_policy::smarthost_config`). None: those policies cannot
    /// start TLS, so they defer.
    pub smarthost_tls: Option<Arc<rustls::ClientConfig>>,
    /// Checks MX certificates under MTA-STS ([`TlsPolicy::Sts`],
    /// [`TlsPolicy::StsTesting`]); None: MTA-STS is off, and those policies
    /// are never chosen (`Sts` would defer).
    pub sts: Option<crate::mta_sts::Fetcher>,
}

#[derive(Debug, Clone, Default)]
pub struct Extensions {
    pub pipelining: bool,
    pub starttls: bool,
    pub size: Option<usize>,
    pub auth_plain: bool,
    pub eightbitmime: bool,
    pub smtputf8: bool,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Closed,
}

/// A connection that is ready for MAIL FROM.
pub struct Session {
    io: Io,
    buf: Vec<u8>,
    /// The host name (or address) we are talking to, for reports.
    pub host: String,
    pub addr: SocketAddr,
    pub ext: Extensions,
    pub tls: bool,
    /// Under [`TlsPolicy::StsTesting`]: why the certificate did not pass
    /// (TLS-RPT result type, reason); the mail is sent all the same.
    pub tls_failure: Option<(&'static str, String)>,
    /// Our end of the connection (TLS-RPT's sending-mta-ip).
    pub local_ip: Option<std::net::IpAddr>,
    settings: ClientSettings,
}

/// Why a connection could not be set up. `permanent` only for a 5xx
/// greeting or EHLO/HELO; the queue then tries the next MX all the same.
#[derive(Debug, Clone)]
pub struct ConnectFailure {
    pub reason: String,
    /// TLS required but not offered, or failed: a new connection to the
    /// same host would not help.
    pub tls: bool,
    /// The STARTTLS handshake failed under the opportunistic policy: the
    /// same address may be tried again with [`TlsPolicy::Cleartext`].
    pub retry_cleartext: bool,
    /// Under an MTA-STS policy, what failed as TLS-RPT (RFC 8460 §4.3)
    /// names it: `starttls-not-supported`, `certificate-host-mismatch`, ...
    pub result: Option<&'static str>,
}

/// The result for one recipient of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered(String),
    Deferred { reply: String, status: String },
    Failed { reply: String, status: String },
}

fn verdict_from(r: &Reply) -> Verdict {
    let status = crate::dsn::status_of(r.enhanced(), r.code);
    if r.is_permanent() {
        Verdict::Failed { reply: r.one_line(), status }
    } else if r.is_temporary() {
        Verdict::Deferred { reply: r.one_line(), status }
    } else {
        Verdict::Delivered(r.one_line())
    }
}

impl Session {
    /// Connects, reads the greeting, says EHLO and does STARTTLS (and AUTH
    /// when credentials are given) as `policy` asks.
    pub async fn connect(
        addr: SocketAddr,
        host: &str,
        settings: &ClientSettings,
        policy: TlsPolicy,
        auth: Option<(&str, &str)>,
        dane: Option<&crate::dane::DaneHost>,
    ) -> Result<Session, ConnectFailure> {
        let fail = |reason: String| ConnectFailure { reason, tls: false, retry_cleartext: false, result: None };
        let tls_fail = |reason: String| ConnectFailure {
            reason,
            tls: true,
            retry_cleartext: false,
            result: policy.sts().then_some("starttls-not-supported"),
        };
        let stream = match tokio::time::timeout(settings.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(fail(format!("connect to {host}[{addr}]: {e}"))),
            Err(_) => return Err(fail(format!("connect to {host}[{addr}]: timed out"))),
        };
        let _ = stream.set_nodelay(true);
        let local_ip = stream.local_addr().ok().map(|a| a.ip());
        let mut s = Session {
            io: Io::Plain(stream),
            buf: Vec::with_capacity(4096),
            host: host.to_owned(),
            addr,
            ext: Extensions::default(),
            tls: false,
            tls_failure: None,
            local_ip,
            settings: settings.clone(),
        };
        let greeting = s.read_reply(settings.command_timeout).await.map_err(fail)?;
        if !greeting.is_positive() {
            return Err(fail(format!("{host}[{addr}] greeted with {}", greeting.one_line())));
        }
        s.hello().await.map_err(fail)?;
        let verified = matches!(policy, TlsPolicy::Verified | TlsPolicy::VerifiedIfOffered);
        let must = matches!(policy, TlsPolicy::Required | TlsPolicy::Verified | TlsPolicy::Sts | TlsPolicy::Dane);
        if s.ext.starttls && policy != TlsPolicy::Cleartext {
            let r = s.command("STARTTLS").await.map_err(fail)?;
            if r.code == 220 {
                let config = if verified { settings.smarthost_tls.clone() } else { Some(settings.tls.clone()) };
                let started = match config {
                    Some(config) => s.start_tls(config).await,
                    None => Err(std::io::Error::other("no verifying TLS configuration for the smarthost")),
                };
                if let Err(e) = started {
                    // Credentials are never sent in clear because of a broken
                    // handshake, and an unverified smarthost gets nothing.
                    let retry_cleartext =
                        matches!(policy, TlsPolicy::Opportunistic | TlsPolicy::StsTesting) && auth.is_none();
                    let what = if verified { "verified TLS" } else { "TLS handshake" };
                    return Err(ConnectFailure {
                        reason: format!("{what} with {host}[{addr}] failed: {e}"),
                        tls: !retry_cleartext,
                        retry_cleartext,
                        result: policy.sts().then_some("validation-failure"),
                    });
                }
                if policy.sts() {
                    // RFC 8461 §4.2: valid for the MX name, from a trusted CA;
                    // RFC 7672 §3: the chain matches the TLSA records.
                    let checked = match (policy, dane, &settings.sts, &s.io) {
                        (TlsPolicy::Dane, Some(d), _, Io::Tls(_)) => s.verify_dane(d),
                        (TlsPolicy::Dane, None, _, _) => {
                            Err(("tlsa-invalid", "no TLSA records to check the certificate with".to_owned()))
                        }
                        (_, _, Some(sts), Io::Tls(t)) => {
                            sts.verify_mx(t.get_ref().1.peer_certificates().unwrap_or_default(), host)
                        }
                        _ => Err(("validation-failure", "MTA-STS is off: no certificate check".to_owned())),
                    };
                    if let Err((result, reason)) = checked {
                        if policy.enforced() {
                            let what = if policy == TlsPolicy::Dane { "DANE" } else { "MTA-STS enforce" };
                            // Nothing more is said on this connection, EHLO included.
                            return Err(ConnectFailure {
                                reason: format!("{host}[{addr}] under {what}: {reason}"),
                                tls: true,
                                retry_cleartext: false,
                                result: Some(result),
                            });
                        }
                        s.tls_failure = Some((result, reason));
                    }
                }
                s.hello().await.map_err(fail)?;
            } else if must {
                return Err(tls_fail(format!("TLS is required but {host}[{addr}] refused STARTTLS: {}", r.one_line())));
            } else if auth.is_some() {
                return Err(tls_fail(format!(
                    "{host}[{addr}] offered STARTTLS but refused it ({}): AUTH is not sent in clear",
                    r.one_line()
                )));
            }
        } else if must {
            return Err(tls_fail(format!("TLS is required but {host}[{addr}] does not offer STARTTLS")));
        }
        if auth.is_some() && !(s.tls && verified) {
            // Whatever the policy says: credentials only over TLS whose
            // certificate was verified.
            return Err(tls_fail(format!("{host}[{addr}]: AUTH is only sent over verified TLS")));
        }
        if let Some((user, password)) = auth {
            let token = port25_wire::base64::encode(format!("\0{user}\0{password}").as_bytes());
            let r = s.command(&format!("AUTH PLAIN {token}")).await.map_err(fail)?;
            if r.code != 235 {
                return Err(fail(format!("{host}[{addr}] refused AUTH PLAIN for {user}: {}", r.one_line())));
            }
        }
        Ok(s)
    }

    /// Whether this session's certificate is valid for `host` under
    /// MTA-STS (another domain's MX name for the same address, which
    /// shares the connection).
    pub fn verify_mx(&self, host: &str) -> Result<(), (&'static str, String)> {
        match (&self.settings.sts, &self.io) {
            (Some(sts), Io::Tls(t)) => sts.verify_mx(t.get_ref().1.peer_certificates().unwrap_or_default(), host),
            (None, _) => Err(("validation-failure", "MTA-STS is off: no certificate check".to_owned())),
            _ => Err(("starttls-not-supported", format!("no TLS with {}", self.host))),
        }
    }

    /// Whether this session's certificate chain matches `dane`'s TLSA
    /// records (another domain's MX at the same address is checked for
    /// its own).
    pub fn verify_dane(&self, dane: &crate::dane::DaneHost) -> Result<(), (&'static str, String)> {
        let Io::Tls(t) = &self.io else { return Err(("starttls-not-supported", format!("no TLS with {}", self.host))) };
        let chain = t.get_ref().1.peer_certificates().unwrap_or_default();
        let mut why = String::new();
        for name in &dane.names {
            match crate::dane::verify(chain, &dane.records, name) {
                Ok(()) => return Ok(()),
                Err(e) => why = e,
            }
        }
        Err(("tlsa-invalid", format!("the certificate of {} matches none of its TLSA records: {why}", self.host)))
    }

    async fn hello(&mut self) -> Result<(), String> {
        let name = self.settings.helo_name.clone();
        let r = self.command(&format!("EHLO {name}")).await?;
        if r.is_positive() {
            let mut ext = Extensions::default();
            for (k, v) in r.ehlo_keywords() {
                match k.as_str() {
                    "PIPELINING" => ext.pipelining = true,
                    "STARTTLS" => ext.starttls = !self.tls,
                    "SIZE" => ext.size = v.parse().ok().filter(|&n| n > 0),
                    "8BITMIME" => ext.eightbitmime = true,
                    "SMTPUTF8" => ext.smtputf8 = true,
                    "AUTH" => ext.auth_plain = v.split_whitespace().any(|m| m.eq_ignore_ascii_case("PLAIN")),
                    _ => {}
                }
            }
            self.ext = ext;
            return Ok(());
        }
        let r = self.command(&format!("HELO {name}")).await?;
        if r.is_positive() {
            self.ext = Extensions::default();
            Ok(())
        } else {
            Err(format!("{} refused EHLO and HELO: {}", self.host, r.one_line()))
        }
    }

    async fn start_tls(&mut self, config: Arc<rustls::ClientConfig>) -> std::io::Result<()> {
        let Io::Plain(stream) = std::mem::replace(&mut self.io, Io::Closed) else {
            return Err(std::io::Error::other("STARTTLS on a connection that is not plaintext"));
        };
        // A server must not send anything after its 220 before the handshake.
        self.buf.clear();
        let name = match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(self.host.clone()).unwrap_or(ServerName::IpAddress(self.addr.ip().into())),
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = tokio::time::timeout(self.settings.command_timeout, connector.connect(name, stream))
            .await
            .map_err(|_| std::io::Error::other("timed out"))??;
        self.io = Io::Tls(Box::new(tls));
        self.tls = true;
        Ok(())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let r = match &mut self.io {
            Io::Plain(s) => s.write_all(bytes).await,
            Io::Tls(s) => match s.write_all(bytes).await {
                Ok(()) => s.flush().await,
                Err(e) => Err(e),
            },
            Io::Closed => return Err("connection closed".into()),
        };
        r.map_err(|e| format!("write to {}[{}]: {e}", self.host, self.addr))
    }

    async fn read_reply(&mut self, timeout: Duration) -> Result<Reply, String> {
        loop {
            match reply::parse(&self.buf) {
                Ok(Some((r, used))) => {
                    self.buf.drain(..used);
                    return Ok(r);
                }
                Ok(None) => {}
                Err(e) => return Err(format!("{}[{}] sent a malformed reply: {e}", self.host, self.addr)),
            }
            let mut chunk = [0u8; 4096];
            let read = async {
                match &mut self.io {
                    Io::Plain(s) => s.read(&mut chunk).await,
                    Io::Tls(s) => s.read(&mut chunk).await,
                    Io::Closed => Ok(0),
                }
            };
            match tokio::time::timeout(timeout, read).await {
                Ok(Ok(0)) => return Err(format!("{}[{}] closed the connection", self.host, self.addr)),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => return Err(format!("read from {}[{}]: {e}", self.host, self.addr)),
                Err(_) => {
                    return Err(format!("{}[{}] did not answer within {} s", self.host, self.addr, timeout.as_secs()))
                }
            }
        }
    }

    async fn command(&mut self, line: &str) -> Result<Reply, String> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.read_reply(self.settings.command_timeout).await
    }

    /// One transaction. `Ok` holds one verdict per recipient; `Err` means
    /// the connection is unusable and nothing of this transaction counts
    /// as delivered (the caller defers every recipient).
    pub async fn send(&mut self, from: &str, rcpts: &[&str], content: &[u8]) -> Result<Vec<Verdict>, String> {
        if let Some(max) = self.ext.size {
            if content.len() > max {
                let reply =
                    format!("552 5.3.4 message size {} exceeds the limit of {} at {}", content.len(), max, self.host);
                return Ok(rcpts
                    .iter()
                    .map(|_| Verdict::Failed { reply: reply.clone(), status: "5.3.4".into() })
                    .collect());
            }
        }
        // RFC 6531 §3.4: a message that needs SMTPUTF8 is not sent to a
        // server without it (no downgrade): it fails, and the sender gets
        // a DSN, rather than arrive with its addresses or headers mangled.
        let utf8 = port25_spool::smtputf8::needed(from, rcpts.iter().copied(), content);
        if utf8 && !self.ext.smtputf8 {
            let reply =
                format!("550 5.6.7 {} does not support SMTPUTF8 (RFC 6531), which this message needs for its non-ASCII addresses or header fields", self.host);
            return Ok(rcpts
                .iter()
                .map(|_| Verdict::Failed { reply: reply.clone(), status: "5.6.7".into() })
                .collect());
        }
        let mut mail = format!("MAIL FROM:<{from}>");
        if self.ext.size.is_some() {
            mail.push_str(&format!(" SIZE={}", content.len()));
        }
        if self.ext.eightbitmime && content.iter().any(|&b| b >= 0x80) {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        let timeout = self.settings.command_timeout;
        let (mail_reply, rcpt_replies, data_reply) = if self.ext.pipelining {
            let mut out = format!("{mail}\r\n");
            for r in rcpts {
                out.push_str(&format!("RCPT TO:<{r}>\r\n"));
            }
            out.push_str("DATA\r\n");
            self.write(out.as_bytes()).await?;
            let m = self.read_reply(timeout).await?;
            let mut rr = Vec::new();
            for _ in rcpts {
                rr.push(self.read_reply(timeout).await?);
            }
            let d = self.read_reply(timeout).await?;
            (m, rr, Some(d))
        } else {
            let m = self.command(&mail).await?;
            let mut rr = Vec::new();
            if m.is_positive() {
                for r in rcpts {
                    rr.push(self.command(&format!("RCPT TO:<{r}>")).await?);
                }
            }
            let d = if rr.iter().any(Reply::is_positive) { Some(self.command("DATA").await?) } else { None };
            (m, rr, d)
        };
        if !mail_reply.is_positive() {
            if data_reply.as_ref().is_some_and(|d| d.code == 354) {
                self.abort_data().await?;
            }
            self.reset().await?;
            let v = verdict_from(&mail_reply);
            return Ok(rcpts.iter().map(|_| v.clone()).collect());
        }
        let accepted = rcpt_replies.iter().filter(|r| r.is_positive()).count();
        let data_ok = data_reply.as_ref().is_some_and(|d| d.code == 354);
        if accepted == 0 || !data_ok {
            if data_ok {
                // RFC 2920 §3.1: DATA accepted with no valid recipient; end it empty.
                self.abort_data().await?;
            }
            self.reset().await?;
            return Ok(rcpt_replies
                .iter()
                .map(|r| match (r.is_positive(), &data_reply) {
                    (false, _) => verdict_from(r),
                    (true, Some(d)) => verdict_from(d),
                    (true, None) => Verdict::Deferred { reply: "DATA was not sent".into(), status: "4.0.0".into() },
                })
                .collect());
        }
        let mut body = Vec::new();
        dot_stuff(content, &mut body);
        self.write(&body).await?;
        let end = self.read_reply(self.settings.data_timeout).await?;
        Ok(rcpt_replies.iter().map(|r| if r.is_positive() { verdict_from(&end) } else { verdict_from(r) }).collect())
    }

    async fn abort_data(&mut self) -> Result<(), String> {
        self.write(b".\r\n").await?;
        self.read_reply(self.settings.command_timeout).await.map(|_| ())
    }

    async fn reset(&mut self) -> Result<(), String> {
        let r = self.command("RSET").await?;
        if r.is_positive() {
            Ok(())
        } else {
            Err(format!("{} refused RSET: {}", self.host, r.one_line()))
        }
    }

    /// Says QUIT; errors do not matter any more.
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.command("QUIT")).await;
    }
}
