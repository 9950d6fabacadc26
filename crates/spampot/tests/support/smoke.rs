//! The input generator of the spampot and capture smoke-fuzz tests (also
//! included by crates/capture/tests/fuzz_smoke.rs): systematic edits of each
//! seed (every truncation, every position set to a few telling bytes), then
//! random mutants. Deterministic, so a failure is reproducible.

#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};

const BYTES: &[u8] = b"\0\x01\x03\x04\x05\xff\r\n:[]@ ";

pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn check(target: &str, input: &[u8], f: &impl Fn(&[u8])) {
    if let Err(e) = catch_unwind(AssertUnwindSafe(|| f(input))) {
        let why = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("{target}: property violated on input {input:?}\n{why}");
    }
}

pub fn run(target: &str, random: usize, f: impl Fn(&[u8])) {
    let seeds = seeds(target);
    for s in &seeds {
        for cut in 0..=s.len() {
            check(target, &s[..cut], &f);
        }
        for i in 0..s.len() {
            for &b in BYTES {
                let mut m = s.clone();
                m[i] = b;
                check(target, &m, &f);
            }
        }
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..random {
        let mut m = seeds[next() as usize % seeds.len()].clone();
        for _ in 0..1 + next() % 4 {
            let at = next() as usize % (m.len() + 1);
            match next() % 4 {
                0 => m.insert(at, next() as u8),
                1 if at < m.len() => m[at] = BYTES[next() as usize % BYTES.len()],
                2 => m.truncate(at),
                _ => {
                    let other = &seeds[next() as usize % seeds.len()];
                    let from = next() as usize % (other.len() + 1);
                    m.splice(at..at, other[from..].iter().copied().take(32));
                }
            }
        }
        check(target, &m, &f);
    }
}
