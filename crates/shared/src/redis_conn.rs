//! Connections to one Redis server, for the Redis store (redis.rs).
//!
//! A fixed number of TCP connections (the config's `pool`), each carrying
//! one command at a time: a caller takes a free connection, writes its
//! command and reads the reply on its own task, then puts the connection
//! back. No task in between and no channel hop, which is what a
//! multiplexing client costs per command (issue 16: the node's CPU per
//! session). A connection that fails, sends bytes that are not one reply,
//! or whose caller stops waiting (the timeout drops the caller's future,
//! and the connection with it) is closed, never handed to the next caller
//! with half a reply in it; the next caller opens a new one. A connection
//! the server closed while idle (a restart, its `timeout`) is noticed
//! before it is used. Each new connection authenticates (`AUTH`) and
//! selects the URL's database.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::resp::{self, Value, LIMITS};

/// After a failed connection attempt, callers fail at once for this long
/// instead of each trying again: a store that is down must not slow every
/// session by a connection attempt (a node reconnects at most this
/// often).
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// Where the server is and how to log in: `redis://[user:password@]host[:port][/db]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub db: u32,
}

impl Endpoint {
    /// Reads the URL; user and password are percent-decoded (a `@` or `:`
    /// in a password is written `%40`, `%3A`). The port defaults to 6379,
    /// the database to 0.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = url.strip_prefix("redis://").ok_or_else(|| format!("{url:?} does not start with redis://"))?;
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        };
        let (credentials, hostport) = match authority.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, authority),
        };
        let (user, password) = match credentials {
            None => (None, None),
            Some(c) => {
                let (u, p) = c.split_once(':').unwrap_or((c, ""));
                let (u, p) = (decode(u)?, decode(p)?);
                if p.is_empty() {
                    return Err("a user without a password: write redis://user:password@host/".into());
                }
                ((!u.is_empty()).then_some(u), Some(p))
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("an IPv6 address without its closing ]")?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control() || c == '?' || c == '#') {
            return Err(format!("no host name in {url:?}"));
        }
        let port = match port {
            None => 6379,
            Some(p) => p.parse().map_err(|_| format!("port {p:?} is not a number from 1 to 65535"))?,
        };
        let db = match path {
            "" => 0,
            p => p.parse().map_err(|_| format!("database {p:?} is not a number (write /0 for the first)"))?,
        };
        Ok(Endpoint { host: host.to_owned(), port, user, password, db })
    }
}

/// Percent-decoding of a URL's user or password.
fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or("a % not followed by two hex digits")?;
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a user or password that is not UTF-8 once decoded".into())
}

/// One connection, with the buffers its commands and replies reuse.
struct Conn {
    stream: TcpStream,
    read: Vec<u8>,
    write: Vec<u8>,
}

impl Conn {
    async fn open(ep: &Endpoint) -> Result<Conn, String> {
        let stream = TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .map_err(|e| format!("connecting to {}:{}: {e}", ep.host, ep.port))?;
        // One small command, one small reply: no waiting for more to send.
        stream.set_nodelay(true).map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let mut c = Conn { stream, read: Vec::with_capacity(512), write: Vec::with_capacity(512) };
        if let Some(password) = &ep.password {
            let reply = match &ep.user {
                Some(user) => c.call(&[b"AUTH", user.as_bytes(), password.as_bytes()]).await?,
                None => c.call(&[b"AUTH", password.as_bytes()]).await?,
            };
            ok(reply).map_err(|e| format!("AUTH refused: {e}"))?;
        }
        if ep.db != 0 {
            ok(c.call(&[b"SELECT", ep.db.to_string().as_bytes()]).await?)
                .map_err(|e| format!("SELECT {} refused: {e}", ep.db))?;
        }
        Ok(c)
    }

    /// Sends one command and reads its reply. An `Err` leaves the
    /// connection out of step: the caller drops it.
    async fn call(&mut self, args: &[&[u8]]) -> Result<Value, String> {
        self.write.clear();
        resp::command(&mut self.write, args);
        self.stream.write_all(&self.write).await.map_err(|e| format!("sending: {e}"))?;
        self.read.clear();
        loop {
            if let Some((v, used)) = resp::parse(&self.read, &LIMITS).map_err(|e| format!("reply: {e}"))? {
                // One command in flight: anything after its reply is not ours.
                if used != self.read.len() {
                    return Err("bytes after the reply".into());
                }
                return Ok(v);
            }
            self.read.reserve(4096);
            match self.stream.read_buf(&mut self.read).await {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("reading: {e}")),
            }
        }
    }

    /// Closed by the server while idle (or sent something unasked).
    fn stale(&self) -> bool {
        let mut b = [0u8; 1];
        !matches!(self.stream.try_read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

/// A `+OK`; the server's error text otherwise.
fn ok(v: Value) -> Result<(), String> {
    match v {
        Value::Simple(s) if s == b"OK" => Ok(()),
        other => Err(text(&other)),
    }
}

/// A reply as text for a message: an error's words with control
/// characters replaced, anything else as parsed.
pub fn text(v: &Value) -> String {
    match v {
        Value::Error(e) | Value::Simple(e) => {
            String::from_utf8_lossy(e).chars().map(|c| if c.is_control() { '?' } else { c }).collect()
        }
        other => format!("{other:?}"),
    }
}

/// At most `size` connections to one server.
pub struct Pool {
    ep: Endpoint,
    idle: Mutex<Vec<Conn>>,
    /// One permit per connection that may exist: idle, or held by a
    /// caller.
    permits: Semaphore,
    /// The last failed connection attempt: when, and why.
    down: Mutex<Option<(Instant, String)>>,
}

impl Pool {
    pub fn new(ep: Endpoint, size: usize) -> Pool {
        Pool { ep, idle: Mutex::new(Vec::with_capacity(size)), permits: Semaphore::new(size), down: Mutex::new(None) }
    }

    /// A connection for one caller: a free one, or a new one when none is
    /// free and fewer than `size` exist; waits for one otherwise.
    pub async fn get(&self) -> Result<Lease<'_>, String> {
        let permit = self.permits.acquire().await.map_err(|_| "the pool is closed".to_owned())?;
        loop {
            let conn = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match conn {
                Some(c) if c.stale() => continue,
                Some(c) => return Ok(Lease { pool: self, conn: Some(c), _permit: permit }),
                None => break,
            }
        }
        if let Some((at, why)) = &*self.down.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < RETRY_AFTER {
                return Err(format!("{why} (tried again within {} ms)", RETRY_AFTER.as_millis()));
            }
        }
        let mut attempt = Attempt { pool: self, outcome: None };
        let opened = Conn::open(&self.ep).await;
        attempt.outcome = Some(opened.as_ref().err().cloned());
        opened.map(|c| Lease { pool: self, conn: Some(c), _permit: permit })
    }
}

/// A connection attempt, which records its outcome for the next callers
/// also when its caller stops waiting (a server that does not answer SYN
/// counts as down, as one that refuses).
struct Attempt<'a> {
    pool: &'a Pool,
    /// `Some(None)`: connected; `Some(Some(e))`: failed; `None`: abandoned.
    outcome: Option<Option<String>>,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let down = match self.outcome.take() {
            Some(None) => None,
            Some(Some(e)) => Some((Instant::now(), e)),
            None => {
                Some((Instant::now(), format!("no connection to {}:{} in time", self.pool.ep.host, self.pool.ep.port)))
            }
        };
        *self.pool.down.lock().unwrap_or_else(|p| p.into_inner()) = down;
    }
}

/// A connection held by one caller; back to the pool when dropped, unless
/// a command on it failed or was abandoned halfway.
pub struct Lease<'a> {
    pool: &'a Pool,
    /// `None` once a command failed, and while one is under way (a
    /// caller that stops waiting drops the connection with the command's
    /// future).
    conn: Option<Conn>,
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    /// One command and its reply; a server's error reply is a `Value`
    /// (the connection stays in step), an `Err` is a lost connection.
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<Value, String> {
        let mut conn = self.conn.take().ok_or("the connection was lost by an earlier command")?;
        let v = conn.call(args).await?;
        self.conn = Some(conn);
        Ok(v)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.idle.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn urls_name_the_server_the_login_and_the_database() {
        let e = Endpoint::parse("redis://10.0.0.5:6380/2").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.user, e.password, e.db), ("10.0.0.5", 6380, None, None, 2));
        let e = Endpoint::parse("redis://port25:p%40ss%3Aw@redis.example.net/0").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.user.as_deref(), e.password.as_deref()),
            ("redis.example.net", 6379, Some("port25"), Some("p@ss:w"))
        );
        let e = Endpoint::parse("redis://:secret@[::1]:7000").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.user, e.password.as_deref(), e.db),
            ("::1", 7000, None, Some("secret"), 0)
        );
        let e = Endpoint::parse("redis://r/").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.db), ("r", 6379, 0));
        for bad in [
            "http://x",
            "redis://",
            "redis://:6379/0",
            "redis://x:port/0",
            "redis://x:99999/0",
            "redis://x/zero",
            "redis://x/0/1",
            "redis://alice@x/0",
            "redis://a:%zz@x/0",
            "redis://[::1/0",
            "redis://x?db=1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    /// A fake server that answers each command read with `answer(n)` (n:
    /// the command's number on that connection), and counts connections.
    async fn fake(
        answer: fn(usize, &[u8]) -> Option<Vec<u8>>,
    ) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut n = 0;
                    loop {
                        match resp::parse(&buf, &LIMITS).unwrap() {
                            Some((Value::Array(Some(args)), used)) => {
                                buf.drain(..used);
                                let mut line = Vec::new();
                                for a in args {
                                    if let Value::Bulk(Some(a)) = a {
                                        line.extend_from_slice(&a);
                                        line.push(b' ');
                                    }
                                }
                                // None: never answers (the caller's timeout ends it).
                                if let Some(a) = answer(n, &line) {
                                    s.write_all(&a).await.unwrap();
                                }
                                n += 1;
                            }
                            Some(other) => panic!("not a command: {other:?}"),
                            None => {
                                if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        (port, accepted)
    }

    fn endpoint(port: u16) -> Endpoint {
        Endpoint::parse(&format!("redis://u:pw@127.0.0.1:{port}/3")).unwrap()
    }

    /// A connection logs in and selects the database before the caller's
    /// command.
    #[tokio::test]
    async fn a_new_connection_authenticates_and_selects_first() {
        let (port, _) = fake(|_, line| {
            Some(match line {
                b"AUTH u pw " | b"SELECT 3 " => b"+OK\r\n".to_vec(),
                b"PING " => b"+PONG\r\n".to_vec(),
                _ => b"-ERR unexpected\r\n".to_vec(),
            })
        })
        .await;
        let pool = Pool::new(endpoint(port), 1);
        let mut c = pool.get().await.unwrap();
        assert_eq!(c.call(&[b"PING"]).await.unwrap(), Value::Simple(b"PONG".to_vec()));

        let (port, _) = fake(|_, _| Some(b"-WRONGPASS invalid username-password pair\r\n".to_vec())).await;
        let e = Pool::new(endpoint(port), 1).get().await.err().unwrap();
        assert!(e.contains("AUTH refused: WRONGPASS"), "{e}");
    }

    /// A reply that stops halfway and a caller that gives up: the next
    /// caller gets a new connection and its own reply, not the rest of
    /// the first one.
    #[tokio::test]
    async fn an_abandoned_command_never_hands_its_reply_to_the_next_caller() {
        let (port, accepted) = fake(|n, line| match (n, line) {
            (0 | 1, b"AUTH u pw " | b"SELECT 3 ") => Some(b"+OK\r\n".to_vec()),
            // The first connection's first command: half a reply, then nothing.
            (2, b"GET first ") => Some(b"$10\r\nfirs".to_vec()),
            (_, b"GET second ") => Some(b"$6\r\nsecond\r\n".to_vec()),
            _ => None,
        })
        .await;
        let pool = Pool::new(endpoint(port), 1);
        let first = async {
            let mut c = pool.get().await.unwrap();
            c.call(&[b"GET", b"first"]).await
        };
        assert!(tokio::time::timeout(Duration::from_millis(200), first).await.is_err(), "the first reply never ends");
        let mut c = pool.get().await.unwrap();
        assert_eq!(c.call(&[b"GET", b"second"]).await.unwrap(), Value::Bulk(Some(b"second".to_vec())));
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2, "a second connection");
    }

    /// Bytes that are not one reply lose the connection (and the caller
    /// gets an error), the pool then opens a new one.
    #[tokio::test]
    async fn a_connection_out_of_step_is_closed() {
        let (port, accepted) = fake(|n, line| match (n, line) {
            (0 | 1, _) => Some(b"+OK\r\n".to_vec()),
            (_, b"PING a ") => Some(b":1\r\n:2\r\n".to_vec()),
            (_, _) => Some(b"$9999999999\r\n".to_vec()),
        })
        .await;
        let pool = Pool::new(endpoint(port), 1);
        let mut c = pool.get().await.unwrap();
        assert!(c.call(&[b"PING", b"a"]).await.unwrap_err().contains("after the reply"));
        assert!(c.call(&[b"PING", b"a"]).await.is_err(), "lost for this caller too");
        drop(c);
        let mut c = pool.get().await.unwrap();
        let e = c.call(&[b"PING", b"b"]).await.unwrap_err();
        assert!(e.contains("over the limit"), "{e}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    /// A server that takes the connection but never answers AUTH: the
    /// caller's timeout ends the attempt, and the next callers are told at
    /// once rather than each waiting out their timeout.
    #[tokio::test]
    async fn an_attempt_given_up_counts_as_down() {
        let (port, accepted) = fake(|_, _| None).await;
        let pool = Pool::new(endpoint(port), 2);
        assert!(tokio::time::timeout(Duration::from_millis(100), pool.get()).await.is_err());
        let e = pool.get().await.err().unwrap();
        assert!(e.contains("in time") && e.contains("tried again within"), "{e}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// Nothing listening: the error names the server, and for a while the
    /// next callers get it at once instead of trying again each.
    #[tokio::test]
    async fn a_server_down_is_tried_again_at_most_every_half_second() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pool = Pool::new(endpoint(port), 2);
        let e = pool.get().await.err().unwrap();
        assert!(e.starts_with(&format!("connecting to 127.0.0.1:{port}")), "{e}");
        let again = pool.get().await.err().unwrap();
        assert!(again.contains("tried again within 500 ms"), "{again}");
    }
}
