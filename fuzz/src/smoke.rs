//! A tiny deterministic mutator for the stable smoke tests of the
//! submission parsers (crates/{engine,accounts,submission}/tests/*fuzz*):
//! seeds from fuzz/seeds/<target>/, xorshift mutations, a panic names the
//! input. std only, so any crate's tests can include it with `#[path]`.

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
}

const SPECIAL: &[u8] = b"\r\n\0 :,<>@\"()=*$/+{}\\\t\xff";

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(7) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 => b.insert(at, SPECIAL[rng.below(SPECIAL.len())]),
            2 if !b.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(b.len());
                b.drain(at.min(end)..end);
            }
            3 => b.truncate(at),
            4 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(48)).min(other.len());
                b.splice(at..at, other[from..to].iter().copied());
            }
            _ => b.insert(at, rng.next() as u8),
        }
    }
    b
}

/// Runs `check` on every seed of `target`, then on `n` mutants.
pub fn smoke(target: &str, n: usize, seed: u64, check: impl Fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
    files.sort();
    let corpus: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!corpus.is_empty(), "no seeds in {}", dir.display());
    let run = |input: &[u8]| {
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| check(input))) {
            let why = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            panic!("{target}: property violated on input {:?}\n{why}", String::from_utf8_lossy(input));
        }
    };
    corpus.iter().for_each(|s| run(s));
    let mut rng = Rng(seed);
    for _ in 0..n {
        let base = &corpus[rng.below(corpus.len())];
        run(&mutate(&mut rng, base, &corpus));
    }
}
