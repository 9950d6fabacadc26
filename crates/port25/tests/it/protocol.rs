//! Protocol strictness and limits, byte for byte.

use crate::harness::*;
use std::time::Duration;

fn ready(s: &Server) -> Client {
    let mut c = Client::open(s.addr());
    assert_eq!(code(&c.cmd("EHLO client.example")), 250);
    c
}

fn begin_data(c: &mut Client, to: &str) {
    assert_eq!(code(&c.cmd("MAIL FROM:<a@remote.example>")), 250);
    assert_eq!(code(&c.cmd(&format!("RCPT TO:<{to}>"))), 250);
    assert_eq!(code(&c.cmd("DATA")), 354);
}

#[test]
fn smtp_smuggling_variants_are_refused_and_nothing_is_stored() {
    let s = Server::mx();
    // Each body tries to end DATA early with a non-CRLF terminator and
    // smuggle a second message behind it.
    let smuggled =
        "MAIL FROM:<ceo@example.net>\r\nRCPT TO:<alice@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n";
    for (name, terminator) in [
        ("LF.LF", "\n.\n"),
        ("LF.CRLF", "\n.\r\n"),
        ("CRLF.LF", "\r\n.\n"),
        ("CR.CR", "\r.\r"),
        ("CR.CRLF", "\r.\r\n"),
        ("CRLF.CR", "\r\n.\r"),
    ] {
        let mut c = ready(&s);
        begin_data(&mut c, "alice@example.net");
        c.send(format!("Subject: first\r\n\r\nhello{terminator}{smuggled}").as_bytes());
        let reply = c.reply();
        assert!(reply.starts_with("521 5.5.2 Bare"), "{name}: {reply}");
        assert!(c.is_closed(), "{name}: connection must close after bare CR/LF");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.all_mail().is_empty(), "no part of a smuggling attempt may be delivered");
    // A sleep does not mean the log reader has caught up: wait for the six.
    assert_eq!(s.wait_events("port25.session.protocol_violation", 6, Duration::from_secs(10)).len(), 6);
}

#[test]
fn bare_lf_and_cr_in_commands() {
    let s = Server::mx();
    let mut c = Client::open(s.addr());
    c.send(b"NOOP\r\nEHLO x\rNOOP\r\n");
    assert!(c.reply().starts_with("250"));
    assert!(c.reply().starts_with("500 5.5.2 Bare <CR>"));
    c.send(b"NOOP\n");
    assert!(c.reply().starts_with("521 5.5.2 Bare <LF>"));
    assert!(c.is_closed());
}

#[test]
fn dot_stuffing_and_8bit_are_kept_exactly() {
    let s = Server::mx();
    let mut c = ready(&s);
    begin_data(&mut c, "alice@example.net");
    // Lines starting with dots: one dot removed per line, nothing else changed.
    c.send(b"Subject: dots\r\n\r\n..\r\n...x\r\n. \r\n\xc3\xa9t\xc3\xa9\r\n.\r\n");
    assert_eq!(code(&c.reply()), 250);
    let mail = s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(10));
    let body = &mail[0];
    let tail = b"Subject: dots\r\n\r\n.\r\n..x\r\n \r\n\xc3\xa9t\xc3\xa9\r\n";
    assert!(body.ends_with(tail), "{:?}", String::from_utf8_lossy(body));
}

#[test]
fn limits_answer_with_rfc_codes() {
    let listeners = "[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\nmax_recipients = 3\nmax_message_size = 2000\nmax_command_line = 512\nmax_commands_before_mail = 5\n";
    let s = Server::start(
        "domains = [\"example.net\"]\nrecipients = [\"u0@example.net\", \"u1@example.net\", \"u2@example.net\"]",
        listeners,
    );
    let mut c = ready(&s);
    let ehlo = c.cmd("EHLO client.example");
    assert!(ehlo.contains("250-SIZE 2000\r\n"), "{ehlo}");
    // SIZE declared too big: refused at MAIL.
    assert!(c.cmd("MAIL FROM:<a@remote.example> SIZE=5000").starts_with("552 5.3.4"));
    // Too many recipients: 452 4.5.3 (RFC 5321 4.5.3.1.10).
    c.cmd("MAIL FROM:<a@remote.example>");
    for i in 0..3 {
        assert_eq!(code(&c.cmd(&format!("RCPT TO:<u{i}@example.net>"))), 250);
    }
    assert!(c.cmd("RCPT TO:<u9@example.net>").starts_with("452 4.5.3"));
    // Message larger than the limit: read to the end, then 552 5.3.4.
    assert_eq!(code(&c.cmd("DATA")), 354);
    c.send(&b"x".repeat(900).iter().chain(b"\r\n").copied().collect::<Vec<u8>>().repeat(3));
    c.send(b".\r\n");
    assert!(c.reply().starts_with("552 5.3.4"));
    // A message line over 998 octets: 500 5.5.2 after the terminator.
    begin_data(&mut c, "u1@example.net");
    c.send(&[b'y'; 1200]);
    c.send(b"\r\n.\r\n");
    assert!(c.reply().starts_with("500 5.5.2 Message line"));
    // An overlong command line: 500 5.5.2, and the session goes on.
    c.send(&[b'N'; 600]);
    c.send(b"\r\n");
    assert!(c.reply().starts_with("500 5.5.2 Line too long"));
    assert_eq!(code(&c.cmd("NOOP")), 250);
    // Commands outside a transaction are capped.
    let mut last = String::new();
    for _ in 0..8 {
        last = c.cmd("NOOP");
        if code(&last) == 421 {
            break;
        }
    }
    assert!(last.starts_with("421 4.7.0 Too many commands"), "{last}");
    assert!(c.is_closed());
    std::thread::sleep(Duration::from_millis(200));
    assert!(s.all_mail().is_empty());
}

#[test]
fn sequence_errors_vrfy_help_and_rset() {
    let s = Server::mx();
    let mut c = Client::open(s.addr());
    assert!(c.cmd("MAIL FROM:<a@remote.example>").starts_with("503 5.5.1"), "MAIL before EHLO");
    c.cmd("HELO client.example");
    assert!(c.cmd("RCPT TO:<alice@example.net>").starts_with("503 5.5.1"));
    assert!(c.cmd("DATA").starts_with("503 5.5.1"));
    assert!(c.cmd("VRFY alice").starts_with("252 2.5.0"), "VRFY never confirms a user");
    assert!(c.cmd("VRFY nobody-at-all").starts_with("252 2.5.0"));
    assert!(c.cmd("HELP").starts_with("214"));
    assert!(c.cmd("EXPN staff").starts_with("502"));
    assert!(c.cmd("BDAT 10 LAST").starts_with("502 5.5.1"));
    assert_eq!(code(&c.cmd("MAIL FROM:<a@remote.example>")), 250);
    assert!(c.cmd("MAIL FROM:<b@remote.example>").starts_with("503 5.5.1"), "nested MAIL");
    assert_eq!(code(&c.cmd("RSET")), 250);
    assert_eq!(code(&c.cmd("MAIL FROM:<b@remote.example>")), 250);
    c.cmd("RSET");
    assert!(c.cmd("MAIL FROM:<b@remote.example> FOO=BAR").starts_with("555 5.5.4"));
    assert!(c.cmd("MAIL FROM:<j\u{e3}o@remote.example>").starts_with("553 5.6.7"), "UTF-8 needs SMTPUTF8");
    assert!(c.cmd("HELO client.example").starts_with("250 "), "HELO reply has no extensions");
    assert!(c.cmd("QUIT").starts_with("221 2.0.0"));
    assert!(c.is_closed());
}

#[test]
fn pipelined_commands_get_replies_in_order() {
    let s = Server::mx();
    let mut c = Client::open(s.addr());
    c.cmd("EHLO client.example");
    c.send(b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.net>\r\nRCPT TO:<x@elsewhere.example>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n");
    assert_eq!(code(&c.reply()), 250);
    assert_eq!(code(&c.reply()), 250);
    assert_eq!(code(&c.reply()), 554);
    assert_eq!(code(&c.reply()), 250);
    assert_eq!(code(&c.reply()), 354);
    c.send(b"Subject: pipelined\r\n\r\nx\r\n.\r\nQUIT\r\n");
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued as"));
    assert!(c.reply().starts_with("221"));
    assert_eq!(s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(10)).len(), 1);
    assert_eq!(s.wait_for_mail("example.net", "bob", 1, Duration::from_secs(10)).len(), 1);
}

#[test]
fn plaintext_injected_after_starttls_is_discarded() {
    // CVE-2011-0411: commands sent with STARTTLS before the handshake must
    // not be executed inside the TLS session.
    let s = Server::mx();
    let script = r#"
import socket, ssl, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
f = sock.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline().decode()
        lines.append(l)
        if len(l) < 4 or l[3] != "-":
            return "".join(lines)
reply()
sock.sendall(b"EHLO x\r\n"); reply()
sock.sendall(b"STARTTLS\r\nRSET\r\n")
r = reply(); assert r.startswith("220"), r
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
tls = ctx.wrap_socket(sock, server_hostname="mx.test.example")
tls.sendall(b"NOOP\r\n")
r = tls.recv(4096).decode()
assert r.startswith("250 2.0.0 Ok"), "the injected RSET must not have been answered: %r" % r
tls.sendall(b"MAIL FROM:<a@b.example>\r\n")
r = tls.recv(4096).decode()
assert r.startswith("503 5.5.1 Send EHLO"), "EHLO state must be reset after TLS: %r" % r
print("ok")
"#;
    let out =
        std::process::Command::new("python3").arg("-c").arg(script).arg(s.addr().port().to_string()).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let v = s.wait_event("port25.session.protocol_violation", Duration::from_secs(5)).expect("violation logged");
    assert_eq!(v["bytes"], 6);
}

#[test]
fn idle_timeout_closes_with_421() {
    let listeners = "[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\ncommand_timeout_secs = 1\n";
    let s = Server::start("domains = [\"example.net\"]", listeners);
    let mut c = Client::open(s.addr());
    let started = std::time::Instant::now();
    let r = c.reply();
    assert!(r.starts_with("421 4.4.2"), "{r}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(c.is_closed());
}

#[test]
fn connection_cap_answers_421() {
    let listeners = "[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\nmax_connections = 2\n";
    let s = Server::start("domains = [\"example.net\"]", listeners);
    let _a = Client::open(s.addr());
    let _b = Client::open(s.addr());
    let mut c = Client::connect(s.addr());
    assert!(c.reply().starts_with("421 4.7.0 Too many connections"));
    drop(_a);
    std::thread::sleep(Duration::from_millis(200));
    let _d = Client::open(s.addr());
}

#[test]
fn proxy_protocol_v1_and_v2_name_the_real_client() {
    let listeners = "[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\nproxy_protocol = true\nproxy_protocol_from = [\"127.0.0.1\"]\ntls = \"none\"\n";
    let s = Server::start(
        "domains = [\"example.net\"]\nrecipients = [\"alice@example.net\", \"bob@example.net\"]",
        listeners,
    );
    let mut c = Client::connect(s.addr());
    c.send(b"PROXY TCP4 198.51.100.7 192.0.2.25 40000 25\r\n");
    assert!(c.reply().starts_with("220"));
    c.cmd("EHLO proxied.example");
    assert!(c.send_mail("a@remote.example", &["alice@example.net"], "Subject: v1").starts_with("250"));
    // v2, IPv6 source.
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24".to_vec();
    v2.extend_from_slice(&"2001:db8::7".parse::<std::net::Ipv6Addr>().unwrap().octets());
    v2.extend_from_slice(&"2001:db8::25".parse::<std::net::Ipv6Addr>().unwrap().octets());
    v2.extend_from_slice(&[0x9c, 0x40, 0, 25]);
    let mut c = Client::connect(s.addr());
    c.send(&v2);
    assert!(c.reply().starts_with("220"));
    c.cmd("EHLO proxied6.example");
    assert!(c.send_mail("a@remote.example", &["bob@example.net"], "Subject: v2").starts_with("250"));
    let alice =
        String::from_utf8(s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(10))[0].clone()).unwrap();
    assert!(alice.contains("Received: from proxied.example ([198.51.100.7] via proxy 127.0.0.1)"), "{alice}");
    let bob = String::from_utf8(s.wait_for_mail("example.net", "bob", 1, Duration::from_secs(10))[0].clone()).unwrap();
    assert!(bob.contains("([IPv6:2001:db8::7] via proxy 127.0.0.1)"), "{bob}");
    // Without a header the connection is dropped, never served.
    let mut c = Client::connect(s.addr());
    c.send(b"EHLO sneaky.example\r\n");
    assert_eq!(c.reply(), "");
    assert!(s.wait_event("port25.session.proxy.invalid", Duration::from_secs(5)).is_some());
}

#[test]
fn graceful_shutdown_lets_a_transaction_finish() {
    let mut s = Server::mx();
    let mut idle = Client::open(s.addr());
    let mut busy = ready(&s);
    begin_data(&mut busy, "alice@example.net");
    busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n");
    s.signal("-TERM");
    // The idle session is told to go away.
    let bye = idle.reply();
    assert!(bye.starts_with("421 4.3.2"), "idle session got {bye:?}");
    // The session in DATA may finish its message.
    std::thread::sleep(Duration::from_millis(300));
    busy.send(b"second half\r\n.\r\n");
    assert!(busy.reply().starts_with("250 2.0.0"));
    let status = s.stop_wait();
    assert!(status.success(), "{status:?}");
    let mail = s.all_mail();
    assert_eq!(mail.len(), 1, "{:#?}", s.log.lock().unwrap());
    assert!(String::from_utf8_lossy(&mail[0]).contains("first half\r\nsecond half\r\n"));
}
