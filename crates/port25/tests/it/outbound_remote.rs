//! The outbound SMTP client against remote MXes that limit or misbehave
//! (a SIZE smaller than the message, a STARTTLS handshake that fails).

use crate::dns::DnsServer;
use crate::harness::*;
use crate::outbound::*;
use crate::scripted::{BrokenTls, Script, Scripted};

#[test]
fn outbound_a_message_over_the_remote_size_limit_bounces_5_3_4_without_being_sent() {
    let (mx, dns) = one_mx(11, "small.example");
    let remote = Scripted::start(mx, Script { ehlo: vec!["SIZE 200", "PIPELINING"], ..Script::default() });
    let a = sender(&dns, mx.port(), "");
    submit(&a, &["max@small.example"], "too big for them");
    let dsn = a.wait_for_mail("example.net", "alice", 1, WAIT);
    assert_eq!(dsn.len(), 1, "no DSN; log: {:?}", a.events("port25.outbound.bounced"));
    let dsn = String::from_utf8_lossy(&dsn[0]);
    for want in [
        "Final-Recipient: rfc822; max@small.example\r\nAction: failed\r\nStatus: 5.3.4\r\n",
        "Remote-MTA: dns; mx.small.example [127.0.11.1]",
        "Diagnostic-Code: smtp; 552 5.3.4 message size ",
        "exceeds the limit of 200",
        "Subject: too big for them",
    ] {
        assert!(dsn.contains(want), "DSN lacks {want:?}:\n{dsn}");
    }
    assert!(wait_history(&a, "max@small.example\tbounced\t552 5.3.4").contains("bounced"));
    // The remote saw EHLO, never a transaction, never the body.
    let verbs = remote.all_verbs();
    assert!(verbs.contains(&"EHLO".to_owned()), "{verbs:?}");
    assert!(!verbs.iter().any(|v| v == "MAIL" || v == "RCPT" || v == "DATA"), "{verbs:?}");
    assert!(remote.conns().iter().all(|c| c.messages.is_empty()));
    assert!(a.events("port25.outbound.deferred").is_empty(), "a permanent failure is not retried");
}

/// A remote that offers STARTTLS, answers 220, then breaks the handshake.
fn broken_tls(net: u8, starttls: BrokenTls, extra: &str) -> (Server, Scripted, DnsServer) {
    let (mx, dns) = one_mx(net, "badtls.example");
    let remote = Scripted::start(mx, Script { ehlo: vec!["STARTTLS", "8BITMIME"], starttls, ..Script::default() });
    let a = sender(&dns, mx.port(), extra);
    submit(&a, &["ned@badtls.example"], "after a broken handshake");
    (a, remote, dns)
}

#[test]
fn outbound_a_failed_starttls_handshake_is_retried_in_cleartext_for_an_opportunistic_domain() {
    let (a, remote, _dns) = broken_tls(13, BrokenTls::Garbage, "");
    let delivered = wait_events(&a, "port25.outbound.delivered", "to", "ned@badtls.example", 1);
    assert_eq!(delivered[0]["attempts"], 1, "delivered at the first attempt: {delivered:?}");
    let failed = wait_events(&a, "port25.outbound.connect_failed", "reason", "TLS handshake", 1);
    assert_eq!(failed[0]["fallback"], "cleartext", "{failed:?}");
    let conns = remote.conns();
    assert_eq!(conns.len(), 2, "{conns:?}");
    assert_eq!(conns[0].verbs(), ["EHLO", "STARTTLS"]);
    // The same MX again, this time without STARTTLS.
    assert!(!conns[1].verbs().contains(&"STARTTLS".to_owned()), "{conns:?}");
    assert_eq!(conns[1].messages.len(), 1);
    assert!(conns[1].messages[0].contains("Subject: after a broken handshake"), "{}", conns[1].messages[0]);
}

#[test]
fn outbound_a_failed_starttls_handshake_defers_a_require_tls_domain_and_never_sends_in_clear() {
    let (a, remote, _dns) = broken_tls(14, BrokenTls::Close, "require_tls = [\"badtls.example\"]");
    let deferred = wait_events(&a, "port25.outbound.deferred", "to", "ned@badtls.example", 2);
    for d in &deferred {
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.starts_with("451 4.7.5") && reason.contains("TLS handshake"), "{reason}");
    }
    assert!(a.events("port25.outbound.delivered").is_empty());
    let conns = remote.conns();
    assert!(conns.len() >= 2, "{conns:?}");
    // Each attempt stops at the handshake: no cleartext retry, no MAIL.
    for c in &conns {
        assert_eq!(c.verbs(), ["EHLO", "STARTTLS"], "{conns:?}");
    }
}
