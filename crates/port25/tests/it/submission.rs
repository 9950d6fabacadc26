//! Submission (587/465): real clients (swaks, Python smtplib, curl) log in
//! with PLAIN and LOGIN over STARTTLS and implicit TLS; every refusal is
//! checked by its reply code and every acceptance by the bytes in Maildir.

use crate::harness::*;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub(crate) const ALICE: &str = "alice@example.net";
pub(crate) const ALICE_PW: &str = "alice correct horse";

/// MX, 587-style STARTTLS, 465-style implicit TLS, and a plaintext-AUTH
/// listener for byte-exact protocol tests; `submission` is the body of
/// the [submission] table.
pub(crate) fn listeners(submission: &str) -> String {
    format!(
        "[submission]\n{submission}\n{MX_LISTENER}\
         [[listener]]\nname = \"submission\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"starttls\"\n\
         [[listener]]\nname = \"submissions\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"implicit\"\n\
         [[listener]]\nname = \"plain\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"none\"\nplaintext_auth = true\n"
    )
}

/// The test server's [mx]: its domains and the local mailboxes that exist.
pub(crate) const MX: &str = "domains = [\"example.net\", \"example.org\"]\nrecipients = [\"bob@example.net\", \"carol@example.net\", \"dave@example.net\", \"carol@example.org\"]\nrecipient_delimiter = \"+\"";

pub(crate) fn server(submission: &str) -> Server {
    let s = Server::start(MX, &listeners(submission));
    users(&s, &["add", ALICE], ALICE_PW);
    s
}

pub(crate) fn addr(s: &Server, name: &str) -> SocketAddr {
    s.addrs.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no listener {name}: {:?}", s.addrs)).1
}

/// Runs `port25 users ARGS --config <the server's file>` with `stdin`.
pub(crate) fn users(s: &Server, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("users")
        .args(args)
        .arg("--config")
        .arg(s.dir.path().join("port25.toml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A command that reads nothing may exit before the write: EPIPE is fine.
    let _ = child.stdin.take().unwrap().write_all(format!("{stdin}\n").as_bytes());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() || args[0] == "import",
        "port25 users {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The events `id` once there are at least `n` (the log is read by
/// another thread, a moment after the client saw the reply).
pub(crate) fn events(s: &Server, id: &str, n: usize) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let found = s.events(id);
        if found.len() >= n || start.elapsed() > Duration::from_secs(10) {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn python(script: &str, args: &[String]) -> String {
    let out = Command::new("python3").arg("-c").arg(script).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python: {text}");
    text
}

fn swaks(args: &[&str]) -> String {
    let out = Command::new(require("swaks")).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Logs in on the plaintext listener with AUTH PLAIN; returns the reply.
pub(crate) fn login(c: &mut Client, user: &str, password: &str) -> String {
    let token = port25_b64(&format!("\0{user}\0{password}"));
    c.cmd(&format!("AUTH PLAIN {token}"))
}

pub(crate) fn port25_b64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n =
            (chunk[0] as u32) << 16 | (*chunk.get(1).unwrap_or(&0) as u32) << 8 | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            out.push(if i <= chunk.len() { A[(n >> (18 - 6 * i)) as usize & 63] as char } else { '=' });
        }
    }
    out
}

#[test]
fn swaks_plain_over_starttls_and_login_over_implicit_tls() {
    let s = server("");
    let sub = addr(&s, "submission").to_string();
    let subs = addr(&s, "submissions").to_string();
    let base = ["--from", ALICE, "--to", "bob@example.net", "--auth-user", ALICE, "--auth-password", ALICE_PW];
    let text = swaks(
        &[&["--server", sub.as_str(), "--tls", "--auth", "PLAIN", "--header", "Subject: via 587"][..], &base].concat(),
    );
    assert!(text.contains("<~  235 2.7.0 Authentication successful"), "{text}");
    assert!(text.contains("<~  250 2.0.0 Ok: queued as"), "{text}");
    let text = swaks(
        &[&["--server", subs.as_str(), "--tlsc", "--auth", "LOGIN", "--header", "Subject: via 465"][..], &base]
            .concat(),
    );
    assert!(text.contains("<~  334 VXNlcm5hbWU6") && text.contains("<~  334 UGFzc3dvcmQ6"), "{text}");
    assert!(text.contains("<~  235 2.7.0 Authentication successful"), "{text}");
    assert!(text.contains("<~  250 2.0.0 Ok: queued as"), "{text}");
    // A wrong password over implicit TLS.
    let text = swaks(&[
        "--server",
        &subs,
        "--tlsc",
        "--auth",
        "PLAIN",
        "--from",
        ALICE,
        "--to",
        "bob@example.net",
        "--auth-user",
        ALICE,
        "--auth-password",
        "wrong",
    ]);
    assert!(text.contains("<~* 535 5.7.8 Authentication credentials invalid"), "{text}");

    let mail = s.wait_for_mail("example.net", "bob", 2, Duration::from_secs(10));
    assert_eq!(mail.len(), 2);
    for m in &mail {
        let m = String::from_utf8_lossy(m);
        assert!(m.contains("with ESMTPSA id"), "RFC 3848 ESMTPSA: {m}");
        assert!(m.contains("(using TLSv1.3 with cipher") || m.contains("(using TLSv1.2 with cipher"), "{m}");
    }
    assert_eq!(events(&s, "port25.smtp.auth.accepted", 2).len(), 2);
    let failed = events(&s, "port25.submission.auth.failed", 1);
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0]["user"].as_str(), failed[0]["reason"].as_str()), (Some(ALICE), Some("wrong password")));
}

const SMTPLIB: &str = r#"
import smtplib, ssl, sys
host, port, port_ssl, user, pw = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE

s = smtplib.SMTP(host, port, timeout=20)
s.ehlo("laptop.example")
assert s.has_extn("starttls") and not s.has_extn("auth"), "AUTH must not be offered before TLS"
code, text = s.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUubmV0AHg=")
assert code == 538 and b"5.7.11" in text and b"STARTTLS" in text, (code, text)
code, text = s.docmd("MAIL", "FROM:<%s>" % user)
assert code == 530 and b"5.7.0" in text, (code, text)
s.starttls(context=ctx)
s.ehlo("laptop.example")
assert s.has_extn("auth") and "PLAIN" in s.esmtp_features["auth"] and "LOGIN" in s.esmtp_features["auth"], s.esmtp_features
code, text = s.mail(user)
assert code == 530, (code, text)
s.rset()
try:
    s.login(user, "not the password")
    raise SystemExit("wrong password accepted")
except smtplib.SMTPAuthenticationError as e:
    assert e.smtp_code == 535 and b"5.7.8" in e.smtp_error, e
s.login(user, pw)
# Sender binding: MAIL FROM, then the From: header.
code, text = s.mail("bob@example.net")
assert code == 553 and b"5.7.1" in text and b"alice@example.net" in text, (code, text)
try:
    s.sendmail(user, ["bob@example.net"], b"From: Bob <bob@example.net>\r\nSubject: forged\r\n\r\nx\r\n")
    raise SystemExit("forged From: accepted")
except smtplib.SMTPDataError as e:
    assert e.smtp_code == 553 and b"5.7.1" in e.smtp_error and b"From:" in e.smtp_error, e
try:
    s.sendmail(user, ["bob@example.net"], b"Subject: no from\r\n\r\nx\r\n")
    raise SystemExit("message without From: accepted")
except smtplib.SMTPDataError as e:
    assert e.smtp_code == 550, e
# Remote recipients go to the outbound queue; address literals do not.
code, text = s.mail(user)
assert code == 250
code, text = s.rcpt("someone@elsewhere.example")
assert code == 250, (code, text)
code, text = s.rcpt("someone@[192.0.2.1]")
assert code == 550 and b"5.7.1" in text, (code, text)
s.rset()
# Accepted: no Message-ID, no Date; they are added.
s.sendmail(user, ["bob@example.net"], b"From: Alice <ALICE@example.net>\r\nTo: bob@example.net\r\nSubject: fixed by the MSA\r\n\r\nhello\r\n")
s.quit()

s = smtplib.SMTP_SSL(host, port_ssl, timeout=20, context=ctx)
s.ehlo("laptop.example")
assert s.has_extn("auth") and not s.has_extn("starttls")
s.login(user, pw)
s.sendmail(user, ["bob@example.net"], b"From: alice@example.net\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <kept@laptop.example>\r\nSubject: over 465\r\n\r\nhi\r\n")
s.quit()
print("ok")
"#;

#[test]
fn smtplib_starttls_ssl_binding_and_message_fixes() {
    let s = server("");
    let args = vec![
        "127.0.0.1".into(),
        addr(&s, "submission").port().to_string(),
        addr(&s, "submissions").port().to_string(),
        ALICE.into(),
        ALICE_PW.into(),
    ];
    python(SMTPLIB, &args);
    let mail = s.wait_for_mail("example.net", "bob", 2, Duration::from_secs(10));
    assert_eq!(mail.len(), 2);
    let texts: Vec<String> = mail.iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect();
    let fixed = texts.iter().find(|t| t.contains("fixed by the MSA")).unwrap();
    let id_line = fixed
        .lines()
        .find(|l| l.starts_with("Message-ID: <"))
        .unwrap_or_else(|| panic!("no Message-ID added: {fixed}"));
    assert!(id_line.ends_with("@mx.test.example>"), "{id_line}");
    assert!(fixed.lines().any(|l| l.starts_with("Date: ") && l.ends_with(" +0000")), "{fixed}");
    assert!(fixed.contains("with ESMTPSA id"), "{fixed}");
    let kept = texts.iter().find(|t| t.contains("over 465")).unwrap();
    assert_eq!(kept.matches("Message-ID:").count(), 1, "{kept}");
    assert!(
        kept.contains("Message-ID: <kept@laptop.example>") && kept.contains("Date: Mon, 23 Nov 2026 10:00:00 +0000"),
        "{kept}"
    );
    let rejected = events(&s, "port25.submission.sender.rejected", 2);
    let fields: Vec<&str> = rejected.iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, vec!["MAIL FROM", "the From: header"], "{rejected:?}");
    assert!(s.all_mail().iter().all(|m| !String::from_utf8_lossy(m).contains("forged")));
}

#[test]
fn curl_smtps_and_starttls_with_user() {
    let s = server("");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mail.txt");
    std::fs::write(&file, "From: alice@example.net\r\nTo: carol@example.org\r\nSubject: via curl\r\n\r\nbody\r\n")
        .unwrap();
    let user = format!("{ALICE}:{ALICE_PW}");
    for url in [
        format!("smtps://127.0.0.1:{}", addr(&s, "submissions").port()),
        format!("smtp://127.0.0.1:{}", addr(&s, "submission").port()),
    ] {
        let out = Command::new(require("curl"))
            .args([
                "-sS",
                "-k",
                "--ssl-reqd",
                "--url",
                &url,
                "--user",
                &user,
                "--mail-from",
                ALICE,
                "--mail-rcpt",
                "carol@example.org",
                "--upload-file",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = Command::new(require("curl"))
        .args([
            "-sS",
            "-k",
            "--url",
            &format!("smtps://127.0.0.1:{}", addr(&s, "submissions").port()),
            "--user",
            &format!("{ALICE}:bad"),
        ])
        .args(["--mail-from", ALICE, "--mail-rcpt", "carol@example.org", "--upload-file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(67), "curl: login denied is exit 67: {}", String::from_utf8_lossy(&out.stderr));
    let mail = s.wait_for_mail("example.org", "carol", 2, Duration::from_secs(10));
    assert_eq!(mail.len(), 2);
    assert!(mail.iter().all(|m| String::from_utf8_lossy(m).contains("with ESMTPSA id")));
}

#[test]
fn auth_exchange_byte_by_byte() {
    let s = server("");
    let mut c = Client::open(addr(&s, "plain"));
    assert_eq!(code(&c.cmd("AUTH PLAIN")), 503, "EHLO first");
    let ehlo = c.cmd("EHLO client.example");
    assert!(ehlo.contains("250-AUTH PLAIN LOGIN\r\n") || ehlo.contains("250 AUTH PLAIN LOGIN\r\n"), "{ehlo}");
    assert_eq!(c.cmd("AUTH PLAIN"), "334 \r\n");
    assert_eq!(c.cmd("*"), "501 5.0.0 Authentication cancelled\r\n");
    assert_eq!(c.cmd("AUTH PLAIN"), "334 \r\n");
    assert!(c.cmd("AGFsaWNl AHg=").starts_with("501 5.5.2 Cannot decode"), "spaces are not base64");
    assert!(c.cmd("AUTH PLAIN AGFsaWNlAHg").starts_with("501 5.5.2"), "padding is required");
    assert!(c.cmd("AUTH PLAIN YWxpY2U=").starts_with("501 5.5.2 Malformed PLAIN"), "no NULs");
    assert!(c.cmd("AUTH CRAM-MD5").starts_with("504 5.5.4"));
    assert_eq!(c.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(c.cmd(&port25_b64(ALICE)), "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(c.cmd("*"), "501 5.0.0 Authentication cancelled\r\n");
    assert_eq!(
        c.cmd("MAIL FROM:<alice@example.net>"),
        "530 5.7.0 Authentication required: this is the submission service; log in with AUTH before sending\r\n"
    );
    assert_eq!(
        c.cmd(&format!("AUTH LOGIN {}", port25_b64(ALICE))),
        "334 UGFzc3dvcmQ6\r\n",
        "LOGIN with the user as initial response"
    );
    assert_eq!(c.cmd(&port25_b64("wrong")), "535 5.7.8 Authentication credentials invalid\r\n");
    assert_eq!(login(&mut c, ALICE, ALICE_PW), "235 2.7.0 Authentication successful\r\n");
    assert!(login(&mut c, ALICE, ALICE_PW).starts_with("503 5.5.1 Already authenticated"));
    assert_eq!(code(&c.cmd("MAIL FROM:<alice@example.net>")), 250);
    assert_eq!(code(&c.cmd("RSET")), 250);
    assert_eq!(code(&c.cmd("MAIL FROM:<alice+lists@example.net>")), 250, "an address extension of her own address");
    assert_eq!(code(&c.cmd("RSET")), 250);
    assert_eq!(code(&c.cmd("MAIL FROM:<bob+alice@example.net>")), 553);
    assert!(c.cmd("MAIL FROM:<>").starts_with("553 5.7.1"), "null sender from a client");
    let r = c.send_mail(ALICE, &["dave@example.net"], "From: alice@example.net\r\nSubject: raw\r\n\r\nbody");
    assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
    assert_eq!(code(&c.cmd("QUIT")), 221);

    // An authorization identity other than the login is refused.
    let mut c = Client::open(addr(&s, "plain"));
    c.cmd("EHLO client.example");
    let token = port25_b64(&format!("admin@example.net\0{ALICE}\0{ALICE_PW}"));
    assert_eq!(code(&c.cmd(&format!("AUTH PLAIN {token}"))), 535);
    let token = port25_b64(&format!("{ALICE}\0{ALICE}\0{ALICE_PW}"));
    assert_eq!(code(&c.cmd(&format!("AUTH PLAIN {token}"))), 235, "authzid equal to the login is fine");

    // The MX offers no AUTH at all.
    let mut mx = Client::open(addr(&s, "mx"));
    assert!(!mx.cmd("EHLO client.example").contains("AUTH"));
    assert_eq!(code(&login(&mut mx, ALICE, ALICE_PW)), 503);
    let mail = s.wait_for_mail("example.net", "dave", 1, Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&mail[0]).contains("with ESMTPA id"), "plaintext AUTH: ESMTPA");
}

#[test]
fn no_relay_on_any_submission_listener_without_or_with_login() {
    let extra =
        "[[listener]]\nname = \"legacy25\"\naddress = \"127.0.0.1:0\"\nservice = \"mx\"\nlegacy_submission = true\n";
    let s = Server::start(
        "domains = [\"example.net\", \"example.org\"]\nrecipients = [\"bob@example.net\", \"carol@example.net\", \"dave@example.net\", \"carol@example.org\"]",
        &(listeners("") + extra),
    );
    users(&s, &["add", ALICE], ALICE_PW);
    // Without a login, nothing at all; after a failed login, neither.
    let mut c = Client::open(addr(&s, "plain"));
    c.cmd("EHLO client.example");
    assert_eq!(code(&c.cmd("MAIL FROM:<alice@example.net>")), 530);
    assert_eq!(code(&c.cmd("RCPT TO:<victim@elsewhere.example>")), 503);
    assert_eq!(code(&login(&mut c, ALICE, "guess")), 535);
    assert_eq!(code(&c.cmd("MAIL FROM:<alice@example.net>")), 530);
    // The TLS listeners are the same policy: no MAIL without a login.
    let script = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20); s.starttls(context=ctx); s.ehlo("x.example")
a = s.mail("alice@example.net")[0]; b = s.rcpt("victim@elsewhere.example")[0]
t = smtplib.SMTP_SSL("127.0.0.1", int(sys.argv[2]), timeout=20, context=ctx); t.ehlo("x.example")
print(a, b, t.mail("alice@example.net")[0], t.rcpt("victim@elsewhere.example")[0])
"#;
    let ports = [addr(&s, "submission").port().to_string(), addr(&s, "submissions").port().to_string()];
    assert_eq!(python(script, &ports).trim(), "530 503 530 503");
    // Logged in: every relay trick is still refused.
    let mut accepted = Vec::new();
    for (what, _, _, rcpt) in crate::relay::TRICKS {
        let mut c = Client::open(addr(&s, "plain"));
        c.cmd("EHLO client.example");
        assert_eq!(code(&login(&mut c, ALICE, ALICE_PW)), 235);
        assert_eq!(code(&c.cmd("MAIL FROM:<alice@example.net>")), 250);
        let r = c.cmd(&format!("RCPT TO:{rcpt}"));
        if code(&r) < 400 || code(&r) == 0 {
            accepted.push(format!("{what}: {r}"));
        }
        if code(&r) < 400 {
            c.send(b"DATA\r\n");
            c.reply();
            c.send(b"From: alice@example.net\r\n\r\nrelay?\r\n.\r\n");
            c.reply();
        }
    }
    // A logged-in user may send to other domains (that is submission: the
    // outbound queue carries it), but never through a routing trick.
    let remote = [
        "foreign domain",
        "quoted local part at a foreign domain",
        "local domain as a prefix",
        "local domain label inside a foreign name",
        "subdomain of a local domain",
        "localhost is not local here",
        "null sender",
        "spoofed local sender",
        "HELO claiming to be us",
        "foreign postmaster",
        "IDN look-alike",
        "trailing dot",
    ];
    accepted.retain(|a| !remote.iter().any(|r| a.starts_with(&format!("{r}: "))));
    assert!(accepted.is_empty(), "relayed: {accepted:#?}");
    // The same tricks after a login over STARTTLS on 587 and on port 25 with
    // legacy submission on.
    let script = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
port, user, pw, tricks = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
# One session per trick: refusals count as errors, and 20 close a session.
for t in tricks:
    s = smtplib.SMTP("127.0.0.1", port, timeout=20); s.starttls(context=ctx); s.ehlo("x.example"); s.login(user, pw)
    assert s.mail(user)[0] == 250
    code, text = s.docmd("RCPT", "TO:" + t)
    if code < 400:
        print("accepted", t, code, text)
    s.quit()
print("done")
"#;
    // Plain foreign addresses are legitimate after a login (see `remote`).
    let tricks: Vec<String> =
        crate::relay::TRICKS.iter().filter(|t| !remote.contains(&t.0)).map(|t| t.3.to_owned()).collect();
    for listener in ["submission", "legacy25"] {
        let args =
            [vec![addr(&s, listener).port().to_string(), ALICE.into(), ALICE_PW.into()], tricks.clone()].concat();
        assert_eq!(python(script, &args).trim(), "done", "on {listener}");
    }
    std::thread::sleep(Duration::from_millis(300));
    // Only bounces (from the outbound queue, for names that do not resolve)
    // may reach a local mailbox.
    let local: Vec<String> = s
        .all_mail()
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .filter(|m| !m.contains("report-type=delivery-status"))
        .collect();
    assert!(local.is_empty(), "remote recipients must go to the outbound queue, not to local mailboxes: {local:?}");
}

#[test]
fn brute_force_slows_then_locks_address_and_login_but_spares_the_user() {
    let s = server(
        "auth_slow_after = 2\nauth_delay_step_ms = 300\nauth_max_delay_ms = 300\nauth_address_lock_after = 5\nauth_login_lock_after = 4\nauth_lockout_secs = 3\nauth_failure_window_secs = 60\n",
    );
    let script = r#"
import smtplib, sys, time, json
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def attempt(src, login, password):
    s = smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=(src, 0))
    s.ehlo("x.example")
    import base64
    token = base64.b64encode(b"\0" + login.encode() + b"\0" + password.encode()).decode()
    t = time.monotonic()
    code, text = s.docmd("AUTH", "PLAIN " + token)
    took = time.monotonic() - t
    s.quit()
    return code, text.decode(), took
out = {}
# Alice's own phone logs in first: a known device for her login.
out["phone"] = attempt("127.0.0.30", user, pw)[0]
# One address guessing several logins: slowed down, then locked out.
out["one_address"] = [attempt("127.0.0.2", "guess%d@example.net" % i, "x")[:3:2] for i in range(5)]
out["one_address_locked"] = attempt("127.0.0.2", user, pw)[:2]
# Many addresses guessing Alice's password: her login is locked...
out["many"] = [attempt("127.0.0.%d" % (10 + i), user, "x")[0] for i in range(4)]
out["login_locked"] = attempt("127.0.0.20", user, pw)[:2]
# ...but not on her phone.
out["phone_during_lock"] = attempt("127.0.0.30", user, pw)[0]
time.sleep(3.2)
out["after_lockout"] = attempt("127.0.0.21", user, pw)[0]
print(json.dumps(out))
"#;
    let text = python(script, &[addr(&s, "plain").port().to_string(), ALICE.into(), ALICE_PW.into()]);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["phone"], 235);
    let one: Vec<(u64, f64)> =
        v["one_address"].as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap())).collect();
    assert!(one.iter().all(|(c, _)| *c == 535), "{one:?}");
    // Only a lower bound: the slow-down is behaviour, a busy machine may add time anywhere.
    assert!(one[3].1 >= 0.28 && one[4].1 >= 0.28, "slowed down after auth_slow_after: {one:?}");
    assert_eq!(v["one_address_locked"][0], 454, "{v}");
    assert!(
        v["one_address_locked"][1].as_str().unwrap().contains("4.7.0 Too many failed logins from your address"),
        "{v}"
    );
    assert_eq!(v["many"], serde_json::json!([535, 535, 535, 535]));
    assert_eq!(v["login_locked"][0], 454);
    assert!(v["login_locked"][1].as_str().unwrap().contains("for this login"), "{v}");
    assert_eq!(v["phone_during_lock"], 235, "the user's own device is never locked out by others' guesses");
    assert_eq!(v["after_lockout"], 235, "the lock ends");
    let locks = events(&s, "port25.submission.lockout", 2);
    let scopes: Vec<(&str, &str)> =
        locks.iter().map(|e| (e["scope"].as_str().unwrap(), e["key"].as_str().unwrap())).collect();
    assert!(scopes.contains(&("address", "127.0.0.2")), "{scopes:?}");
    assert!(scopes.contains(&("login", ALICE)), "{scopes:?}");
}

#[test]
fn a_login_with_its_own_limits() {
    let s = server("messages_per_hour = 100\n");
    let out = users(&s, &["limits", ALICE, "--messages-per-hour", "1"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("messages_per_hour       1\n") && text.contains("messages_per_day        1000  (default)"),
        "{text}"
    );
    let mut c = Client::open(addr(&s, "plain"));
    c.cmd("EHLO client.example");
    assert_eq!(code(&login(&mut c, ALICE, ALICE_PW)), 235);
    assert_eq!(code(&c.send_mail(ALICE, &["bob@example.net"], "From: alice@example.net\r\n\r\nx")), 250);
    let r = c.cmd("MAIL FROM:<alice@example.net>");
    assert!(r.starts_with("450 4.7.1 Sending limit reached for alice@example.net: messages_per_hour is 1"), "{r}");
    // Back to the default: sending works again at once.
    users(&s, &["limits", ALICE], "");
    assert_eq!(code(&c.cmd("MAIL FROM:<alice@example.net>")), 250);
}

#[test]
fn per_login_limits_refuse_with_a_clear_reply() {
    let s = server("messages_per_hour = 2\nrecipients_per_message = 2\n");
    let mut c = Client::open(addr(&s, "plain"));
    c.cmd("EHLO client.example");
    assert_eq!(code(&login(&mut c, ALICE, ALICE_PW)), 235);
    assert_eq!(code(&c.cmd("MAIL FROM:<alice@example.net>")), 250);
    assert_eq!(code(&c.cmd("RCPT TO:<bob@example.net>")), 250);
    assert_eq!(code(&c.cmd("RCPT TO:<carol@example.net>")), 250);
    let r = c.cmd("RCPT TO:<dave@example.net>");
    assert!(
        r.starts_with("452 4.5.3 Too many recipients for one message: the limit for alice@example.net is 2"),
        "{r}"
    );
    c.cmd("RSET");
    for _ in 0..2 {
        let r = c.send_mail(ALICE, &["bob@example.net"], "From: alice@example.net\r\n\r\nx");
        assert_eq!(code(&r), 250, "{r}");
    }
    let start = Instant::now();
    let r = c.cmd("MAIL FROM:<alice@example.net>");
    assert!(
        r.starts_with(
            "450 4.7.1 Sending limit reached for alice@example.net: messages_per_hour is 2; try again in 60 minutes"
        ),
        "{r}"
    );
    assert!(start.elapsed() < Duration::from_secs(2), "refused, never silently delayed");
    let ev = events(&s, "port25.submission.limit", 2);
    let limits: Vec<&str> = ev.iter().map(|e| e["limit"].as_str().unwrap()).collect();
    assert_eq!(limits, vec!["recipients_per_message", "messages_per_hour"]);
    assert!(ev.iter().all(|e| e["user"] == ALICE));
    assert_eq!(s.wait_for_mail("example.net", "bob", 2, Duration::from_secs(10)).len(), 2);
}

#[test]
fn trusted_network_devices_submit_without_login_and_are_recorded() {
    let s = server("trusted_networks = [\"127.0.0.1/32\"]\n");
    let mut c = Client::open(addr(&s, "plain"));
    c.cmd("EHLO printer.example");
    let r = c.send_mail(
        "scanner@example.org",
        &["alice@example.net"],
        "From: Scanner <scanner@example.org>\r\nSubject: scan\r\n\r\nPDF",
    );
    assert_eq!(code(&r), 250, "{r}");
    let r = c.cmd("MAIL FROM:<printer@elsewhere.example>");
    assert!(r.starts_with("553 5.7.1") && r.contains("this provider's domains"), "{r}");
    let legacy = events(&s, "port25.submission.legacy", 2);
    assert_eq!(legacy.len(), 2, "every use is recorded");
    assert_eq!((legacy[0]["network"].as_str(), legacy[0]["listener"].as_str()), (Some("127.0.0.1/32"), Some("plain")));
    // Another loopback address is not in the network: AUTH is required.
    let out = python(
        "import smtplib,sys\ns=smtplib.SMTP('127.0.0.1',int(sys.argv[1]),source_address=('127.0.0.2',0))\ns.ehlo('x.example')\nprint(s.mail('scanner@example.org')[0])",
        &[addr(&s, "plain").port().to_string()],
    );
    assert_eq!(out.trim(), "530");
    let mail = s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&mail[0]).contains("Subject: scan"));
}

#[test]
fn users_import_list_passwd_and_delete() {
    let s = server("");
    let sub = addr(&s, "submission").to_string();
    // Hashes made by other programs for the password "secret":
    // `openssl passwd -6 -salt saltsaltsalt secret` and `htpasswd -bnBC 4 u secret`.
    let sha512 =
        "$6$saltsaltsalt$PMWE8DTlam1JU37Piyk43bHcMxTJq6sgu5DKB0/tGPjanN35jcY68QkpDfPFUGPWX5uCxIQkSPzMmqEiVNgts.";
    let bcrypt = "$2y$04$YLSvQOJ29sg3eEwc.mfkc.UpuzbA8tPu0/YrqKNs2y1dULMTowlhG";
    let file = s.dir.path().join("users.txt");
    std::fs::write(&file, format!("# migrated from the old server\nbob@example.net:{{SHA512-CRYPT}}{sha512}\nrole:{bcrypt}:@example.org\nbad:$1$x$y\n"))
        .unwrap();
    let out = users(&s, &["import", file.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 4: MD5-crypt") && err.contains("nothing was imported"), "{err}");
    std::fs::write(&file, format!("bob@example.net:{{SHA512-CRYPT}}{sha512}\nrole:{bcrypt}:@example.org\n")).unwrap();
    let out = users(&s, &["import", file.to_str().unwrap()], "");
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 added"), "{out:?}");
    let list = String::from_utf8_lossy(&users(&s, &["list"], "").stdout).into_owned();
    assert_eq!(list, "alice@example.net\targon2\talice@example.net\nbob@example.net\tsha512-crypt\tbob@example.net\nrole\tbcrypt\t@example.org\n");

    let send = |user: &str, pw: &str, from: &str| {
        swaks(&[
            "--server",
            &sub,
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            user,
            "--auth-password",
            pw,
            "--from",
            from,
            "--to",
            "alice@example.net",
        ])
    };
    assert!(
        send("bob@example.net", "secret", "bob@example.net").contains("<~  250 2.0.0 Ok: queued"),
        "imported SHA-512-crypt"
    );
    let t = send("role", "secret", "noreply@example.org");
    assert!(t.contains("<~  250 2.0.0 Ok: queued"), "imported bcrypt, whole domain: {t}");
    assert!(send("role", "secret", "noreply@example.net").contains("<~* 553 5.7.1"), "other domain");
    users(&s, &["passwd", "bob@example.net"], "new secret");
    assert!(
        send("bob@example.net", "secret", "bob@example.net").contains("<~* 535 5.7.8"),
        "old password after passwd"
    );
    assert!(send("bob@example.net", "new secret", "bob@example.net").contains("<~  235"));
    assert!(String::from_utf8_lossy(&users(&s, &["list", "--json"], "").stdout)
        .contains(r#"{"addresses":["bob@example.net"],"login":"bob@example.net","scheme":"argon2"}"#));
    users(&s, &["del", "role"], "");
    assert!(send("role", "secret", "noreply@example.org").contains("<~* 535 5.7.8"));
    assert_eq!(s.wait_for_mail("example.net", "alice", 3, Duration::from_secs(10)).len(), 3);
}

#[test]
fn tls_offers_only_1_2_and_1_3_with_strong_suites() {
    let s = server("");
    let script = r#"
import socket, ssl, sys, json
port = int(sys.argv[1])
def try_tls(minv, maxv, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    if ciphers: ctx.set_ciphers(ciphers)
    ctx.minimum_version = minv; ctx.maximum_version = maxv
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as t:
                return [t.version(), t.cipher()[0]]
    except (ssl.SSLError, OSError) as e:
        return ["refused", type(e).__name__]
V = ssl.TLSVersion
print(json.dumps({
    "default": try_tls(V.MINIMUM_SUPPORTED, V.MAXIMUM_SUPPORTED),
    "tls12": try_tls(V.TLSv1_2, V.TLSv1_2),
    "tls11": try_tls(V.MINIMUM_SUPPORTED, V.TLSv1_1, "ALL:@SECLEVEL=0"),
    "tls10": try_tls(V.MINIMUM_SUPPORTED, V.TLSv1, "ALL:@SECLEVEL=0"),
    "cbc_sha1": try_tls(V.TLSv1_2, V.TLSv1_2, "ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:AES128-SHA:@SECLEVEL=0"),
    "rc4_3des": try_tls(V.TLSv1_2, V.TLSv1_2, "RC4:3DES:NULL:@SECLEVEL=0"),
}))
"#;
    let text = python(script, &[addr(&s, "submissions").port().to_string()]);
    // The first line is the JSON; Python's deprecation warnings follow.
    let v: serde_json::Value =
        serde_json::from_str(text.lines().next().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["default"][0], "TLSv1.3", "{v}");
    assert_eq!(v["tls12"][0], "TLSv1.2", "{v}");
    let suite = v["tls12"][1].as_str().unwrap();
    assert!(
        suite.starts_with("ECDHE-") && (suite.contains("GCM") || suite.contains("CHACHA20")),
        "forward secrecy and AEAD only: {v}"
    );
    for weak in ["tls11", "tls10", "cbc_sha1", "rc4_3des"] {
        assert_eq!(v[weak][0], "refused", "{weak} must not be negotiated: {v}");
    }
}

/// Makes a device CA, a device certificate it signs, and a stranger's
/// self-signed one, with the openssl command.
fn device_certificates(dir: &std::path::Path) {
    let sh = r#"set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=devices-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev.key -out dev.csr -subj /CN=printer1
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n' > ext
openssl x509 -req -in dev.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out dev.pem -days 2 -extfile ext
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -out other.pem -days 2 -subj /CN=stranger
"#;
    require("openssl");
    let out = Command::new("sh").arg("-c").arg(sh).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn device_client_certificates_submit_without_login_and_are_recorded() {
    let certs = tempfile::tempdir().unwrap();
    device_certificates(certs.path());
    let s = server(&format!("device_ca = \"{}\"\n", certs.path().join("ca.pem").display()));
    let subs = addr(&s, "submissions").to_string();
    let (dev, key) = (certs.path().join("dev.pem"), certs.path().join("dev.key"));
    let base = ["--server", subs.as_str(), "--tlsc", "--to", "alice@example.net"];
    let text = swaks(
        &[
            &base[..],
            &["--from", "printer@example.org", "--tls-cert", dev.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(text.contains("<~  250 2.0.0 Ok: queued as"), "{text}");
    let text = swaks(
        &[
            &base[..],
            &[
                "--from",
                "printer@elsewhere.example",
                "--tls-cert",
                dev.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert!(text.contains("<~* 553 5.7.1"), "a device sends only as a local domain: {text}");
    // Without a certificate: a normal client, which must log in.
    let text = swaks(&[&base[..], &["--from", "printer@example.org"]].concat());
    assert!(text.contains("<~* 530 5.7.0"), "{text}");
    // A certificate from another issuer is refused in the handshake.
    let (other, other_key) = (certs.path().join("other.pem"), certs.path().join("other.key"));
    let text = swaks(
        &[
            &base[..],
            &[
                "--from",
                "printer@example.org",
                "--tls-cert",
                other.to_str().unwrap(),
                "--tls-key",
                other_key.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert!(!text.contains("250 2.0.0 Ok: queued") && !text.contains("<~  250 2.1.0"), "{text}");
    let legacy = events(&s, "port25.submission.legacy", 2);
    assert_eq!(legacy.len(), 2, "{legacy:?}");
    assert_eq!(legacy[0]["certificate"].as_str().map(str::len), Some(64), "the certificate's SHA-256 names the device");
    let mail = s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(10));
    assert_eq!(mail.len(), 1);
}

#[test]
fn legacy_submission_on_port_25_is_recorded_and_reported() {
    let extra =
        "[[listener]]\nname = \"legacy25\"\naddress = \"127.0.0.1:0\"\nservice = \"mx\"\nlegacy_submission = true\n";
    let s = Server::start(
        "domains = [\"example.net\", \"example.org\"]\nrecipients = [\"bob@example.net\", \"carol@example.net\", \"dave@example.net\", \"carol@example.org\"]",
        &(listeners("") + extra),
    );
    users(&s, &["add", ALICE], ALICE_PW);
    users(&s, &["add", "carol@example.net"], "carol pw");
    let script = r#"
import smtplib, ssl, sys
legacy, mx, sub, user, pw = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
out = []
# Port 25 with legacy on: transport as usual without a login...
s = smtplib.SMTP("127.0.0.1", legacy, timeout=20); s.ehlo("mta.remote.example")
out.append(s.has_extn("auth"))
s.sendmail("someone@remote.example", ["bob@example.net"], b"From: someone@remote.example\r\nSubject: transport\r\n\r\nx\r\n")
s.starttls(context=ctx); s.ehlo("laptop.example")
out.append(s.has_extn("auth"))
s.login(user, pw)
out.append(s.mail("bob@example.net")[0]); s.rset()
s.sendmail(user, ["bob@example.net"], b"From: alice@example.net\r\nSubject: legacy\r\n\r\nx\r\n")
s.quit()
# ...and with legacy off, AUTH points to 587.
s = smtplib.SMTP("127.0.0.1", mx, timeout=20); s.starttls(context=ctx); s.ehlo("laptop.example")
code, text = s.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUubmV0AHg=")
out.append(code); out.append(b"587" in text)
s.quit()
s = smtplib.SMTP("127.0.0.1", sub, timeout=20); s.starttls(context=ctx); s.ehlo("laptop.example"); s.login("carol@example.net", "carol pw"); s.quit()
print(out)
"#;
    let ports = [addr(&s, "legacy25"), addr(&s, "mx"), addr(&s, "submission")].map(|a| a.port().to_string());
    let text = python(script, &[ports[0].clone(), ports[1].clone(), ports[2].clone(), ALICE.into(), ALICE_PW.into()]);
    assert_eq!(
        text.trim(),
        "[False, True, 553, 503, True]",
        "AUTH only after TLS on 25; submission rules after login; legacy off points to 587"
    );
    let legacy = events(&s, "port25.submission.legacy", 1);
    assert_eq!(legacy.len(), 1, "{legacy:?}");
    assert_eq!(
        (legacy[0]["user"].as_str(), legacy[0]["port"].as_u64()),
        (Some(ALICE), Some(u64::from(addr(&s, "legacy25").port())))
    );
    let mail = s.wait_for_mail("example.net", "bob", 2, Duration::from_secs(10));
    let texts: Vec<String> = mail.iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect();
    assert!(texts.iter().any(|t| t.contains("Subject: legacy") && t.contains("with ESMTPSA id")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("Subject: transport") && t.contains("with ESMTP id")), "{texts:?}");

    let out = Command::new(BIN)
        .args(["migration", "report", "--json", "--config"])
        .arg(s.dir.path().join("port25.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "threshold not met: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &v["domains"][0];
    assert_eq!(
        (d["domain"].as_str(), d["active"].as_u64(), d["submission_only"].as_u64(), d["share"].as_f64()),
        (Some("example.net"), Some(2), Some(1), Some(50.0))
    );
    assert_eq!(d["still_on_25"][0]["login"], ALICE);
    assert_eq!(d["still_on_25"][0]["last_ip"], "127.0.0.1");
    let out = Command::new(BIN)
        .args(["migration", "report", "--config"])
        .arg(s.dir.path().join("port25.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("example.net: 2 active, 1 only on 587/465 (50.0%): NOT met")
            && text.contains("still on 25: alice@example.net last from 127.0.0.1"),
        "{text}"
    );
}
