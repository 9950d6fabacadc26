//! Sender authentication and greylisting on the MX (issue 14,
//! docs/mx-auth.md) against real peers: Postfix with OpenDKIM signing (so
//! another implementation's DKIM signatures are verified), Python smtplib
//! as the sending client, and the test DNS server (dns.rs) answering SPF,
//! DKIM, DMARC, PTR and A questions, or SERVFAIL.

use crate::dns::{DnsServer, Failure};
use crate::harness::*;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// An MX for example.net with `[mx.auth]` on, asking `dns`.
fn mx_with_auth(dns: &DnsServer, extra: &str) -> Server {
    Server::start(
        &format!(
            "domains = [\"example.net\"]\nrecipients = [\"alice@example.net\", \"bob@example.net\"]\n[mx.auth]\nenabled = true\nnameservers = [\"{}\"]\ndns_timeout_secs = 2\ntimeout_secs = 10\n{extra}",
            dns.addr
        ),
        MX_LISTENER,
    )
}

/// One SMTP transaction with Python smtplib from `source` (a 127.x
/// address): each step's reply code and text as JSON.
fn smtplib(
    mx: std::net::SocketAddr,
    source: &str,
    helo: &str,
    from: &str,
    to: &str,
    message: &str,
) -> serde_json::Value {
    let script = r#"
import smtplib, sys, json
port, src, helo, sender, rcpt, msg = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
out = {}
s = smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(src, 0))
out["ehlo"] = s.ehlo(helo)[0]
code, text = s.mail(sender)
out["mail"] = [code, text.decode()]
code, text = s.rcpt(rcpt)
out["rcpt"] = [code, text.decode()]
if code == 250:
    try:
        code, text = s.data(msg.encode())
    except smtplib.SMTPDataError as e:
        code, text = e.smtp_code, e.smtp_error
    out["data"] = [code, text.decode()]
s.quit()
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(mx.port().to_string())
        .args([source, helo, from, to, message])
        .output()
        .expect("python3");
    assert!(out.status.success(), "python3 smtplib: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The Authentication-Results field of a stored message, unfolded, split
/// into its authserv-id and results: (method, result, properties).
type Results = (String, Vec<Resinfo>);
/// (method, result, properties including `reason`).
type Resinfo = (String, String, Vec<(String, String)>);

fn authentication_results(message: &str) -> Vec<Results> {
    let headers = message.split("\r\n\r\n").next().unwrap();
    let unfolded = headers.replace("\r\n\t", " ").replace("\r\n ", " ");
    let mut out = Vec::new();
    for line in unfolded.split("\r\n") {
        let Some(value) = line.strip_prefix("Authentication-Results:") else { continue };
        let mut parts = split_outside_quotes(value);
        let id = parts.remove(0).trim().to_owned();
        let mut results = Vec::new();
        for p in parts {
            let words = words_outside_quotes(p.trim());
            let (method, result) = words[0].split_once('=').unwrap();
            let props = words[1..]
                .iter()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
                .collect();
            results.push((method.to_owned(), result.to_owned(), props));
        }
        out.push((id, results));
    }
    out
}

fn split_outside_quotes(s: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(s.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s.get(start..).unwrap_or_default());
    out
}

fn words_outside_quotes(s: &str) -> Vec<String> {
    let (mut out, mut word, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in s.chars() {
        match c {
            _ if escaped => {
                escaped = false;
                word.push(c);
            }
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            ' ' if !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn prop<'a>(r: &'a Resinfo, key: &str) -> Option<&'a str> {
    r.2.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn find<'a>(results: &'a [Resinfo], method: &str, key: &str) -> &'a Resinfo {
    results
        .iter()
        .find(|r| r.0 == method && prop(r, key).is_some())
        .unwrap_or_else(|| panic!("no {method} result with {key} in {results:?}"))
}

/// OpenDKIM signing for remote.example with a fresh key (selector
/// "pf"), as a milter on a free port; the public key is published in `dns`.
struct OpenDkim {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for OpenDkim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_opendkim(dns: &DnsServer, domain: &str) -> OpenDkim {
    let opendkim = require("opendkim");
    let genkey = require("opendkim-genkey");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let st = Command::new(genkey).args(["-b", "2048", "-d", domain, "-s", "pf", "-D"]).arg(d).status().unwrap();
    assert!(st.success(), "opendkim-genkey failed");
    // pf.txt is a zone-file line: the key is the quoted strings joined.
    let zone = std::fs::read_to_string(d.join("pf.txt")).unwrap();
    let mut record = String::new();
    for (i, part) in zone.split('"').enumerate() {
        if i % 2 == 1 {
            record.push_str(part);
        }
    }
    assert!(record.contains("p="), "{zone}");
    dns.txt(&format!("pf._domainkey.{domain}"), &record);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = format!(
        "Syslog no\nMode s\nDomain {domain}\nSelector pf\nKeyFile {key}\nSocket inet:{port}@127.0.0.1\nCanonicalization relaxed/relaxed\n\
         InternalHosts 127.0.0.0/8\nPidFile {pid}\nUserID {user}\nRequireSafeKeys false\nBackground false\n",
        key = d.join("pf.private").display(),
        pid = d.join("opendkim.pid").display(),
        user = "opendkim",
    );
    std::fs::write(d.join("opendkim.conf"), conf).unwrap();
    let _ = Command::new("chown").arg("-R").arg("opendkim").arg(d).status();
    let log = std::fs::File::create(d.join("opendkim.log")).unwrap();
    let child = Command::new(opendkim)
        .arg("-f")
        .arg("-x")
        .arg(d.join("opendkim.conf"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let log = std::fs::read_to_string(d.join("opendkim.log")).unwrap_or_default();
        assert!(start.elapsed() < Duration::from_secs(20), "opendkim did not start: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    OpenDkim { child, port, _dir: dir }
}

/// Postfix (relay.remote.example) with OpenDKIM signing for remote.example
/// relays into port25; the domain publishes SPF, DKIM and DMARC p=reject.
/// port25 verifies OpenDKIM's signature and writes one
/// Authentication-Results field (parsed here) with every check passing;
/// a field in the message that claims port25's authserv-id is gone.
#[test]
fn postfix_with_opendkim_passes_every_check_and_gets_authentication_results() {
    let dns = DnsServer::start();
    // Postfix connects from 127.0.0.1, whose PTR (localhost) the resolver
    // answers itself (RFC 6761); iprev against the test's DNS is checked
    // with other addresses in iprev_asks_the_dns below.
    dns.add("relay.remote.example", crate::dns::Rr::A(Ipv4Addr::LOCALHOST));
    dns.txt("relay.remote.example", "v=spf1 a -all");
    dns.txt("remote.example", "v=spf1 ip4:127.0.0.0/8 -all");
    dns.txt("_dmarc.remote.example", "v=DMARC1; p=reject; adkim=s");
    let milter = start_opendkim(&dns, "remote.example");
    let s = mx_with_auth(&dns, "");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let extra = format!(
        "smtpd_milters = inet:127.0.0.1:{}\nnon_smtpd_milters = $smtpd_milters\nmilter_default_action = tempfail\n",
        milter.port
    );
    let pf = crate::postfix::start_postfix_with(port, s.addr(), &extra);
    let mut c = crate::postfix::wait_smtpd(port);
    c.cmd("EHLO client.remote.example");
    let body = "From: Someone <someone@remote.example>\r\nTo: alice@example.net\r\nSubject: signed by OpenDKIM\r\n\
                Authentication-Results: mx.test.example; dmarc=pass header.from=bank.example\r\n\r\nHello from Postfix.\r\n";
    let r = c.send_mail("someone@remote.example", &["alice@example.net"], body);
    assert!(r.starts_with("250"), "postfix accepted: {r}");
    c.cmd("QUIT");
    let mail = s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(60));
    let log = std::fs::read_to_string(pf.dir.path().join("maillog")).unwrap_or_default();
    assert_eq!(mail.len(), 1, "postfix log:\n{log}\nport25: {:?}", s.events("port25.mx.auth"));
    let text = String::from_utf8_lossy(&mail[0]).into_owned();
    assert!(text.contains("DKIM-Signature:") && text.contains("d=remote.example"), "OpenDKIM signed: {text}");
    let ars = authentication_results(&text);
    assert_eq!(ars.len(), 1, "exactly one Authentication-Results field (the forged one removed): {text}");
    let (id, results) = &ars[0];
    assert_eq!(id, "mx.test.example");
    let iprev = find(results, "iprev", "policy.iprev");
    assert_eq!((iprev.1.as_str(), prop(iprev, "policy.iprev")), ("pass", Some("127.0.0.1")), "{results:?}");
    let spf = find(results, "spf", "smtp.mailfrom");
    assert_eq!((spf.1.as_str(), prop(spf, "smtp.mailfrom")), ("pass", Some("someone@remote.example")), "{results:?}");
    let helo = find(results, "spf", "smtp.helo");
    assert_eq!((helo.1.as_str(), prop(helo, "smtp.helo")), ("pass", Some("relay.remote.example")), "{results:?}");
    let dkim = find(results, "dkim", "header.d");
    assert_eq!(
        (dkim.1.as_str(), prop(dkim, "header.d"), prop(dkim, "header.s")),
        ("pass", Some("remote.example"), Some("pf")),
        "{results:?}"
    );
    let dmarc = find(results, "dmarc", "header.from");
    assert_eq!(
        (dmarc.1.as_str(), prop(dmarc, "header.from"), prop(dmarc, "policy.dmarc")),
        ("pass", Some("remote.example"), Some("reject")),
        "{results:?}"
    );
    assert!(!text.contains("bank.example"), "the forged field is removed: {text}");
}

/// A forged From: (a domain with DMARC p=reject, no signature, SPF not
/// the sender's) is refused at the end of DATA with 550 5.7.1, and
/// nothing is stored; with dmarc_reject = "tag" the same message is
/// accepted and tagged.
#[test]
fn forged_from_is_rejected_where_dmarc_says_reject() {
    let dns = DnsServer::start();
    dns.txt("bank.example", "v=spf1 ip4:192.0.2.1 -all");
    dns.txt("_dmarc.bank.example", "v=DMARC1; p=reject");
    dns.txt("_dmarc.shop.example", "v=DMARC1; p=quarantine");
    let s = mx_with_auth(&dns, "");
    let forged = "From: CEO <ceo@bank.example>\r\nTo: alice@example.net\r\nSubject: wire the money\r\n\r\nNow.\r\n";
    let r = smtplib(s.addr(), "127.0.0.2", "mail.evil.example", "x@evil.example", "alice@example.net", forged);
    assert_eq!(r["data"][0], 550, "{r}");
    let text = r["data"][1].as_str().unwrap();
    assert!(text.starts_with("5.7.1") && text.contains("bank.example") && text.contains("reject"), "{r}");
    // The sender's own domain in MAIL FROM does not help either.
    let r = smtplib(s.addr(), "127.0.0.2", "mail.evil.example", "ceo@bank.example", "alice@example.net", forged);
    assert_eq!(r["data"][0], 550, "SPF of bank.example fails for 127.0.0.2: {r}");
    // A subdomain of it (the organizational domain's record applies, sp=
    // defaults to p=), and a second From: field that would hide it.
    for variant in [
        forged.replace("ceo@bank.example", "ceo@pay.bank.example"),
        forged.replace("From: CEO <ceo@bank.example>\r\n", "From: me@evil.example\r\nFrom: CEO <ceo@bank.example>\r\n"),
        forged.replace("From: CEO <ceo@bank.example>", "From: me@evil.example, CEO <ceo@bank.example>"),
    ] {
        let r = smtplib(s.addr(), "127.0.0.2", "mail.evil.example", "x@evil.example", "alice@example.net", &variant);
        assert_eq!(r["data"][0], 550, "{variant}: {r}");
    }
    let ev = s.wait_event("port25.mx.auth.rejected", Duration::from_secs(5)).expect("event");
    assert!(ev["results"].as_str().unwrap().contains("dmarc=fail"), "{ev}");
    // p=quarantine: accepted, tagged.
    let q = forged.replace("bank.example", "shop.example");
    let r = smtplib(s.addr(), "127.0.0.2", "mail.evil.example", "x@evil.example", "alice@example.net", &q);
    assert_eq!(r["data"][0], 250, "{r}");
    let mail = s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(20));
    assert_eq!(mail.len(), 1, "only the quarantined one is stored");
    let text = String::from_utf8_lossy(&mail[0]);
    assert!(text.contains("X-Port25-Tag: \"DMARC policy of shop.example (p=quarantine)"), "{text}");
    assert!(text.contains("dmarc=fail"), "{text}");

    let tag = mx_with_auth(&dns, "dmarc_reject = \"tag\"\n");
    let r = smtplib(tag.addr(), "127.0.0.2", "mail.evil.example", "x@evil.example", "alice@example.net", forged);
    assert_eq!(r["data"][0], 250, "{r}");
    let mail = tag.wait_for_mail("example.net", "alice", 1, Duration::from_secs(20));
    assert!(String::from_utf8_lossy(&mail[0]).contains("X-Port25-Tag: \"DMARC policy of bank.example (p=reject)"));
}

/// SERVFAIL for the SPF and DMARC records: temperror in the field, and the
/// message is accepted (a DNS failure never rejects), though the domain's
/// policy would be p=reject.
#[test]
fn dns_servfail_gives_temperror_and_acceptance() {
    let dns = DnsServer::start();
    dns.fail("flaky.example", 16, Failure::ServFail);
    dns.fail("_dmarc.flaky.example", 16, Failure::ServFail);
    let s = mx_with_auth(&dns, "");
    let m = "From: a@flaky.example\r\nTo: alice@example.net\r\nSubject: s\r\n\r\nbody\r\n";
    let r = smtplib(s.addr(), "127.0.0.5", "mx.flaky.example", "a@flaky.example", "alice@example.net", m);
    assert_eq!(r["data"][0], 250, "{r}");
    let mail = s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(20));
    let text = String::from_utf8_lossy(&mail[0]).into_owned();
    let ars = authentication_results(&text);
    let results = &ars[0].1;
    assert_eq!(find(results, "spf", "smtp.mailfrom").1, "temperror", "{text}");
    assert_eq!(find(results, "dmarc", "header.from").1, "temperror", "{text}");
}

/// iprev (FCrDNS) against the test's DNS, through the library the MX and
/// `port25 mx explain` use (a loopback client's PTR never reaches a DNS
/// server, RFC 6761): a PTR that resolves back passes, one that does not
/// fails, none is permerror, SERVFAIL temperror, a 255-byte PTR name is
/// handled like any other.
#[test]
fn iprev_asks_the_dns() {
    let dns = DnsServer::start();
    let ip = |d: u8| IpAddr::V4(Ipv4Addr::new(192, 0, 2, d));
    dns.ptr(ip(1), "mail.good.example");
    dns.add("mail.good.example", crate::dns::Rr::A(Ipv4Addr::new(192, 0, 2, 1)));
    dns.ptr(ip(2), "liar.example");
    dns.add("liar.example", crate::dns::Rr::A(Ipv4Addr::new(198, 51, 100, 9)));
    dns.fail(&crate::dns::reverse_name(ip(4)), 12, Failure::ServFail);
    let long = format!("{}.{}.{}.{}.example", "a".repeat(60), "b".repeat(60), "c".repeat(60), "d".repeat(54));
    dns.ptr(ip(5), &long);
    let auth = authenticator(&dns);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let outcome = |d: u8| rt.block_on(auth.iprev(ip(d)));
    assert_eq!(outcome(1).outcome.as_str(), "pass");
    assert!(outcome(1).reason.contains("mail.good.example"));
    assert_eq!(outcome(2).outcome.as_str(), "fail");
    assert_eq!(outcome(3).outcome.as_str(), "permerror", "no PTR");
    assert_eq!(outcome(4).outcome.as_str(), "temperror", "SERVFAIL");
    assert!(["fail", "permerror", "temperror"].contains(&outcome(5).outcome.as_str()));
}

/// The library's authenticator asking `dns`, as `port25 serve` builds it.
fn authenticator(dns: &DnsServer) -> port25_mx::auth::Authenticator {
    use port25_mx::auth::{Action, Authenticator, Settings};
    Authenticator::new(Settings {
        authserv_id: "mx.test.example".into(),
        nameservers: vec![dns.addr],
        dns_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        dmarc_reject: Action::Reject,
        dmarc_quarantine: Action::Tag,
        spf_fail: Action::Ignore,
        max_signatures: 5,
        public_suffix_list: port25_config::DEBIAN_PUBLIC_SUFFIX_LIST.into(),
    })
    .expect("Debian package publicsuffix is needed (apt-get install publicsuffix)")
}

/// Hostile DNS answers: an SPF include loop, more than 10 DNS mechanisms,
/// three void lookups, a huge TXT record, a malformed DKIM key: each a
/// clear permerror (or temperror), the message accepted, no crash.
#[test]
fn hostile_dns_answers_are_permerrors_not_crashes() {
    let dns = DnsServer::start();
    dns.txt("loop.example", "v=spf1 include:loop2.example -all");
    dns.txt("loop2.example", "v=spf1 include:loop.example -all");
    let many: Vec<String> = (0..12).map(|i| format!("a:h{i}.many.example")).collect();
    dns.txt("many.example", &format!("v=spf1 {} -all", many.join(" ")));
    for i in 0..12 {
        dns.add(&format!("h{i}.many.example"), crate::dns::Rr::A(Ipv4Addr::new(192, 0, 2, i)));
    }
    // Exactly 10 DNS mechanisms is within the limit.
    dns.txt("ten.example", &format!("v=spf1 {} ip4:127.0.0.0/8 -all", many[..10].join(" ")));
    dns.txt("void.example", "v=spf1 a:nx1.void.example a:nx2.void.example a:nx3.void.example ip4:127.0.0.0/8 -all");
    dns.txt("two.example", "v=spf1 a:nx1.two.example a:nx2.two.example ip4:127.0.0.0/8 -all");
    let huge = format!("v=spf1 {}-all", "ip4:192.0.2.1 ".repeat(300));
    dns.txt("huge.example", &huge);
    dns.txt("badkey._domainkey.keys.example", "v=DKIM1; k=rsa; p=bm90IGEga2V5");
    let s = mx_with_auth(&dns, "");
    let cases = [
        ("loop.example", "permerror"),
        ("many.example", "permerror"),
        ("ten.example", "pass"),
        ("void.example", "permerror"),
        ("two.example", "pass"),
    ];
    for (n, (domain, want)) in cases.iter().enumerate() {
        let m = format!("From: a@{domain}\r\nSubject: {n}\r\n\r\nbody\r\n");
        let r = smtplib(s.addr(), "127.0.0.1", "h.test", &format!("a@{domain}"), "alice@example.net", &m);
        assert_eq!(r["data"][0], 250, "{domain}: {r}");
        let mail = s.wait_for_mail("example.net", "alice", n + 1, Duration::from_secs(20));
        let text = mail
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .find(|t| t.contains(&format!("Subject: {n}\r\n")))
            .unwrap();
        let ars = authentication_results(&text);
        assert_eq!(find(&ars[0].1, "spf", "smtp.mailfrom").1, *want, "{domain}: {text}");
    }
    // The huge record (4 KB, more than a UDP answer holds; this DNS server
    // has no TCP): an error result (temperror here), never a pass, accepted.
    let m = "From: a@huge.example\r\nSubject: huge\r\n\r\nbody\r\n";
    let r = smtplib(s.addr(), "127.0.0.1", "h.test", "a@huge.example", "bob@example.net", m);
    assert_eq!(r["data"][0], 250, "{r}");
    // A signature whose key does not parse.
    let signed = "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=keys.example; s=badkey; h=from:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n\
                  From: a@keys.example\r\nSubject: key\r\n\r\n";
    let r = smtplib(s.addr(), "127.0.0.1", "h.test", "a@keys.example", "bob@example.net", signed);
    assert_eq!(r["data"][0], 250, "{r}");
    let mail = s.wait_for_mail("example.net", "bob", 2, Duration::from_secs(20));
    assert_eq!(mail.len(), 2);
    let text =
        mail.iter().map(|m| String::from_utf8_lossy(m).into_owned()).find(|t| t.contains("Subject: key")).unwrap();
    let ars = authentication_results(&text);
    let dkim = find(&ars[0].1, "dkim", "header.d");
    assert_eq!(dkim.1, "permerror", "{text}");
    let text =
        mail.iter().map(|m| String::from_utf8_lossy(m).into_owned()).find(|t| t.contains("Subject: huge")).unwrap();
    let spf = find(&authentication_results(&text)[0].1, "spf", "smtp.mailfrom").1.clone();
    assert!(["permerror", "temperror", "fail"].contains(&spf.as_str()), "{text}");
}

/// Greylisting with Python smtplib: the first attempt gets 451 4.7.1, a
/// retry before the delay 451 again, a retry after it 250 (and the mail
/// arrives); then the sender's network and domain are allowlisted, and a
/// sender whose MAIL FROM passes SPF is never delayed.
#[test]
fn greylisting_defers_the_first_attempt_and_accepts_the_retry() {
    let dns = DnsServer::start();
    dns.txt("big.example", "v=spf1 ip4:127.0.0.0/8 -all");
    // A DNSWL: 127.0.0.11 listed (127.0.10.2), 127.0.0.12 answered with
    // dnswl.org's "query refused" code, which lists nobody.
    dns.add("11.0.0.127.wl.test", crate::dns::Rr::A(Ipv4Addr::new(127, 0, 10, 2)));
    dns.add("12.0.0.127.wl.test", crate::dns::Rr::A(Ipv4Addr::new(127, 0, 0, 255)));
    let s = Server::start(
        &format!(
            "domains = [\"example.net\"]\nrecipients = [\"alice@example.net\", \"bob@example.net\"]\n\
             [mx.auth]\nnameservers = [\"{}\"]\ndns_timeout_secs = 2\n[mx.greylist]\nenabled = true\ndelay_secs = 10\ndnswl = [\"wl.test\"]\n",
            dns.addr
        ),
        MX_LISTENER,
    );
    let m = "From: a@new.example\r\nSubject: grey\r\n\r\nbody\r\n";
    let first = Instant::now();
    let r = smtplib(s.addr(), "127.0.0.3", "h.new.example", "a@new.example", "alice@example.net", m);
    assert_eq!(r["rcpt"][0], 451, "{r}");
    assert!(r["rcpt"][1].as_str().unwrap().starts_with("4.7.1"), "{r}");
    let r = smtplib(s.addr(), "127.0.0.3", "h.new.example", "a@new.example", "alice@example.net", m);
    assert_eq!(r["rcpt"][0], 451, "too early ({:?} after the first): {r}", first.elapsed());
    std::thread::sleep(Duration::from_secs(10).saturating_sub(first.elapsed()) + Duration::from_millis(500));
    // A retry from another address of the same /24 (a pool) counts.
    let r = smtplib(s.addr(), "127.0.0.4", "h.new.example", "a@new.example", "alice@example.net", m);
    assert_eq!((r["rcpt"][0].as_u64(), r["data"][0].as_u64()), (Some(250), Some(250)), "{r}");
    assert_eq!(s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(20)).len(), 1);
    // Allowlisted now: another recipient, no delay.
    let r = smtplib(s.addr(), "127.0.0.3", "h.new.example", "b@new.example", "bob@example.net", m);
    assert_eq!(r["rcpt"][0], 250, "{r}");
    // SPF pass: exempt at once.
    let r = smtplib(s.addr(), "127.0.0.9", "h.big.example", "news@big.example", "alice@example.net", m);
    assert_eq!(r["rcpt"][0], 250, "{r}");
    let ev = s.wait_event_where("port25.mx.greylist", Duration::from_secs(5), |v| {
        v["reason"].as_str().is_some_and(|r| r.starts_with("SPF pass"))
    });
    assert!(ev.is_some(), "{:?}", s.events("port25.mx.greylist"));
    let r = smtplib(s.addr(), "127.0.0.11", "h.listed.example", "a@listed.example", "alice@example.net", m);
    assert_eq!(r["rcpt"][0], 250, "DNSWL-listed: {r}");
    let r = smtplib(s.addr(), "127.0.0.12", "h.refused.example", "a@refused.example", "alice@example.net", m);
    assert_eq!(r["rcpt"][0], 451, "127.0.0.255 is no listing: {r}");
    // Triplets are in the SQLite database under data_dir.
    assert!(Path::new(&s.data().join("greylist.sqlite")).exists());
}

/// SPF `-all` failing for MAIL FROM (no DMARC record): by default only
/// the header says so (forwarded mail fails SPF, RFC 7489 10.1);
/// `spf_fail = "reject"` refuses it with 550 5.7.1, `"tag"` tags it.
#[test]
fn spf_fail_action_is_configurable() {
    let dns = DnsServer::start();
    dns.txt("strict.example", "v=spf1 ip4:192.0.2.1 -all");
    let m = "From: a@strict.example\r\nSubject: spf\r\n\r\nbody\r\n";
    for (action, code, tagged) in [("ignore", 250, false), ("tag", 250, true), ("reject", 550, false)] {
        let s = mx_with_auth(&dns, &format!("spf_fail = \"{action}\"\n"));
        let r = smtplib(s.addr(), "127.0.0.6", "h.test", "a@strict.example", "alice@example.net", m);
        assert_eq!(r["data"][0], code, "{action}: {r}");
        if code == 550 {
            assert!(r["data"][1].as_str().unwrap().starts_with("5.7.1"), "{r}");
            continue;
        }
        let mail = s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(20));
        let text = String::from_utf8_lossy(&mail[0]).into_owned();
        assert_eq!(find(&authentication_results(&text)[0].1, "spf", "smtp.mailfrom").1, "fail", "{text}");
        assert_eq!(
            text.contains("X-Port25-Tag: \"SPF: strict.example does not designate 127.0.0.6"),
            tagged,
            "{action}: {text}"
        );
    }
}

/// Many forged messages at once (60 sessions from 6 addresses, each
/// ending DATA together, each with its own envelope domain to look up):
/// every one is refused, none slips through as a temperror of a resolver
/// with many questions in flight.
#[test]
fn forged_mail_in_a_burst_is_all_refused() {
    let dns = DnsServer::start();
    dns.txt("bank.example", "v=spf1 ip4:192.0.2.1 -all");
    dns.txt("_dmarc.bank.example", "v=DMARC1; p=reject");
    let s = mx_with_auth(&dns, "");
    let script = r#"
import smtplib, sys, threading, json
port = int(sys.argv[1])
codes = []
barrier = threading.Barrier(60)
def one(i):
    s = smtplib.SMTP("127.0.0.1", port, timeout=60, source_address=("127.0.1.%d" % (1 + i % 6), 0))
    s.ehlo("mail.evil.example")
    s.mail("x%d@evil%d.example" % (i, i))
    s.rcpt("alice@example.net")
    s.putcmd("data")
    s.getreply()
    barrier.wait()
    s.send(b"From: ceo@bank.example\r\nSubject: %d\r\n\r\nbody\r\n.\r\n" % i)
    codes.append(s.getreply()[0])
    s.close()
threads = [threading.Thread(target=one, args=(i,)) for i in range(60)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(codes))
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(s.addr().port().to_string()).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let codes: Vec<u16> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(codes.len(), 60);
    assert!(codes.iter().all(|&c| c == 550), "{codes:?}");
}
