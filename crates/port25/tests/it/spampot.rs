//! The SpamPots sensor (`port25 spampot`) driven by real clients: curl
//! through SOCKS4, SOCKS4a, SOCKS5 (with a proxy login) and HTTP CONNECT,
//! Python smtplib over a hand-made SOCKS5 handshake, swaks on the relay bait
//! and with a PROXY protocol header. Every test checks what the client saw,
//! the capture log lines and the bodies on disk.

use crate::harness::*;
use port25_capture::bodies::Bodies;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A sensor with a proxy bait ("proxy") and a relay bait ("smtp") on port 0.
/// `top` goes before the tables (top-level keys), `tables` after.
fn sensor(top: &str, tables: &str) -> Server {
    Server::start_with("spampot", |dir: &Path| {
        format!(
            "sensor = \"it-sensor\"\ndata_dir = \"{}\"\nlog_format = \"json\"\nlog_level = \"info\"\n{top}\n\
             [[listener]]\nname = \"proxy\"\naddress = \"127.0.0.1:0\"\nkind = \"proxy\"\n\
             [[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:0\"\nkind = \"smtp\"\n{tables}\n",
            dir.join("data").display()
        )
    })
}

fn listener(s: &Server, name: &str) -> SocketAddr {
    s.addrs.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no listener {name}: {:?}", s.addrs)).1
}

fn capture_dir(s: &Server) -> std::path::PathBuf {
    s.data().join("capture")
}

/// Every event in the capture log, in order; fails on a line that is not
/// an event (a torn line may only be the last of a segment).
fn capture_events(s: &Server) -> Vec<Value> {
    let dir = capture_dir(s).join("events");
    let mut out = Vec::new();
    for (_, path) in port25_capture::log::list_segments(&dir).unwrap() {
        let parsed = port25_capture::reader::read_file(&path).unwrap();
        assert!(parsed.bad.is_empty(), "bad lines in {}: {:?}", path.display(), parsed.bad);
        for (_, e) in parsed.events {
            out.push(serde_json::to_value(e).unwrap());
        }
    }
    out
}

/// Waits until `n` events of kind `id` are in the capture log.
fn wait_capture(s: &Server, id: &str, n: usize) -> Vec<Value> {
    wait_capture_where(s, id, n, |_| true)
}

/// Waits until `n` events of kind `id` matching `pred` are in the log.
fn wait_capture_where(s: &Server, id: &str, n: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let events: Vec<Value> = capture_events(s).into_iter().filter(|e| e["event"] == id && pred(e)).collect();
        if events.len() >= n || start.elapsed() > Duration::from_secs(15) {
            assert!(events.len() >= n, "{n} {id} events expected, got {events:#?}");
            return events;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
}

fn body_files(s: &Server) -> usize {
    fn walk(dir: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| {
                if e.path().is_dir() {
                    walk(&e.path())
                } else {
                    usize::from(e.path().extension().is_some_and(|x| x == "zst"))
                }
            })
            .sum()
    }
    walk(&capture_dir(s).join("bodies"))
}

fn body(s: &Server, digest: &str) -> Vec<u8> {
    Bodies::open(&capture_dir(s).join("bodies")).unwrap().get(digest).unwrap()
}

const MESSAGE: &str = "From: a@spam.example\r\nTo: v@victim.example\r\nSubject: cheap pills\r\n\r\nbuy now\r\n";

fn curl_smtp(proxy_args: &[&str], url: &str, rcpts: &[&str]) -> String {
    let curl = require("curl");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msg.eml");
    std::fs::write(&file, MESSAGE).unwrap();
    let mut cmd = Command::new(curl);
    cmd.args(["-sv", "--max-time", "20"]).args(proxy_args).arg(url).args(["--mail-from", "a@spam.example"]);
    for r in rcpts {
        cmd.args(["--mail-rcpt", r]);
    }
    let out = cmd.arg("-T").arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "curl {proxy_args:?} {url} failed: {text}");
    text
}

#[test]
fn curl_through_socks4_socks4a_socks5h_and_http_connect_is_captured_never_delivered() {
    let s = sensor("", "");
    let proxy = listener(&s, "proxy").to_string();
    let cases: [(&[&str], &str, &str, &str); 4] = [
        (
            &["--proxy", &format!("socks5h://spammer:hunter2@{proxy}")],
            "smtp://mx.victim.example:25",
            "socks5",
            "mx.victim.example",
        ),
        (&["--proxy", &format!("socks4a://{proxy}")], "smtp://mx.victim.example:587", "socks4a", "mx.victim.example"),
        (&["--proxy", &format!("socks4://{proxy}")], "smtp://192.0.2.25:25", "socks4", "192.0.2.25"),
        (
            &["-x", &format!("http://joe:secret@{proxy}"), "--proxytunnel"],
            "smtp://mx.other.example:25",
            "http-connect",
            "mx.other.example",
        ),
    ];
    for (args, url, _, host) in &cases {
        let text = curl_smtp(args, url, &["v1@victim.example", "v2@victim.example"]);
        assert!(text.contains("< 250 2.0.0 Ok: queued as "), "{text}");
        let banner_host = if host.starts_with("192.") { "mail" } else { host };
        assert!(text.contains(&format!("< 220 {banner_host} ESMTP Postfix")), "{text}");
    }
    let messages = wait_capture(&s, "port25.spampot.message", 4);
    for (m, (_, url, proxy_type, host)) in messages.iter().zip(&cases) {
        assert_eq!(m["proxy_type"], *proxy_type, "{m}");
        assert_eq!(m["protocol"], "proxy");
        assert_eq!(m["sensor"], "it-sensor");
        assert_eq!(m["requested"]["host"], *host);
        assert_eq!(m["requested"]["port"], if url.ends_with("587") { 587 } else { 25 });
        assert_eq!(m["mail_from"], "a@spam.example");
        assert_eq!(m["rcpt_to"], serde_json::json!(["v1@victim.example", "v2@victim.example"]));
        assert_eq!(m["src_ip"], "127.0.0.1");
        assert_eq!(m["size"], MESSAGE.len());
        assert_eq!(body(&s, m["digest"].as_str().unwrap()), MESSAGE.as_bytes());
    }
    assert_eq!(messages[0]["username"], "spammer");
    assert_eq!(messages[0]["password"], "hunter2");
    assert_eq!(messages[3]["username"], "joe");
    assert_eq!(messages[3]["password"], "secret");
    // One campaign, four copies: one body on disk.
    assert_eq!(messages.iter().filter(|m| m["duplicate"] == false).count(), 1);
    assert_eq!(body_files(&s), 1);
    let closed = wait_capture(&s, "port25.spampot.session.closed", 4);
    assert!(closed.iter().all(|c| c["messages"] == 1), "{closed:#?}");
}

#[test]
fn python_smtplib_over_a_raw_socks5_login_is_captured() {
    let s = sensor("public_addresses = [\"198.51.100.7\"]", "");
    let proxy = listener(&s, "proxy");
    let script = r#"
import smtplib, socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
sock = socket.create_connection((host, port), timeout=20)
sock.sendall(b"\x05\x02\x00\x02")
assert sock.recv(2) == b"\x05\x02", "server must ask for the login"
user, pw = b"probe-user", b"probe-pass"
sock.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(pw)]) + pw)
assert sock.recv(2) == b"\x01\x00"
name = b"smtp.gmail.com"
sock.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", 25))
reply = sock.recv(10)
assert reply[:2] == b"\x05\x00", reply
class Tunnelled(smtplib.SMTP):
    def _get_socket(self, host, port, timeout):
        return sock
s = Tunnelled()
s._host = "smtp.gmail.com"
code, banner = s.connect("smtp.gmail.com", 25)
assert code == 220 and b"smtp.gmail.com" in banner, banner
s.ehlo("checker")
msg = b"Subject: proxy test\r\n\r\nproxy 198.51.100.7:%d ok\r\n" % port
refused = s.sendmail("me@checker.example", ["me@checker.example"], msg)
assert refused == {}, refused
code, text = s.noop()
assert code == 250
s.quit()
print("sent")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(proxy.ip().to_string())
        .arg(proxy.port().to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let m = &wait_capture(&s, "port25.spampot.message", 1)[0];
    assert_eq!(m["username"], "probe-user");
    assert_eq!(m["password"], "probe-pass");
    assert_eq!(m["requested"], serde_json::json!({"host": "smtp.gmail.com", "port": 25}));
    assert_eq!(m["helo"], "checker");
    // A test message to oneself naming the sensor's address and port: a probe.
    assert_eq!(m["probe"], true, "{m}");
    let reasons = m["probe_reasons"].as_array().unwrap();
    for r in ["first-message-from-source", "single-recipient", "mentions-sensor-address", "mentions-sensor-port"] {
        assert!(reasons.iter().any(|x| x == r), "{r} missing: {m}");
    }
}

#[test]
fn swaks_on_the_relay_bait_and_with_a_proxy_protocol_header() {
    let s = sensor(
        "",
        "[[listener]]\nname = \"smtp-behind-lb\"\naddress = \"127.0.0.1:0\"\nkind = \"smtp\"\nproxy_protocol = true\nproxy_protocol_from = [\"127.0.0.0/8\"]\n",
    );
    let swaks = require("swaks");
    let relay = listener(&s, "smtp").to_string();
    let out = Command::new(&swaks)
        .args([
            "--server",
            &relay,
            "--from",
            "bulk@spam.example",
            "--to",
            "a@victim.example,b@victim.example,c@victim.example",
            "--ehlo",
            "bulk.example",
        ])
        .args(["--header", "Subject: relay test", "--body", "relay me"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("<-  250 2.0.0 Ok: queued as"), "{text}");
    assert!(text.contains("<-  220 mail ESMTP Postfix"), "{text}");
    let behind = listener(&s, "smtp-behind-lb").to_string();
    let out = Command::new(&swaks)
        .args(["--server", &behind, "--from", "x@spam.example", "--to", "y@victim.example"])
        .args([
            "--proxy-version",
            "2",
            "--proxy-family",
            "AF_INET",
            "--proxy-source",
            "203.0.113.9",
            "--proxy-source-port",
            "40112",
        ])
        .args(["--proxy-dest", "198.51.100.7", "--proxy-dest-port", "25"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("queued as"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let m = wait_capture(&s, "port25.spampot.message", 2);
    assert_eq!(m[0]["protocol"], "smtp");
    assert!(m[0].get("proxy_type").is_none() && m[0].get("requested").is_none(), "{}", m[0]);
    assert_eq!(m[0]["rcpt_to"].as_array().unwrap().len(), 3);
    assert_eq!(m[0]["helo"], "bulk.example");
    assert!(String::from_utf8_lossy(&body(&s, m[0]["digest"].as_str().unwrap())).contains("relay me"));
    assert_eq!(m[1]["src_ip"], "203.0.113.9");
    assert_eq!(m[1]["src_port"], 40112);
    assert_eq!(m[1]["dst_port"], 25);
}

/// Nothing leaves the host: tunnels to a mail port that really has a
/// listener, and to another port, never reach it.
#[test]
fn tunnels_never_connect_anywhere() {
    let mail = TcpListener::bind("127.0.0.1:0").unwrap();
    let web = TcpListener::bind("127.0.0.1:0").unwrap();
    mail.set_nonblocking(true).unwrap();
    web.set_nonblocking(true).unwrap();
    let (mail_port, web_port) = (mail.local_addr().unwrap().port(), web.local_addr().unwrap().port());
    let s = sensor(
        &format!("mail_ports = [25, 587, {mail_port}]\nrefusal_per_port = {{ \"{web_port}\" = \"close\" }}"),
        "",
    );
    let proxy = listener(&s, "proxy").to_string();
    let text = curl_smtp(
        &["--proxy", &format!("socks5://{proxy}")],
        &format!("smtp://127.0.0.1:{mail_port}"),
        &["v@victim.example"],
    );
    assert!(text.contains("queued as"), "{text}");
    // Another port: SOCKS5 "connection refused" by default, a close when configured.
    let curl = require("curl");
    let refused = Command::new(&curl)
        .args(["-sv", "--max-time", "10", "--proxy", &format!("socks5h://{proxy}"), "http://www.example.com:8081/"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("(5)"), "{}", String::from_utf8_lossy(&refused.stderr));
    let closed = Command::new(&curl)
        .args([
            "-sv",
            "--max-time",
            "10",
            "--proxy",
            &format!("socks5://{proxy}"),
            &format!("http://127.0.0.1:{web_port}/"),
        ])
        .output()
        .unwrap();
    assert!(!closed.status.success());
    // HTTP CONNECT to a non-mail port: 503, or a close where configured.
    for (target, expected) in
        [("www.example.com:443".to_string(), "HTTP/1.1 503 "), (format!("127.0.0.1:{web_port}"), "")]
    {
        let mut c = TcpStream::connect(&proxy).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with(expected) && (expected.is_empty() == reply.is_empty()), "{target}: {reply}");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(mail.accept().is_err(), "the sensor connected to the mail listener");
    assert!(web.accept().is_err(), "the sensor connected to the web listener");
    let refusals = wait_capture(&s, "port25.spampot.proxy.refused", 4);
    assert!(refusals.iter().all(|r| r["reason"] == "not a mail port"), "{refusals:#?}");
    assert_eq!(refusals[0]["requested"], serde_json::json!({"host": "www.example.com", "port": 8081}));
}

#[test]
fn absolute_uri_requests_are_answered_without_fetching() {
    let s = sensor("", "");
    let proxy = listener(&s, "proxy").to_string();
    let out = Command::new(require("curl"))
        .args([
            "-s",
            "--max-time",
            "10",
            "-A",
            "ProxyJudge/1.0",
            "-x",
            &format!("http://{proxy}"),
            "http://judge.example:8080/azenv.php?x=1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("It works!"));
    let e = &wait_capture(&s, "port25.spampot.http.request", 1)[0];
    assert_eq!(e["method"], "GET");
    assert_eq!(e["url"], "http://judge.example:8080/azenv.php?x=1");
    assert_eq!(e["user_agent"], "ProxyJudge/1.0");
    assert_eq!(e["requested"], serde_json::json!({"host": "judge.example", "port": 8080}));
}

#[test]
fn limits_per_source_handshake_size_and_unknown_protocols() {
    let s = sensor("", "[limits]\nmax_connections_per_source = 2\nhandshake_timeout_secs = 2\n");
    let proxy = listener(&s, "proxy");
    let a = TcpStream::connect(proxy).unwrap();
    let b = TcpStream::connect(proxy).unwrap();
    wait_capture(&s, "port25.spampot.connect", 2);
    let mut c = TcpStream::connect(proxy).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)), "third connection from one source must be closed");
    wait_capture_where(&s, "port25.spampot.limit", 1, |l| l["reason"] == "max_connections_per_source");
    drop((a, b));
    // Their slots are free once the sensor has closed them.
    wait_capture_where(&s, "port25.spampot.session.closed", 2, |c| c["reason"] == "no data");
    // Slow client: the handshake times out (2 s here).
    let mut slow = TcpStream::connect(proxy).unwrap();
    slow.write_all(b"\x05").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(matches!(slow.read(&mut buf), Ok(0) | Err(_)));
    // A huge request head is refused without buffering it.
    let mut big = TcpStream::connect(proxy).unwrap();
    let _ = big.write_all(format!("GET http://x/ HTTP/1.1\r\nX: {}\r\n", "a".repeat(20_000)).as_bytes());
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(matches!(big.read(&mut buf), Ok(0) | Err(_)));
    // TLS to a proxy port: not bait, closed.
    let mut tls = TcpStream::connect(proxy).unwrap();
    tls.write_all(b"\x16\x03\x01\x00\x05hello").unwrap();
    tls.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(matches!(tls.read(&mut buf), Ok(0) | Err(_)));
    wait_capture_where(&s, "port25.spampot.limit", 1, |l| l["reason"] == "handshake timeout");
    wait_capture_where(&s, "port25.spampot.protocol.unknown", 1, |u| {
        u["reason"] == "request head longer than 8192 bytes"
    });
    wait_capture_where(&s, "port25.spampot.protocol.unknown", 1, |u| {
        u["reason"] == "first bytes are neither SOCKS nor HTTP"
    });
}

/// kill -9 in the middle of a capture run: every message a client heard
/// 250 for is in the log with its body, and no line is broken.
#[test]
fn kill9_loses_no_acknowledged_message_and_leaves_no_broken_line() {
    let mut s = sensor("", "");
    let relay = listener(&s, "smtp");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let sender = std::thread::spawn(move || {
        let Ok(stream) = TcpStream::connect(relay) else {
            return;
        };
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = Client { reader: std::io::BufReader::new(stream.try_clone().unwrap()), stream };
        // Writes fail once the sensor is killed: that ends the run quietly.
        let say = |c: &mut Client, bytes: &[u8]| -> String {
            if c.stream.write_all(bytes).is_err() {
                return String::new();
            }
            c.reply()
        };
        if !c.reply().starts_with("220") || !say(&mut c, b"EHLO k.example\r\n").starts_with("250") {
            return;
        }
        for i in 0.. {
            if !say(&mut c, b"MAIL FROM:<k@spam.example>\r\n").starts_with("250")
                || !say(&mut c, b"RCPT TO:<v@victim.example>\r\n").starts_with("250")
                || !say(&mut c, b"DATA\r\n").starts_with("354")
            {
                return;
            }
            let r = say(&mut c, format!("Subject: n{i}\r\n\r\nbody {i}\r\n.\r\n").as_bytes());
            match r.strip_prefix("250 2.0.0 Ok: queued as ") {
                Some(id) => tx.send(id.trim().to_owned()).unwrap(),
                None => return,
            }
        }
    });
    let mut acked = Vec::new();
    while acked.len() < 30 {
        acked.push(rx.recv_timeout(Duration::from_secs(20)).expect("messages flow"));
    }
    s.kill9();
    sender.join().unwrap();
    acked.extend(rx.try_iter());
    s.spawn();
    let events = capture_events(&s);
    let messages: Vec<&Value> = events.iter().filter(|e| e["event"] == "port25.spampot.message").collect();
    for id in &acked {
        let m = messages
            .iter()
            .find(|m| m["message_id"] == *id.as_str())
            .unwrap_or_else(|| panic!("acknowledged {id} missing"));
        let n = body(&s, m["digest"].as_str().unwrap());
        assert!(String::from_utf8_lossy(&n).starts_with("Subject: n"));
    }
    for (_, path) in port25_capture::log::list_segments(&capture_dir(&s).join("events")).unwrap() {
        assert!(
            port25_capture::reader::read_file(&path).unwrap().torn.is_none(),
            "torn line left in {}",
            path.display()
        );
    }
}

#[test]
fn starts_with_no_configuration_on_the_documented_ports() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["spampot", "--log-format", "json"])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut ports = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let Ok(v) = serde_json::from_str::<Value>(&line.unwrap()) else {
            continue;
        };
        if v["event"] == "port25.server.listening" {
            ports.push(v["address"].as_str().unwrap().rsplit(':').next().unwrap().parse::<u16>().unwrap());
            if ports.len() == 7 {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ports, vec![11080, 13128, 18080, 18000, 16588, 10080, 12525]);
    assert!(dir.path().join("spampot-data/capture/events").is_dir());
}

/// Message events in a directory of segments: (message_id, digest).
fn messages_in(dir: &Path) -> Vec<(String, String)> {
    let Ok(segments) = port25_capture::log::list_segments(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (_, p) in segments {
        let parsed = port25_capture::reader::read_file(&p).unwrap();
        assert!(parsed.bad.is_empty() && parsed.torn.is_none(), "{}", p.display());
        for (_, e) in parsed.events {
            if e.event == "port25.spampot.message" {
                out.push((e.message_id.unwrap(), e.digest.unwrap()));
            }
        }
    }
    out
}

fn wait_messages(dir: &Path, n: usize) -> Vec<(String, String)> {
    let start = Instant::now();
    loop {
        let m = messages_in(dir);
        if m.len() >= n || start.elapsed() > Duration::from_secs(30) {
            assert_eq!(m.len(), n, "{m:?}");
            return m;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn shipping_to_a_collector_survives_its_outage_without_loss_or_duplicates() {
    const TOKEN: &str = "it-token-0123456789abcdef";
    let mut collector = Server::start_with("spampot collect", |dir: &Path| {
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nlog_format = \"json\"\n[[sensor]]\nname = \"it-sensor\"\ntoken = \"{TOKEN}\"\n",
            dir.join("data").display()
        )
    });
    let port = collector.addr().port();
    let cert = collector.data().join("tls/selfsigned.crt");
    let s = sensor(
        "",
        &format!(
            "[ship]\nurl = \"https://localhost:{port}\"\ntoken = \"{TOKEN}\"\nca_file = \"{}\"\ninterval_ms = 100\n",
            cert.display()
        ),
    );
    let proxy = listener(&s, "proxy").to_string();
    let shipped = collector.data().join("sensors/it-sensor/events");
    for _ in 0..3 {
        assert!(curl_smtp(
            &["--proxy", &format!("socks5h://{proxy}")],
            "smtp://mx.victim.example:25",
            &["v@victim.example"]
        )
        .contains("queued as"));
    }
    wait_messages(&shipped, 3);
    // The collector dies; the sensor goes on capturing and catches up later.
    collector.kill9();
    for _ in 0..2 {
        assert!(curl_smtp(
            &["--proxy", &format!("socks5h://{proxy}")],
            "smtp://mx.victim.example:587",
            &["w@victim.example"]
        )
        .contains("queued as"));
    }
    assert!(
        s.wait_event("port25.spampot.ship.failed", Duration::from_secs(10)).is_some(),
        "the sensor reports the outage"
    );
    collector.spawn();
    let got = wait_messages(&shipped, 5);
    let local = messages_in(&capture_dir(&s).join("events"));
    assert_eq!(got, local, "the collector holds exactly the sensor's messages, in order, once");
    let bodies = Bodies::open(&collector.data().join("bodies")).unwrap();
    for (_, digest) in &got {
        assert_eq!(bodies.get(digest).unwrap(), MESSAGE.as_bytes());
    }
    // The collector's copy of each segment is byte for byte the sensor's
    // complete lines.
    for (_, p) in port25_capture::log::list_segments(&shipped).unwrap() {
        let theirs = std::fs::read(&p).unwrap();
        let ours = std::fs::read(capture_dir(&s).join("events").join(p.file_name().unwrap())).unwrap();
        assert!(ours.starts_with(&theirs), "{}", p.display());
    }
    // A wrong token is refused.
    let out = Command::new(require("curl"))
        .args([
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-H",
            "Authorization: Bearer wrong-token-0123456789",
        ])
        .arg(format!("https://127.0.0.1:{port}/v1/events/events-20260101-000001.jsonl?offset=0"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
}

/// Fails loudly when PySocks is missing (.ci/install-deps installs it).
fn require_pysocks() {
    let ok = Command::new("python3").args(["-c", "import socks"]).status().unwrap().success();
    assert!(ok, "Python PySocks is not installed; run .ci/install-deps");
}

#[test]
fn pysocks_socks4a_socks5_and_http_with_smtplib() {
    require_pysocks();
    let s = sensor("", "");
    let proxy = listener(&s, "proxy");
    let script = r#"
import smtplib, socks, sys
host, port = sys.argv[1], int(sys.argv[2])
cases = [
    (socks.SOCKS4, "mx.four.example", 25, None, None),
    (socks.SOCKS5, "mx.five.example", 587, "pyuser", "pypass"),
    (socks.HTTP, "mx.http.example", 25, None, None),
]
for kind, dest, dport, user, pw in cases:
    class Proxied(smtplib.SMTP):
        def _get_socket(self, h, p, timeout):
            return socks.create_connection((h, p), timeout=20, proxy_type=kind, proxy_addr=host,
                                           proxy_port=port, proxy_rdns=True, proxy_username=user, proxy_password=pw)
    s = Proxied(dest, dport, timeout=20)
    s.ehlo("pysocks.example")
    refused = s.sendmail("py@spam.example", ["a@victim.example", "b@victim.example"], b"Subject: pysocks\r\n\r\nvia " + dest.encode() + b"\r\n")
    assert refused == {}, refused
    s.quit()
print("ok")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(proxy.ip().to_string())
        .arg(proxy.port().to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let m = wait_capture(&s, "port25.spampot.message", 3);
    let seen: Vec<(String, String, u64)> = m
        .iter()
        .map(|e| {
            (
                e["proxy_type"].as_str().unwrap().to_owned(),
                e["requested"]["host"].as_str().unwrap().to_owned(),
                e["requested"]["port"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("socks4a".to_owned(), "mx.four.example".to_owned(), 25),
            ("socks5".to_owned(), "mx.five.example".to_owned(), 587),
            ("http-connect".to_owned(), "mx.http.example".to_owned(), 25)
        ]
    );
    assert_eq!(m[1]["username"], "pyuser");
    assert_eq!(m[1]["password"], "pypass");
    for e in &m {
        let host = e["requested"]["host"].as_str().unwrap();
        assert!(String::from_utf8_lossy(&body(&s, e["digest"].as_str().unwrap())).contains(&format!("via {host}")));
    }
}

#[test]
fn proxychains4_wraps_swaks_through_the_socks5_bait() {
    let proxychains = require("proxychains4");
    let swaks = require("swaks");
    let s = sensor("", "");
    let proxy = listener(&s, "proxy");
    let conf = s.dir.path().join("proxychains.conf");
    std::fs::write(
        &conf,
        format!(
            "strict_chain\nproxy_dns\ntcp_read_time_out 15000\ntcp_connect_time_out 8000\n[ProxyList]\nsocks5 {} {}\n",
            proxy.ip(),
            proxy.port()
        ),
    )
    .unwrap();
    let out = Command::new(proxychains)
        .arg("-q")
        .arg("-f")
        .arg(&conf)
        .arg(swaks)
        .args([
            "--server",
            "mx.chained.example:25",
            "--from",
            "pc@spam.example",
            "--to",
            "v@victim.example",
            "--header",
            "Subject: chained",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("<-  220 mx.chained.example ESMTP Postfix") && text.contains("queued as"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = &wait_capture(&s, "port25.spampot.message", 1)[0];
    assert_eq!(m["proxy_type"], "socks5");
    assert_eq!(m["requested"], serde_json::json!({"host": "mx.chained.example", "port": 25}));
    assert_eq!(m["mail_from"], "pc@spam.example");
}

#[test]
fn bytes_per_session_and_the_disk_quota_are_enforced() {
    let s = sensor("", "[limits]\nmax_session_bytes = 3000\n[store]\nmax_segment_bytes = 4000\nquota_bytes = 30000\n");
    let relay = listener(&s, "smtp");
    let mut c = Client::open(relay);
    assert!(c.cmd("EHLO quota.example").starts_with("250"));
    let body = "x".repeat(998) + "\r\n";
    for _ in 0..2 {
        assert!(c.send_mail("a@spam.example", &["v@victim.example"], &body).starts_with("250"));
    }
    // The third message passes 3000 bytes in this session: 421 and close.
    let r = c.send_mail("a@spam.example", &["v@victim.example"], &body);
    assert!(r.starts_with("421 4.7.0"), "{r}");
    assert!(c.is_closed());
    wait_capture_where(&s, "port25.spampot.limit", 1, |l| l["reason"] == "max_session_bytes");
    // Distinct bodies until the quota has to rotate the oldest data away.
    for i in 0..40 {
        let mut c = Client::open(relay);
        assert!(c.cmd("EHLO quota.example").starts_with("250"));
        let body: String = (0..30).map(|j| format!("line {i} {j} {}\r\n", (i * 7919 + j * 104729) % 1000003)).collect();
        assert!(c.send_mail("a@spam.example", &["v@victim.example"], &body).starts_with("250"));
        c.cmd("QUIT");
    }
    let rotated = wait_capture(&s, "port25.spampot.quota.rotated", 1);
    assert!(rotated[0]["bytes"].as_u64().unwrap() > 0, "{rotated:#?}");
    let segments = port25_capture::log::list_segments(&capture_dir(&s).join("events")).unwrap();
    assert!(segments[0].0 > 1, "the oldest segment was removed first");
}

#[test]
fn help_names_the_ports_and_bad_configuration_names_file_and_line() {
    let out = Command::new(BIN).args(["spampot", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in ["SOCKS4a", "11080", "12525", "1080 3128", "docs/spampot.md", "collect"] {
        assert!(help.contains(needle), "{needle} missing from --help:\n{help}");
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("spampot.toml");
    std::fs::write(&bad, "sensor = \"s\"\n[limits]\nmax_conections = 1\n").unwrap();
    let out = Command::new(BIN).args(["spampot", "--config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3:1: unknown field `max_conections`", bad.display())), "{err}");
}
