//! The MX never relays: classic relay tricks, each refused, nothing spooled.

use crate::harness::*;

/// (description, HELO, MAIL FROM, RCPT TO argument as sent)
pub(crate) const TRICKS: &[(&str, &str, &str, &str)] = &[
    ("foreign domain", "client.example", "<a@remote.example>", "<victim@elsewhere.example>"),
    ("address literal of the loopback", "client.example", "<a@remote.example>", "<victim@[127.0.0.1]>"),
    ("IPv6 address literal", "client.example", "<a@remote.example>", "<victim@[IPv6:::1]>"),
    ("arbitrary address literal", "client.example", "<a@remote.example>", "<victim@[192.0.2.1]>"),
    ("percent hack", "client.example", "<a@remote.example>", "<victim%elsewhere.example@example.net>"),
    ("bang path", "client.example", "<a@remote.example>", "<elsewhere.example!victim@example.net>"),
    (
        "quoted local part hiding an address",
        "client.example",
        "<a@remote.example>",
        "<\"victim@elsewhere.example\"@example.net>",
    ),
    ("quoted percent hack", "client.example", "<a@remote.example>", "<\"victim%elsewhere.example\"@example.net>"),
    ("quoted local part at a foreign domain", "client.example", "<a@remote.example>", "<\"victim\"@elsewhere.example>"),
    ("source route through us", "client.example", "<a@remote.example>", "<@example.net:victim@elsewhere.example>"),
    (
        "two-hop source route",
        "client.example",
        "<a@remote.example>",
        "<@example.net,@relay.example:victim@elsewhere.example>",
    ),
    ("double at", "client.example", "<a@remote.example>", "<victim@elsewhere.example@example.net>"),
    ("local domain as a prefix", "client.example", "<a@remote.example>", "<victim@example.net.elsewhere.example>"),
    (
        "local domain label inside a foreign name",
        "client.example",
        "<a@remote.example>",
        "<victim@EXAMPLE.NET.evil.example>",
    ),
    ("subdomain of a local domain", "client.example", "<a@remote.example>", "<victim@sub.example.net>"),
    ("trailing dot", "client.example", "<a@remote.example>", "<victim@elsewhere.example.>"),
    ("localhost is not local here", "localhost", "<a@remote.example>", "<victim@localhost>"),
    ("null sender", "client.example", "<>", "<victim@elsewhere.example>"),
    ("spoofed local sender", "example.net", "<postmaster@example.net>", "<victim@elsewhere.example>"),
    ("HELO claiming to be us", "mx.test.example", "<a@example.net>", "<victim@elsewhere.example>"),
    ("no angle brackets", "client.example", "<a@remote.example>", "victim@elsewhere.example"),
    ("bang path without domain", "client.example", "<a@remote.example>", "<elsewhere.example!victim>"),
    ("percent hack without domain", "client.example", "<a@remote.example>", "<victim%elsewhere.example>"),
    ("percent in the domain", "client.example", "<a@remote.example>", "<victim@example.net%elsewhere.example>"),
    ("foreign postmaster", "client.example", "<a@remote.example>", "<postmaster@elsewhere.example>"),
    ("IDN look-alike", "client.example", "<a@remote.example>", "<victim@xn--exmple-cua.net>"),
];

#[test]
fn classic_relay_tricks_are_all_refused_and_nothing_is_spooled() {
    assert!(TRICKS.len() >= 20);
    let s = Server::mx();
    let mut failures = Vec::new();
    for (what, helo, from, rcpt) in TRICKS {
        let mut c = Client::open(s.addr());
        assert_eq!(code(&c.cmd(&format!("EHLO {helo}"))), 250);
        let mail = c.cmd(&format!("MAIL FROM:{from}"));
        assert_eq!(code(&mail), 250, "{what}: MAIL {mail}");
        let reply = c.cmd(&format!("RCPT TO:{rcpt}"));
        // Relay refusals are 554/550 5.7.1; syntax tricks die earlier as 501.
        let refused = matches!(code(&reply), 550 | 554) && reply.contains("5.7.1") || code(&reply) == 501;
        if !refused {
            failures.push(format!("{what}: RCPT TO:{rcpt} -> {reply}"));
        }
        let data = c.cmd("DATA");
        assert_eq!(code(&data), 503, "{what}: DATA after a refused RCPT: {data}");
        c.cmd("QUIT");
    }
    assert!(failures.is_empty(), "tricks not refused: {failures:#?}");

    // Nor does AUTH or TLS open anything.
    let mut c = Client::open(s.addr());
    let ehlo = c.cmd("EHLO client.example");
    assert!(!ehlo.contains("AUTH"), "the MX offers no AUTH: {ehlo}");
    assert_eq!(code(&c.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==")), 503);
    c.cmd("MAIL FROM:<a@remote.example>");
    assert_eq!(code(&c.cmd("RCPT TO:<victim@elsewhere.example>")), 554);

    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(s.all_mail().is_empty(), "nothing may be delivered");
    let batches = std::fs::read_dir(s.data().join("spool/batches")).unwrap().count();
    assert_eq!(batches, 0, "nothing may be spooled");
    assert!(s.events("port25.smtp.data.accepted").is_empty());
    // A sleep does not mean the log reader has caught up: wait for them.
    let rejected = s.wait_events("port25.smtp.rcpt.rejected", 19, std::time::Duration::from_secs(10));
    assert!(rejected.len() >= 19, "relay refusals are logged: {}", rejected.len());
}

#[test]
fn recipient_list_unknown_users_and_postmaster() {
    let s = Server::start(
        "domains = [\"example.net\"]\nrecipients = [\"alice@example.net\"]\nrecipient_delimiter = \"+\"",
        MX_LISTENER,
    );
    let mut c = Client::open(s.addr());
    c.cmd("EHLO client.example");
    c.cmd("MAIL FROM:<a@remote.example>");
    let unknown = c.cmd("RCPT TO:<mallory@example.net>");
    assert!(unknown.starts_with("550 5.1.1"), "{unknown}");
    assert_eq!(code(&c.cmd("RCPT TO:<Alice+lists@Example.NET>")), 250);
    assert_eq!(code(&c.cmd("RCPT TO:<Postmaster>")), 250, "RFC 5321 4.5.1: postmaster without domain");
    assert_eq!(code(&c.cmd("RCPT TO:<postmaster@example.net>")), 250);
    let r = c.cmd("DATA");
    assert_eq!(code(&r), 354);
    c.send(b"Subject: list\r\n\r\nhi\r\n.\r\n");
    assert_eq!(code(&c.reply()), 250);
    assert_eq!(s.wait_for_mail("example.net", "alice", 1, std::time::Duration::from_secs(10)).len(), 1);
    // Postmaster with and without domain is one mailbox, delivered once.
    assert_eq!(s.wait_for_mail("example.net", "postmaster", 1, std::time::Duration::from_secs(10)).len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(std::fs::read_dir(s.maildir("example.net", "postmaster")).unwrap().count(), 1);
}
