//! The MX's screening before the banner ([mx.screen], docs/screen.md),
//! against real peers: rbldnsd serving the test lists (one listing, one
//! answering 127.255.255.254 to everything, one behind a socket that reads
//! and drops), the test DNS server for PTR and A records, Python smtplib
//! and curl as clients, and `port25 egress publish` output served by
//! rbldnsd. Clients connect from chosen 127.0.0.x addresses (all of
//! 127.0.0.0/8 is loopback on Linux), so "listed" and "in end-user space"
//! are real addresses.

use crate::dns::DnsServer;
use crate::harness::{code, require, Client, Server, BIN, MX_LISTENER};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// rbldnsd on a free UDP port of 127.0.0.1, killed on drop.
struct Rbldnsd {
    addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Rbldnsd {
    /// `zones`: (zone, dataset type, file content).
    fn start(zones: &[(&str, &str, &str)]) -> Rbldnsd {
        let bin = require("rbldnsd");
        let dir = tempfile::tempdir().unwrap();
        let mut specs = Vec::new();
        for (i, (zone, kind, content)) in zones.iter().enumerate() {
            let file = format!("z{i}");
            std::fs::write(dir.path().join(&file), content).unwrap();
            specs.push(format!("{zone}:{kind}:{file}"));
        }
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let mut cmd = Command::new(bin);
        if root {
            // As unprivileged as it can: nobody reads the zone files.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            for f in std::fs::read_dir(dir.path()).unwrap() {
                std::fs::set_permissions(f.unwrap().path(), std::fs::Permissions::from_mode(0o644)).unwrap();
            }
            cmd.args(["-u", "nobody"]);
        }
        // A free port: bind, note, release (rbldnsd binds it next).
        let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = cmd
            .args(["-n", "-f", "-b", &format!("127.0.0.1/{port}"), "-w"])
            .arg(dir.path())
            .args(&specs)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rbldnsd");
        // Its log is block-buffered when not on a terminal: ready is when
        // it answers a question about its first zone.
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("rbldnsd exited at start ({status}); zones: {specs:?}");
            }
            probe.send_to(&query(zones[0].0), addr).unwrap();
            let mut buf = [0u8; 512];
            if probe.recv_from(&mut buf).is_ok() {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "rbldnsd did not answer within 10 s");
        }
        Rbldnsd { addr, child, _dir: dir }
    }
}

impl Drop for Rbldnsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a recursive resolver is to an MX: one address that answers for
/// every zone. Questions under a routed suffix go to that server (rbldnsd,
/// or a socket that reads and drops), the rest to the test DNS server.
fn router(routes: Vec<(&'static str, SocketAddr)>, default: SocketAddr) -> SocketAddr {
    counting_router(routes, default).0
}

/// Questions asked so far, per name.
type Asked = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>;

/// [`router`], counting the questions per name.
fn counting_router(routes: Vec<(&'static str, SocketAddr)>, default: SocketAddr) -> (SocketAddr, Asked) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let asked = Asked::default();
    let counts = asked.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let query = buf[..n].to_vec();
            let name = qname(&query).unwrap_or_default();
            *counts.lock().unwrap().entry(name.clone()).or_default() += 1;
            let upstream = routes
                .iter()
                .find(|(suffix, _)| name == *suffix || name.ends_with(&format!(".{suffix}")))
                .map_or(default, |r| r.1);
            let back = socket.try_clone().unwrap();
            std::thread::spawn(move || {
                let up = UdpSocket::bind("127.0.0.1:0").unwrap();
                up.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                up.send_to(&query, upstream).unwrap();
                let mut answer = [0u8; 1500];
                if let Ok((m, _)) = up.recv_from(&mut answer) {
                    let _ = back.send_to(&answer[..m], from);
                }
            });
        }
    });
    (addr, asked)
}

/// A DNS question (A, IN, recursion desired) for `name`.
fn query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

fn qname(q: &[u8]) -> Option<String> {
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(pos)? as usize;
        if len == 0 {
            return Some(labels.join("."));
        }
        labels.push(String::from_utf8_lossy(q.get(pos + 1..pos + 1 + len)?).to_lowercase());
        pos += 1 + len;
    }
}

/// A UDP socket that reads every question and never answers.
fn black_hole() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while socket.recv_from(&mut buf).is_ok() {}
    });
    addr
}

/// A TCP connection from `source` (a 127.0.0.x address).
fn connect_from(source: &str, to: SocketAddr) -> Client {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&src.into()).unwrap();
    socket.connect(&to.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    Client { stream, reader }
}

/// Python smtplib from `source`: "refused CODE TEXT" when the greeting
/// refuses, "sent" when a message to alice@example.net was accepted. A
/// 127.0.0.x source is bound; any other is named in a PROXY v1 header (the
/// listener must trust 127.0.0.1 as its proxy): hickory answers every PTR
/// question under 127.in-addr.arpa with "localhost" itself (RFC 6761), so
/// reverse-DNS tests need clients from elsewhere.
fn smtplib_from(source: &str, to: SocketAddr, body: &str) -> String {
    let script = r#"
import smtplib, socket, sys
src, port, body = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class Proxied(smtplib.SMTP):
    def _get_socket(self, host, port, timeout):
        s = socket.create_connection((host, port), timeout)
        s.sendall(("PROXY TCP4 %s 127.0.0.1 40000 25\r\n" % src).encode())
        return s
local = src.startswith("127.")
try:
    if local:
        s = smtplib.SMTP("127.0.0.1", port, source_address=(src, 0), timeout=20)
    else:
        s = Proxied("127.0.0.1", port, timeout=20)
except smtplib.SMTPConnectError as e:
    # The teaser's text comes first (a multi-line reply); the last line is the refusal.
    print("refused", e.smtp_code, e.smtp_error.decode().splitlines()[-1])
    sys.exit(0)
except smtplib.SMTPServerDisconnected as e:
    print("disconnected", e)
    sys.exit(0)
s.ehlo("mail.sender.test")
s.sendmail("bob@sender.test", ["alice@example.net"], "Subject: screened\r\n\r\n" + body + "\r\n")
s.quit()
print("sent")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(source)
        .arg(to.port().to_string())
        .arg(body)
        .output()
        .expect("python3");
    assert!(out.status.success(), "smtplib: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// [mx.screen] for a test: short waits, `dns` as the resolver, reverse
/// DNS weighed only where `rdns` says; `extra` is appended.
fn screen_config(dns: SocketAddr, rdns: bool, extra: &str) -> String {
    let w = if rdns { 1 } else { 0 };
    format!(
        "domains = [\"example.net\"]\nrecipients = [\"alice@example.net\"]\n[mx.screen]\nenabled = true\ngreet_wait_ms = 1500\ndns_servers = [\"{dns}\"]\n\
         dns_timeout_ms = 500\nrdns_no_ptr = {w}\nrdns_unconfirmed = {w}\nrdns_address_in_name = {w}\nrdns_dynamic_token = {w}\n{extra}\n"
    )
}

fn verdict_for(server: &Server, peer_ip: &str) -> serde_json::Value {
    server
        .wait_event_where("port25.screen.verdict", Duration::from_secs(10), |e| {
            e["peer"].as_str().is_some_and(|p| p.starts_with(&format!("{peer_ip}:")))
        })
        .unwrap_or_else(|| panic!("no screen verdict for {peer_ip}; log: {:?}", server.log.lock().unwrap()))
}

/// A client that talks before the banner is refused; one that waits gets
/// the teaser, the engine's banner completing it, and delivers; next time
/// it is allowlisted (no wait), also after a restart.
#[test]
fn pregreet_refused_patient_client_passes_and_is_remembered() {
    let dns = DnsServer::start();
    let mut server = Server::start(&screen_config(dns.addr, false, ""), MX_LISTENER);

    let mut bot = connect_from("127.0.0.11", server.addr());
    let mut teaser = String::new();
    bot.reader.read_line(&mut teaser).unwrap();
    assert!(teaser.starts_with("220-mx.test.example"), "teaser: {teaser:?}");
    bot.send(b"EHLO bot.example\r\n");
    let refusal = bot.reply();
    assert!(refusal.starts_with("554 5.7.1 ") && refusal.contains("talked before the greeting"), "{refusal:?}");
    assert!(bot.is_closed());
    let v = verdict_for(&server, "127.0.0.11");
    assert_eq!((v["verdict"].as_str(), v["check"].as_str()), (Some("reject"), Some("pregreet")), "{v}");

    let start = Instant::now();
    let mut good = connect_from("127.0.0.12", server.addr());
    let greeting = good.reply();
    assert!(start.elapsed() >= Duration::from_millis(1400), "the banner came before greet_wait: {:?}", start.elapsed());
    assert!(greeting.starts_with("220-mx.test.example ESMTP\r\n220 "), "{greeting:?}");
    assert!(good.cmd("EHLO mail.sender.test").starts_with("250"));
    let r = good.send_mail("bob@sender.test", &["alice@example.net"], "Subject: hi\r\n\r\nwaited\r\n");
    assert_eq!(code(&r), 250, "{r}");
    assert_eq!(verdict_for(&server, "127.0.0.12")["verdict"], "pass");

    // Allowlisted: the banner at once, no teaser.
    let again = |server: &Server| {
        let start = Instant::now();
        let mut c = connect_from("127.0.0.12", server.addr());
        let banner = c.reply();
        assert!(banner.starts_with("220 "), "an allowlisted client gets the banner alone: {banner:?}");
        assert!(start.elapsed() < Duration::from_millis(1000), "{:?}", start.elapsed());
    };
    again(&server);
    server.signal("-TERM");
    server.stop_wait();
    server.log.lock().unwrap().clear();
    server.spawn();
    again(&server);
    let allowlist = std::fs::read_to_string(server.data().join("screen/allowlist")).unwrap();
    assert!(allowlist.starts_with("127.0.0.12 "), "{allowlist}");
}

/// curl speaking HTTP to port 25 gets 521 before the banner.
#[test]
fn http_client_refused_before_the_banner() {
    let dns = DnsServer::start();
    let server = Server::start(&screen_config(dns.addr, false, ""), MX_LISTENER);
    let out = Command::new(require("curl"))
        .args(["--http0.9", "-s", "-m", "10", "--interface", "127.0.0.13"])
        .arg(format!("http://{}/", server.addr()))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("220-mx.test.example ESMTP\r\n521 5.7.0 "), "curl got {text:?}");
    assert!(!text.contains("220 "), "no banner for an HTTP client: {text:?}");
    assert_eq!(verdict_for(&server, "127.0.0.13")["verdict"], "non_smtp");
}

/// Lists served by rbldnsd: a listed client is refused with the list's
/// name; a PBL-coded one scores apart (under the threshold); a list
/// answering 127.255.255.254 and one that never answers refuse nobody.
#[test]
fn dnsbl_lists_served_by_rbldnsd() {
    let rbl = Rbldnsd::start(&[
        ("bl.test", "ip4set", "127.0.0.21 :127.0.0.2:listed for spam\n127.0.0.22 :127.0.0.10:end-user space\n"),
        ("err.test", "ip4set", ":127.255.255.254:open resolver\n0.0.0.0-255.255.255.255\n"),
    ]);
    let dns = DnsServer::start();
    let resolver = router(vec![("bl.test", rbl.addr), ("err.test", rbl.addr), ("dead.test", black_hole())], dns.addr);
    let lists = "[[mx.screen.dnsbl]]\nzone = \"bl.test\"\ncodes = [\"127.0.0.2-127.0.0.9\"]\nweight = 3\n\
                 [[mx.screen.dnsbl]]\nzone = \"bl.test\"\ncodes = [\"127.0.0.10-11\"]\nweight = 1\n\
                 [[mx.screen.dnsbl]]\nzone = \"err.test\"\nweight = 3\n[[mx.screen.dnsbl]]\nzone = \"dead.test\"\nweight = 3\n";
    let server = Server::start(&screen_config(resolver, false, lists), MX_LISTENER);

    let r = smtplib_from("127.0.0.21", server.addr(), "spam");
    assert!(r.starts_with("refused 554 5.7.1 ") && r.contains("listed by bl.test (127.0.0.2)"), "{r}");
    let v = verdict_for(&server, "127.0.0.21");
    assert_eq!((v["verdict"].as_str(), v["score"].as_i64()), (Some("reject"), Some(3)), "{v}");

    assert_eq!(smtplib_from("127.0.0.22", server.addr(), "pbl weight 1"), "sent");
    assert_eq!(smtplib_from("127.0.0.23", server.addr(), "not listed"), "sent");
    let mail = server.wait_for_mail("example.net", "alice", 2, Duration::from_secs(10));
    assert_eq!(mail.len(), 2);
    // The last session's verdict follows every check of all three in the
    // log; mail on disk does not mean the log reader got that far.
    verdict_for(&server, "127.0.0.23");

    let checks = |list: &str| -> Vec<String> {
        server
            .events("port25.screen.check")
            .iter()
            .filter(|e| e["list"] == list)
            .map(|e| e["outcome"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    assert!(
        checks("err.test").iter().all(|o| o == "unusable") && !checks("err.test").is_empty(),
        "{:?}",
        checks("err.test")
    );
    assert!(
        checks("dead.test").iter().all(|o| o == "error") && !checks("dead.test").is_empty(),
        "{:?}",
        checks("dead.test")
    );
    let warn = server.wait_event("port25.screen.list_unusable", Duration::from_secs(5)).expect("list_unusable event");
    assert_eq!(warn["list"], "err.test");
    assert!(warn["reason"].as_str().unwrap().contains("open or public resolver"), "{warn}");

    // /metrics counts per check and outcome.
    let metrics = http_get(crate::http::http_addr(&server), "/metrics");
    assert!(metrics.contains("port25_screen_checks_total{check=\"dnsbl\",outcome=\"unusable\"} 3"), "{metrics}");
    assert!(metrics.contains("port25_screen_verdicts_total{verdict=\"reject\",check=\"score\"} 1"), "{metrics}");
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Reverse DNS from the test DNS server: a generic name that does not
/// resolve back is refused and told about port 587; an MTA whose name
/// resolves back passes.
#[test]
fn generic_reverse_dns_refused_mta_name_passes() {
    let dns = DnsServer::start();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    dns.ptr(ip("192.0.2.31"), "dsl-192-0-2-31.dyn.isp.test");
    dns.ptr(ip("192.0.2.32"), "mail.sender.test");
    dns.add("mail.sender.test", crate::dns::Rr::A("192.0.2.32".parse().unwrap()));
    let server = Server::start(&screen_config(dns.addr, true, ""), PROXIED_MX);
    let r = smtplib_from("192.0.2.31", server.addr(), "x");
    assert!(
        r.starts_with("refused 554 5.7.1 ")
            && r.contains("generic reverse DNS name dsl-192-0-2-31.dyn.isp.test")
            && r.contains("port 587"),
        "{r}"
    );
    assert_eq!(smtplib_from("192.0.2.32", server.addr(), "from an MTA"), "sent");
    // No PTR at all: 1 point, under the threshold.
    assert_eq!(smtplib_from("192.0.2.33", server.addr(), "no ptr"), "sent");
    // A PTR name of 250 bytes (the longest a name gets): judged, no crash.
    let long = format!("{}.{}.{}.{}.test", "a".repeat(61), "b".repeat(61), "c".repeat(61), "d".repeat(59));
    assert_eq!(long.len(), 250);
    dns.ptr(ip("192.0.2.34"), &long);
    assert_eq!(smtplib_from("192.0.2.34", server.addr(), "long ptr"), "sent");
    // Waited for: the log is read a moment after the session's replies.
    let long_checked = server.wait_event_where("port25.screen.check", Duration::from_secs(10), |e| {
        e["outcome"] == "unconfirmed" && e["reason"].as_str().is_some_and(|r| r.starts_with(&long))
    });
    assert!(long_checked.is_some(), "{:?}", server.events("port25.screen.check"));
    let outcomes: Vec<String> = server
        .events("port25.screen.check")
        .iter()
        .filter(|e| e["check"] == "rdns")
        .map(|e| e["outcome"].as_str().unwrap().to_owned())
        .collect();
    for o in ["unconfirmed", "generic", "confirmed", "no_ptr"] {
        assert!(outcomes.iter().any(|x| x == o), "{o} in {outcomes:?}");
    }
}

/// An MX listener behind a load balancer on 127.0.0.1 (PROXY v1 headers).
const PROXIED_MX: &str = "[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\nproxy_protocol = true\nproxy_protocol_from = [\"127.0.0.1\"]\n";

const EGRESS: &str = "[policy]\nname = \"test-isp\"\n[[network]]\nname = \"residential\"\nclass = \"residential\"\nprefixes = [\"127.0.0.32/28\"]\n\
                      [[exempt]]\nname = \"our-relay\"\nprefixes = [\"127.0.0.47/32\"]\n";

/// The operator's own egress policy: a client in its end-user space is
/// refused before any teaser and told to use 587; one outside (and the
/// exempt relay inside it) delivers. A submission listener is never
/// screened, even for a client in that space.
#[test]
fn end_user_policy_refuses_own_subscribers_not_submission() {
    let dns = DnsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("egress.toml");
    std::fs::write(&policy, EGRESS).unwrap();
    let extra = format!("end_user_policy = \"{}\"\n", policy.display());
    let listeners = format!("{MX_LISTENER}[[listener]]\nname = \"submission\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\nplaintext_auth = true\n");
    let server = Server::start(&screen_config(dns.addr, false, &extra), &listeners);
    let mx = server.addrs.iter().find(|a| a.0 == "mx").unwrap().1;
    let submission = server.addrs.iter().find(|a| a.0 == "submission").unwrap().1;

    let r = smtplib_from("127.0.0.40", mx, "x");
    assert!(
        r.starts_with("refused 554 5.7.1 127.0.0.40 is end-user address space")
            && r.contains("port 587 (or 465) with your login"),
        "{r}"
    );
    // Before any teaser: the whole greeting is the one refusal, no `220-`
    // line first (a reply, not a stopwatch, which a loaded machine breaks).
    let greeting = connect_from("127.0.0.40", mx).reply();
    assert!(greeting.starts_with("554 5.7.1 ") && greeting.lines().count() == 1, "{greeting:?}");
    assert_eq!(smtplib_from("127.0.0.60", mx, "outside"), "sent");
    assert_eq!(smtplib_from("127.0.0.47", mx, "exempt relay"), "sent");

    let mut sub = connect_from("127.0.0.41", submission);
    let banner = sub.reply();
    assert!(banner.starts_with("220 "), "submission greets end-user space at once: {banner:?}");
    assert!(server.events("port25.screen.verdict").iter().all(|e| e["listener"] != "submission"));
}

/// `egress publish` output served by rbldnsd, used by the MX as a list:
/// inside the published space refused, outside accepted.
#[test]
fn published_end_user_zone_served_by_rbldnsd() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("egress.toml");
    std::fs::write(&policy, EGRESS).unwrap();
    let zone_file = dir.path().join("enduser.rbldnsd");
    let out = Command::new(BIN)
        .args([
            "egress",
            "publish",
            "--format",
            "rbldnsd",
            "--zone",
            "enduser.isp.test",
            "--ns",
            "ns1.isp.test",
            "--serial",
            "1",
            "--policy",
        ])
        .arg(&policy)
        .arg("-o")
        .arg(&zone_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let published = std::fs::read_to_string(&zone_file).unwrap();
    assert!(published.contains("$DATASET ip4set:end-user-v4 @") && published.contains("127.0.0.32/29"), "{published}");
    let rbl = Rbldnsd::start(&[("enduser.isp.test", "combined", &published)]);
    let dns = DnsServer::start();
    let resolver = router(vec![("enduser.isp.test", rbl.addr)], dns.addr);
    let lists = "[[mx.screen.dnsbl]]\nzone = \"enduser.isp.test\"\ncodes = [\"127.0.0.10\"]\nweight = 3\n";
    let server = Server::start(&screen_config(resolver, false, lists), MX_LISTENER);
    let r = smtplib_from("127.0.0.35", server.addr(), "x");
    assert!(r.starts_with("refused 554 5.7.1 ") && r.contains("listed by enduser.isp.test (127.0.0.10)"), "{r}");
    assert_eq!(smtplib_from("127.0.0.47", server.addr(), "the exempt relay is not published"), "sent");
    assert_eq!(smtplib_from("127.0.0.61", server.addr(), "outside"), "sent");

    // BIND format of the same policy: reversed names on octet boundaries.
    let bind = Command::new(BIN)
        .args(["egress", "publish", "--format", "bind", "--zone", "enduser.isp.test", "--serial", "1", "--policy"])
        .arg(&policy)
        .output()
        .unwrap();
    let bind = String::from_utf8_lossy(&bind.stdout);
    assert!(bind.contains("32.0.0.127 IN A 127.0.0.10") && !bind.contains("\n47.0.0.127 IN A"), "{bind}");
}

/// `mx explain` prints each check's answer, score and reason, and the
/// verdict, from the same lists and DNS; exit 1 when it would refuse.
#[test]
fn mx_explain_prints_each_check() {
    let rbl = Rbldnsd::start(&[("bl.test", "ip4set", "192.0.2.21 :127.0.0.2:listed\n")]);
    let dns = DnsServer::start();
    dns.ptr("192.0.2.21".parse().unwrap(), "dsl-192-0-2-21.pool.isp.test");
    dns.ptr("192.0.2.32".parse().unwrap(), "mail.sender.test");
    dns.add("mail.sender.test", crate::dns::Rr::A("192.0.2.32".parse().unwrap()));
    let resolver = router(vec![("bl.test", rbl.addr)], dns.addr);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("port25.toml");
    let screen = screen_config(resolver, true, "[[mx.screen.dnsbl]]\nzone = \"bl.test\"\nweight = 3\n");
    std::fs::write(
        &config,
        format!("hostname = \"mx.test.example\"\ndata_dir = \"{}\"\n[mx]\n{screen}", dir.path().join("data").display()),
    )
    .unwrap();
    let explain =
        |args: &[&str]| Command::new(BIN).args(["mx", "explain", "-c"]).arg(&config).args(args).output().unwrap();

    let out = explain(&["192.0.2.21", "--helo", "bot.example"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("192.0.2.21: REJECT (decided by score); score 6"), "{text}");
    for want in [
        "dnsbl     bl.test listed        3  listed by bl.test (127.0.0.2)",
        "rdns      unconfirmed",
        "generic",
        "helo      -",
        "reply:    554 5.7.1",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    let out = explain(&["192.0.2.32", "--helo", "mail.sender.test"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with("192.0.2.32: PASS; score 0")
            && text.contains("mail.sender.test: the client's forward-confirmed reverse DNS name"),
        "{text}"
    );
}

/// `tag`: a listed client keeps its socket and its message carries the
/// X-Port25-Screen header; the per-address rate answers 421 past its limit;
/// the list's answer is cached (its TTL, held within the configured bounds),
/// so the screened client's three connections asked the list once.
#[test]
fn tag_action_and_connection_rate() {
    let rbl = Rbldnsd::start(&[("bl.test", "ip4set", "127.0.0.51 :127.0.0.2:listed\n")]);
    let dns = DnsServer::start();
    let (resolver, asked) = counting_router(vec![("bl.test", rbl.addr)], dns.addr);
    let extra = "score_action = \"tag\"\nrate_per_address = 3\n[[mx.screen.dnsbl]]\nzone = \"bl.test\"\nweight = 3\n";
    let server = Server::start(&screen_config(resolver, false, extra), MX_LISTENER);
    assert_eq!(smtplib_from("127.0.0.51", server.addr(), "tagged"), "sent");
    let mail = server.wait_for_mail("example.net", "alice", 1, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&mail[0]);
    assert!(text.contains("\r\nX-Port25-Screen: score=3; checks=score\r\n"), "{text}");
    // Three connections in the window: the fourth is over the rate.
    for _ in 0..2 {
        let mut c = connect_from("127.0.0.51", server.addr());
        assert!(c.reply().starts_with("220-"));
    }
    let mut over = connect_from("127.0.0.51", server.addr());
    let r = over.reply();
    assert!(r.starts_with("421 4.7.0 [127.0.0.51]: more than the allowed new connections per address"), "{r:?}");
    // The log is read a moment after the replies (the third screening's
    // event was not in yet once, under load): waited for.
    let checks = server.wait_events("port25.screen.check", 3, Duration::from_secs(10));
    assert_eq!(checks.iter().filter(|e| e["list"] == "bl.test").count(), 3, "three screenings: {checks:?}");
    assert_eq!(asked.lock().unwrap().get("51.0.0.127.bl.test").copied(), Some(1), "{:?}", asked.lock().unwrap());
}
