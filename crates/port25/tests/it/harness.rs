//! Starts the real `port25` binary with a generated configuration and talks
//! to it over real sockets. Every server gets its own temp directory and
//! port 0; the port is read from the `port25.server.listening` event.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_port25");

pub struct Server {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub addrs: Vec<(String, SocketAddr)>,
    pub log: Arc<Mutex<Vec<serde_json::Value>>>,
    config: PathBuf,
    /// `serve`, or `spampot` for the sensor (words split on spaces).
    subcommand: &'static str,
    /// The thread reading the running process's stderr into `log`.
    reader: Option<std::thread::JoinHandle<()>>,
}

/// The configuration every test starts from; `extra` is appended (it may
/// add `[[listener]]` tables or keys under `[mx]`... as TOML allows).
pub fn base_config(dir: &Path, mx: &str, listeners: &str) -> String {
    format!(
        "hostname = \"mx.test.example\"\ndata_dir = \"{}\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n[mx]\n{mx}\n{listeners}\n{HTTP_ON_PORT_0}",
        dir.join("data").display()
    )
}

/// Tests run in parallel: the HTTP listeners too bind port 0 (their
/// addresses are in the `port25.http.listening` events).
pub const HTTP_ON_PORT_0: &str = "[http]\naddress = \"127.0.0.1:0\"\nprivate_address = \"127.0.0.1:0\"\n";

pub const MX_LISTENER: &str = "[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\n";

impl Server {
    pub fn start(mx: &str, listeners: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("port25.toml");
        std::fs::write(&config, base_config(dir.path(), mx, listeners)).unwrap();
        let mut s = Server {
            dir,
            child: None,
            addrs: Vec::new(),
            log: Arc::new(Mutex::new(Vec::new())),
            config,
            subcommand: "serve",
            reader: None,
        };
        s.spawn();
        s
    }

    /// Starts `port25 <subcommand> --config F` with F written by `config`
    /// (given the test's temp directory).
    pub fn start_with(subcommand: &'static str, config: impl FnOnce(&Path) -> String) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("port25.toml");
        std::fs::write(&path, config(dir.path())).unwrap();
        let mut s = Server {
            dir,
            child: None,
            addrs: Vec::new(),
            log: Arc::new(Mutex::new(Vec::new())),
            config: path,
            subcommand,
            reader: None,
        };
        s.spawn();
        s
    }

    /// The MX accepts only mailboxes that exist (docs/mx.md): the ones
    /// these tests mail.
    pub fn mx() -> Server {
        let recipients =
            "recipients = [\"alice@example.net\", \"bob@example.net\", \"henry@example.net\", \"carol@example.org\"]";
        Server::start(&format!("domains = [\"example.net\", \"example.org\"]\n{recipients}"), MX_LISTENER)
    }

    /// (Re)starts the process on the same configuration and data.
    pub fn spawn(&mut self) {
        // A restart binds new port-0 addresses: rewrite them into the config
        // only when none were assigned yet; a restart reuses the old ports.
        if !self.addrs.is_empty() {
            // The HTTP listener's port 0 is not one of them: set it aside.
            let mut text = std::fs::read_to_string(&self.config).unwrap().replace(HTTP_ON_PORT_0, "\u{0}http\u{0}");
            for (_, a) in &self.addrs {
                text = text.replacen("127.0.0.1:0", &a.to_string(), 1);
            }
            std::fs::write(&self.config, text.replace("\u{0}http\u{0}", HTTP_ON_PORT_0)).unwrap();
        }
        let mut child = Command::new(BIN)
            .args(self.subcommand.split(' '))
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start port25");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let lagging = Lagging::start(self.log.clone(), log_lag());
        self.reader = Some(std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    eprintln!("port25 (non-JSON): {line}");
                    continue;
                };
                if v["event"] == "port25.server.listening" {
                    let addr: SocketAddr = v["address"].as_str().unwrap().parse().unwrap();
                    let _ = tx.send((v["listener"].as_str().unwrap().to_owned(), addr));
                }
                lagging.push(v);
            }
            lagging.finish();
        }));
        let expected = self.config_listener_count();
        let mut addrs = Vec::new();
        while addrs.len() < expected {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(a) => addrs.push(a),
                Err(_) => {
                    let _ = child.kill();
                    panic!("port25 did not report its listeners; log: {:?}", self.log.lock().unwrap());
                }
            }
        }
        self.addrs = addrs;
        self.child = Some(child);
    }

    fn config_listener_count(&self) -> usize {
        let text = std::fs::read_to_string(&self.config).unwrap();
        text.matches("[[listener]]").count().max(1)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0].1
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn maildir(&self, domain: &str, user: &str) -> PathBuf {
        self.data().join("mail").join(domain).join(user).join("new")
    }

    /// Files in a mailbox's new/ directory, waiting up to `wait` for `n`.
    pub fn wait_for_mail(&self, domain: &str, user: &str, n: usize, wait: Duration) -> Vec<Vec<u8>> {
        let dir = self.maildir(domain, user);
        let start = Instant::now();
        loop {
            let files = read_dir_files(&dir);
            if files.len() >= n || start.elapsed() > wait {
                return files;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every file under the data directory's mail/ tree.
    pub fn all_mail(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        walk(&self.data().join("mail"), &mut out);
        out
    }

    pub fn events(&self, id: &str) -> Vec<serde_json::Value> {
        self.log.lock().unwrap().iter().filter(|v| v["event"] == id).cloned().collect()
    }

    pub fn wait_event(&self, id: &str, wait: Duration) -> Option<serde_json::Value> {
        self.wait_event_where(id, wait, |_| true)
    }

    /// The first event `id` that `matches`, waiting up to `wait` for it (the
    /// log is read by another thread, a moment after the client's reply).
    pub fn wait_event_where(
        &self,
        id: &str,
        wait: Duration,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let start = Instant::now();
        loop {
            if let Some(v) = self.events(id).into_iter().find(&matches) {
                return Some(v);
            }
            if start.elapsed() > wait {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The events `id` once there are at least `n`, or what there is after
    /// `wait` (the log is read by another thread, a moment after the
    /// client saw the reply).
    pub fn wait_events(&self, id: &str, n: usize, wait: Duration) -> Vec<serde_json::Value> {
        self.wait_events_until(id, wait, |found| found.len() >= n)
    }

    /// The events `id` once `enough` holds for all of them together (every
    /// kind a test expects is there, say), or what there is after `wait`:
    /// for assertions about a set of events rather than a count.
    pub fn wait_events_until(
        &self,
        id: &str,
        wait: Duration,
        enough: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let found = self.events(id);
            if enough(&found) || start.elapsed() > wait {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        self.read_log_to_the_end();
    }

    /// Waits for the log reader to reach the end of the exited process's
    /// stderr. The process having exited says nothing about what the
    /// reader has read: without this, events read after a stop (or pushed
    /// after a test clears the log for a restart) could be missing or stale.
    fn read_log_to_the_end(&mut self) {
        let Some(reader) = self.reader.take() else { return };
        // The pipe closes when the process exits (it starts no child that
        // outlives it); the bound only turns a hang into a message.
        let start = Instant::now();
        while !reader.is_finished() {
            assert!(start.elapsed() < Duration::from_secs(20), "port25's stderr was still open 20 s after it exited");
            std::thread::sleep(Duration::from_millis(10));
        }
        reader.join().expect("the log reader thread panicked");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `PORT25_IT_LOG_LAG_MS=N` holds every log line back N ms before the
/// tests see it: the log reader of a loaded machine, on demand. A test
/// that asserts on an event it did not wait for fails under it every
/// time, instead of once in a while on a busy machine.
fn log_lag() -> Duration {
    let ms = std::env::var("PORT25_IT_LOG_LAG_MS").ok().map(|v| v.parse().expect("PORT25_IT_LOG_LAG_MS: milliseconds"));
    Duration::from_millis(ms.unwrap_or(0))
}

/// Adds lines to a server's log, each `lag` after it was read (at once
/// when `lag` is zero).
struct Lagging {
    log: Arc<Mutex<Vec<serde_json::Value>>>,
    /// With a lag: the lines (and when they were read) to the thread that
    /// holds them back.
    delayed: Option<(std::sync::mpsc::Sender<ReadLine>, std::thread::JoinHandle<()>)>,
}

type ReadLine = (Instant, serde_json::Value);

impl Lagging {
    fn start(log: Arc<Mutex<Vec<serde_json::Value>>>, lag: Duration) -> Lagging {
        if lag.is_zero() {
            return Lagging { log, delayed: None };
        }
        let (tx, rx) = std::sync::mpsc::channel::<ReadLine>();
        let to = log.clone();
        let thread = std::thread::spawn(move || {
            for (read_at, v) in rx {
                std::thread::sleep((read_at + lag).saturating_duration_since(Instant::now()));
                to.lock().unwrap().push(v);
            }
        });
        Lagging { log, delayed: Some((tx, thread)) }
    }

    fn push(&self, v: serde_json::Value) {
        match &self.delayed {
            Some((tx, _)) => tx.send((Instant::now(), v)).expect("the lagging log thread ended"),
            None => self.log.lock().unwrap().push(v),
        }
    }

    /// Returns once every line pushed is in the log.
    fn finish(self) {
        if let Some((tx, thread)) = self.delayed {
            drop(tx);
            thread.join().expect("the lagging log thread panicked");
        }
    }
}

pub fn read_dir_files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries.filter_map(|e| std::fs::read(e.ok()?.path()).ok()).collect()
}

fn walk(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.parent().and_then(|d| d.file_name()).is_some_and(|n| n == "new" || n == "cur") {
            out.push(std::fs::read(&p).unwrap());
        }
    }
}

/// A byte-exact SMTP client for the protocol tests.
pub struct Client {
    pub stream: TcpStream,
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { stream, reader }
    }

    /// Connects and reads the banner.
    pub fn open(addr: SocketAddr) -> Client {
        let mut c = Client::connect(addr);
        let banner = c.reply();
        assert!(banner.starts_with("220 "), "banner: {banner}");
        c
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads one (possibly multi-line) reply; "" on EOF.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return all,
                Ok(_) => {}
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// True when the server has closed the connection.
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0) | Err(_))
    }

    /// One full transaction; returns the reply to the end of DATA.
    pub fn send_mail(&mut self, from: &str, to: &[&str], body: &str) -> String {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"));
        assert!(r.starts_with("250"), "MAIL: {r}");
        for t in to {
            let r = self.cmd(&format!("RCPT TO:<{t}>"));
            assert!(r.starts_with("250"), "RCPT {t}: {r}");
        }
        let r = self.cmd("DATA");
        assert!(r.starts_with("354"), "DATA: {r}");
        self.send(body.as_bytes());
        self.send(b"\r\n.\r\n");
        self.reply()
    }
}

pub fn code(reply: &str) -> u16 {
    reply.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Fails loudly when a peer program this test needs is missing: the test
/// suite installs them (.ci/install-deps), so absence is a broken setup.
pub fn require(program: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(program);
        if p.exists() {
            return p;
        }
    }
    panic!("{program} is not installed; run .ci/install-deps (it installs every peer the tests use)");
}

impl Server {
    /// Waits for an exit already requested by a signal.
    pub fn stop_wait(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.read_log_to_the_end();
                return status;
            }
            if start.elapsed() > Duration::from_secs(40) {
                let _ = child.kill();
                panic!("port25 did not stop within 40 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts `python3 -c script args...`, a test peer that prints "ready" once
/// it listens, and returns when it has; `missing` says what to install when
/// it never does (e.g. "pip install aiosmtpd").
pub fn python_peer(script: &str, args: &[&std::ffi::OsStr], missing: &str) -> Child {
    let mut child =
        Command::new("python3").arg("-c").arg(script).args(args).stdout(Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the Python test peer did not start ({missing})");
    child
}

/// `port25 ARGS` on a pseudo-terminal (tests/it/pty_run.py): everything written there.
pub fn on_terminal(args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/pty_run.py"))
        .arg(BIN)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "port25 {args:?} on a terminal: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
