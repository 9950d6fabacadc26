//! Logins checked against the provider's directory ([submission.directory],
//! crates/directory), each test with its own real server in a temp dir on
//! free ports: Dovecot 2.3 (dovecot-core) with a passwd-file database,
//! OpenLDAP slapd (slapd, ldap-utils) and PostgreSQL 15 (postgresql).
//! Real clients: swaks through port25's submission and MX listeners.

use crate::harness::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn swaks(args: &[&str]) -> String {
    let out = Command::new(require("swaks")).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Waits until `path` exists (a socket a server creates).
fn wait_for(what: &str, ready: impl Fn() -> bool, log: &Path) {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > Duration::from_secs(20) {
            panic!("{what} did not start; its log: {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops a server on drop: SIGTERM to its process group (Dovecot's auth
/// process would otherwise go on answering on the connections it has),
/// then SIGKILL if it lingers. Start it with [`own_group`].
pub(crate) struct Stop(pub Option<Child>);

/// A server in a process group of its own, so [`Stop`] ends all of it.
pub(crate) fn own_group(c: &mut Command) -> &mut Command {
    std::os::unix::process::CommandExt::process_group(c, 0)
}

impl Stop {
    pub fn stop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = Command::new("kill").arg("-TERM").arg("--").arg(format!("-{}", c.id())).status();
            let start = Instant::now();
            while c.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Dovecot 2.3 auth server (no mail protocols) with a passwd-file
/// database: an auth-client socket, an auth-userdb socket and an inet
/// auth listener.
pub(crate) struct Dovecot {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub server: Stop,
}

impl Dovecot {
    /// `passwd`: the passwd-file lines.
    pub fn start(passwd: &str) -> Dovecot {
        let dovecot = require("dovecot");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        std::fs::write(d.join("passwd"), passwd).unwrap();
        let conf = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\nprotocols =\nssl = no\n\
             auth_mechanisms = plain login\ndisable_plaintext_auth = no\nauth_failure_delay = 0\n\
             passdb {{\n  driver = passwd-file\n  args = {d}/passwd\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = {d}/passwd\n  default_fields = uid=65534 gid=65534 home={d}/home/%u\n}}\n\
             service auth {{\n  unix_listener {d}/auth-client {{\n    mode = 0666\n  }}\n  unix_listener {d}/auth-userdb {{\n    mode = 0666\n  }}\n\
             \x20 inet_listener {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n}}\n",
            d = d.display()
        );
        std::fs::write(d.join("dovecot.conf"), conf).unwrap();
        let child = own_group(&mut Command::new(dovecot))
            .arg("-F")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot");
        let server = Stop(Some(child));
        let (client, log) = (d.join("auth-client"), d.join("dovecot.log"));
        wait_for("dovecot", || client.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), &log);
        Dovecot { dir, port, server }
    }

    pub fn socket(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The MX's domain and nothing listed: recipients are the directory's.
const MX: &str = "domains = [\"example.net\"]\nrecipient_delimiter = \"+\"";

pub(crate) fn port25_with(directory: &str) -> Server {
    let listeners = format!(
        "[submission.directory]\n{directory}\n{MX_LISTENER}\
         [[listener]]\nname = \"submission\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"starttls\"\n\
         [[listener]]\nname = \"submissions\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"implicit\"\n"
    );
    Server::start(MX, &listeners)
}

pub(crate) fn addr(s: &Server, name: &str) -> String {
    s.addrs.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no listener {name}: {:?}", s.addrs)).1.to_string()
}

/// swaks AUTH through port25's 587-style listener.
pub(crate) fn submit(s: &Server, mech: &str, user: &str, password: &str, from: &str, to: &str) -> String {
    let sub = addr(s, "submission");
    swaks(&[
        "--server",
        &sub,
        "--tls",
        "--auth",
        mech,
        "--auth-user",
        user,
        "--auth-password",
        password,
        "--from",
        from,
        "--to",
        to,
    ])
}

/// One RCPT on the MX: its reply code.
pub(crate) fn rcpt(s: &Server, to: &str) -> u16 {
    let mut c = Client::open(addr(s, "mx").parse().unwrap());
    assert_eq!(code(&c.cmd("EHLO client.example")), 250);
    assert_eq!(code(&c.cmd("MAIL FROM:<someone@remote.example>")), 250);
    code(&c.cmd(&format!("RCPT TO:<{to}>")))
}

const PASSWD: &str = "alice@example.net:{PLAIN}alice pw::::::port25_addresses=alice@example.net,@role.example.net\n\
                      bob@example.net:{PLAIN}bob pw::::::\n\
                      carol@example.net:{PLAIN}carol pw::::::nologin reason=disabled\n";

/// Issue 16 §1: port25 as Postfix's smtpd_sasl_type = dovecot. PLAIN and
/// LOGIN through the UNIX socket accepted with the right password and
/// refused with the wrong one; the addresses from the reply bind the
/// sender; the MX asks the userdb whether a recipient exists; Dovecot
/// stopped: 454 at AUTH, 450 at RCPT, never an accepted login.
#[test]
fn dovecot_unix_socket_logins_addresses_recipients_and_454_when_stopped() {
    let mut dovecot = Dovecot::start(PASSWD);
    let directory = format!(
        "type = \"dovecot\"\nauth_socket = \"{}\"\nuserdb_socket = \"{}\"\n",
        dovecot.socket("auth-client").display(),
        dovecot.socket("auth-userdb").display()
    );
    let s = port25_with(&directory);
    let t = submit(&s, "PLAIN", "alice@example.net", "alice pw", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~  235 2.7.0") && t.contains("<~  250 2.0.0 Ok: queued"), "{t}");
    let t = submit(&s, "LOGIN", "alice@example.net", "alice pw", "news@role.example.net", "bob@example.net");
    assert!(
        t.contains("<~  235 2.7.0") && t.contains("<~  250 2.0.0 Ok: queued"),
        "a whole domain from port25_addresses: {t}"
    );
    let t = submit(&s, "PLAIN", "alice@example.net", "alice pw", "bob@example.net", "bob@example.net");
    assert!(t.contains("<~* 553 5.7.1"), "bob's address is not alice's: {t}");
    let t = submit(&s, "PLAIN", "alice@example.net", "wrong", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~* 535 5.7.8"), "{t}");
    let t = submit(&s, "LOGIN", "bob@example.net", "alice pw", "bob@example.net", "alice@example.net");
    assert!(t.contains("<~* 535 5.7.8"), "alice's password is not bob's: {t}");
    let t = submit(&s, "PLAIN", "carol@example.net", "carol pw", "carol@example.net", "alice@example.net");
    assert!(t.contains("<~* 535 5.7.8") && !t.contains("235"), "nologin: Dovecot says OK, and do not log in: {t}");
    let t = submit(&s, "PLAIN", "nobody@example.net", "x", "nobody@example.net", "alice@example.net");
    assert!(t.contains("<~* 535 5.7.8"), "{t}");
    let t = submit(&s, "PLAIN", "bob@example.net", "bob pw", "bob@example.net", "alice+tag@example.net");
    assert!(t.contains("<~  250 2.0.0 Ok: queued"), "without port25_addresses, the login itself: {t}");
    let mail = s.wait_for_mail("example.net", "bob", 2, Duration::from_secs(10));
    assert_eq!(mail.len(), 2);
    assert_eq!(s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(10)).len(), 1);

    assert_eq!(rcpt(&s, "bob@example.net"), 250, "the userdb knows bob");
    assert_eq!(rcpt(&s, "nobody@example.net"), 550, "and not nobody");

    dovecot.server.stop();
    let t = submit(&s, "PLAIN", "alice@example.net", "alice pw", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~* 454 4.7.0") && !t.contains("235"), "Dovecot down: {t}");
    assert_eq!(rcpt(&s, "dave@example.net"), 450, "cannot tell is no yes");
    let failed = s.wait_event_where("port25.submission.auth.failed", Duration::from_secs(5), |e| {
        e["error"].as_str().is_some_and(|e| e.contains("dovecot directory"))
    });
    assert!(failed.is_some(), "{:?}", s.events("port25.submission.auth.failed"));
}

/// The inet listener (Dovecot on another host): the same protocol over TCP.
#[test]
fn dovecot_over_tcp() {
    let dovecot = Dovecot::start(PASSWD);
    let s = port25_with(&format!("type = \"dovecot\"\nauth_socket = \"127.0.0.1:{}\"\n", dovecot.port));
    let t = submit(&s, "LOGIN", "alice@example.net", "alice pw", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~  235 2.7.0"), "{t}");
    // No userdb socket: the MX cannot ask Dovecot, and knows no one else.
    assert!(t.contains("<~* 550"), "{t}");
    let t = submit(&s, "PLAIN", "alice@example.net", "bad", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~* 535 5.7.8"), "{t}");
}

/// A Dovecot that accepts the connection and never answers: 454 within the
/// directory's timeout, never a login.
#[test]
fn a_silent_directory_is_454_in_time() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let s = port25_with(&format!("type = \"dovecot\"\nauth_socket = \"127.0.0.1:{port}\"\ntimeout_ms = 500\n"));
    let started = Instant::now();
    let t = submit(&s, "PLAIN", "alice@example.net", "alice pw", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~* 454 4.7.0"), "{t}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    drop(silent);
}

/// A fake Dovecot auth server: the handshake, then for the n-th connection
/// the n-th reply of `replies` to its AUTH request ("{id}" replaced).
fn fake_dovecot(replies: Vec<Vec<u8>>) -> u16 {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (stream, reply) in listener.incoming().zip(replies) {
            let Ok(mut stream) = stream else { return };
            let _ = stream.write_all(b"VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t1\nCUID\t1\nCOOKIE\t00\nDONE\n");
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if let Some(id) = line.strip_prefix("AUTH\t").and_then(|r| r.split('\t').next()) {
                    let reply = String::from_utf8_lossy(&reply).replace("{id}", id);
                    let _ = stream.write_all(reply.as_bytes());
                    break;
                }
                line.clear();
            }
            // Held open: a reader waiting for the LF must give up on its own.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(30));
                drop(stream);
            });
        }
    });
    port
}

/// Issue 16, bad input: reply lines over Dovecot's limit (16 KiB), with
/// control characters raw or escaped, or never ending are refused: 454,
/// never a login, and never counted as a failure of the login or the
/// address; the same server answering sanely logs in.
#[test]
fn hostile_dovecot_replies_are_refused_with_454() {
    let long = format!("OK\t{{id}}\tuser=alice@example.net\tx={}\n", "a".repeat(17_000)).into_bytes();
    let endless = vec![b'a'; 40_000];
    let replies = vec![
        long,
        endless,
        b"OK\t{id}\tuser=alice@example.net\x01nMAIL FROM:<x>\n".to_vec(),
        b"OK\t{id}\tuser=alice@example.net\r\n".to_vec(),
        b"OK\t{id}\tuser=alice@example.net\x00\n".to_vec(),
        b"OK\t{id}\tuser=alice@example.net\x1b[2J\n".to_vec(),
        b"OK\t{id}\tuser=al ice\n".to_vec(),
        b"CONT\t{id}\t\n".to_vec(),
        b"OK\t{id}\tuser=alice@example.net\n".to_vec(),
    ];
    let n = replies.len();
    let port = fake_dovecot(replies);
    // A directory's failures are not the login's: with locks after three
    // failures, eight refused replies must not lock alice or the address.
    let locks = "[submission]\nauth_login_lock_after = 3\nauth_address_lock_after = 3\n";
    let s = port25_with(&format!("type = \"dovecot\"\nauth_socket = \"127.0.0.1:{port}\"\ntimeout_ms = 2000\n{locks}"));
    for i in 0..n - 1 {
        let t = submit(&s, "PLAIN", "alice@example.net", "pw", "alice@example.net", "alice@example.net");
        assert!(t.contains("<~* 454 4.7.0") && !t.contains("235"), "reply {i}: {t}");
    }
    let t = submit(&s, "PLAIN", "alice@example.net", "pw", "alice@example.net", "alice@example.net");
    let errors_so_far: Vec<String> = s.events("port25.submission.auth.failed").iter().map(|e| e.to_string()).collect();
    assert!(t.contains("<~  235 2.7.0"), "the sane reply: {errors_so_far:?}");
    let wanted = ["longer than 16384", "control character 0x0a", "control character 0x1b"];
    let errors_of = |events: &[serde_json::Value]| -> Vec<String> {
        events.iter().filter_map(|e| e["error"].as_str().map(str::to_owned)).collect()
    };
    let has = |errors: &[String], want: &str| errors.iter().any(|e| e.contains(want));
    // The log is read a moment after the replies: wait for all three.
    let failed = s.wait_events_until("port25.submission.auth.failed", Duration::from_secs(10), |all| {
        let errors = errors_of(all);
        wanted.iter().all(|w| has(&errors, w))
    });
    let errors = errors_of(&failed);
    for want in wanted {
        assert!(has(&errors, want), "{want}: {errors:?}");
    }
}
