//! Smoke fuzzing on stable, run by CI: the seed configurations in
//! fuzz/seeds/config mutated a few thousand times (TOML punctuation, control
//! characters, truncations, splices) and parsed. The properties are the
//! libFuzzer target's, from fuzz/src/config.rs, included here. The real
//! fuzzing is `cargo fuzz run config` (see fuzz/README.md).

#[allow(dead_code)]
#[path = "../../../fuzz/src/config.rs"]
mod checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

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

const SPECIAL: &[u8] = b"\r\n.\0 \"#=[]{},:-+\t\x07\x7f\xff";
const PIECES: &[&[u8]] = &[
    b"\n[[listener]]\nname = \"x\"\naddress = \"127.0.0.1:1\"\n",
    b"\n[mx]\n",
    b"\n[delivery]\n",
    b"\n[tls]\n",
    b"\n[log]\n",
    b" = ",
    b"\"\"\"",
    b"\x27\x27\x27",
    b"0",
    b"-1",
    b"99999999999999999999",
    b"true",
    b"[]",
    b"{}",
    b"\xc3\xa3",
    b"\r\n",
    b"#",
    b"domains = [\"a.example\"]\n",
    b"recipients = [\"u@a.example\"]\n",
    b"max_command_line = 0\n",
    b"1979-05-27T07:32:00Z",
];

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
fn mutated_configurations() {
    smoke("config", 3000, 0x5eed_0201, checks::config);
}

#[test]
fn error_lines_on_known_bad_files() {
    for (text, line) in [("[mx\n", 1), ("a = 1\n", 1), ("\n\n[log]\nformat = \"xml\"\n", 4), ("[mx]\ndomains = []\n", 2), ("x = \"\n", 1)] {
        checks::parse(text);
        let e = port25_config::parse(text, Path::new("t.toml"), Path::new("/")).unwrap_err();
        assert_eq!(e.line, line, "{text:?}: {e}");
    }
}

/// toml 0.8 gives an empty message for some syntax errors (found by
/// `cargo fuzz run config`: "#\x07", "a="); parse() supplies its own so
/// `port25 config check` never prints a bare "port25.toml:1:2: ".
#[test]
fn toml_syntax_errors_have_a_message() {
    for (text, column) in [("#\x07", 2), ("a=", 3), ("hostname = \"x.example\"\n# \x1b[31m\n", 3)] {
        let e = port25_config::parse(text, Path::new("t.toml"), Path::new("/")).unwrap_err();
        assert_eq!(e.column, column, "{text:?}");
        assert!(!e.message.is_empty(), "{text:?}: {e}");
    }
}
