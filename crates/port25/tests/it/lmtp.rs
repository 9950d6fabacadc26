//! LMTP delivery to a real LMTP server (Python's aiosmtpd, installed by
//! .ci/install-deps), including a per-recipient failure.

use crate::harness::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn lmtp_delivers_per_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("lmtp.sock");
    let out_dir = dir.path().join("delivered");
    std::fs::create_dir_all(&out_dir).unwrap();
    let script = r#"
import asyncio, sys, os
from aiosmtpd.lmtp import LMTP
sock, out = sys.argv[1], sys.argv[2]
class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("full@"):
            return "452 4.2.2 Mailbox full"
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
    let mut lmtpd = Command::new("python3").arg("-c").arg(script).arg(&sock).arg(&out_dir).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(lmtpd.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "ready", "aiosmtpd LMTP server did not start (pip install aiosmtpd)");

    let mx = format!("domains = [\"example.net\"]\n[delivery]\nmethod = \"lmtp\"\nlmtp = \"unix:{}\"", sock.display());
    let s = Server::start(&mx, MX_LISTENER);
    let mut c = Client::open(s.addr());
    c.cmd("EHLO client.example");
    let r = c.send_mail("s@remote.example", &["alice@example.net", "full@example.net"], "Subject: lmtp\r\n\r\n..dot\r\nbody");
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
