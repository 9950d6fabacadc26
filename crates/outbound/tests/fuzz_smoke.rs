//! Smoke fuzzing on stable, run by CI: the seeds in fuzz/seeds/smtp_reply
//! and fuzz/seeds/outbound_state, mutated deterministically, through the
//! libFuzzer targets' property checks (fuzz/src/outbound.rs, included).
//! The real fuzzing is `cargo fuzz run smtp_reply` / `outbound_state`.

#[path = "../../../fuzz/src/outbound.rs"]
mod checks;

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

const SPECIAL: &[u8] = b"\r\n -\t0123456789\xff\xc3";

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(5) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 => b.insert(at, SPECIAL[rng.below(SPECIAL.len())]),
            2 if at < b.len() => {
                b.remove(at);
            }
            3 => b.truncate(at),
            _ => {
                let i = rng.below(b.len() + 1);
                let piece = b[i.min(b.len())..].to_vec();
                b.splice(at..at, piece.into_iter().take(16));
            }
        }
    }
    b
}

fn run(target: &str, check: fn(&[u8])) {
    let seeds = seeds(target);
    assert!(!seeds.is_empty());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for s in &seeds {
        check(s);
    }
    for _ in 0..20_000 {
        let s = &seeds[rng.below(seeds.len())];
        let m = mutate(&mut rng, s);
        check(&m);
    }
}

#[test]
fn smtp_reply_seeds_and_mutants() {
    run("smtp_reply", checks::smtp_reply);
}

#[test]
fn outbound_state_seeds_and_mutants() {
    run("outbound_state", checks::state_records);
}
