//! Longest-prefix classification speed on one core (bench/egress.sh runs it):
//!   egress_lpm_bench POLICY.toml ADDRS     (ADDRS: one IPv4 address per line)
//! Prints build time, then lookups/s for five passes and their median.

use port25_egress::policy;
use port25_egress::table::Table;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let t = Instant::now();
    let p = policy::load(std::path::Path::new(&args[1])).unwrap_or_else(|e| panic!("{e}"));
    let parse = t.elapsed();
    let t = Instant::now();
    let table = Table::new(&p);
    let build = t.elapsed();
    let addrs: Vec<u32> = std::fs::read_to_string(&args[2])
        .unwrap()
        .lines()
        .map(|l| u32::from(l.parse::<std::net::Ipv4Addr>().unwrap()))
        .collect();
    println!("parse {:.3}s, table {:.3}s, {} addresses", parse.as_secs_f64(), build.as_secs_f64(), addrs.len());
    let mut rates = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut blocked = 0u64;
        for &a in &addrs {
            blocked += table.is_blocked(table.lookup_v4(a)) as u64;
        }
        let secs = t.elapsed().as_secs_f64();
        std::hint::black_box(blocked);
        rates.push(addrs.len() as f64 / secs);
        println!("pass: {:.1} M lookups/s ({blocked} blocked)", addrs.len() as f64 / secs / 1e6);
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("median: {:.1} M lookups/s", rates[2] / 1e6);
}
