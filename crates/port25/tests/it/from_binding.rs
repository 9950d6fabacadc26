//! Issue 13 item 4: sender binding reads From: (and Sender:) as receivers
//! do. Python's `email` (policy.default, headerregistry) is the second
//! reader: every message port25 accepts from alice must be from alice for
//! Python too, and the spoofs that used to pass are refused.

use crate::harness::*;
use crate::outbound::add_user;

/// (name, header lines, the reply port25 must give: "250", "550", "553", "554")
const CASES: &[(&str, &str, &str)] = &[
    ("plain", "From: alice@example.net", "250"),
    ("display name", "From: Alice <alice@example.net>", "250"),
    ("quoted comma and comment", "From: \"Doe, Alice\" <alice@example.net> (work)", "250"),
    ("encoded word", "From: =?utf-8?q?Alice_D=C3=B6e?= <alice@example.net>", "250"),
    ("folded", "From: Alice\r\n <alice@example.net>", "250"),
    ("comment holding another address", "From: alice@example.net (boss <ceo@bank.example>)", "250"),
    ("quoted own address as name", "From: \"alice@example.net\" <alice@example.net>", "250"),
    ("two angle addresses", "From: <ceo@bank.example> <alice@example.net>", "554"),
    ("bare address as display name", "From: alice@example.net <ceo@bank.example>", "554"),
    ("quoted address as display name", "From: \"alice@example.net\" <ceo@bank.example>", "553"),
    ("address in a comment", "From: ceo@bank.example (alice@example.net)", "553"),
    ("encoded address as display name", "From: =?utf-8?q?alice=40example.net?= <ceo@bank.example>", "553"),
    ("source route", "From: <@relay.example:ceo@bank.example>", "553"),
    ("space before the colon", "From : ceo@bank.example\r\nFrom: alice@example.net", "554"),
    ("space inside the name", "Fr om: ceo@bank.example\r\nFrom: alice@example.net", "554"),
    ("tab before the colon", "From\t: ceo@bank.example\r\nFrom: alice@example.net", "554"),
    ("a line that is no field", "X-Note here\r\nFrom: alice@example.net", "554"),
    ("two From fields", "From: alice@example.net\r\nFrom: ceo@bank.example", "550"),
    ("two authors, no Sender", "From: alice@example.net, ceo@bank.example", "550"),
    ("two authors, Sender alice", "From: alice@example.net, ceo@bank.example\r\nSender: alice@example.net", "553"),
    (
        "two own authors, Sender alice",
        "From: alice@example.net, Alice Two <alice@example.net>\r\nSender: alice@example.net",
        "250",
    ),
    ("Sender someone else", "From: alice@example.net\r\nSender: ceo@bank.example", "553"),
    ("Resent-From someone else", "From: alice@example.net\r\nResent-From: ceo@bank.example", "553"),
    ("Resent-Sender someone else", "From: alice@example.net\r\nResent-Sender: ceo@bank.example", "553"),
    ("Resent-From alice", "From: alice@example.net\r\nResent-From: Alice <alice@example.net>", "250"),
    ("group", "From: team: alice@example.net;", "554"),
    ("unclosed angle", "From: Alice <alice@example.net", "554"),
    ("someone else", "From: ceo@bank.example", "553"),
];

const SCRIPT: &str = r#"
import email, email.policy, json, smtplib, sys
port, cases = int(sys.argv[1]), json.loads(sys.argv[2])
for name, head in cases:
    msg = (head + "\r\nTo: alice@example.net\r\nSubject: " + name + "\r\n\r\nbody\r\n").encode("utf-8")
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    s.ehlo("laptop.example")
    s.login("alice@example.net", "alice pw")
    try:
        s.sendmail("alice@example.net", ["alice@example.net"], msg)
        code = 250
    except smtplib.SMTPDataError as e:
        code = e.smtp_code
    s.quit()
    parsed = email.message_from_bytes(msg, policy=email.policy.default)
    try:
        froms = [a.addr_spec for h in (parsed.get_all("From") or []) for a in h.addresses]
    except Exception as e:
        froms = ["error: " + repr(e)]
    print(json.dumps({"name": name, "code": code, "python": froms}))
"#;

#[test]
fn spoofed_from_headers_are_refused_and_what_is_accepted_python_reads_as_alice() {
    let s = Server::start(
        "domains = [\"example.net\"]",
        "[[listener]]\nname = \"sub\"\naddress = \"127.0.0.1:0\"\nservice = \"submission\"\ntls = \"none\"\nplaintext_auth = true\n",
    );
    add_user(&s, "alice@example.net", &["alice@example.net"], "alice pw");
    let cases: Vec<(&str, &str)> = CASES.iter().map(|(n, h, _)| (*n, *h)).collect();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(s.addr().port().to_string())
        .arg(serde_json::to_string(&cases).unwrap())
        .output()
        .expect("python3");
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(results.len(), CASES.len());
    let mut wrong = Vec::new();
    for ((name, head, want), r) in CASES.iter().zip(&results) {
        let code = r["code"].as_u64().unwrap().to_string();
        let python: Vec<&str> = r["python"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        if code == "250" && python.iter().any(|a| !a.eq_ignore_ascii_case("alice@example.net")) {
            wrong.push(format!("{name}: port25 accepted {head:?}, Python reads {python:?}"));
        }
        if code != *want {
            wrong.push(format!("{name}: {head:?} got {code}, want {want} (Python reads {python:?})"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The spoofs Python reads as someone else really are someone else.
    let spoof = results.iter().find(|r| r["name"] == "quoted address as display name").unwrap();
    assert_eq!(spoof["python"][0], "ceo@bank.example");
}
