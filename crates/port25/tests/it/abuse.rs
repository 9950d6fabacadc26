//! The abuse desk (issue 19, docs/abuse.md) against real peers: Python
//! smtplib submitting, `port25 trace` finding the session by client
//! address, source port and time; a burst to 500 recipients held in the
//! queue and explained; ARF reports built with Python's email package
//! delivered to abuse@ through the MX and attributed (or not) to a login;
//! a login from a new country behind a PROXY header, with an mmdb built by
//! mmdb-writer.

use crate::dns::DnsServer;
use crate::harness::*;
use crate::outbound::add_user;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub(crate) const WAIT: Duration = Duration::from_secs(30);

const LISTENERS: &str = "[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:0\"\n\
[[listener]]\nname = \"sub\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"none\"\nplaintext_auth = true\n";

/// A server for example.net with an MX and a submission listener (and
/// `extra` listeners), the [abuse] section `abuse`; alice may send.
pub(crate) fn server(abuse: &str, outbound: &str, extra_listeners: &str) -> Server {
    let mx = format!(
        "domains = [\"example.net\"]\nrecipients = [\"bob@example.net\", \"abuse@example.net\", \"desk@example.net\"]\n\
         [submission]\nmessages_per_hour = 0\nmessages_per_day = 0\nrecipients_per_hour = 0\nrecipients_per_day = 0\nrecipients_per_message = 0\n\
         {outbound}\n[abuse]\n{abuse}\n"
    );
    let s = Server::start(&mx, &format!("{LISTENERS}{extra_listeners}"));
    add_user(&s, "alice@example.net", &["alice@example.net"], "alice-pw");
    s
}

pub(crate) fn addr(s: &Server, name: &str) -> SocketAddr {
    s.addrs.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no listener {name}: {:?}", s.addrs)).1
}

fn config(s: &Server) -> std::path::PathBuf {
    s.dir.path().join("port25.toml")
}

fn port25(s: &Server, args: &[&str]) -> Output {
    Command::new(BIN).args(args).arg("--config").arg(config(s)).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a Python script (args after it); stdout, or a loud failure.
pub(crate) fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 (Debian package python3) runs");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// smtplib: AUTH as alice, one message to `to` (comma-separated); prints
/// the local (source) port, the 250 reply's queue id, and the Message-ID.
const SUBMIT: &str = r#"
import smtplib, sys, email.utils
host, port, to = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
mid = email.utils.make_msgid(domain="laptop.example")
s = smtplib.SMTP(host, port, local_hostname="laptop.example", timeout=30)
s.login("alice@example.net", "alice-pw")
msg = "From: Alice <alice@example.net>\r\nTo: undisclosed-recipients:;\r\nSubject: hello\r\nMessage-ID: " + mid + "\r\n\r\nHi.\r\n"
s.mail("alice@example.net")
for r in to:
    code, text = s.rcpt(r)
    assert code == 250, (code, text)
code, text = s.data(msg)
print(s.sock.getsockname()[1], text.decode().split()[-1], mid, code)
s.quit()
"#;

struct Sent {
    port: u16,
    queue_id: String,
    message_id: String,
    code: u16,
}

fn submit(s: &Server, to: &[String]) -> Sent {
    let a = addr(s, "sub");
    let out = python(SUBMIT, &[&a.ip().to_string(), &a.port().to_string(), &to.join(",")]);
    let w: Vec<&str> = out.split_whitespace().collect();
    Sent {
        port: w[0].parse().unwrap(),
        queue_id: w[1].to_owned(),
        message_id: w[2].to_owned(),
        code: w[3].parse().unwrap(),
    }
}

pub(crate) fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < WAIT, "waited {WAIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn utc_now() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn abuse_trace_finds_the_session_by_client_address_source_port_and_time() {
    let s = server("", "", "");
    let from = utc_now();
    std::thread::sleep(Duration::from_millis(1100));
    let sent = submit(&s, &["bob@example.net".into()]);
    assert_eq!(sent.code, 250);
    // A second session from the same address: the port tells them apart.
    let other = submit(&s, &["bob@example.net".into()]);
    std::thread::sleep(Duration::from_millis(1100));
    let to = utc_now();
    let client = format!("127.0.0.1:{}", sent.port);
    let t: serde_json::Value = wait_for("the trace with a delivered recipient", || {
        let o = port25(&s, &["trace", "--client", &client, "--from", &from, "--to", &to, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        (v["messages"][0]["recipients"][0]["outcome"] == "delivered").then_some(v)
    });
    let sessions = t["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "only the session from port {}: {t:#}", sent.port);
    let session = &sessions[0];
    assert_eq!(session["client_ip"], "127.0.0.1");
    assert_eq!(session["client_port"], sent.port);
    assert_eq!(session["listener"], "sub");
    assert_eq!(session["login"], "alice@example.net");
    assert!(session["start"].as_str().unwrap().ends_with('Z'), "UTC: {session}");
    let m = &t["messages"][0];
    assert_eq!(m["queue_id"], sent.queue_id.as_str());
    assert_eq!(format!("<{}>", m["message_id"].as_str().unwrap()), sent.message_id);
    assert_eq!(m["login"], "alice@example.net");
    assert_eq!(m["recipients"][0]["rcpt"], "bob@example.net");
    // The same message by its Message-ID and by its queue id, as text.
    let o = port25(&s, &["trace", "--message-id", &sent.message_id]);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}");
    for want in [client.as_str(), "login   alice@example.net", sent.queue_id.as_str(), "bob@example.net  delivered"] {
        assert!(text.contains(want), "trace lacks {want:?}:\n{text}");
    }
    assert!(!text.contains(&format!(":{}", other.port)), "another session: {text}");
    let o = port25(&s, &["trace", "--queue-id", &other.queue_id, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sessions"][0]["client_port"], other.port);
    // A window before the sessions finds nothing (exit 1).
    let o = port25(&s, &["trace", "--client", &client, "--from", "2020-01-01", "--to", "2020-01-02"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    // Every session's log line has the source port and a UTC timestamp.
    // (Waited for: nothing above waited for a log line of that session.)
    let ours = s
        .wait_event_where("port25.session.connect", WAIT, |e| e["peer"] == client.as_str())
        .unwrap_or_else(|| panic!("no connect event for {client}: {:?}", s.events("port25.session.connect")));
    assert!(ours["timestamp"].as_str().unwrap().ends_with('Z'), "{ours}");
}

#[test]
fn abuse_a_burst_to_500_distinct_recipients_holds_the_logins_mail_and_explain_says_why() {
    let dns = DnsServer::start();
    dns.mx("remote.example", "mx.remote.example", std::net::Ipv4Addr::new(127, 0, 71, 1));
    let outbound = format!(
        "[outbound]\nnameservers = [\"{}\"]\nport = 1\nallowed_private_networks = [\"127.0.0.0/8\"]\nfirst_retry_secs = 1\nmax_retry_secs = 1\nretry_jitter = 0.0\nconnect_timeout_secs = 2\n",
        dns.addr
    );
    let s = server("recipients_per_day = 200\non_volume = \"hold\"\n", &outbound, "");
    let mut ids = Vec::new();
    for batch in 0..5 {
        let to: Vec<String> = (0..100).map(|i| format!("user{}@remote.example", batch * 100 + i)).collect();
        let sent = submit(&s, &to);
        assert_eq!(sent.code, 250, "held mail is accepted: the sender must not notice");
        ids.push(sent.queue_id);
    }
    let signal = s.wait_event("port25.abuse.signal", WAIT).expect("a signal");
    assert_eq!(
        (signal["signal"].as_str(), signal["action"].as_str(), signal["user"].as_str()),
        (Some("recipients"), Some("hold"), Some("alice@example.net"))
    );
    // The messages from the one that crossed the line on are never tried.
    for id in &ids[2..] {
        wait_for(&format!("{id} held"), || {
            s.events("port25.outbound.held").iter().any(|e| e["id"] == id.as_str()).then_some(())
        });
    }
    std::thread::sleep(Duration::from_secs(2));
    for id in &ids[2..] {
        assert!(
            !s.events("port25.outbound.deferred").iter().any(|e| e["id"] == id.as_str()),
            "{id} was tried while held: {:?}",
            s.events("port25.outbound.deferred").first()
        );
    }
    let held = stdout(&port25(&s, &["queue", "held"]));
    for id in &ids[2..] {
        assert!(held.contains(id.as_str()), "queue held lacks {id}:\n{held}");
    }
    let explain = stdout(&port25(&s, &["users", "explain", "alice@example.net"]));
    for want in ["alice@example.net: hold since", "recipients", "distinct recipients today", "own daily average 0.0"] {
        assert!(explain.contains(want), "explain lacks {want:?}:\n{explain}");
    }
    let metrics = wait_for("metrics", || {
        let http = s.wait_event_where("port25.http.listening", WAIT, |e| e["listener"] == "private")?;
        let out = Command::new("curl")
            .args(["-sS", &format!("http://{}/metrics", http["address"].as_str()?)])
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert!(metrics.contains("port25_abuse_logins{action=\"hold\"} 1"), "{metrics}");
    // One message let go by the operator is tried; the rest stay.
    assert!(port25(&s, &["queue", "release", &ids[4]]).status.success());
    wait_for("the released message tried", || {
        s.events("port25.outbound.deferred").iter().any(|e| e["id"] == ids[4].as_str()).then_some(())
    });
    assert!(!s.events("port25.outbound.deferred").iter().any(|e| e["id"] == ids[3].as_str()), "still held");
    // Releasing the login lets the rest go.
    let o = port25(&s, &["users", "release", "alice@example.net"]);
    assert!(stdout(&o).contains("hold lifted"), "{}", stdout(&o));
    wait_for("the rest tried", || {
        s.events("port25.outbound.deferred").iter().any(|e| e["id"] == ids[3].as_str()).then_some(())
    });
}

/// An ARF report as a large mailbox provider sends it (RFC 5965:
/// multipart/report; report-type=feedback-report), built with Python's
/// email package around the message it received; written to argv[2].
pub(crate) const ARF: &str = r#"
import sys, email, email.policy
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.mime.message import MIMEMessage
from email.message import Message
original = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.compat32)
mode = sys.argv[3]
if mode == "forged":
    original.replace_header("Message-ID", "<someone-else@laptop.example>")
r = MIMEMultipart("report", report_type="feedback-report")
r["From"] = "Mail Provider Feedback Loop <fbl@mailprovider.example>"
r["To"] = "abuse@example.net"
r["Subject"] = "Complaint about message from 127.0.0.1"
r["Date"] = email.utils.formatdate(usegmt=True)
r["Message-ID"] = email.utils.make_msgid(domain="mailprovider.example")
r.attach(MIMEText("This is an email abuse report for an email message received from IP 127.0.0.1\n"))
fb = Message()
fb.set_type("message/feedback-report")
fb.set_payload("Feedback-Type: abuse\nUser-Agent: MailProviderFBL/1.0\nVersion: 1\nOriginal-Mail-From: <alice@example.net>\nArrival-Date: " + email.utils.formatdate(usegmt=True) + "\nSource-IP: 127.0.0.1\nReported-Domain: example.net\n")
if mode != "malformed":
    r.attach(fb)
r.attach(MIMEMessage(original))
# The feedback part's payload is written as it is: SMTP needs CRLF throughout.
open(sys.argv[2], "wb").write(r.as_bytes(policy=email.policy.SMTP).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
"#;

/// smtplib to the MX: the report to abuse@example.net.
pub(crate) const DELIVER: &str = r#"
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), local_hostname="fbl.mailprovider.example", timeout=30)
s.sendmail("fbl@mailprovider.example", ["abuse@example.net"], open(sys.argv[3], "rb").read())
s.quit()
"#;

#[test]
fn abuse_an_arf_report_about_our_mail_is_attributed_to_the_login_and_forged_or_malformed_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let s = server("mailbox = \"data/mail/example.net/abuse\"\ncomplaints_per_day = 1\non_complaints = \"lock\"\nnotify = \"desk@example.net\"\nlock_text = \"Locked: call support at +1 555 0100\"\n", "", "");
    let sent = submit(&s, &["bob@example.net".into()]);
    let copy = s.wait_for_mail("example.net", "bob", 1, WAIT).remove(0);
    let original = dir.path().join("original.eml");
    std::fs::write(&original, &copy).unwrap();
    let mx = addr(&s, "mx");
    let report = |mode: &str| {
        let path = dir.path().join(format!("{mode}.eml"));
        python(ARF, &[original.to_str().unwrap(), path.to_str().unwrap(), mode]);
        python(DELIVER, &[&mx.ip().to_string(), &mx.port().to_string(), path.to_str().unwrap()]);
    };
    let complaint = |verdict: &str| s.wait_event_where("port25.abuse.complaint", WAIT, |e| e["verdict"] == verdict);
    report("forged");
    let forged = complaint("not_ours").expect("the forged report read");
    assert!(forged["reason"].as_str().unwrap().contains("forged"), "{forged}");
    report("malformed");
    let malformed = complaint("unparsed").expect("the malformed report read");
    assert!(malformed["reason"].as_str().unwrap().contains("feedback-report"), "{malformed}");
    assert!(s.events("port25.abuse.signal").is_empty(), "neither counts against alice");
    let start = Instant::now();
    report("real");
    let ours = complaint("ours").expect("the real report attributed");
    assert!(start.elapsed() < Duration::from_secs(10), "within seconds: {:?}", start.elapsed());
    assert_eq!((ours["user"].as_str(), ours["id"].as_str()), (Some("alice@example.net"), Some(sent.queue_id.as_str())));
    // The same report again counts once.
    report("real");
    complaint("duplicate").expect("a duplicate");
    let action = s.wait_event("port25.abuse.action", WAIT).expect("an action");
    assert_eq!(action["action"], "lock");
    assert!(action["seconds_since_first_complaint"].as_i64().unwrap() >= 0, "{action}");
    // Locked: AUTH answers 454 4.7.0 with the configured text.
    let a = addr(&s, "sub");
    let out = python(
        "import smtplib, sys\ns = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=30)\ntry:\n    s.login('alice@example.net', 'alice-pw')\n    print('235')\nexcept smtplib.SMTPAuthenticationError as e:\n    print(e.smtp_code, e.smtp_error.decode())\n",
        &[&a.ip().to_string(), &a.port().to_string()],
    );
    assert!(out.starts_with("454 4.7.0 Locked: call support at +1 555 0100"), "{out}");
    // The desk was told, by mail.
    let notice = String::from_utf8_lossy(&s.wait_for_mail("example.net", "desk", 1, WAIT)[0]).into_owned();
    assert!(notice.contains("login alice@example.net locked (complaints)"), "{notice}");
    let explain = stdout(&port25(&s, &["users", "explain", "alice@example.net"]));
    assert!(
        explain.contains("lock since") && explain.contains(&sent.queue_id) && explain.contains("first complaint"),
        "{explain}"
    );
}

#[test]
fn abuse_a_flood_of_reports_is_rate_limited_per_reporter() {
    let s = server("mailbox = \"data/mail/example.net/abuse\"\nreports_per_reporter_per_hour = 3\n", "", "");
    let mx = addr(&s, "mx");
    let mut c = Client::open(mx);
    c.cmd("EHLO flood.example");
    for i in 0..6 {
        let r = c.send_mail(
            "x@flood.example",
            &["abuse@example.net"],
            &format!("From: x@flood.example\r\nSubject: spam {i}\r\n\r\nnothing quoted\r\n"),
        );
        assert_eq!(code(&r), 250, "{r}");
    }
    let limited = s.wait_events("port25.abuse.complaint", 6, WAIT);
    let count = |v: &str| limited.iter().filter(|e| e["verdict"] == v).count();
    assert_eq!((count("unparsed"), count("rate_limited")), (3, 3), "{limited:#?}");
}

const MMDB: &str = r#"
import sys
from netaddr import IPSet
from mmdb_writer import MMDBWriter
c = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country")
c.insert_network(IPSet(["198.51.100.0/24"]), {"country": {"iso_code": "BR"}})
c.insert_network(IPSet(["203.0.113.0/24"]), {"country": {"iso_code": "RU"}})
c.to_db_file(sys.argv[1])
"#;

#[test]
fn abuse_a_login_from_a_new_country_behind_the_configured_proxy_raises_its_signal() {
    let dir = tempfile::tempdir().unwrap();
    let mmdb = dir.path().join("country.mmdb");
    let out = Command::new("python3").arg("-c").arg(MMDB).arg(&mmdb).output().expect("python3 runs");
    assert!(
        out.status.success(),
        "mmdb-writer failed (pip install mmdb-writer netaddr; .ci/install-deps does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proxied = "[[listener]]\nname = \"proxied\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"none\"\nplaintext_auth = true\nproxy_protocol = true\nproxy_protocol_from = [\"127.0.0.1/32\"]\n";
    let s = server(&format!("enrichment = [\"{}\"]\non_new_country = \"tag\"\n", mmdb.display()), "", proxied);
    let p = addr(&s, "proxied");
    let login_from = |ip: &str| {
        let mut c = Client::connect(p);
        c.send(format!("PROXY TCP4 {ip} 192.0.2.1 40000 587\r\n").as_bytes());
        assert!(c.reply().starts_with("220 "));
        assert!(c.cmd("EHLO laptop.example").starts_with("250"));
        let r = c.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUubmV0AGFsaWNlLXB3");
        assert_eq!(code(&r), 235, "{r}");
        c.cmd("QUIT");
    };
    login_from("198.51.100.7");
    login_from("198.51.100.8");
    std::thread::sleep(Duration::from_millis(500));
    assert!(s.events("port25.abuse.signal").is_empty(), "the same network and country");
    login_from("203.0.113.9");
    let signal =
        s.wait_event_where("port25.abuse.signal", WAIT, |e| e["signal"] == "new_country").expect("new_country");
    assert!(signal["evidence"].as_str().unwrap().contains("203.0.113.9 (country RU); before only from BR"), "{signal}");
    assert_eq!(signal["action"], "tag");
    let explain = stdout(&port25(&s, &["users", "explain", "alice@example.net"]));
    assert!(explain.contains("new_country") && explain.contains("203.0.113.9"), "{explain}");
}

/// An ARF report with only the reported message's headers
/// (text/rfc822-headers), our Received header taken out, as some feedback
/// loops redact: argv[1] the message as the remote got it, argv[2] out.
const ARF_HEADERS_ONLY: &str = r#"
import sys, email, email.policy
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.message import Message
original = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.compat32)
del original["Received"]
r = MIMEMultipart("report", report_type="feedback-report")
r["From"] = "fbl@mailprovider.example"
r["Subject"] = "FBL"
r["Date"] = email.utils.formatdate(usegmt=True)
r.attach(MIMEText("abuse report\n"))
fb = Message()
fb.set_type("message/feedback-report")
fb.set_payload("Feedback-Type: abuse\r\nVersion: 1\r\nSource-IP: 127.0.0.1\r\n")
r.attach(fb)
h = Message()
h.set_type("text/rfc822-headers")
h.set_payload("".join(k + ": " + v + "\r\n" for k, v in original.items()))
r.attach(h)
open(sys.argv[2], "wb").write(r.as_bytes(policy=email.policy.SMTP).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
"#;

#[test]
fn abuse_a_report_keeping_only_our_dkim_signature_is_attributed_by_it() {
    use crate::outbound::one_mx;
    use crate::scripted::{Script, Scripted};
    let dir = tempfile::tempdir().unwrap();
    let (mx, dns) = one_mx(72, "remote.example");
    let remote = Scripted::start(mx, Script::default());
    let key = dir.path().join("example.net.pem");
    let out = Command::new(BIN)
        .args(["dkim", "keygen", "--domain", "example.net", "--selector", "sel1", "--bits", "1024", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let outbound = format!(
        "[outbound]\nnameservers = [\"{}\"]\nport = {}\nallowed_private_networks = [\"127.0.0.0/8\"]\n[[outbound.dkim]]\ndomain = \"example.net\"\nselector = \"sel1\"\nprivate_key = \"{}\"\n",
        dns.addr,
        mx.port(),
        key.display()
    );
    let s = server("mailbox = \"data/mail/example.net/abuse\"\n", &outbound, "");
    let sent = submit(&s, &["carol@remote.example".into()]);
    let got = wait_for("the remote's copy", || remote.conns().iter().flat_map(|c| c.messages.clone()).next());
    assert!(got.starts_with("DKIM-Signature:"), "{got}");
    let copy = dir.path().join("copy.eml");
    std::fs::write(&copy, got.as_bytes()).unwrap();
    let report = dir.path().join("report.eml");
    python(ARF_HEADERS_ONLY, &[copy.to_str().unwrap(), report.to_str().unwrap()]);
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(!text.contains("(port25) with"), "our Received header is gone: {text}");
    let m = addr(&s, "mx");
    python(DELIVER, &[&m.ip().to_string(), &m.port().to_string(), report.to_str().unwrap()]);
    let c = s.wait_event("port25.abuse.complaint", WAIT).expect("the report read");
    assert_eq!(
        (c["verdict"].as_str(), c["user"].as_str(), c["id"].as_str()),
        (Some("ours"), Some("alice@example.net"), Some(sent.queue_id.as_str())),
        "{c}"
    );
}
