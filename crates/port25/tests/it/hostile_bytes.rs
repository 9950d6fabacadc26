//! Issue 13 item 10: text that came from the network and was sliced at a
//! byte index panicked inside a UTF-8 character. Each test sends the bytes
//! that did it with a real client and checks what a user sees.

use crate::harness::*;
use crate::outbound::*;
use crate::scripted::{Script, Scripted};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn python(script: &str, args: &[String]) -> String {
    let out = Command::new("python3").arg("-c").arg(script).args(args).output().expect("python3");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python: {text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// After one spam whose header has `Date: \xff\xff` (lossily decoded: two
/// U+FFFD, so byte 8 falls inside a character), the dashboard that lists
/// the capture answers 200 (it answered 500 until 20 newer captures came).
#[test]
fn the_dashboard_answers_200_after_a_capture_with_invalid_utf8_in_a_header() {
    let curl = require("curl");
    let sensor = Server::start_with("spampot", |dir: &Path| {
        format!(
            "sensor = \"it-sensor\"\ndata_dir = \"{}\"\nlog_format = \"json\"\nlog_level = \"info\"\n\
             [[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:0\"\nkind = \"smtp\"\n",
            dir.join("data").display()
        )
    });
    let port = sensor.addrs.iter().find(|(n, _)| n == "smtp").unwrap().1.port();
    let script = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("bot.example")
s.sendmail("bulk@spam.example", ["victim@victim.example"], b"Date: \xff\xff\r\nTo: \xc3\x89lise <e@example.org>\r\nSubject: cheap \xe2\x82\xac\r\n\r\nbuy\r\n")
s.quit()
"#;
    python(script, &[port.to_string()]);
    sensor.wait_event("port25.spampot.message", Duration::from_secs(10)).expect("the sensor captured the message");

    let capture = sensor.data().join("capture");
    let s = Server::start_with("serve", |dir| {
        format!(
            "hostname = \"mx.example.net\"\ndata_dir = \"{}\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n[mx]\ndomains = [\"example.net\"]\n{MX_LISTENER}\n{HTTP_ON_PORT_0}spampot_capture = \"{}\"\n",
            dir.join("data").display(),
            capture.display()
        )
    });
    add_user(&s, "ops@example.net", &[], "ops pw");
    let out = Command::new(BIN)
        .args(["users", "operator", "ops@example.net", "--config"])
        .arg(s.dir.path().join("port25.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The dashboard is on the private listener.
    let base = format!("http://{}", crate::http::listening(&s, "private"));
    let login = Command::new(&curl)
        .args([
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "--data-urlencode",
            "login=ops@example.net",
            "--data-urlencode",
            "password=ops pw",
        ])
        .arg(format!("{base}/dashboard/login"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&login.stdout);
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie: {head}"))
        .to_owned();
    for _ in 0..2 {
        let page = Command::new(&curl)
            .args(["-s", "-w", "\n%{http_code}", "-b", &cookie])
            .arg(format!("{base}/dashboard"))
            .output()
            .unwrap();
        let page = String::from_utf8_lossy(&page.stdout);
        let (body, status) = page.rsplit_once('\n').unwrap();
        assert_eq!(status, "200", "{body}");
        assert!(body.contains("cheap \u{20ac}"), "the capture's subject is listed: {body}");
    }
}

/// With DKIM configured, a message with a header whose fifth byte is
/// inside a UTF-8 character (`To: Élise ...`) is signed and delivered; it
/// used to get 451 at every try (the signer panicked).
#[test]
fn a_dkim_signed_message_with_a_non_ascii_header_is_delivered() {
    let (mx, dns) = one_mx(63, "utf8.example");
    let remote = Scripted::start(mx, Script { ehlo: vec!["8BITMIME", "SMTPUTF8"], ..Script::default() });
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("example.net.pem");
    let out = Command::new(BIN)
        .args(["dkim", "keygen", "--domain", "example.net", "--selector", "sel1", "--bits", "1024", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let a = sender(
        &dns,
        mx.port(),
        &format!(
            "[[outbound.dkim]]\ndomain = \"example.net\"\nselector = \"sel1\"\nprivate_key = \"{}\"",
            key.display()
        ),
    );
    let script = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("laptop.example")
msg = "To: \u00c9lise <e@utf8.example>\r\nFrom: Alice <alice@example.net>\r\nSubject: caf\u00e9\r\n\r\nbonjour\r\n".encode("utf-8")
try:
    s.sendmail("alice@example.net", ["e@utf8.example"], msg)
    print("250")
except smtplib.SMTPDataError as e:
    print(e.smtp_code, e.smtp_error.decode())
s.quit()
"#;
    let said = python(script, &[a.addr().port().to_string()]);
    assert_eq!(said.trim(), "250", "submission refused it: {said}");
    wait_events(&a, "port25.outbound.delivered", "to", "e@utf8.example", 1);
    let msgs: Vec<String> = remote.conns().iter().flat_map(|c| c.messages.clone()).collect();
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].starts_with("DKIM-Signature: v=1;") && msgs[0].contains("d=example.net"), "{}", msgs[0]);
    assert!(msgs[0].contains("To: \u{c9}lise <e@utf8.example>"), "{}", msgs[0]);
}
