//! `egress flows` with hostile sources: IPv6 hosts that take a new address
//! for every connection, and an outside scanner sweeping the network's
//! proxy ports. The rows are prefixes, and past `--max-rows` and
//! `--max-inbound` nothing is kept: the flows are counted and standard
//! error says so.

use crate::{example_policy, BIN};
use port25_egress::flow::encode::{self, IPFIX_V4, IPFIX_V6};
use port25_egress::flow::{pcap, Flow};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;

const T0: u64 = 1_764_000_000_000;

/// A SYN at the `i`th tenth of a second from T0.
fn flow(src: IpAddr, dst: IpAddr, port: u16, i: u64) -> Flow {
    Flow::syn(src, dst, port, T0 + i * 100)
}

/// IPFIX messages of at most 20 flows each, in a pcap (a flow's family is its source's).
fn exports(flows: &[Flow], path: &Path) {
    let mut datagrams = Vec::new();
    for (k, chunk) in flows.chunks(20).enumerate() {
        let (v4, v6): (Vec<Flow>, Vec<Flow>) = chunk.iter().partition(|f| f.src.is_ipv4());
        let export = (chunk.iter().map(|f| f.end_ms).max().unwrap() / 1000 + 1) as u32;
        datagrams.push(encode::ipfix(
            k as u32,
            export,
            1,
            &[
                encode::template_set(true, 256, IPFIX_V4),
                encode::template_set(true, 257, IPFIX_V6),
                encode::data_set(256, IPFIX_V4, &v4, 0),
                encode::data_set(257, IPFIX_V6, &v6, 0),
            ],
        ));
    }
    let export = (T0 / 1000 + 3600) as u32;
    std::fs::write(path, pcap::write_raw_udp(&datagrams, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 2055, export))
        .unwrap();
}

fn egress_flows(pcap: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    let out = Command::new(BIN)
        .args(["egress", "flows", "--quiet", "--format", "json", "--policy"])
        .arg(example_policy())
        .arg("--pcap")
        .arg(pcap)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

/// 400 connections to 40 MXes, each from a new address of one /64 of
/// 2001:db8:100:1200::/56 (the residential /40 of dist/egress.toml); 50
/// more from other /64s of that /56; a scanner sweeping 300 addresses of
/// the /40 on 1080 and 3128 from 30 sources, 40 of its probes into the
/// bot's /64.
fn hostile_flows() -> Vec<Flow> {
    let mut flows = Vec::new();
    let v6 = |hi: u64, lo: u64| {
        IpAddr::from(((0x2001_0db8_0100_0000u128 | u128::from(hi)) << 64 | u128::from(lo)).to_be_bytes())
    };
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // MXes and scanners outside the policy's space (3fff::/20, RFC 9637).
    let outside = |n: u64| IpAddr::from((0x3fff_u128 << 112 | u128::from(n)).to_be_bytes());
    for i in 0..400 {
        flows.push(flow(v6(0x1201, next()), outside(i % 40 + 1), 25, i));
    }
    for i in 0..50 {
        flows.push(flow(v6(0x1200 | (i % 50 + 2), next()), outside(1), 25, 400 + i));
    }
    for i in 0..300 {
        let scanner = outside(0x1_0000 + i % 30);
        let to = if i < 40 { v6(0x1201, next()) } else { v6(next() & 0xff_ffff, next()) };
        flows.push(flow(scanner, to, [1080, 3128][(i % 2) as usize], i));
    }
    flows
}

fn row<'a>(report: &'a serde_json::Value, subscriber: &str) -> &'a serde_json::Value {
    report["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["subscriber"] == subscriber)
        .unwrap_or_else(|| panic!("no row {subscriber}: {report:#}"))
}

#[test]
fn rotating_ipv6_sources_are_one_row_per_prefix_and_caps_are_reported() {
    let work = tempfile::tempdir().unwrap();
    let pcap = work.path().join("exports.pcap");
    exports(&hostile_flows(), &pcap);

    // Per /64: the rotating bot is one row, flagged; its /56's other /64s
    // are rows of their own; the sweep's probes into its /64 joined to it.
    let (report, stderr) = egress_flows(&pcap, &[]);
    assert_eq!(report["subscribers"].as_array().unwrap().len(), 51, "{report:#}");
    let bot = row(&report, "2001:db8:100:1201::/64");
    assert_eq!((bot["flows"].as_u64(), bot["distinct_destinations"].as_u64()), (Some(400), Some(40)));
    assert_eq!(bot["spambot"], true);
    assert_eq!(
        (report["stats"]["flows_past_row_cap"].as_u64(), report["stats"]["inbound_flows_past_cap"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(!stderr.contains("warning"), "{stderr}");

    // Per /56, the size this network delegates: one row.
    let (report, _) = egress_flows(&pcap, &["--ipv6-prefix-length", "56"]);
    assert_eq!(report["subscribers"].as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(row(&report, "2001:db8:100:1200::/56")["flows"], 450);

    // Per address, as before: a row per connection.
    let (report, _) = egress_flows(&pcap, &["--ipv6-prefix-length", "128"]);
    assert_eq!(report["subscribers"].as_array().unwrap().len(), 450);
    assert!(report["subscribers"][0]["subscriber"].as_str().unwrap().starts_with("2001:db8:100:12"));

    // Caps: 5 rows, evidence for 10 subscribers; the rest counted.
    let (report, stderr) = egress_flows(&pcap, &["--max-rows", "5", "--max-inbound", "10"]);
    let rows = report["subscribers"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let kept: u64 = rows.iter().map(|r| r["flows"].as_u64().unwrap()).sum();
    let past = report["stats"]["flows_past_row_cap"].as_u64().unwrap();
    assert_eq!((kept + past, report["stats"]["flows_matched"].as_u64()), (450, Some(450)));
    assert!(past >= 46, "{past}");
    assert!(report["stats"]["inbound_flows_past_cap"].as_u64().unwrap() > 200, "{report:#}");
    assert!(
        stderr.contains(&format!(
            "warning: {past} matched flows are counted but in no row: the --max-rows cap of 5 rows"
        )) && stderr.contains("the --max-inbound cap of 10 subscribers was reached"),
        "{stderr}"
    );
}

#[test]
fn bounds_refuse_nonsense_with_a_clear_error() {
    let work = tempfile::tempdir().unwrap();
    let pcap = work.path().join("exports.pcap");
    exports(&hostile_flows()[..1], &pcap);
    for (flag, value) in
        [("--max-rows", "0"), ("--max-inbound", "0"), ("--ipv6-prefix-length", "129"), ("--ipv6-prefix-length", "0")]
    {
        let out = Command::new(BIN)
            .args(["egress", "flows", "--policy"])
            .arg(example_policy())
            .arg("--pcap")
            .arg(&pcap)
            .args([flag, value])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(flag) && err.contains("not in"), "{flag} {value}: {err}");
    }
}
