//! The outbound SMTP client against remote MXes that limit or misbehave
//! (a SIZE smaller than the message, a STARTTLS handshake that fails), and
//! how connections are shared: per MX host, whichever domains it serves.

use crate::dns::DnsServer;
use crate::harness::*;
use crate::outbound::*;
use crate::scripted::{BrokenTls, Script, Scripted};
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

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
    // Each attempt stops at the handshake: no cleartext retry, no MAIL.
    deferred_at_starttls(&a, &remote, "ned@badtls.example", "TLS handshake");
}

/// `to` was deferred twice with 4.7.5 and a reason containing `why`, never
/// delivered, and every connection (at least two) ended after STARTTLS:
/// nothing else (AUTH, MAIL, a message) was sent.
fn deferred_at_starttls(a: &Server, remote: &Scripted, to: &str, why: &str) {
    let deferred = wait_events(a, "port25.outbound.deferred", "to", to, 2);
    for d in &deferred {
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.starts_with("451 4.7.5") && reason.contains(why), "{reason}");
    }
    assert!(a.events("port25.outbound.delivered").is_empty());
    let conns = remote.conns();
    assert!(conns.len() >= 2, "{conns:?}");
    for c in &conns {
        assert_eq!(c.verbs(), ["EHLO", "STARTTLS"], "{conns:?}");
    }
}

/// one.example and two.example, each with its own MX name, both on
/// 127.0.`net`.1: one host serving two domains, as hosted mail does.
fn shared_mx(net: u8, script: Script, extra: &str) -> (Server, Scripted, DnsServer) {
    let (mx, dns) = one_mx(net, "one.example");
    dns.mx("two.example", "mx2.hosting.example", v4(127, 0, net, 1));
    let remote = Scripted::start(mx, script);
    let a = sender(&dns, mx.port(), extra);
    (a, remote, dns)
}

fn release(a: &Server) {
    let out = Command::new(BIN).args(["queue", "release", "--data-dir"]).arg(a.data()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn outbound_messages_for_two_domains_with_the_same_mx_go_over_one_connection() {
    let (a, remote, _dns) = shared_mx(15, Script::default(), "idle_connection_secs = 5");
    // One after the other, as a user sends them: the connection that
    // carried the first is still open for the second.
    submit(&a, &["ann@one.example"], "to the first domain");
    let ann = wait_events(&a, "port25.outbound.delivered", "to", "ann@one.example", 1);
    submit(&a, &["bea@two.example"], "to the second domain");
    let bea = wait_events(&a, "port25.outbound.delivered", "to", "bea@two.example", 1);
    // Each delivery names its own domain's MX (as the DSN's Remote-MTA
    // would), not the name the shared connection was opened with.
    assert_eq!(ann[0]["host"], "mx.one.example [127.0.15.1]", "{ann:?}");
    assert_eq!(bea[0]["host"], "mx2.hosting.example [127.0.15.1]", "{bea:?}");
    let conns = remote.conns();
    assert_eq!(conns.len(), 1, "one connection for both domains: {conns:?}");
    let verbs = conns[0].verbs();
    assert_eq!(verbs.iter().filter(|v| *v == "MAIL").count(), 2, "{verbs:?}");
    assert_eq!(verbs.iter().filter(|v| *v == "EHLO").count(), 1, "{verbs:?}");
    assert!(
        conns[0].commands.contains(&"RCPT TO:<ann@one.example>".to_owned())
            && conns[0].commands.contains(&"RCPT TO:<bea@two.example>".to_owned())
    );
}

#[test]
fn outbound_the_connection_limit_is_per_mx_host_whichever_domains_it_serves() {
    // Slow greetings make connections overlap if more than one is allowed.
    let script = Script { greeting_delay: Duration::from_millis(300), ..Script::default() };
    let (a, remote, _dns) =
        shared_mx(16, script, "hold = true\nconnections_per_destination = 1\nmessages_per_connection = 1");
    for to in ["c1@one.example", "c2@one.example", "d1@two.example", "d2@two.example"] {
        submit(&a, &[to], to);
    }
    release(&a);
    wait_events(&a, "port25.outbound.delivered", "to", "@", 4);
    assert_eq!(remote.conns().len(), 4, "messages_per_connection = 1");
    assert_eq!(remote.max_open(), 1, "two domains, one MX host: one connection at a time");
}

#[test]
fn outbound_a_domain_whose_first_mx_is_down_joins_the_connection_to_its_second() {
    // one.example: MX 5 on 127.0.17.2 (nothing listens), then MX 10 on the
    // host that also serves two.example, which has a connection open.
    let (a, remote, dns) = shared_mx(17, Script::default(), "idle_connection_secs = 5");
    dns.add("one.example", crate::dns::Rr::Mx(5, "mx.down.example".into()))
        .add("mx.down.example", crate::dns::Rr::A(v4(127, 0, 17, 2)));
    submit(&a, &["bea@two.example"], "opens the connection");
    wait_events(&a, "port25.outbound.delivered", "to", "bea@two.example", 1);
    submit(&a, &["ann@one.example"], "after its first MX failed");
    let delivered = wait_events(&a, "port25.outbound.delivered", "to", "ann@one.example", 1);
    assert_eq!(delivered[0]["attempts"], 1, "{delivered:?}");
    let failed = wait_events(&a, "port25.outbound.connect_failed", "address", "127.0.17.2", 1);
    assert_eq!(failed[0]["destination"], "one.example", "{failed:?}");
    let conns = remote.conns();
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert_eq!(conns[0].messages.len(), 2, "{conns:?}");
}

#[test]
fn outbound_a_smarthost_that_offers_starttls_then_refuses_it_never_gets_the_password_in_clear() {
    let ip = IpAddr::V4(v4(127, 0, 18, 1));
    let port = free_port(&[ip]);
    let script = Script {
        ehlo: vec!["STARTTLS", "AUTH PLAIN LOGIN", "8BITMIME"],
        starttls: BrokenTls::Refuse,
        ..Script::default()
    };
    let remote = Scripted::start(SocketAddr::new(ip, port), script);
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("smarthost.pass");
    std::fs::write(&secret, "relay-secret\n").unwrap();
    let extra = format!(
        "smarthost = \"127.0.18.1:{port}\"\nsmarthost_username = \"relayuser\"\nsmarthost_password_file = \"{}\"",
        secret.display()
    );
    let a = sender(&DnsServer::start(), 25, &extra);
    submit(&a, &["ivan@relay.example"], "not over a refused STARTTLS");
    // Each attempt ends at the refused STARTTLS: no AUTH (the password).
    deferred_at_starttls(&a, &remote, "ivan@relay.example", "refused STARTTLS: 454 4.7.0");
}

#[test]
fn outbound_an_mx_that_takes_one_connection_per_client_gets_its_mail_without_a_reconnect_storm() {
    // The MX greets a second concurrent connection with 421, as MXes that
    // limit connections per client do; we may open up to 4.
    let (mx, dns) = one_mx(19, "onebyone.example");
    let remote = Scripted::start(mx, Script { max_sessions: 1, ..Script::default() });
    let a = sender(&dns, mx.port(), "hold = true\nconnections_per_destination = 4\nmessages_per_connection = 5");
    let mut c = Client::open(a.addr());
    c.cmd("EHLO laptop.example");
    for i in 0..20 {
        let body = format!("From: alice@example.net\r\nSubject: one by one {i}\r\n\r\nbody {i}\r\n");
        assert_eq!(code(&c.send_mail("alice@example.net", &["olga@onebyone.example"], &body)), 250);
    }
    c.cmd("QUIT");
    release(&a);
    wait_events(&a, "port25.outbound.delivered", "to", "olga@onebyone.example", 20);
    let conns = remote.conns();
    let refused = conns.iter().filter(|c| c.commands.is_empty()).count();
    // 4 connections carry 5 messages each; the first burst (4 at once)
    // meets three 421s, then no new connection is tried while one works
    // (but one probe every 10 s, should the machine be that slow).
    assert!(conns.len() < 10, "{} connections, {refused} refused with 421", conns.len());
    assert!(refused <= 4, "{} connections, {refused} refused with 421", conns.len());
    assert_eq!(conns.iter().map(|c| c.messages.len()).sum::<usize>(), 20);
}

#[test]
fn outbound_an_idle_connection_gives_its_only_slot_to_a_destination_that_waits() {
    // One connection slot in all; idle connections would stay a minute.
    let (first, second) = (v4(127, 0, 20, 1), v4(127, 0, 20, 2));
    let port = free_port(&[IpAddr::V4(first), IpAddr::V4(second)]);
    let dns = DnsServer::start();
    dns.mx("first.example", "mx.first.example", first).mx("second.example", "mx.second.example", second);
    // A slow greeting: the first connection is still busy (not idle)
    // when the second destination starts waiting for the slot.
    let slow = Scripted::start(
        SocketAddr::new(IpAddr::V4(first), port),
        Script { greeting_delay: Duration::from_millis(1500), ..Script::default() },
    );
    let other = Scripted::start(SocketAddr::new(IpAddr::V4(second), port), Script::default());
    let a = sender(&dns, port, "max_connections = 1\nidle_connection_secs = 60");
    submit(&a, &["fay@first.example"], "takes the only slot");
    let start = std::time::Instant::now();
    while slow.conns().is_empty() {
        assert!(start.elapsed() < WAIT, "no connection to the first MX");
        std::thread::sleep(Duration::from_millis(10));
    }
    submit(&a, &["gus@second.example"], "waits for it");
    let start = std::time::Instant::now();
    wait_events(&a, "port25.outbound.delivered", "to", "fay@first.example", 1);
    wait_events(&a, "port25.outbound.delivered", "to", "gus@second.example", 1);
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(15), "the second destination waited {waited:?} (idle_connection_secs = 60)");
    assert_eq!(other.conns()[0].messages.len(), 1);
    // The first connection gave its slot up at once, with a QUIT.
    let conns = slow.conns();
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert!(conns[0].quit, "{conns:?}");
}

#[test]
fn outbound_a_freed_slot_goes_to_destinations_without_a_connection_before_a_busy_one() {
    // Two connection slots in all, both taken by busy.example: 20 messages
    // to a slow MX (each answered after 400 ms), one per connection, so
    // its connections end and free their slots every 400 ms. Then one
    // message to 19 other domains, each with an MX of its own: 19
    // destinations with mail and no connection, which must get the next
    // free slots before busy.example gets them back (about one busy
    // message-time), not wait for its backlog (about 4 s).
    // 19, not one: the scheduler used to offer a freed slot in HashMap
    // order, which put one such destination before the busy one about
    // every second run, and all 19 about one run in 20.
    const N: usize = 20;
    const OTHERS: u8 = 19;
    let ip = |i: u8| v4(127, 0, 21, i);
    let ips: Vec<IpAddr> = (1..=OTHERS + 1).map(|i| IpAddr::V4(ip(i))).collect();
    let port = free_port(&ips);
    let dns = DnsServer::start();
    dns.mx("busy.example", "mx.busy.example", ip(1));
    let busy = Scripted::start(
        SocketAddr::new(ips[0], port),
        Script { data_delay: Duration::from_millis(400), ..Script::default() },
    );
    let others: Vec<Scripted> = (2..=OTHERS + 1)
        .map(|i| {
            dns.mx(&format!("d{i}.example"), &format!("mx.d{i}.example"), ip(i));
            Scripted::start(SocketAddr::new(IpAddr::V4(ip(i)), port), Script::default())
        })
        .collect();
    let a = sender(&dns, port, "hold = true\nmax_connections = 2\nmessages_per_connection = 1");
    let mut c = Client::open(a.addr());
    c.cmd("EHLO laptop.example");
    for i in 0..N {
        let body = format!("From: alice@example.net\r\nSubject: backlog {i}\r\n\r\nbody {i}\r\n");
        assert_eq!(code(&c.send_mail("alice@example.net", &["bob@busy.example"], &body)), 250);
    }
    c.cmd("QUIT");
    release(&a);
    // Two messages taken: busy.example has had both slots, and has them.
    let start = Instant::now();
    while busy.taken().len() < 2 {
        assert!(start.elapsed() < WAIT, "busy.example got no mail");
        std::thread::sleep(Duration::from_millis(10));
    }
    let rcpts: Vec<String> = (2..=OTHERS + 1).map(|i| format!("u@d{i}.example")).collect();
    let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    let queued = Instant::now();
    submit(&a, &rcpts, "waits for a slot");
    let start = Instant::now();
    while others.iter().any(|o| o.taken().is_empty()) {
        assert!(start.elapsed() < WAIT, "not every other destination got its message");
        std::thread::sleep(Duration::from_millis(10));
    }
    let last = others.iter().flat_map(Scripted::taken).max().unwrap();
    // At most the two messages busy.example was sending when the others
    // were queued, and two more should a slot free before their routes
    // are known: about one busy message-time, not the backlog.
    let meanwhile = busy.taken().into_iter().filter(|t| *t > queued && *t <= last).count();
    assert!(
        meanwhile <= 4,
        "busy.example delivered {meanwhile} messages before the last of the others ({:?} after they were queued)",
        last - queued
    );
    // And its backlog is delivered too, afterwards.
    wait_events(&a, "port25.outbound.delivered", "to", "bob@busy.example", N);
    assert_eq!(busy.taken().len(), N);
}
