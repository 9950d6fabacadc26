//! Memory of the flow analysis as flows grow (bench/egress-memory.sh runs it):
//!   egress_memory_bench FLOWS SUBSCRIBERS
//! feeds FLOWS generated port-25 flows from SUBSCRIBERS addresses in one
//! residential /16 (each to destinations drawn from 100 000 MX addresses,
//! start times advancing with jitter, one in 50 an inbound connection on a
//! proxy port) to the analyzer, builds the rows, and prints the rows, the
//! time and the process's peak RSS (VmHWM). Deterministic (fixed seed).
//! Memory should follow SUBSCRIBERS, not FLOWS.

use port25_egress::flow::Flow;
use port25_egress::report::{Analyzer, Options};
use std::net::{IpAddr, Ipv4Addr};

#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;
use smoke::Rng;

fn peak_rss_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flows: u64 = args.get(1).and_then(|a| a.parse().ok()).expect("usage: egress_memory_bench FLOWS SUBSCRIBERS");
    let subs: u32 = args.get(2).and_then(|a| a.parse().ok()).expect("usage: egress_memory_bench FLOWS SUBSCRIBERS");
    let policy = port25_egress::policy::parse(
        "[[network]]\nname = \"residential\"\nclass = \"residential\"\nprefixes = [\"10.0.0.0/16\"]\n",
        std::path::Path::new("bench.toml"),
    )
    .expect("policy");
    let table = port25_egress::table::Table::new(&policy);
    let mut a = Analyzer::new(&policy, &table, Options::default());
    let mut r = Rng(11);
    let started = std::time::Instant::now();
    let mut t: u64 = 1_764_000_000_000;
    for _ in 0..flows {
        let v = r.next();
        let sub = (v as u32 % subs) as u16;
        let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | u32::from(sub)));
        let mx = IpAddr::V4(Ipv4Addr::from(0xc000_0000 | ((v >> 20) as u32 % 100_000)));
        t += (v >> 40) % 3;
        // Start times out of order by up to two seconds, as exporters send them.
        let start = t.saturating_sub((v >> 50) % 2000);
        let inbound = (v >> 8).is_multiple_of(50);
        let f = if inbound {
            Flow {
                src: mx,
                dst: src,
                src_port: 40_000,
                dst_port: 1080,
                proto: 6,
                tcp_flags: 2,
                packets: 3,
                bytes: 180,
                start_ms: start,
                end_ms: start + 10,
            }
        } else {
            Flow {
                src,
                dst: mx,
                src_port: 40_000,
                dst_port: 25,
                proto: 6,
                tcp_flags: 2,
                packets: 2,
                bytes: 120,
                start_ms: start,
                end_ms: start + 10,
            }
        };
        a.add(&f);
    }
    let rows = a.rows();
    let spambots = rows.iter().filter(|r| r.spambot).count();
    println!(
        "flows {flows} subscribers {subs}: {} rows ({spambots} spambots, {} matched) in {:.2} s, peak RSS {} MB",
        rows.len(),
        a.flows_matched,
        started.elapsed().as_secs_f64(),
        peak_rss_kb() / 1024
    );
}
