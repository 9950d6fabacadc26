//! The attribution join's benchmark (bench/attribution.sh runs it):
//!   attribution_bench kea N OUT.csv        a Kea lease4 file: N leases on N
//!                                          addresses in 10.0.0.0/8 (a tenth
//!                                          renewed, a tenth handed over to
//!                                          another client), around T0
//!   attribution_bench radius N OUT         a detail file: N sessions
//!                                          (Start, Stop) on N/2 addresses
//!   attribution_bench join KIND:PATH FLOWS ROUNDS
//!                                          loads the source (time, sessions,
//!                                          RSS), then looks up FLOWS (address,
//!                                          time) pairs ROUNDS times: flows/s
//! Deterministic (fixed seeds) so runs compare.

use port25_egress::attribution::load::{load, Spec};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

/// The egress_bench_gen flows' time (Unix seconds).
const T0: u64 = 1_764_000_000;

// The smoke tests' xorshift generator (std only, made to be included):
// fixed seeds, so runs compare.
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;
use smoke::Rng;

/// The i-th address: 10.0.0.0 upwards, so egress_bench_gen's subscribers
/// (10.0.0-7.x) are among the first.
fn addr(i: u64) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + i as u32)
}

fn kea(n: u64) -> String {
    let mut s = String::from(
        "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n",
    );
    let mut r = Rng(11);
    for i in 0..n {
        let v = r.next();
        let cltt = T0 - 1800 - (v % 600);
        let mac = |k: u64| {
            format!(
                "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                (k >> 32) as u8,
                (k >> 24) as u8,
                (k >> 16) as u8,
                (k >> 8) as u8,
                k as u8
            )
        };
        let _ = writeln!(s, "{},{},,86400,{},1,0,0,,0,", addr(i), mac(i), cltt + 86400);
        match v % 10 {
            // Renewed by the same client.
            0 => {
                let _ = writeln!(s, "{},{},,86400,{},1,0,0,,0,", addr(i), mac(i), cltt + 43200 + 86400);
            }
            // Handed over: released, then leased to another client.
            1 => {
                let _ = writeln!(s, "{},{},,0,{},1,0,0,,0,", addr(i), mac(i), cltt + 3600);
                let _ = writeln!(s, "{},{},,86400,{},1,0,0,,0,", addr(i), mac(i + (1 << 32)), cltt + 7200 + 86400);
            }
            _ => {}
        }
    }
    s
}

fn radius(n: u64) -> String {
    let mut s = String::new();
    let mut r = Rng(13);
    for i in 0..n {
        let v = r.next();
        let a = addr(i / 2);
        let start = T0 - 3600 + (i % 2) * 43200 + v % 600;
        for (status, t) in [("Start", start), ("Stop", start + 40000)] {
            let _ = write!(
                s,
                "Mon Nov 24 16:00:00 2025\n\tAcct-Status-Type = {status}\n\tUser-Name = \"user{i}\"\n\tAcct-Session-Id = \"{i:x}\"\n\tFramed-IP-Address = {a}\n\tNAS-IP-Address = 192.0.2.1\n\tAcct-Delay-Time = 0\n\tTimestamp = {t}\n\n"
            );
        }
    }
    s
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|k| k.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// This thread's CPU time (user + system), seconds, at the kernel's tick.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // utime and stime are fields 14 and 15 of stat, 11 and 12 after ")"
    // (the state letter is not a number, so 10 and 11 here).
    (f.get(10).unwrap_or(&0.0) + f.get(11).unwrap_or(&0.0)) / 100.0
}

fn join(spec: &str, flows: usize, rounds: usize) {
    let spec: Spec = spec.parse().unwrap();
    let t = Instant::now();
    let l = load(&[spec]).unwrap();
    let load_s = t.elapsed().as_secs_f64();
    let n = l.index.len() as u64;
    println!(
        "load {load_s:.3} s: {n} sessions over {} prefixes, {} warnings, peak RSS {:.1} MB, index {:.1} MB",
        l.index.prefixes(),
        l.warnings.total(),
        rss_mb(),
        l.index.bytes() as f64 / 1e6
    );
    // Nine in ten flows from a leased address, one from outside; times
    // within the day around T0.
    let mut r = Rng(17);
    let probes: Vec<(IpAddr, u64)> = (0..flows)
        .map(|_| {
            let v = r.next();
            let ip = if v.is_multiple_of(10) {
                IpAddr::from([192, 168, (v >> 8) as u8, (v >> 16) as u8])
            } else {
                IpAddr::V4(addr((v >> 24) % n.max(1)))
            };
            (ip, (T0 - 1200) * 1000 + (v >> 40) % 80_000_000)
        })
        .collect();
    let mut rates = Vec::new();
    let mut cpu_rates = Vec::new();
    let mut hits = 0;
    for _ in 0..rounds {
        let (t, c) = (Instant::now(), cpu_s());
        hits = 0usize;
        for &(ip, t) in &probes {
            hits += l.index.lookup(ip, t).is_some() as usize;
        }
        rates.push(flows as f64 / t.elapsed().as_secs_f64() / 1e6);
        cpu_rates.push(flows as f64 / (cpu_s() - c).max(0.01) / 1e6);
    }
    rates.sort_by(f64::total_cmp);
    cpu_rates.sort_by(f64::total_cmp);
    println!("rounds {}", rates.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" "));
    println!("attributed {hits} of {flows}");
    println!("median {:.2} M flows/s", rates[rates.len() / 2]);
    // On a shared machine the wall clock counts others' time slices too.
    println!("median {:.2} M flows per CPU second (this thread's user+system time)", cpu_rates[cpu_rates.len() / 2]);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args[1].as_str() {
        "kea" => std::fs::write(&args[3], kea(args[2].parse().unwrap())).unwrap(),
        "radius" => std::fs::write(&args[3], radius(args[2].parse().unwrap())).unwrap(),
        "join" => join(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap()),
        _ => panic!("attribution_bench kea|radius N OUT, or join KIND:PATH FLOWS ROUNDS"),
    }
}
