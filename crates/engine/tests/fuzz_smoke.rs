//! Smoke fuzzing on stable, run by CI: a few thousand deterministic inputs
//! per parser (the seed corpora in fuzz/seeds/, mutated by a tiny xorshift
//! generator) checked against the same properties as the libFuzzer targets,
//! which live in fuzz/src/engine.rs and are included here. The real fuzzing
//! is `cargo fuzz run` (see fuzz/README.md); this only keeps the properties
//! honest on every commit.

#[allow(dead_code)]
#[path = "../../../fuzz/src/engine.rs"]
mod checks;

use port25_engine::data::{DataReader, Outcome};
use std::panic::{catch_unwind, AssertUnwindSafe};

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

const SPECIAL: &[u8] = b"\r\n.\0 <>@\":\\[],\t\x7f\xff";
const PIECES: &[&[u8]] =
    &[b"\r\n", b".\r\n", b"\r\n.\r\n", b"\n.\n", b"\r.\r", b"..", b"@", b"<>", b"\"", b"[IPv6:", b"PROXY ", b"TCP4 ", b"\r\n\r\n\0\r\nQUIT\n", b"\xc3\xa3"];

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// One to four random edits: bit flips, byte changes, insertions of CR, LF,
/// '.', NUL and other framing bytes, deletions, truncations, splices.
fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(9) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            2 => b.insert(at, SPECIAL[rng.below(SPECIAL.len())]),
            3 => {
                let p = PIECES[rng.below(PIECES.len())];
                b.splice(at..at, p.iter().copied());
            }
            4 if !b.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(b.len());
                b.drain(at.min(end)..end);
            }
            5 => b.truncate(at),
            6 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(64)).min(other.len());
                b.splice(at..at, other[from..to].iter().copied());
            }
            7 if at < b.len() => {
                let end = (at + 1 + rng.below(32)).min(b.len());
                let copy = b[at..end].to_vec();
                b.splice(at..at, copy);
            }
            _ => b.push(rng.next() as u8),
        }
    }
    b
}

/// Runs `check` on every seed, then on `n` mutants and a few random inputs;
/// a failure names the input so it can be added to the seeds.
fn smoke(target: &str, n: usize, seed: u64, check: impl Fn(&[u8])) {
    let corpus = seeds(target);
    let mut rng = Rng(seed);
    let run = |input: &[u8]| {
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| check(input))) {
            let why = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            panic!("{target}: property violated on input {:?}\n{why}", String::from_utf8_lossy(input));
        }
    };
    for s in &corpus {
        run(s);
    }
    let mut pool = corpus.clone();
    for i in 0..n {
        let input = if i % 10 == 9 {
            (0..rng.below(64)).map(|_| rng.next() as u8).collect()
        } else {
            let base = &pool[rng.below(pool.len())];
            mutate(&mut rng, base, &corpus)
        };
        run(&input);
        // Keep some mutants so edits accumulate, as a fuzzer's corpus does.
        if i % 7 == 0 && input.len() < 4096 {
            pool.push(input);
        }
    }
}

#[test]
fn smtp_command() {
    smoke("smtp_command", 4000, 0x5eed_0001, checks::smtp_command);
}

#[test]
fn smtp_address() {
    smoke("smtp_address", 4000, 0x5eed_0002, checks::smtp_address);
}

#[test]
fn smtp_data() {
    smoke("smtp_data", 3000, 0x5eed_0003, checks::smtp_data);
}

#[test]
fn smtp_lines() {
    smoke("smtp_lines", 3000, 0x5eed_0004, checks::smtp_lines);
}

#[test]
fn proxy_header() {
    smoke("proxy_header", 3000, 0x5eed_0005, checks::proxy_header);
}

#[test]
fn data_round_trip_of_random_messages() {
    let mut rng = Rng(0x5eed_0006);
    for _ in 0..2000 {
        let body: Vec<u8> = (0..rng.below(200)).map(|_| if rng.below(4) == 0 { SPECIAL[rng.below(4)] } else { rng.next() as u8 }).collect();
        let trailer: Vec<u8> = (0..rng.below(20)).map(|_| rng.next() as u8).collect();
        let cuts = checks::split_points(rng.next(), body.len() + trailer.len());
        checks::data_round_trip(&body, &trailer, &cuts);
    }
}

#[test]
fn data_under_tight_limits() {
    let corpus = seeds("smtp_data");
    let mut rng = Rng(0x5eed_0007);
    for _ in 0..1500 {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, &base[4.min(base.len())..], &corpus);
        let max_line = rng.below(12);
        let max_size = rng.below(40);
        let cuts = checks::split_points(rng.next(), input.len());
        checks::data(&input, max_line, max_size, &cuts);
    }
}

/// Why the re-stuffing property holds only for canonically stuffed input:
/// RFC 5321 §4.5.2 deletes the first '.' of any line that has more after
/// it, so ".x" and "..x" both arrive as ".x"/"x" and ".x" cannot be rebuilt.
#[test]
fn a_lone_leading_dot_is_removed() {
    let mut r = DataReader::new(998, 1 << 20);
    let mut out = Vec::new();
    assert_eq!(r.feed(b".x\r\n..y\r\n.\r\n", &mut out), (12, Outcome::End));
    assert_eq!(out, b"x\r\n.y\r\n");
}
