//! Longest-prefix match over the policy, flattened to disjoint ranges.
//!
//! Every network and exemption prefix becomes an entry; the most specific
//! entry containing an address decides (on an exact tie an exemption wins).
//! Flattening turns the nested prefixes into sorted disjoint segments, so the
//! compilers emit two disjoint sets (blocked, exempt) whose rule order does
//! not matter, and classification is a search over sorted starts: a 2^16
//! bucket index for IPv4 narrows it to a few entries.
//!
//! The compilers get (blocked, exempt) sets and always match exempt first.

use crate::policy::{Mode, Policy};
use crate::prefix::{merge_ranges, range_to_prefixes, Family, Prefix, Range};
use std::net::IpAddr;

/// No entry: the address is not end-user space nor exempt (a "remote" host).
pub const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Network,
    Exempt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    /// Index into `Policy::networks` or `Policy::exemptions`.
    pub index: usize,
    pub blocked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub first: u128,
    pub last: u128,
    pub entry: u32,
}

/// The policy's address space, flattened.
pub struct Table {
    pub entries: Vec<Entry>,
    pub v4: Vec<Segment>,
    pub v6: Vec<Segment>,
    // Lookup structures: starts of consecutive ranges covering the whole
    // space (gaps hold NONE), and for IPv4 the first range of each /16.
    v4_starts: Vec<u32>,
    v4_vals: Vec<u32>,
    v4_index: Vec<u32>,
    v6_starts: Vec<u128>,
    v6_vals: Vec<u32>,
}

fn flatten(mut items: Vec<(Prefix, u32, u8)>, max: u128) -> Vec<Segment> {
    // Same start: the shorter (enclosing) prefix first; equal prefixes: the
    // higher rank (exemption) first, and only that one is kept.
    items.sort_by_key(|a| (a.0.first(), a.0.len, std::cmp::Reverse(a.2), a.1));
    items.dedup_by(|b, a| a.0 == b.0);
    let mut out: Vec<Segment> = Vec::with_capacity(items.len() * 2);
    let mut push = |first: u128, last: u128, entry: u32| {
        if let Some(prev) = out.last_mut() {
            if prev.entry == entry && prev.last.checked_add(1) == Some(first) {
                prev.last = last;
                return;
            }
        }
        out.push(Segment { first, last, entry });
    };
    let mut stack: Vec<(u128, u32)> = Vec::new();
    let mut cursor: u128 = 0;
    for (p, e, _) in items {
        while let Some(&(tlast, te)) = stack.last() {
            if tlast >= p.first() {
                break;
            }
            if cursor <= tlast {
                push(cursor, tlast, te);
            }
            cursor = tlast + 1;
            stack.pop();
        }
        if let Some(&(_, te)) = stack.last() {
            if cursor < p.first() {
                push(cursor, p.first() - 1, te);
            }
        }
        cursor = p.first();
        stack.push((p.last(), e));
    }
    let mut done = false;
    while let Some((tlast, te)) = stack.pop() {
        if !done && cursor <= tlast {
            push(cursor, tlast, te);
        }
        if tlast == max {
            done = true;
        } else {
            cursor = tlast + 1;
        }
    }
    out
}

/// Consecutive ranges covering the whole space, as (start, entry) with
/// gaps holding [`NONE`], so a lookup is "the last start <= address".
fn covering<T: Copy>(segs: &[Segment], max: u128, conv: impl Fn(u128) -> T) -> (Vec<T>, Vec<u32>) {
    let mut starts = vec![0u128];
    let mut vals = vec![NONE];
    let mut push = |start: u128, val: u32| {
        if *starts.last().unwrap() == start {
            *vals.last_mut().unwrap() = val;
        } else {
            starts.push(start);
            vals.push(val);
        }
    };
    for s in segs {
        push(s.first, s.entry);
        if s.last < max {
            push(s.last + 1, NONE);
        }
    }
    (starts.into_iter().map(conv).collect(), vals)
}

impl Table {
    pub fn new(policy: &Policy) -> Table {
        let mut entries = Vec::new();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (i, n) in policy.networks.iter().enumerate() {
            let id = entries.len() as u32;
            entries.push(Entry { kind: EntryKind::Network, index: i, blocked: n.block });
            for p in &n.prefixes {
                match p.family {
                    Family::V4 => v4.push((*p, id, 0)),
                    Family::V6 => v6.push((*p, id, 0)),
                }
            }
        }
        for (i, x) in policy.exemptions.iter().enumerate() {
            let id = entries.len() as u32;
            entries.push(Entry { kind: EntryKind::Exempt, index: i, blocked: false });
            for p in &x.prefixes {
                match p.family {
                    Family::V4 => v4.push((*p, id, 1)),
                    Family::V6 => v6.push((*p, id, 1)),
                }
            }
        }
        let v4 = flatten(v4, Family::V4.max());
        let v6 = flatten(v6, Family::V6.max());
        let (v4_starts, v4_vals) = covering(&v4, Family::V4.max(), |x| x as u32);
        let (v6_starts, v6_vals) = covering(&v6, Family::V6.max(), |x| x);
        let mut v4_index = Vec::with_capacity(65537);
        let mut j = 0usize;
        for bucket in 0..=65536u64 {
            let start = (bucket << 16).min(u32::MAX as u64 + 1);
            while j < v4_starts.len() && (v4_starts[j] as u64) < start {
                j += 1;
            }
            v4_index.push(j as u32);
        }
        Table { entries, v4, v6, v4_starts, v4_vals, v4_index, v6_starts, v6_vals }
    }

    /// The deciding entry for an IPv4 address, or [`NONE`].
    #[inline]
    pub fn lookup_v4(&self, a: u32) -> u32 {
        let b = (a >> 16) as usize;
        let lo = self.v4_index[b] as usize;
        let hi = self.v4_index[b + 1] as usize;
        // Ranges starting inside this bucket; when none starts at or before
        // `a`, the covering one began before the bucket, at lo - 1 (lo > 0
        // then, because the first range starts at 0, in bucket 0).
        let n = self.v4_starts[lo..hi].partition_point(|&s| s <= a);
        self.v4_vals[lo + n - 1]
    }

    #[inline]
    pub fn lookup_v6(&self, a: u128) -> u32 {
        let n = self.v6_starts.partition_point(|&s| s <= a);
        self.v6_vals[n - 1]
    }

    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> u32 {
        match crate::prefix::ip_to_u128(ip) {
            (Family::V4, v) => self.lookup_v4(v as u32),
            (Family::V6, v) => self.lookup_v6(v),
        }
    }

    /// True when the address is end-user space whose port-25 traffic is blocked.
    #[inline]
    pub fn is_blocked(&self, entry: u32) -> bool {
        entry != NONE && self.entries[entry as usize].blocked
    }

    /// Exactly the blocked space of one family (exempt holes left out), as
    /// the fewest disjoint prefixes: what a DNSBL of the end-user space
    /// lists (`egress publish`), where nothing is matched "exempt first".
    pub fn blocked_prefixes(&self, family: Family) -> Vec<Prefix> {
        let segs = match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        };
        let ranges = segs
            .iter()
            .filter(|s| self.entries[s.entry as usize].blocked)
            .map(|s| Range { family, first: s.first, last: s.last })
            .collect();
        let mut out = Vec::new();
        for r in merge_ranges(ranges) {
            range_to_prefixes(r, &mut out);
        }
        out
    }

    /// The prefix sets the firewalls need for one family: (blocked, exempt).
    ///
    /// "Exempt" is every range decided by an exemption or by a network that
    /// is not blocked; every dialect matches it first and accepts. So the
    /// blocked set may cover exempt holes: a /128 exemption inside a /40
    /// would otherwise cost 89 disjoint prefixes. Of the two correct
    /// choices (blocked ranges alone, or blocked and exempt ranges merged)
    /// the one with fewer prefixes is kept.
    pub fn sets(&self, family: Family) -> (Vec<Prefix>, Vec<Prefix>) {
        let (blocked, _, exempt) = self.staged(family, &|_| true);
        (blocked, exempt)
    }

    /// The sets of a staged rollout at `at_ms`: (enforced, monitored,
    /// exempt). Monitored space is blocked space whose network is in
    /// `mode = "monitor"` then; its rules count and log without a verdict.
    /// Each of the first two may cover exempt holes (matched first), never
    /// the other's space.
    pub fn staged_sets(&self, policy: &Policy, family: Family, at_ms: u64) -> (Vec<Prefix>, Vec<Prefix>, Vec<Prefix>) {
        self.staged(family, &|e: &Entry| {
            e.kind != EntryKind::Network || policy.networks[e.index].mode_at(at_ms) == Mode::Enforce
        })
    }

    fn staged(&self, family: Family, enforced: &dyn Fn(&Entry) -> bool) -> (Vec<Prefix>, Vec<Prefix>, Vec<Prefix>) {
        let segs = match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        };
        let ranges = |f: &dyn Fn(&Entry) -> bool| -> Vec<Range> {
            segs.iter()
                .filter(|s| f(&self.entries[s.entry as usize]))
                .map(|s| Range { family, first: s.first, last: s.last })
                .collect()
        };
        let to_prefixes = |r: Vec<Range>| {
            let mut out = Vec::new();
            for r in merge_ranges(r) {
                range_to_prefixes(r, &mut out);
            }
            out
        };
        let exempt = to_prefixes(ranges(&|e| !e.blocked));
        let smallest = |stage: &dyn Fn(&Entry) -> bool| {
            let disjoint = to_prefixes(ranges(&|e| e.blocked && stage(e)));
            if disjoint.is_empty() {
                return disjoint;
            }
            let covering = to_prefixes(ranges(&|e| !e.blocked || stage(e)));
            if covering.len() < disjoint.len() {
                covering
            } else {
                disjoint
            }
        };
        let enforce = smallest(&|e| enforced(e));
        let monitor = smallest(&|e| !enforced(e));
        (enforce, monitor, exempt)
    }
}
