//! Issue 13 item 21: an MX record is written by the recipient's domain, so
//! it may point anywhere. MX addresses on loopback, private, link-local
//! (and other special) networks are not connected to unless the operator
//! allows their network, and port25's own listener never is.

use crate::dns::DnsServer;
use crate::harness::*;
use crate::outbound::*;
use crate::scripted::{Script, Scripted};
use std::net::SocketAddr;

/// Mail for inside.example, whose MX is 127.0.61.1 (a server the test
/// runs), from a port25 with `extra` in [outbound].
fn mail_to_loopback_mx(extra: &str) -> (Server, Scripted, DnsServer, SocketAddr) {
    let (mx, dns) = one_mx(61, "inside.example");
    let remote = Scripted::start(mx, Script::default());
    let a = sender(&dns, mx.port(), extra);
    submit(&a, &["root@inside.example"], "to a loopback MX");
    (a, remote, dns, mx)
}

#[test]
fn outbound_an_mx_on_loopback_is_not_connected_to_unless_its_network_is_allowed() {
    let (a, remote, _dns, mx) = mail_to_loopback_mx("allowed_private_networks = []");
    let deferred = wait_events(&a, "port25.outbound.deferred", "to", "root@inside.example", 2);
    for d in &deferred {
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("451 4.4.4 MX mx.inside.example of inside.example: 127.0.61.1 is a loopback address"),
            "{reason}"
        );
        assert!(reason.contains("allowed_private_networks"), "the reason says how to allow it: {reason}");
    }
    let refused = wait_events(&a, "port25.outbound.target_refused", "destination", "inside.example", 1);
    assert_eq!(refused[0]["address"], mx.to_string(), "{refused:?}");
    assert!(remote.conns().is_empty(), "connected to a loopback MX: {:?}", remote.conns());
    assert!(a.events("port25.outbound.delivered").is_empty());
    assert!(a.events("port25.outbound.connect_failed").is_empty(), "no connection was even tried");

    // The same MX with its network allowed gets the mail.
    drop((a, remote));
    let (b, remote, _dns, _) = mail_to_loopback_mx("allowed_private_networks = [\"127.0.61.0/24\"]");
    wait_events(&b, "port25.outbound.delivered", "to", "root@inside.example", 1);
    assert_eq!(remote.conns().iter().map(|c| c.messages.len()).sum::<usize>(), 1);
    assert!(b.events("port25.outbound.target_refused").is_empty());
}

#[test]
fn outbound_an_mx_that_is_port25s_own_listener_is_refused_even_where_loopback_is_allowed() {
    // The MX of loop.example is the sender's own listener (address and port).
    let dns = DnsServer::start();
    let ip = v4(127, 0, 62, 1);
    let port = free_port(&[ip.into()]);
    dns.mx("loop.example", "mx.loop.example", ip);
    let mx = format!(
        "domains = [\"example.net\"]\n[submission]\ntrusted_networks = [\"127.0.0.0/8\"]\nmessages_per_hour = 0\nmessages_per_day = 0\nrecipients_per_hour = 0\nrecipients_per_day = 0\n\
         [outbound]\nnameservers = [\"{}\"]\nport = {port}\nfirst_retry_secs = 1\nmax_retry_secs = 2\nretry_jitter = 0.0\n{PRIVATE_MX}\n",
        dns.addr
    );
    let a = Server::start(
        &mx,
        &format!("[[listener]]\nname = \"sub\"\naddress = \"127.0.62.1:{port}\"\nservice = \"submission\"\ntls = \"none\"\nplaintext_auth = true\n"),
    );
    submit(&a, &["ann@loop.example"], "back to myself");
    let deferred = wait_events(&a, "port25.outbound.deferred", "to", "ann@loop.example", 1);
    let reason = deferred[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("451 4.4.6 ") && reason.contains("own listener"), "{reason}");
    let refused = events_where(&a, "port25.outbound.target_refused", "address", &format!("127.0.62.1:{port}"));
    assert!(!refused.is_empty());
    // Nothing but the test's own submission ever reached the listener.
    // Logged after the message is stored, so possibly after the deferral.
    assert_eq!(a.wait_events("port25.submission.accepted", 1, WAIT).len(), 1, "port25 mailed itself");
}
