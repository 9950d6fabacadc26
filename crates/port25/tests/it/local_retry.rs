//! Local delivery when one mailbox cannot take mail (issue 13, item 9): its
//! retries must not hold back anybody else, and a recipient still deferred
//! at the end of its lifetime fails for good through the DSN path.
//!
//! The stuck mailbox is a Maildir whose directory is a regular file: no
//! write into it can succeed, for root too (tests run as root, which file
//! modes would not stop).

use crate::harness::*;
use std::time::{Duration, Instant};

pub(crate) const SUBMISSION: &str =
    "[[listener]]\nname = \"plain\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"none\"\nplaintext_auth = true\n";

fn server(delivery: &str, listeners: &str) -> Server {
    let mx = format!(
        "domains = [\"example.net\"]\nrecipients = [\"stuck@example.net\", \"alice@example.net\", \"bob@example.net\", \"carol@example.net\"]\n[delivery]\n{delivery}"
    );
    let s = Server::start(&mx, listeners);
    // The mailbox "stuck" cannot be created: a file is where its directory goes.
    let domain = s.data().join("mail").join("example.net");
    std::fs::create_dir_all(&domain).unwrap();
    std::fs::write(domain.join("stuck"), b"not a directory").unwrap();
    s
}

fn deferred_for(s: &Server, rcpt: &str) -> usize {
    s.events("port25.delivery.deferred").iter().filter(|e| e["to"] == rcpt).count()
}

fn wait_until(what: &str, wait: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < wait, "{what} within {wait:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn one_deferring_mailbox_does_not_hold_back_anyone_else() {
    let s = server("first_retry_secs = 1\nmax_retry_secs = 2\n", MX_LISTENER);
    // More messages for the stuck mailbox than there are delivery slots,
    // one connection (so one batch) each: every slot once held a batch
    // that defers.
    for i in 0..8 {
        let mut c = Client::open(s.addr());
        c.cmd("EHLO client.example");
        assert_eq!(
            code(&c.send_mail("s@remote.example", &["stuck@example.net"], &format!("Subject: stuck {i}\r\n\r\nx"))),
            250
        );
        c.cmd("QUIT");
    }
    wait_until("8 deferrals of stuck@", Duration::from_secs(15), || deferred_for(&s, "stuck@example.net") >= 8);

    // Now mail for everyone else arrives, and is delivered promptly.
    let start = Instant::now();
    for i in 0..20 {
        let mut c = Client::open(s.addr());
        c.cmd("EHLO client.example");
        assert_eq!(
            code(&c.send_mail("s@remote.example", &["alice@example.net"], &format!("Subject: a{i}\r\n\r\nx"))),
            250
        );
        assert_eq!(
            code(&c.send_mail(
                "s@remote.example",
                &["bob@example.net", "stuck@example.net"],
                &format!("Subject: b{i}\r\n\r\nx")
            )),
            250
        );
        c.cmd("QUIT");
    }
    assert_eq!(
        s.wait_for_mail("example.net", "alice", 20, Duration::from_secs(15)).len(),
        20,
        "alice's mail waited behind stuck@"
    );
    assert_eq!(
        s.wait_for_mail("example.net", "bob", 20, Duration::from_secs(15)).len(),
        20,
        "bob's mail waited behind stuck@"
    );
    let took = start.elapsed();
    assert!(took < Duration::from_secs(15), "{took:?}");

    // stuck@ is still retried (with growing waits), not given up on ...
    let first = s.events("port25.delivery.deferred").into_iter().find(|e| e["to"] == "stuck@example.net").unwrap();
    wait_until("a retry of the first stuck message", Duration::from_secs(10), || {
        s.events("port25.delivery.deferred").iter().filter(|e| e["id"] == first["id"]).count() >= 2
    });
    assert!(s.events("port25.delivery.failed").is_empty(), "{:?}", s.events("port25.delivery.failed"));
    // ... and gets everything once its mailbox can be written.
    std::fs::remove_file(s.data().join("mail/example.net/stuck")).unwrap();
    assert_eq!(s.wait_for_mail("example.net", "stuck", 28, Duration::from_secs(20)).len(), 28);
    wait_until("an empty spool", Duration::from_secs(10), || {
        std::fs::read_dir(s.data().join("spool/batches")).unwrap().count() == 0
    });
}

#[test]
fn a_recipient_deferred_past_its_lifetime_fails_for_good_and_the_sender_is_told() {
    let s = server(
        "first_retry_secs = 1\nmax_retry_secs = 1\nmax_lifetime_secs = 3\n",
        &format!("{MX_LISTENER}{SUBMISSION}"),
    );
    let users = std::process::Command::new(BIN)
        .args(["users", "add", "carol@example.net", "--config"])
        .arg(s.dir.path().join("port25.toml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut users.stdin.as_ref().unwrap(), b"carol pw\n").unwrap();
    assert!(users.wait_with_output().unwrap().status.success());

    let plain = s.addrs.iter().find(|(n, _)| n == "plain").unwrap().1;
    let mut c = Client::open(plain);
    c.cmd("EHLO laptop.example");
    // AUTH PLAIN \0carol@example.net\0carol pw
    assert_eq!(code(&c.cmd("AUTH PLAIN AGNhcm9sQGV4YW1wbGUubmV0AGNhcm9sIHB3")), 235);
    let r = c.send_mail(
        "carol@example.net",
        &["alice@example.net", "stuck@example.net"],
        "From: carol@example.net\r\nSubject: to a full mailbox\r\n\r\nhello",
    );
    assert_eq!(code(&r), 250, "{r}");
    c.cmd("QUIT");

    assert_eq!(s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(10)).len(), 1);
    let failed = s
        .wait_event("port25.delivery.failed", Duration::from_secs(15))
        .expect("stuck@ given up after max_lifetime_secs");
    assert_eq!(failed["to"], "stuck@example.net");
    assert!(failed["reason"].as_str().unwrap().contains("max_lifetime_secs"), "{failed}");
    assert!(deferred_for(&s, "stuck@example.net") >= 1, "deferred before it expired");
    // The DSN reaches the sender (a local mailbox), and the batch is gone.
    let dsn = s.wait_for_mail("example.net", "carol", 1, Duration::from_secs(10));
    assert_eq!(dsn.len(), 1, "no DSN for carol; dsn events: {:?}", s.events("port25.outbound.dsn"));
    let dsn = String::from_utf8_lossy(&dsn[0]);
    assert!(dsn.contains("Final-Recipient: rfc822; stuck@example.net") && dsn.contains("Action: failed"), "{dsn}");
    wait_until("an empty spool", Duration::from_secs(10), || {
        std::fs::read_dir(s.data().join("spool/batches")).unwrap().count() == 0
    });
}

/// aiosmtpd's LMTP server on a Unix socket: every RCPT is accepted, and
/// after DATA "full@" gets 452 4.2.2 (over quota: try later) while each
/// other recipient gets 250 and a line in `dir/delivered/<recipient>`.
fn start_quota_lmtpd(dir: &std::path::Path) -> (std::process::Child, std::path::PathBuf, std::path::PathBuf) {
    let sock = dir.join("lmtp.sock");
    let out = dir.join("delivered");
    std::fs::create_dir_all(&out).unwrap();
    let script = r#"
import asyncio, sys, os
from aiosmtpd.lmtp import LMTP
sock, out = sys.argv[1], sys.argv[2]
class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"
    async def handle_DATA(self, server, session, envelope):
        replies = []
        for r in envelope.rcpt_tos:
            if r.startswith("full@"):
                replies.append("452 4.2.2 Mailbox full")
            else:
                with open(os.path.join(out, r), "ab") as f:
                    f.write(b"one message\n")
                replies.append("250 2.0.0 delivered")
        # LMTP: one reply per recipient after the final dot (RFC 2033 4.2).
        return "\r\n".join(replies)
async def main():
    loop = asyncio.get_running_loop()
    await loop.create_unix_server(lambda: LMTP(Handler()), sock)
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"#;
    let lmtpd = python_peer(script, &[sock.as_os_str(), out.as_os_str()], "aiosmtpd LMTP server: pip install aiosmtpd");
    (lmtpd, sock, out)
}

/// The issue's case: a mailbox over quota behind LMTP (452 after DATA,
/// which no RCPT-time check can see) while mail for others arrives.
#[test]
fn an_lmtp_mailbox_over_quota_does_not_hold_back_anyone_else() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lmtpd, sock, out) = start_quota_lmtpd(dir.path());
    let mx = format!(
        "domains = [\"example.net\"]\nrecipients = [\"full@example.net\", \"alice@example.net\"]\n[delivery]\nmethod = \"lmtp\"\nlmtp = \"unix:{}\"\nfirst_retry_secs = 1\nmax_retry_secs = 2\n",
        sock.display()
    );
    let s = Server::start(&mx, MX_LISTENER);
    for i in 0..8 {
        let mut c = Client::open(s.addr());
        c.cmd("EHLO client.example");
        assert_eq!(
            code(&c.send_mail("s@remote.example", &["full@example.net"], &format!("Subject: full {i}\r\n\r\nx"))),
            250
        );
        c.cmd("QUIT");
    }
    wait_until("8 deferrals of full@", Duration::from_secs(15), || deferred_for(&s, "full@example.net") >= 8);
    let reason = s.events("port25.delivery.deferred")[0]["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("452 4.2.2 Mailbox full"), "{reason}");

    let mut c = Client::open(s.addr());
    c.cmd("EHLO client.example");
    for i in 0..20 {
        assert_eq!(
            code(&c.send_mail(
                "s@remote.example",
                &["alice@example.net", "full@example.net"],
                &format!("Subject: a{i}\r\n\r\nx")
            )),
            250
        );
    }
    c.cmd("QUIT");
    let delivered = || std::fs::read_to_string(out.join("alice@example.net")).map(|t| t.lines().count()).unwrap_or(0);
    wait_until("20 messages for alice through LMTP", Duration::from_secs(15), || delivered() >= 20);
    assert_eq!(delivered(), 20, "each message once");
    assert!(!out.join("full@example.net").exists());
    assert!(
        s.events("port25.delivery.failed").is_empty(),
        "deferred, not given up: {:?}",
        s.events("port25.delivery.failed")
    );
    let _ = lmtpd.kill();
    let _ = lmtpd.wait();
}
