//! Issue 13 item 7 with curl: the dashboard sign-in checks operators only,
//! through the guard SMTP AUTH uses (one count per login and address);
//! IPv4 clients of a dual-stack listener are counted each on its own;
//! X-Forwarded-For / Forwarded name the client only when a configured proxy
//! sends them; the cookie's Secure flag comes from the configuration; and a
//! session ends when its password changes, its operator flag is revoked or
//! its login is deleted.

use crate::harness::*;
use crate::http::{add_user, curl, http_addr, port25};
use crate::submission::login;
use std::net::SocketAddr;
use std::path::Path;

fn config(dir: &Path, http: &str) -> String {
    format!(
        "hostname = \"mx.example.net\"\ndata_dir = \"{}\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n[mx]\ndomains = [\"example.net\"]\n\
         [submission]\nauth_slow_after = 1000\nauth_login_lock_after = 3\n\
         [[listener]]\nname = \"plain\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"none\"\nplaintext_auth = true\n\
         [http]\n# the default private address is a fixed port another test may hold\nprivate_address = \"127.0.0.1:0\"\n{http}\n",
        dir.join("data").display()
    )
}

/// The dashboard's base URL over IPv4 (the listener may be on `[::]`).
fn base(s: &Server) -> String {
    format!("http://127.0.0.1:{}", http_addr(s).port())
}

/// A form POST from source address `src` with extra curl arguments;
/// returns (status, Set-Cookie).
fn sign_in(base: &str, src: &str, login: &str, password: &str, extra: &[&str]) -> (u16, String) {
    let (login, password) = (format!("login={login}"), format!("password={password}"));
    let url = format!("{base}/dashboard/login");
    let args =
        [&["--interface", src, "--data-urlencode", &login, "--data-urlencode", &password][..], extra, &[&url]].concat();
    let (status, head, _) = curl(&args);
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .unwrap_or("")
        .to_owned();
    (status, cookie)
}

/// GET /dashboard with a session cookie: 200 signed in, 303 to the form.
fn page(base: &str, cookie: &str) -> u16 {
    let token = cookie.split(';').next().unwrap_or("");
    curl(&["-b", token, &format!("{base}/dashboard")]).0
}

fn users(s: &Server, args: &[&str], stdin: &str) {
    let out = port25(s, &[&["users"][..], args].concat(), stdin);
    assert!(out.status.success(), "users {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn failed_peers(s: &Server) -> Vec<String> {
    s.events("port25.http.login.failed").iter().map(|e| e["peer"].as_str().unwrap_or("").to_owned()).collect()
}

/// The peer of the latest failed sign-in, once it is `want` (the event is
/// logged as the reply goes out, so it may trail the HTTP answer a little);
/// after 5 s, whatever it is.
fn last_failed_peer(s: &Server, want: &str) -> Option<String> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let last = failed_peers(s).last().cloned();
        if last.as_deref() == Some(want) || std::time::Instant::now() > until {
            return last;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn dashboard_sign_in_shares_the_smtp_guard_trusts_only_configured_proxies_and_sessions_end() {
    let http = "address = \"[::]:0\"\nlogin_attempts_per_minute = 2\ntrusted_proxies = [\"127.0.0.5\"]\n";
    let s = Server::start_with("serve", |dir| config(dir, http));
    let base = base(&s);
    for (l, pw) in [("ops@example.net", "ops pw"), ("ops2@example.net", "ops2 pw"), ("ops3@example.net", "ops3 pw")] {
        add_user(&s, l, pw);
        users(&s, &["operator", l], "");
    }

    // IPv4 clients arrive IPv4-mapped on [::]: each is its own client, not
    // all of them one "::/64".
    assert_eq!(sign_in(&base, "127.0.0.2", "n1@example.net", "x", &[]).0, 401);
    assert_eq!(sign_in(&base, "127.0.0.2", "n2@example.net", "x", &[]).0, 401);
    assert_eq!(sign_in(&base, "127.0.0.2", "n3@example.net", "x", &[]).0, 429);
    assert_eq!(sign_in(&base, "127.0.0.3", "n4@example.net", "x", &[]).0, 401);
    assert_eq!(last_failed_peer(&s, "127.0.0.3").as_deref(), Some("127.0.0.3"));

    // A client's own X-Forwarded-For changes nothing...
    for (i, want) in [(1, 401), (2, 401), (3, 429)] {
        let xff = format!("X-Forwarded-For: 198.51.100.{i}");
        assert_eq!(sign_in(&base, "127.0.0.4", &format!("m{i}@example.net"), "x", &["-H", &xff]).0, want);
    }
    // ...the configured proxy's names the client.
    for i in 11..14 {
        let xff = format!("X-Forwarded-For: 203.0.113.66, 198.51.100.{i}");
        assert_eq!(sign_in(&base, "127.0.0.5", &format!("p{i}@example.net"), "x", &["-H", &xff]).0, 401);
        assert_eq!(last_failed_peer(&s, &format!("198.51.100.{i}")), Some(format!("198.51.100.{i}")));
    }
    let fwd = "Forwarded: for=\"[2001:db8::7]:4711\";proto=https";
    assert_eq!(sign_in(&base, "127.0.0.5", "q1@example.net", "x", &["-H", fwd]).0, 401);
    assert_eq!(sign_in(&base, "127.0.0.5", "q2@example.net", "x", &["-H", fwd]).0, 401);
    assert_eq!(sign_in(&base, "127.0.0.5", "q3@example.net", "x", &["-H", fwd]).0, 429, "one client behind the proxy");
    assert_eq!(last_failed_peer(&s, "2001:db8::7").as_deref(), Some("2001:db8::7"));

    // The Secure flag is configuration, not a header (cookie_secure = false).
    let (status, cookie) =
        sign_in(&base, "127.0.0.6", "ops@example.net", "ops pw", &["-H", "X-Forwarded-Proto: https"]);
    assert_eq!(status, 303, "{cookie}");
    assert!(cookie.contains("HttpOnly") && !cookie.contains("Secure"), "{cookie}");
    assert_eq!(page(&base, &cookie), 200);
    // A new password ends the session.
    users(&s, &["passwd", "ops@example.net"], "ops new pw");
    assert_eq!(page(&base, &cookie), 303);
    let (status, cookie) = sign_in(&base, "127.0.0.6", "ops@example.net", "ops new pw", &[]);
    assert_eq!((status, page(&base, &cookie)), (303, 200));
    // So does revoking the operator flag...
    users(&s, &["operator", "--revoke", "ops@example.net"], "");
    assert_eq!(page(&base, &cookie), 303);
    users(&s, &["operator", "ops@example.net"], "");
    assert_eq!(page(&base, &cookie), 303, "a session once ended stays ended");
    // ...and deleting the login, even when it comes back with the same password.
    let (status, cookie) = sign_in(&base, "127.0.0.7", "ops2@example.net", "ops2 pw", &[]);
    assert_eq!((status, page(&base, &cookie)), (303, 200));
    users(&s, &["del", "ops2@example.net"], "");
    add_user(&s, "ops2@example.net", "ops2 pw");
    users(&s, &["operator", "ops2@example.net"], "");
    assert_eq!(page(&base, &cookie), 303);

    // One guard for both doors: two failures on the form and one over SMTP
    // lock ops3 (auth_login_lock_after = 3) for both.
    assert_eq!(sign_in(&base, "127.0.0.8", "ops3@example.net", "x", &[]).0, 401);
    assert_eq!(sign_in(&base, "127.0.0.9", "ops3@example.net", "y", &[]).0, 401);
    let smtp: SocketAddr = s.addrs.iter().find(|(n, _)| n == "plain").unwrap().1;
    let mut c = Client::open(smtp);
    c.cmd("EHLO client.example");
    assert_eq!(code(&login(&mut c, "ops3@example.net", "z")), 535);
    let r = login(&mut c, "ops3@example.net", "ops3 pw");
    assert!(r.starts_with("454 4.7.0 Too many failed logins for this login"), "{r}");
    assert_eq!(sign_in(&base, "127.0.0.10", "ops3@example.net", "ops3 pw", &[]).0, 429);
    // Logged as the lock is taken, which may trail the replies a little.
    s.wait_event_where("port25.submission.lockout", std::time::Duration::from_secs(5), |_| true);
    let locks = s.events("port25.submission.lockout");
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert_eq!(locks[0]["key"], "ops3@example.net");
}

#[test]
fn the_secure_flag_comes_from_cookie_secure() {
    let s = Server::start_with("serve", |dir| config(dir, "address = \"127.0.0.1:0\"\ncookie_secure = true\n"));
    add_user(&s, "ops@example.net", "ops pw");
    users(&s, &["operator", "ops@example.net"], "");
    let (status, cookie) = sign_in(&base(&s), "127.0.0.1", "ops@example.net", "ops pw", &[]);
    assert_eq!(status, 303, "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
}
