//! `port25 mx explain ADDRESS --from --message`: the screening report
//! followed by sender authentication as `[mx.auth]` would judge the message
//! at the end of DATA, asking the test DNS server for SPF and DMARC.

use crate::dns::DnsServer;
use crate::harness::BIN;
use std::process::Command;

#[test]
fn mx_explain_checks_sender_authentication_of_a_message() {
    let dns = DnsServer::start();
    dns.txt("bank.test", "v=spf1 ip4:192.0.2.99 -all");
    dns.txt("_dmarc.bank.test", "v=DMARC1; p=reject");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("port25.toml");
    // [mx.auth] stays disabled: explain judges as it would if enabled.
    let text = format!(
        "hostname = \"mx.test.example\"\ndata_dir = \"{}\"\n[mx]\ndomains = [\"example.net\"]\n[mx.screen]\ndns_servers = [\"{}\"]\n[mx.auth]\nnameservers = [\"{}\"]\ndns_timeout_secs = 2\n",
        dir.path().join("data").display(),
        dns.addr,
        dns.addr
    );
    std::fs::write(&config, text).unwrap();
    let message = dir.path().join("m.eml");
    std::fs::write(
        &message,
        "From: CEO <ceo@bank.test>\r\nTo: alice@example.net\r\nSubject: wire the money\r\n\r\nnow\r\n",
    )
    .unwrap();
    let explain = |ip: &str| {
        let out = Command::new(BIN)
            .args(["mx", "explain", "-c"])
            .arg(&config)
            .args([ip, "--helo", "mail.bank.test", "--from", "ceo@bank.test", "--message"])
            .arg(&message)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };

    // From an address SPF does not list: SPF fails, DMARC (no DKIM) fails, p=reject.
    let (code, text) = explain("192.0.2.50");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("sender authentication"), "{text}");
    assert!(line_of(&text, "dmarc").contains("fail"), "dmarc line in:\n{text}");
    assert!(
        line_of(&text, "spf").contains("fail")
            || text.lines().filter(|l| l.starts_with("spf")).any(|l| l.contains("fail")),
        "{text}"
    );
    assert!(text.contains("verdict: reject 550 5.7.1"), "{text}");

    // From the address SPF lists: SPF passes, aligned with From:, DMARC passes.
    let (code, text) = explain("192.0.2.99");
    assert!(text.contains("verdict: accept"), "{text}");
    assert!(line_of(&text, "dmarc").contains("pass"), "{text}");
    assert_eq!(code, Some(0), "{text}");

    // A message file that is not there is named, before any lookup.
    let out = Command::new(BIN)
        .args(["mx", "explain", "-c"])
        .arg(&config)
        .args(["192.0.2.99", "--message", "/nonexistent/m.eml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/m.eml"), "{out:?}");
}

fn line_of(text: &str, method: &str) -> String {
    text.lines().find(|l| l.split_whitespace().next() == Some(method)).unwrap_or("").to_owned()
}
