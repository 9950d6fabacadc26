//! Reloading certificates without a restart (issue 15, section 2): the
//! certificate files are replaced and `port25 reload` sends SIGHUP; a new
//! STARTTLS handshake (Python's ssl) sees the new certificate while a
//! session opened before finishes its message; a broken certificate or a
//! broken configuration on reload leaves the server serving what it had.

use crate::harness::{base_config, Server, BIN};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

const PEER: &str = r#"
import hashlib, smtplib, ssl, sys
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def session(name):
    s = smtplib.SMTP(host, port, timeout=30)
    s.ehlo(name)
    s.starttls(context=ctx)
    s.ehlo(name)
    return s, hashlib.sha256(s.sock.getpeercert(binary_form=True)).hexdigest()
def send(s, subject):
    s.mail("bob@remote.example")
    s.rcpt("alice@example.net")
    return s.data(("Subject: %s\r\n\r\nbody\r\n" % subject).encode())[0]
if mode == "probe":
    s, fp = session("probe.example")
    print("cert", fp, flush=True)
    print("data", send(s, "probe"), flush=True)
    s.quit()
else:
    old, fp = session("old.example")
    old.mail("bob@remote.example")
    old.rcpt("alice@example.net")
    print("cert", fp, flush=True)
    sys.stdin.readline()
    new, fp = session("new.example")
    print("cert", fp, flush=True)
    new.quit()
    print("data", old.data(b"Subject: across a reload\r\n\r\nstarted before the certificate changed\r\n")[0], flush=True)
    old.quit()
"#;

/// A Python TLS peer the test steps through: it writes "WHAT value"
/// lines and waits on its standard input (acme.rs drives its own script).
pub(crate) struct Peer {
    child: Child,
    pub(crate) stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

impl Peer {
    fn start(s: &Server, mode: &str) -> Peer {
        Peer::run(PEER, &["127.0.0.1", &s.addr().port().to_string(), mode])
    }

    /// `python3 -c script args...`
    pub(crate) fn run(script: &str, args: &[&str]) -> Peer {
        let mut child = Command::new("python3")
            .args(["-c", script])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let (stdin, out) = (child.stdin.take().unwrap(), BufReader::new(child.stdout.take().unwrap()));
        Peer { child, stdin, out }
    }

    pub(crate) fn line(&mut self, what: &str) -> String {
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        l.strip_prefix(&format!("{what} "))
            .unwrap_or_else(|| panic!("expected {what:?} from the Python peer, got {l:?}"))
            .trim()
            .to_owned()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new self-signed pair written to cert.pem / key.pem; its SHA-256.
fn write_pair(dir: &Path) -> String {
    let c = rcgen::generate_simple_self_signed(vec!["mx.test.example".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), c.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), c.key_pair.serialize_pem()).unwrap();
    hex(&Sha256::digest(c.cert.der()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn reload(s: &Server) {
    let out = Command::new(BIN).args(["reload", "--config"]).arg(s.dir.path().join("port25.toml")).output().unwrap();
    assert!(
        out.status.success(),
        "port25 reload: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_reload_serves_the_new_certificate_to_new_sessions_and_lets_old_ones_finish() {
    let first = std::cell::RefCell::new(String::new());
    let s = Server::start_with("serve", |dir| {
        *first.borrow_mut() = write_pair(dir);
        let tls = format!("[tls]\ncertificate = \"{d}/cert.pem\"\nprivate_key = \"{d}/key.pem\"\n", d = dir.display());
        base_config(
            dir,
            "domains = [\"example.net\"]\nrecipients = [\"alice@example.net\"]",
            &format!("{tls}[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\n"),
        )
    });
    let first = first.into_inner();
    let dir = s.dir.path().to_owned();

    // A session in its transaction on the old certificate.
    let mut old = Peer::start(&s, "across");
    assert_eq!(old.line("cert"), first);

    let second = write_pair(&dir);
    reload(&s);
    let done = s.wait_event("port25.server.reloaded", Duration::from_secs(10)).expect("reloaded event");
    assert_eq!(done["certificate"], dir.join("cert.pem").display().to_string());
    writeln!(old.stdin).unwrap();
    assert_eq!(old.line("cert"), second, "a handshake after the reload gets the new certificate");
    assert_eq!(old.line("data"), "250", "the session opened before the reload finishes its message");
    assert_eq!(s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(10)).len(), 1);

    // A certificate file that is not PEM: refused, named, the server goes on with the second pair.
    std::fs::write(dir.join("cert.pem"), "not a certificate\n").unwrap();
    reload(&s);
    let failed = s.wait_event("port25.server.reload_failed", Duration::from_secs(10)).expect("reload_failed event");
    assert!(failed["error"].as_str().unwrap().contains(&dir.join("cert.pem").display().to_string()), "{failed}");
    let mut probe = Peer::start(&s, "probe");
    assert_eq!(probe.line("cert"), second);
    assert_eq!(probe.line("data"), "250");

    // A configuration that does not parse: refused with its line, still serving.
    let config = dir.join("port25.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n[mx\n")).unwrap();
    // (kill -HUP directly: `port25 reload` itself refuses to send for a file that does not parse)
    let refused = Command::new(BIN).args(["reload", "--config"]).arg(&config).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    s.signal("-HUP");
    let failed = s.wait_events("port25.server.reload_failed", 2, Duration::from_secs(10));
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed[1]["error"].as_str().unwrap().contains("port25.toml:"), "{}", failed[1]);
    let mut probe = Peer::start(&s, "probe");
    assert_eq!(probe.line("cert"), second);
    assert_eq!(probe.line("data"), "250");
    assert_eq!(s.wait_for_mail("example.net", "alice", 3, Duration::from_secs(10)).len(), 3);
}
