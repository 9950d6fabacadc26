//! The interval index: (address, time) to the session that held the
//! address then.
//!
//! Sessions are grouped by the prefix they hold (an IPv4 or IPv6 address,
//! or a delegated IPv6 prefix) and, per prefix, flattened into disjoint time
//! segments: where sessions overlap (a missing Stop, two sources that
//! disagree) the one started last wins for as long as it is open, and the
//! overlap is a warning. A lookup tries the prefix lengths present, longest
//! first (an address assigned on its own beats the delegated prefix it sits
//! in), each one hash probe and a binary search. Memory is a few words per
//! session and prefix (see `store`); nothing is kept per lookup.

use super::store::{Slots, Store};
use super::{Session, WarningKind, Warnings};
use crate::prefix::{ip_to_u128, Family};
use std::collections::BinaryHeap;
use std::net::IpAddr;

/// A session's claim on a prefix: (start, end, session).
type Item = (u64, u64, u32);

/// `[start, end)` in Unix milliseconds, held by `session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seg {
    start: u64,
    end: u64,
    session: u32,
}

/// A prefix (its address in two halves: a `u128` would pad the entry to
/// 48 bytes) and its `n` segments: when it has one (most prefixes: one
/// lease, one session) the segment itself, so a lookup reads one entry;
/// else `segs[start..start + n]`.
#[derive(Debug, Clone, Copy)]
struct Dir {
    lo: u64,
    hi: u64,
    start: u64,
    end: u64,
    session: u32,
    n: u32,
}

impl Dir {
    fn addr(&self) -> u128 {
        (u128::from(self.hi) << 64) | u128::from(self.lo)
    }
}

/// The prefixes of one family and length: sorted, each with its run of
/// segments, found through a hash of `u32` slots (a few bytes a prefix,
/// where a map of vectors cost an allocation and some 80 bytes each).
struct Table {
    family: Family,
    len: u8,
    mask: u128,
    /// The prefixes, sorted, each with where its segments are: one read
    /// finds both.
    dir: Vec<Dir>,
    segs: Vec<Seg>,
    slots: Slots,
}

impl Table {
    /// The session holding `addr` (this table's prefix of it) at `t_ms`.
    #[inline]
    fn lookup(&self, addr: u128, t_ms: u64) -> Option<u32> {
        let (lo, hi) = (addr as u64, (addr >> 64) as u64);
        let d = &self.dir;
        let i = self.slots.find(crate::window::mix(addr), |i| d[i as usize].lo == lo && d[i as usize].hi == hi)?;
        let d = d[i as usize];
        if d.n == 1 {
            return (d.start <= t_ms && t_ms < d.end).then_some(d.session);
        }
        let segs = self.segs.get(d.start as usize..d.start as usize + d.n as usize)?;
        let i = segs.partition_point(|s| s.start <= t_ms);
        (i > 0 && t_ms < segs[i - 1].end).then(|| segs[i - 1].session)
    }
}

pub struct Index {
    store: Store,
    /// Longest prefix length first.
    tables: Vec<Table>,
}

impl Index {
    /// Indexes `sessions`; overlaps between sessions on one prefix are
    /// added to `warnings`.
    pub fn build(sessions: impl Into<Store>, warnings: &mut Warnings) -> Index {
        let mut store: Store = sessions.into();
        store.shrink();
        // Every (prefix, session), sorted by prefix then by the session's
        // (start, end, number): one flat vector of 32-byte entries, grouped
        // by sorting rather than by a map of vectors.
        let mut claims: Vec<(u128, u32, u8, Family)> = Vec::new();
        for (i, r) in store.recs.iter().enumerate() {
            let Ok(i) = u32::try_from(i) else { break };
            if r.end_ms <= r.start_ms {
                continue;
            }
            for p in store.prefixes_of(r) {
                claims.push((p.addr, i, p.len, p.family));
            }
        }
        let recs = &store.recs;
        let item = |i: u32| (recs[i as usize].start_ms, recs[i as usize].end_ms, i);
        // Deterministic warnings: prefixes in order.
        claims.sort_unstable_by(|a, b| (a.3, a.2, a.0).cmp(&(b.3, b.2, b.0)).then_with(|| item(a.1).cmp(&item(b.1))));
        let mut tables: Vec<Table> = Vec::new();
        let mut items: Vec<Item> = Vec::new();
        let mut rest = &claims[..];
        while let Some(&(addr, _, len, family)) = rest.first() {
            let n = rest.iter().take_while(|c| (c.0, c.2, c.3) == (addr, len, family)).count();
            items.clear();
            items.extend(rest[..n].iter().map(|c| item(c.1)));
            rest = &rest[n..];
            let t = match tables.last_mut() {
                Some(t) if t.family == family && t.len == len => t,
                _ => {
                    let host = family.bits() - len;
                    let mask = if host == 128 { 0 } else { family.max() & !((1u128 << host) - 1) };
                    tables.push(Table {
                        family,
                        len,
                        mask,
                        dir: Vec::new(),
                        segs: Vec::new(),
                        slots: Slots::default(),
                    });
                    tables.last_mut().expect("pushed")
                }
            };
            let first = t.segs.len();
            flatten(&items, &store, warnings, &mut t.segs);
            // A prefix's segments number under u32 (at most two per claim,
            // and claims on one prefix are distinct sessions, numbered in
            // u32) but the check costs nothing.
            let Ok(n) = u32::try_from(t.segs.len() - first) else { break };
            let (lo, hi) = (addr as u64, (addr >> 64) as u64);
            t.dir.push(match t.segs.pop() {
                Some(s) if n == 1 => Dir { lo, hi, start: s.start, end: s.end, session: s.session, n },
                popped => {
                    t.segs.extend(popped);
                    Dir { lo, hi, start: first as u64, end: 0, session: 0, n }
                }
            });
        }
        drop(claims);
        for t in &mut tables {
            t.dir.shrink_to_fit();
            t.segs.shrink_to_fit();
            let dir = &t.dir;
            for (i, d) in dir.iter().enumerate() {
                t.slots.insert(crate::window::mix(d.addr()), i as u32, |j| crate::window::mix(dir[j as usize].addr()));
            }
        }
        tables.sort_by(|a, b| b.len.cmp(&a.len).then(a.family.cmp(&b.family)));
        Index { store, tables }
    }

    /// The session holding `ip` at `t_ms`, if any (IPv4-mapped IPv6
    /// addresses count as IPv4).
    #[inline]
    pub fn lookup(&self, ip: IpAddr, t_ms: u64) -> Option<u32> {
        self.lookup_prefix(ip, t_ms).map(|(s, _)| s)
    }

    /// [`Index::lookup`], with the length of the prefix that matched: the
    /// longest prefix of `ip` a session held at `t_ms`.
    #[inline]
    pub fn lookup_prefix(&self, ip: IpAddr, t_ms: u64) -> Option<(u32, u8)> {
        let (family, v) = ip_to_u128(ip);
        for t in &self.tables {
            if t.family != family {
                continue;
            }
            if let Some(s) = t.lookup(v & t.mask, t_ms) {
                return Some((s, t.len));
            }
        }
        None
    }

    /// The length of the shortest IPv6 prefix any session holds.
    pub fn shortest_v6_prefix(&self) -> Option<u8> {
        self.tables.iter().filter(|t| t.family == Family::V6).map(|t| t.len).min()
    }

    /// Session `i` (a number [`Index::lookup`] gave).
    pub fn session(&self, i: u32) -> Session {
        self.store.get(i).expect("a session number the index gave")
    }

    /// Sessions indexed.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Distinct prefixes indexed.
    pub fn prefixes(&self) -> usize {
        self.tables.iter().map(|t| t.dir.len()).sum()
    }

    /// Memory held by the sessions and the tables, bytes.
    pub fn bytes(&self) -> usize {
        self.store.bytes()
            + self
                .tables
                .iter()
                .map(|t| {
                    t.dir.capacity() * std::mem::size_of::<Dir>()
                        + t.segs.capacity() * std::mem::size_of::<Seg>()
                        + t.slots.bytes()
                })
                .sum::<usize>()
    }
}

/// Disjoint segments from possibly overlapping `(start, end, session)`
/// (sorted): at every moment the covering session that started last (later
/// in the input on a tie) holds the prefix. Appended to `out`.
fn flatten(items: &[Item], store: &Store, warnings: &mut Warnings, out: &mut Vec<Seg>) {
    if let [(start, end, session)] = *items {
        out.push(Seg { start, end, session });
        return;
    }
    let mut bounds: Vec<u64> = items.iter().flat_map(|&(s, e, _)| [s, e]).collect();
    bounds.sort_unstable();
    bounds.dedup();
    // Max-heap by (start, session): the latest start on top; ended ones
    // are dropped lazily when they reach the top.
    let mut heap: BinaryHeap<(u64, u32, u64)> = BinaryHeap::new();
    let mut next = 0;
    let first = out.len();
    for (bi, &b) in bounds.iter().enumerate() {
        while heap.peek().is_some_and(|&(_, _, end)| end <= b) {
            heap.pop();
        }
        while next < items.len() && items[next].0 == b {
            let (start, end, session) = items[next];
            // Whatever is on top now is open at `b` (ended ones were popped).
            if let Some(&(_, other, _)) = heap.peek() {
                overlap(store, other, session, warnings);
            }
            heap.push((start, session, end));
            next += 1;
        }
        while heap.peek().is_some_and(|&(_, _, end)| end <= b) {
            heap.pop();
        }
        let Some(&(_, session, _)) = heap.peek() else { continue };
        let Some(&end) = bounds.get(bi + 1) else { continue };
        // Only this prefix's own segments merge (`out` holds others' too).
        let own = out.len() > first;
        match out.last_mut() {
            Some(last) if own && last.session == session && last.end == b => last.end = end,
            _ => out.push(Seg { start: b, end, session }),
        }
    }
}

fn overlap(store: &Store, earlier: u32, later: u32, warnings: &mut Warnings) {
    if !warnings.names(WarningKind::Overlap) {
        // Counted only: no need to build the message.
        let origin = store.recs[later as usize].origin;
        warnings.add(WarningKind::Overlap, origin, String::new());
        return;
    }
    let (Some(a), Some(b)) = (store.get(earlier), store.get(later)) else { return };
    warnings.add(
        WarningKind::Overlap,
        b.origin,
        format!(
            "session {} ({}) starts while session {} ({}, file {} line {}) still holds the address; the later one wins while both are open",
            super::clean(&b.id),
            super::clean(&b.subscriber),
            super::clean(&a.id),
            super::clean(&a.subscriber),
            a.origin.file,
            a.origin.line
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::super::{Origin, Source, SubscriberKind};
    use super::*;

    fn s(id: &str, prefix: &str, start: u64, end: Option<u64>) -> Session {
        Session {
            source: Source::Radius,
            subscriber: format!("user-{id}"),
            kind: SubscriberKind::UserName,
            id: id.into(),
            remote_id: None,
            circuit_id: None,
            prefixes: vec![prefix.parse().unwrap()],
            start_ms: start,
            end_ms: end,
            origin: Origin { file: 0, line: 1 },
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn address_and_time() {
        let mut w = Warnings::default();
        let idx = Index::build(
            vec![
                s("a", "100.64.0.1", 1000, Some(2000)),
                s("b", "100.64.0.1", 2000, None),
                s("c", "2001:db8:1::/56", 0, Some(5000)),
            ],
            &mut w,
        );
        assert_eq!(idx.lookup(ip("100.64.0.1"), 999), None);
        assert_eq!(idx.lookup(ip("100.64.0.1"), 1000), Some(0));
        assert_eq!(idx.lookup(ip("100.64.0.1"), 1999), Some(0));
        assert_eq!(idx.lookup(ip("100.64.0.1"), 2000), Some(1));
        assert_eq!(idx.lookup(ip("::ffff:100.64.0.1"), u64::MAX - 1), Some(1));
        assert_eq!(idx.lookup(ip("100.64.0.2"), 1500), None);
        assert_eq!(idx.lookup(ip("2001:db8:1:ff::1234"), 10), Some(2));
        assert_eq!(idx.lookup(ip("2001:db8:1:100::1"), 10), None);
        assert_eq!(idx.lookup(ip("2001:db8:1::1"), 5000), None);
        assert_eq!(w.total(), 0);
    }

    #[test]
    fn overlaps_are_warned_and_the_later_start_wins() {
        let mut w = Warnings::default();
        let idx =
            Index::build(vec![s("long", "100.64.0.1", 0, Some(100)), s("short", "100.64.0.1", 10, Some(20))], &mut w);
        assert_eq!(w.count(WarningKind::Overlap), 1);
        assert_eq!(idx.lookup(ip("100.64.0.1"), 5), Some(0));
        assert_eq!(idx.lookup(ip("100.64.0.1"), 15), Some(1));
        assert_eq!(idx.lookup(ip("100.64.0.1"), 50), Some(0));
        assert_eq!(idx.lookup(ip("100.64.0.1"), 100), None);
    }

    #[test]
    fn the_longest_prefix_wins() {
        let mut w = Warnings::default();
        let idx =
            Index::build(vec![s("pd", "2001:db8:1::/56", 0, None), s("na", "2001:db8:1::5/128", 0, None)], &mut w);
        assert_eq!(idx.lookup(ip("2001:db8:1::5"), 1), Some(1));
        assert_eq!(idx.lookup(ip("2001:db8:1::6"), 1), Some(0));
    }
}
