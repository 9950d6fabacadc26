//! Reloading the whole configuration live (issue 15, section 2): after a
//! SIGHUP, a new session sees the new domains, recipients and limits while
//! a session opened before finishes on the old ones; a configuration that
//! fails its checks changes nothing; listeners whose address changed are
//! rebound (the new port accepts, the old one refuses), unchanged ones keep
//! their connections, added ones start and removed ones stop; a DKIM key
//! replaced signs the next message (dkimpy verifies it).

use crate::dns::DnsServer;
use crate::harness::{code, Client, Server, HTTP_ON_PORT_0};
use crate::outbound::{free_port, sender, submit, v4};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn mx_config(dir: &Path, mx: &str, listeners: &str) -> String {
    format!(
        "hostname = \"mx.test.example\"\ndata_dir = \"{}\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n[mx]\n{mx}\n{listeners}\n{HTTP_ON_PORT_0}",
        dir.join("data").display()
    )
}

fn write(s: &Server, text: &str) {
    std::fs::write(s.dir.path().join("port25.toml"), text).unwrap();
}

/// Sends SIGHUP and waits for the n-th `reloaded` (or `reload_failed`) event.
fn hup(s: &Server, event: &str, n: usize) -> serde_json::Value {
    s.signal("-HUP");
    let got = s.wait_events(event, n, WAIT);
    assert_eq!(got.len(), n, "{event} #{n}; log: {:?}", s.events("port25.server.reload_failed"));
    got[n - 1].clone()
}

fn rcpt(c: &mut Client, to: &str) -> u16 {
    code(&c.cmd(&format!("RCPT TO:<{to}>")))
}

/// Body of `n` bytes in 76-character lines.
fn body(n: usize) -> String {
    let line = format!("{}\r\n", "x".repeat(76));
    format!("Subject: size\r\n\r\n{}", line.repeat(n / line.len() + 1))
}

fn data(c: &mut Client, body: &str) -> u16 {
    assert_eq!(code(&c.cmd("DATA")), 354);
    c.send(body.as_bytes());
    c.send(b"\r\n.\r\n");
    code(&c.reply())
}

const LISTENER: &str = "[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\ntls = \"none\"\n";

#[test]
fn recipients_domains_and_limits_change_for_new_sessions_while_old_ones_finish_on_theirs() {
    let before = "domains = [\"example.net\"]\nrecipients = [\"alice@example.net\"]";
    let s = Server::start_with("serve", |dir| mx_config(dir, before, LISTENER));
    // A session opened on the old configuration, in its transaction.
    let mut old = Client::open(s.addr());
    assert_eq!(code(&old.cmd("EHLO old.example")), 250);
    assert_eq!(code(&old.cmd("MAIL FROM:<x@remote.example>")), 250);

    let after = "domains = [\"example.net\", \"example.org\"]\nrecipients = [\"alice@example.net\", \"bob@example.net\", \"carol@example.org\"]";
    write(&s, &mx_config(s.dir.path(), after, &format!("{LISTENER}max_message_size = 4000\n")));
    let done = hup(&s, "port25.server.reloaded", 1);
    let changed = done["changed"].as_str().unwrap();
    assert!(changed.contains("[mx]") && changed.contains("[[listener]]"), "{done}");
    assert!(done.get("restart_needed").is_none_or(|v| v.is_null()), "{done}");

    let mut new = Client::open(s.addr());
    let ehlo = new.cmd("EHLO new.example");
    assert!(ehlo.contains("SIZE 4000"), "the new limit is advertised: {ehlo}");
    assert_eq!(code(&new.cmd("MAIL FROM:<x@remote.example>")), 250);
    assert_eq!(rcpt(&mut new, "bob@example.net"), 250, "a recipient added by the reload");
    assert_eq!(rcpt(&mut new, "carol@example.org"), 250, "a domain added by the reload");
    assert_eq!(data(&mut new, &body(10_000)), 552, "the new size limit");

    assert_eq!(rcpt(&mut old, "bob@example.net"), 550, "the old session keeps the old recipients");
    assert_eq!(rcpt(&mut old, "carol@example.org"), 554, "and the old domains");
    assert_eq!(rcpt(&mut old, "alice@example.net"), 250);
    assert_eq!(data(&mut old, &body(10_000)), 250, "and the old size limit");
    assert_eq!(s.wait_for_mail("example.net", "alice", 1, WAIT).len(), 1);
}

#[test]
fn a_configuration_that_fails_its_checks_is_refused_and_the_old_one_serves() {
    let before = "domains = [\"example.net\"]\nrecipients = [\"alice@example.net\"]";
    let s = Server::start_with("serve", |dir| mx_config(dir, before, LISTENER));
    // It parses (the file exists) but does not load: a `serve --check` failure.
    let missing = s.dir.path().join("not-a-key.pem");
    std::fs::write(&missing, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n").unwrap();
    let broken = format!(
        "domains = [\"example.net\"]\nrecipients = [\"alice@example.net\", \"bob@example.net\"]\n{LISTENER}\n[[outbound.dkim]]\ndomain = \"example.net\"\nselector = \"s1\"\nprivate_key = \"{}\"\n",
        missing.display()
    );
    write(&s, &mx_config(s.dir.path(), &broken, ""));
    let failed = hup(&s, "port25.server.reload_failed", 1);
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("dkim example.net selector s1") && error.contains("port25.toml"), "{failed}");
    assert!(s.events("port25.server.reloaded").is_empty());
    let mut c = Client::open(s.addr());
    c.cmd("EHLO probe.example");
    assert_eq!(code(&c.cmd("MAIL FROM:<x@remote.example>")), 250);
    assert_eq!(rcpt(&mut c, "bob@example.net"), 550, "the refused file's recipient is not in effect");
    assert_eq!(rcpt(&mut c, "alice@example.net"), 250);
    assert_eq!(data(&mut c, "Subject: still serving\r\n\r\nhi\r\n"), 250);
}

fn refused(addr: SocketAddr) -> bool {
    matches!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

#[test]
fn listeners_are_rebound_added_and_removed_and_the_unchanged_one_keeps_its_connection() {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let (p1, p2, p3) = (free_port(&[lo]), free_port(&[lo]), free_port(&[lo]));
    let mx = "domains = [\"example.net\"]\nrecipients = [\"alice@example.net\"]";
    let listener =
        |name: &str, addr: &str| format!("[[listener]]\nname = \"{name}\"\naddress = \"{addr}\"\ntls = \"none\"\n");
    let keep = listener("keep", "127.0.0.1:0");
    let gone = listener("gone", "127.0.0.1:0");
    let s = Server::start_with("serve", |dir| {
        mx_config(dir, mx, &format!("{keep}{}{gone}", listener("moves", &format!("127.0.0.1:{p1}"))))
    });
    let addr = |name: &str| s.addrs.iter().find(|(n, _)| n == name).unwrap().1;
    let (keep_at, gone_at) = (addr("keep"), addr("gone"));
    assert_eq!(addr("moves").port(), p1);
    let mut kept = Client::open(keep_at);
    let mut on_old_port = Client::open(SocketAddr::new(lo, p1));
    assert_eq!(code(&on_old_port.cmd("EHLO early.example")), 250);

    // The new address is taken: the listener keeps its socket, the error is named.
    let squatter = std::net::TcpListener::bind(SocketAddr::new(lo, p2)).unwrap();
    write(&s, &mx_config(s.dir.path(), mx, &format!("{keep}{}{gone}", listener("moves", &format!("127.0.0.1:{p2}")))));
    let done = hup(&s, "port25.server.reloaded", 1);
    let failed = s.wait_event("port25.server.rebind_failed", WAIT).expect("rebind_failed");
    assert_eq!(failed["listener"], "moves");
    assert!(failed["error"].as_str().unwrap().contains(&format!("127.0.0.1:{p2}")), "{failed}");
    assert!(done["listeners"].as_str().unwrap().contains("moves kept"), "{done}");
    let mut c = Client::open(SocketAddr::new(lo, p1));
    assert_eq!(code(&c.cmd("QUIT")), 221);
    drop(squatter);

    // Now free: moved; "gone" removed, "added" added, "keep" untouched.
    let added = listener("added", &format!("127.0.0.1:{p3}"));
    write(&s, &mx_config(s.dir.path(), mx, &format!("{keep}{}{added}", listener("moves", &format!("127.0.0.1:{p2}")))));
    let done = hup(&s, "port25.server.reloaded", 2);
    let notes = done["listeners"].as_str().unwrap();
    assert!(notes.contains(&format!("moves rebound from 127.0.0.1:{p1} to 127.0.0.1:{p2}")), "{done}");
    assert!(notes.contains("added added") && notes.contains("gone removed"), "{done}");
    assert!(refused(SocketAddr::new(lo, p1)), "the old address of a moved listener is closed");
    assert!(refused(gone_at), "a removed listener is closed");
    for port in [p2, p3] {
        let mut c = Client::open(SocketAddr::new(lo, port));
        assert_eq!(code(&c.cmd("EHLO new.example")), 250);
        assert_eq!(code(&c.send_mail("x@remote.example", &["alice@example.net"], "Subject: new\r\n\r\nhi\r\n")), 250);
    }
    // Connections made before the reload: the unchanged listener's, and
    // one on the port that moved, finish their mail.
    assert_eq!(code(&kept.cmd("EHLO kept.example")), 250);
    assert_eq!(code(&kept.send_mail("x@remote.example", &["alice@example.net"], "Subject: kept\r\n\r\nhi\r\n")), 250);
    assert_eq!(
        code(&on_old_port.send_mail("x@remote.example", &["alice@example.net"], "Subject: old\r\n\r\nhi\r\n")),
        250
    );
    // The unchanged listener still accepts on its address.
    let mut again = Client::open(keep_at);
    assert_eq!(code(&again.cmd("QUIT")), 221);
    assert_eq!(s.wait_for_mail("example.net", "alice", 4, WAIT).len(), 4);
}

fn keygen(dir: &Path, selector: &str) -> (std::path::PathBuf, String) {
    let key = dir.join(format!("{selector}.pem"));
    let out = Command::new(crate::harness::BIN)
        .args(["dkim", "keygen", "--domain", "example.net", "--selector", selector, "--bits", "2048", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let record = String::from_utf8(out.stdout).unwrap();
    (key, record.split('"').skip(1).step_by(2).collect())
}

fn dkimpy_verifies(dir: &Path, msg: &[u8], selector: &str, txt: &str) -> bool {
    let path = dir.join("signed.eml");
    std::fs::write(&path, msg).unwrap();
    let script = "import dkim, sys\nmsg = open(sys.argv[1], 'rb').read()\nname, txt = sys.argv[2].encode(), sys.argv[3].encode()\n\
                  def dns(q, timeout=5):\n    return txt if q == name else None\n\
                  print('verified' if dkim.verify(msg, dnsfunc=dns) else 'FAILED')\n";
    let name = format!("{selector}._domainkey.example.net.");
    let out = Command::new("python3").arg("-c").arg(script).arg(&path).arg(&name).arg(txt).output().expect("python3");
    assert!(out.status.success(), "dkimpy (python3-dkim): {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim() == "verified"
}

#[test]
fn a_dkim_key_replaced_signs_the_next_message() {
    let ip = IpAddr::V4(v4(127, 0, 15, 1));
    let port = free_port(&[ip]);
    let keys = tempfile::tempdir().unwrap();
    let (key1, txt1) = keygen(keys.path(), "sel1");
    let (key2, txt2) = keygen(keys.path(), "sel2");
    let dns = DnsServer::start();
    dns.mx("signed.example", "mx.signed.example", v4(127, 0, 15, 1));
    let b = Server::start(
        "domains = [\"signed.example\"]\nrecipients = [\"grace@signed.example\"]",
        &format!("[[listener]]\nname = \"mx\"\naddress = \"127.0.15.1:{port}\"\n"),
    );
    let table = |sel: &str, key: &Path| {
        format!(
            "[[outbound.dkim]]\ndomain = \"example.net\"\nselector = \"{sel}\"\nprivate_key = \"{}\"",
            key.display()
        )
    };
    let a = sender(&dns, port, &table("sel1", &key1));
    submit(&a, &["grace@signed.example"], "first");
    let first = b.wait_for_mail("signed.example", "grace", 1, WAIT);
    assert_eq!(first.len(), 1);

    let path = a.dir.path().join("port25.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace(&table("sel1", &key1), &table("sel2", &key2));
    std::fs::write(&path, text).unwrap();
    let done = hup(&a, "port25.server.reloaded", 1);
    assert!(done["changed"].as_str().unwrap().contains("[[outbound.dkim]]"), "{done}");
    submit(&a, &["grace@signed.example"], "second");
    let both = b.wait_for_mail("signed.example", "grace", 2, WAIT);
    assert_eq!(both.len(), 2);
    let second = both.iter().find(|m| String::from_utf8_lossy(m).contains("Subject: second")).unwrap();
    let first = both.iter().find(|m| String::from_utf8_lossy(m).contains("Subject: first")).unwrap();
    let text = String::from_utf8_lossy(second);
    assert!(text.contains("d=example.net") && text.contains("s=sel2") && !text.contains("s=sel1"), "{text}");
    assert!(dkimpy_verifies(a.dir.path(), second, "sel2", &txt2), "signed with the new key");
    assert!(!dkimpy_verifies(a.dir.path(), second, "sel2", &txt1), "not with the old one: the check can fail");
    assert!(dkimpy_verifies(a.dir.path(), first, "sel1", &txt1), "the first was signed with the first key");
}
