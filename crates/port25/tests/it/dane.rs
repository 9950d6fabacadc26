//! Issue 15 section 4: DANE (RFC 7672) for outbound delivery. A signed
//! test zone dane.test (ldns-keygen + ldns-signzone, one ECDSA key that is
//! also port25's `dane_trust_anchor`) is served by nsd on a free port, with
//! two child zones: plain.dane.test, delegated without DS (an insecure
//! delegation, proven by the parent's NSEC), and bogus.dane.test, whose DS
//! in the parent names a key other than the one that signed it. Each
//! recipient domain's MX is Python's aiosmtpd with STARTTLS (as in
//! mta_sts.rs), recording every MAIL and message.

use crate::harness::*;
use crate::outbound::{events_where, free_port, submit, v4, wait_events, PRIVATE_MX, WAIT};
use sha2::Digest;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MX: &str = r#"
import asyncio, json, ssl, sys
from aiosmtpd.smtp import SMTP
host, port, cert, key, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def note(what, session):
    with open(log, "a") as f:
        f.write(json.dumps(dict(what=what, tls=session.ssl is not None)) + "\n")
class Handler:
    async def handle_MAIL(self, server, session, envelope, address, options):
        note("MAIL", session)
        envelope.mail_from = address
        return "250 OK"
    async def handle_DATA(self, server, session, envelope):
        note("DATA", session)
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

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nsd serving the zones in `d` on 127.0.0.1: its process and port. The
/// port is free for UDP and TCP when picked, but another test may take it
/// before nsd binds it: nsd then exits, and a new port is tried.
fn start_nsd(d: &Path) -> (Killed, u16) {
    for _ in 0..5 {
        let dns_port = free_dns_port();
        let conf = format!(
            "server:\n  ip-address: 127.0.0.1\n  port: {dns_port}\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"{0}\"\n  database: \"\"\n  pidfile: \"{0}/nsd.pid\"\n  xfrdfile: \"{0}/xfrd.state\"\n  zonelistfile: \"{0}/zone.list\"\n  logfile: \"{0}/nsd.log\"\n  server-count: 1\n\
             remote-control:\n  control-enable: no\n\
             zone:\n  name: dane.test\n  zonefile: dane.test.zone.signed\n\
             zone:\n  name: plain.dane.test\n  zonefile: plain.dane.test.zone\n\
             zone:\n  name: bogus.dane.test\n  zonefile: bogus.dane.test.zone.signed\n",
            d.display()
        );
        std::fs::write(d.join("nsd.conf"), conf).unwrap();
        let _ = std::fs::remove_file(d.join("nsd.log"));
        let mut nsd = Killed(
            Command::new("/usr/sbin/nsd")
                .args(["-d", "-c"])
                .arg(d.join("nsd.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nsd is missing: apt-get install nsd"),
        );
        let start = Instant::now();
        loop {
            if std::fs::read_to_string(d.join("nsd.log")).unwrap_or_default().contains("nsd started") {
                return (nsd, dns_port);
            }
            if nsd.0.try_wait().unwrap().is_some() {
                break;
            }
            assert!(start.elapsed() < WAIT, "nsd did not start: {}", d.join("nsd.log").display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!(
        "nsd exited five times without starting: {}",
        std::fs::read_to_string(d.join("nsd.log")).unwrap_or_default()
    );
}

/// A port of 127.0.0.1 free for both UDP and TCP right now.
fn free_dns_port() -> u16 {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port of 127.0.0.1 free for both UDP and TCP");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run(dir: &Path, cmd: &str, args: &[&str], package: &str) -> String {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is missing ({e}): apt-get install {package}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A new ECDSA key for `zone` in `dir`: its file base name (Kzone.+013+id).
fn keygen(dir: &Path, zone: &str) -> String {
    run(dir, "ldns-keygen", &["-a", "ECDSAP256SHA256", "-k", zone], "ldnsutils")
}

/// A self-signed certificate (DANE-EE) or one signed by `ca` (DANE-TA)
/// for `name`: (chain file, key file, SPKI SHA-256).
fn cert(dir: &Path, name: &str, ca: Option<&(rcgen::Certificate, rcgen::KeyPair)>) -> (PathBuf, PathBuf, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let pem = match ca {
        // The chain the server sends ends with the TA (RFC 7672 §3.1.2).
        Some((c, k)) => p.signed_by(&key, c, k).unwrap().pem() + &c.pem(),
        None => p.self_signed(&key).unwrap().pem(),
    };
    let (c, k) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    std::fs::write(&c, pem).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k, sha2::Sha256::digest(key.public_key_der()).to_vec())
}

fn test_ca() -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "port25 DANE-TA test CA");
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    (ca.self_signed(&key).unwrap(), key)
}

/// The signed zones, nsd serving them, and the MXes started so far.
struct World {
    dir: tempfile::TempDir,
    dns: SocketAddr,
    port: u16,
    net: u8,
    _nsd: Killed,
    mxes: Vec<Killed>,
}

/// Each case's domain (CASE.dane.test, or CASE.plain/bogus child zones),
/// its MX at 127.0.NET.N and that MX's certificate.
const CASES: [(&str, u8); 6] = [
    ("good.dane.test", 1),
    ("bad.dane.test", 2),
    ("ta.dane.test", 3),
    ("taname.dane.test", 4),
    ("mail.plain.dane.test", 5),
    ("mail.bogus.dane.test", 6),
];

impl World {
    fn start(net: u8) -> World {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ips: Vec<IpAddr> = CASES.iter().map(|(_, n)| IpAddr::V4(v4(127, 0, net, *n))).collect();
        let port = free_port(&ips);
        let ca = test_ca();
        let ca_sha = hex(&sha2::Sha256::digest(ca.0.der()));
        // Certificates: good matches its 3 1 1; bad's TLSA names another
        // key; ta's chains to the CA named by 2 0 1 and names its MX;
        // taname's chains to it too but names another host; plain's and
        // bogus's TLSA match nothing (never looked at / never trusted).
        let (_, _, good) = cert(d, "mx.good.dane.test", None);
        let _ = cert(d, "mx.bad.dane.test", None);
        let (_, _, another_key) = cert(d, "unused.example", None);
        let _ = cert(d, "mx.ta.dane.test", Some(&ca));
        let _ = cert(d, "elsewhere.example", Some(&ca));
        for ext in ["pem", "key"] {
            std::fs::copy(d.join(format!("elsewhere.example.{ext}")), d.join(format!("mx.taname.dane.test.{ext}")))
                .unwrap();
        }
        let _ = cert(d, "mx.mail.plain.dane.test", None);
        let _ = cert(d, "mx.mail.bogus.dane.test", None);
        let zero = "00".repeat(32);
        let bad_tlsa = hex(&another_key);

        let parent_key = keygen(d, "dane.test");
        let bogus_signer = keygen(d, "bogus.dane.test");
        let bogus_named = keygen(d, "bogus.dane.test");
        let bogus_ds = std::fs::read_to_string(d.join(format!("{bogus_named}.ds"))).unwrap();
        let a = |n: u8| format!("127.0.{net}.{n}");
        let parent = format!(
            "$ORIGIN dane.test.\n$TTL 300\n@ IN SOA ns.dane.test. hostmaster.dane.test. 1 3600 600 86400 300\n@ IN NS ns.dane.test.\nns IN A 127.0.0.1\n\
             good IN MX 10 mx.good.dane.test.\nmx.good IN A {}\n_25._tcp.mx.good IN TLSA 3 1 1 {}\n\
             _mta-sts.good IN TXT \"v=STSv1; id=1\"\nmta-sts.good IN A 127.0.0.1\n\
             bad IN MX 10 mx.bad.dane.test.\nmx.bad IN A {}\n_25._tcp.mx.bad IN TLSA 3 1 1 {bad_tlsa}\n\
             ta IN MX 10 mx.ta.dane.test.\nmx.ta IN A {}\n_25._tcp.mx.ta IN TLSA 2 0 1 {ca_sha}\n\
             taname IN MX 10 mx.taname.dane.test.\nmx.taname IN A {}\n_25._tcp.mx.taname IN TLSA 2 0 1 {ca_sha}\n\
             plain IN NS ns.dane.test.\nbogus IN NS ns.dane.test.\n{bogus_ds}\n",
            a(1),
            hex(&good),
            a(2),
            a(3),
            a(4)
        );
        let child = |zone: &str, n: u8| {
            format!(
                "$ORIGIN {zone}.\n$TTL 300\n@ IN SOA ns.dane.test. hostmaster.dane.test. 1 3600 600 86400 300\n@ IN NS ns.dane.test.\n\
                 mail IN MX 10 mx.mail.{zone}.\nmx.mail IN A {}\n_25._tcp.mx.mail IN TLSA 3 1 1 {zero}\n",
                a(n)
            )
        };
        let sign = |file: &str, text: String, key: &str| {
            let key_rr = std::fs::read_to_string(d.join(format!("{key}.key"))).unwrap();
            std::fs::write(d.join(file), text + &key_rr).unwrap();
            run(d, "ldns-signzone", &["-n", file, key], "ldnsutils");
        };
        sign("dane.test.zone", parent, &parent_key);
        sign("bogus.dane.test.zone", child("bogus.dane.test", 6), &bogus_signer);
        std::fs::write(d.join("plain.dane.test.zone"), child("plain.dane.test", 5)).unwrap();
        // The trust anchor: the parent's key (its DNSKEY record), or its DS.
        std::fs::copy(d.join(format!("{parent_key}.key")), d.join("anchor.key")).unwrap();
        std::fs::copy(d.join(format!("{parent_key}.ds")), d.join("anchor.ds")).unwrap();
        // A key for dane.test that signed nothing.
        let stranger = keygen(d, "dane.test");
        std::fs::copy(d.join(format!("{stranger}.key")), d.join("stranger.key")).unwrap();

        let (nsd, dns_port) = start_nsd(d);
        World { dir, dns: SocketAddr::from(([127, 0, 0, 1], dns_port)), port, net, _nsd: nsd, mxes: Vec::new() }
    }

    /// Starts the MX of `domain` (one of [`CASES`]); its log file.
    fn mx(&mut self, domain: &str) -> PathBuf {
        let n = CASES.iter().find(|(c, _)| *c == domain).unwrap().1;
        let d = self.dir.path();
        let name = format!("mx.{domain}");
        let log = d.join(format!("{name}.jsonl"));
        let args = [
            format!("127.0.{}.{n}", self.net),
            self.port.to_string(),
            d.join(format!("{name}.pem")).display().to_string(),
            d.join(format!("{name}.key")).display().to_string(),
            log.display().to_string(),
        ];
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        self.mxes.push(Killed(python_peer(MX, &args, "aiosmtpd: pip install aiosmtpd")));
        log
    }

    /// The sending port25: nsd as its name server, the zone's key as its
    /// trust anchor, DANE on (the default) and MTA-STS off.
    fn sender(&self) -> Server {
        self.sender_trusting("anchor.key")
    }

    /// The same with `anchor` (a file in the zone's directory) as the
    /// trust anchor.
    fn sender_trusting(&self, anchor: &str) -> Server {
        self.sender_with(anchor, "mta_sts = \"off\"")
    }

    fn sender_with(&self, anchor: &str, extra: &str) -> Server {
        let cfg = format!(
            "domains = [\"example.net\"]\nrecipients = [\"alice@example.net\"]\n[submission]\ntrusted_networks = [\"127.0.0.0/8\"]\nmessages_per_hour = 0\nmessages_per_day = 0\nrecipients_per_hour = 0\nrecipients_per_day = 0\n[outbound]\nnameservers = [\"{}\"]\nport = {}\n\
             first_retry_secs = 1\nmax_retry_secs = 2\nretry_jitter = 0.0\nstats_interval_secs = 1\nconnect_timeout_secs = 5\ncommand_timeout_secs = 10\n{PRIVATE_MX}\n{extra}\ndane_trust_anchor = \"{}\"\n",
            self.dns,
            self.port,
            self.dir.path().join(anchor).display()
        );
        Server::start(&cfg, "[[listener]]\nname = \"sub\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"none\"\nplaintext_auth = true\n")
    }
}

fn seen(log: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn wait_data(log: &Path) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let data: Vec<_> = seen(log).into_iter().filter(|e| e["what"] == "DATA").collect();
        if !data.is_empty() || start.elapsed() > WAIT {
            return data;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two deferrals with 4.7.5 for `to`, and the MX never saw MAIL.
fn deferred_never_sent(a: &Server, to: &str, log: &Path, needle: &str) {
    let deferred = wait_events(a, "port25.outbound.deferred", "to", to, 2);
    for d in &deferred {
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.starts_with("451 4.7.5") && reason.contains(needle), "{reason}");
    }
    assert!(seen(log).is_empty(), "the MX saw MAIL or DATA: {:?}", seen(log));
    assert!(events_where(a, "port25.outbound.delivered", "to", to).is_empty());
}

#[test]
fn dane_ee_with_a_matching_tlsa_record_delivers_over_tls_and_reports_tlsa() {
    let mut w = World::start(171);
    let log = w.mx("good.dane.test");
    let a = w.sender();
    submit(&a, &["bob@good.dane.test"], "dane");
    let got = wait_data(&log);
    assert_eq!(got.len(), 1, "not delivered: {:?}", a.events("port25.outbound.deferred"));
    assert_eq!(got[0]["tls"], true);
    let dane = a.wait_event("port25.outbound.dane", WAIT).expect("DANE did not apply");
    assert_eq!(dane["host"], "mx.good.dane.test");
    // TLS-RPT: a successful session under policy-type tlsa.
    let start = Instant::now();
    let report = loop {
        let days: Vec<PathBuf> = std::fs::read_dir(a.data().join("tls-rpt"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        if let Some(t) = days.iter().find_map(|d| std::fs::read(d.join("good.dane.test.json")).ok()) {
            break serde_json::from_slice::<serde_json::Value>(&t).unwrap();
        }
        assert!(start.elapsed() < WAIT, "no TLS-RPT report for good.dane.test");
        std::thread::sleep(Duration::from_millis(100));
    };
    let p = &report["policies"][0];
    assert_eq!(p["policy"]["policy-type"], "tlsa", "{report}");
    assert!(p["policy"]["policy-string"][0].as_str().unwrap().starts_with("3 1 1 "), "{report}");
    assert_eq!(p["summary"]["total-successful-session-count"], 1, "{report}");
}

#[test]
fn dane_ee_with_a_tlsa_record_that_does_not_match_defers_and_never_sends() {
    let mut w = World::start(172);
    let log = w.mx("bad.dane.test");
    let a = w.sender();
    submit(&a, &["bob@bad.dane.test"], "must not leave");
    deferred_never_sent(&a, "bob@bad.dane.test", &log, "TLSA");
}

#[test]
fn dane_ta_delivers_when_the_chain_and_the_name_match_and_defers_otherwise() {
    let mut w = World::start(173);
    let good = w.mx("ta.dane.test");
    let wrong = w.mx("taname.dane.test");
    let a = w.sender();
    submit(&a, &["bob@ta.dane.test"], "dane-ta");
    let got = wait_data(&good);
    assert_eq!(got.len(), 1, "not delivered: {:?}", a.events("port25.outbound.deferred"));
    assert_eq!(got[0]["tls"], true);
    submit(&a, &["bob@taname.dane.test"], "dane-ta, wrong name");
    deferred_never_sent(&a, "bob@taname.dane.test", &wrong, "TLSA");
}

#[test]
fn an_insecure_delegation_means_no_dane_and_opportunistic_delivery() {
    let mut w = World::start(174);
    let log = w.mx("mail.plain.dane.test");
    let a = w.sender();
    submit(&a, &["bob@mail.plain.dane.test"], "unsigned");
    let got = wait_data(&log);
    assert_eq!(got.len(), 1, "not delivered: {:?}", a.events("port25.outbound.deferred"));
    assert_eq!(got[0]["tls"], true, "opportunistic TLS is still used");
    assert!(a.events("port25.outbound.dane").is_empty(), "DANE applied to an unsigned zone");
    assert!(a.events("port25.outbound.dane.no_validation").is_empty(), "validation did not work");
}

#[test]
fn a_bogus_signature_defers_and_never_connects() {
    let mut w = World::start(175);
    let log = w.mx("mail.bogus.dane.test");
    let a = w.sender();
    submit(&a, &["bob@mail.bogus.dane.test"], "bogus");
    deferred_never_sent(&a, "bob@mail.bogus.dane.test", &log, "DNSSEC");
    let f = a.wait_event("port25.outbound.tls_policy.failed", WAIT).expect("no failure logged");
    assert_eq!(f["result"], "dnssec-invalid", "{f}");
}

#[test]
fn a_ds_record_as_trust_anchor_works_as_the_key_it_names() {
    let mut w = World::start(176);
    let good = w.mx("good.dane.test");
    let bad = w.mx("bad.dane.test");
    let a = w.sender_trusting("anchor.ds");
    submit(&a, &["bob@good.dane.test"], "dane with a DS anchor");
    let got = wait_data(&good);
    assert_eq!(got.len(), 1, "not delivered: {:?}", a.events("port25.outbound.deferred"));
    assert!(a.wait_event("port25.outbound.dane", WAIT).is_some(), "DANE did not apply");
    submit(&a, &["bob@bad.dane.test"], "must not leave");
    deferred_never_sent(&a, "bob@bad.dane.test", &bad, "TLSA");
}

/// A domain with both: its MX's self-signed certificate fails MTA-STS
/// `enforce` (no CA, RFC 8461 §4.2: with `dane = "off"` the mail waits
/// with 4.7.5), but its TLSA record matches, and DANE takes precedence
/// (as Postfix documents).
#[test]
fn dane_takes_precedence_over_an_mta_sts_enforce_policy() {
    let mut w = World::start(177);
    let log = w.mx("good.dane.test");
    let policy = "version: STSv1\nmode: enforce\nmx: mx.good.dane.test\nmax_age: 86400\n";
    let web = tempfile::tempdir().unwrap();
    let (_policy_server, web_port) = crate::mta_sts::serve_policy(web.path(), "good.dane.test", policy);
    let extra = format!(
        "mta_sts_ca = \"{}\"\nmta_sts_port = {web_port}\nmta_sts_timeout_secs = 5",
        web.path().join("ca.pem").display()
    );
    let a = w.sender_with("anchor.key", &extra);
    submit(&a, &["bob@good.dane.test"], "dane over mta-sts");
    let got = wait_data(&log);
    assert_eq!(got.len(), 1, "not delivered: {:?}", a.events("port25.outbound.deferred"));
    let fetched = a.wait_event("port25.outbound.mta_sts.policy", WAIT).expect("the MTA-STS policy was not fetched");
    assert_eq!(fetched["mode"], "enforce");
    assert!(a.wait_event("port25.outbound.dane", WAIT).is_some(), "DANE did not apply");
    assert!(
        a.events("port25.outbound.tls_policy.failed").is_empty(),
        "{:?}",
        a.events("port25.outbound.tls_policy.failed")
    );
}

/// The zone signed with another key than the anchor: every answer is
/// bogus, the mail waits (4.7.5) and the MX is never connected to; the
/// warning says validation fails and DANE stays enforced.
#[test]
fn a_zone_signed_with_another_key_than_the_anchor_defers() {
    let mut w = World::start(178);
    let log = w.mx("good.dane.test");
    let a = w.sender_trusting("stranger.key");
    submit(&a, &["bob@good.dane.test"], "anchor mismatch");
    deferred_never_sent(&a, "bob@good.dane.test", &log, "DNSSEC");
    let warned = a.wait_event("port25.outbound.dane.no_validation", WAIT).expect("no warning");
    assert_eq!(warned["dane"], "enforced", "{warned}");
}
