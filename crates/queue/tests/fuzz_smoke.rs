//! Smoke fuzzing on stable, run by CI: random spool messages round-tripped
//! through the batch format, and the seed batch files in fuzz/seeds/ mutated
//! (with and without repaired checksums) fed to the decoder. The properties
//! are the libFuzzer target's, from fuzz/src/queue.rs, included here. The
//! real fuzzing is `cargo fuzz run spool_record` (see fuzz/README.md).

#[allow(dead_code)]
#[path = "../../../fuzz/src/queue.rs"]
mod checks;

use port25_queue::SpooledMessage;
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
const PIECES: &[&[u8]] = &[b"PORT25BATCH1", b"\0\0\0\0", b"\xff\xff\xff\xff", b"\x01\0\0\0", b"\r\n", b"\xc3\xa3"];

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

fn string(rng: &mut Rng) -> String {
    const CHARS: &[&str] = &["a", "Z", "0", "@", ".", " ", "\r\n", "\0", "ã", "€", "\u{10ffff}"];
    (0..rng.below(24)).map(|_| CHARS[rng.below(CHARS.len())]).collect()
}

fn message(rng: &mut Rng) -> SpooledMessage {
    SpooledMessage {
        id: string(rng),
        received_at: rng.next() >> rng.below(64),
        peer: string(rng),
        helo: string(rng),
        from: string(rng),
        rcpts: (0..rng.below(5)).map(|_| string(rng)).collect(),
        content: (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
    }
}

#[test]
fn random_messages_round_trip() {
    let mut rng = Rng(0x5eed_0101);
    for _ in 0..2000 {
        let msgs: Vec<SpooledMessage> = (0..rng.below(4)).map(|_| message(&mut rng)).collect();
        let cut = rng.next() as usize;
        checks::round_trip(&msgs, cut);
    }
}

#[test]
fn mutated_batches() {
    smoke("spool_record", 3000, 0x5eed_0102, checks::spool_record);
}

#[test]
fn mutated_encodings_of_random_messages() {
    let mut rng = Rng(0x5eed_0103);
    let corpus = seeds("spool_record");
    for _ in 0..1500 {
        let msgs: Vec<SpooledMessage> = (0..1 + rng.below(3)).map(|_| message(&mut rng)).collect();
        let bytes = port25_queue::record::encode_batch(&msgs);
        let m = mutate(&mut rng, &bytes, &corpus);
        // spool_record also decodes the mutant with repaired checksums, so
        // the damage reaches the field decoder.
        checks::spool_record(&m);
    }
}

#[test]
fn test_crc_matches_the_format() {
    // The CRC in fuzz/src/queue.rs must agree with the format's, or the
    // repaired batches above would all stop at the checksum.
    let msgs = [SpooledMessage {
        id: "x".into(),
        received_at: 1,
        peer: "p".into(),
        helo: "h".into(),
        from: String::new(),
        rcpts: vec!["r".into()],
        content: b"c".to_vec(),
    }];
    let bytes = port25_queue::record::encode_batch(&msgs);
    assert_eq!(checks::fix_crcs(&bytes), bytes);
    let mut damaged = bytes.clone();
    *damaged.last_mut().unwrap() ^= 1;
    assert!(port25_queue::record::decode_batch(&damaged).is_err());
    assert_eq!(port25_queue::record::decode_batch(&checks::fix_crcs(&damaged)).unwrap()[0].content, b"b");
}
