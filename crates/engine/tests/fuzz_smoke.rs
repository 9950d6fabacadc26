//! Smoke fuzzing on stable, run by CI: tens of thousands of deterministic
//! inputs per parser (the seed corpora in fuzz/seeds/, mutated by the shared
//! mutator, fuzz/src/smoke.rs, aimed with SMTP framing bytes and pieces)
//! checked against the same properties as the libFuzzer targets,
//! which live in fuzz/src/engine.rs and are included here. The real fuzzing
//! is `cargo fuzz run` (see fuzz/README.md); this only keeps the properties
//! honest on every commit.

#[allow(dead_code)]
#[path = "../../../fuzz/src/engine.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

use port25_engine::data::{DataReader, Outcome};
use smoke::{seeds, Mutator, Rng};

const SPECIAL: &[u8] = b"\r\n.\0 <>@\":\\[],\t\x7f\xff";
const PIECES: &[&[u8]] = &[
    b"\r\n",
    b".\r\n",
    b"\r\n.\r\n",
    b"\n.\n",
    b"\r.\r",
    b"..",
    b"@",
    b"<>",
    b"\"",
    b"[IPv6:",
    b"PROXY ",
    b"TCP4 ",
    b"\r\n\r\n\0\r\nQUIT\n",
    b"\xc3\xa3",
];
const MUTATOR: Mutator = Mutator { special: SPECIAL, pieces: PIECES };

#[test]
fn smtp_command() {
    smoke::smoke_with("smtp_command", 40_000, 0x5eed_0001, &MUTATOR, checks::smtp_command);
}

#[test]
fn smtp_address() {
    smoke::smoke_with("smtp_address", 40_000, 0x5eed_0002, &MUTATOR, checks::smtp_address);
}

#[test]
fn smtp_data() {
    smoke::smoke_with("smtp_data", 30_000, 0x5eed_0003, &MUTATOR, checks::smtp_data);
}

#[test]
fn smtp_lines() {
    smoke::smoke_with("smtp_lines", 30_000, 0x5eed_0004, &MUTATOR, checks::smtp_lines);
}

#[test]
fn proxy_header() {
    smoke::smoke_with("proxy_header", 30_000, 0x5eed_0005, &MUTATOR, checks::proxy_header);
}

#[test]
fn data_round_trip_of_random_messages() {
    let mut rng = Rng(0x5eed_0006);
    for _ in 0..2000 {
        let body: Vec<u8> = (0..rng.below(200))
            .map(|_| if rng.below(4) == 0 { SPECIAL[rng.below(4)] } else { rng.next() as u8 })
            .collect();
        let trailer_len = rng.below(20);
        let trailer = rng.bytes(trailer_len);
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
        let input = MUTATOR.mutate(&mut rng, &base[4.min(base.len())..], &corpus);
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
