//! The dashboard's "Abuse desk" table (issue 19 §4) in headless chromium
//! (driven by cdp.py, as the dashboard test in http.rs): a login whose
//! name is HTML gets an ARF complaint (Python's email package, delivered
//! to abuse@ through the MX) and is locked; alice sends past her daily
//! message limit and is held. The page shows each login with its action,
//! its complaints today and the time from the first complaint to the
//! action, and the HTML login as text: escaped, nothing ran.

use crate::abuse::{addr, python, server, wait_for, ARF, DELIVER, WAIT};
use crate::harness::*;
use crate::http::{curl, http_addr};
use crate::outbound::add_user;
use std::path::Path;
use std::process::Command;

/// A login (no space, no ':', so `users add` takes it) that runs script
/// when a page puts it into HTML unescaped.
const EVIL_LOGIN: &str = "<img/src=x/onerror=window.__xss=19>@example.net";

/// smtplib: AUTH PLAIN as argv[3] (password argv[4]), one message from
/// argv[5] to bob@example.net; prints the 250 reply's code.
const SEND: &str = r#"
import smtplib, sys, email.utils
host, port, login, pw, sender = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
s = smtplib.SMTP(host, port, local_hostname="laptop.example", timeout=30)
s.login(login, pw)
msg = "From: " + sender + "\r\nTo: bob@example.net\r\nSubject: hello\r\nMessage-ID: " + email.utils.make_msgid(domain="laptop.example") + "\r\n\r\nHi.\r\n"
print(s.sendmail(sender, ["bob@example.net"], msg) or 250)
s.quit()
"#;

#[test]
fn abuse_dashboard_in_headless_chromium_shows_complaints_held_and_locked_logins_and_escapes_the_login() {
    let chromium = require("chromium");
    let s = server(
        "mailbox = \"data/mail/example.net/abuse\"\ncomplaints_per_day = 1\non_complaints = \"lock\"\n\
         messages_per_day = 3\non_volume = \"hold\"\n",
        "",
        "",
    );
    add_user(&s, EVIL_LOGIN, &["mallory@example.net"], "mallory-pw");
    add_user(&s, "ops@example.net", &[], "ops pw");
    let o = crate::http::port25(&s, &["users", "operator", "ops@example.net"], "");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sub = addr(&s, "sub");
    let send = |login: &str, pw: &str, from: &str| {
        let out = python(SEND, &[&sub.ip().to_string(), &sub.port().to_string(), login, pw, from]);
        assert_eq!(out.trim(), "250", "{login}");
    };

    // The HTML login sends one message; bob's provider reports it (ARF).
    send(EVIL_LOGIN, "mallory-pw", "mallory@example.net");
    let copy = s.wait_for_mail("example.net", "bob", 1, WAIT).remove(0);
    let dir = tempfile::tempdir().unwrap();
    let (original, report) = (dir.path().join("original.eml"), dir.path().join("report.eml"));
    std::fs::write(&original, &copy).unwrap();
    python(ARF, &[original.to_str().unwrap(), report.to_str().unwrap(), "real"]);
    let mx = addr(&s, "mx");
    python(DELIVER, &[&mx.ip().to_string(), &mx.port().to_string(), report.to_str().unwrap()]);
    let lock = s
        .wait_event_where("port25.abuse.action", WAIT, |e| e["user"] == EVIL_LOGIN)
        .expect("the HTML login locked by its complaint");
    assert_eq!(lock["action"], "lock");
    let to_action = lock["seconds_since_first_complaint"].as_i64().unwrap();
    assert!(to_action >= 0, "{lock}");

    // alice: her third message today crosses messages_per_day: held.
    for _ in 0..3 {
        send("alice@example.net", "alice-pw", "alice@example.net");
    }
    let hold =
        s.wait_event_where("port25.abuse.action", WAIT, |e| e["user"] == "alice@example.net").expect("alice held");
    assert_eq!(hold["action"], "hold");

    // The operator signs in; chromium loads the dashboard with the cookie.
    let base = format!("http://{}", http_addr(&s));
    let (status, head, _) = curl(&["-d", "login=ops@example.net&password=ops+pw", &format!("{base}/dashboard/login")]);
    assert_eq!(status, 303, "{head}");
    let token = head
        .lines()
        .find_map(|l| l.split_once("port25_session=").filter(|(h, _)| h.eq_ignore_ascii_case("set-cookie: ")))
        .and_then(|(_, c)| c.split(';').next().map(str::to_owned))
        .unwrap_or_else(|| panic!("no session cookie: {head}"));
    let page: serde_json::Value = wait_for("both logins on the dashboard", || {
        let shot = s.dir.path().join("abuse.png");
        let out = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/cdp.py"))
            .args([chromium.to_str().unwrap(), &format!("{base}/dashboard"), "port25_session", &token])
            .arg(&shot)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cdp.py: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (page["abuse"].as_array().map_or(0, Vec::len) == 2).then_some(page)
    });
    assert_eq!(page["location"], "/dashboard", "{page:#}");
    // The login is text on the page: no element made of it, nothing ran.
    assert_eq!((page["scripts"].as_u64(), page["images"].as_u64()), (Some(0), Some(0)), "{page:#}");
    assert_eq!(page["xss"], false);
    let rows = page["abuse"].as_array().unwrap();
    let row = |login: &str| {
        rows.iter().find(|r| r["cells"][0] == login).unwrap_or_else(|| panic!("no row for {login}: {rows:?}")).clone()
    };
    let evil = row(EVIL_LOGIN);
    assert_eq!((evil["action"].as_str(), evil["complaints"].as_str()), (Some("lock"), Some("1")), "{evil}");
    let cells = |r: &serde_json::Value| -> Vec<String> {
        r["cells"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect()
    };
    let e = cells(&evil);
    // login, action, since, complaints today, first complaint to action, why
    assert_eq!((e[1].as_str(), e[3].as_str()), ("lock", "1"), "{e:?}");
    assert_eq!(e[4], format!("{to_action} s"), "the time the action event gave: {e:?}");
    assert!(e[2].ends_with('Z') && e[5].starts_with("complaints"), "{e:?}");
    let a = cells(&row("alice@example.net"));
    assert_eq!((a[1].as_str(), a[3].as_str(), a[4].as_str()), ("hold", "0", "-"), "no complaint: {a:?}");
    assert!(a[5].starts_with("messages") && a[5].contains("3 messages today"), "{a:?}");
    assert!(page["text"].as_str().unwrap().contains(EVIL_LOGIN), "shown as typed");
}
