//! ACME (issue 15, section 3) against Pebble, the ACME test CA (Debian
//! package `pebble`): each test starts its own Pebble on free ports, with
//! its own HTTPS certificate (a test CA made here, given to port25 as
//! `ca_file`) and the test DNS server (tests/it/dns.rs) resolving the
//! domain to 127.0.0.1, so Pebble's validation authority reaches port25's
//! HTTP-01 (public [http] listener) and TLS-ALPN-01 (implicit-TLS
//! listener) ports. A TLS client (Python's ssl, verifying with Pebble's
//! root and the domain) then sees a certificate issued by Pebble's
//! intermediate for the domain.

use crate::directory::free_port;
use crate::dns::{DnsServer, Rr};
use crate::harness::{require, Server};
use crate::reload::Peer;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DOMAIN: &str = "mail.acme.test";

struct Pebble {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    management: u16,
    /// The test CA Pebble's HTTPS certificate is from (port25's ca_file).
    ca: PathBuf,
}

impl Pebble {
    /// Pebble validating on `http_port` (HTTP-01) and `tls_port`
    /// (TLS-ALPN-01), issuing certificates valid for `validity` seconds.
    fn start(dns: &DnsServer, http_port: u16, tls_port: u16, validity: u64) -> Pebble {
        let bin = require("pebble");
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "acme test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        let (port, management) = (free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": validity,
        }});
        std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();
        let log = std::fs::File::create(dir.path().join("pebble.log")).unwrap();
        let child = Command::new(bin)
            .arg("-config")
            .arg(dir.path().join("pebble.json"))
            .arg("-dnsserver")
            .arg(dns.addr.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start pebble");
        let p = Pebble { child: Some(child), dir, port, management, ca };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", management)).is_err()
        {
            assert!(start.elapsed() < Duration::from_secs(20), "pebble did not listen: {}", p.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        p
    }

    fn directory(&self) -> String {
        format!("https://localhost:{}/dir", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// Pebble's root and first intermediate (PEM), from its management API.
    fn issuers(&self) -> (PathBuf, PathBuf) {
        let fetch = |what: &str| {
            let out = Command::new(require("curl"))
                .args(["-sf", "--cacert"])
                .arg(&self.ca)
                .arg(format!("https://localhost:{}/{what}/0", self.management))
                .output()
                .unwrap();
            assert!(out.status.success(), "pebble /{what}/0: {}", String::from_utf8_lossy(&out.stderr));
            let path = self.dir.path().join(format!("{what}.pem"));
            std::fs::write(&path, out.stdout).unwrap();
            path
        };
        (fetch("roots"), fetch("intermediates"))
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}

fn dns() -> DnsServer {
    let dns = DnsServer::start();
    dns.add(DOMAIN, Rr::A(Ipv4Addr::LOCALHOST));
    dns
}

/// port25 with `[tls.acme]` on `directory` (`extra` appended to the
/// table), the public HTTP listener on `http_port`, an MX with STARTTLS
/// and an implicit-TLS submission listener on `tls_port`.
fn port25(directory: &str, ca: &Path, http_port: u16, tls_port: u16, extra: &str) -> Server {
    Server::start_with("serve", |dir| {
        format!(
            "hostname = \"{DOMAIN}\"\ndata_dir = \"{}\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n\
             [tls.acme]\ndirectory = \"{directory}\"\ncontact = [\"mailto:postmaster@acme.test\"]\n\
             domains = [\"{DOMAIN}\"]\nca_file = \"{}\"\n{extra}\n\
             [mx]\ndomains = [\"example.net\"]\nrecipients = [\"alice@example.net\"]\n\
             [[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\n\
             [[listener]]\nname = \"submissions\"\naddress = \"127.0.0.1:{tls_port}\"\nservice = \"submission\"\ntls = \"implicit\"\n\
             [http]\naddress = \"127.0.0.1:{http_port}\"\nprivate_address = \"127.0.0.1:{}\"\n",
            dir.join("data").display(),
            ca.display(),
            free_port()
        )
    })
}

const PEER: &str = r#"
import smtplib, socket, ssl, sys
host, port, mode, root, domain = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=root)
def show(sock):
    c = sock.getpeercert()
    issuer = ",".join("%s=%s" % kv for rdn in c["issuer"] for kv in rdn)
    names = ",".join(v for k, v in c.get("subjectAltName", ()) if k == "DNS")
    print("cert", c["serialNumber"], names, issuer, flush=True)
def session(name):
    s = smtplib.SMTP(host, port, timeout=30)
    # SNI and the name verified: the domain, not the address dialled.
    s._host = domain
    s.ehlo(name)
    s.starttls(context=ctx)
    s.ehlo(name)
    return s
if mode == "implicit":
    with socket.create_connection((host, port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname=domain) as tls:
            show(tls)
elif mode == "starttls":
    s = session("probe.example")
    show(s.sock)
    s.quit()
else:
    old = session("old.example")
    show(old.sock)
    old.mail("bob@remote.example")
    old.rcpt("alice@example.net")
    sys.stdin.readline()
    new = session("new.example")
    show(new.sock)
    new.quit()
    print("data", old.data(b"Subject: across a renewal\r\n\r\nstarted before the certificate changed\r\n")[0], flush=True)
    old.quit()
"#;

/// The Python TLS client stepping through PEER (reload.rs's peer runner).
fn peer(port: u16, mode: &str, root: &Path) -> Peer {
    Peer::run(PEER, &["127.0.0.1", &port.to_string(), mode, &root.display().to_string(), DOMAIN])
}

/// (serial, names, issuer) of the certificate a verifying client sees.
fn seen(port: u16, mode: &str, root: &Path) -> (String, String, String) {
    let mut p = peer(port, mode, root);
    let line = p.line("cert");
    let mut words = line.splitn(3, ' ').map(str::to_owned);
    (words.next().unwrap(), words.next().unwrap(), words.next().unwrap_or_default())
}

/// The subject of Pebble's intermediate, as Python prints an issuer.
fn subject(pem: &Path) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import ssl,sys; c=ssl._ssl._test_decode_cert(sys.argv[1]); print(','.join('%s=%s' % kv for rdn in c['subject'] for kv in rdn))",
        ])
        .arg(pem)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn installed(s: &Server, pebble: &Pebble, n: usize) -> Vec<serde_json::Value> {
    let got = s.wait_events("port25.tls.acme.installed", n, Duration::from_secs(90));
    assert!(
        got.len() >= n,
        "no certificate from Pebble; port25 failures: {:?}\npebble log:\n{}",
        s.events("port25.tls.acme.order_failed"),
        pebble.log()
    );
    got
}

/// A serial as Python prints it and as the event has it (hex with colons),
/// compared as numbers.
fn serial(s: &str) -> String {
    s.replace(':', "").trim_start_matches('0').to_ascii_lowercase()
}

fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// (a) HTTP-01: with no certificate stored, port25 gets one from Pebble
/// and serves it on STARTTLS and on implicit TLS; the files are 0600.
#[test]
fn http01_obtains_a_certificate_served_on_starttls_and_implicit_tls() {
    let dns = dns();
    let (http_port, tls_port) = (free_port(), free_port());
    let pebble = Pebble::start(&dns, http_port, tls_port, 90 * 86400);
    let s = port25(&pebble.directory(), &pebble.ca, http_port, tls_port, "challenge = \"http-01\"");
    let got = installed(&s, &pebble, 1);
    let (root, intermediate) = pebble.issuers();
    let issuer = subject(&intermediate);
    assert!(!issuer.is_empty());
    let mx = s.addrs.iter().find(|(n, _)| n == "mx").unwrap().1.port();
    let (sn, names, by) = seen(mx, "starttls", &root);
    assert_eq!((names.as_str(), by.as_str()), (DOMAIN, issuer.as_str()));
    assert_eq!(serial(&sn), serial(got[0]["serial"].as_str().unwrap()));
    let (sn2, names, by) = seen(tls_port, "implicit", &root);
    assert_eq!((sn2, names.as_str(), by.as_str()), (sn.clone(), DOMAIN, issuer.as_str()));
    assert!(!s.events("port25.tls.acme.challenge_served").is_empty());
    let acme = s.data().join("acme");
    assert_eq!(mode_of(&acme), 0o700);
    for f in ["account.json", "cert.pem", "key.pem"] {
        assert_eq!(mode_of(&acme.join(f)), 0o600, "{f}");
    }
}

/// (b) TLS-ALPN-01 on the implicit-TLS listener; an ordinary client of
/// that listener offering another ALPN protocol still gets the server's
/// certificate (acme-tls/1 is answered only when offered).
#[test]
fn tls_alpn01_is_answered_on_the_implicit_tls_listener() {
    let dns = dns();
    let (http_port, tls_port) = (free_port(), free_port());
    let pebble = Pebble::start(&dns, http_port, tls_port, 90 * 86400);
    let s = port25(&pebble.directory(), &pebble.ca, http_port, tls_port, "challenge = \"tls-alpn-01\"");
    installed(&s, &pebble, 1);
    // Logged once the handshake is done, which Pebble may act on first:
    // not certainly before the certificate is installed, so waited for.
    let served = s.wait_event_where("port25.tls.acme.challenge_served", Duration::from_secs(10), |e| {
        e["challenge"] == "tls-alpn-01" && e["domain"] == DOMAIN
    });
    assert!(served.is_some(), "{:?}", s.events("port25.tls.acme.challenge_served"));
    let (root, intermediate) = pebble.issuers();
    let (_, names, by) = seen(tls_port, "implicit", &root);
    assert_eq!((names.as_str(), by.as_str()), (DOMAIN, subject(&intermediate).as_str()));
    // A client offering h2 only: no acme-tls/1 certificate, no refusal.
    let out = Command::new(require("openssl"))
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{tls_port}"),
            "-servername",
            DOMAIN,
            "-alpn",
            "h2",
            "-CAfile",
        ])
        .arg(&root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    // Asking for acme-tls/1 with no challenge open: refused.
    let out = Command::new(require("openssl"))
        .args(["s_client", "-connect", &format!("127.0.0.1:{tls_port}"), "-servername", DOMAIN, "-alpn", "acme-tls/1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("BEGIN CERTIFICATE") && !text.contains("Server certificate"), "{text}");
}

/// (c) Renewal: Pebble's certificates live 40 s and port25 renews with a
/// third left; a new handshake sees the new serial while a session
/// opened on the old certificate finishes its message.
#[test]
fn renewal_swaps_the_certificate_for_new_handshakes_only() {
    let dns = dns();
    let (http_port, tls_port) = (free_port(), free_port());
    let pebble = Pebble::start(&dns, http_port, tls_port, 40);
    let s = port25(&pebble.directory(), &pebble.ca, http_port, tls_port, "");
    let first = installed(&s, &pebble, 1)[0]["serial"].as_str().unwrap().to_owned();
    let (root, _) = pebble.issuers();
    let mx = s.addrs.iter().find(|(n, _)| n == "mx").unwrap().1.port();
    let mut old = peer(mx, "across", &root);
    let before = old.line("cert");
    let got = installed(&s, &pebble, 2);
    let second = got[1]["serial"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let started = s.events("port25.tls.acme.order_started");
    assert_eq!(started[1]["reason"], "renewal", "{started:?}");
    old.stdin.write_all(b"go\n").unwrap();
    let after = old.line("cert");
    let (before, after) = (before.split(' ').next().unwrap(), after.split(' ').next().unwrap());
    assert_eq!(serial(before), serial(&first), "the session opened first saw the first certificate");
    assert_eq!(serial(after), serial(&second), "the new handshake sees the new serial");
    assert_eq!(old.line("data"), "250", "the session opened before the renewal finishes");
}

/// A tiny HTTPS "directory" answering garbage (with the test CA's
/// certificate, so only the answer is wrong).
fn garbage_directory(pebble_dir: &Path, how: &str) -> (Child, u16) {
    let port = free_port();
    let script = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<html>this is not an ACME directory</html>" * 100
        if self.server.endless:
            # No end: 64 MiB and more of garbage, which must not all be read.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"[" * 65536)
            except Exception:
                return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_HEAD = do_GET
    do_POST = do_GET
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
s.endless = sys.argv[4] == "endless"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print("ready", flush=True)
s.serve_forever()
"#;
    let child = crate::harness::python_peer(
        script,
        &[
            port.to_string().as_ref(),
            pebble_dir.join("cert.pem").as_os_str(),
            pebble_dir.join("key.pem").as_os_str(),
            how.as_ref(),
        ],
        "python3",
    );
    (child, port)
}

/// (d) A directory that fails: Pebble stopped after the first
/// certificate (renewal due at once), then a server answering garbage.
/// port25 keeps serving the certificate it has, logs each failure with a
/// doubling delay, and never crashes.
#[test]
fn a_failing_directory_keeps_the_old_certificate_and_backs_off() {
    let dns = dns();
    let (http_port, tls_port) = (free_port(), free_port());
    // Certificates of 120 s renewed with 90 % left: the renewal is due
    // 1 to 12 s after the first one, when Pebble is gone.
    let mut pebble = Pebble::start(&dns, http_port, tls_port, 120);
    let s = port25(
        &pebble.directory(),
        &pebble.ca,
        http_port,
        tls_port,
        "renew_when_left = 0.9\nretry_first_secs = 1\nretry_max_secs = 4",
    );
    let first = installed(&s, &pebble, 1)[0]["serial"].as_str().unwrap().to_owned();
    let (root, _) = pebble.issuers();
    let pebble_dir = pebble.dir.path().to_owned();
    pebble.stop();
    assert!(s.wait_event("port25.tls.acme.order_failed", Duration::from_secs(30)).is_some());
    let (sn, _, _) = seen(tls_port, "implicit", &root);
    assert_eq!(serial(&sn), serial(&first));
    let failures = s.wait_events("port25.tls.acme.order_failed", 4, Duration::from_secs(60));
    assert!(failures.len() >= 4, "{failures:?}");
    let delays: Vec<u64> = failures.iter().map(|f| f["retry_in_secs"].as_u64().unwrap()).collect();
    assert_eq!(delays[..4], [1, 2, 4, 4], "doubling, capped at retry_max_secs: {failures:?}");
    let (sn, names, _) = seen(tls_port, "implicit", &root);
    assert_eq!(serial(&sn), serial(&first));
    assert_eq!(names, DOMAIN);
    assert_eq!(s.events("port25.tls.acme.installed").len(), 1);

    // Restarted on a directory answering garbage: the stored certificate
    // is served from the start, the garbage is never trusted.
    // An endless body is cut off (bounded memory), not read for ever.
    let mut s = s;
    let mut previous = pebble.directory();
    for how in ["garbage", "endless"] {
        let (mut garbage, port) = garbage_directory(&pebble_dir, how);
        s.signal("-TERM");
        s.stop_wait();
        let config = s.dir.path().join("port25.toml");
        let directory = format!("https://localhost:{port}/dir");
        let text = std::fs::read_to_string(&config).unwrap().replace(&previous, &directory);
        std::fs::write(&config, text).unwrap();
        previous = directory;
        s.log.lock().unwrap().clear();
        s.spawn();
        let failures = s.wait_events("port25.tls.acme.order_failed", 2, Duration::from_secs(60));
        assert!(failures.len() >= 2, "{how}: {failures:?}");
        assert!(failures.iter().all(|f| f["directory"].as_str().unwrap().contains(&port.to_string())), "{failures:?}");
        if how == "endless" {
            assert!(failures[0]["error"].as_str().unwrap().contains("length limit"), "{failures:?}");
        }
        let (sn, _, _) = seen(tls_port, "implicit", &root);
        assert_eq!(serial(&sn), serial(&first), "{how}");
        assert!(s.events("port25.tls.acme.installed").is_empty());
        assert!(s.child.as_mut().unwrap().try_wait().unwrap().is_none(), "port25 is still running");
        let _ = garbage.kill();
        let _ = garbage.wait();
    }
}

/// `serve --check` knows `[tls.acme]`: no certificate yet is fine (serve
/// will order one); an unreadable ca_file is not.
#[test]
fn serve_check_accepts_a_certificate_acme_will_obtain() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let config = dir.path().join("port25.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"{DOMAIN}\"\ndata_dir = \"{}\"\n[tls.acme]\ndirectory = \"https://localhost:1/dir\"\n\
             domains = [\"{DOMAIN}\"]\nca_file = \"{}\"\n\
             [[listener]]\nname = \"submissions\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"implicit\"\n\
             [http]\naddress = \"127.0.0.1:0\"\nprivate_address = \"127.0.0.1:0\"\n",
            dir.path().join("data").display(),
            ca.display()
        ),
    )
    .unwrap();
    let check = || {
        let out =
            Command::new(crate::harness::BIN).args(["serve", "--check", "--config"]).arg(&config).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, text) = check();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("ca_file") && text.contains("ca.pem"), "{text}");
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(
        &ca,
        rcgen::CertificateParams::new(vec!["ca.test".to_owned()]).unwrap().self_signed(&key).unwrap().pem(),
    )
    .unwrap();
    let (code, text) = check();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("no usable ACME certificate yet"), "{text}");
}
