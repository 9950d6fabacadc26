//! Issue 16 §2: two `port25 serve` nodes (own ports, own data dirs, own
//! account files) sharing one real store started here, a redis-server or
//! (shared_state_postgresql.rs) a PostgreSQL: a login's hourly limit holds
//! across both, a lock started on node A refuses the login on node B, the
//! session cap counts both, `port25 migration report` counts both nodes'
//! usage once; and with the store stopped, fail_closed answers 454 4.7.0
//! while local accepts with a port25.shared.unreachable event. Clients are
//! Python smtplib. Each case is one function taking the store, run once
//! per backend.

use crate::harness::*;
use crate::submission::{addr, events, listeners, login, python, users, ALICE, ALICE_PW, MX};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A redis-server of our own: temp dir, free port, no persistence.
pub(crate) struct Redis {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub(crate) fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(require("redis-server"))
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--dir",
                dir.path().to_str().unwrap(),
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server)");
        // Killed on drop, a panic below included.
        let redis = Redis { child, port, _dir: dir };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not listen on {port}");
    }

    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A shared store the test started: the `[submission.shared]` keys that
/// reach it, its backend's name in events, and stopping it.
pub(crate) trait Store {
    fn keys(&self) -> String;
    fn kind(&self) -> &'static str;
    fn stop(&mut self);
    /// `[submission.shared] timeout_ms` for the nodes sharing it.
    fn timeout_ms(&self) -> u64 {
        300
    }
}

impl Store for Redis {
    fn keys(&self) -> String {
        format!("redis = \"redis://127.0.0.1:{}/0\"\n", self.port)
    }
    fn kind(&self) -> &'static str {
        "redis"
    }
    fn stop(&mut self) {
        Redis::stop(self)
    }
}

/// One node: submission listeners, `extra` [submission] keys, sharing
/// `store` as `on_unreachable` says; alice and bob have accounts.
pub(crate) fn node(store: &dyn Store, extra: &str, on_unreachable: &str) -> Server {
    let submission = format!(
        "auth_slow_after = 1000\n{extra}\n[submission.shared]\n{}on_unreachable = \"{on_unreachable}\"\ntimeout_ms = {}\n",
        store.keys(),
        store.timeout_ms()
    );
    let s = Server::start(&format!("{MX}\ncatch_all = [\"example.org\"]"), &listeners(&submission));
    users(&s, &["add", ALICE], ALICE_PW);
    users(&s, &["add", "bob@example.net"], "bob pw");
    s
}

/// One smtplib session per port in turn, each sending one message as
/// `user`: the reply code of each (250, or the refusal's code).
const SEND_EACH: &str = r#"
import smtplib, sys, json
user, pw, ports = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]
out = []
for i, port in enumerate(ports):
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.ehlo("laptop.example"); s.login(user, pw)
    try:
        s.sendmail(user, ["r%d@example.org" % i], "From: %s\r\nSubject: %d\r\n\r\nhello\r\n" % (user, i))
        out.append(250)
    except smtplib.SMTPSenderRefused as e:
        out.append(e.smtp_code)
    except smtplib.SMTPRecipientsRefused as e:
        out.append(min(c for c, _ in e.recipients.values()))
    s.quit()
print(json.dumps(out))
"#;

pub(crate) fn send_each(user: &str, pw: &str, ports: &[u16]) -> Vec<u16> {
    let mut args = vec![user.to_owned(), pw.to_owned()];
    args.extend(ports.iter().map(u16::to_string));
    let text = python(SEND_EACH, &args);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn an_hourly_limit_holds_across_two_nodes() {
    hourly_limit(&Redis::start());
}

pub(crate) fn hourly_limit(redis: &dyn Store) {
    let (a, b) =
        (node(redis, "messages_per_hour = 3\n", "fail_closed"), node(redis, "messages_per_hour = 3\n", "fail_closed"));
    let (pa, pb) = (addr(&a, "plain").port(), addr(&b, "plain").port());
    // Each node alone would take 3: together they take 3.
    assert_eq!(send_each(ALICE, ALICE_PW, &[pa, pb, pa, pb, pb]), vec![250, 250, 250, 450, 450]);
    let limit = events(&b, "port25.submission.limit", 1);
    assert_eq!(limit[0]["limit"], "messages_per_hour", "{limit:?}");
    // Another login has its own window.
    assert_eq!(send_each("bob@example.net", "bob pw", &[pb, pa]), vec![250, 250]);
    // A transaction given back (RSET) frees its place on the other node.
    let mut c = Client::open(addr(&a, "plain"));
    c.cmd("EHLO laptop.example");
    assert_eq!(code(&login(&mut c, "bob@example.net", "bob pw")), 235);
    assert_eq!(code(&c.cmd("MAIL FROM:<bob@example.net>")), 250);
    assert_eq!(code(&c.cmd("RCPT TO:<x@example.org>")), 250);
    assert_eq!(
        send_each("bob@example.net", "bob pw", &[pb]),
        vec![450],
        "bob's third is reserved on node A: node B counts it"
    );
    assert_eq!(code(&c.cmd("RSET")), 250);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        send_each("bob@example.net", "bob pw", &[pb]),
        vec![250],
        "given back by RSET on node A, the place is node B's"
    );
}

#[test]
fn a_lock_on_node_a_refuses_the_login_on_node_b() {
    lock_across(&Redis::start());
}

pub(crate) fn lock_across(redis: &dyn Store) {
    let extra = "auth_login_lock_after = 3\nauth_address_lock_after = 100\n";
    let (a, b) = (node(redis, extra, "fail_closed"), node(redis, extra, "fail_closed"));
    for _ in 0..3 {
        let mut c = Client::open(addr(&a, "plain"));
        c.cmd("EHLO guesser.example");
        assert_eq!(code(&login(&mut c, ALICE, "guess")), 535);
    }
    let mut c = Client::open(addr(&b, "plain"));
    c.cmd("EHLO laptop.example");
    let r = login(&mut c, ALICE, ALICE_PW);
    assert!(r.starts_with("454 4.7.0 Too many failed logins for this login"), "node B: {r}");
    // A wrong password gets the very same answer (the lock is read with
    // the failure, after the check): a lock tells nothing of the password.
    let mut c = Client::open(addr(&b, "plain"));
    c.cmd("EHLO guesser.example");
    let wrong = login(&mut c, ALICE, "guess again");
    assert_eq!(wrong.split(';').next(), r.split(';').next(), "node B, wrong password: {wrong}");
    // The right password on node B recorded nothing: still locked on A.
    let mut c = Client::open(addr(&a, "plain"));
    c.cmd("EHLO laptop.example");
    let r = login(&mut c, ALICE, ALICE_PW);
    assert!(r.starts_with("454 4.7.0 Too many failed logins for this login"), "node A: {r}");
    // bob is not locked, on either node.
    let mut c = Client::open(addr(&b, "plain"));
    c.cmd("EHLO laptop.example");
    assert_eq!(code(&login(&mut c, "bob@example.net", "bob pw")), 235);
}

#[test]
fn the_session_cap_counts_both_nodes() {
    session_cap(&Redis::start());
}

pub(crate) fn session_cap(redis: &dyn Store) {
    let (a, b) = (
        node(redis, "max_sessions_per_login = 1\n", "fail_closed"),
        node(redis, "max_sessions_per_login = 1\n", "fail_closed"),
    );
    let mut on_a = Client::open(addr(&a, "plain"));
    on_a.cmd("EHLO laptop.example");
    assert_eq!(code(&login(&mut on_a, ALICE, ALICE_PW)), 235);
    let mut on_b = Client::open(addr(&b, "plain"));
    on_b.cmd("EHLO phone.example");
    let r = login(&mut on_b, ALICE, ALICE_PW);
    assert!(r.starts_with("454 4.7.0 Too many sessions"), "{r}");
    // The session on node A ends: its slot is free for node B.
    on_a.cmd("QUIT");
    drop(on_a);
    std::thread::sleep(Duration::from_millis(300));
    let mut on_b = Client::open(addr(&b, "plain"));
    on_b.cmd("EHLO phone.example");
    assert_eq!(code(&login(&mut on_b, ALICE, ALICE_PW)), 235);
}

#[test]
fn the_migration_report_counts_both_nodes_once() {
    migration_report(Redis::start());
}

pub(crate) fn migration_report(mut redis: impl Store) {
    let (a, b) = (node(&redis, "", "fail_closed"), node(&redis, "", "fail_closed"));
    // alice on both nodes, bob on node B only.
    assert_eq!(send_each(ALICE, ALICE_PW, &[addr(&a, "plain").port(), addr(&b, "plain").port()]), vec![250, 250]);
    assert_eq!(send_each("bob@example.net", "bob pw", &[addr(&b, "plain").port()]), vec![250]);
    for s in [&a, &b] {
        let out = Command::new(BIN)
            .args(["migration", "report", "--json", "--config"])
            .arg(s.dir.path().join("port25.toml"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)));
        let d = v["domains"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["domain"] == "example.net")
            .expect("example.net")
            .clone();
        assert_eq!((d["active"].as_u64(), d["submission_only"].as_u64()), (Some(2), Some(2)), "{v}");
    }
    // Without the store, the report refuses to print one node's share.
    redis.stop();
    let out = Command::new(BIN)
        .args(["migration", "report", "--config"])
        .arg(a.dir.path().join("port25.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("usage records cannot be read"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn redis_stopped_fails_closed_with_454() {
    stopped_fails_closed(Redis::start());
}

pub(crate) fn stopped_fails_closed(mut redis: impl Store) {
    let a = node(&redis, "", "fail_closed");
    let mut c = Client::open(addr(&a, "plain"));
    c.cmd("EHLO laptop.example");
    assert_eq!(code(&login(&mut c, ALICE, ALICE_PW)), 235);
    redis.stop();
    // MAIL does not ask the store (the node's own quota answers there);
    // the recipient's reservation does.
    assert_eq!(code(&c.cmd(&format!("MAIL FROM:<{ALICE}>"))), 250);
    let r = c.cmd("RCPT TO:<x@example.org>");
    assert!(r.starts_with("454 4.7.0"), "RCPT: {r}");
    let mut c = Client::open(addr(&a, "plain"));
    c.cmd("EHLO laptop.example");
    let r = login(&mut c, ALICE, ALICE_PW);
    assert!(r.starts_with("454 4.7.0"), "AUTH: {r}");
    // A wrong password too: whether a lock holds cannot be known, and a
    // 535 here would tell the password from the lock's 454.
    let mut c = Client::open(addr(&a, "plain"));
    c.cmd("EHLO laptop.example");
    let r = login(&mut c, ALICE, "wrong");
    assert!(r.starts_with("454 4.7.0"), "AUTH, wrong password: {r}");
    let e = a.wait_event("port25.shared.unreachable", Duration::from_secs(5)).expect("the event");
    assert_eq!((e["policy"].as_str(), e["backend"].as_str()), (Some("fail_closed"), Some(redis.kind())), "{e}");
    assert!(a.all_mail().is_empty());
}

#[test]
fn redis_stopped_with_local_accepts_and_says_so() {
    stopped_local(Redis::start());
}

pub(crate) fn stopped_local(mut redis: impl Store) {
    let a = node(&redis, "", "local");
    redis.stop();
    assert_eq!(send_each(ALICE, ALICE_PW, &[addr(&a, "plain").port()]), vec![250]);
    let e = a.wait_event("port25.shared.unreachable", Duration::from_secs(5)).expect("the event");
    assert_eq!(e["policy"], "local", "{e}");
    assert_eq!(e["level"].as_str().map(str::to_lowercase).as_deref(), Some("error"), "{e}");
}
