//! Issue 13 item 1 (backscatter), 17 and 18: the MX answers at RCPT what
//! delivery will do. Only mailboxes that exist are accepted (accounts,
//! `[mx] recipients`, the LMTP server's answer to a probe, an operator's
//! catch-all domain), judged after the delimiter; nothing is accepted to be
//! bounced later to a sender that may be forged, no directory is made for
//! a name that was refused, and a DSN to a local sender goes to the mailbox
//! its address resolves to, or nowhere.

use crate::harness::*;
use crate::outbound::{add_user, events_where, one_mx, submit_as, wait_events, WAIT};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs a Python smtplib script against `s` (argv: host, port, then
/// `args`); it prints one "rcpt CODE" line per RCPT it tried.
fn smtplib(s: &Server, script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg("127.0.0.1")
        .arg(s.addr().port().to_string())
        .args(args)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "smtplib: {text}");
    text
}

/// MAIL FROM a forged remote victim, then RCPT TO each argument after the
/// port; prints "ADDRESS CODE TEXT" per recipient, then sends the message
/// to those accepted.
const PROBE: &str = r#"
import smtplib, sys
host, port, rcpts = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = smtplib.SMTP(host, port, timeout=30)
s.ehlo("scanner.example")
code, _ = s.mail("victim@anywhere.example")
assert code == 250, code
ok = []
for r in rcpts:
    code, text = s.rcpt(r)
    print(r, code, text.decode(errors="replace").replace("\n", " "))
    if code == 250:
        ok.append(r)
if ok:
    code, text = s.data(b"From: victim@anywhere.example\r\nSubject: probe\r\n\r\nthe body\r\n")
    print("DATA", code)
else:
    s.rset()
s.quit()
"#;

/// "ADDRESS CODE ..." lines into (address, code).
fn codes(out: &str) -> Vec<(String, u16)> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.split(' ');
            Some((w.next()?.to_owned(), w.next()?.parse().ok()?))
        })
        .filter(|(a, _)| a != "DATA")
        .collect()
}

fn dirs(path: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(path)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn mx_recipients_only_mailboxes_that_exist_are_accepted_and_refused_names_create_nothing() {
    // The documented default's [mx] (recipient_delimiter "+", no list, no
    // catch-all), plus one listed address and a catch-all domain.
    let s = Server::start(
        "domains = [\"example.net\", \"example.org\", \"open.example\"]\nrecipient_delimiter = \"+\"\nrecipients = [\"bob@example.org\"]\ncatch_all = [\"open.example\"]",
        MX_LISTENER,
    );
    add_user(&s, "alice@example.net", &[], "pw");
    // carol may send as anyone in example.org: that makes no catch-all.
    add_user(&s, "carol@example.net", &["@example.org"], "pw");
    let tried = [
        ("random1@example.org", 550),
        ("Random2+x@example.org", 550),
        ("carol@example.net", 250),
        ("+a@example.net", 550),
        ("+@example.net", 550),
        ("+alice@example.net", 550),
        ("-x@example.net", 550),
        ("nobody@example.net", 550),
        ("root@example.net", 550),
        ("admin@example.net", 550),
        ("test@example.net", 550),
        ("bob@example.net", 550),
        ("alice@example.org", 550),
        ("alice@example.net", 250),
        ("Alice+news@example.net", 250),
        ("bob@example.org", 250),
        ("bob+x@example.org", 250),
        ("postmaster@example.net", 250),
        ("anyone@open.example", 250),
        ("+x@open.example", 550),
    ];
    let rcpts: Vec<&str> = tried.iter().map(|(a, _)| *a).collect();
    let out = smtplib(&s, PROBE, &rcpts);
    let got = codes(&out);
    let want: Vec<(String, u16)> = tried.iter().map(|(a, c)| (a.to_string(), *c)).collect();
    assert_eq!(got, want, "{out}");
    assert!(out.contains("550 5.1.1 <nobody@example.net>: Recipient address rejected: user unknown"), "{out}");
    assert!(out.contains("DATA 250"), "{out}");

    // alice's tagged copy went to alice's mailbox, one Maildir per mailbox
    // that exists, none for the names that were refused.
    let alice = s.wait_for_mail("example.net", "alice", 1, WAIT);
    assert_eq!(alice.len(), 1, "alice and alice+news are one mailbox: one copy");
    s.wait_for_mail("open.example", "anyone", 1, WAIT);
    let mail = s.data().join("mail");
    assert_eq!(dirs(&mail.join("example.net")), ["alice", "carol", "postmaster"]);
    assert_eq!(dirs(&mail.join("example.org")), ["bob"]);
    assert_eq!(dirs(&mail.join("open.example")), ["anyone"]);
    // Nothing to bounce, so nothing went to the forged sender.
    assert!(s.events("port25.outbound.queued").is_empty());
    assert!(s.events("port25.outbound.dsn").is_empty());
}

#[test]
fn mx_recipients_an_enumeration_learns_nothing_and_a_dictionary_creates_no_directory() {
    // As nmap's smtp-enum-users does (its RCPT method after VRFY and EXPN),
    // with a dictionary of common names: each is refused with the same
    // reply, and nothing is created. After max_errors refusals the server
    // closes (421); the scanner reconnects, as nmap does.
    let s = Server::start("domains = [\"example.net\"]\nrecipient_delimiter = \"+\"", MX_LISTENER);
    add_user(&s, "alice@example.net", &[], "pw");
    let script = r#"
import smtplib, sys
host, port = sys.argv[1], int(sys.argv[2])
names = ["root", "admin", "test", "guest", "info", "adm", "mysql", "user", "administrator", "oracle", "ftp", "www", "webmaster", "mail", "sales", "support"]
names += ["user%d" % i for i in range(60)]
def session():
    s = smtplib.SMTP(host, port, timeout=30)
    s.ehlo("nmap.scanme.example")
    s.mail("scanner@scanme.example")
    return s
s = smtplib.SMTP(host, port, timeout=30)
s.ehlo("nmap.scanme.example")
code, _ = s.verify("root")
print("VRFY", code)
code, _ = s.docmd("EXPN", "root")
print("EXPN", code)
s.quit()
replies = set()
for i in range(0, len(names), 15):
    s = session()
    for n in names[i:i + 15]:
        code, text = s.rcpt(n + "@example.net")
        print(n, code)
        replies.add(text.decode().replace(n + "@", "NAME@"))
    s.quit()
print("distinct", len(replies))
"#;
    let out = smtplib(&s, script, &[]);
    assert!(out.contains("VRFY 252"), "{out}");
    assert!(out.contains("EXPN 502"), "{out}");
    let refused = out.lines().filter(|l| l.ends_with(" 550")).count();
    assert_eq!(refused, 76, "{out}");
    assert!(out.contains("distinct 1"), "one reply for every unknown name: {out}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !s.data().join("mail").exists() || dirs(&s.data().join("mail/example.net")).is_empty(),
        "{:?}",
        dirs(&s.data().join("mail/example.net"))
    );
    assert_eq!(std::fs::read_dir(s.data().join("spool/batches")).unwrap().count(), 0, "nothing spooled");
}

/// An LMTP server (aiosmtpd) that knows `alice@` and `carol@`: others get
/// 550 5.1.1, `busy@` 451 4.3.0; `flaky@` and `quota@` pass the MX's probe
/// (MAIL FROM:<>) but are refused at delivery (a mailbox deleted or gone
/// over quota between RCPT and delivery). Every RCPT it answers is
/// appended to `dir/rcpts.log`; delivered copies go to `dir/delivered/RCPT`.
fn start_lmtpd(dir: &std::path::Path) -> (std::process::Child, std::path::PathBuf) {
    let sock = dir.join("lmtp.sock");
    std::fs::create_dir_all(dir.join("delivered")).unwrap();
    let script = r#"
import asyncio, sys, os
from aiosmtpd.lmtp import LMTP
sock, out = sys.argv[1], sys.argv[2]
class Handler:
    async def handle_MAIL(self, server, session, envelope, address, options):
        # aiosmtpd names the null reverse-path "<>" (and needs it non-empty).
        envelope.mail_from = address
        return "250 2.1.0 OK"
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        null = envelope.mail_from in ("", "<>")
        with open(os.path.join(out, "rcpts.log"), "a") as f:
            f.write("%s %s\n" % ("<>" if null else "<" + envelope.mail_from + ">", address))
        user = address.split("@")[0]
        if user == "busy":
            return "451 4.3.0 Directory unavailable"
        if user in ("flaky", "quota") and not null:
            return "550 5.1.1 Deleted since"
        if user not in ("alice", "carol", "flaky", "quota"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"
    async def handle_DATA(self, server, session, envelope):
        for r in envelope.rcpt_tos:
            with open(os.path.join(out, "delivered", r), "ab") as f:
                mail_from = "" if envelope.mail_from == "<>" else envelope.mail_from
                f.write(b"MAIL FROM <" + mail_from.encode() + b">\n" + envelope.original_content)
        return "250 2.0.0 delivered"
async def main():
    loop = asyncio.get_running_loop()
    await loop.create_unix_server(lambda: LMTP(Handler()), sock)
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"#;
    let lmtpd = python_peer(script, &[sock.as_os_str(), dir.as_os_str()], "aiosmtpd LMTP server: pip install aiosmtpd");
    (lmtpd, sock)
}

fn lmtp_mx(sock: &std::path::Path, extra: &str) -> Server {
    Server::start(
        &format!(
            "domains = [\"example.net\"]\nrecipient_delimiter = \"+\"\nverify_timeout_secs = 3\n{extra}\n[delivery]\nmethod = \"lmtp\"\nlmtp = \"unix:{}\"",
            sock.display()
        ),
        MX_LISTENER,
    )
}

fn rcpt_code(s: &Server, from: &str, to: &str) -> String {
    let mut c = Client::open(s.addr());
    c.cmd("EHLO client.example");
    c.cmd(&format!("MAIL FROM:<{from}>"));
    let r = c.cmd(&format!("RCPT TO:<{to}>"));
    c.cmd("QUIT");
    r
}

fn probes_for(dir: &std::path::Path, rcpt: &str) -> usize {
    std::fs::read_to_string(dir.join("rcpts.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == format!("<> {rcpt}"))
        .count()
}

fn wait_file(path: &std::path::Path) -> String {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < WAIT, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn mx_recipients_verified_against_the_lmtp_server_at_rcpt_with_caches_and_450_while_it_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lmtpd, sock) = start_lmtpd(dir.path());
    let s = lmtp_mx(&sock, "");
    assert_eq!(code(&rcpt_code(&s, "victim@anywhere.example", "alice@example.net")), 250);
    assert_eq!(code(&rcpt_code(&s, "victim@anywhere.example", "Alice+tag@example.net")), 250, "judged as alice@");
    let r = rcpt_code(&s, "victim@anywhere.example", "nobody@example.net");
    assert!(r.starts_with("550 5.1.1"), "{r}");
    // postmaster is asked too: this mailbox server has none, and a 250
    // would lose the message (or bounce it to a forged sender).
    let r = rcpt_code(&s, "victim@anywhere.example", "postmaster@example.net");
    assert!(r.starts_with("550 5.1.1"), "postmaster without a mailbox on the LMTP server: {r}");
    assert_eq!(probes_for(dir.path(), "postmaster@example.net"), 1);
    assert_eq!(code(&rcpt_code(&s, "victim@anywhere.example", "nobody@example.net")), 550);
    assert_eq!(code(&rcpt_code(&s, "victim@anywhere.example", "+a@example.net")), 550);
    let r = rcpt_code(&s, "victim@anywhere.example", "busy@example.net");
    assert!(r.starts_with("450 4.1.1"), "a 4xx to the probe: {r}");
    // One probe per address while cached: the positive and negative caches.
    assert_eq!(probes_for(dir.path(), "alice@example.net"), 1);
    assert_eq!(probes_for(dir.path(), "nobody@example.net"), 1);
    assert_eq!(
        probes_for(dir.path(), "+a@example.net") + probes_for(dir.path(), "@example.net"),
        0,
        "an empty mailbox is never asked"
    );
    assert_eq!(code(&rcpt_code(&s, "victim@anywhere.example", "busy@example.net")), 450);
    assert_eq!(probes_for(dir.path(), "busy@example.net"), 2, "\"cannot tell\" is not cached");

    // The mailbox server goes away: unknown addresses get 450 (never 250),
    // cached ones keep their answer.
    let _ = lmtpd.kill();
    let _ = lmtpd.wait();
    std::fs::remove_file(&sock).unwrap();
    let r = rcpt_code(&s, "victim@anywhere.example", "carol@example.net");
    assert!(r.starts_with("450 4.1.1"), "LMTP server down: {r}");
    assert_eq!(code(&rcpt_code(&s, "victim@anywhere.example", "alice@example.net")), 250);
    assert_eq!(code(&rcpt_code(&s, "victim@anywhere.example", "nobody@example.net")), 550);
    let failed = s.wait_event("port25.mx.verify_failed", WAIT).expect("verify_failed event");
    assert!(
        failed["reason"].as_str().unwrap().contains("451 4.3.0") || failed["to"] == "carol@example.net",
        "{failed}"
    );
    assert!(
        s.wait_event_where("port25.mx.verify_failed", WAIT, |e| e["to"] == "carol@example.net").is_some(),
        "no verify_failed for carol"
    );

    // A server that takes the connection and never answers: 450 once
    // verify_timeout_secs (3) has passed, not a session that hangs.
    let script = "import socket, sys, time\ns = socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\ns.listen(64)\nprint('ready', flush=True)\nconns = []\nwhile True:\n    c, _ = s.accept()\n    conns.append(c)\n";
    let mut silent = python_peer(script, &[sock.as_os_str()], "a silent socket server");
    let started = Instant::now();
    let r = rcpt_code(&s, "victim@anywhere.example", "dave@example.net");
    assert!(r.starts_with("450 4.1.1"), "silent LMTP server: {r}");
    assert!(
        started.elapsed() >= Duration::from_secs(3) && started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let _ = silent.kill();
    let _ = silent.wait();
}

#[test]
fn mx_recipients_a_failure_after_acceptance_bounces_only_when_bounce_after_accept_and_never_to_a_forged_local_sender() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lmtpd, sock) = start_lmtpd(dir.path());

    // The default: an unauthenticated message that fails after acceptance
    // gets no DSN, the decision is logged.
    let s = lmtp_mx(&sock, "");
    let mut c = Client::open(s.addr());
    c.cmd("EHLO client.example");
    let r =
        c.send_mail("victim@anywhere.example", &["flaky@example.net"], "Subject: backscatter?\r\n\r\nthe whole spam");
    assert_eq!(code(&r), 250, "{r}");
    let suppressed = s.wait_event("port25.outbound.dsn_suppressed", WAIT).expect("dsn_suppressed event");
    assert_eq!(suppressed["to"], "victim@anywhere.example");
    assert!(suppressed["reason"].as_str().unwrap().contains("bounce_after_accept"), "{suppressed}");
    assert!(s.events("port25.outbound.queued").is_empty(), "nothing queued for the forged sender");
    assert_eq!(s.events("port25.delivery.failed").len(), 1);
    drop(s);

    // bounce_after_accept = true: a DSN, headers only; to a local sender's
    // resolved mailbox (carol+lists@ -> carol@); none for a forged local
    // sender (ghost@ has no mailbox).
    let s = lmtp_mx(&sock, "bounce_after_accept = true");
    let mut c = Client::open(s.addr());
    c.cmd("EHLO client.example");
    let r = c.send_mail(
        "carol+lists@example.net",
        &["quota@example.net"],
        "Subject: to a full mailbox\r\n\r\nSECRET BODY LINE",
    );
    assert_eq!(code(&r), 250, "{r}");
    let dsn = wait_file(&dir.path().join("delivered/carol@example.net"));
    assert!(dsn.starts_with("MAIL FROM <>\n"), "{dsn}");
    for want in [
        "Content-Type: text/rfc822-headers",
        "Final-Recipient: rfc822; quota@example.net",
        "Subject: to a full mailbox",
        "550 5.1.1 Deleted since",
    ] {
        assert!(dsn.contains(want), "DSN lacks {want:?}:\n{dsn}");
    }
    assert!(!dsn.contains("SECRET BODY LINE"), "the body never comes back:\n{dsn}");
    assert!(!dir.path().join("delivered/carol+lists@example.net").exists());

    let r = c.send_mail("ghost@example.net", &["flaky@example.net"], "Subject: forged local sender\r\n\r\nspam");
    assert_eq!(code(&r), 250, "{r}");
    let start = Instant::now();
    while !s.events("port25.outbound.dsn_suppressed").iter().any(|e| e["to"] == "ghost@example.net") {
        assert!(start.elapsed() < WAIT, "no decision for ghost: {:?}", s.events("port25.outbound.dsn"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let e = s.events("port25.outbound.dsn_suppressed").into_iter().find(|e| e["to"] == "ghost@example.net").unwrap();
    assert!(e["reason"].as_str().unwrap().contains("no mailbox"), "{e}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!dir.path().join("delivered/ghost@example.net").exists());
    let _ = lmtpd.kill();
    let _ = lmtpd.wait();
}

#[test]
fn mx_recipients_a_dsn_to_a_local_sender_goes_to_its_resolved_mailbox_or_nowhere() {
    // Outbound mail bounced by the remote MX: the DSN to alice+news@ lands
    // in alice's Maildir (not a new alice+news/), and a forged local sender
    // (trusted-network submission as ghost@) gets no mailbox made for it.
    let (mx, dns) = one_mx(31, "remote.example");
    let b = Server::start(
        "domains = [\"remote.example\"]\nrecipients = [\"bob@remote.example\"]",
        &format!("[[listener]]\nname = \"mx\"\naddress = \"{mx}\"\ntls = \"none\"\n"),
    );
    let a = Server::start(
        &format!(
            "domains = [\"example.net\"]\nrecipient_delimiter = \"+\"\nrecipients = [\"alice@example.net\"]\n[submission]\ntrusted_networks = [\"127.0.0.0/8\"]\n\
             [outbound]\nnameservers = [\"{}\"]\nport = {}\nfirst_retry_secs = 1\nretry_jitter = 0.0\n{}\n",
            dns.addr,
            mx.port(),
            crate::outbound::PRIVATE_MX
        ),
        "[[listener]]\nname = \"sub\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"none\"\nplaintext_auth = true\n",
    );
    submit_as(&a, "alice+news@example.net", &["nobody@remote.example"], "to a stranger");
    submit_as(&a, "ghost@example.net", &["nobody@remote.example"], "forged");
    let dsn = a.wait_for_mail("example.net", "alice", 1, WAIT);
    assert_eq!(dsn.len(), 1);
    let text = String::from_utf8_lossy(&dsn[0]);
    assert!(
        text.contains("Final-Recipient: rfc822; nobody@remote.example") && text.contains("Subject: to a stranger"),
        "{text}"
    );
    wait_events(&a, "port25.outbound.dsn_suppressed", "to", "ghost@example.net", 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(dirs(&a.data().join("mail/example.net")), ["alice"], "no mailbox for alice+news or ghost");
    assert!(events_where(&a, "port25.outbound.dsn", "to", "ghost").is_empty());
    drop(b);
}

#[test]
fn mx_recipients_a_hostile_remote_reply_reaches_the_sender_only_as_clean_bounded_lines() {
    // A remote MX whose 550 carries a bare CR (to start a header of its own
    // in our DSN), an escape sequence and a 3000-character line.
    let hostile: &'static str = Box::leak(
        format!("550-5.1.1 gone\rX-Injected: yes\x1b[2J\r\n550-{}\r\n550 5.1.1 end", "A".repeat(3000)).into_boxed_str(),
    );
    let ip = std::net::IpAddr::V4(crate::outbound::v4(127, 0, 32, 1));
    let port = crate::outbound::free_port(&[ip]);
    let dns = crate::dns::DnsServer::start();
    dns.mx("hostile.example", "mx.hostile.example", crate::outbound::v4(127, 0, 32, 1));
    let _remote = crate::scripted::Scripted::start(
        std::net::SocketAddr::new(ip, port),
        crate::scripted::Script { rcpt: hostile, ..Default::default() },
    );
    let a = crate::outbound::sender(&dns, port, "");
    submit_as(&a, "alice@example.net", &["victim@hostile.example"], "to a hostile MX");
    let dsn = a.wait_for_mail("example.net", "alice", 1, WAIT);
    assert_eq!(dsn.len(), 1, "no DSN: {:?}", a.events("port25.outbound.bounced"));
    let text = String::from_utf8_lossy(&dsn[0]).into_owned();
    assert!(text.contains("Final-Recipient: rfc822; victim@hostile.example"), "{text}");
    assert!(!text.replace("\r\n", "").contains(['\r', '\n']), "a bare CR or LF in the DSN:\n{text:?}");
    assert!(!text.contains('\u{1b}'), "an escape sequence in the DSN");
    assert!(!text.contains("\r\nX-Injected: yes"), "the remote's text became a header line");
    assert!(text.lines().all(|l| l.len() <= 998), "a line over 998 bytes");
    let human = text
        .split_once("<victim@hostile.example>: ")
        .and_then(|(_, rest)| rest.split_once("Content-Description: Delivery report"))
        .map(|(human, _)| human)
        .expect("the human-readable line");
    assert!(human.contains("550 5.1.1 gone X-Injected: yes"), "{human}");
    assert!(human.lines().all(|l| l.chars().count() <= 76), "{human}");
    assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1 gone X-Injected: yes"), "{text}");
    // history.log has one line per finished recipient, whatever the remote sent.
    let h = crate::outbound::wait_history(&a, "victim@hostile.example\tbounced\t");
    assert!(h.lines().all(|l| l.split('\t').count() == 5), "{h:?}");
}
