//! `egress flows --listen` hears only the exporters it is told to: UDP is
//! sent from a second loopback address (127.0.0.2) outside `--exporter` and
//! from 127.0.0.1 inside it; only the second counts.

use crate::BIN;
use port25_egress::flow::encode::{self, IPFIX_V4};
use port25_egress::flow::Flow;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, UdpSocket};
use std::process::{Command, Stdio};

fn attempt(src: [u8; 4], i: u8) -> Flow {
    Flow {
        src: IpAddr::from(src),
        dst: IpAddr::from([192, 0, 2, i]),
        src_port: 40000,
        dst_port: 25,
        proto: 6,
        tcp_flags: 2,
        packets: 2,
        bytes: 120,
        start_ms: 1_764_000_000_000,
        end_ms: 1_764_000_001_000,
    }
}

#[test]
fn listen_drops_and_counts_datagrams_from_sources_outside_the_exporter_list() {
    let mut p = Command::new(BIN)
        .args(["egress", "flows", "--policy"])
        .arg(crate::example_policy())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--exporter",
            "127.0.0.1/32",
            "--idle",
            "1",
            "--duration",
            "20",
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(p.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(
        line.contains("listening for NetFlow/IPFIX on udp 127.0.0.1:") && line.contains("from 127.0.0.1/32"),
        "{line}"
    );
    let port = line.split("udp 127.0.0.1:").nth(1).unwrap().split_whitespace().next().unwrap();
    let to = format!("127.0.0.1:{port}");
    let export = |flows: &[Flow]| {
        encode::ipfix(
            1,
            1_764_000_002,
            1,
            &[encode::template_set(true, 256, IPFIX_V4), encode::data_set(256, IPFIX_V4, flows, 0)],
        )
    };
    // A stranger's datagram: a spambot that is not there, and a template.
    let stranger = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2 (the loopback /8)");
    let fake: Vec<Flow> = (1..=20).map(|i| attempt([203, 0, 113, 9], i)).collect();
    stranger.send_to(&export(&fake), &to).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let router = UdpSocket::bind("127.0.0.1:0").unwrap();
    router.send_to(&export(&[attempt([198, 51, 100, 8], 1)]), &to).unwrap();
    let out = p.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(out.status.success(), "{rest}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let subs: Vec<&str> =
        report["subscribers"].as_array().unwrap().iter().map(|r| r["subscriber"].as_str().unwrap()).collect();
    assert_eq!(subs, ["198.51.100.8"], "{report}");
    assert_eq!(
        (report["stats"]["datagrams"].as_u64(), report["stats"]["datagrams_refused"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert!(rest.contains("refused 1 datagrams from sources outside --exporter: 127.0.0.2"), "{rest}");
}

#[test]
fn listen_without_an_exporter_list_refuses_to_start_and_help_says_so() {
    let out = Command::new(BIN)
        .args(["egress", "flows", "--policy"])
        .arg(crate::example_policy())
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--listen needs at least one --exporter CIDR"), "{err}");
    let help = Command::new(BIN).args(["egress", "flows", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--exporter <CIDR>") && help.contains("refuses to start without one"), "{help}");
    let bad = Command::new(BIN)
        .args(["egress", "flows", "--policy"])
        .arg(crate::example_policy())
        .args(["--listen", "127.0.0.1:0", "--exporter", "10.0.0.1/8"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("host bits set"), "{}", String::from_utf8_lossy(&bad.stderr));
}
