//! Smoke fuzzing on stable, run by CI: deterministic mutants of the seeds in
//! fuzz/seeds/egress_* checked against the same properties as the
//! libFuzzer targets (fuzz/src/egress.rs, included here). The real fuzzing
//! is `cargo fuzz run egress_...` (see fuzz/README.md).

#[allow(dead_code)]
#[path = "../../../fuzz/src/egress.rs"]
mod checks;

use port25_egress::flow::encode::{self, IPFIX_V4, IPFIX_V6, V9_V4};
use port25_egress::flow::Flow;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seed_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds").join(target)
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = seed_dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

const PIECES: &[&[u8]] = &[
    b"\x00\x02",
    b"\x00\x03",
    b"\x01\x00",
    b"\xff\xff",
    b"\x00\x00\x00\x00",
    b"\x00\x0a",
    b"\x00\x09",
    b"\x00\x05",
    b"/0",
    b"::",
    b"\n[[exempt]]\n",
    b"\"",
    b"=",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = rng.next() as u8;
            }
            1 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            2 if !d.is_empty() => {
                let at = rng.below(d.len());
                d.truncate(at);
            }
            3 => {
                let p = PIECES[rng.below(PIECES.len())];
                let at = rng.below(d.len() + 1);
                d.splice(at..at, p.iter().copied());
            }
            4 if d.len() > 4 => {
                let a = rng.below(d.len());
                let b = (a + rng.below(64)).min(d.len());
                d.drain(a..b);
            }
            _ => {
                let at = rng.below(d.len() + 1);
                let b = rng.next() as u8;
                d.insert(at, b);
            }
        }
    }
    d
}

fn run(target: &str, rounds: usize, check: fn(&[u8])) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for s in seeds(target) {
        check(&s);
        for _ in 0..rounds {
            let m = mutate(&mut rng, &s);
            if let Err(e) = std::panic::catch_unwind(|| check(&m)) {
                panic!("{target}: property failed for input {m:?}: {e:?}");
            }
        }
    }
}

#[test]
fn flow_datagrams() {
    run("egress_flow_datagram", 3000, checks::flow_datagram);
}

#[test]
fn flow_streams() {
    run("egress_flow_stream", 2000, checks::flow_stream);
}

#[test]
fn pcap_files() {
    run("egress_pcap", 1000, checks::pcap_file);
}

#[test]
fn policies() {
    run("egress_policy", 1500, checks::policy_text);
}

fn flow(i: u32, v6: bool) -> Flow {
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        (format!("2001:db8:100::{i:x}").parse().unwrap(), format!("2001:db8:ffff::{i:x}").parse().unwrap())
    } else {
        (IpAddr::from([198, 51, 100, i as u8]), IpAddr::from([100, 64, 0, i as u8]))
    };
    Flow { src, dst, src_port: 40000, dst_port: 25, proto: 6, tcp_flags: 2, packets: 2, bytes: 80, start_ms: 1_764_000_000_000, end_ms: 1_764_000_001_000 }
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
    let v9 = encode::v9(1, 1_764_000_002, 3_600_000 + 2000, 1, &[encode::template_set(false, 256, V9_V4), encode::data_set(256, V9_V4, &f4, boot)]);
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
    let pcap = port25_egress::flow::pcap::write_raw_udp(&[v5, v9, ipfix], [127, 0, 0, 1].into(), [127, 0, 0, 1].into(), 2055, 1_764_000_002);
    std::fs::write(dir.join("raw-ip"), pcap).unwrap();
    let dir = seed_dir("egress_policy");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/egress.toml"), dir.join("example.toml")).unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/edge.toml"), dir.join("edge.toml")).unwrap();
}
