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
//! session and prefix; nothing is kept per lookup.

use super::{Session, WarningKind, Warnings};
use crate::prefix::{ip_to_u128, Family};
use crate::report::FxMap;
use std::collections::BinaryHeap;
use std::net::IpAddr;

/// A prefix: family, length, first address.
type Key = (Family, u8, u128);
/// A session's claim on a prefix: (start, end, session).
type Item = (u64, u64, u32);

/// `[start, end)` in Unix milliseconds, held by `session`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seg {
    start: u64,
    end: u64,
    session: u32,
}

struct Table {
    family: Family,
    len: u8,
    mask: u128,
    segs: FxMap<u128, Vec<Seg>>,
}

pub struct Index {
    pub sessions: Vec<Session>,
    /// Longest prefix length first.
    tables: Vec<Table>,
}

impl Index {
    /// Indexes `sessions`; overlaps between sessions on one prefix are
    /// added to `warnings`.
    pub fn build(sessions: Vec<Session>, warnings: &mut Warnings) -> Index {
        let mut groups: FxMap<Key, Vec<Item>> = FxMap::default();
        for (i, s) in sessions.iter().enumerate() {
            let Ok(i) = u32::try_from(i) else { break };
            let end = s.end_or_max();
            if end <= s.start_ms {
                continue;
            }
            for p in &s.prefixes {
                groups.entry((p.family, p.len, p.addr)).or_default().push((s.start_ms, end, i));
            }
        }
        let mut tables: Vec<Table> = Vec::new();
        let mut keys: Vec<Key> = groups.keys().copied().collect();
        // Deterministic warnings: prefixes in order.
        keys.sort_unstable();
        for key in keys {
            let items = groups.remove(&key).expect("listed");
            let segs = flatten(items, &sessions, warnings);
            let (family, len, addr) = key;
            let t = match tables.iter_mut().position(|t| t.family == family && t.len == len) {
                Some(i) => &mut tables[i],
                None => {
                    let host = family.bits() - len;
                    let mask = if host == 128 { 0 } else { family.max() & !((1u128 << host) - 1) };
                    tables.push(Table { family, len, mask, segs: FxMap::default() });
                    tables.last_mut().expect("pushed")
                }
            };
            t.segs.insert(addr, segs);
        }
        tables.sort_by(|a, b| b.len.cmp(&a.len).then(a.family.cmp(&b.family)));
        Index { sessions, tables }
    }

    /// The session holding `ip` at `t_ms`, if any (IPv4-mapped IPv6
    /// addresses count as IPv4).
    #[inline]
    pub fn lookup(&self, ip: IpAddr, t_ms: u64) -> Option<u32> {
        let (family, v) = ip_to_u128(ip);
        for t in &self.tables {
            if t.family != family {
                continue;
            }
            let Some(segs) = t.segs.get(&(v & t.mask)) else { continue };
            let i = segs.partition_point(|s| s.start <= t_ms);
            if i > 0 && t_ms < segs[i - 1].end {
                return Some(segs[i - 1].session);
            }
        }
        None
    }

    pub fn session(&self, i: u32) -> &Session {
        &self.sessions[i as usize]
    }

    /// Distinct prefixes indexed.
    pub fn prefixes(&self) -> usize {
        self.tables.iter().map(|t| t.segs.len()).sum()
    }
}

/// Disjoint segments from possibly overlapping `(start, end, session)`:
/// at every moment the covering session that started last (later in the
/// input on a tie) holds the prefix.
fn flatten(mut items: Vec<Item>, sessions: &[Session], warnings: &mut Warnings) -> Vec<Seg> {
    items.sort_unstable();
    if items.len() == 1 {
        let (start, end, session) = items[0];
        return vec![Seg { start, end, session }];
    }
    let mut bounds: Vec<u64> = items.iter().flat_map(|&(s, e, _)| [s, e]).collect();
    bounds.sort_unstable();
    bounds.dedup();
    // Max-heap by (start, session): the latest start on top; ended ones
    // are dropped lazily when they reach the top.
    let mut heap: BinaryHeap<(u64, u32, u64)> = BinaryHeap::new();
    let mut next = 0;
    let mut out: Vec<Seg> = Vec::new();
    for (bi, &b) in bounds.iter().enumerate() {
        while heap.peek().is_some_and(|&(_, _, end)| end <= b) {
            heap.pop();
        }
        while next < items.len() && items[next].0 == b {
            let (start, end, session) = items[next];
            // Whatever is on top now is open at `b` (ended ones were popped).
            if let Some(&(_, other, _)) = heap.peek() {
                overlap(sessions, other, session, warnings);
            }
            heap.push((start, session, end));
            next += 1;
        }
        while heap.peek().is_some_and(|&(_, _, end)| end <= b) {
            heap.pop();
        }
        let Some(&(_, session, _)) = heap.peek() else { continue };
        let Some(&end) = bounds.get(bi + 1) else { continue };
        match out.last_mut() {
            Some(last) if last.session == session && last.end == b => last.end = end,
            _ => out.push(Seg { start: b, end, session }),
        }
    }
    out
}

fn overlap(sessions: &[Session], earlier: u32, later: u32, warnings: &mut Warnings) {
    let (a, b) = (&sessions[earlier as usize], &sessions[later as usize]);
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
