//! `egress flows` against real exporters and a reference collector:
//! softflowd turns a pcap this test generates into NetFlow v5, v9 and IPFIX;
//! nfcapd stores them and repeats every datagram to port25; the
//! per-subscriber port-25 counts must equal nfdump's, and the known
//! spambot must be flagged.

use crate::{must, require, BIN};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

pub(crate) const T0: u32 = 1_764_000_000;
/// The block goes live 30 minutes after T0.
pub(crate) const BLOCK_AT: u32 = T0 + 1800;

fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = b.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32).sum();
    while s > 0xffff {
        s = (s >> 16) + (s & 0xffff);
    }
    !(s as u16)
}

/// An Ethernet frame carrying one TCP segment.
fn frame(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&sport.to_be_bytes());
    tcp.extend_from_slice(&dport.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&[0x08, 0x00]);
            let mut ip = vec![0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0];
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let c = csum(&ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&[0x86, 0xdd]);
            f.extend_from_slice(&[0x60, 0, 0, 0, 0, 20, 6, 64]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        _ => unreachable!(),
    }
    f.extend_from_slice(&tcp);
    f
}

pub(crate) struct Traffic {
    pub(crate) packets: Vec<(u32, Vec<u8>)>,
}

impl Traffic {
    /// One connection attempt: a SYN and its retransmission a second later
    /// (one flow of two packets, as a blocked client produces with drop).
    pub(crate) fn attempt(&mut self, t: u32, src: &str, dst: &str, sport: u16, dport: u16) {
        let (s, d) = (src.parse().unwrap(), dst.parse().unwrap());
        self.packets.push((t, frame(s, d, sport, dport, 0x02)));
        self.packets.push((t + 1, frame(s, d, sport, dport, 0x02)));
    }

    pub(crate) fn pcap(mut self) -> Vec<u8> {
        self.packets.sort_by_key(|p| p.0);
        let mut out = Vec::new();
        for v in [0xa1b2c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for (t, f) in self.packets {
            for v in [t, 0, f.len() as u32, f.len() as u32] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&f);
        }
        out
    }
}

/// Subscribers and what they do; addresses follow dist/egress.toml.
pub(crate) fn traffic() -> Traffic {
    let mut t = Traffic { packets: Vec::new() };
    // A spambot: 40 distinct MXes within ten minutes, before and after the block.
    for i in 0..40u32 {
        let at = if i < 25 { T0 + i * 10 } else { BLOCK_AT + i * 10 };
        t.attempt(at, "198.51.100.77", &format!("100.64.{}.25", i + 1), 40000 + i as u16, 25);
    }
    // A misconfigured mail client: three tries at one server, and proper submission.
    for i in 0..3u32 {
        t.attempt(T0 + 100 + i * 300, "198.51.100.8", "100.64.200.1", 41000 + i as u16, 25);
    }
    t.attempt(T0 + 50, "198.51.100.8", "198.51.100.25", 41100, 587);
    // Dynamic space, a few MXes, all after the block.
    for i in 0..4u32 {
        t.attempt(BLOCK_AT + 60 + i, "203.0.113.9", &format!("100.64.{}.25", 100 + i), 42000 + i as u16, 25);
    }
    // An IPv6 spambot on the residential /40.
    for i in 0..15u32 {
        t.attempt(T0 + 200 + i, "2001:db8:100:1::77", &format!("2001:db8:ffff::{:x}", 0x100 + i), 43000 + i as u16, 25);
    }
    // Exempt and business hosts send on port 25 freely: never listed.
    for i in 0..20u32 {
        t.attempt(T0 + 300 + i, "198.51.100.25", &format!("100.64.{}.25", i + 1), 44000 + i as u16, 25);
        t.attempt(T0 + 300 + i, "192.0.2.10", &format!("100.64.{}.25", i + 1), 45000 + i as u16, 25);
    }
    // Web traffic from the spambot: not port 25.
    t.attempt(T0 + 5, "198.51.100.77", "100.64.1.80", 46000, 443);
    t
}

/// The subscribers the policy blocks, as nfdump filter text.
const NFDUMP_FILTER: &str = "proto tcp and dst port 25 and (src net 198.51.100.0/24 or src net 203.0.113.0/24 or src net 2001:db8:100::/40 \
     or src net 2001:db8:300::/40) and not src host 198.51.100.25 and not src host 2001:db8:100::25 and not src net 203.0.113.200/31";

/// softflowd 1.1 hangs after reading a file when given its own -p/-c
/// paths, and without them every instance uses /var/run/softflowd.ctl:
/// one at a time.
pub(crate) static SOFTFLOWD: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// (flows, packets, distinct destinations) per subscriber, from nfdump.
/// nfdump's per-subscriber counts: its own aggregation by source, IPv6
/// sources by their /64 (`srcip6/64`) as port25's rows are. (nfdump 1.7.1
/// prints 0.0.0.0 for `srcip4/32`, so each family has its own query.)
pub(crate) fn nfdump_counts(dir: &std::path::Path) -> BTreeMap<String, (u64, u64, u64)> {
    let d = dir.to_str().unwrap();
    let mut out = BTreeMap::new();
    for (family, by_source, suffix) in [("ipv4", "srcip", ""), ("ipv6", "srcip6/64", "/64")] {
        let filter = format!("{family} and ({NFDUMP_FILTER})");
        // nfdump prints a masked IPv6 source as its first address.
        let row = |sa: &str| format!("{sa}{suffix}");
        // Lines that begin with an address (a family without flows gets
        // "No matching flows").
        let is_row = |l: &&str| l.split_whitespace().next().is_some_and(|a| a.parse::<std::net::IpAddr>().is_ok());
        let agg = must("nfdump", &["-6", "-R", d, "-q", "-A", by_source, "-o", "fmt:%sa %fl %pkt", &filter]);
        for l in agg.lines().filter(is_row) {
            let v: Vec<&str> = l.split_whitespace().collect();
            out.insert(row(v[0]), (v[1].parse().unwrap(), v[2].parse().unwrap(), 0));
        }
        let by_pair = format!("{by_source},dstip");
        let pairs = must("nfdump", &["-6", "-R", d, "-q", "-A", &by_pair, "-o", "fmt:%sa %da", &filter]);
        for l in pairs.lines().filter(is_row) {
            let src = row(l.split_whitespace().next().unwrap());
            out.get_mut(&src).unwrap_or_else(|| panic!("{src} in pairs, not in totals")).2 += 1;
        }
    }
    out
}

pub(crate) fn port25_counts(report: &serde_json::Value) -> BTreeMap<String, (u64, u64, u64)> {
    report["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["subscriber"].as_str().unwrap().to_owned(),
                (
                    r["flows"].as_u64().unwrap(),
                    r["packets"].as_u64().unwrap(),
                    r["distinct_destinations"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

pub(crate) fn spambots(report: &serde_json::Value) -> Vec<String> {
    report["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["spambot"] == true)
        .map(|r| r["subscriber"].as_str().unwrap().to_owned())
        .collect()
}

/// softflowd -> nfcapd (stores, repeats) -> port25 egress flows --listen.
fn export(
    version: &str,
    pcap: &std::path::Path,
    work: &std::path::Path,
) -> (serde_json::Value, BTreeMap<String, (u64, u64, u64)>) {
    let nf_dir = work.join(format!("nfcapd-v{version}"));
    std::fs::create_dir_all(&nf_dir).unwrap();
    let (p_nf, p_p25) = (free_udp_port(), free_udp_port());
    let mut port25 = Command::new(BIN)
        .args(["egress", "flows", "--policy"])
        .arg(crate::example_policy())
        .args([
            "--listen",
            &format!("127.0.0.1:{p_p25}"),
            "--exporter",
            "127.0.0.1",
            "--idle",
            "2",
            "--format",
            "json",
            "--block-at",
            &BLOCK_AT.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(port25.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening for NetFlow/IPFIX"), "{line}");
    let mut nfcapd = Command::new("nfcapd")
        .args(["-p", &p_nf.to_string(), "-b", "127.0.0.1", "-w"])
        .arg(&nf_dir)
        .args(["-t", "3600", "-R", &format!("127.0.0.1/{p_p25}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let guard = SOFTFLOWD.lock().unwrap_or_else(|e| e.into_inner());
    let sf = Command::new("softflowd")
        .args(["-a", "-6", "-d", "-r"])
        .arg(pcap)
        .args(["-n", &format!("127.0.0.1:{p_nf}"), "-v", version])
        .output()
        .unwrap();
    drop(guard);
    assert!(sf.status.success(), "softflowd: {}", String::from_utf8_lossy(&sf.stderr));
    let out = port25.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(out.status.success(), "{rest}");
    // nfcapd writes its file on SIGTERM.
    must("kill", &["-TERM", &nfcapd.id().to_string()]);
    nfcapd.wait().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stats"]["malformed"], 0, "{rest}");
    (report, nfdump_counts(&nf_dir))
}

pub(crate) fn expected(with_v6: bool) -> BTreeMap<String, (u64, u64, u64)> {
    let mut m = BTreeMap::new();
    m.insert("198.51.100.77".to_owned(), (40, 80, 40));
    m.insert("198.51.100.8".to_owned(), (3, 6, 1));
    m.insert("203.0.113.9".to_owned(), (4, 8, 4));
    if with_v6 {
        m.insert("2001:db8:100:1::/64".to_owned(), (15, 30, 15));
    }
    m
}

fn check_version(version: &str, with_v6: bool) {
    for tool in ["softflowd", "nfcapd", "nfdump"] {
        require(tool);
    }
    let work = tempfile::tempdir().unwrap();
    let pcap = work.path().join("traffic.pcap");
    std::fs::write(&pcap, traffic().pcap()).unwrap();
    let (report, nfdump) = export(version, &pcap, work.path());
    let ours = port25_counts(&report);
    assert_eq!(ours, nfdump, "port25 and nfdump disagree (NetFlow version {version})");
    assert_eq!(ours, expected(with_v6), "NetFlow version {version}");
    let mut bots = spambots(&report);
    bots.sort();
    let mut want = vec!["198.51.100.77".to_owned()];
    if with_v6 {
        want.push("2001:db8:100:1::/64".to_owned());
    }
    assert_eq!(bots, want);
    let bot = &report["subscribers"][0];
    assert_eq!(bot["subscriber"], "198.51.100.77");
    assert_eq!((bot["flows_before_block"].as_u64(), bot["flows_after_block"].as_u64()), (Some(25), Some(15)));
    assert_eq!(bot["first_seen"], "2025-11-24T16:00:00Z");
}

#[test]
fn netflow_v5_counts_agree_with_nfdump() {
    // v5 carries IPv4 only: the IPv6 spambot is not exported.
    check_version("5", false);
}

#[test]
fn netflow_v9_counts_agree_with_nfdump() {
    check_version("9", true);
}

#[test]
fn ipfix_counts_agree_with_nfdump() {
    check_version("10", true);
}

/// `port25 egress flows` with the example policy over one pcap file.
fn flows_of_pcap(pcap: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["egress", "flows", "--policy"])
        .arg(crate::example_policy())
        .arg("--pcap")
        .arg(pcap)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn exports_captured_to_pcap_read_back_the_same() {
    // softflowd's IPFIX datagrams captured by tcpdump on a namespace's
    // loopback, then read from the file: same report as live.
    for tool in ["softflowd", "tcpdump"] {
        require(tool);
    }
    let work = tempfile::tempdir().unwrap();
    let pcap = work.path().join("traffic.pcap");
    std::fs::write(&pcap, traffic().pcap()).unwrap();
    let ns = format!("p25e{}cap", std::process::id() % 100000);
    let _ = Command::new("ip").args(["netns", "del", &ns]).stderr(Stdio::null()).status();
    must("ip", &["netns", "add", &ns]);
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _del = Del(ns.clone());
    must("ip", &["-n", &ns, "link", "set", "lo", "up"]);
    let exports = work.path().join("exports.pcap");
    let mut tcpdump = Command::new("ip")
        .args(["netns", "exec", &ns, "tcpdump", "-Z", "root", "-i", "lo", "-U", "-w"])
        .arg(&exports)
        .args(["udp", "port", "4739"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(tcpdump.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening on lo"), "{line}");
    // tcpdump says "listening" a moment before its filter is attached.
    std::thread::sleep(Duration::from_millis(700));
    {
        let _guard = SOFTFLOWD.lock().unwrap_or_else(|e| e.into_inner());
        must(
            "ip",
            &[
                "netns",
                "exec",
                &ns,
                "softflowd",
                "-a",
                "-6",
                "-d",
                "-r",
                pcap.to_str().unwrap(),
                "-n",
                "127.0.0.1:4739",
                "-v",
                "10",
            ],
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    must("kill", &["-INT", &tcpdump.id().to_string()]);
    tcpdump.wait().unwrap();
    let json_args = ["--format", "json", "--block-at", &BLOCK_AT.to_string()];
    let out = flows_of_pcap(&exports, &json_args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(port25_counts(&report), expected(true), "{}", String::from_utf8_lossy(&out.stderr));
    // A record longer than any datagram (300 KiB, in the capture's byte
    // order) before the exports: skipped unread and said, the rest read.
    let data = std::fs::read(&exports).unwrap();
    let big = 300u32 * 1024;
    let len = if matches!(data[0], 0xd4 | 0x4d) { big.to_le_bytes() } else { big.to_be_bytes() };
    let mut spliced = data[..24].to_vec();
    spliced.extend_from_slice(&[0; 8]);
    spliced.extend_from_slice(&len);
    spliced.extend_from_slice(&len);
    spliced.resize(spliced.len() + big as usize, 0x45);
    spliced.extend_from_slice(&data[24..]);
    let spliced_path = work.path().join("spliced.pcap");
    std::fs::write(&spliced_path, spliced).unwrap();
    let out = flows_of_pcap(&spliced_path, &json_args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("spliced.pcap: 1 packets longer than 256 KiB skipped (not flow exports)"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(port25_counts(&report), expected(true), "{stderr}");
    // CSV and table carry the same rows.
    let csv = flows_of_pcap(&exports, &["--format", "csv"]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.starts_with("subscriber,network,class,flows,packets,bytes,distinct_destinations,peak_destinations_in_window,first_seen,last_seen,spambot\n198.51.100.77,residential-broadband,residential,40,80,"), "{csv}");
    assert_eq!(csv.lines().count(), 5);
    let table = flows_of_pcap(&exports, &[]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.lines().nth(1).unwrap().starts_with("198.51.100.77 "), "{table}");
}
