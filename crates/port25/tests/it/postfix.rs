//! Postfix as a real remote MTA relaying into port25's MX.

use crate::harness::*;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

pub(crate) struct Postfix {
    pub(crate) dir: tempfile::TempDir,
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(self.dir.path())
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A throwaway Postfix instance listening on `port` that sends every mail
/// for example.net to port25 at `mx`, with opportunistic TLS.
pub(crate) fn start_postfix(port: u16, mx: std::net::SocketAddr) -> Postfix {
    start_postfix_with(port, mx, "")
}

/// [`start_postfix`] with more main.cf lines (milters: tests/it/mx_auth.rs).
pub(crate) fn start_postfix_with(port: u16, mx: std::net::SocketAddr, extra_main_cf: &str) -> Postfix {
    require("postfix");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Postfix's daemons run as the postfix user: they must reach the directory.
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for sub in ["queue", "data"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let main_cf = format!(
        "compatibility_level = 3.6\nconfig_directory = {d}\nqueue_directory = {q}\ndata_directory = {data}\nmail_owner = postfix\n\
         inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmyhostname = relay.remote.example\nmydomain = remote.example\nmyorigin = remote.example\n\
         mydestination =\nalias_maps =\nalias_database =\nlocal_recipient_maps =\nmynetworks = 127.0.0.0/8\nsmtpd_relay_restrictions = permit_mynetworks, reject\n\
         transport_maps = inline:{{ example.net=smtp:[127.0.0.1]:{mxport} }}\nrelayhost =\n\
         smtp_tls_security_level = may\nsmtp_tls_loglevel = 1\nsmtp_dns_support_level = disabled\n\
         maillog_file = {d}/maillog\nmaillog_file_prefixes = {d}\nbiff = no\n{extra_main_cf}",
        q = d.join("queue").display(),
        data = d.join("data").display(),
        mxport = mx.port(),
        d = d.display(),
    );
    std::fs::write(d.join("main.cf"), main_cf).unwrap();
    // Nothing chrooted (a chroot would need copies of /etc files); smtpd
    // only on the test's port.
    let services = [
        "pickup unix n - n 60 1 pickup",
        "cleanup unix n - n - 0 cleanup",
        "qmgr unix n - n 300 1 qmgr",
        "rewrite unix - - n - - trivial-rewrite",
        "bounce unix - - n - 0 bounce",
        "defer unix - - n - 0 bounce",
        "trace unix - - n - 0 bounce",
        "verify unix - - n - 1 verify",
        "flush unix n - n 1000? 0 flush",
        "proxymap unix - - n - - proxymap",
        "smtp unix - - n - - smtp",
        "relay unix - - n - - smtp",
        "showq unix n - n - - showq",
        "error unix - - n - - error",
        "retry unix - - n - - error",
        "discard unix - - n - - discard",
        "anvil unix - - n - 1 anvil",
        "scache unix - - n - 1 scache",
        "tlsmgr unix - - n 1000? 1 tlsmgr",
        "postlog unix-dgram n - n - 1 postlogd",
    ];
    let master = format!("127.0.0.1:{port} inet n - n - - smtpd\n{}\n", services.join("\n"));
    std::fs::write(d.join("master.cf"), master).unwrap();
    let _ = Command::new("chown").arg("postfix").arg(d.join("data")).status();
    // `postfix check` creates the queue tree with its owners.
    let check_log = std::fs::File::create(d.join("check.log")).unwrap();
    let _ = Command::new("postfix")
        .arg("-c")
        .arg(d)
        .arg("check")
        .stdin(Stdio::null())
        .stdout(check_log.try_clone().unwrap())
        .stderr(check_log)
        .status();
    // The master daemon keeps any pipe it inherits open: give it a file.
    let out = std::fs::File::create(d.join("start.log")).unwrap();
    let status = Command::new("postfix")
        .arg("-c")
        .arg(d)
        .arg("start")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .unwrap();
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
    assert!(
        status.success(),
        "postfix start failed: {}\npostfix check said: {}\nmaillog: {}",
        read("start.log"),
        read("check.log"),
        read("maillog")
    );
    Postfix { dir }
}

/// A session with Postfix's smtpd on `port` once it greets (220).
pub(crate) fn wait_smtpd(port: u16) -> Client {
    let start = std::time::Instant::now();
    loop {
        if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut c = Client { stream: stream.try_clone().unwrap(), reader: std::io::BufReader::new(stream) };
            if c.reply().starts_with("220") {
                return c;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(20), "postfix did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn postfix_relays_into_port25_over_starttls() {
    let s = Server::mx();
    let port = free_port();
    let pf = start_postfix(port, s.addr());
    let mut c = wait_smtpd(port);
    c.cmd("EHLO client.remote.example");
    for i in 0..3 {
        let r = c.send_mail(
            "someone@remote.example",
            &["alice@example.net"],
            &format!("From: someone@remote.example\r\nSubject: via postfix {i}\r\n\r\nrelayed"),
        );
        assert!(r.starts_with("250"), "postfix accepted: {r}");
    }
    c.cmd("QUIT");
    let mail = s.wait_for_mail("example.net", "alice", 3, Duration::from_secs(60));
    let log = std::fs::read_to_string(pf.dir.path().join("maillog")).unwrap_or_default();
    assert_eq!(mail.len(), 3, "postfix log:\n{log}");
    let text = String::from_utf8_lossy(&mail[0]);
    // Postfix's own Received line, then ours naming Postfix and TLS.
    assert!(text.contains("Received: from relay.remote.example ([127.0.0.1])"), "{text}");
    assert!(text.contains("with ESMTPS id"), "Postfix used STARTTLS: {text}");
    assert!(text.contains("by relay.remote.example (Postfix)"), "{text}");
    assert!(log.contains("status=sent") && log.contains("250 2.0.0 Ok: queued as"), "{log}");
    assert!(log.contains("TLS connection established"), "{log}");
}
