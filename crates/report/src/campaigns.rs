//! Near-duplicate bodies: the same campaign sent with small changes (a
//! per-recipient token, a different link, reordered lines) has a new SHA-256
//! each time, so exact digests split it. We group bodies by MinHash over
//! word 5-shingles (Broder, "On the resemblance and containment of
//! documents", 1997): the fraction of equal minima across 64 hash
//! functions estimates the Jaccard similarity of the shingle sets, a body
//! costs a fixed 64-value signature however long it is, and locality-
//! sensitive hashing (16 bands of 4 rows) finds the candidate pairs without
//! comparing every pair. Candidates whose estimated similarity reaches the
//! threshold (0.7 by default) are joined (union-find), so a cluster is the
//! transitive closure of "very similar". Fuzzy hashes (ssdeep, TLSH) would
//! do too, but need a C library or an unmaintained crate; MinHash is a few
//! lines and its error is known (standard deviation about 0.06 at 64 hashes).

use std::collections::HashMap;

pub const HASHES: usize = 64;
const BANDS: usize = 16;
const ROWS: usize = HASHES / BANDS;
const SHINGLE: usize = 5;

pub type Signature = [u64; HASHES];

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a: stable across platforms and versions (the signatures are data).
fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01B3);
    }
    h
}

/// The MinHash signature of a body: lower-cased alphanumeric words, every
/// run of five (or the whole text when shorter) is a shingle.
pub fn signature(body: &[u8]) -> Signature {
    let words: Vec<Vec<u8>> = body
        .split(|b| !b.is_ascii_alphanumeric() && *b < 0x80)
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect();
    let mut sig = [u64::MAX; HASHES];
    let n = words.len().saturating_sub(SHINGLE - 1).max(1);
    for i in 0..n {
        let mut h = 0xCBF2_9CE4_8422_2325u64;
        for w in words.iter().skip(i).take(SHINGLE) {
            h = fnv(w, h);
            h = fnv(b" ", h);
        }
        for (k, s) in sig.iter_mut().enumerate() {
            let v = mix(h ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            if v < *s {
                *s = v;
            }
        }
    }
    sig
}

/// Estimated Jaccard similarity of two signatures.
pub fn similarity(a: &Signature, b: &Signature) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / HASHES as f64
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Groups signatures: returns a cluster number per input, clusters numbered
/// by their first member.
pub fn cluster(sigs: &[Signature], threshold: f64) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..sigs.len()).collect();
    for band in 0..BANDS {
        let mut buckets: HashMap<u64, usize> = HashMap::new();
        for (i, s) in sigs.iter().enumerate() {
            let key = s[band * ROWS..(band + 1) * ROWS].iter().fold(band as u64, |h, v| mix(h ^ v));
            match buckets.get(&key) {
                Some(&j) => {
                    if similarity(s, &sigs[j]) >= threshold {
                        let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                        parent[a.max(b)] = a.min(b);
                    }
                }
                None => {
                    buckets.insert(key, i);
                }
            }
        }
    }
    (0..sigs.len()).map(|i| find(&mut parent, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_group_and_strangers_do_not() {
        let base = "Dear friend we offer the best replica watches at prices you will not believe visit our shop today and get a free gift with every order placed before the end of the month";
        let a = format!("{base} ref 1111 http://a.example/");
        let b = format!("{base} ref 2222 http://b.example/");
        let c = "Your account statement is ready please log in to the secure portal with your password to review recent transactions and confirm your identity";
        let sigs = [signature(a.as_bytes()), signature(b.as_bytes()), signature(c.as_bytes())];
        assert!(similarity(&sigs[0], &sigs[1]) > 0.7, "{}", similarity(&sigs[0], &sigs[1]));
        assert!(similarity(&sigs[0], &sigs[2]) < 0.2);
        assert_eq!(cluster(&sigs, 0.7), vec![0, 0, 2]);
        assert_eq!(signature(b"x"), signature(b"X"), "case does not matter");
    }
}
