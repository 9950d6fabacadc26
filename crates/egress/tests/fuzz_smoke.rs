//! Smoke fuzzing on stable, run by CI: deterministic mutants of the seeds in
//! fuzz/seeds/egress_* (the shared mutator, fuzz/src/smoke.rs) checked
//! against the same properties as the libFuzzer targets (fuzz/src/egress.rs,
//! included here). The real fuzzing is `cargo fuzz run egress_...` (see
//! fuzz/README.md).

#[allow(dead_code)]
#[path = "../../../fuzz/src/egress.rs"]
mod checks;

#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

use port25_egress::flow::encode::{self, IPFIX_V4, IPFIX_V6, V9_V4};
use port25_egress::flow::Flow;
use smoke::smoke;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

fn seed_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds").join(target)
}

#[test]
fn flow_datagrams() {
    smoke("egress_flow_datagram", 12_000, 0x2545_f491_4f6c_dd1d, checks::flow_datagram);
}

#[test]
fn flow_streams() {
    smoke("egress_flow_stream", 6_000, 0x9e37_79b9_7f4a_7c15, checks::flow_stream);
}

#[test]
fn pcap_files() {
    smoke("egress_pcap", 3_000, 0xd1b5_4a32_d192_ed03, checks::pcap_file);
}

#[test]
fn nfcapd_files() {
    smoke("egress_nfcapd", 3_000, 0x51_7c_c1_b7_27_22_0a_97, checks::nfcapd_file);
}

#[test]
fn policies() {
    smoke("egress_policy", 3_000, 0x8cb9_2ba7_2f3d_8dd7, checks::policy_text);
}

fn flow(i: u32, v6: bool) -> Flow {
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        (format!("2001:db8:100::{i:x}").parse().unwrap(), format!("2001:db8:ffff::{i:x}").parse().unwrap())
    } else {
        (IpAddr::from([198, 51, 100, i as u8]), IpAddr::from([100, 64, 0, i as u8]))
    };
    Flow {
        src,
        dst,
        src_port: 40000,
        dst_port: 25,
        proto: 6,
        tcp_flags: 2,
        packets: 2,
        bytes: 80,
        start_ms: 1_764_000_000_000,
        end_ms: 1_764_000_001_000,
    }
}

/// Writes the generated seeds: `cargo test -p port25-egress --test fuzz_smoke -- --ignored`.
#[test]
#[ignore]
fn write_seeds() {
    let f4: Vec<Flow> = (0..3).map(|i| flow(i, false)).collect();
    let f6: Vec<Flow> = (0..2).map(|i| flow(i, true)).collect();
    let boot = 1_764_000_000_000 - 3_600_000;
    let ipfix = encode::ipfix(
        1,
        1_764_000_002,
        1,
        &[
            encode::template_set(true, 256, IPFIX_V4),
            encode::template_set(true, 257, IPFIX_V6),
            encode::data_set(256, IPFIX_V4, &f4, 0),
            encode::data_set(257, IPFIX_V6, &f6, 0),
        ],
    );
    let v9 = encode::v9(
        1,
        1_764_000_002,
        3_600_000 + 2000,
        1,
        &[encode::template_set(false, 256, V9_V4), encode::data_set(256, V9_V4, &f4, boot)],
    );
    let v5 = encode::v5(&f4, 1_764_000_002, 3_600_000);
    let dir = seed_dir("egress_flow_datagram");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ipfix"), &ipfix).unwrap();
    std::fs::write(dir.join("v9"), &v9).unwrap();
    std::fs::write(dir.join("v5"), &v5).unwrap();
    // Streams: length-prefixed datagrams; data before its template.
    let data_only = encode::ipfix(1, 1_764_000_002, 2, &[encode::data_set(256, IPFIX_V4, &f4, 0)]);
    let tmpl_only = encode::ipfix(1, 1_764_000_002, 3, &[encode::template_set(true, 256, IPFIX_V4)]);
    let mut stream = Vec::new();
    for (d, exporter) in [(&data_only, 0u16), (&tmpl_only, 0), (&v9, 1), (&data_only, 1)] {
        stream.extend_from_slice(&(((d.len() as u16) << 1) | exporter).to_be_bytes());
        stream.extend_from_slice(d);
    }
    let dir = seed_dir("egress_flow_stream");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("late-template"), &stream).unwrap();
    let dir = seed_dir("egress_pcap");
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = port25_egress::flow::pcap::write_raw_udp(
        &[v5, v9, ipfix],
        [127, 0, 0, 1].into(),
        [127, 0, 0, 1].into(),
        2055,
        1_764_000_002,
    );
    std::fs::write(dir.join("raw-ip"), pcap).unwrap();
    let dir = seed_dir("egress_policy");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/egress.toml"), dir.join("example.toml"))
        .unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/edge.toml"), dir.join("edge.toml")).unwrap();
}

#[test]
fn time_arguments() {
    smoke("egress_time", 10_000, 0x2545_f491_4f6c_dd1e, checks::time_arg);
}
