//! The one deterministic mutator of the stable smoke tests
//! (crates/*/tests/*fuzz_smoke.rs): seeds from fuzz/seeds/<target>/, an
//! xorshift generator, mutations aimed at each parser's framing by the
//! caller's special bytes and splice pieces ([`Mutator`]), and a panic that
//! names the input. std only, so any crate's tests can include it with
//! `#[path]`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// What a caller aims its mutants with: single bytes that matter to its
/// parser's framing (inserted anywhere) and longer pieces (keywords, headers,
/// terminators) spliced in anywhere.
pub struct Mutator<'a> {
    pub special: &'a [u8],
    pub pieces: &'a [&'a [u8]],
}

/// The mutator of [`smoke`]: SMTP, address and header punctuation, no pieces.
pub const DEFAULT: Mutator<'static> = Mutator { special: b"\r\n\0 :,<>@\"()=*$/+{}\\\t\xff", pieces: &[] };

impl Mutator<'_> {
    /// One to four random edits of `input`: a bit flip, a byte change, a
    /// special byte inserted, a piece spliced in, a deletion of up to 16
    /// bytes, a truncation, up to 64 bytes of a corpus entry spliced in, up
    /// to 32 of its own bytes repeated, a random byte inserted.
    pub fn mutate(&self, rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
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
                2 if !self.special.is_empty() => b.insert(at, self.special[rng.below(self.special.len())]),
                3 if !self.pieces.is_empty() => {
                    let p = self.pieces[rng.below(self.pieces.len())];
                    b.splice(at..at, p.iter().copied());
                }
                4 if at < b.len() => {
                    let end = (at + 1 + rng.below(16)).min(b.len());
                    b.drain(at..end);
                }
                5 => b.truncate(at),
                6 if !corpus.is_empty() => {
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
                _ => b.insert(at, rng.next() as u8),
            }
        }
        b
    }
}

/// The seed files of `target` (fuzz/seeds/<target>/), in name order; there
/// must be at least one.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let corpus: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!corpus.is_empty(), "no seeds in {}", dir.display());
    corpus
}

/// [`smoke_with`] the [`DEFAULT`] mutator.
pub fn smoke(target: &str, n: usize, seed: u64, check: impl Fn(&[u8])) {
    smoke_with(target, n, seed, &DEFAULT, check);
}

/// Runs `check` on every seed of `target`, then on `n` mutants made by
/// `mutator` and, after every ninth, an input of up to 63 random bytes. Some
/// mutants join the pool that later ones start from, so edits accumulate as
/// in a fuzzer's corpus. A failure names the input so it can become a seed.
pub fn smoke_with(target: &str, n: usize, seed: u64, mutator: &Mutator, check: impl Fn(&[u8])) {
    let corpus = seeds(target);
    let run = |input: &[u8]| {
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| check(input))) {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{target}: property violated on input b\"{}\"\n{why}", input.escape_ascii());
        }
    };
    corpus.iter().for_each(|s| run(s));
    let mut rng = Rng(seed);
    let mut pool = corpus.clone();
    for i in 0..n {
        let base = &pool[rng.below(pool.len())];
        let input = mutator.mutate(&mut rng, base, &corpus);
        run(&input);
        if i % 9 == 8 {
            let len = rng.below(64);
            run(&rng.bytes(len));
        }
        if i % 7 == 0 && input.len() < 4096 {
            pool.push(input);
        }
    }
}
