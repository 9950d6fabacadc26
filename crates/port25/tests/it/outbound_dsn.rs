//! What the sender of outbound mail is told, in time: the one "delayed"
//! warning, the bounce when a recipient expires, and nothing at all when
//! the sender is null (a DSN that bounces or expires itself). Retry,
//! warning and lifetime knobs are set to seconds so this runs quickly.

use crate::dns::DnsServer;
use crate::harness::*;
use crate::outbound::*;
use crate::scripted::{Script, Scripted};
use std::net::{IpAddr, SocketAddr};

/// Alice's mailbox on the sender: DSNs for example.net are delivered locally.
fn dsns_for_alice(a: &Server, n: usize) -> Vec<String> {
    a.wait_for_mail("example.net", "alice", n, WAIT)
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .collect()
}

fn assert_contains_all(text: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(text.contains(w), "lacks {w:?}:\n{text}");
    }
}

#[test]
fn outbound_a_delayed_dsn_reaches_the_sender_once_and_the_message_is_still_delivered() {
    let (mx, dns) = one_mx(8, "slow.example");
    // Retries after 1, then every 2 seconds; the warning is due after one.
    let a = sender(&dns, mx.port(), "delay_warning_secs = 1");
    submit(&a, &["kim@slow.example"], "warned once");
    let warned = wait_events(&a, "port25.outbound.dsn", "kind", "delayed", 1);
    assert_eq!(warned[0]["to"], "alice@example.net", "{warned:?}");
    // Two more failed attempts after the warning: they must not warn again.
    let before = events_where(&a, "port25.outbound.deferred", "to", "kim@slow.example").len();
    wait_events(&a, "port25.outbound.deferred", "to", "kim@slow.example", before + 2);
    let sink = Sink::start(mx);
    wait_events(&a, "port25.outbound.delivered", "to", "kim@slow.example", 1);
    let msgs = sink.wait_messages(1);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(msgs[0].contains("Subject: warned once"), "{}", msgs[0]);

    assert_eq!(events_where(&a, "port25.outbound.dsn", "kind", "delayed").len(), 1, "one warning only");
    assert!(events_where(&a, "port25.outbound.dsn", "kind", "failed").is_empty(), "delivered: no bounce");
    wait_events(&a, "port25.delivery.delivered", "to", "alice@example.net", 1);
    let dsn = dsns_for_alice(&a, 1);
    assert_eq!(dsn.len(), 1, "alice got {} notices", dsn.len());
    assert_contains_all(
        &dsn[0],
        &[
            "Return-Path: <>",
            "Subject: Delayed Mail (still being retried)",
            "Content-Type: multipart/report; report-type=delivery-status",
            "Final-Recipient: rfc822; kim@slow.example\r\nAction: delayed\r\nStatus: 4.4.1\r\n",
            "Will-Retry-Until: ",
            "Subject: warned once",
        ],
    );
    wait_history(&a, "kim@slow.example\tdelivered");
}

#[test]
fn outbound_a_recipient_deferred_past_max_lifetime_is_bounced_as_expired() {
    // Nothing listens there: every attempt is deferred.
    let (mx, dns) = one_mx(9, "gone.example");
    let a = sender(&dns, mx.port(), "max_lifetime_secs = 2\ndelay_warning_secs = 0");
    submit(&a, &["lee@gone.example"], "never arrives");
    let bounced = wait_events(&a, "port25.outbound.bounced", "to", "lee@gone.example", 1);
    assert_eq!(bounced[0]["expired"], true, "{bounced:?}");
    let h = wait_history(&a, "lee@gone.example\texpired\t");
    assert!(!h.contains("lee@gone.example\tbounced"), "{h}");
    wait_spool_empty(&a, WAIT);
    let dsn = dsns_for_alice(&a, 1);
    assert_eq!(dsn.len(), 1);
    assert_contains_all(
        &dsn[0],
        &[
            "Subject: Undelivered Mail Returned to Sender",
            "Final-Recipient: rfc822; lee@gone.example\r\nAction: failed\r\nStatus: 4.4.7\r\n",
            // The last reason, and that it gave up after its lifetime.
            "Diagnostic-Code: smtp; 451 4.4.1 ",
            "(gave up: not delivered within 2 seconds)",
            "Subject: never arrives",
        ],
    );
}

fn submit_with_auth(a: &Server, from: &str, to: &str, subject: &str) {
    let mut c = Client::open(a.addr());
    assert!(c.cmd("EHLO laptop.example").starts_with("250"));
    // AUTH PLAIN \0relay@far.example\0pw
    assert_eq!(code(&c.cmd("AUTH PLAIN AHJlbGF5QGZhci5leGFtcGxlAHB3")), 235);
    let r = c.send_mail(from, &[to], &format!("From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\r\nbody\r\n"));
    assert_eq!(code(&r), 250, "{r}");
}

#[test]
fn outbound_no_dsn_for_a_null_sender_when_a_dsn_bounces_or_expires() {
    let (ip, down) = (IpAddr::V4(v4(127, 0, 10, 1)), IpAddr::V4(v4(127, 0, 10, 2)));
    let port = free_port(&[ip, down]);
    let dns = DnsServer::start();
    // bounce.example and far.example answer 550 to every recipient;
    // lost.example's MX is down.
    let remote =
        Scripted::start(SocketAddr::new(ip, port), Script { rcpt: "550 5.1.1 no such user", ..Script::default() });
    dns.mx("bounce.example", "mx.bounce.example", v4(127, 0, 10, 1));
    dns.mx("far.example", "mx.far.example", v4(127, 0, 10, 1));
    dns.mx("lost.example", "mx.lost.example", v4(127, 0, 10, 2));
    // Warnings on too: a null sender must not get one either.
    let a = sender(&dns, port, "max_lifetime_secs = 2\ndelay_warning_secs = 1");
    // A login whose domains are not local here: its DSNs go out with MAIL FROM:<>.
    add_user(&a, "relay@far.example", &["@far.example", "@lost.example"], "pw");
    submit_with_auth(&a, "relay@far.example", "x@bounce.example", "bounces, and so does its DSN");
    submit_with_auth(&a, "relay@lost.example", "y@bounce.example", "bounces, and its DSN expires");

    // Each original bounces with a DSN, which enters the outbound queue...
    let failed = wait_events(&a, "port25.outbound.dsn", "kind", "failed", 2);
    let mut to: Vec<&str> = failed.iter().map(|e| e["to"].as_str().unwrap()).collect();
    to.sort();
    assert_eq!(to, ["relay@far.example", "relay@lost.example"]);
    // ... and is sent with MAIL FROM:<>; the one to far.example bounces,
    // the one to lost.example expires.
    let h = wait_history(&a, "relay@far.example\tbounced\t550");
    assert!(h.contains("x@bounce.example\tbounced") && h.contains("y@bounce.example\tbounced"), "{h}");
    wait_history(&a, "relay@lost.example\texpired\t");
    let none = wait_events(&a, "port25.outbound.dsn", "kind", "none (null sender)", 2);
    assert_eq!(none.len(), 2, "{none:?}");
    let bounced = wait_events(&a, "port25.outbound.bounced", "to", "relay@", 2);
    assert!(bounced.iter().any(|e| e["to"] == "relay@lost.example" && e["expired"] == true), "{bounced:?}");
    let commands: Vec<String> = remote.conns().iter().flat_map(|c| c.commands.clone()).collect();
    assert!(commands.iter().any(|c| c == "MAIL FROM:<>"), "{commands:?}");
    assert!(commands.iter().any(|c| c == "RCPT TO:<relay@far.example>"), "{commands:?}");

    // Nothing else: no third message queued, no warning, nothing delivered.
    wait_spool_empty(&a, WAIT);
    assert_eq!(a.events("port25.outbound.queued").len(), 4, "two messages and their two DSNs only");
    assert!(events_where(&a, "port25.outbound.dsn", "kind", "delayed").is_empty());
    assert_eq!(events_where(&a, "port25.outbound.dsn", "kind", "failed").len(), 2);
    assert!(a.all_mail().is_empty());
    assert!(remote.conns().iter().all(|c| c.messages.is_empty()));
}
