//! Issue 15 section 4: MTA-STS (RFC 8461) for outbound delivery, with
//! TLS-RPT (RFC 8460) reports. The recipient domain them.example has its
//! MX (Python's aiosmtpd with STARTTLS, which records every MAIL and
//! message and whether it came over TLS) on 127.0.N.1 and its policy on
//! a Python HTTPS server at mta-sts.them.example (127.0.N.2), both with
//! certificates from a test CA the sender trusts through `mta_sts_ca`.
//! Under `enforce` a certificate that does not match the MX name, or an
//! MX the policy does not name, means the mail waits (4.7.5) and the MX
//! never sees MAIL; `testing` delivers and the failure is in the day's
//! TLS-RPT JSON; a policy that cannot be fetched or does not parse falls
//! back to the cached one, also after a restart.

use crate::dns::{DnsServer, Rr};
use crate::harness::*;
use crate::outbound::*;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// A test CA in `dir` (ca.pem) and a server certificate it signed for
/// `names`: (certificate file, key file), named after the first name.
fn test_ca(dir: &Path) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "port25 MTA-STS test CA");
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let cert = ca.self_signed(&key).unwrap();
    std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
    (cert, key)
}

fn leaf(dir: &Path, ca: &(rcgen::Certificate, rcgen::KeyPair), names: &[&str]) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, names[0]);
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = p.signed_by(&key, &ca.0, &ca.1).unwrap();
    let (c, k) = (dir.join(format!("{}.pem", names[0])), dir.join(format!("{}.key", names[0])));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

const MX: &str = r#"
import asyncio, email, email.policy, gzip, json, ssl, sys
from aiosmtpd.smtp import SMTP
host, port, cert, key, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def note(what, session, **more):
    with open(log, "a") as f:
        f.write(json.dumps(dict(what=what, tls=session.ssl is not None, **more)) + "\n")
class Handler:
    async def handle_MAIL(self, server, session, envelope, address, options):
        note("MAIL", session, sender=address)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        report = None
        for part in msg.walk():
            if part.get_content_type() == "application/tlsrpt+gzip":
                report = json.loads(gzip.decompress(part.get_payload(decode=True)))
        note("DATA", session, rcpts=envelope.rcpt_tos, type=msg.get_content_type(), report=report,
             report_type=msg.get_param("report-type"), domain=str(msg["TLS-Report-Domain"]), subject=str(msg["Subject"]))
        return "250 2.0.0 taken"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
async def main():
    loop = asyncio.get_running_loop()
    await loop.create_server(lambda: SMTP(Handler(), tls_context=ctx, require_starttls=False, decode_data=False), host, port)
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"#;

const HTTPS: &str = r#"
import http.server, os, ssl, sys
host, port, root, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
os.chdir(root)
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer((host, port), Quiet)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
"#;

pub(crate) struct Peer(Child);

/// An HTTPS server on 127.0.0.1 serving `policy` as
/// https://mta-sts.`domain`/.well-known/mta-sts.txt, with a certificate
/// from a test CA written to `dir`/ca.pem; its port is also written to
/// `dir`/mta-sts.port (what `port25 dns check`'s configuration uses).
pub(crate) fn serve_policy(dir: &Path, domain: &str, policy: &str) -> (Peer, u16) {
    let ca = test_ca(dir);
    let (cert, key) = leaf(dir, &ca, &[&format!("mta-sts.{domain}")]);
    let www = dir.join("www");
    std::fs::create_dir_all(www.join(".well-known")).unwrap();
    std::fs::write(www.join(".well-known/mta-sts.txt"), policy).unwrap();
    let port = free_port(&[IpAddr::V4(v4(127, 0, 0, 1))]);
    std::fs::write(dir.join("mta-sts.port"), port.to_string()).unwrap();
    let args = [
        "127.0.0.1".to_owned(),
        port.to_string(),
        www.display().to_string(),
        cert.display().to_string(),
        key.display().to_string(),
    ];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    (Peer(python_peer(HTTPS, &args, "python3's http.server and ssl")), port)
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The recipient domain's side: its MX, its policy server, its DNS.
struct Them {
    dir: tempfile::TempDir,
    ca: (rcgen::Certificate, rcgen::KeyPair),
    dns: DnsServer,
    mx_addr: SocketAddr,
    web_addr: SocketAddr,
    mx: Option<Peer>,
    web: Option<Peer>,
}

impl Them {
    /// them.example: MX mx.them.example at 127.0.`net`.1 whose certificate
    /// names `cert_names`; `_mta-sts` id 1 and `policy` served at
    /// mta-sts.them.example (127.0.`net`.2).
    fn start(net: u8, cert_names: &[&str], policy: &str) -> Them {
        let dir = tempfile::tempdir().unwrap();
        let ca = test_ca(dir.path());
        let (mx_ip, web_ip) = (IpAddr::V4(v4(127, 0, net, 1)), IpAddr::V4(v4(127, 0, net, 2)));
        let port = free_port(&[mx_ip, web_ip]);
        let dns = DnsServer::start();
        dns.mx("them.example", "mx.them.example", v4(127, 0, net, 1));
        dns.txt("_mta-sts.them.example", "v=STSv1; id=1");
        dns.add("mta-sts.them.example", Rr::A(v4(127, 0, net, 2)));
        std::fs::create_dir_all(dir.path().join("www/.well-known")).unwrap();
        let mut them = Them {
            dir,
            ca,
            dns,
            mx_addr: SocketAddr::new(mx_ip, port),
            web_addr: SocketAddr::new(web_ip, port),
            mx: None,
            web: None,
        };
        them.set_policy(policy);
        them.start_mx(cert_names);
        them.start_web();
        them
    }

    fn start_mx(&mut self, cert_names: &[&str]) {
        let (cert, key) = leaf(self.dir.path(), &self.ca, cert_names);
        let args = [
            self.mx_addr.ip().to_string(),
            self.mx_addr.port().to_string(),
            cert.display().to_string(),
            key.display().to_string(),
            self.log().display().to_string(),
        ];
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        self.mx = Some(Peer(python_peer(MX, &args, "aiosmtpd: pip install aiosmtpd")));
    }

    fn start_web(&mut self) {
        let (cert, key) = leaf(self.dir.path(), &self.ca, &["mta-sts.them.example"]);
        let args = [
            self.web_addr.ip().to_string(),
            self.web_addr.port().to_string(),
            self.dir.path().join("www").display().to_string(),
            cert.display().to_string(),
            key.display().to_string(),
        ];
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        self.web = Some(Peer(python_peer(HTTPS, &args, "python3's http.server and ssl")));
    }

    fn set_policy(&self, text: &str) {
        std::fs::write(self.dir.path().join("www/.well-known/mta-sts.txt"), text).unwrap();
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("mx.jsonl")
    }

    /// What the MX recorded: MAIL and DATA lines.
    fn seen(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn wait_data(&self, n: usize) -> Vec<serde_json::Value> {
        self.wait_data_until(|data| data.len() >= n)
    }

    /// The messages seen, once `done` holds of them (or the wait is over).
    fn wait_data_until(&self, done: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let data: Vec<_> = self.seen().into_iter().filter(|e| e["what"] == "DATA").collect();
            if done(&data) || start.elapsed() > WAIT {
                return data;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The sending port25, trusting the test CA, with MTA-STS on.
    fn sender(&self, extra: &str) -> Server {
        let cfg = format!(
            "mta_sts_ca = \"{}\"\nmta_sts_port = {}\nmta_sts_timeout_secs = 5\n{extra}",
            self.dir.path().join("ca.pem").display(),
            self.web_addr.port()
        );
        sender(&self.dns, self.mx_addr.port(), &cfg)
    }
}

const ENFORCE: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx.them.example\r\nmax_age: 86400\r\n";
const TESTING: &str = "version: STSv1\nmode: testing\nmx: *.them.example\nmax_age: 86400\n";

/// The day's TLS-RPT report of them.example (data_dir/tls-rpt/DAY/them.example.json),
/// once it has `sessions` sessions counted; its fields checked against RFC 8460 §4.4.
fn report(s: &Server, sessions: u64) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let days: Vec<PathBuf> = std::fs::read_dir(s.data().join("tls-rpt"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        if let Some(text) = days.iter().find_map(|d| std::fs::read(d.join("them.example.json")).ok()) {
            let r: serde_json::Value = serde_json::from_slice(&text).unwrap();
            let counted: u64 = r["policies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    p["summary"]["total-successful-session-count"].as_u64().unwrap()
                        + p["summary"]["total-failure-session-count"].as_u64().unwrap()
                })
                .sum();
            if counted >= sessions {
                check_rfc8460(&r);
                return r;
            }
        }
        assert!(start.elapsed() < WAIT, "no TLS-RPT report with {sessions} sessions in {}", s.data().display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The fields RFC 8460 §4.4 requires, with their types.
fn check_rfc8460(r: &serde_json::Value) {
    for k in ["organization-name", "contact-info", "report-id"] {
        assert!(r[k].is_string(), "{k} in {r}");
    }
    for k in ["start-datetime", "end-datetime"] {
        let t = r["date-range"][k].as_str().unwrap();
        assert!(t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T', "{k} {t} is not RFC 3339 UTC");
    }
    for p in r["policies"].as_array().unwrap() {
        let policy = &p["policy"];
        assert!(["sts", "tlsa", "no-policy-found"].contains(&policy["policy-type"].as_str().unwrap()), "{p}");
        assert_eq!(policy["policy-domain"], "them.example");
        assert!(policy["policy-string"].is_array() && policy["mx-host"].is_array(), "{p}");
        assert!(p["summary"]["total-successful-session-count"].is_u64(), "{p}");
        assert!(p["summary"]["total-failure-session-count"].is_u64(), "{p}");
        for f in p["failure-details"].as_array().map(Vec::as_slice).unwrap_or_default() {
            assert!(f["result-type"].is_string() && f["failed-session-count"].is_u64(), "{f}");
        }
    }
}

fn failures(r: &serde_json::Value) -> Vec<String> {
    r["policies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["failure-details"].as_array().cloned().unwrap_or_default())
        .map(|f| f["result-type"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn mta_sts_enforce_with_a_matching_certificate_delivers_over_verified_tls_and_reports_success() {
    let them = Them::start(161, &["mx.them.example"], ENFORCE);
    let a = them.sender("");
    submit(&a, &["bob@them.example"], "enforced");
    let got = them.wait_data(1);
    assert_eq!(got.len(), 1, "not delivered: {:?}", a.events("port25.outbound.deferred"));
    assert_eq!(got[0]["tls"], true, "{got:?}");
    let policy = a.wait_event("port25.outbound.mta_sts.policy", WAIT).expect("no policy fetched");
    assert_eq!(policy["mode"], "enforce");
    assert!(a.data().join("mta-sts/them.example").exists(), "the policy is not cached in data_dir");
    let r = report(&a, 1);
    let p = &r["policies"][0];
    assert_eq!(p["policy"]["policy-type"], "sts");
    assert_eq!(p["policy"]["mx-host"], serde_json::json!(["mx.them.example"]));
    assert!(p["policy"]["policy-string"].as_array().unwrap().contains(&"mode: enforce".into()), "{p}");
    assert_eq!(p["summary"]["total-successful-session-count"], 1);
    assert_eq!(p["summary"]["total-failure-session-count"], 0);
}

#[test]
fn mta_sts_enforce_with_a_certificate_for_another_name_defers_and_never_sends() {
    let them = Them::start(162, &["other.example"], ENFORCE);
    let a = them.sender("");
    submit(&a, &["bob@them.example"], "must not leave");
    let deferred = wait_events(&a, "port25.outbound.deferred", "to", "bob@them.example", 2);
    for d in &deferred {
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.starts_with("451 4.7.5") && reason.contains("MTA-STS"), "{reason}");
    }
    assert!(them.seen().is_empty(), "the MX saw MAIL or DATA: {:?}", them.seen());
    assert!(a.events("port25.outbound.delivered").is_empty());
    assert!(failures(&report(&a, 2)).iter().all(|f| f == "certificate-host-mismatch"));
}

#[test]
fn mta_sts_enforce_never_connects_to_an_mx_the_policy_does_not_name() {
    let policy = ENFORCE.replace("mx: mx.them.example", "mx: mx2.them.example");
    let them = Them::start(163, &["mx.them.example"], &policy);
    let a = them.sender("");
    submit(&a, &["bob@them.example"], "wrong mx");
    let d = wait_events(&a, "port25.outbound.deferred", "to", "bob@them.example", 1);
    assert!(d[0]["reason"].as_str().unwrap().contains("451 4.7.5 no MX of them.example"), "{d:?}");
    assert!(them.seen().is_empty(), "{:?}", them.seen());
    assert!(a.events("port25.outbound.connect_failed").is_empty(), "it connected");
    assert!(failures(&report(&a, 1)).contains(&"validation-failure".to_owned()));
}

#[test]
fn mta_sts_testing_delivers_despite_a_bad_certificate_and_reports_the_failure() {
    let them = Them::start(164, &["other.example"], TESTING);
    let a = them.sender("");
    submit(&a, &["bob@them.example"], "testing");
    let got = them.wait_data(1);
    assert_eq!(got.len(), 1, "testing mode must deliver: {:?}", a.events("port25.outbound.deferred"));
    assert_eq!(got[0]["tls"], true);
    let r = report(&a, 1);
    assert_eq!(failures(&r), ["certificate-host-mismatch"], "{r}");
    let f = &r["policies"][0]["failure-details"][0];
    assert_eq!(f["receiving-mx-hostname"], "mx.them.example");
    assert_eq!(f["receiving-ip"], them.mx_addr.ip().to_string());
    assert_eq!(f["failed-session-count"], 1);
    assert_eq!(r["policies"][0]["summary"]["total-failure-session-count"], 1);
}

#[test]
fn mta_sts_a_broken_or_unreachable_policy_falls_back_to_the_cached_one_across_a_restart() {
    let mut them = Them::start(165, &["mx.them.example"], ENFORCE);
    let mut a = them.sender("");
    submit(&a, &["bob@them.example"], "first");
    assert_eq!(them.wait_data(1).len(), 1, "{:?}", a.events("port25.outbound.deferred"));

    // A new id, a policy that does not parse, and the MX moved to a name
    // the cached policy does not allow: the cached policy holds.
    them.set_policy("version: STSv1\nmode: none-of-your-business\n");
    them.dns.remove("_mta-sts.them.example");
    them.dns.txt("_mta-sts.them.example", "v=STSv1; id=2");
    them.dns.remove("them.example");
    them.dns.mx("them.example", "mx9.them.example", v4(127, 0, 165, 1));
    // The test DNS server's records live 1 s in the resolver's cache.
    std::thread::sleep(Duration::from_secs(2));
    submit(&a, &["bob@them.example"], "second");
    let failed = wait_events(&a, "port25.outbound.mta_sts.failed", "destination", "them.example", 1);
    assert_eq!(failed[0]["result"], "sts-policy-invalid");
    assert_eq!(failed[0]["fallback"], "the cached policy");
    let d = wait_events(&a, "port25.outbound.deferred", "to", "bob@them.example", 1);
    assert!(d[0]["reason"].as_str().unwrap().contains("4.7.5"), "{d:?}");
    assert_eq!(them.wait_data(1).len(), 1, "the second message went to an MX the policy does not name");

    // The policy server gone and port25 restarted: the policy on disk holds.
    them.web = None;
    them.dns.remove("_mta-sts.them.example");
    them.dns.txt("_mta-sts.them.example", "v=STSv1; id=3");
    std::thread::sleep(Duration::from_secs(2));
    a.kill9();
    a.spawn();
    let failed = wait_events(&a, "port25.outbound.mta_sts.failed", "result", "sts-policy-fetch-error", 1);
    assert_eq!(failed[0]["fallback"], "the cached policy");
    wait_events(&a, "port25.outbound.deferred", "to", "bob@them.example", 2);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(them.seen().iter().filter(|e| e["what"] == "DATA").count(), 1, "{:?}", them.seen());

    // Without MTA-STS the same message goes to the MX the DNS names.
    drop(them.mx.take());
    them.start_mx(&["mx9.them.example"]);
    let _ = &them.web_addr;
    let b = them.sender("mta_sts = \"off\"");
    submit(&b, &["bob@them.example"], "no policy");
    assert_eq!(them.wait_data(2).len(), 2);
}

/// `port25 dns check example.net`'s MTA-STS line, with `policy` served.
fn dns_check_sts(policy: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let (_web, port) = serve_policy(dir.path(), "example.net", policy);
    let dns = DnsServer::start();
    dns.mx("example.net", "mx.example.net", v4(127, 0, 0, 25));
    dns.txt("_mta-sts.example.net", "v=STSv1; id=7");
    dns.add("mta-sts.example.net", Rr::A(v4(127, 0, 0, 1)));
    let cfg = dir.path().join("port25.toml");
    std::fs::write(
        &cfg,
        format!(
            "hostname = \"mx.example.net\"\ndata_dir = \"{d}/data\"\n[mx]\ndomains = [\"example.net\"]\n[outbound]\nnameservers = [\"{ns}\"]\ndns_timeout_secs = 2\nmta_sts_ca = \"{d}/ca.pem\"\nmta_sts_port = {port}\nmta_sts_timeout_secs = 5\n",
            d = dir.path().display(),
            ns = dns.addr
        ),
    )
    .unwrap();
    let out =
        std::process::Command::new(BIN).args(["dns", "check", "example.net", "--config"]).arg(&cfg).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find(|l| l.contains("MTA-STS ")).unwrap_or_else(|| panic!("no MTA-STS line: {text}"));
    (out.status.code().unwrap_or(-1), line.to_owned())
}

#[test]
fn dns_check_fetches_and_validates_the_mta_sts_policy_with_the_same_parser() {
    let good = ENFORCE.replace("mx.them.example", "mx.example.net");
    let (_, line) = dns_check_sts(&good);
    assert!(line.starts_with("ok    MTA-STS") && line.contains("mode enforce, mx mx.example.net"), "{line}");
    let (code, line) = dns_check_sts(&good.replace("mx.example.net", "mx.elsewhere.example"));
    assert_eq!(code, 1);
    assert!(line.starts_with("ERROR MTA-STS") && line.contains("does not name this server, mx.example.net"), "{line}");
    let (code, line) = dns_check_sts(&good.replace("max_age: 86400", "max_age: soon"));
    assert_eq!(code, 1);
    assert!(line.contains("max_age \"soon\" is not 1 to 10 digits") && line.contains("sts-policy-invalid"), "{line}");
    let (_, line) = dns_check_sts(TESTING.replace("*.them.example", "*.example.net").as_str());
    assert!(line.starts_with("WARN  MTA-STS") && line.contains("mode testing"), "{line}");
}

#[test]
fn tls_rpt_a_finished_days_report_is_mailed_gzipped_to_the_rua_mailto_address() {
    let them = Them::start(166, &["mx.them.example"], TESTING);
    them.dns.txt("_smtp._tls.them.example", "v=TLSRPTv1; rua=mailto:tlsrpt@them.example");
    let mut a = them.sender("");
    submit(&a, &["bob@them.example"], "counted");
    assert_eq!(them.wait_data(1).len(), 1);
    let written = report(&a, 1);
    // That report as a finished day's (2026-01-01), then a restart: it is sent.
    let past = a.data().join("tls-rpt/2026-01-01");
    std::fs::create_dir_all(&past).unwrap();
    std::fs::write(past.join("them.example.json"), serde_json::to_vec(&written).unwrap()).unwrap();
    a.kill9();
    a.spawn();
    // kill -9 may come before the first delivery was journalled: that
    // message may arrive again (at least once), so wait for the report.
    let is_report = |d: &serde_json::Value| d["rcpts"] == serde_json::json!(["tlsrpt@them.example"]);
    let got = them.wait_data_until(|data| data.iter().any(is_report));
    let mail = got.iter().find(|d| is_report(d));
    let mail =
        mail.unwrap_or_else(|| panic!("no report mailed: {got:?} {:?}", a.events("port25.outbound.tls_rpt.sent")));
    assert_eq!(mail["type"], "multipart/report");
    assert_eq!(mail["report_type"], "tlsrpt");
    assert_eq!(mail["domain"], "them.example");
    assert!(mail["subject"].as_str().unwrap().starts_with("Report Domain: them.example Submitter: "), "{mail}");
    assert_eq!(mail["report"], written, "the attachment is not the report");
    // The report is logged and marked sent after it is queued, so the
    // remote may have it first: wait for both.
    let start = Instant::now();
    while !past.join("them.example.json.sent").exists() {
        assert!(start.elapsed() < WAIT, "the report was not marked sent");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Today's report is not finished: not sent.
    assert_eq!(a.wait_events("port25.outbound.tls_rpt.sent", 1, WAIT).len(), 1);
}
