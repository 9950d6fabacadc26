//! Properties of port25_egress's attribution parsers (issue 20): FreeRADIUS
//! detail files, radacct CSV, Kea memfile leases, dhcpd.leases, dnsmasq
//! leases, and the interval index over what they yield. Uses only std and
//! port25_egress, so crates/egress/tests/attribution_fuzz_smoke.rs includes
//! this file with `#[path]`.

use port25_egress::attribution::{dhcpd, dnsmasq, kea, radacct, radius, Index, Session, Warnings};
use port25_egress::prefix::{ip_to_u128, u128_to_ip};

/// The text a parser sees (the loader reads files as lossy UTF-8).
fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// What every source must hold: sessions name a subscriber and at least one
/// prefix, never end before they start, and point at a line of the input;
/// warnings point at lines of the input and the named ones are counted;
/// the index built over them answers every session's own prefix at its
/// start with a session covering that address then, and never answers with
/// a session that does not cover the address and time asked.
fn check(text: &str, sessions: Vec<Session>, w: &Warnings) {
    let lines = text.lines().count() as u32 + 1;
    for s in &sessions {
        assert!(!s.prefixes.is_empty(), "{s:?}");
        assert!(!s.subscriber.is_empty(), "{s:?}");
        assert!(s.end_ms.is_none_or(|e| e >= s.start_ms), "{s:?}");
        assert!(s.origin.line >= 1 && s.origin.line <= lines, "line {} of {lines}: {s:?}", s.origin.line);
    }
    for x in &w.named {
        assert!(x.origin.line >= 1 && x.origin.line <= lines, "line {} of {lines}: {x:?}", x.origin.line);
        assert!(!x.message.is_empty());
    }
    assert!(w.named.len() as u64 <= w.total());
    let mut w2 = Warnings::default();
    let index = Index::build(sessions.clone(), &mut w2);
    for s in sessions.iter().take(256) {
        let open = s.start_ms < s.end_or_max();
        for p in &s.prefixes {
            let max = p.family.max();
            let probes = [
                (p.first(), s.start_ms, open),
                (p.last(), s.end_or_max().saturating_sub(1), open),
                (p.first().wrapping_sub(1) & max, s.start_ms, false),
                (p.last().wrapping_add(1) & max, s.start_ms, false),
            ];
            for (v, t, must) in probes {
                let ip = u128_to_ip(p.family, v);
                // An IPv6 prefix that takes in ::ffff:0:0/96 (::/80, say)
                // cannot answer for those addresses: ::ffff:a.b.c.d is the
                // IPv4 host a.b.c.d to every lookup (prefix::ip_to_u128).
                let must = must && ip_to_u128(ip).0 == p.family;
                match index.lookup(ip, t) {
                    Some(i) => {
                        // Whatever answers covers the address and the time.
                        let got = index.session(i);
                        assert!(got.start_ms <= t && t < got.end_or_max(), "{ip} at {t}: {got:?}");
                        assert!(got.prefixes.iter().any(|q| q.contains(p.family, v)), "{ip}: {got:?}");
                    }
                    None => assert!(!must, "{ip} at {t} unanswered though {s:?} covers it"),
                }
            }
        }
    }
}

/// `attribution_radius`: one detail file, replayed into sessions.
pub fn radius_detail(data: &[u8]) {
    let t = text(data);
    let mut w = Warnings::default();
    let mut events = Vec::new();
    radius::parse(&t, 0, &mut events, &mut w);
    let sessions = radius::sessions(events.clone(), &mut w);
    // Replayed as read (what the loader does): unless some session's
    // records are out of time order, the very same sessions and warnings.
    let mut w1 = Warnings::default();
    let mut replay = radius::Replay::new();
    radius::records(&t, 0, &mut |r| replay.record(&r), &mut w1);
    if let Some(store) = replay.finish(&mut w1) {
        assert_eq!(store.iter().collect::<Vec<_>>(), sessions);
        assert_eq!((&w1.counts, &w1.named), (&w.counts, &w.named));
    }
    // The same events in another order (files read in another order)
    // give the same sessions: replay sorts by time.
    let mut reversed = events;
    reversed.reverse();
    let mut w2 = Warnings::default();
    assert_eq!(radius::sessions(reversed.clone(), &mut w2).len(), sessions.len());
    // Replayed in time order in passes of a few records each (what the
    // loader does with files out of time order): the same sessions and
    // the same replay warnings.
    let mut w3 = Warnings::default();
    let mut all = |each: &mut dyn FnMut(radius::Record<'_>)| -> Result<(), ()> {
        reversed.iter().for_each(|e| each(e.as_record()));
        Ok(())
    };
    if let Ok(Some(store)) = radius::replay_in_time_order(1024, &mut all, &mut w3) {
        assert_eq!(store.iter().collect::<Vec<_>>(), sessions);
        assert_eq!((&w3.counts, &w3.named), (&w2.counts, &w2.named));
    }
    check(&t, sessions, &w);
}

/// `attribution_radacct`: a radacct CSV export.
pub fn radacct_csv(data: &[u8]) {
    let t = text(data);
    let mut w = Warnings::default();
    let mut sessions = Vec::new();
    radacct::parse(&t, 0, &mut sessions, &mut w);
    check(&t, sessions, &w);
}

/// A DHCP journal: parsed into rows, then leases per address (no more
/// sessions than rows).
fn journal(
    data: &[u8],
    parse: fn(&str, u32, &mut Vec<kea::Row>, &mut Warnings),
    sessions: fn(Vec<kea::Row>) -> Vec<Session>,
) {
    let t = text(data);
    let mut w = Warnings::default();
    let mut rows = Vec::new();
    parse(&t, 0, &mut rows, &mut w);
    let n = rows.len();
    let s = sessions(rows);
    assert!(s.len() <= n);
    check(&t, s, &w);
}

/// `attribution_kea`: a Kea memfile lease file.
pub fn kea_leases(data: &[u8]) {
    journal(data, kea::parse, kea::sessions);
}

/// `attribution_dhcpd`: an ISC dhcpd.leases file.
pub fn dhcpd_leases(data: &[u8]) {
    journal(data, dhcpd::parse, dhcpd::sessions);
}

/// `attribution_dnsmasq`: a dnsmasq lease file.
pub fn dnsmasq_leases(data: &[u8]) {
    let t = text(data);
    let mut w = Warnings::default();
    let mut sessions = Vec::new();
    dnsmasq::parse(&t, 0, &mut sessions, &mut w);
    check(&t, sessions, &w);
}

/// CGNAT port-block CSV: never panics; events and warnings point at lines
/// of the input; blocks never end before they start and their port range
/// is ordered; the index answers each block's first and last port at its
/// start with a block of that outside address covering the port then.
pub fn cgnat_csv(data: &[u8]) {
    use port25_egress::attribution::cgnat;
    let t = text(data);
    let lines = t.split('\n').count() as u32;
    let (mut events, mut w) = (Vec::new(), Warnings::default());
    cgnat::parse_csv(&t, 0, &mut events, &mut w);
    for e in &events {
        assert!(e.origin.line >= 2 && e.origin.line <= lines, "{e:?}");
        assert!(e.first <= e.last);
    }
    let n = events.len();
    let blocks = cgnat::blocks(events, &mut w);
    assert!(blocks.len() <= n);
    for x in &w.named {
        assert!(x.origin.line >= 1 && x.origin.line <= lines, "line {} of {lines}: {x:?}", x.origin.line);
    }
    for b in &blocks {
        assert!(b.first <= b.last && b.end_ms.is_none_or(|e| e >= b.start_ms), "{b:?}");
    }
    let idx = cgnat::NatIndex::build(blocks.clone());
    for b in blocks.iter().take(256) {
        if b.end_ms.is_some_and(|e| e == b.start_ms) {
            continue;
        }
        for port in [b.first, b.last] {
            let got = idx
                .lookup(b.outside, port, b.start_ms)
                .map(|i| idx.block(i).clone())
                .unwrap_or_else(|| panic!("{b:?} unanswered"));
            assert!(got.outside == b.outside && got.first <= port && port <= got.last, "{got:?} for {b:?}");
            assert!(got.start_ms <= b.start_ms && got.end_ms.is_none_or(|e| b.start_ms < e), "{got:?} for {b:?}");
        }
    }
}
