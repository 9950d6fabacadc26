//! LMTP delivery to a real LMTP server (Python's aiosmtpd, installed by
//! .ci/install-deps), including a per-recipient failure.

use crate::harness::*;

use std::time::Duration;

/// aiosmtpd's LMTP server on a Unix socket in `dir`: "full@" gets 452
/// (try later), "gone@" 550 5.1.1 (never), everyone else a file named by
/// the recipient in `dir/delivered`, starting with "MAIL FROM <sender>".
/// The first RCPT for "full@" and "gone@" (the MX's verification probe)
/// is accepted: the mailbox filled up or was deleted after the MX checked.
fn start_lmtpd(dir: &std::path::Path) -> (std::process::Child, std::path::PathBuf, std::path::PathBuf) {
    let sock = dir.join("lmtp.sock");
    let out_dir = dir.join("delivered");
    std::fs::create_dir_all(&out_dir).unwrap();
    let script = r#"
import asyncio, sys, os
from aiosmtpd.lmtp import LMTP
sock, out = sys.argv[1], sys.argv[2]
probed = set()
class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0] in ("full", "gone") and address not in probed:
            probed.add(address)
            return "250 2.1.5 OK"
        if address.startswith("full@"):
            return "452 4.2.2 Mailbox full"
        if address.startswith("gone@"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"
    async def handle_DATA(self, server, session, envelope):
        for r in envelope.rcpt_tos:
            with open(os.path.join(out, r), "ab") as f:
                f.write(b"MAIL FROM " + envelope.mail_from.encode() + b"\n" + envelope.original_content)
        return "250 2.0.0 delivered"
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_unix_server(lambda: LMTP(Handler()), sock)
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"#;
    let lmtpd =
        python_peer(script, &[sock.as_os_str(), out_dir.as_os_str()], "aiosmtpd LMTP server: pip install aiosmtpd");
    (lmtpd, sock, out_dir)
}

/// An MX for example.net delivering over LMTP to `sock`, and a client that
/// has said EHLO to it.
fn lmtp_mx(sock: &std::path::Path) -> (Server, Client) {
    // Bounces after acceptance to an unauthenticated sender are what this
    // file tests (tests/it/mx_recipients.rs tests the default, none).
    let mx = format!(
        "domains = [\"example.net\"]\nbounce_after_accept = true\n[delivery]\nmethod = \"lmtp\"\nlmtp = \"unix:{}\"",
        sock.display()
    );
    let s = Server::start(&mx, MX_LISTENER);
    let mut c = Client::open(s.addr());
    c.cmd("EHLO client.example");
    (s, c)
}

#[test]
fn lmtp_delivers_per_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lmtpd, sock, out_dir) = start_lmtpd(dir.path());

    let (s, mut c) = lmtp_mx(&sock);
    let r = c.send_mail(
        "s@remote.example",
        &["alice@example.net", "full@example.net"],
        "Subject: lmtp\r\n\r\n..dot\r\nbody",
    );
    assert!(r.starts_with("250"), "{r}");
    let start = std::time::Instant::now();
    while !out_dir.join("alice@example.net").exists() {
        assert!(start.elapsed() < Duration::from_secs(15), "LMTP delivery did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let got = std::fs::read_to_string(out_dir.join("alice@example.net")).unwrap();
    assert!(got.starts_with("MAIL FROM s@remote.example\n"), "{got}");
    assert!(got.contains("Subject: lmtp\r\n\r\n.dot\r\nbody\r\n"), "dot-stuffing round trip: {got:?}");
    // The full mailbox is deferred, not lost and not bounced.
    let deferred = s.wait_event("port25.delivery.deferred", Duration::from_secs(10)).expect("deferred event");
    assert_eq!(deferred["to"], "full@example.net");
    assert!(deferred["reason"].as_str().unwrap().contains("452 4.2.2 Mailbox full"));
    assert!(!out_dir.join("full@example.net").exists());
    let _ = lmtpd.kill();
    let _ = lmtpd.wait();
}

/// A recipient the mailbox server refuses for good after the MX said 250
/// (RFC 5321 §6.1): the sender gets a DSN (here a local sender, so by
/// local delivery through the same LMTP server), the other recipient its
/// copy; a null sender gets no DSN.
#[test]
fn lmtp_permanent_failure_after_acceptance_bounces_to_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lmtpd, sock, out_dir) = start_lmtpd(dir.path());
    let (s, mut c) = lmtp_mx(&sock);
    let r = c.send_mail(
        "carol@example.net",
        &["alice@example.net", "gone@example.net"],
        "Subject: to a gone user\r\n\r\nhello",
    );
    assert!(r.starts_with("250"), "{r}");
    let dsn_file = out_dir.join("carol@example.net");
    let start = std::time::Instant::now();
    while !dsn_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no DSN reached carol; events: {:?}",
            s.events("port25.outbound.dsn")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let dsn = std::fs::read_to_string(&dsn_file).unwrap();
    for want in [
        "MAIL FROM <>\n",
        "Content-Type: multipart/report; report-type=delivery-status",
        "Final-Recipient: rfc822; gone@example.net",
        "Action: failed",
        "Status: 5.1.1",
        "550 5.1.1 No such user here",
        "Subject: to a gone user",
    ] {
        assert!(dsn.contains(want), "DSN lacks {want:?}:\n{dsn}");
    }
    assert!(!dsn.contains("Final-Recipient: rfc822; alice@example.net"), "alice was delivered, not bounced");
    assert!(std::fs::read_to_string(out_dir.join("alice@example.net")).unwrap().contains("Subject: to a gone user"));
    let failed = s.wait_event("port25.delivery.failed", Duration::from_secs(5)).expect("failed event");
    assert_eq!(failed["to"], "gone@example.net");

    // A bounce to a gone user (null sender): finished, no DSN of a DSN.
    let r = c.send_mail("", &["gone@example.net"], "Subject: a bounce\r\n\r\nundeliverable");
    assert!(r.starts_with("250"), "{r}");
    let start = std::time::Instant::now();
    while !s.events("port25.outbound.dsn").iter().any(|e| e["kind"] == "none (null sender)") {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no null-sender decision: {:?}",
            s.events("port25.outbound.dsn")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The first DSN is logged after it is stored, so not certainly before
    // the decision waited for above: wait for it too.
    let failed_dsns = |all: &[serde_json::Value]| all.iter().filter(|e| e["kind"] == "failed").count();
    let dsn = s.wait_events_until("port25.outbound.dsn", Duration::from_secs(10), |all| failed_dsns(all) >= 1);
    assert_eq!(failed_dsns(&dsn), 1, "one DSN in all: {dsn:?}");
    let _ = lmtpd.kill();
    let _ = lmtpd.wait();
}
