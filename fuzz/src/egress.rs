//! Properties of port25_egress's parsers: NetFlow/IPFIX datagrams (one and
//! a stream sharing template state), pcap files, and the policy file.
//! Uses only std and port25_egress, so crates/egress/tests/fuzz_smoke.rs
//! includes this file with `#[path]`.

use port25_egress::check::deciding_entry;
use port25_egress::compile::{compile, Target};
use port25_egress::flow::{
    lz, nfcapd, pcap, Collector, MAX_TEMPLATES, MAX_TEMPLATES_PER_EXPORTER, MAX_TEMPLATE_FIELDS,
};
use port25_egress::policy;
use port25_egress::prefix::u128_to_ip;
use port25_egress::table::{Table, NONE};
use std::net::IpAddr;

/// One datagram: never panics; at most one malformed count; the flow count
/// in the stats equals what was returned; v5 yields exactly its count.
pub fn flow_datagram(data: &[u8]) {
    let mut c = Collector::new();
    let mut out = Vec::new();
    c.datagram(IpAddr::from([192, 0, 2, 1]), data, &mut out);
    assert_eq!(c.stats.datagrams, 1);
    assert!(c.stats.malformed <= 1);
    assert_eq!(c.stats.flows, out.len() as u64);
    if data.len() >= 4 && data[..2] == [0, 5] && c.stats.malformed == 0 {
        assert_eq!(out.len(), u16::from_be_bytes([data[2], data[3]]) as usize);
    }
    if data.len() >= 2 && data[..2] != [0, 5] && data[..2] != [0, 9] && data[..2] != [0, 10] {
        assert_eq!(c.stats.malformed, 1);
    }
}

/// A stream of datagrams (each prefixed by a 2-byte length; the low bit of
/// the length's first byte picks one of two exporters; every fifth comes
/// from an address outside the allow-list instead) through one collector: templates learned
/// in one datagram serve the next; every deferred set ends decoded or
/// counted as without template; refused datagrams are counted and leave no
/// state; the template table stays within its bounds.
pub fn flow_stream(data: &[u8]) {
    let mut c = Collector::new();
    c.only_from(vec!["192.0.2.0/30".parse().unwrap()]);
    let mut out = Vec::new();
    let mut rest = data;
    let (mut n, mut refused) = (0, 0);
    while rest.len() >= 2 {
        let len = (u16::from_be_bytes([rest[0], rest[1]]) >> 1) as usize;
        let outside = (n + refused) % 5 == 4;
        let exporter =
            if outside { IpAddr::from([198, 51, 100, 1]) } else { IpAddr::from([192, 0, 2, 1 + (rest[1] & 1)]) };
        let take = len.min(rest.len() - 2);
        let before = (c.template_count(), out.len());
        c.datagram(exporter, &rest[2..2 + take], &mut out);
        if outside {
            refused += 1;
            assert_eq!((c.template_count(), out.len()), before);
        } else {
            n += 1;
        }
        assert!(c.template_count() <= MAX_TEMPLATES && c.template_fields() <= MAX_TEMPLATE_FIELDS);
        assert!(c.template_count_of(exporter) <= MAX_TEMPLATES_PER_EXPORTER);
        rest = &rest[2 + take..];
    }
    c.finish();
    let s = &c.stats;
    assert_eq!(s.datagrams, n);
    assert_eq!(s.datagrams_refused, refused);
    assert_eq!(s.flows, out.len() as u64);
    // A datagram is malformed once, also when its deferred sets fail later.
    assert!(s.malformed <= s.datagrams);
    assert!(s.sets_recovered <= s.sets_deferred);
    assert!(s.sets_deferred <= s.sets_recovered + s.sets_without_template);
}

/// A pcap file: never panics; every payload lies inside the input; the
/// streaming reader (what `egress flows` reads files with) yields the same
/// datagrams and counts as the slice reader.
pub fn pcap_file(data: &[u8]) {
    let Ok(mut r) = pcap::Reader::new(data) else {
        assert!(pcap::Stream::new(data).is_err(), "both refuse the header");
        return;
    };
    let mut s = pcap::Stream::new(data).expect("the slice reader took the header");
    let range = data.as_ptr_range();
    let mut total = 0usize;
    for d in r.by_ref() {
        let p = d.payload.as_ptr_range();
        assert!(p.start >= range.start && p.end <= range.end);
        total += d.payload.len();
        let e = s.next_datagram().expect("reading from memory cannot fail").expect("the stream yields it too");
        assert_eq!(
            (e.src, e.src_port, e.dst_port, e.ts_ms, e.payload),
            (d.src, d.src_port, d.dst_port, d.ts_ms, d.payload)
        );
        flow_datagram(d.payload);
    }
    assert!(s.next_datagram().expect("reading from memory cannot fail").is_none());
    assert_eq!(s.counts(), r.counts());
    assert!(s.position() <= data.len() as u64);
    assert!(total <= data.len());
}

/// nfdump files (`egress flows --nfcapd`): never panics; flows returned
/// equal the flows counted, each standing for at least one flow; every
/// record is counted once (flow, other, incomplete, or the one malformed
/// per block); problems point inside the file and the named ones are
/// counted. The two decompressors also run on the raw bytes: never panic,
/// never exceed their bound, and LZO's and LZ4's stored forms read back.
pub fn nfcapd_file(data: &[u8]) {
    let max = 1 << 16;
    let mut out = Vec::new();
    if let Ok(n) = lz::lz4_block(data, &mut out, max) {
        assert!(n <= max);
    }
    if let Ok(n) = lz::lzo1x(data, &mut out, max) {
        assert!(n <= max);
    }
    assert!(out.len() <= max + lz::SLACK);
    let Ok(mut r) = nfcapd::Reader::new(data) else { return };
    let mut flows = Vec::new();
    let mut n = 0u64;
    while r.next_block(&mut flows).expect("reading from memory cannot fail") {
        n += flows.len() as u64;
        assert!(flows.iter().all(|(_, c)| *c >= 1));
    }
    let s = &r.stats;
    assert_eq!(n, s.flows);
    assert!(s.flows + s.records_other + s.records_incomplete <= s.records);
    assert!(s.blocks <= u64::from(r.header.blocks));
    assert!(s.blocks_corrupt + s.blocks_other <= s.blocks);
    for p in &r.problems {
        assert!(p.offset <= data.len() as u64, "{p:?}");
        assert!(!p.message.is_empty());
    }
    assert!(r.problems.len() as u64 <= r.problems_total);
    assert!(r.problems_total >= s.blocks_corrupt + s.records_malformed);
    // Whatever was read, written back (stored, any compression) reads back the same.
    if n > 0 && n <= 64 {
        let mut all = Vec::new();
        let mut r = nfcapd::Reader::new(data).expect("opened once");
        while r.next_block(&mut flows).expect("memory") {
            all.extend(flows.iter().map(|x| x.0));
        }
        for c in [nfcapd::Compression::None, nfcapd::Compression::Lz4, nfcapd::Compression::Lzo] {
            let file = nfcapd::write(&all, c, 7);
            let mut back = nfcapd::Reader::new(&file[..]).expect("written");
            let mut got = Vec::new();
            while back.next_block(&mut flows).expect("memory") {
                got.extend(flows.iter().map(|x| x.0));
            }
            assert_eq!(got, all, "{c:?}");
            assert_eq!(back.problems_total, 0);
        }
    }
}

/// Policy text: never panics; errors name a line inside the text and a
/// fix; accepted policies never block a protected port, compile
/// deterministically for every target, and the flattened table agrees with
/// the direct longest-prefix decision at every prefix edge.
pub fn policy_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = std::path::Path::new("fuzz.toml");
    match policy::parse(text, file) {
        Err(e) => {
            let lines = text.lines().count().max(1);
            assert!(e.line >= 1 && e.line <= lines + 1, "line {} of {lines}: {e}", e.line);
            assert!(!e.message.is_empty(), "{e}");
            assert!(!e.hint.is_empty(), "{e}");
        }
        Ok(p) => {
            assert!(p.blocked_ports.iter().all(|b| !p.protected_ports.contains(b)));
            for (_, t) in Target::ALL {
                assert_eq!(compile(&p, *t), compile(&p, *t));
            }
            let table = Table::new(&p);
            let all = p
                .networks
                .iter()
                .flat_map(|n| n.prefixes.iter())
                .chain(p.exemptions.iter().flat_map(|x| x.prefixes.iter()));
            for pf in all.take(64) {
                let max = pf.family.max();
                for v in [pf.first().wrapping_sub(1) & max, pf.first(), pf.last(), pf.last().wrapping_add(1) & max] {
                    let ip = u128_to_ip(pf.family, v);
                    let want = deciding_entry(&p, ip);
                    let got = table.lookup(ip);
                    match want {
                        None => assert_eq!(got, NONE, "{ip}"),
                        Some((kind, index, _)) => {
                            let e = &table.entries[got as usize];
                            assert_eq!((e.kind, e.index), (kind, index), "{ip}");
                        }
                    }
                }
            }
        }
    }
}

/// `egress_time` (port25_egress::report::parse_time, the `--since`/`--until`
/// of `egress report`): never panics; whole seconds only; a time written
/// back as RFC 3339 reads back equal.
pub fn time_arg(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(ms) = port25_egress::report::parse_time(&text) {
        assert_eq!(ms % 1000, 0, "{text:?}");
        if let Ok(again) = port25_egress::report::parse_time(&port25_egress::report::rfc3339(ms)) {
            assert_eq!(again, ms, "{text:?}");
        }
    }
}
