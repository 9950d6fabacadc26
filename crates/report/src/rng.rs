//! A small seeded generator (SplitMix64). The synthetic capture must be the
//! same bytes for the same seed on every machine and every version of every
//! dependency, so it does not use a general-purpose random crate.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant at these sizes.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Index drawn from cumulative weights (`cum` ascending, last = total).
    pub fn weighted(&mut self, cum: &[u64]) -> usize {
        let total = *cum.last().expect("non-empty weights");
        let x = self.below(total);
        cum.partition_point(|&c| c <= x)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn deterministic_and_weighted() {
        let mut a = super::Rng::new(7);
        let mut b = super::Rng::new(7);
        assert_eq!((0..5).map(|_| a.next_u64()).collect::<Vec<_>>(), (0..5).map(|_| b.next_u64()).collect::<Vec<_>>());
        let cum = [1, 1, 11];
        let mut hits = [0; 3];
        for _ in 0..1000 {
            hits[a.weighted(&cum)] += 1;
        }
        assert_eq!(hits[1], 0, "a zero weight is never drawn");
        assert!(hits[2] > hits[0]);
    }
}
