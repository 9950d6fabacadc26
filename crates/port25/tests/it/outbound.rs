//! The outbound queue against real remote MXes: a second port25, Postfix's
//! smtp-sink, and hand-made broken servers, found through a DNS server the
//! test runs. Each test has its own loopback addresses (127.0.N.x) and one
//! port shared by them, which the sender's `[outbound] port` points at.

use crate::dns::{DnsServer, Failure, Rr};
use crate::harness::*;
use crate::scripted::{Script, Scripted};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const WAIT: Duration = Duration::from_secs(40);

/// A port that is free on every one of `ips` right now.
pub(crate) fn free_port(ips: &[IpAddr]) -> u16 {
    'search: for _ in 0..100 {
        let first = TcpListener::bind(SocketAddr::new(ips[0], 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        for ip in &ips[1..] {
            if TcpListener::bind(SocketAddr::new(*ip, port)).is_err() {
                continue 'search;
            }
        }
        return port;
    }
    panic!("no common free port on {ips:?}");
}

pub(crate) fn v4(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

/// A remote MX address 127.0.`net`.1 on a free port, and a DNS server
/// that names it as `mx.<domain>`, the MX of `domain`.
pub(crate) fn one_mx(net: u8, domain: &str) -> (SocketAddr, DnsServer) {
    let ip = v4(127, 0, net, 1);
    let port = free_port(&[IpAddr::V4(ip)]);
    let dns = DnsServer::start();
    dns.mx(domain, &format!("mx.{domain}"), ip);
    (SocketAddr::new(IpAddr::V4(ip), port), dns)
}

/// `port25 users add` on `s`'s configuration: a submission login that may
/// send as `addresses`.
pub(crate) fn add_user(s: &Server, login: &str, addresses: &[&str], password: &str) {
    let mut add = Command::new(BIN);
    add.args(["users", "add", login]);
    for a in addresses {
        add.args(["--address", a]);
    }
    let mut add = add
        .arg("--config")
        .arg(s.dir.path().join("port25.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    assert!(add.wait().unwrap().success());
}

/// The test MXes listen on loopback, which port25 refuses as an MX target
/// unless allowed (crate::targets in port25-outbound).
pub(crate) const PRIVATE_MX: &str = "allowed_private_networks = [\"127.0.0.0/8\", \"::1/128\"]";

/// The sending port25: submission from trusted loopback devices (no AUTH
/// needed), local domain example.net, outbound through `dns` to `port`;
/// loopback MXes allowed ([`PRIVATE_MX`]).
pub(crate) fn sender(dns: &DnsServer, port: u16, extra: &str) -> Server {
    sender_in("example.net", dns, port, extra)
}

pub(crate) fn sender_in(domain: &str, dns: &DnsServer, port: u16, extra: &str) -> Server {
    sender_retrying(domain, dns, port, (1, 2), extra)
}

/// `sender_in` with retries `first` seconds after the first failure, at
/// most `max` apart.
pub(crate) fn sender_retrying(
    domain: &str,
    dns: &DnsServer,
    port: u16,
    (first, max): (u64, u64),
    extra: &str,
) -> Server {
    // A test that sets its own list (outbound_targets.rs) gets only that.
    let private_mx = if extra.contains("allowed_private_networks") { "" } else { PRIVATE_MX };
    let mx = format!(
        "domains = [\"{domain}\"]\nrecipients = [\"alice@{domain}\"]\n[submission]\ntrusted_networks = [\"127.0.0.0/8\"]\nmessages_per_hour = 0\nmessages_per_day = 0\nrecipients_per_hour = 0\nrecipients_per_day = 0\n[outbound]\nnameservers = [\"{}\"]\nport = {port}\n\
         first_retry_secs = {first}\nmax_retry_secs = {max}\nretry_jitter = 0.0\nstats_interval_secs = 1\nconnect_timeout_secs = 5\ncommand_timeout_secs = 10\n{private_mx}\n{extra}\n",
        dns.addr
    );
    Server::start(&mx, "[[listener]]\nname = \"sub\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"none\"\nplaintext_auth = true\n")
}

pub(crate) fn submit(s: &Server, to: &[&str], subject: &str) {
    submit_as(s, "alice@example.net", to, subject)
}

pub(crate) fn submit_as(s: &Server, from: &str, to: &[&str], subject: &str) {
    let mut c = Client::open(s.addr());
    assert!(c.cmd("EHLO laptop.example").starts_with("250"));
    let body = format!(
        "From: Alice <{from}>\r\nTo: {}\r\nSubject: {subject}\r\n\r\nHello from the outbound test.\r\n",
        to.join(", ")
    );
    let r = c.send_mail(from, to, &body);
    assert_eq!(code(&r), 250, "{r}");
    c.cmd("QUIT");
}

pub(crate) fn events_where(s: &Server, id: &str, key: &str, value: &str) -> Vec<serde_json::Value> {
    s.events(id).into_iter().filter(|e| e[key].as_str().is_some_and(|v| v.contains(value))).collect()
}

pub(crate) fn wait_events(s: &Server, id: &str, key: &str, value: &str, n: usize) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let found = events_where(s, id, key, value);
        if found.len() >= n || start.elapsed() > WAIT {
            assert!(
                found.len() >= n,
                "waited for {n} {id} with {key}~{value}; log: {:#?}",
                s.log
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|e| e["event"].as_str().unwrap_or("").starts_with("port25.outbound"))
                    .collect::<Vec<_>>()
            );
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn history(s: &Server) -> String {
    std::fs::read_to_string(s.data().join("outbound/history.log")).unwrap_or_default()
}

/// Waits until history.log has a line containing `needle`; returns it all.
pub(crate) fn wait_history(s: &Server, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let h = history(s);
        if h.contains(needle) {
            return h;
        }
        assert!(start.elapsed() < WAIT, "history.log never got {needle:?}: {h}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the outbound spool holds no batch file: every recipient finished.
pub(crate) fn wait_spool_empty(s: &Server, wait: Duration) {
    wait_no_batches(&s.data().join("outbound/batches"), wait, "outbound");
}

/// Waits until the local delivery spool holds no batch file: everything
/// accepted is in its mailbox (a batch is removed after its deliveries).
pub(crate) fn wait_local_spool_empty(s: &Server, wait: Duration) {
    wait_no_batches(&s.data().join("spool/batches"), wait, "local");
}

fn wait_no_batches(batches: &Path, wait: Duration, which: &str) {
    let start = Instant::now();
    loop {
        let left = std::fs::read_dir(batches).map(|d| d.count()).unwrap_or(0);
        if left == 0 {
            return;
        }
        assert!(start.elapsed() < wait, "the {which} spool still holds {left} batch file(s)");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Postfix's smtp-sink on `addr`, dumping each message into a directory.
pub(crate) struct Sink {
    child: Child,
    dir: tempfile::TempDir,
}

impl Sink {
    pub(crate) fn start(addr: SocketAddr) -> Sink {
        let bin = require("smtp-sink");
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let child = Command::new(bin)
            .args(["-u", "postfix", "-d"])
            .arg(dir.path().join("msg."))
            .arg(addr.to_string())
            .arg("100")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smtp-sink");
        let start = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "smtp-sink did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Sink { child, dir }
    }

    pub(crate) fn messages(&self) -> Vec<String> {
        read_dir_files(self.dir.path()).into_iter().map(|b| String::from_utf8_lossy(&b).into_owned()).collect()
    }

    /// The messages once there are `n`: smtp-sink may finish writing a
    /// dump file after its 250, so a delivered event can come first.
    pub(crate) fn wait_messages(&self, n: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let msgs = self.messages();
            if msgs.len() >= n || start.elapsed() > WAIT {
                return msgs;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn delivers_over_ipv6_with_starttls_and_bounces_unknown_users_with_a_dsn() {
    let remote = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let port = free_port(&[remote]);
    let dns = DnsServer::start();
    dns.add("remote.example", Rr::Mx(10, "mx.remote.example".into()))
        .add("mx.remote.example", Rr::Aaaa(Ipv6Addr::LOCALHOST));
    let b = Server::start(
        "domains = [\"remote.example\"]\nrecipients = [\"bob@remote.example\"]",
        &format!("[[listener]]\nname = \"mx\"\naddress = \"[::1]:{port}\"\n"),
    );
    let a = sender(&dns, port, "");
    submit(&a, &["bob@remote.example", "nobody@remote.example"], "first outbound");

    let got = b.wait_for_mail("remote.example", "bob", 1, WAIT);
    assert_eq!(got.len(), 1, "bob got nothing; sender log: {:?}", a.events("port25.outbound.deferred"));
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("Subject: first outbound"), "{text}");
    assert!(text.contains("with ESMTPS"), "STARTTLS was not used: {text}");
    let delivered = wait_events(&a, "port25.outbound.delivered", "to", "bob@remote.example", 1);
    assert!(delivered[0]["host"].as_str().unwrap().contains("[::1]"), "{delivered:?}");

    let dsn = a.wait_for_mail("example.net", "alice", 1, WAIT);
    assert_eq!(dsn.len(), 1, "no DSN for alice");
    let dsn = String::from_utf8_lossy(&dsn[0]);
    for want in [
        "Return-Path: <>",
        "Content-Type: multipart/report; report-type=delivery-status",
        "Final-Recipient: rfc822; nobody@remote.example",
        "Action: failed",
        "Status: 5.1.1",
        "Subject: first outbound",
    ] {
        assert!(dsn.contains(want), "DSN lacks {want:?}:\n{dsn}");
    }
    assert!(!dsn.contains("bob@remote.example\r\nAction"), "bob was delivered, not bounced");
    let h = wait_history(&a, "nobody@remote.example\tbounced");
    assert!(h.lines().any(|l| l.contains("bob@remote.example\tdelivered\t250")), "{h}");
    assert!(h.lines().any(|l| l.contains("nobody@remote.example\tbounced\t550")), "{h}");
}

#[test]
fn null_mx_bounces_at_once_without_connecting() {
    let dns = DnsServer::start();
    dns.add("nullmx.example", Rr::Mx(0, ".".into()));
    let a = sender(&dns, 25, "");
    submit(&a, &["x@nullmx.example"], "to a null MX");
    let dsn = a.wait_for_mail("example.net", "alice", 1, WAIT);
    assert_eq!(dsn.len(), 1, "no DSN; log: {:?}", a.events("port25.outbound.bounced"));
    let dsn = String::from_utf8_lossy(&dsn[0]);
    assert!(dsn.contains("Status: 5.1.10") && dsn.contains("null MX"), "{dsn}");
    assert!(a.events("port25.outbound.connect_failed").is_empty());
    assert!(a.events("port25.outbound.deferred").is_empty(), "a null MX is never retried");
}

/// A domain without MX whose A question fails (SERVFAIL, or no answer
/// at all) while AAAA says "no such record": nothing says the domain has
/// no address, so its mail is deferred (4.4.3) and kept, never bounced.
fn dns_failure_defers(how: Failure, extra: &str) {
    let dns = DnsServer::start();
    dns.fail("flaky.example", 1, how);
    let a = sender(&dns, 25, extra);
    submit(&a, &["lee@flaky.example"], "during a DNS failure");
    let deferred = wait_events(&a, "port25.outbound.deferred", "to", "lee@flaky.example", 2);
    for d in &deferred {
        assert!(d["reason"].as_str().unwrap().starts_with("451 4.4.3"), "{deferred:?}");
    }
    assert!(a.events("port25.outbound.bounced").is_empty(), "bounced: {:?}", a.events("port25.outbound.bounced"));
    assert!(a.events("port25.outbound.dsn").is_empty());
    assert!(!history(&a).contains("lee@flaky.example"), "never finished");
}

#[test]
fn outbound_servfail_for_the_address_of_a_domain_without_mx_defers_instead_of_bouncing() {
    dns_failure_defers(Failure::ServFail, "");
}

#[test]
fn outbound_a_dns_timeout_for_the_address_of_a_domain_without_mx_defers_instead_of_bouncing() {
    dns_failure_defers(Failure::Silent, "dns_timeout_secs = 1");
}

#[test]
fn deferred_while_the_mx_is_down_then_delivered_to_smtp_sink() {
    let ip = IpAddr::V4(v4(127, 0, 2, 1));
    let port = free_port(&[ip]);
    let dns = DnsServer::start();
    dns.mx("later.example", "mx.later.example", v4(127, 0, 2, 1));
    let a = sender(&dns, port, "");
    submit(&a, &["carol@later.example"], "deferred first");
    let deferred = wait_events(&a, "port25.outbound.deferred", "to", "carol@later.example", 1);
    assert!(deferred[0]["reason"].as_str().unwrap().starts_with("451 4.4.1"), "{deferred:?}");
    let sink = Sink::start(SocketAddr::new(ip, port));
    wait_events(&a, "port25.outbound.delivered", "to", "carol@later.example", 1);
    let msgs = sink.wait_messages(1);
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].contains("Subject: deferred first"), "{}", msgs[0]);
    wait_history(&a, "carol@later.example\tdelivered");
}

/// `port25 queue retry ID` and `port25 queue flush`: deferred mail whose
/// next attempt is an hour away goes out when the operator says so, one
/// message for retry, everything for flush.
#[test]
fn queue_retry_and_flush_send_deferred_mail_now_instead_of_in_an_hour() {
    let ip = IpAddr::V4(v4(127, 0, 30, 1));
    let port = free_port(&[ip]);
    let dns = DnsServer::start();
    dns.mx("hourly.example", "mx.hourly.example", v4(127, 0, 30, 1));
    let a = sender_retrying("example.net", &dns, port, (3600, 3600), "");
    submit(&a, &["una@hourly.example"], "retried by the operator");
    submit(&a, &["vic@hourly.example"], "flushed by the operator");
    let una = wait_events(&a, "port25.outbound.deferred", "to", "una@hourly.example", 1);
    wait_events(&a, "port25.outbound.deferred", "to", "vic@hourly.example", 1);
    assert_eq!(una[0]["retry_in"].as_u64(), Some(3600), "{una:?}");
    let id = una[0]["id"].as_str().unwrap().to_owned();
    let queue = |args: &[&str]| {
        let out = Command::new(BIN).arg("queue").args(args).arg("--data-dir").arg(a.data()).output().unwrap();
        assert!(out.status.success(), "queue {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let list = queue(&["list"]);
    assert!(list.contains("una@hourly.example") && list.contains("vic@hourly.example"), "{list}");
    let sink = Sink::start(SocketAddr::new(ip, port));
    queue(&["retry", &id]);
    wait_events(&a, "port25.outbound.delivered", "to", "una@hourly.example", 1);
    assert!(sink.wait_messages(1)[0].contains("Subject: retried by the operator"));
    assert!(
        events_where(&a, "port25.outbound.delivered", "to", "vic@hourly.example").is_empty(),
        "retry ID sends only that message"
    );
    queue(&["flush"]);
    wait_events(&a, "port25.outbound.delivered", "to", "vic@hourly.example", 1);
    wait_history(&a, "vic@hourly.example\tdelivered");
    // The queue writes a recipient's history line (fsynced) before its done
    // line and only then drops the batch (journal.rs: a crash in between
    // sends it again rather than losing the record), so `queue list` may
    // show it for a moment after the history says delivered.
    let start = Instant::now();
    loop {
        let list = queue(&["list"]);
        if !list.contains("hourly.example") {
            break;
        }
        assert!(start.elapsed() < WAIT, "nothing left queued: {list}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tls_required_but_not_offered_is_deferred_never_sent_in_clear() {
    let ip = IpAddr::V4(v4(127, 0, 3, 1));
    let port = free_port(&[ip]);
    let dns = DnsServer::start();
    dns.mx("tls.example", "mx.tls.example", v4(127, 0, 3, 1));
    let sink = Sink::start(SocketAddr::new(ip, port));
    let a = sender(&dns, port, "require_tls = [\"tls.example\"]");
    submit(&a, &["dave@tls.example"], "secret");
    let deferred = wait_events(&a, "port25.outbound.deferred", "to", "dave@tls.example", 2);
    let reason = deferred[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("451 4.7.5") && reason.contains("TLS is required"), "{reason}");
    assert!(sink.messages().is_empty(), "sent in clear");
    assert!(a.events("port25.outbound.delivered").is_empty());
    // The operator sees it queued, with the reason.
    let out = Command::new(BIN).args(["queue", "list", "--data-dir"]).arg(a.data()).output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && list.contains("dave@tls.example") && list.contains("TLS is required"), "{list}");
    assert!(list.contains("1 recipient(s) of 1 message(s) queued"), "{list}");
    let id = deferred[0]["id"].as_str().unwrap().to_owned();
    let out = Command::new(BIN).args(["queue", "show", &id, "--data-dir"]).arg(a.data()).output().unwrap();
    let show = String::from_utf8_lossy(&out.stdout);
    assert!(show.contains("Subject: secret") && show.contains("queued dave@tls.example"), "{show}");
    // Deleted by the operator: gone, no DSN, recorded.
    let out = Command::new(BIN).args(["queue", "delete", &id, "--data-dir"]).arg(a.data()).output().unwrap();
    assert!(out.status.success());
    wait_events(&a, "port25.outbound.control", "command", "delete", 1);
    wait_history(&a, "dave@tls.example\tdeleted");
    assert!(a.all_mail().is_empty(), "no DSN for a deleted message");
}

#[test]
fn a_remote_that_drops_mid_data_gets_the_message_again_later() {
    let ip = IpAddr::V4(v4(127, 0, 4, 1));
    let port = free_port(&[ip]);
    let dns = DnsServer::start();
    dns.mx("drop.example", "mx.drop.example", v4(127, 0, 4, 1));
    let remote = Scripted::start(SocketAddr::new(ip, port), Script { drop_in_data: true, ..Script::default() });
    let a = sender(&dns, port, "");
    submit(&a, &["erin@drop.example"], "dropped");
    let deferred = wait_events(&a, "port25.outbound.deferred", "to", "erin@drop.example", 2);
    assert!(deferred[0]["reason"].as_str().unwrap().starts_with("451 4.4.2"), "{deferred:?}");
    assert!(remote.conns().len() >= 2);
    assert!(a.events("port25.outbound.delivered").is_empty());
    assert!(!history(&a).contains("erin@drop.example"), "never finished");
}

fn subjects_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for f in read_dir_files(dir) {
        let t = String::from_utf8_lossy(&f).into_owned();
        if let Some(s) = t.lines().find_map(|l| l.strip_prefix("Subject: ")) {
            out.push(s.to_owned());
        }
    }
    out
}

#[test]
fn kill_9_during_delivery_loses_nothing_and_the_records_say_what_happened() {
    const N: usize = 600;
    let ip = IpAddr::V4(v4(127, 0, 5, 1));
    let port = free_port(&[ip]);
    let dns = DnsServer::start();
    dns.mx("crash.example", "mx.crash.example", v4(127, 0, 5, 1));
    let b = Server::start(
        "domains = [\"crash.example\"]\nrecipients = [\"frank@crash.example\"]",
        &format!("[[listener]]\nname = \"mx\"\naddress = \"127.0.5.1:{port}\"\ntls = \"none\"\n"),
    );
    let mut a = sender(&dns, port, "hold = true\nconnections_per_destination = 2\nmessages_per_connection = 10");
    let mut c = Client::open(a.addr());
    c.cmd("EHLO laptop.example");
    for i in 0..N {
        let body = format!("From: alice@example.net\r\nSubject: crash {i}\r\n\r\nbody {i}\r\n");
        assert_eq!(code(&c.send_mail("alice@example.net", &["frank@crash.example"], &body)), 250);
    }
    // Everything queued; now let it go and kill it in the middle.
    let out = Command::new(BIN).args(["queue", "release", "--data-dir"]).arg(a.data()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_events(&a, "port25.outbound.delivered", "to", "frank@crash.example", 20);
    a.kill9();
    let before = a.events("port25.outbound.delivered").len();
    assert!(before < N, "all {N} were delivered before the kill: make the test slower");
    // The restart's configuration has hold = true: release again.
    a.spawn();
    let out = Command::new(BIN).args(["queue", "release", "--data-dir"]).arg(a.data()).output().unwrap();
    assert!(out.status.success());
    wait_spool_empty(&a, WAIT * 2);
    // Everything a delivered is in b's spool; b's Maildir gets it after its
    // 250, so wait for b's local delivery to finish rather than for a while.
    wait_local_spool_empty(&b, WAIT);
    let mut subjects = subjects_in(&b.maildir("crash.example", "frank"));
    let total = subjects.len();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), N, "every message arrives at least once ({total} copies)");
    // At most what was in flight at the kill arrives twice.
    assert!(total - N <= 50, "{} duplicates", total - N);
    let h = history(&a);
    let delivered = h.lines().filter(|l| l.contains("frank@crash.example\tdelivered")).count();
    assert!(delivered >= N, "history.log records {delivered} deliveries of {N}");
}

/// dkimpy (a second DKIM implementation, in its own process) verifies the
/// signature port25 added, with the public key from `port25 dkim keygen`.
#[test]
fn dkim_signature_made_by_port25_verifies_with_dkimpy() {
    let ip = IpAddr::V4(v4(127, 0, 6, 1));
    let port = free_port(&[ip]);
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("example.net.pem");
    let out = Command::new(BIN)
        .args(["dkim", "keygen", "--domain", "example.net", "--selector", "sel1", "--bits", "2048", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let record = String::from_utf8(out.stdout).unwrap();
    assert!(record.starts_with("sel1._domainkey.example.net. IN TXT ("), "{record}");
    // The record's quoted strings, joined, are the TXT value.
    let txt: String = record.split('"').skip(1).step_by(2).collect();
    assert!(txt.starts_with("v=DKIM1; k=rsa; p="), "{txt}");

    let dns = DnsServer::start();
    dns.mx("signed.example", "mx.signed.example", v4(127, 0, 6, 1));
    let b = Server::start(
        "domains = [\"signed.example\"]\nrecipients = [\"grace@signed.example\"]",
        &format!("[[listener]]\nname = \"mx\"\naddress = \"127.0.6.1:{port}\"\n"),
    );
    let a = sender(
        &dns,
        port,
        &format!(
            "[[outbound.dkim]]\ndomain = \"example.net\"\nselector = \"sel1\"\nprivate_key = \"{}\"",
            key.display()
        ),
    );
    submit(&a, &["grace@signed.example"], "signed by port25");
    let got = b.wait_for_mail("signed.example", "grace", 1, WAIT);
    assert_eq!(got.len(), 1, "not delivered: {:?}", a.events("port25.outbound.deferred"));
    let text = String::from_utf8_lossy(&got[0]);
    assert!(
        text.contains("DKIM-Signature: v=1; a=rsa-sha256;")
            && text.contains("d=example.net")
            && text.contains("s=sel1"),
        "{text}"
    );
    let msg = a.dir.path().join("signed.eml");
    std::fs::write(&msg, &got[0]).unwrap();
    let script = "import dkim, sys\nmsg = open(sys.argv[1], 'rb').read()\ntxt = sys.argv[2].encode()\n\
                  def dns(name, timeout=5):\n    assert name == b'sel1._domainkey.example.net.', name\n    return txt\n\
                  print('verified' if dkim.verify(msg, dnsfunc=dns) else 'FAILED')\n";
    let out = Command::new("python3").arg("-c").arg(script).arg(&msg).arg(&txt).output().expect("python3");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.trim() == "verified", "dkimpy: {said} {}", String::from_utf8_lossy(&out.stderr));
    // A tampered body must fail: the check can fail.
    let tampered = String::from_utf8_lossy(&got[0]).replace("Hello from the outbound test.", "Hello from a forger.");
    std::fs::write(&msg, tampered).unwrap();
    let out = Command::new("python3").arg("-c").arg(script).arg(&msg).arg(&txt).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "FAILED");
    // Header fields added after signing must fail too: a Sender: or a
    // Resent-From: (signed as absent), and a second From: (oversigned).
    let signed = String::from_utf8_lossy(&got[0]).into_owned();
    let (head, body) = signed.split_once("\r\n\r\n").expect("a header section");
    for added in ["Sender: ceo@bank.example", "Resent-From: ceo@bank.example", "From: ceo@bank.example"] {
        std::fs::write(&msg, format!("{head}\r\n{added}\r\n\r\n{body}")).unwrap();
        let out = Command::new("python3").arg("-c").arg(script).arg(&msg).arg(&txt).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "FAILED", "{added} added after signing still verified");
    }
}

/// A real Postfix as the remote MX (it relays on to a port25 MX, where the
/// message lands in a Maildir): found by MX lookup, PIPELINING, 250 with
/// Postfix's queue id.
#[test]
fn a_real_postfix_is_the_remote_mx() {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let port = free_port(&[ip]);
    let dns = DnsServer::start();
    dns.mx("example.net", "mx.postfix.example", Ipv4Addr::LOCALHOST);
    let b = Server::mx();
    let pf = crate::postfix::start_postfix(port, b.addr());
    let a = sender_in("example.org", &dns, port, "");
    submit_as(&a, "alice@example.org", &["henry@example.net"], "through postfix");
    let delivered = wait_events(&a, "port25.outbound.delivered", "to", "henry@example.net", 1);
    assert!(delivered[0]["reply"].as_str().unwrap().starts_with("250 2.0.0 Ok: queued as"), "{delivered:?}");
    let mail = b.wait_for_mail("example.net", "henry", 1, Duration::from_secs(60));
    let log = std::fs::read_to_string(pf.dir.path().join("maillog")).unwrap_or_default();
    assert_eq!(mail.len(), 1, "postfix log:\n{log}");
    let text = String::from_utf8_lossy(&mail[0]);
    assert!(text.contains("Subject: through postfix"), "{text}");
    assert!(log.contains("from=<alice@example.org>"), "{log}");
    // Postfix's trace header: it took the message from us over ESMTP.
    assert!(text.contains("by relay.remote.example (Postfix) with ESMTP"), "{text}");
}

/// Smarthost mode: everything goes to one relay, here another port25's
/// submission service, which requires AUTH: port25's AUTH PLAIN must work
/// (over STARTTLS verified with the test CA: never AUTH without it).
#[test]
fn smarthost_with_auth_plain_relays_everything_to_one_host() {
    let ip = IpAddr::V4(v4(127, 0, 7, 1));
    let port = free_port(&[ip]);
    let pki = tempfile::tempdir().unwrap();
    let (ca, cert, key, _) = crate::outbound_smarthost::test_pki(pki.path(), ip);
    let b = Server::start(
        &format!(
            "domains = [\"relay.example\"]\nrecipients = [\"ivan@relay.example\"]\n[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"",
            cert.display(),
            key.display()
        ),
        &format!("[[listener]]\nname = \"sub\"\naddress = \"127.0.7.1:{port}\"\nservice = \"submission\"\ntls = \"starttls\"\n"),
    );
    add_user(&b, "relayuser@relay.example", &["@example.net"], "relay-secret");
    let secret = b.dir.path().join("smarthost.pass");
    std::fs::write(&secret, "relay-secret\n").unwrap();
    // No DNS entry at all: smarthost mode never looks up MX records.
    let dns = DnsServer::start();
    let extra = format!(
        "smarthost = \"127.0.7.1:{port}\"\nsmarthost_username = \"relayuser@relay.example\"\nsmarthost_password_file = \"{}\"\nsmarthost_ca = \"{}\"",
        secret.display(),
        ca.display()
    );
    let a = sender(&dns, 25, &extra);
    submit(&a, &["ivan@relay.example"], "via the smarthost");
    let got = b.wait_for_mail("relay.example", "ivan", 1, WAIT);
    assert_eq!(got.len(), 1, "not relayed: {:?}", a.events("port25.outbound.deferred"));
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("with ESMTPSA"), "the smarthost saw no AUTH over TLS: {text}");
    let delivered = wait_events(&a, "port25.outbound.delivered", "to", "ivan@relay.example", 1);
    assert!(delivered[0]["host"].as_str().unwrap().contains("127.0.7.1"), "{delivered:?}");
}
