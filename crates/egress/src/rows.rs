//! Where each row of the flow analysis ([`crate::report`]) is, by its
//! key: a subscriber address or IPv6 prefix, the session that named it
//! and the CGNAT port block that mapped it.
//!
//! Every matched flow looks its row up here, so this is one of the
//! analysis's costs per flow: a table of its own (open addressing, one
//! multiply-and-shift hash, 8-byte slots holding part of the hash and the
//! row) costs about a third of what the standard hash map of keys did,
//! and it keeps the keys in row order, so the rows need no sort by place.
//! The hash is keyed per index (a random word mixed in): the keys are
//! source addresses, and a subscriber chooses its IPv6 ones.

use crate::sender::Sender;
use crate::window::{key, mix};

/// A row's key: (address or prefix, session, CGNAT port block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RowKey {
    pub sender: Sender,
    pub session: u32,
    pub block: u32,
}

impl RowKey {
    #[inline]
    fn hash64(&self, seed: u64) -> u64 {
        let extra = u128::from(self.sender.len) << 64 | u128::from(self.session) << 32 | u128::from(self.block);
        mix(key(self.sender.ip) ^ extra ^ u128::from(seed))
    }
}

/// Rows by key, numbered in the order they were first seen.
#[derive(Debug)]
pub(crate) struct RowIndex {
    /// A power of two long, at most half full: (the high half of the
    /// key's hash, row + 1); row + 1 = 0 is an empty slot.
    slots: Vec<(u32, u32)>,
    /// Each row's key, at its row's place.
    keys: Vec<RowKey>,
    seed: u64,
}

impl Default for RowIndex {
    fn default() -> RowIndex {
        use std::hash::{BuildHasher, Hasher};
        // The standard library's per-process random keys, as one word.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(0);
        RowIndex { slots: Vec::new(), keys: Vec::new(), seed: h.finish() }
    }
}

impl RowIndex {
    /// The rows' keys, in row order.
    pub fn keys(&self) -> &[RowKey] {
        &self.keys
    }

    /// The row of `k`, and whether it is new (numbered after every row
    /// before it); `None` when it is new and `room()` says no.
    #[inline]
    pub fn get_or_insert_if(&mut self, k: RowKey, room: impl FnOnce() -> bool) -> Option<(u32, bool)> {
        if self.keys.len() * 2 >= self.slots.len() {
            self.grow();
        }
        let h = k.hash64(self.seed);
        let tag = (h >> 32) as u32;
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let (t, r) = self.slots[i];
            if r == 0 {
                if !room() {
                    return None;
                }
                let row = self.keys.len() as u32;
                self.slots[i] = (tag, row + 1);
                self.keys.push(k);
                return Some((row, true));
            }
            if t == tag && self.keys[r as usize - 1] == k {
                return Some((r - 1, false));
            }
            i = (i + 1) & mask;
        }
    }

    /// Twice the slots (16 at first), every key placed again.
    fn grow(&mut self) {
        let n = (self.slots.len() * 2).max(16);
        self.slots = vec![(0, 0); n];
        let mask = n - 1;
        for (row, k) in self.keys.iter().enumerate() {
            let h = k.hash64(self.seed);
            let mut i = h as usize & mask;
            while self.slots[i].1 != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = ((h >> 32) as u32, row as u32 + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    /// Against a standard map: the same row for the same key, new rows
    /// numbered in order, through several growths and with keys that
    /// differ only by prefix length, session or block.
    #[test]
    fn rows_are_found_again_and_numbered_in_order() {
        let mut index = RowIndex::default();
        let mut want = std::collections::HashMap::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let sender = if x & 1 == 0 {
                Sender::host(IpAddr::from([10, 0, (x >> 8) as u8 & 15, (x >> 16) as u8]))
            } else {
                // A /56 and the /64 at its start share their first address.
                let ip = IpAddr::from([0x2001, 0xdb8, 0, (x >> 8) as u16 & 4095 & !0xff, 0, 0, 0, 1]);
                Sender::of(ip, if x >> 50 & 1 == 0 { 56 } else { 64 })
            };
            let k = RowKey { sender, session: (x >> 32) as u32 & 3, block: (x >> 40) as u32 & 1 };
            let next = want.len() as u32;
            let row = *want.entry(k).or_insert(next);
            assert_eq!(index.get_or_insert_if(k, || true), Some((row, row == next)));
        }
        assert!(want.len() > 10_000, "{}", want.len());
        assert_eq!(index.keys().len(), want.len());
        for (i, k) in index.keys().iter().enumerate() {
            assert_eq!(want[k], i as u32);
        }
    }

    #[test]
    fn no_new_row_past_the_cap_but_the_old_ones_are_found() {
        let mut index = RowIndex::default();
        let k = |i: u8| RowKey { sender: Sender::host(IpAddr::from([10, 0, 0, i])), session: 0, block: 0 };
        let room = |index: &RowIndex| index.keys().len() < 3;
        for i in 0..3 {
            let room = room(&index);
            assert_eq!(index.get_or_insert_if(k(i), || room), Some((u32::from(i), true)));
        }
        let no = room(&index);
        assert_eq!(index.get_or_insert_if(k(3), || no), None);
        assert_eq!(index.get_or_insert_if(k(1), || panic!("asked for a row it has")), Some((1, false)));
        assert_eq!(index.keys().len(), 3);
    }
}
