//! v9/IPFIX template handling: templates that arrive late, change, are
//! withdrawn or never come; malformed datagrams counted, never fatal.

use port25_egress::flow::encode::{self, IPFIX_V4, IPFIX_V6, V9_V4};
use port25_egress::flow::{Collector, Flow};
use std::net::IpAddr;

const EXPORT: u32 = 1_764_000_000;

fn flow(i: u32) -> Flow {
    Flow {
        src: IpAddr::from([198, 51, 100, (i % 200) as u8]),
        dst: IpAddr::from([100, 64, (i / 256) as u8, i as u8]),
        src_port: 40000 + i as u16,
        dst_port: 25,
        proto: 6,
        tcp_flags: 2,
        packets: 2 + i as u64,
        bytes: 120 + i as u64,
        start_ms: EXPORT as u64 * 1000 - 5000 + i as u64,
        end_ms: EXPORT as u64 * 1000 - 1000 + i as u64,
    }
}

fn flow6(i: u32) -> Flow {
    Flow {
        src: format!("2001:db8:100::{i:x}").parse().unwrap(),
        dst: format!("2001:db8:ffff::{i:x}").parse().unwrap(),
        ..flow(i)
    }
}

fn exporter() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

#[test]
fn ipfix_round_trip_v4_and_v6() {
    let flows: Vec<Flow> = (0..10).map(flow).collect();
    let flows6: Vec<Flow> = (0..5).map(flow6).collect();
    let d = encode::ipfix(
        7,
        EXPORT,
        1,
        &[
            encode::template_set(true, 256, IPFIX_V4),
            encode::template_set(true, 257, IPFIX_V6),
            encode::data_set(256, IPFIX_V4, &flows, 0),
            encode::data_set(257, IPFIX_V6, &flows6, 0),
        ],
    );
    let mut c = Collector::new();
    let mut out = Vec::new();
    c.datagram(exporter(), &d, &mut out);
    assert_eq!(out[..10], flows[..]);
    assert_eq!(out[10..], flows6[..]);
    assert_eq!(c.stats.templates_learned, 2);
}

#[test]
fn v5_and_v9_round_trip() {
    let flows: Vec<Flow> = (0..30).map(flow).collect();
    let mut c = Collector::new();
    let mut out = Vec::new();
    c.datagram(exporter(), &encode::v5(&flows, EXPORT, 3_600_000), &mut out);
    assert_eq!(out, flows);
    out.clear();
    let boot = EXPORT as u64 * 1000 - 3_600_000;
    let d = encode::v9(
        1,
        EXPORT,
        3_600_000,
        1,
        &[encode::template_set(false, 300, V9_V4), encode::data_set(300, V9_V4, &flows, boot)],
    );
    c.datagram(exporter(), &d, &mut out);
    assert_eq!(out, flows);
}

#[test]
fn late_template_recovers_deferred_data() {
    let flows: Vec<Flow> = (0..8).map(flow).collect();
    let mut c = Collector::new();
    let mut out = Vec::new();
    // Data first (the template datagram was reordered or the collector restarted).
    c.datagram(exporter(), &encode::ipfix(1, EXPORT, 1, &[encode::data_set(256, IPFIX_V4, &flows[..4], 0)]), &mut out);
    c.datagram(exporter(), &encode::ipfix(1, EXPORT, 2, &[encode::data_set(256, IPFIX_V4, &flows[4..], 0)]), &mut out);
    assert!(out.is_empty());
    assert_eq!(c.stats.sets_deferred, 2);
    c.datagram(exporter(), &encode::ipfix(1, EXPORT, 3, &[encode::template_set(true, 256, IPFIX_V4)]), &mut out);
    assert_eq!(out, flows);
    assert_eq!(c.stats.sets_recovered, 2);
    // In the same datagram, data before its template also decodes.
    out.clear();
    let boot = EXPORT as u64 * 1000 - 3_600_000;
    let d = encode::v9(
        9,
        EXPORT,
        3_600_000,
        1,
        &[encode::data_set(400, V9_V4, &flows[..2], boot), encode::template_set(false, 400, V9_V4)],
    );
    c.datagram(exporter(), &d, &mut out);
    assert_eq!(out, flows[..2]);
}

#[test]
fn changed_template_applies_to_later_data() {
    let mut c = Collector::new();
    let mut out = Vec::new();
    let f6: Vec<Flow> = (0..3).map(flow6).collect();
    let f4: Vec<Flow> = (0..3).map(flow).collect();
    c.datagram(
        exporter(),
        &encode::ipfix(
            1,
            EXPORT,
            1,
            &[encode::template_set(true, 256, IPFIX_V4), encode::data_set(256, IPFIX_V4, &f4, 0)],
        ),
        &mut out,
    );
    // Template 256 is redefined (exporter restart with another layout).
    c.datagram(
        exporter(),
        &encode::ipfix(
            1,
            EXPORT,
            2,
            &[encode::template_set(true, 256, IPFIX_V6), encode::data_set(256, IPFIX_V6, &f6, 0)],
        ),
        &mut out,
    );
    assert_eq!(out[..3], f4[..]);
    assert_eq!(out[3..], f6[..]);
    assert_eq!(c.stats.templates_changed, 1);
    // Templates are per observation domain and exporter: domain 2 knows nothing.
    out.clear();
    c.datagram(exporter(), &encode::ipfix(2, EXPORT, 1, &[encode::data_set(256, IPFIX_V6, &f6, 0)]), &mut out);
    assert!(out.is_empty());
    c.finish();
    assert_eq!(c.stats.sets_without_template, 1);
}

#[test]
fn missing_template_is_counted_and_bounded() {
    let mut c = Collector::new();
    let mut out = Vec::new();
    let f: Vec<Flow> = (0..20).map(flow).collect();
    for i in 0..(port25_egress::flow::MAX_DEFERRED_SETS as u32 + 100) {
        c.datagram(exporter(), &encode::ipfix(1, EXPORT, i, &[encode::data_set(999, IPFIX_V4, &f, 0)]), &mut out);
    }
    assert!(out.is_empty());
    assert_eq!(c.stats.sets_deferred, port25_egress::flow::MAX_DEFERRED_SETS as u64);
    assert_eq!(c.stats.sets_without_template, 100);
    c.finish();
    assert_eq!(c.stats.sets_without_template, port25_egress::flow::MAX_DEFERRED_SETS as u64 + 100);
    assert_eq!(c.stats.malformed, 0);
}

#[test]
fn withdrawn_template_stops_decoding() {
    let mut c = Collector::new();
    let mut out = Vec::new();
    let f: Vec<Flow> = (0..2).map(flow).collect();
    c.datagram(exporter(), &encode::ipfix(1, EXPORT, 1, &[encode::template_set(true, 256, IPFIX_V4)]), &mut out);
    c.datagram(exporter(), &encode::ipfix(1, EXPORT, 2, &[encode::template_set(true, 256, &[])]), &mut out);
    assert_eq!(c.stats.templates_withdrawn, 1);
    c.datagram(exporter(), &encode::ipfix(1, EXPORT, 3, &[encode::data_set(256, IPFIX_V4, &f, 0)]), &mut out);
    assert!(out.is_empty());
    assert_eq!(c.stats.sets_deferred, 1);
}

#[test]
fn malformed_datagrams_are_counted_and_skipped() {
    let mut c = Collector::new();
    let mut out = Vec::new();
    let f: Vec<Flow> = (0..3).map(flow).collect();
    let good = encode::ipfix(
        1,
        EXPORT,
        1,
        &[encode::template_set(true, 256, IPFIX_V4), encode::data_set(256, IPFIX_V4, &f, 0)],
    );
    let bad: Vec<Vec<u8>> = vec![
        vec![],
        vec![0, 10],
        vec![0, 7, 0, 0],
        good[..good.len() - 3].to_vec(),
        encode::v5(&f, EXPORT, 3_600_000)[..60].to_vec(),
        {
            let mut d = good.clone();
            d[18] = 0xff; // a set length past the end
            d
        },
    ];
    for d in &bad {
        c.datagram(exporter(), d, &mut out);
    }
    assert_eq!(c.stats.malformed, bad.len() as u64);
    c.datagram(exporter(), &good, &mut out);
    assert_eq!(out, f);
}

/// IPFIX datagrams from `exporter` defining `ids` (one short template each)
/// in observation domain `domain`, fed to `c`.
fn flood(c: &mut Collector, exporter: IpAddr, domain: u32, ids: std::ops::RangeInclusive<u16>) {
    let mut out = Vec::new();
    let ids: Vec<u16> = ids.collect();
    for chunk in ids.chunks(1000) {
        let sets: Vec<Vec<u8>> = chunk.iter().map(|&id| encode::template_set(true, id, &[(8, 4), (12, 4)])).collect();
        c.datagram(exporter, &encode::ipfix(domain, EXPORT, 1, &sets), &mut out);
    }
    assert!(out.is_empty());
}

#[test]
fn a_million_template_ids_keep_the_table_at_its_bound() {
    use port25_egress::flow::{MAX_TEMPLATES, MAX_TEMPLATES_PER_EXPORTER, MAX_TEMPLATE_FIELDS};
    // One exporter: 16 domains x 62,500 ids = 1,000,000 distinct templates.
    let mut c = Collector::new();
    for domain in 0..16 {
        flood(&mut c, exporter(), domain, 256..=62_755);
        assert!(c.template_count_of(exporter()) <= MAX_TEMPLATES_PER_EXPORTER);
    }
    assert_eq!(c.stats.templates_learned, 1_000_000);
    assert_eq!(c.template_count(), MAX_TEMPLATES_PER_EXPORTER);
    assert_eq!(c.stats.templates_evicted, 1_000_000 - MAX_TEMPLATES_PER_EXPORTER as u64);
    // Spread over 250 exporters (4,000 each, under the per-exporter bound):
    // the total bound holds.
    let mut c = Collector::new();
    for i in 0..250u32 {
        let e = IpAddr::from([10, 0, (i >> 8) as u8, i as u8]);
        flood(&mut c, e, 1, 256..=4255);
        assert!(c.template_count() <= MAX_TEMPLATES && c.template_fields() <= MAX_TEMPLATE_FIELDS);
    }
    assert_eq!(c.stats.templates_learned, 1_000_000);
    assert_eq!(c.template_count(), MAX_TEMPLATES);
    assert_eq!(c.stats.templates_evicted, 1_000_000 - MAX_TEMPLATES as u64);
}

#[test]
fn a_template_sent_again_outlives_newer_ones_nobody_repeats() {
    use port25_egress::flow::MAX_TEMPLATES_PER_EXPORTER;
    let mut c = Collector::new();
    let mut out = Vec::new();
    let f: Vec<Flow> = (0..2).map(flow).collect();
    c.datagram(exporter(), &encode::ipfix(1, EXPORT, 1, &[encode::template_set(true, 256, IPFIX_V4)]), &mut out);
    let last = 256 + MAX_TEMPLATES_PER_EXPORTER as u16 - 1;
    flood(&mut c, exporter(), 1, 257..=last);
    // The router resends 256, as routers do every few minutes.
    c.datagram(exporter(), &encode::ipfix(1, EXPORT, 2, &[encode::template_set(true, 256, IPFIX_V4)]), &mut out);
    flood(&mut c, exporter(), 1, last + 1..=last + 10);
    assert_eq!(c.stats.templates_evicted, 10);
    c.datagram(exporter(), &encode::ipfix(1, EXPORT, 3, &[encode::data_set(256, IPFIX_V4, &f, 0)]), &mut out);
    assert_eq!(out, f, "256 was sent most recently but one: still held");
    out.clear();
    c.datagram(exporter(), &encode::ipfix(1, EXPORT, 4, &[encode::data_set(257, IPFIX_V4, &f, 0)]), &mut out);
    assert!(out.is_empty() && c.stats.sets_deferred == 1, "257, the oldest, went first");
}

#[test]
fn datagrams_from_outside_the_exporter_list_are_dropped_and_counted() {
    let mut c = Collector::new();
    c.only_from(vec!["127.0.0.1/32".parse().unwrap(), "2001:db8::/64".parse().unwrap()]);
    let f: Vec<Flow> = (0..3).map(flow).collect();
    let d = encode::ipfix(
        1,
        EXPORT,
        1,
        &[encode::template_set(true, 256, IPFIX_V4), encode::data_set(256, IPFIX_V4, &f, 0)],
    );
    let mut out = Vec::new();
    for from in ["127.0.0.2", "2001:db8:0:1::1", "::ffff:127.0.0.2"] {
        c.datagram(from.parse().unwrap(), &d, &mut out);
    }
    assert!(out.is_empty());
    assert_eq!((c.stats.datagrams_refused, c.stats.datagrams, c.template_count()), (3, 0, 0));
    assert_eq!(c.refused_from.len(), 3);
    for from in ["127.0.0.1", "::ffff:127.0.0.1", "2001:db8::9"] {
        c.datagram(from.parse().unwrap(), &d, &mut out);
    }
    assert_eq!(out.len(), 9);
    assert_eq!(c.stats.datagrams, 3);
    // The mapped and the plain form are one exporter: one template for both.
    assert_eq!(c.template_count_of("127.0.0.1".parse().unwrap()), 1);
    assert_eq!(c.template_count(), 2);
}

/// A template with a variable-length field (IPFIX), so a data record can
/// claim more bytes than its set holds.
const VARLEN_T: &[(u16, u16)] = &[(8, 4), (12, 4), (1, 65535)];

/// A data set for [`VARLEN_T`] whose one record overruns it: addresses,
/// then a length byte of 200 with 1 byte behind it.
fn overrunning_set(template_id: u16) -> Vec<u8> {
    let mut s = template_id.to_be_bytes().to_vec();
    s.extend_from_slice(&14u16.to_be_bytes());
    s.extend_from_slice(&[198, 51, 100, 1, 100, 64, 0, 1, 200, 0]);
    s
}

#[test]
fn a_datagram_is_counted_malformed_once_whatever_fails_in_it() {
    // Found by egress_flow_datagram (at most one malformed count per
    // datagram): two data sets that overrun, sent before their template in
    // the same message, each counted once the template decoded them.
    let d = encode::ipfix(
        1,
        EXPORT,
        1,
        &[overrunning_set(256), overrunning_set(256), encode::template_set(true, 256, VARLEN_T)],
    );
    let mut c = Collector::new();
    let mut out = Vec::new();
    c.datagram(exporter(), &d, &mut out);
    assert_eq!((c.stats.datagrams, c.stats.malformed, c.stats.sets_recovered), (1, 1, 2));
    // A deferred set that fails, and then a set length past the end.
    let mut d = encode::ipfix(
        1,
        EXPORT,
        1,
        &[overrunning_set(256), encode::template_set(true, 256, VARLEN_T), vec![1, 0, 0, 40]],
    );
    let n = d.len() as u16;
    d[2..4].copy_from_slice(&n.to_be_bytes());
    let mut c = Collector::new();
    c.datagram(exporter(), &d, &mut out);
    assert_eq!((c.stats.datagrams, c.stats.malformed), (1, 1));
    assert!(out.is_empty());
}

#[test]
fn a_late_template_counts_an_earlier_datagram_malformed_once() {
    let mut c = Collector::new();
    let mut out = Vec::new();
    // Datagram 1: two sets waiting for template 256 (nothing wrong yet).
    c.datagram(exporter(), &encode::ipfix(1, EXPORT, 1, &[overrunning_set(256), overrunning_set(256)]), &mut out);
    assert_eq!((c.stats.malformed, c.stats.sets_deferred), (0, 2));
    // Datagram 2 brings the template: datagram 1 turns out malformed, once;
    // datagram 2 itself is fine.
    c.datagram(exporter(), &encode::ipfix(1, EXPORT, 2, &[encode::template_set(true, 256, VARLEN_T)]), &mut out);
    assert_eq!((c.stats.datagrams, c.stats.malformed, c.stats.sets_recovered), (2, 1, 2));
    // A datagram already counted malformed (a set length past its end after
    // a deferred set) is not counted again when its deferred set fails later.
    let mut c = Collector::new();
    let mut d = encode::ipfix(1, EXPORT, 1, &[overrunning_set(257), vec![1, 0, 0, 40]]);
    let n = d.len() as u16;
    d[2..4].copy_from_slice(&n.to_be_bytes());
    c.datagram(exporter(), &d, &mut out);
    assert_eq!(c.stats.malformed, 1);
    c.datagram(exporter(), &encode::ipfix(1, EXPORT, 2, &[encode::template_set(true, 257, VARLEN_T)]), &mut out);
    assert_eq!((c.stats.datagrams, c.stats.malformed, c.stats.sets_recovered), (2, 1, 1));
    assert!(out.is_empty());
}
