//! Generates the benchmark's inputs (bench/egress.sh runs it):
//!   egress_bench_gen policy N OUT.toml     a policy of N prefixes (national provider)
//!   egress_bench_gen addrs N OUT            N random IPv4 addresses, one per line
//!   egress_bench_gen flows N OUT.pcap       N NetFlow v5 records in a pcap
//! Deterministic (fixed seed) so runs compare.

use port25_egress::flow::{encode, pcap, Flow};
use std::fmt::Write;
use std::net::IpAddr;

// The smoke tests' xorshift generator (std only, made to be included):
// fixed seeds, so runs compare.
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;
use smoke::Rng;

/// N prefixes: /24s in 10.0.0.0/8 and 100.64.0.0/10 for residential and
/// mobile, /28 and /32 exemptions inside, /48s of IPv6.
fn policy(n: usize) -> String {
    let mut r = Rng(42);
    let mut s = String::from("[policy]\nname = \"national\"\n");
    let classes = ["residential", "dynamic", "mobile", "business"];
    let per = n / 4;
    let mut written = 0;
    for (k, class) in classes.iter().enumerate() {
        let _ = write!(s, "[[network]]\nname = \"{class}\"\nclass = \"{class}\"\nprefixes = [\n");
        for i in 0..per * 9 / 10 {
            let v = r.next();
            if i % 5 == 4 {
                let _ =
                    writeln!(s, "\"2001:db8:{:x}:{:x}::/64\",", k * 0x1000 + (v as usize & 0xfff), (v >> 16) & 0xffff);
            } else {
                let a = ((k as u64 * 64) + (v & 63)) as u8;
                let _ = writeln!(s, "\"{}.{}.{}.0/24\",", if k == 3 { 172 } else { 10 + k as u8 }, a, (v >> 8) as u8);
            }
            written += 1;
        }
        s.push_str("]\n");
    }
    s.push_str("[[exempt]]\nname = \"mtas\"\nprefixes = [\n");
    while written < n {
        let v = r.next();
        let _ = writeln!(s, "\"10.{}.{}.{}/32\",", v as u8 & 63, (v >> 8) as u8, (v >> 16) as u8);
        written += 1;
    }
    s.push_str("]\n");
    s
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (what, n, out) = (args[1].as_str(), args[2].parse::<usize>().unwrap(), &args[3]);
    let mut r = Rng(7);
    match what {
        "policy" => std::fs::write(out, policy(n)).unwrap(),
        "addrs" => {
            let mut s = String::with_capacity(n * 14);
            for _ in 0..n {
                let v = r.next() as u32;
                // Half inside the policy's 10.0.0.0/8 space.
                let v = if v & 1 == 0 { 0x0a00_0000 | (v >> 8) } else { v };
                let _ = writeln!(s, "{}", std::net::Ipv4Addr::from(v));
            }
            std::fs::write(out, s).unwrap();
        }
        "flows" => {
            let t0 = 1_764_000_000u64;
            let mut datagrams = Vec::with_capacity(n / 30 + 1);
            let mut batch = Vec::with_capacity(30);
            for i in 0..n {
                let v = r.next();
                // 2,000 subscribers in 10.0.0.0/16; a fifth of flows to port 25.
                let src = IpAddr::from([10, 0, (v % 8) as u8, (v >> 8) as u8 % 250]);
                let dst = IpAddr::from([100, 64 + ((v >> 16) as u8 & 63), (v >> 24) as u8, (v >> 32) as u8]);
                let dport = if (v >> 40).is_multiple_of(5) { 25 } else { [443, 80, 587, 53][(v >> 44) as usize % 4] };
                let start = (t0 * 1000) + i as u64;
                batch.push(Flow {
                    src,
                    dst,
                    src_port: 40000 + (v >> 48) as u16 % 20000,
                    dst_port: dport,
                    proto: 6,
                    tcp_flags: 2,
                    packets: 1 + (v >> 56) % 4,
                    bytes: 60,
                    start_ms: start,
                    end_ms: start + 500,
                });
                if batch.len() == 30 || i == n - 1 {
                    let export = (start / 1000 + 1) as u32;
                    datagrams.push(encode::v5(&batch, export, 86_400_000));
                    batch.clear();
                }
            }
            std::fs::write(
                out,
                pcap::write_raw_udp(&datagrams, [192, 0, 2, 1].into(), [192, 0, 2, 2].into(), 2055, t0 as u32),
            )
            .unwrap();
        }
        _ => panic!("policy | addrs | flows"),
    }
}
