//! Fixed-size per-subscriber state for the flow analysis ([`crate::report`]):
//! what used to be computed from every flow's (time, destination), kept
//! as flows arrive so memory follows the subscribers, never the flows.
//!
//! - [`Destinations`]: flows per destination for the first
//!   [`MAX_DESTINATIONS`] destinations, the number of distinct destinations
//!   exactly up to [`DISTINCT_EXACT`], and beyond that estimated with a
//!   HyperLogLog sketch of
//!   [`SKETCH_REGISTERS`] one-byte registers (standard error about 6.5 %).
//! - [`Stream`]: the peak distinct destinations within the spambot window
//!   and the peak flows within one minute. Flows are taken in start-time
//!   order through a reorder buffer of [`REORDER`] flows per subscriber
//!   (exporters send a flow when it ends, so start times arrive out of
//!   order); a flow that starts before one already taken counts as
//!   starting then (and is counted as late). At most
//!   max([`WINDOW_DESTINATIONS`], threshold) destinations are tracked within
//!   one window and [`RATE_CAP`] flow starts within one minute: a peak that
//!   reaches its cap is a lower bound.
//! - [`Times`]: the flows' start times in at most [`TIME_BUCKETS`]
//!   buckets (adjacent times merged when full), for "port-25 flows at or
//!   after the first inbound proxy connection", whenever that is known.
//!
//! Each figure that a cap made an estimate is named in the row's
//! `estimated` list.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv6Addr};

/// Destinations whose flows are counted one by one, per subscriber.
pub const MAX_DESTINATIONS: usize = 32;
/// Distinct destinations counted exactly, per subscriber (as 64-bit hashes).
pub const DISTINCT_EXACT: usize = 512;
/// Registers of the distinct-destination sketch (a power of two).
pub const SKETCH_REGISTERS: usize = 256;
/// Flows held per subscriber to be taken in start-time order.
pub const REORDER: usize = 32;
/// Distinct destinations tracked within one window (at least the spambot threshold).
pub const WINDOW_DESTINATIONS: usize = 32;
/// Flow starts tracked within one minute.
pub const RATE_CAP: usize = 128;
/// Buckets of the start-time histogram.
pub const TIME_BUCKETS: usize = 32;

/// An address as one number: IPv4 as its IPv4-mapped IPv6 address.
#[inline]
pub(crate) fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

#[inline]
pub(crate) fn addr(k: u128) -> IpAddr {
    Ipv6Addr::from(k).to_canonical()
}

#[inline]
pub(crate) fn mix(k: u128) -> u64 {
    // splitmix64's finalizer over both halves.
    let mut z = (k as u64) ^ ((k >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Flows per destination (the first [`MAX_DESTINATIONS`]) and the
/// distinct destinations: exact up to [`DISTINCT_EXACT`] (a set of 64-bit
/// hashes), estimated by the sketch beyond.
///
/// A flow is matched against a 32-bit tag of each counted destination
/// first (one or two cache lines), then against the address: the rows are
/// many and their state is touched once per flow, so cache lines are the cost.
#[derive(Debug, Clone, Default)]
pub(crate) struct Destinations {
    tags: Vec<u32>,
    counted: Vec<(u128, u64)>,
    /// Open addressing, a power of two long, 0 for empty, at most half full.
    seen: Vec<u64>,
    distinct: usize,
    sketch: Option<Box<[u8; SKETCH_REGISTERS]>>,
}

impl Destinations {
    #[cfg(test)]
    pub fn add(&mut self, dst: IpAddr) {
        self.add_key(key(dst));
    }

    /// A flow to the destination whose [`key`] is `k`.
    #[cfg(test)]
    pub fn add_key(&mut self, k: u128) {
        self.add_hashed(k, mix(k));
    }

    /// A flow to the destination whose [`key`] is `k` and whose [`mix`]
    /// is `h` (computed once per flow by the caller, who needs it too).
    #[inline]
    pub fn add_hashed(&mut self, k: u128, h: u64) {
        // Every counted destination's hash is in `seen`, so a destination
        // new to `seen` is not counted yet and the tags need no scan: the
        // common case (a new destination) touches one line of `seen`.
        let repeat = match &mut self.sketch {
            Some(s) => {
                sketch_add(&mut s[..], h);
                true
            }
            None => !self.see(h.max(1)),
        };
        let tag = h as u32;
        if repeat {
            for (i, &t) in self.tags.iter().enumerate() {
                if t == tag && self.counted[i].0 == k {
                    self.counted[i].1 += 1;
                    return;
                }
            }
        }
        if self.counted.len() < MAX_DESTINATIONS {
            room(&mut self.tags, MAX_DESTINATIONS);
            room(&mut self.counted, MAX_DESTINATIONS);
            self.tags.push(tag);
            self.counted.push((k, 1));
        }
    }

    /// The slot of the exact set where the destination whose [`mix`] is
    /// `h` is looked for first: reading it ahead brings it into cache.
    #[inline]
    pub fn warm(&self, h: u64) -> u64 {
        match self.seen.len() {
            0 => 0,
            n => self.seen[h.max(1) as usize & (n - 1)],
        }
    }

    /// Adds a hash to the exact set; false when it was there already.
    fn see(&mut self, h: u64) -> bool {
        if self.seen.is_empty() {
            self.seen = vec![0; 16];
        }
        let mask = self.seen.len() - 1;
        let mut i = h as usize & mask;
        while self.seen[i] != 0 {
            if self.seen[i] == h {
                return false;
            }
            i = (i + 1) & mask;
        }
        self.seen[i] = h;
        self.distinct += 1;
        if self.distinct > DISTINCT_EXACT {
            let mut s = Box::new([0u8; SKETCH_REGISTERS]);
            for &h in self.seen.iter().filter(|&&h| h != 0) {
                sketch_add(&mut s[..], h);
            }
            self.sketch = Some(s);
            self.seen = Vec::new();
        } else if self.distinct * 2 > self.seen.len() {
            let grown = vec![0; self.seen.len() * 2];
            let old = std::mem::replace(&mut self.seen, grown);
            let mask = self.seen.len() - 1;
            for h in old.into_iter().filter(|&h| h != 0) {
                let mut i = h as usize & mask;
                while self.seen[i] != 0 {
                    i = (i + 1) & mask;
                }
                self.seen[i] = h;
            }
        }
        true
    }

    /// Distinct destinations, and whether that is an estimate.
    pub fn distinct(&self) -> (usize, bool) {
        match &self.sketch {
            None => (self.distinct, false),
            Some(s) => (sketch_estimate(&s[..]).max(DISTINCT_EXACT + 1), true),
        }
    }

    /// The counted destinations and their flows, most flows first; all of
    /// them when there are at most [`MAX_DESTINATIONS`].
    pub fn list(&self) -> Vec<(IpAddr, u64)> {
        let mut v: Vec<(IpAddr, u64)> = self.counted.iter().map(|d| (addr(d.0), d.1)).collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    pub fn heap_bytes(&self) -> usize {
        self.tags.capacity() * 4
            + self.counted.capacity() * std::mem::size_of::<(u128, u64)>()
            + self.seen.capacity() * 8
            + self.sketch.as_ref().map_or(0, |_| SKETCH_REGISTERS)
    }
}

/// Adds a hash to a HyperLogLog sketch of `s.len()` one-byte registers
/// (a power of two).
pub(crate) fn sketch_add(s: &mut [u8], h: u64) {
    debug_assert!(s.len().is_power_of_two() && s.len() > 1);
    let bits = s.len().trailing_zeros();
    let j = (h >> (64 - bits)) as usize;
    let rank = ((h << bits) | (1 << (bits - 1))).leading_zeros() as u8 + 1;
    s[j] = s[j].max(rank);
}

/// The distinct hashes a sketch of [`sketch_add`] has seen, estimated.
pub(crate) fn sketch_estimate(s: &[u8]) -> usize {
    let m = s.len() as f64;
    let sum: f64 = s.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
    let e = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
    let zeros = s.iter().filter(|&&r| r == 0).count();
    let e = if e <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { e };
    e.round() as usize
}

/// Room for one more element in a row's array that never holds more than
/// `cap`: arrays start small (most rows get few flows) and grow four-fold
/// up to the cap, not two-fold (each growth is an allocation and a copy,
/// for every array of every busy row: the doubling was a tenth of the
/// analysis).
#[inline]
fn room<T>(v: &mut Vec<T>, cap: usize) {
    if v.len() == v.capacity() {
        v.reserve_exact(grown(v.capacity(), cap) - v.len());
    }
}

/// [`room`] for a row's queue.
#[inline]
fn room_in_queue<T>(v: &mut VecDeque<T>, cap: usize) {
    if v.len() == v.capacity() {
        v.reserve_exact(grown(v.capacity(), cap) - v.len());
    }
}

/// The next capacity of a row's array of at most `cap` elements that is full at `now`.
#[inline]
fn grown(now: usize, cap: usize) -> usize {
    (now * 4).max(4).min(cap.max(now + 1))
}

/// A flow held by [`Stream`]'s reorder buffer: its start, its
/// destination's [`key`] and window tag ([`window_tag`], kept so that it
/// is computed once per flow). 32 bytes, as (start, key) alone are.
#[derive(Debug, Clone, Copy)]
struct Pending {
    t: u64,
    tag: u32,
    k: u128,
}

impl Pending {
    /// Taken after `o`: in (start, destination) order.
    #[inline]
    fn after(&self, o: &Pending) -> bool {
        (self.t, self.k) > (o.t, o.k)
    }
}

/// A destination's tag in [`Stream`]'s window: 32 bits of its [`mix`]
/// with the low bit set, so that a killed entry (the bit cleared) matches
/// no lookup and tells it is dead without hashing its key again.
#[inline]
fn window_tag(h: u64) -> u32 {
    h as u32 | 1
}

/// The window peaks, computed over flows taken in start-time order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stream {
    /// Flows not yet taken, at most [`REORDER`], in (start, destination)
    /// order: flows mostly arrive in start order, so a new one goes at or
    /// near the back and the earliest leaves from the front (a heap moved
    /// every flow through its levels).
    pending: VecDeque<Pending>,
    /// The latest start time taken.
    taken: Option<u64>,
    /// Destinations seen within the window before `taken`: tag, address
    /// and last start, in three arrays (the tags are scanned per flow), in
    /// the order they were last seen, so the last starts ascend and those
    /// that leave the window leave from the front, at `head`: nothing is
    /// moved per flow (compacting the arrays as each one left was most of
    /// the cost of a flow whose window is full). A destination seen again
    /// is appended anew and its earlier entry killed: the low bit of its
    /// tag cleared ([`window_tag`]), so it matches no lookup of its
    /// address. The arrays are compacted only when they reach twice the
    /// cap, at most once every `cap` flows.
    recent_tags: Vec<u32>,
    recent_keys: Vec<u128>,
    recent_last: Vec<u64>,
    head: usize,
    /// One bit per value of a tag's top byte, set for every entry of the
    /// arrays, live or not, since they were last compacted: a destination
    /// whose bit is clear is not in the window, so the scan is skipped.
    /// A spambot's flows mostly go to new destinations, each of which
    /// scanned a full window.
    near: [u64; 4],
    /// Live entries at and after `head`: the distinct destinations in the window.
    live: usize,
    pub peak_destinations: usize,
    pub destinations_capped: bool,
    /// Starts within the minute before `taken`.
    minute: VecDeque<u64>,
    pub peak_rate: usize,
    pub rate_capped: bool,
    /// Flows that started before a flow already taken (beyond the reorder buffer).
    pub late: u64,
}

impl Stream {
    /// A flow that started at `t` to the destination whose [`key`] is `k`.
    #[cfg(test)]
    pub fn add_key(&mut self, t: u64, k: u128, window_ms: u64, cap: usize) {
        self.add_hashed(t, k, mix(k), window_ms, cap);
    }

    /// A flow that started at `t` to the destination whose [`key`] is `k`
    /// and whose [`mix`] is `h`.
    #[inline]
    pub fn add_hashed(&mut self, t: u64, k: u128, h: u64, window_ms: u64, cap: usize) {
        let v = Pending { t, tag: window_tag(h), k };
        if self.pending.len() >= REORDER {
            // Full: the earliest of the held flows and this one is taken.
            let first = self.pending.front().copied().expect("REORDER > 0");
            if !v.after(&first) {
                return self.take(v, window_ms, cap);
            }
            self.pending.pop_front();
            self.take(first, window_ms, cap);
        }
        room_in_queue(&mut self.pending, REORDER);
        let mut i = self.pending.len();
        while i > 0 && self.pending[i - 1].after(&v) {
            i -= 1;
        }
        // At the back, the common case, without `insert`'s general move
        // (a call per flow even when nothing moves).
        if i == self.pending.len() {
            self.pending.push_back(v);
        } else {
            self.pending.insert(i, v);
        }
    }

    /// Takes the flows still held, in order: the peaks are final.
    pub fn finish(&mut self, window_ms: u64, cap: usize) {
        while let Some(p) = self.pending.pop_front() {
            self.take(p, window_ms, cap);
        }
    }

    fn take(&mut self, Pending { t, tag, k }: Pending, window_ms: u64, cap: usize) {
        let t = match self.taken {
            Some(last) if t < last => {
                self.late += 1;
                last
            }
            _ => t,
        };
        self.taken = Some(t);
        // Distinct destinations whose last flow started within [t - window,
        // t]: those that left it never come back (t only grows), and they
        // are the first ones.
        let lo = t.saturating_sub(window_ms);
        while self.head < self.recent_last.len() && self.recent_last[self.head] < lo {
            if is_live(self.recent_tags[self.head]) {
                self.live -= 1;
            }
            self.head += 1;
        }
        let from = self.head;
        let found = if self.may_hold(tag) {
            find_tag(&self.recent_tags[from..], &self.recent_keys[from..], tag, k)
        } else {
            None
        };
        match found {
            Some(i) => {
                // Seen again: the entry moves to the back, as the latest.
                self.recent_tags[from + i] = tag & !1;
                self.push_recent(tag, k, t, cap);
            }
            None if self.live < cap => {
                self.live += 1;
                self.push_recent(tag, k, t, cap);
            }
            None => self.destinations_capped = true,
        }
        self.peak_destinations = self.peak_destinations.max(self.live);
        // Flows that started within (t - 1 min, t].
        while self.minute.front().is_some_and(|&f| t - f >= 60_000) {
            self.minute.pop_front();
        }
        if self.minute.len() >= RATE_CAP {
            self.minute.pop_front();
            self.rate_capped = true;
        }
        room_in_queue(&mut self.minute, RATE_CAP);
        self.minute.push_back(t);
        self.peak_rate = self.peak_rate.max(self.minute.len());
    }

    /// Whether an entry with this tag may be in the arrays (see `near`).
    #[inline]
    fn may_hold(&self, tag: u32) -> bool {
        let b = (tag >> 24) as usize;
        self.near[b >> 6] >> (b & 63) & 1 != 0
    }

    #[inline]
    fn mark_near(&mut self, tag: u32) {
        let b = (tag >> 24) as usize;
        self.near[b >> 6] |= 1 << (b & 63);
    }

    /// Appends a destination's entry, first dropping the entries that left
    /// (before `head`) and the killed ones when the arrays hold twice the
    /// cap: after that they hold at most `cap`, the live ones.
    fn push_recent(&mut self, tag: u32, k: u128, t: u64, cap: usize) {
        if self.recent_tags.len() >= 2 * cap {
            let mut j = 0;
            self.near = [0; 4];
            for i in self.head..self.recent_tags.len() {
                let live = self.recent_tags[i];
                if is_live(live) {
                    self.recent_tags[j] = live;
                    self.recent_keys[j] = self.recent_keys[i];
                    self.recent_last[j] = self.recent_last[i];
                    self.mark_near(live);
                    j += 1;
                }
            }
            self.recent_tags.truncate(j);
            self.recent_keys.truncate(j);
            self.recent_last.truncate(j);
            self.head = 0;
        }
        room(&mut self.recent_tags, 2 * cap);
        room(&mut self.recent_keys, 2 * cap);
        room(&mut self.recent_last, 2 * cap);
        self.recent_tags.push(tag);
        self.recent_keys.push(k);
        self.recent_last.push(t);
        self.mark_near(tag);
    }

    pub fn heap_bytes(&self) -> usize {
        self.pending.capacity() * std::mem::size_of::<Pending>()
            + self.recent_tags.capacity() * 4
            + self.recent_keys.capacity() * 16
            + self.recent_last.capacity() * 8
            + self.minute.capacity() * std::mem::size_of::<u64>()
    }
}

/// Whether an entry of [`Stream`]'s window is its destination's latest
/// (a killed entry's tag has its low bit cleared: [`window_tag`]).
#[inline]
fn is_live(tag: u32) -> bool {
    tag & 1 != 0
}

/// Where `k` (whose tag is `tag`) is in `keys`. The tags are compared 16
/// at a time without a branch per tag (the set is scanned for every flow
/// and is usually full of other destinations), then the keys of the
/// matching tags.
#[inline]
fn find_tag(tags: &[u32], keys: &[u128], tag: u32, k: u128) -> Option<usize> {
    for (c, chunk) in tags.chunks(16).enumerate() {
        let mut m = chunk.iter().enumerate().fold(0u32, |m, (j, &t)| m | u32::from(t == tag) << j);
        while m != 0 {
            let i = c * 16 + m.trailing_zeros() as usize;
            if keys[i] == k {
                return Some(i);
            }
            m &= m - 1;
        }
    }
    None
}

/// Start times in at most 2 x [`TIME_BUCKETS`] buckets (merged back to
/// [`TIME_BUCKETS`] when full): (first, last, flows), ascending and disjoint.
#[derive(Debug, Clone, Default)]
pub(crate) struct Times {
    buckets: Vec<(u64, u64, u64)>,
}

impl Times {
    #[inline]
    pub fn add(&mut self, t: u64) {
        // Start times mostly grow: the last bucket first.
        let i = match self.buckets.last_mut() {
            Some(b) if b.1 < t => self.buckets.len(),
            Some(b) if b.0 <= t => {
                b.2 += 1;
                return;
            }
            _ => self.buckets.partition_point(|b| b.1 < t),
        };
        if let Some(b) = self.buckets.get_mut(i).filter(|b| b.0 <= t) {
            b.2 += 1;
            return;
        }
        room(&mut self.buckets, 2 * TIME_BUCKETS);
        self.buckets.insert(i, (t, t, 1));
        if self.buckets.len() >= 2 * TIME_BUCKETS {
            self.merge();
        }
    }

    /// Back to [`TIME_BUCKETS`] buckets, merging the adjacent ones closest
    /// in time (a gap is merged when it is among the smallest).
    fn merge(&mut self) {
        // In place, the gaps on the stack: this runs every TIME_BUCKETS
        // new start times of a row.
        let mut gaps = [0u64; 2 * TIME_BUCKETS];
        let n = self.buckets.len() - 1;
        for (g, w) in gaps.iter_mut().zip(self.buckets.windows(2)) {
            *g = w[1].0 - w[0].1;
        }
        let excess = self.buckets.len() - TIME_BUCKETS;
        let (_, &mut cut, _) = gaps[..n].select_nth_unstable(excess - 1);
        // Gaps below the cut all merge; gaps equal to it, as many as remain.
        let mut equal = excess - self.buckets.windows(2).filter(|w| w[1].0 - w[0].1 < cut).count();
        let mut j = 0;
        for i in 1..self.buckets.len() {
            let b = self.buckets[i];
            let last = &mut self.buckets[j];
            let gap = b.0 - last.1;
            if gap < cut || (gap == cut && equal > 0) {
                if gap == cut {
                    equal -= 1;
                }
                last.1 = b.1;
                last.2 += b.2;
            } else {
                j += 1;
                self.buckets[j] = b;
            }
        }
        self.buckets.truncate(j + 1);
    }

    /// Flows that started at or after `from`, the first such start, and
    /// whether both are exact (no bucket spans `from`: otherwise the count
    /// includes that bucket's flows and the start is its last).
    pub fn since(&self, from: u64) -> (u64, Option<u64>, bool) {
        let mut n = 0;
        let mut first = None;
        let mut exact = true;
        for b in self.buckets.iter().rev() {
            if b.0 >= from {
                n += b.2;
                first = Some(b.0);
            } else if b.1 >= from {
                n += b.2;
                first = Some(b.1);
                exact = false;
            } else {
                break;
            }
        }
        (n, first, exact)
    }

    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<(u64, u64, u64)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sketch_estimates_within_its_error() {
        for n in [600usize, 1000, 10_000, 100_000] {
            let mut d = Destinations::default();
            for i in 0..n {
                d.add(IpAddr::from([192, (i >> 16) as u8, (i >> 8) as u8, i as u8]));
                // Repeats change nothing.
                d.add(IpAddr::from([192, 0, 0, 1]));
            }
            let (e, estimated) = d.distinct();
            assert!(estimated);
            let err = (e as f64 - n as f64).abs() / n as f64;
            assert!(err < 0.2, "{n}: estimated {e}");
            assert_eq!(d.list().len(), MAX_DESTINATIONS);
            assert_eq!(d.heap_bytes(), MAX_DESTINATIONS * (4 + 32) + SKETCH_REGISTERS);
        }
        let mut d = Destinations::default();
        for i in 0..DISTINCT_EXACT {
            d.add(IpAddr::from([192, 0, (i >> 8) as u8, i as u8]));
        }
        assert_eq!(d.distinct(), (DISTINCT_EXACT, false));
    }

    /// Past its cap too, the window holds what a map of each destination's
    /// last start does when it forgets those that left the window and
    /// refuses new ones while full: the peak, and whether the cap was hit.
    #[test]
    fn window_peaks_follow_a_map_of_last_starts_past_the_cap() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..200 {
            let cap = WINDOW_DESTINATIONS + (next() % 8) as usize;
            let window = 1 + next() % 50_000;
            // Few destinations: most flows see one again; many: the window fills.
            let ndst = 1 + next() % if round % 2 == 0 { 40 } else { 4000 };
            let mut s = Stream::default();
            let mut map: std::collections::HashMap<u128, u64> = Default::default();
            let (mut peak, mut capped, mut t) = (0, false, 0u64);
            for _ in 0..3000 {
                // Distinct start times: the reorder buffer keeps them in this order.
                t += 1 + next() % 2000;
                let d = next() % ndst;
                let k = key(IpAddr::from([192, 0, (d >> 8) as u8, d as u8]));
                s.add_key(t, k, window, cap);
                map.retain(|_, last| *last >= t.saturating_sub(window));
                if map.contains_key(&k) || map.len() < cap {
                    map.insert(k, t);
                } else {
                    capped = true;
                }
                peak = peak.max(map.len());
            }
            s.finish(window, cap);
            assert_eq!((s.peak_destinations, s.destinations_capped), (peak, capped), "round {round}");
            assert!(
                s.heap_bytes()
                    <= (REORDER + 1).next_power_of_two() * 32
                        + (2 * cap).next_power_of_two() * 28
                        + RATE_CAP.next_power_of_two() * 8
            );
        }
    }

    #[test]
    fn addresses_round_trip_through_keys() {
        for ip in ["192.0.2.1", "2001:db8::1", "::1", "0.0.0.0"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(addr(key(ip)), ip);
        }
    }

    #[test]
    fn times_since_is_exact_until_buckets_merge() {
        let mut t = Times::default();
        for s in [5000u64, 1000, 3000, 3000, 9000] {
            t.add(s);
        }
        assert_eq!(t.since(3000), (4, Some(3000), true));
        assert_eq!(t.since(3001), (2, Some(5000), true));
        assert_eq!(t.since(10_000), (0, None, true));
        for s in 0..1000u64 {
            t.add(s * 7);
        }
        assert!(t.buckets.len() < 2 * TIME_BUCKETS);
        let (n, first, _) = t.since(0);
        assert_eq!((n, first), (1005, Some(0)));
    }
}
