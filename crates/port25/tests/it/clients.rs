//! Real SMTP clients against the MX: swaks, Python smtplib, curl.

use crate::harness::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn swaks_delivers_plain_and_over_starttls() {
    let s = Server::mx();
    let swaks = require("swaks");
    for (i, tls) in [false, true].into_iter().enumerate() {
        let mut cmd = Command::new(&swaks);
        cmd.args([
            "--server",
            &s.addr().to_string(),
            "--from",
            "sender@remote.example",
            "--to",
            "alice@example.net",
            "--ehlo",
            "client.remote.example",
        ])
        .args(["--header", &format!("Subject: swaks test {i}"), "--body", "hello from swaks"]);
        if tls {
            cmd.arg("--tls");
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "swaks failed: {text}\nserver log: {:#?}",
            s.log.lock().unwrap().iter().rev().take(6).collect::<Vec<_>>()
        );
        // swaks marks lines sent over TLS with "~" instead of "-".
        let queued = if tls { "<~  250 2.0.0 Ok: queued as" } else { "<-  250 2.0.0 Ok: queued as" };
        assert!(text.contains(queued), "{text}");
        if tls {
            assert!(text.contains("<-  220 2.0.0 Ready to start TLS"), "{text}");
            assert!(text.contains("TLS started"), "{text}");
        }
    }
    let mail = s.wait_for_mail("example.net", "alice", 2, Duration::from_secs(10));
    assert_eq!(mail.len(), 2);
    let texts: Vec<String> = mail.iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect();
    let tls_copy = texts.iter().find(|t| t.contains("swaks test 1")).expect("TLS message delivered");
    assert!(
        tls_copy.starts_with("Return-Path: <sender@remote.example>\r\nDelivered-To: alice@example.net\r\nReceived: from client.remote.example ([127.0.0.1])"),
        "{tls_copy}"
    );
    assert!(tls_copy.contains("with ESMTPS id"), "{tls_copy}");
    assert!(tls_copy.contains("(using TLSv1.3 with cipher"), "{tls_copy}");
    let plain = texts.iter().find(|t| t.contains("swaks test 0")).unwrap();
    assert!(plain.contains("with ESMTP id") && !plain.contains("ESMTPS"), "{plain}");
}

#[test]
fn python_smtplib_starttls_smtputf8_and_refusals() {
    let s = Server::mx();
    let script = r#"
import smtplib, ssl, sys
host, port = sys.argv[1], int(sys.argv[2])
s = smtplib.SMTP(host, port, timeout=20)
code, _ = s.ehlo("py.remote.example")
assert code == 250
for ext in ("pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes", "starttls"):
    assert s.has_extn(ext), ext
assert not s.has_extn("auth"), "the MX must not offer AUTH"
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s.starttls(context=ctx)
s.ehlo("py.remote.example")
assert not s.has_extn("starttls")
assert not s.has_extn("auth")
msg = "From: j\u00e3o@remetente.example\r\nTo: bob@example.net\r\nSubject: ol\u00e1\r\n\r\n.leading dot line\r\nmore\r\n".encode("utf-8")
refused = s.sendmail("j\u00e3o@remetente.example", ["bob@example.net", "x@elsewhere.example"], msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
assert list(refused) == ["x@elsewhere.example"], refused
assert refused["x@elsewhere.example"][0] == 554
code, text = s.verify("bob@example.net")
assert code == 252, (code, text)
try:
    s.sendmail("a@remote.example", ["nobody@elsewhere.example"], b"x")
    raise SystemExit("relay accepted")
except smtplib.SMTPRecipientsRefused as e:
    assert e.recipients["nobody@elsewhere.example"][0] == 554
s.quit()
print("ok")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg("127.0.0.1")
        .arg(s.addr().port().to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "smtplib: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mail = s.wait_for_mail("example.net", "bob", 1, Duration::from_secs(10));
    assert_eq!(mail.len(), 1);
    let text = String::from_utf8(mail[0].clone()).unwrap();
    assert!(text.contains("Subject: ol\u{e1}"), "{text}");
    assert!(text.contains("\r\n.leading dot line\r\n"), "dot-stuffing must be undone exactly: {text}");
    assert!(text.contains("with UTF8SMTPS id"), "{text}");
    assert!(text.contains("Return-Path: <j\u{e3}o@remetente.example>"), "{text}");
}

#[test]
fn curl_smtp_upload() {
    let s = Server::mx();
    let curl = require("curl");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mail.txt");
    std::fs::write(&file, "From: c@remote.example\r\nTo: carol@example.org\r\nSubject: via curl\r\n\r\nbody\r\n")
        .unwrap();
    let out = Command::new(curl)
        .args([
            "-sS",
            "--url",
            &format!("smtp://{}", s.addr()),
            "--mail-from",
            "c@remote.example",
            "--mail-rcpt",
            "carol@example.org",
            "--upload-file",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let mail = s.wait_for_mail("example.org", "carol", 1, Duration::from_secs(10));
    assert_eq!(mail.len(), 1);
    assert!(String::from_utf8_lossy(&mail[0]).contains("Subject: via curl"));
    // curl's --ssl-reqd with STARTTLS against the self-signed certificate.
    let out = Command::new(require("curl"))
        .args([
            "-sS",
            "-k",
            "--ssl-reqd",
            "--url",
            &format!("smtp://{}", s.addr()),
            "--mail-from",
            "c@remote.example",
            "--mail-rcpt",
            "carol@example.org",
            "--upload-file",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "curl STARTTLS: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.wait_for_mail("example.org", "carol", 2, Duration::from_secs(10)).len(), 2);
}
