//! Where `report build`'s time goes over a capture, step by step, on one
//! thread (perf is not on every machine): reading the segments, framing
//! lines, the fast event scanner, serde's deserializer, and counting
//! (the accumulator). For bench/README.md's report section. Each step is
//! timed by the wall clock and by the thread's CPU time (the steadier
//! figure on a shared machine).
//!
//!   cargo run --release -p port25-report --example scan_profile -- CAPTURE_DIR [SEGMENTS]

use std::time::Instant;

/// This thread's CPU time in seconds (Linux `/proc/thread-self/schedstat`):
/// on a shared machine the wall clock measures the neighbours, this does not.
fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("/proc/thread-self/schedstat (Linux)");
    s.split_whitespace().next().and_then(|n| n.parse::<f64>().ok()).expect("schedstat's first field") / 1e9
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: scan_profile CAPTURE_DIR"));
    let mut segs = port25_report::scan::segments(&dir).unwrap();
    // At most this many segments (they are read into memory first).
    segs.truncate(std::env::args().nth(2).map_or(usize::MAX, |n| n.parse().expect("a segment count")));
    let files: Vec<Vec<u8>> = segs.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let bytes: usize = files.iter().map(|f| f.len()).sum();
    let mb = bytes as f64 / 1e6;
    let step = |name: &str, f: &mut dyn FnMut(&[u8]) -> u64| {
        let (t, c) = (Instant::now(), cpu());
        let n: u64 = files.iter().map(|b| f(b)).sum();
        let (s, c) = (t.elapsed().as_secs_f64(), cpu() - c);
        println!("{name:28} {s:7.3} s  {c:7.3} s CPU  {:8.1} MB/s of CPU  ({n} lines)", mb / c);
    };
    step("frame lines (byte loop)", &mut |b| b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count() as u64);
    // What the reader does since: memchr's SIMD search for the line ends.
    step("frame lines (memchr)", &mut |b| memchr::memchr_iter(b'\n', b).count() as u64);
    step("fast scanner", &mut |b| {
        b.split(|&c| c == b'\n').filter(|l| port25_capture::fastview::parse(l).is_some()).count() as u64
    });
    step("serde", &mut |b| {
        b.split(|&c| c == b'\n')
            .filter(|l| serde_json::from_slice::<port25_capture::view::EventView>(l).is_ok())
            .count() as u64
    });
    let mut acc = port25_report::stats::Accumulator::new(Default::default());
    step("fast scanner + accumulator", &mut |b| {
        let mut n = 0;
        port25_capture::reader::parse_views(b, 0, |_, e| {
            acc.add(&e);
            n += 1;
        });
        n
    });
    println!("{} sources, {} domains, {} campaigns", acc.sources.len(), acc.domains.len(), acc.campaigns.len());
}
