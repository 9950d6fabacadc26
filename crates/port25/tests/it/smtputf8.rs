//! Issue 13 item 25: SMTPUTF8 (RFC 6531) is passed on. A message that
//! needs it (a non-ASCII address, or UTF-8 header fields of a message that
//! arrived with SMTPUTF8) goes out with `SMTPUTF8` on MAIL FROM to an MX or
//! LMTP server that offers it (Python's aiosmtpd, which records what it
//! got), and fails with 5.6.7 where the next hop does not offer it.

use crate::harness::*;
use crate::outbound::*;
use crate::scripted::{Script, Scripted};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// aiosmtpd on `addr` (SMTP) or on a Unix socket (LMTP), with SMTPUTF8
/// offered or not; every message is written to `dir` as a JSON line
/// (mail_from, mail_options, rcpt_tos, content).
struct Aiosmtpd {
    child: Child,
    log: PathBuf,
}

const AIOSMTPD: &str = r#"
import asyncio, json, sys
from aiosmtpd.smtp import SMTP
from aiosmtpd.lmtp import LMTP
kind, where, utf8, log = sys.argv[1], sys.argv[2], sys.argv[3] == "yes", sys.argv[4]
class Handler:
    async def handle_DATA(self, server, session, envelope):
        with open(log, "a") as f:
            f.write(json.dumps({"mail_from": envelope.mail_from, "mail_options": envelope.mail_options,
                                "rcpt_tos": envelope.rcpt_tos, "content": envelope.original_content.decode("utf-8", "replace")}) + "\n")
        return "250 2.0.0 taken"
async def main():
    loop = asyncio.get_running_loop()
    if kind == "lmtp":
        await loop.create_unix_server(lambda: LMTP(Handler(), enable_SMTPUTF8=utf8), where)
    else:
        host, port = where.rsplit(":", 1)
        await loop.create_server(lambda: SMTP(Handler(), enable_SMTPUTF8=utf8, decode_data=False), host, int(port))
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"#;

impl Aiosmtpd {
    fn start(kind: &str, at: &str, utf8: bool, dir: &Path) -> Aiosmtpd {
        let log = dir.join(format!("{kind}-{}.jsonl", if utf8 { "utf8" } else { "ascii" }));
        let args = [kind.as_ref(), at.as_ref(), std::ffi::OsStr::new(if utf8 { "yes" } else { "no" }), log.as_os_str()];
        let child = python_peer(AIOSMTPD, &args, "aiosmtpd: pip install aiosmtpd");
        Aiosmtpd { child, log }
    }

    fn messages(&self, n: usize) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let got: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            if got.len() >= n || start.elapsed() > WAIT {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Aiosmtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Python's smtplib sends `msg` from `from` to `to` with SMTPUTF8; the reply code.
fn smtplib_utf8(addr: SocketAddr, from: &str, to: &str, msg: &str) -> String {
    let script = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("laptop.example")
try:
    s.sendmail(sys.argv[2], [sys.argv[3]], sys.argv[4].encode("utf-8"), mail_options=["SMTPUTF8"])
    print(250)
except smtplib.SMTPResponseException as e:
    print(e.smtp_code, e.smtp_error)
except smtplib.SMTPRecipientsRefused as e:
    print(e.recipients)
s.quit()
"#;
    let out = Command::new("python3").args(["-c", script, &addr.port().to_string(), from, to, msg]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn outbound_passes_smtputf8_to_an_mx_that_offers_it() {
    let (mx, dns) = one_mx(64, "utf8.example");
    let dir = tempfile::tempdir().unwrap();
    let remote = Aiosmtpd::start("smtp", &mx.to_string(), true, dir.path());
    let a = sender(&dns, mx.port(), "");
    // A non-ASCII recipient; then an ASCII envelope with a UTF-8 Subject.
    let said = smtplib_utf8(
        a.addr(),
        "alice@example.net",
        "\u{e9}lise@utf8.example",
        "From: alice@example.net\r\nSubject: 1\r\n\r\nhi\r\n",
    );
    assert_eq!(said, "250");
    let said = smtplib_utf8(
        a.addr(),
        "alice@example.net",
        "bob@utf8.example",
        "From: alice@example.net\r\nSubject: caf\u{e9}\r\n\r\nhi\r\n",
    );
    assert_eq!(said, "250");
    let got = remote.messages(2);
    assert_eq!(got.len(), 2, "{:?}", a.events("port25.outbound.bounced"));
    for m in &got {
        let opts: Vec<&str> = m["mail_options"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
        assert!(opts.iter().any(|o| o.eq_ignore_ascii_case("SMTPUTF8")), "{m}");
    }
    let rcpts: Vec<&str> =
        got.iter().flat_map(|m| m["rcpt_tos"].as_array().unwrap().iter().map(|r| r.as_str().unwrap())).collect();
    assert!(rcpts.contains(&"\u{e9}lise@utf8.example") && rcpts.contains(&"bob@utf8.example"), "{rcpts:?}");
    assert!(got.iter().any(|m| m["content"].as_str().unwrap().contains("Subject: caf\u{e9}")), "{got:?}");
}

#[test]
fn outbound_bounces_5_6_7_where_the_mx_lacks_smtputf8_and_sends_ascii_mail_there_as_before() {
    let (mx, dns) = one_mx(65, "old.example");
    let remote = Scripted::start(mx, Script { ehlo: vec!["8BITMIME", "PIPELINING"], ..Script::default() });
    let a = sender(&dns, mx.port(), "");
    assert_eq!(
        smtplib_utf8(
            a.addr(),
            "alice@example.net",
            "\u{e9}lise@old.example",
            "From: alice@example.net\r\nSubject: x\r\n\r\nhi\r\n"
        ),
        "250"
    );
    let bounced = wait_events(&a, "port25.outbound.bounced", "to", "lise@old.example", 1);
    let reply = bounced[0]["reply"].as_str().unwrap();
    assert!(reply.starts_with("550 5.6.7 ") && reply.contains("SMTPUTF8"), "{reply}");
    assert!(a.events("port25.outbound.deferred").is_empty(), "a permanent failure, not retried");
    // Plain mail to the same MX still goes, without SMTPUTF8.
    submit(&a, &["bob@old.example"], "ascii");
    wait_events(&a, "port25.outbound.delivered", "to", "bob@old.example", 1);
    let commands: Vec<String> = remote.conns().iter().flat_map(|c| c.commands.clone()).collect();
    let mails: Vec<&String> = commands.iter().filter(|c| c.starts_with("MAIL")).collect();
    assert_eq!(mails.len(), 1, "only the ASCII message was sent: {commands:?}");
    assert!(!mails[0].contains("SMTPUTF8"), "{mails:?}");
}

fn lmtp_mx(sock: &Path) -> Server {
    let mx = format!("domains = [\"example.net\"]\n[delivery]\nmethod = \"lmtp\"\nlmtp = \"unix:{}\"", sock.display());
    Server::start(&mx, MX_LISTENER)
}

#[test]
fn lmtp_passes_smtputf8_when_offered_and_fails_5_6_7_when_not() {
    let dir = tempfile::tempdir().unwrap();
    for utf8 in [true, false] {
        let sock = dir.path().join(format!("lmtp-{utf8}.sock"));
        let lmtpd = Aiosmtpd::start("lmtp", sock.to_str().unwrap(), utf8, dir.path());
        let s = lmtp_mx(&sock);
        let said = smtplib_utf8(
            s.addr(),
            "\u{e9}lise@remote.example",
            "alice@example.net",
            "From: \u{e9}lise@remote.example\r\nSubject: caf\u{e9}\r\n\r\nhi\r\n",
        );
        assert_eq!(said, "250");
        if utf8 {
            let got = lmtpd.messages(1);
            assert_eq!(got.len(), 1, "{:?}", s.events("port25.delivery.failed"));
            assert_eq!(got[0]["mail_from"], "\u{e9}lise@remote.example");
            assert!(got[0]["mail_options"].as_array().unwrap().iter().any(|o| o == "SMTPUTF8"), "{:?}", got[0]);
        } else {
            let failed =
                s.wait_event("port25.delivery.failed", Duration::from_secs(20)).expect("port25.delivery.failed");
            assert!(failed.to_string().contains("5.6.7"), "{failed}");
            assert!(lmtpd.messages(0).is_empty(), "nothing was given to the LMTP server");
        }
    }
}
