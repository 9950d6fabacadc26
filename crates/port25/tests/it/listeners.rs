//! What every SMTP listener does before a policy is asked (issue 13): a
//! PROXY header believed only from the configured proxies, connection
//! caps per client (IPv4 address, IPv6 /64), a memory budget for DATA in
//! flight, HTTP refused, IPv4-mapped clients seen as IPv4, and text logs
//! that a client cannot break into forged lines.

use crate::harness::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn listener(s: &Server, name: &str) -> SocketAddr {
    s.addrs.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no listener {name}: {:?}", s.addrs)).1
}

/// `port25 serve` with `top` before the tables and `tables` after [mx].
fn serve(top: &str, tables: &str) -> Server {
    Server::start_with("serve", |dir: &Path| {
        format!(
            "hostname = \"mx.test.example\"\ndata_dir = \"{}\"\n{top}\n[log]\nformat = \"json\"\nlevel = \"debug\"\n\
             [mx]\ndomains = [\"example.net\"]\n{tables}\n{HTTP_ON_PORT_0}",
            dir.join("data").display()
        )
    })
}

fn add_user(s: &Server, login: &str) {
    let mut child = Command::new(BIN)
        .args(["users", "add", login, "--config"])
        .arg(s.dir.path().join("port25.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a password for tests\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "users add: {}", String::from_utf8_lossy(&out.stderr));
}

fn wait_events(s: &Server, id: &str, n: usize) -> Vec<serde_json::Value> {
    s.wait_events(id, n, Duration::from_secs(10))
}

/// Connects to `addr` as a proxy would, naming `source` as the client;
/// returns the connection and the first reply ("" when closed).
fn proxied(addr: SocketAddr, source: &str) -> (Client, String) {
    let mut c = Client::connect(addr);
    let (family, dst) = if source.contains(':') { ("TCP6", "2001:db8::25") } else { ("TCP4", "192.0.2.25") };
    c.send(format!("PROXY {family} {source} {dst} 40000 25\r\n").as_bytes());
    let r = c.reply();
    (c, r)
}

/// Everything the server sends until it closes (or 10 s pass).
fn read_to_close(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all);
    String::from_utf8_lossy(&all).into_owned()
}

/// Connects from `source` (a loopback address other than 127.0.0.1) with
/// Python and returns the first reply line.
fn banner_from(source: &str, addr: SocketAddr) -> String {
    let script = "import socket,sys\ns=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=10,source_address=(sys.argv[2],0))\nprint(s.makefile().readline().strip())";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(addr.port().to_string())
        .arg(source)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const TRUSTED: &str = "[submission]\ntrusted_networks = [\"192.0.2.0/24\"]\n";

fn proxied_submission(name: &str, from: &str) -> String {
    format!(
        "[[listener]]\nname = \"{name}\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"none\"\nplaintext_auth = true\n\
         proxy_protocol = true\nproxy_protocol_from = [{from}]\n"
    )
}

#[test]
fn a_proxy_header_is_believed_only_from_proxy_protocol_from() {
    // 192.0.2.0/24 may submit without a login (a trusted network). The
    // first listener's proxies are elsewhere; the second's is 127.0.0.1.
    let tables = format!(
        "{TRUSTED}{}{}",
        proxied_submission("lb-elsewhere", "\"192.0.2.99\", \"10.0.0.0/8\""),
        proxied_submission("lb-local", "\"127.0.0.1\"")
    );
    let s = serve("", &tables);
    add_user(&s, "alice@example.net");

    // A direct client names a trusted address: closed before a banner.
    let mut direct = TcpStream::connect(listener(&s, "lb-elsewhere")).unwrap();
    direct
        .write_all(b"PROXY TCP4 192.0.2.5 192.0.2.25 40000 587\r\nEHLO spoof.example\r\nMAIL FROM:<ceo@example.net>\r\nRCPT TO:<alice@example.net>\r\nDATA\r\n")
        .unwrap();
    assert_eq!(read_to_close(&mut direct), "", "nothing may be answered to an untrusted PROXY header");
    let refused = wait_events(&s, "port25.session.proxy.untrusted", 1);
    assert_eq!(refused.len(), 1, "{:?}", s.log.lock().unwrap());
    assert!(
        refused[0]["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "the event names the real peer: {}",
        refused[0]
    );
    assert_eq!(refused[0]["listener"], "lb-elsewhere");
    // PROXY v2 from the same untrusted peer: the same.
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend_from_slice(&[192, 0, 2, 5, 192, 0, 2, 25, 0x9c, 0x40, 0x02, 0x4b]);
    let mut direct = TcpStream::connect(listener(&s, "lb-elsewhere")).unwrap();
    let _ = direct.write_all(&v2).and_then(|()| direct.write_all(b"EHLO spoof.example\r\n"));
    assert_eq!(read_to_close(&mut direct), "");
    assert_eq!(wait_events(&s, "port25.session.proxy.untrusted", 2).len(), 2);
    assert!(s.events("port25.submission.legacy").is_empty(), "the spoofed address was never judged");

    // From the configured proxy the header is believed.
    let mut c = Client::connect(listener(&s, "lb-local"));
    c.send(b"PROXY TCP4 192.0.2.5 192.0.2.25 40000 587\r\n");
    assert!(c.reply().starts_with("220"));
    c.cmd("EHLO printer.example");
    let r = c.send_mail(
        "scanner@example.net",
        &["alice@example.net"],
        "From: <scanner@example.net>\r\nSubject: scan\r\n\r\nPDF",
    );
    assert_eq!(code(&r), 250, "{r}");
    let legacy = wait_events(&s, "port25.submission.legacy", 1);
    assert_eq!(legacy[0]["network"], "192.0.2.0/24", "{}", legacy[0]);
    let mail = s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(10));
    assert_eq!(mail.len(), 1, "only the proxied message is delivered");
    assert!(String::from_utf8_lossy(&mail[0]).contains("([192.0.2.5] via proxy 127.0.0.1)"));
}

#[test]
fn config_check_and_the_sensor_refuse_proxy_protocol_without_proxy_protocol_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("port25.toml");
    std::fs::write(&file, "[mx]\ndomains = [\"example.net\"]\n\n[[listener]]\nname = \"mx\"\naddress = \"0.0.0.0:25\"\nproxy_protocol = true\n").unwrap();
    let out = Command::new(BIN).args(["config", "check"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&format!("{}:7:", file.display())), "{err}");
    assert!(
        err.contains("proxy_protocol = true without proxy_protocol_from")
            && err.contains("fix: add proxy_protocol_from = ["),
        "{err}"
    );
    let out = Command::new(BIN).args(["serve", "--config"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "serve does not start on it either");

    let sensor = dir.path().join("spampot.toml");
    std::fs::write(&sensor, "sensor = \"s\"\n[[listener]]\nname = \"lb\"\naddress = \"127.0.0.1:0\"\nkind = \"smtp\"\nproxy_protocol = true\n").unwrap();
    let out = Command::new(BIN).args(["spampot", "--config"]).arg(&sensor).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "{}:6: listener \"lb\": proxy_protocol = true without proxy_protocol_from; fix:",
            sensor.display()
        )),
        "{err}"
    );
}

#[test]
fn the_per_client_cap_answers_421_and_counts_the_real_client() {
    let tables = "[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\ntls = \"none\"\nmax_connections_per_client = 3\n\
                  [[listener]]\nname = \"lb\"\naddress = \"127.0.0.1:0\"\ntls = \"none\"\nmax_connections_per_client = 2\n\
                  proxy_protocol = true\nproxy_protocol_from = [\"127.0.0.1\"]\n\
                  [[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"implicit\"\nmax_connections_per_client = 1\n";
    let s = serve("", tables);
    let mx = listener(&s, "mx");
    let a = Client::open(mx);
    let _b = Client::open(mx);
    let _c = Client::open(mx);
    let mut d = Client::connect(mx);
    let r = d.reply();
    assert!(r.starts_with("421 4.7.0 Too many connections from your address"), "{r}");
    assert!(d.is_closed());
    // Another address is another client.
    assert!(banner_from("127.0.0.2", mx).starts_with("220 "));
    drop(a);
    std::thread::sleep(Duration::from_millis(300));
    let _e = Client::open(mx);
    let limit = wait_events(&s, "port25.session.limit", 1);
    assert!(
        limit.iter().any(
            |e| e["limit"] == "max_connections_per_client" && e["peer"].as_str().unwrap().starts_with("127.0.0.1:")
        ),
        "{limit:?}"
    );

    // Behind the proxy the cap counts the address the header names, IPv6
    // per /64: rotating addresses inside one /64 does not help.
    let lb = listener(&s, "lb");
    let (_p1, r1) = proxied(lb, "2001:db8:1:2::1");
    let (_p2, r2) = proxied(lb, "2001:db8:1:2:ffff::9");
    let (_p3, r3) = proxied(lb, "2001:db8:1:2:1234:5678:9abc:def0");
    let (_p4, r4) = proxied(lb, "2001:db8:1:3::1");
    let (_p5, r5) = proxied(lb, "198.51.100.7");
    let (_p6, r6) = proxied(lb, "198.51.100.7");
    let (_p7, r7) = proxied(lb, "198.51.100.7");
    for (r, want) in [(&r1, 220), (&r2, 220), (&r3, 421), (&r4, 220), (&r5, 220), (&r6, 220), (&r7, 421)] {
        assert_eq!(code(r), want, "{r1}|{r2}|{r3}|{r4}|{r5}|{r6}|{r7}");
    }
    // On an implicit-TLS listener the slot is held from the connect (a
    // handshake costs CPU too); over the cap the client gets no plaintext
    // where it expects TLS, just the close.
    let tls = listener(&s, "tls");
    let _holding = TcpStream::connect(tls).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut over = TcpStream::connect(tls).unwrap();
    let _ = over.write_all(b"\x16\x03\x01\x00\x05hello");
    assert_eq!(read_to_close(&mut over), "");
    let start = Instant::now();
    while !s
        .events("port25.session.limit")
        .iter()
        .any(|e| e["listener"] == "tls" && e["limit"] == "max_connections_per_client")
    {
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", s.events("port25.session.limit"));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(s.events("port25.smtp.starttls.failed").is_empty(), "no handshake was attempted over the cap");
    let start = Instant::now();
    while !s.events("port25.session.limit").iter().any(|e| e["peer"] == "[2001:db8:1:2:1234:5678:9abc:def0]:40000") {
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", s.events("port25.session.limit"));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_spampot_counts_sources_per_ipv6_slash_64() {
    let s = Server::start_with("spampot", |dir: &Path| {
        format!(
            "sensor = \"it-sensor\"\ndata_dir = \"{}\"\nlog_format = \"json\"\nlog_level = \"info\"\n\
             [[listener]]\nname = \"lb\"\naddress = \"127.0.0.1:0\"\nkind = \"smtp\"\nproxy_protocol = true\nproxy_protocol_from = [\"127.0.0.1\"]\n\
             [[listener]]\nname = \"direct\"\naddress = \"127.0.0.1:0\"\nkind = \"smtp\"\nproxy_protocol = true\nproxy_protocol_from = [\"192.0.2.1\"]\n\
             [limits]\nmax_connections_per_source = 2\n",
            dir.join("data").display()
        )
    });
    let lb = listener(&s, "lb");
    let (_a, ra) = proxied(lb, "2001:db8:7:7::1");
    let (_b, rb) = proxied(lb, "2001:db8:7:7::2");
    let (_c, rc) = proxied(lb, "2001:db8:7:7::3");
    let (_d, rd) = proxied(lb, "2001:db8:7:8::1");
    assert!(ra.starts_with("220") && rb.starts_with("220") && rd.starts_with("220"), "{ra}|{rb}|{rd}");
    assert_eq!(rc, "", "the third connection of one /64 is closed");
    // The relay bait is the engine too: HTTP gets 521 and the close.
    let (mut web, banner) = proxied(lb, "198.51.100.9");
    assert!(banner.starts_with("220"), "{banner}");
    web.send(b"GET / HTTP/1.0\r\n\r\n");
    assert!(web.reply().starts_with("521 5.7.0"));
    assert!(web.is_closed());
    let limit = wait_events(&s, "port25.spampot.limit", 1);
    assert!(
        limit.iter().any(|e| e["reason"] == "max_connections_per_source" && e["peer"] == "[2001:db8:7:7::3]:40000"),
        "{limit:?}"
    );

    // A PROXY header from a peer outside proxy_protocol_from: closed, and
    // the event names the real peer.
    let mut direct = TcpStream::connect(listener(&s, "direct")).unwrap();
    direct.write_all(b"PROXY TCP4 203.0.113.9 192.0.2.25 40000 25\r\nEHLO x\r\n").unwrap();
    assert_eq!(read_to_close(&mut direct), "");
    let untrusted = wait_events(&s, "port25.session.proxy.untrusted", 1);
    assert_eq!(untrusted.len(), 1);
    assert!(untrusted[0]["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{}", untrusted[0]);
}

#[test]
fn data_in_flight_is_held_within_max_data_memory() {
    let listeners = "[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\ntls = \"none\"\n";
    let s = serve("max_data_memory = 4194304", listeners);
    let mx = listener(&s, "mx");
    let begin = |c: &mut Client| {
        assert_eq!(code(&c.cmd("EHLO client.example")), 250);
        assert_eq!(code(&c.cmd("MAIL FROM:<a@remote.example>")), 250);
        assert_eq!(code(&c.cmd("RCPT TO:<postmaster@example.net>")), 250);
        assert_eq!(code(&c.cmd("DATA")), 354);
    };
    let chunk: String = (0..1000).map(|i| format!("line {i:04} {}\r\n", "x".repeat(60))).collect();
    let mut a = Client::open(mx);
    let mut b = Client::open(mx);
    begin(&mut a);
    begin(&mut b);
    a.send(b"Subject: a\r\n\r\n");
    b.send(b"Subject: b\r\n\r\n");
    // A holds about 1.5 MB (a 2 MiB buffer); B then wants as much again.
    for _ in 0..22 {
        a.send(chunk.as_bytes());
    }
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..22 {
        b.send(chunk.as_bytes());
    }
    b.send(b".\r\n");
    let rb = b.reply();
    assert!(rb.starts_with("452 4.3.1"), "B is over the budget: {rb}");
    a.send(b".\r\n");
    assert!(a.reply().starts_with("250"), "A kept its memory and is stored");
    // B's memory was given back when its message was dropped: a retry fits.
    assert_eq!(code(&b.cmd("MAIL FROM:<a@remote.example>")), 250);
    assert_eq!(code(&b.cmd("RCPT TO:<postmaster@example.net>")), 250);
    assert_eq!(code(&b.cmd("DATA")), 354);
    b.send(b"Subject: b again\r\n\r\n");
    for _ in 0..22 {
        b.send(chunk.as_bytes());
    }
    b.send(b".\r\n");
    assert!(b.reply().starts_with("250"));
    let limit = wait_events(&s, "port25.session.limit", 1);
    assert!(limit.iter().any(|e| e["limit"] == "data_memory"), "{limit:?}");
}

#[test]
fn http_on_smtp_listeners_gets_521_and_the_connection_closes() {
    let tables = "[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\ntls = \"none\"\n\
                  [[listener]]\nname = \"plain\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"none\"\nplaintext_auth = true\n";
    let s = serve("", tables);
    let curl = require("curl");
    for name in ["mx", "plain"] {
        let url = format!("http://{}/", listener(&s, name));
        let started = Instant::now();
        let out = Command::new(&curl).args(["--http0.9", "-sS", "--max-time", "15", &url]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("\r\n521 5.7.0 "), "{name}: curl got {text:?} {}", String::from_utf8_lossy(&out.stderr));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name}: the server closed the connection, curl did not time out"
        );
        assert!(!text.contains("500 "), "{name}: one reply, not one per header line: {text:?}");
    }
    // Raw sockets: a request line, a header line after EHLO, any case.
    for (name, lines) in [
        ("mx", "GET / HTTP/1.0\r\n\r\n"),
        ("mx", "EHLO x\r\nhost: mx.example\r\n"),
        ("plain", "post /form HTTP/1.1\r\n"),
        ("mx", "CONNECT mx.example:25 HTTP/1.1\r\n"),
    ] {
        let mut c = Client::open(listener(&s, name));
        c.send(lines.as_bytes());
        if lines.starts_with("EHLO") {
            assert_eq!(code(&c.reply()), 250);
        }
        let r = c.reply();
        assert!(r.starts_with("521 5.7.0"), "{name} {lines:?}: {r}");
        assert!(c.is_closed(), "{name} {lines:?}");
    }
    let v = wait_events(&s, "port25.session.protocol_violation", 6);
    assert!(v.iter().filter(|e| e["violation"] == "HTTP on an SMTP listener").count() >= 6, "{v:?}");
}

#[test]
fn ipv4_clients_of_a_dual_stack_listener_are_seen_as_ipv4() {
    let tables = "[submission]\ntrusted_networks = [\"127.0.0.1/32\"]\n\
                  [[listener]]\nname = \"dual\"\naddress = \"[::]:0\"\nservice = \"submission\"\ntls = \"none\"\nplaintext_auth = true\n";
    let s = serve("", tables);
    add_user(&s, "alice@example.net");
    let port = listener(&s, "dual").port();
    let mut c = Client::open(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    let ehlo = c.cmd("EHLO printer.example");
    assert!(ehlo.contains("greets 127.0.0.1\r\n"), "{ehlo}");
    // 127.0.0.1 is a trusted network: no login needed.
    let r = c.send_mail(
        "scanner@example.net",
        &["alice@example.net"],
        "From: <scanner@example.net>\r\nSubject: scan\r\n\r\nPDF",
    );
    assert_eq!(code(&r), 250, "{r}");
    let mail = s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&mail[0]);
    assert!(text.contains("(port25) with ESMTP") && text.contains("printer.example ([127.0.0.1])"), "{text}");
    let connect = wait_events(&s, "port25.session.connect", 1);
    assert!(connect[0]["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{}", connect[0]);
    assert!(!connect[0]["local"].as_str().unwrap().contains("::ffff:"), "{}", connect[0]);
}

#[test]
fn text_logs_escape_a_bare_cr_from_a_spampot_request_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("spampot.toml");
    std::fs::write(
        &config,
        format!(
            "sensor = \"it-sensor\"\ndata_dir = \"{}\"\nlog_format = \"text\"\nlog_level = \"info\"\n\
             [[listener]]\nname = \"proxy\"\naddress = \"127.0.0.1:0\"\nkind = \"proxy\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["spampot", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        // Lines end at LF only: a raw CR stays inside the line it forged.
        for line in BufReader::new(stderr).split(b'\n') {
            let Ok(line) = line else { break };
            let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
        }
    });
    let mut lines = Vec::new();
    let addr = loop {
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("the sensor logs its listener");
        lines.push(line.clone());
        if let Some(rest) = line.split("address=").nth(1).filter(|_| line.contains("port25.server.listening")) {
            break rest.split(' ').next().unwrap().parse::<SocketAddr>().unwrap();
        }
    };
    // The forged part would read as an event of its own if the CR reached
    // a terminal or a log viewer that honours it; ESC would drive the terminal.
    for request in [&b"GET /x\rFORGED HTTP/1.1\r\n\r\n"[..], b"GET /y\r\x1b[2J HTTP/1.1\r\n\r\n"] {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(request).unwrap();
        let _ = read_to_close(&mut c);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && lines.iter().filter(|l| l.contains("port25.spampot.http.request")).count() < 2 {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(500)) {
        lines.push(l);
    }
    let _ = child.kill();
    let _ = child.wait();
    let requests: Vec<&String> = lines.iter().filter(|l| l.contains("port25.spampot.http.request")).collect();
    assert_eq!(requests.len(), 2, "{lines:#?}");
    assert!(requests[0].contains("url=/x\\rFORGED"), "{requests:#?}");
    assert!(requests[1].contains("url=/y\\r\\u{1b}[2J"), "{requests:#?}");
    for l in &lines {
        assert!(!l.contains('\r') && !l.contains('\u{1b}'), "a raw control character reached the log: {l:?}");
    }
}
