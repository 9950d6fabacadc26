//! The client side of the Dovecot authentication protocol (what Postfix
//! does with `smtpd_sasl_type = dovecot`): logins go to Dovecot's
//! `auth-client` socket (UNIX or TCP) as AUTH PLAIN (port25 has the whole
//! response from either PLAIN or LOGIN), with the client's address and
//! whether it used TLS; recipients and, when the login reply does not list
//! them, the addresses a login may send as come from a userdb lookup on the
//! `auth-userdb` socket.
//!
//! Connections are kept and reused (one request at a time each) after an
//! answer port25 accepts; one that answered anything else, or too late,
//! is dropped. The parser is
//! [`proto`] (pure, fuzzed).

pub mod proto;

use port25_accounts::remote::{Checked, Credentials, Pending, RemoteDirectory, Unavailable};
use port25_config::{Dovecot as Config, Endpoint};
use proto::ServerLine;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Idle connections kept per socket; more are closed after use.
const IDLE: usize = 16;

struct Conn {
    io: Box<dyn Io>,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(endpoint: &Endpoint) -> Result<Conn, Unavailable> {
        let io: Box<dyn Io> = match endpoint {
            Endpoint::Unix(path) => Box::new(
                tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?,
            ),
            Endpoint::Tcp(addr) => {
                let s = tokio::net::TcpStream::connect(addr.as_str())
                    .await
                    .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
                let _ = s.set_nodelay(true);
                Box::new(s)
            }
        };
        Ok(Conn { io, buf: Vec::with_capacity(1024) })
    }

    async fn send(&mut self, line: &str) -> Result<(), Unavailable> {
        self.io.write_all(line.as_bytes()).await.map_err(|e| format!("write: {e}"))
    }

    /// The next line, parsed; at most [`proto::MAX_LINE`] bytes buffered
    /// beyond one read.
    async fn line(&mut self) -> Result<ServerLine, Unavailable> {
        loop {
            if let Some(line) = proto::take_line(&mut self.buf).map_err(|e| e.to_string())? {
                return proto::parse(&line).map_err(|e| e.to_string());
            }
            let mut chunk = [0u8; 4096];
            let n = self.io.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
            self.buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

pub struct Dovecot {
    config: Config,
    timeout: Duration,
    auth_idle: Mutex<Vec<Conn>>,
    userdb_idle: Mutex<Vec<Conn>>,
    next_id: AtomicU32,
}

/// Which socket.
#[derive(Clone, Copy)]
enum Socket {
    Auth,
    Userdb,
}

impl Dovecot {
    pub fn new(config: Config, timeout: Duration) -> Dovecot {
        Dovecot {
            config,
            timeout,
            auth_idle: Mutex::default(),
            userdb_idle: Mutex::default(),
            next_id: AtomicU32::new(1),
        }
    }

    fn idle(&self, socket: Socket) -> &Mutex<Vec<Conn>> {
        match socket {
            Socket::Auth => &self.auth_idle,
            Socket::Userdb => &self.userdb_idle,
        }
    }

    fn id(&self) -> u32 {
        // Ids are per connection in the protocol; one counter is simpler
        // and never repeats on a kept connection. 0 is not a valid id.
        self.next_id.fetch_add(1, Ordering::Relaxed) % 1_000_000_000 + 1
    }

    /// A kept connection, or a new one after its handshake.
    async fn conn(&self, socket: Socket) -> Result<Conn, Unavailable> {
        if let Some(c) = self.idle(socket).lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(c);
        }
        match socket {
            Socket::Auth => {
                let mut c = Conn::open(&self.config.auth).await?;
                c.send(&proto::client_hello(std::process::id())).await?;
                let mut plain = false;
                loop {
                    match c.line().await? {
                        ServerLine::Version { major: 1, .. } => {}
                        ServerLine::Version { major, minor } => {
                            return Err(format!("auth protocol version {major}.{minor}, expected 1.x"))
                        }
                        ServerLine::Mech(m) => plain |= m.eq_ignore_ascii_case("PLAIN"),
                        ServerLine::Done => break,
                        ServerLine::Other(_) => {}
                        other => return Err(format!("unexpected {other:?} in the handshake")),
                    }
                }
                if !plain {
                    return Err("the auth socket does not offer PLAIN (auth_mechanisms)".into());
                }
                Ok(c)
            }
            Socket::Userdb => {
                let Some(endpoint) = &self.config.userdb else { return Err("no userdb_socket configured".into()) };
                let mut c = Conn::open(endpoint).await?;
                c.send(&proto::master_hello()).await?;
                Ok(c)
            }
        }
    }

    fn keep(&self, socket: Socket, c: Conn) {
        let mut idle = self.idle(socket).lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE && c.buf.is_empty() {
            idle.push(c);
        }
    }

    /// Sends one request and reads up to the reply to it (the master
    /// protocol's VERSION and SPID lines come first on a new connection).
    /// The connection comes back with the reply: the caller keeps it
    /// ([`Dovecot::keep`]) only when the reply was one it accepts.
    async fn ask(&self, socket: Socket, id: u32, request: &str) -> Result<(ServerLine, Conn), Unavailable> {
        let exchange = async {
            let mut c = self.conn(socket).await?;
            c.send(request).await?;
            loop {
                match c.line().await? {
                    ServerLine::Version { major: 1, .. } | ServerLine::Other(_) => {}
                    ServerLine::Version { major, minor } => {
                        return Err(format!("auth protocol version {major}.{minor}, expected 1.x"))
                    }
                    reply if reply.id() == Some(id) => return Ok((reply, c)),
                    other => return Err(format!("unexpected {other:?}")),
                }
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {} ms", self.timeout.as_millis()))?
    }

    /// The userdb's record of `user`: `None` when it has none.
    async fn userdb(&self, user: &str) -> Result<Option<proto::Params>, Unavailable> {
        let id = self.id();
        let (reply, conn) = self.ask(Socket::Userdb, id, &proto::user_lookup(id, &self.config.service, user)).await?;
        match reply {
            ServerLine::User { params, .. } => {
                self.keep(Socket::Userdb, conn);
                Ok(Some(params))
            }
            ServerLine::NotFound { .. } => {
                self.keep(Socket::Userdb, conn);
                Ok(None)
            }
            ServerLine::Fail { params, .. } => {
                Err(format!("userdb lookup failed: {}", proto::param(&params, "reason").unwrap_or("no reason given")))
            }
            other => Err(format!("unexpected {other:?} to a userdb lookup")),
        }
    }

    async fn check(&self, c: Credentials<'_>) -> Result<Checked, Unavailable> {
        let id = self.id();
        let request = proto::auth_plain(id, &self.config.service, c.login, c.password, Some(c.client), c.secured);
        let (reply, conn) = self.ask(Socket::Auth, id, &request).await?;
        match reply {
            // Dovecot's "the password is right, but do not log in" (a
            // disabled account, a referral): its own login processes
            // refuse it, and so does port25.
            ServerLine::Ok { params, .. } if proto::param(&params, "nologin").is_some() => {
                self.keep(Socket::Auth, conn);
                Ok(Checked::WrongPassword)
            }
            ServerLine::Ok { params, .. } => {
                // The name Dovecot logged in (it may differ: "alice" ->
                // "alice@example.net"); one no account could have is refused.
                let user = proto::param(&params, "user").unwrap_or(c.login);
                let login = port25_accounts::normalize_login(user)
                    .map_err(|e| format!("Dovecot answered user {user:?}: {e}"))?;
                self.keep(Socket::Auth, conn);
                let addresses = match proto::param(&params, &self.config.addresses_field) {
                    Some(v) => crate::addresses([v]),
                    None if self.config.userdb.is_some() => match self.userdb(&login).await? {
                        Some(p) => match proto::param(&p, &self.config.addresses_field) {
                            Some(v) => crate::addresses([v]),
                            None => port25_accounts::default_addresses(&login),
                        },
                        None => port25_accounts::default_addresses(&login),
                    },
                    None => port25_accounts::default_addresses(&login),
                };
                Ok(Checked::Valid { login, addresses, cached: false })
            }
            ServerLine::Fail { params, .. } => {
                if params.iter().any(|(k, _)| k == "temp") {
                    return Err(format!(
                        "temporary failure: {}",
                        proto::param(&params, "reason").unwrap_or("no reason given")
                    ));
                }
                self.keep(Socket::Auth, conn);
                Ok(Checked::WrongPassword)
            }
            ServerLine::Cont { .. } => Err("a challenge to a whole PLAIN response".into()),
            other => Err(format!("unexpected {other:?} to AUTH")),
        }
    }
}

impl RemoteDirectory for Dovecot {
    fn kind(&self) -> &'static str {
        "dovecot"
    }

    fn verify<'a>(&'a self, credentials: Credentials<'a>) -> Pending<'a, Result<Checked, Unavailable>> {
        Box::pin(self.check(credentials))
    }

    fn tells_recipients(&self) -> bool {
        self.config.userdb.is_some()
    }

    fn exists<'a>(&'a self, address: &'a str) -> Option<Pending<'a, Result<bool, Unavailable>>> {
        self.config.userdb.as_ref()?;
        Some(Box::pin(async move { Ok(self.userdb(address).await?.is_some()) }))
    }
}
