//! Who still tries port 25: flow records folded per subscriber.
//!
//! A flow counts when it is TCP to a blocked port from an address the policy
//! blocks (what the firewall drops, or would drop once deployed). Per
//! subscriber: flows, packets, bytes, distinct destinations, first and last
//! seen, and the spambot flag: at least `threshold` distinct destination
//! addresses within `window` (a mail client talks to one or two servers; a
//! spambot talks to many MXes). With `block_at`, counts are split into
//! before and after the block went live.
//!
//! With an attribution index ([`Analyzer::attribute`]), each flow is also
//! looked up by its source address and start time, and rows are per
//! address and session: one address held by two subscribers in turn gives
//! two rows, each naming its subscriber and the session or lease that
//! matched. Nothing is kept per flow for that: a row per (address, session).
//!
//! IPv6 rows are per prefix ([`Sender`]): the session's delegated prefix,
//! else a /64 ([`Options::ipv6_prefix_len`]). Memory then follows the
//! subscribers, not the addresses their hosts choose; and rows, and the
//! open-proxy evidence ([`crate::inbound`]), have a hard cap each
//! ([`Options::max_rows`], [`Options::max_inbound`]): flows past it are
//! counted, never kept.

use crate::attribution::cgnat::{Block, NatIndex};
use crate::attribution::{Index, Session};
use crate::flow::Flow;
use crate::inbound::InboundMap;
pub use crate::inbound::{Inbound, PROXY_PORTS};
use crate::policy::Policy;
use crate::rows::{RowIndex, RowKey};
pub use crate::sender::Sender;
use crate::table::{EntryKind, Table, NONE};
use crate::window::{Destinations, Stream, Times, WINDOW_DESTINATIONS};
use serde::Serialize;
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub window_ms: u64,
    pub threshold: usize,
    pub block_at_ms: Option<u64>,
    /// The prefix length of an IPv6 row no session names (a session's
    /// row is its prefix that matched): a /64 is one link, a subscriber's
    /// LAN.
    pub ipv6_prefix_len: u8,
    /// Rows kept at most: a new row past it is not made, and its flows
    /// are counted in [`Analyzer::flows_past_row_cap`].
    pub max_rows: usize,
    /// Subscribers whose inbound proxy-port connections are kept at most
    /// (past it: [`Analyzer::inbound_flows_past_cap`]).
    pub max_inbound: usize,
}

/// Rows kept at most by default: more than the subscribers that try port
/// 25 in any network seen so far. A row holds about 1 KB while flows are
/// counted and as much again in the report, up to about 17 KB for a row
/// that reached every cap of [`crate::window`] (docs/egress.md).
pub const DEFAULT_MAX_ROWS: usize = 1_000_000;
/// Subscribers with inbound evidence kept at most by default: about 400
/// bytes each ([`crate::inbound`]; 450 MB at the cap in bench/egress-memory.sh).
pub const DEFAULT_MAX_INBOUND: usize = 1_000_000;

impl Default for Options {
    fn default() -> Options {
        Options {
            window_ms: 600_000,
            threshold: 10,
            block_at_ms: None,
            ipv6_prefix_len: 64,
            max_rows: DEFAULT_MAX_ROWS,
            max_inbound: DEFAULT_MAX_INBOUND,
        }
    }
}

/// What is left of a cap that an analyzer and its shards share (a row
/// is made rarely, once per subscriber, so one atomic count costs
/// nothing per flow).
#[derive(Debug, Clone)]
pub(crate) struct Budget(Arc<AtomicUsize>);

impl Budget {
    pub fn new(n: usize) -> Budget {
        Budget(Arc::new(AtomicUsize::new(n)))
    }

    /// One taken, if any is left.
    pub fn take(&self) -> bool {
        self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
    }
}

/// One row's counters: updated as each flow is added (they do not depend
/// on the order of its flows, and the rows' counters together are small
/// enough to stay in cache), so the batch of [`Analyzer::fold`] carries
/// only what the order-dependent figures need.
#[derive(Clone, Copy)]
struct Counts {
    flows: [u64; 2],
    packets: [u64; 2],
    bytes: u64,
    first: u64,
    last: u64,
}

impl Default for Counts {
    fn default() -> Counts {
        Counts { flows: [0; 2], packets: [0; 2], bytes: 0, first: u64::MAX, last: 0 }
    }
}

/// One row's state: counters ([`Counts`], kept beside it) and fixed-size
/// summaries ([`crate::window`]), nothing per flow, so memory follows the
/// rows, never the flows.
#[derive(Default)]
struct Sub {
    entry: u32,
    destinations: Destinations,
    stream: Stream,
    times: Times,
}

impl Sub {
    /// Bytes this row holds on the heap (bounded by the caps of [`crate::window`]).
    fn heap_bytes(&self) -> usize {
        self.destinations.heap_bytes() + self.stream.heap_bytes() + self.times.heap_bytes()
    }
}

/// What a destination port means to [`Analyzer::add_counted`], looked up
/// in a table of every port instead of searched in the policy's list per flow.
const PORT_OTHER: u8 = 0;
const PORT_BLOCKED: u8 = 1;
const PORT_PROXY: u8 = 2;

pub struct Analyzer<'a> {
    policy: &'a Policy,
    table: &'a Table,
    opts: Options,
    /// [`PORT_BLOCKED`], [`PORT_PROXY`] or [`PORT_OTHER`] per destination
    /// port (a blocked port that is also a proxy port is blocked).
    ports: Box<[u8]>,
    /// Per (address or IPv6 prefix, session, CGNAT port block): the row's place in
    /// `subs`. Its slots are small, so it stays in cache; a row's state is
    /// touched only once its flow matched.
    row_of: RowIndex,
    subs: Vec<Sub>,
    /// Each row's counters, at the same place as its `subs` entry.
    counts: Vec<Counts>,
    /// Matched flows not folded into `subs` yet (at most [`BATCH`]), and
    /// where the fold places each bucket of rows in `sorted`.
    held: Vec<Held>,
    bucket_at: Vec<u32>,
    /// The held flows placed bucket by bucket (its first `held.len()`;
    /// never shortened, so it is not filled again for every batch).
    sorted: Vec<Held>,
    /// The destinations' hashes of one row's flows in a fold (at most [`BATCH`]).
    hashes: Vec<u64>,
    attribution: Option<(&'a Index, &'a [String])>,
    nat: Option<&'a NatIndex>,
    pub flows_seen: u64,
    pub flows_matched: u64,
    /// Of the matched flows, with an attribution index: those a session
    /// covered, and those none did.
    pub flows_attributed: u64,
    pub flows_unattributed: u64,
    /// With [`Analyzer::only_before`]: each network's cut-off time.
    cutoff: Option<Vec<Option<u64>>>,
    /// Matched flows left out because they started after their network's cut-off.
    pub flows_after_enforcement: u64,
    /// Matched flows (counted in `flows_matched`) of senders that got no
    /// row: [`Options::max_rows`] rows were made already.
    pub flows_past_row_cap: u64,
    /// What is left of [`Options::max_rows`] for this analyzer and its shards.
    rows_left: Budget,
    /// The prefix length whose IPv6 prefixes never hold two rows' flows:
    /// flows are split into shards by it ([`Prefilter::shard`]).
    v6_shard_len: u8,
    /// Inbound proxy-port connections per subscriber in blocked space.
    inbound: InboundMap,
}

/// See [`Analyzer::prefilter`].
#[derive(Clone)]
pub struct Prefilter<'a> {
    ports: Box<[u8]>,
    table: &'a Table,
    v6_shard_len: u8,
}

impl Prefilter<'_> {
    /// Whether [`Analyzer::add_counted`] may do more with `f` than count
    /// it (the same tests): `Some` with what the tests found, to be handed
    /// to [`Analyzer::add_wanted`] with the flow, so that the source
    /// address is looked up in the policy once per flow, not twice.
    #[inline]
    pub fn wants(&self, f: &Flow) -> Option<Wanted> {
        classify(&self.ports, self.table, f)
    }

    /// Whether [`Prefilter::wants`] may keep a flow of this protocol to
    /// this destination port: `false` means it would not, so a decoder
    /// need not build the flow (see `flow::nfcapd::decode_block_where`).
    #[inline]
    pub fn may_want(&self, proto: u8, dst_port: u16) -> bool {
        proto == 6 && self.ports[dst_port as usize] != PORT_OTHER
    }

    /// Which of `n` shards of the analysis ([`Analyzer::shard`]) takes a
    /// flow that [`Prefilter::wants`] kept: chosen by the subscriber, the
    /// source of a flow to a blocked port and the destination of an
    /// inbound proxy-port connection (an IPv6 one by a prefix no row's
    /// prefix is wider than), so every row and the inbound evidence joined
    /// to it are one shard's alone.
    #[inline]
    pub fn shard(&self, w: Wanted, f: &Flow, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        let subscriber = if w.0 == NONE { f.dst } else { f.src };
        let k = Sender::of(subscriber, self.v6_shard_len).ip;
        // The high word of hash x n: a multiply, where a remainder by a
        // number known only at run time was a division per flow.
        ((u128::from(crate::window::mix(crate::window::key(k))) * n as u128) >> 64) as usize
    }
}

/// What [`Prefilter::wants`] found out about a flow it keeps: the policy
/// entry of its source (blocked space, to a blocked port), or [`NONE`]
/// for an inbound connection on a proxy port kept by [`inbound_kept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted(u32);

/// The tests [`Analyzer::add_counted`] makes before it keeps anything of
/// a flow, and their answer. Inlined into the decoders' loops: it runs
/// for every flow read, and a call moved each flow to memory first.
#[inline(always)]
fn classify(ports: &[u8], table: &Table, f: &Flow) -> Option<Wanted> {
    if f.proto != 6 {
        return None;
    }
    match ports[f.dst_port as usize] {
        PORT_BLOCKED => {
            let entry = table.lookup(f.src);
            table.is_blocked(entry).then_some(Wanted(entry))
        }
        PORT_PROXY => inbound_kept(table, f).then_some(Wanted(NONE)),
        _ => None,
    }
}

/// An inbound connection on a proxy port is kept when it comes from
/// outside the policy's space to an address in blocked space.
#[inline]
fn inbound_kept(table: &Table, f: &Flow) -> bool {
    table.lookup(f.src) == crate::table::NONE && table.is_blocked(table.lookup(f.dst))
}

/// Matched flows held before they are folded into their rows
/// ([`Analyzer::fold`]): two fixed buffers (32 bytes a flow, 1 MB each:
/// as held, and gathered row by row), whatever the number of flows. A
/// fold fetches each row's state once for all of its flows in the batch,
/// so the larger the batch, the more flows share that fetch: with 2,000
/// rows, 16,384 flows were about 8 a row and 32,768 about 16. With the
/// gathering copy, 32,768 took as much CPU as 65,536 (issue 20 bench).
const BATCH: usize = 32_768;

/// Rows a thread of [`Analyzer::rows`] makes at least: below that, one
/// thread does it faster than starting another.
const ROWS_PER_THREAD: usize = 256;

/// A matched flow waiting in the batch: what its row's order-dependent
/// figures need (destinations, windows, start times; the counters were
/// added already). 32 bytes: the fold's gathering copy of the batch was
/// most of its cost at 64.
#[derive(Clone, Copy)]
struct Held {
    row: u32,
    start_ms: u64,
    /// The destination as [`crate::window::key`].
    dst: u128,
}

/// No session (attribution off, or none covered the flow).
const NO_SESSION: u32 = u32::MAX;

/// Who held the address at the flow's time, and the session that says so.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Attributed {
    pub subscriber: String,
    /// user-name, calling-station-id, remote-id, circuit-id, hwaddr, client-id, duid
    pub subscriber_kind: &'static str,
    /// radius, radacct-csv, kea, dhcpd, dnsmasq
    pub source: &'static str,
    /// Acct-Session-Id (with the NAS), or the lease's address and host name.
    pub session: String,
    /// The session's address or delegated prefix that covered the flow's source.
    pub prefix: String,
    pub session_start: String,
    /// `None`: still open at the end of the data.
    pub session_end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_id: Option<String>,
    /// `file:line` of the session's first record.
    pub record: String,
    /// Behind a CGNAT: the port block that mapped the flow's public
    /// address and port to the inside address the session names
    /// (`OUTSIDE:FIRST-LAST -> INSIDE START..END file:line`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgnat: Option<String>,
}

fn block_text(b: &Block, files: &[String]) -> String {
    format!(
        "{}:{}-{} -> {} {}..{} {}:{}",
        b.outside,
        b.first,
        b.last,
        b.inside,
        rfc3339(b.start_ms),
        b.end_ms.map_or_else(|| "open".to_owned(), rfc3339),
        files.get(b.origin.file as usize).map_or("?", String::as_str),
        b.origin.line
    )
}

impl Attributed {
    /// A port block with no session for its inside address: the inside
    /// address is what is known.
    fn nat_only(b: &Block, files: &[String]) -> Attributed {
        Attributed {
            subscriber: b.inside.to_string(),
            subscriber_kind: "inside-address",
            source: "cgnat",
            session: String::new(),
            prefix: b.inside.to_string(),
            session_start: rfc3339(b.start_ms),
            session_end: b.end_ms.map(rfc3339),
            remote_id: None,
            circuit_id: None,
            record: format!("{}:{}", files.get(b.origin.file as usize).map_or("?", String::as_str), b.origin.line),
            cgnat: Some(block_text(b, files)),
        }
    }

    /// `s`'s prefix named is the longest that holds all of `sender`.
    fn new(s: &Session, sender: Sender, files: &[String]) -> Attributed {
        let (family, v) = crate::prefix::ip_to_u128(sender.ip);
        let prefix = s
            .prefixes
            .iter()
            .filter(|p| p.contains(family, v) && p.len <= sender.len)
            .max_by_key(|p| p.len)
            .or(s.prefixes.first());
        let clean = crate::attribution::clean;
        Attributed {
            subscriber: clean(&s.subscriber),
            subscriber_kind: s.kind.as_str(),
            source: s.source.as_str(),
            session: clean(&s.id),
            prefix: prefix.map(ToString::to_string).unwrap_or_default(),
            session_start: rfc3339(s.start_ms),
            session_end: s.end_ms.filter(|e| *e != u64::MAX).map(rfc3339),
            remote_id: s.remote_id.as_deref().map(clean),
            circuit_id: s.circuit_id.as_deref().map(clean),
            record: format!("{}:{}", files.get(s.origin.file as usize).map_or("?", String::as_str), s.origin.line),
            cgnat: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Row {
    /// The address, or the IPv6 prefix, the row's flows came from.
    pub subscriber: Sender,
    pub network: String,
    pub class: String,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
    pub distinct_destinations: usize,
    pub first_seen: String,
    pub last_seen: String,
    /// Most distinct destinations within one window.
    pub peak_destinations_in_window: usize,
    pub spambot: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flows_before_block: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flows_after_block: Option<u64>,
    /// With attribution: `null` when no session covered the address then.
    #[serde(skip_serializing_if = "Attribution::is_off")]
    pub attribution: Attribution,
    /// Each destination and its flows, most flows first (for `egress plan`):
    /// the first [`crate::window::MAX_DESTINATIONS`] seen when there were more.
    #[serde(skip)]
    pub destinations: Vec<(IpAddr, u64)>,
    /// Most flows that started within one minute (for `egress plan`).
    #[serde(skip)]
    pub peak_flows_per_minute: usize,
    /// `first_seen` in Unix milliseconds.
    #[serde(skip)]
    pub first_ms: u64,
    /// Inbound connections on open-proxy ports to this address from
    /// outside the policy's space (for `egress plan`), if any were seen.
    #[serde(skip)]
    pub inbound: Option<Inbound>,
    /// The figures that are estimates because a per-row cap of
    /// [`crate::window`] was reached: `distinct_destinations` (counted by a
    /// sketch beyond [`crate::window::DISTINCT_EXACT`]), `peak_destinations_in_window` and `peak_flows_per_minute`
    /// (lower bounds: their cap was reached, or flows arrived further out
    /// of start-time order than the reorder buffer holds), `inbound` (the
    /// port-25 flows after the first inbound connection, counted to a
    /// bucket of start times that spans it), `inbound_sources` (past
    /// [`crate::inbound::EXACT_SOURCES`]). Empty: every figure exact.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub estimated: Vec<&'static str>,
}

/// A row's attribution: off (no index given), or the session found (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribution {
    Off,
    On(Option<Box<Attributed>>),
}

impl Attribution {
    fn is_off(&self) -> bool {
        *self == Attribution::Off
    }

    pub fn session(&self) -> Option<&Attributed> {
        match self {
            Attribution::On(Some(a)) => Some(&**a),
            _ => None,
        }
    }
}

impl Serialize for Attribution {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.session().serialize(s)
    }
}

impl<'a> Analyzer<'a> {
    pub fn new(policy: &'a Policy, table: &'a Table, opts: Options) -> Analyzer<'a> {
        let mut ports = vec![PORT_OTHER; 1 << 16].into_boxed_slice();
        for &p in PROXY_PORTS {
            ports[p as usize] = PORT_PROXY;
        }
        for &p in &policy.blocked_ports {
            ports[p as usize] = PORT_BLOCKED;
        }
        Analyzer {
            policy,
            table,
            opts,
            ports,
            row_of: RowIndex::default(),
            subs: Vec::new(),
            counts: Vec::new(),
            held: Vec::new(),
            bucket_at: Vec::new(),
            sorted: Vec::new(),
            hashes: Vec::new(),
            attribution: None,
            nat: None,
            flows_seen: 0,
            flows_matched: 0,
            flows_attributed: 0,
            flows_unattributed: 0,
            cutoff: None,
            flows_after_enforcement: 0,
            flows_past_row_cap: 0,
            rows_left: Budget::new(opts.max_rows),
            v6_shard_len: opts.ipv6_prefix_len.min(128),
            inbound: InboundMap::new(Budget::new(opts.max_inbound)),
        }
    }

    /// Counts only flows that start before their network's cut-off
    /// (`cutoff[i]` for `policy.networks[i]`; `None`: no cut-off), as
    /// `egress plan` does with each network's enforce_from date.
    pub fn only_before(&mut self, cutoff: Vec<Option<u64>>) {
        self.cutoff = Some(cutoff);
    }

    /// Names the subscriber of every matched flow from `index` (`files`:
    /// the names its records' origins point into).
    pub fn attribute(&mut self, index: &'a Index, files: &'a [String]) {
        self.attribution = Some((index, files));
        // A session's row is its prefix that matched, which may be wider
        // than a row without one.
        self.v6_shard_len = self.v6_shard_len.min(index.shortest_v6_prefix().unwrap_or(128));
    }

    /// Behind a CGNAT: a flow's (source, source port, start) is first
    /// mapped to the inside address by its port block, and that address is
    /// looked up in the attribution index. Needs [`Analyzer::attribute`].
    pub fn attribute_nat(&mut self, nat: &'a NatIndex) {
        self.nat = Some(nat);
    }

    #[inline]
    pub fn add(&mut self, f: &Flow) {
        self.add_counted(f, 1);
    }

    /// An empty analyzer asking the same question (policy, options,
    /// attribution, cut-offs): a shard of the analysis that another thread
    /// feeds the flows [`Prefilter::shard`] gives it, to be taken back with
    /// [`Analyzer::absorb`].
    ///
    /// The caps are shared: rows and inbound evidence are made by all the
    /// shards together at most as often as the options allow.
    pub fn shard(&self) -> Analyzer<'a> {
        let mut a = Analyzer::new(self.policy, self.table, self.opts);
        a.attribution = self.attribution;
        a.nat = self.nat;
        a.cutoff = self.cutoff.clone();
        a.rows_left = self.rows_left.clone();
        a.v6_shard_len = self.v6_shard_len;
        a.inbound = InboundMap::new(self.inbound.budget());
        a
    }

    /// Nothing given yet, not even counted: its flows may be split into
    /// shards by [`Prefilter::shard`] (no row exists yet in the wrong one).
    pub fn is_empty(&self) -> bool {
        self.flows_seen == 0 && self.subs.is_empty() && self.inbound.is_empty() && self.held.is_empty()
    }

    /// Takes in a shard's rows, inbound evidence and counts. The shard and
    /// this analyzer had flows of different subscribers ([`Prefilter::shard`]),
    /// so no row is in both: every figure is the one a single analyzer
    /// given all the flows in the same order computes.
    pub fn absorb(&mut self, mut shard: Analyzer<'a>) {
        self.fold();
        shard.fold();
        self.flows_seen += shard.flows_seen;
        self.flows_matched += shard.flows_matched;
        self.flows_attributed += shard.flows_attributed;
        self.flows_unattributed += shard.flows_unattributed;
        self.flows_after_enforcement += shard.flows_after_enforcement;
        self.flows_past_row_cap += shard.flows_past_row_cap;
        let base = self.subs.len() as u32;
        self.subs.append(&mut shard.subs);
        self.counts.append(&mut shard.counts);
        for (i, k) in shard.row_of.keys().iter().enumerate() {
            // The shard took this row's share of the cap already.
            let (row, new) = self.row_of.get_or_insert_if(*k, || true).expect("always room");
            assert!(new, "a row in two shards: flows of one subscriber went to two shards");
            debug_assert_eq!(row, base + i as u32);
        }
        self.inbound.absorb(shard.inbound);
    }

    /// The tests [`Analyzer::add_counted`] makes before it keeps anything
    /// of a flow, on their own: a flow they refuse is only counted in
    /// `flows_seen`. Readers on other threads drop such flows before they
    /// reach the analyzer (most flows are not TCP to a blocked port from
    /// blocked space, nor inbound on a proxy port) and add them to
    /// `flows_seen` themselves.
    pub fn prefilter(&self) -> Prefilter<'a> {
        Prefilter { ports: self.ports.clone(), table: self.table, v6_shard_len: self.v6_shard_len }
    }

    /// A record that stands for `n` flows (an aggregated nfdump record):
    /// counted `n` times, its packets and destination once.
    #[inline]
    pub fn add_counted(&mut self, f: &Flow, n: u64) {
        match classify(&self.ports, self.table, f) {
            Some(w) => self.add_wanted(f, n, w),
            None => self.flows_seen += n,
        }
    }

    /// A flow (standing for `n`) that this analyzer's [`Prefilter::wants`]
    /// kept, with what it found: what [`Analyzer::add_counted`] does with
    /// it, without the tests made already.
    #[inline]
    pub fn add_wanted(&mut self, f: &Flow, n: u64, Wanted(entry): Wanted) {
        self.flows_seen += n;
        if entry == NONE {
            return self.inbound(f, n);
        }
        if let Some(cutoff) = &self.cutoff {
            let e = &self.table.entries[entry as usize];
            if e.kind == EntryKind::Network && cutoff.get(e.index).copied().flatten().is_some_and(|t| f.start_ms >= t) {
                self.flows_after_enforcement += n;
                return;
            }
        }
        self.flows_matched += n;
        // The row's IPv6 prefix: the session's that matched, else the default.
        let v6_len = self.opts.ipv6_prefix_len;
        let (len, session, block) = match self.attribution {
            None => (v6_len, NO_SESSION, NO_SESSION),
            Some((index, _)) => {
                let block = self.nat.and_then(|nat| nat.lookup(f.src, f.src_port, f.start_ms)).unwrap_or(NO_SESSION);
                let addr = if block == NO_SESSION { f.src } else { self.nat.expect("looked up").block(block).inside };
                match index.lookup_prefix(addr, f.start_ms) {
                    Some((i, len)) => {
                        self.flows_attributed += n;
                        (len, i, block)
                    }
                    None if block != NO_SESSION => {
                        self.flows_attributed += n;
                        (v6_len, NO_SESSION, block)
                    }
                    None => {
                        self.flows_unattributed += n;
                        (v6_len, NO_SESSION, NO_SESSION)
                    }
                }
            }
        };
        let sender = Sender::of(f.src, len);
        let rows_left = &self.rows_left;
        let Some((row, new)) = self.row_of.get_or_insert_if(RowKey { sender, session, block }, || rows_left.take())
        else {
            self.flows_past_row_cap += n;
            return;
        };
        if new {
            self.subs.push(Sub { entry, ..Sub::default() });
            self.counts.push(Counts::default());
        }
        let c = &mut self.counts[row as usize];
        let after = self.opts.block_at_ms.is_some_and(|b| f.start_ms >= b) as usize;
        c.flows[after] += n;
        c.packets[after] += f.packets;
        c.bytes += f.bytes;
        c.first = c.first.min(f.start_ms);
        c.last = c.last.max(f.end_ms.max(f.start_ms));
        self.held.push(Held { row, start_ms: f.start_ms, dst: crate::window::key(f.dst) });
        if self.held.len() >= BATCH {
            self.fold();
        }
    }

    /// Folds the held flows into their rows, row by row (each row's in the
    /// order they came, which is all its figures depend on): a row's state
    /// is fetched from memory once for all of its flows in the batch
    /// instead of once per flow, which was most of the time per flow.
    /// Public so that each shard's last fold runs on its own thread
    /// before [`Analyzer::absorb`] (which folds too, then finds nothing).
    pub fn fold(&mut self) {
        if self.held.is_empty() {
            return;
        }
        // The held flows placed row by row with a counting sort by row
        // (by row modulo the number of buckets beyond 2^16 rows: a bucket
        // then holds a few rows' flows, each in the order they came), in
        // two loops whose reads do not wait on each other: read in place,
        // each flow was a cache miss (the batch fills the core's cache)
        // stalling its row's figures; placed, each row's flows are read in
        // sequence. Sorting (row, place) pairs cost more than the placing.
        let buckets = self.subs.len().next_power_of_two().min(1 << 16);
        let mask = buckets - 1;
        let mut at = std::mem::take(&mut self.bucket_at);
        at.clear();
        at.resize(buckets + 1, 0);
        for h in &self.held {
            at[(h.row as usize & mask) + 1] += 1;
        }
        for b in 1..=buckets {
            at[b] += at[b - 1];
        }
        let mut sorted = std::mem::take(&mut self.sorted);
        if sorted.len() < self.held.len() {
            sorted.resize(self.held.len(), self.held[0]);
        }
        for h in &self.held {
            let b = &mut at[h.row as usize & mask];
            sorted[*b as usize] = *h;
            *b += 1;
        }
        // Now at[b] is where bucket b ends (and b + 1 begins).
        let (window_ms, cap) = (self.opts.window_ms, self.window_cap());
        let mut hashes = std::mem::take(&mut self.hashes);
        let mut from = 0;
        for &to in &at[..buckets] {
            let bucket = &sorted[from as usize..to as usize];
            from = to;
            for these in bucket.chunk_by(|a, b| a.row == b.row) {
                // Each destination hashed once, for the set of seen
                // destinations and the window alike (each hashed it apart).
                hashes.clear();
                hashes.extend(these.iter().map(|h| crate::window::mix(h.dst)));
                let flows = || these.iter().zip(&hashes);
                let s = &mut self.subs[these[0].row as usize];
                // The group's destinations are in random places of the row's
                // set of seen destinations: read them all first, in a loop
                // without branches, so the memory fetches overlap instead of
                // each waiting behind the previous flow's.
                std::hint::black_box(hashes.iter().fold(0, |x, &m| x ^ s.destinations.warm(m)));
                for (h, &m) in flows() {
                    s.destinations.add_hashed(h.dst, m);
                }
                for (h, &m) in flows() {
                    s.stream.add_hashed(h.start_ms, h.dst, m, window_ms, cap);
                    s.times.add(h.start_ms);
                }
            }
        }
        self.held.clear();
        self.bucket_at = at;
        self.sorted = sorted;
        self.hashes = hashes;
    }

    /// Distinct destinations tracked within one window: enough to reach
    /// the spambot threshold.
    fn window_cap(&self) -> usize {
        self.opts.threshold.max(WINDOW_DESTINATIONS)
    }

    /// The most heap bytes any row holds (for the tests that hold it
    /// bounded as flows grow).
    pub fn max_row_heap_bytes(&mut self) -> usize {
        self.fold();
        self.subs.iter().map(Sub::heap_bytes).max().unwrap_or(0)
    }

    /// Matched flows that started before a flow of their row already
    /// taken in start-time order (beyond the reorder buffer of
    /// [`crate::window::REORDER`] flows per row): counted as starting then.
    pub fn flows_late(&mut self) -> u64 {
        self.fold();
        self.subs.iter().map(|s| s.stream.late).sum()
    }

    /// Inbound proxy-port flows to subscribers past [`Options::max_inbound`]:
    /// counted, not kept.
    pub fn inbound_flows_past_cap(&self) -> u64 {
        self.inbound.flows_past_cap
    }

    /// An inbound connection on a proxy port from outside the policy's
    /// space to an address in blocked space ([`inbound_kept`]), kept for
    /// the row its destination's port-25 flows go to: the address (IPv4),
    /// or the prefix of the session holding it then, else its /64 (IPv6).
    fn inbound(&mut self, f: &Flow, n: u64) {
        let v6_len = self.opts.ipv6_prefix_len;
        let len = match self.attribution {
            Some((index, _)) if f.dst.is_ipv6() => index.lookup_prefix(f.dst, f.start_ms).map_or(v6_len, |(_, l)| l),
            _ => v6_len,
        };
        self.inbound.add(Sender::of(f.dst, len), f, n);
    }

    /// Rows sorted: spambots first, then by distinct destinations, flows,
    /// and address, so the output is stable. Rows are made on up to as
    /// many threads as the machine has cores (at most 4): each row's
    /// window is replayed to its end ([`Stream::finish`]), which was a
    /// fifth of `egress flows --nfcapd`'s wall time on one thread. The
    /// windows are finished in place (a copy of each row's window, made so
    /// that flows could still be added in order, cost an allocation per
    /// array of every row): flows added after this are taken after every
    /// flow before it, and counted late if they started earlier.
    pub fn rows(&mut self) -> Vec<Row> {
        self.fold();
        // Each row's key and counters are at its place in `subs`, so that
        // each thread takes its own part of the three to finish.
        let mut subs = std::mem::take(&mut self.subs);
        let this = &*self;
        let keys = this.row_of.keys();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
            .min(keys.len().div_ceil(ROWS_PER_THREAD).max(1));
        let part = keys.len().div_ceil(threads).max(1);
        let make = move |((subs, keys), counts): ((&mut [Sub], &[RowKey]), &[Counts])| -> Vec<Row> {
            subs.iter_mut().zip(keys).zip(counts).map(|((s, k), c)| this.row(*k, s, c)).collect()
        };
        let mut rows: Vec<Row> = if threads == 1 {
            make(((&mut subs, keys), &this.counts))
        } else {
            std::thread::scope(|scope| {
                let made: Vec<_> = subs
                    .chunks_mut(part)
                    .zip(keys.chunks(part))
                    .zip(this.counts.chunks(part))
                    .map(|p| scope.spawn(move || make(p)))
                    .collect();
                made.into_iter().flat_map(|h| h.join().expect("a row thread panicked")).collect()
            })
        };
        self.subs = subs;
        rows.sort_by(|a, b| {
            (b.spambot, b.distinct_destinations, b.flows)
                .cmp(&(a.spambot, a.distinct_destinations, a.flows))
                .then(a.subscriber.cmp(&b.subscriber))
                .then(a.first_seen.cmp(&b.first_seen))
                .then_with(|| {
                    a.attribution.session().map(|x| &x.session).cmp(&b.attribution.session().map(|x| &x.session))
                })
        });
        rows
    }

    /// One row's figures (after [`Analyzer::fold`]), its window finished.
    fn row(&self, RowKey { sender, session, block }: RowKey, s: &mut Sub, c: &Counts) -> Row {
        let e = &self.table.entries[s.entry as usize];
        let (network, class) = match e.kind {
            EntryKind::Network => {
                (self.policy.networks[e.index].name.clone(), self.policy.networks[e.index].class.as_str().to_owned())
            }
            EntryKind::Exempt => (self.policy.exemptions[e.index].name.clone(), "exempt".to_owned()),
        };
        s.stream.finish(self.opts.window_ms, self.window_cap());
        let stream = &s.stream;
        let peak = stream.peak_destinations;
        let (distinct, distinct_estimated) = s.destinations.distinct();
        let destinations = s.destinations.list();
        let mut estimated = Vec::new();
        if distinct_estimated {
            estimated.push("distinct_destinations");
        }
        if stream.destinations_capped || stream.late > 0 {
            estimated.push("peak_destinations_in_window");
        }
        if stream.rate_capped || stream.late > 0 {
            estimated.push("peak_flows_per_minute");
        }
        let attribution = match self.attribution {
            None => Attribution::Off,
            Some((index, files)) => {
                let nat = (block != NO_SESSION).then(|| self.nat.expect("a block came from it").block(block));
                Attribution::On(match (session != NO_SESSION, nat) {
                    (true, nat) => {
                        let inside = nat.map_or(sender, |b| Sender::host(b.inside));
                        let mut a = Attributed::new(&index.session(session), inside, files);
                        a.cgnat = nat.map(|b| block_text(b, files));
                        Some(Box::new(a))
                    }
                    (false, Some(b)) => Some(Box::new(Attributed::nat_only(b, files))),
                    (false, None) => None,
                })
            }
        };
        Row {
            subscriber: sender,
            network,
            class,
            flows: c.flows[0] + c.flows[1],
            packets: c.packets[0] + c.packets[1],
            bytes: c.bytes,
            distinct_destinations: distinct,
            first_seen: rfc3339(c.first),
            last_seen: rfc3339(c.last),
            peak_destinations_in_window: peak,
            spambot: peak >= self.opts.threshold,
            flows_before_block: self.opts.block_at_ms.map(|_| c.flows[0]),
            flows_after_block: self.opts.block_at_ms.map(|_| c.flows[1]),
            attribution,
            destinations,
            peak_flows_per_minute: stream.peak_rate,
            first_ms: c.first,
            inbound: self.inbound.get(&sender).map(|mut i| {
                let (smtp_after, smtp_first_after_ms, exact) = s.times.since(i.first_ms);
                if !exact {
                    estimated.push("inbound");
                }
                if i.sources_estimated {
                    estimated.push("inbound_sources");
                }
                (i.smtp_after, i.smtp_first_after_ms) = (smtp_after, smtp_first_after_ms);
                i
            }),
            estimated,
        }
    }
}

/// Unix milliseconds as RFC 3339 UTC, to the second.
pub fn rfc3339(ms: u64) -> String {
    port25_time::rfc3339_secs(ms / 1000)
}

/// Parses Unix seconds or `YYYY-MM-DDTHH:MM:SSZ` into Unix milliseconds.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is neither Unix seconds nor YYYY-MM-DDTHH:MM:SSZ");
    if let Ok(n) = s.parse::<u64>() {
        // A count of seconds too large for milliseconds in a u64 (past the
        // year 584 million) is no time any log or flow record holds.
        return n.checked_mul(1000).ok_or_else(bad);
    }
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| s.get(r).ok_or_else(bad)?.parse::<i64>().map_err(|_| bad());
    let (y, m, d, hh, mm, ss) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    crate::attribution::civil_ms(y, m, d, hh, mm, ss).ok_or_else(bad)
}

/// `alice (user-name)` and `radius 192.0.2.1/s1 100.64.0.1/32 START..END detail:3`
/// for the table; `-` where no session covered the address.
fn session_text(a: Option<&Attributed>) -> (String, String) {
    match a {
        None => ("-".into(), "-".into()),
        Some(a) => (
            format!("{} ({})", a.subscriber, a.subscriber_kind),
            format!(
                "{} {} {} {}..{} {}{}",
                a.source,
                a.session,
                a.prefix,
                a.session_start,
                a.session_end.as_deref().unwrap_or("open"),
                a.record,
                a.cgnat.as_deref().map_or_else(String::new, |c| format!(" via cgnat {c}"))
            ),
        ),
    }
}

/// A CSV field, quoted when it holds a separator, a quote or a line end.
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

/// `with_attribution`: the ATTRIBUTED TO and SESSION columns.
pub fn table(rows: &[Row], with_block: bool, with_attribution: bool) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{:<39} {:<22} {:>7} {:>8} {:>6} {:>5} {:<20} {:<20} {:<7}",
        "SUBSCRIBER", "NETWORK", "FLOWS", "PACKETS", "DSTS", "PEAK", "FIRST SEEN", "LAST SEEN", "SPAMBOT"
    );
    if with_block {
        let _ = write!(s, " {:>7} {:>7}", "BEFORE", "AFTER");
    }
    if with_attribution {
        let _ = write!(s, " {:<32} SESSION", "ATTRIBUTED TO");
    }
    s.push('\n');
    for r in rows {
        // An estimate past a per-row cap: "~" before a sketch's count, "+"
        // after a lower bound.
        let dsts = if r.estimated.contains(&"distinct_destinations") {
            format!("~{}", r.distinct_destinations)
        } else {
            r.distinct_destinations.to_string()
        };
        let peak = if r.estimated.contains(&"peak_destinations_in_window") {
            format!("{}+", r.peak_destinations_in_window)
        } else {
            r.peak_destinations_in_window.to_string()
        };
        let _ = write!(
            s,
            "{:<39} {:<22} {:>7} {:>8} {:>6} {:>5} {:<20} {:<20} {:<7}",
            r.subscriber.to_string(),
            r.network,
            r.flows,
            r.packets,
            dsts,
            peak,
            r.first_seen,
            r.last_seen,
            if r.spambot { "yes" } else { "no" }
        );
        if with_block {
            let _ = write!(s, " {:>7} {:>7}", r.flows_before_block.unwrap_or(0), r.flows_after_block.unwrap_or(0));
        }
        if with_attribution {
            let (who, session) = session_text(r.attribution.session());
            let _ = write!(s, " {who:<32} {session}");
        }
        s.push('\n');
    }
    s
}

pub fn csv(rows: &[Row], with_block: bool, with_attribution: bool) -> String {
    let mut s = String::from("subscriber,network,class,flows,packets,bytes,distinct_destinations,peak_destinations_in_window,first_seen,last_seen,spambot");
    if with_block {
        s.push_str(",flows_before_block,flows_after_block");
    }
    if with_attribution {
        s.push_str(",attributed_to,subscriber_kind,source,session,prefix,session_start,session_end,remote_id,circuit_id,record");
    }
    s.push('\n');
    for r in rows {
        // Names are restricted to [A-Za-z0-9._-] by the policy parser: no quoting needed.
        let _ = write!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{}",
            r.subscriber,
            r.network,
            r.class,
            r.flows,
            r.packets,
            r.bytes,
            r.distinct_destinations,
            r.peak_destinations_in_window,
            r.first_seen,
            r.last_seen,
            r.spambot
        );
        if with_block {
            let _ = write!(s, ",{},{}", r.flows_before_block.unwrap_or(0), r.flows_after_block.unwrap_or(0));
        }
        if with_attribution {
            match r.attribution.session() {
                None => s.push_str(",,,,,,,,,,"),
                Some(a) => {
                    let fields = [
                        a.subscriber.as_str(),
                        a.subscriber_kind,
                        a.source,
                        &a.session,
                        &a.prefix,
                        &a.session_start,
                        a.session_end.as_deref().unwrap_or(""),
                        a.remote_id.as_deref().unwrap_or(""),
                        a.circuit_id.as_deref().unwrap_or(""),
                        &a.record,
                    ];
                    for f in fields {
                        s.push(',');
                        s.push_str(&csv_field(f));
                    }
                }
            }
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_000_000_000), "2025-11-24T16:00:00Z");
        for t in [0u64, 951_782_400, 1_764_000_000, 4_102_444_800] {
            assert_eq!(parse_time(&rfc3339(t * 1000)).unwrap(), t * 1000);
        }
        for huge in [u64::MAX.to_string(), (u64::MAX / 1000 + 1).to_string()] {
            assert!(parse_time(&huge).unwrap_err().contains("neither Unix seconds"), "{huge}");
        }
        assert!(parse_time("2025-13-01T00:00:00Z").is_err());
        assert_eq!(parse_time("17").unwrap(), 17_000);
    }

    #[test]
    fn rows_per_address_and_session_name_the_subscriber() {
        use crate::attribution::{Origin, Session, Source, SubscriberKind, Warnings};
        let policy = crate::policy::parse(
            "[[network]]\nname = \"res\"\nclass = \"residential\"\nprefixes = [\"198.51.100.0/24\"]\n",
            std::path::Path::new("p.toml"),
        )
        .unwrap();
        let lpm = Table::new(&policy);
        let session = |who: &str, start: u64, end: Option<u64>, line: u32| Session {
            source: Source::Radius,
            subscriber: who.into(),
            kind: SubscriberKind::UserName,
            id: format!("nas/{who}"),
            remote_id: None,
            circuit_id: Some("eth0,1".into()),
            prefixes: vec!["198.51.100.7".parse().unwrap()],
            start_ms: start,
            end_ms: end,
            origin: Origin { file: 0, line },
        };
        let index = Index::build(
            vec![session("alice", 1000, Some(5000), 1), session("bob", 5000, None, 9)],
            &mut Warnings::default(),
        );
        let files = vec!["radacct/detail".to_string()];
        let mut a = Analyzer::new(&policy, &lpm, Options::default());
        a.attribute(&index, &files);
        let flow = |src: &str, t: u64| smtp(src.parse().unwrap(), "192.0.2.1".parse().unwrap(), t);
        for f in [
            flow("198.51.100.7", 2000),
            flow("198.51.100.7", 3000),
            flow("198.51.100.7", 6000),
            flow("198.51.100.8", 6000),
        ] {
            a.add(&f);
        }
        assert_eq!((a.flows_attributed, a.flows_unattributed), (3, 1));
        let rows = a.rows();
        assert_eq!(rows.len(), 3);
        let who: Vec<Option<&str>> =
            rows.iter().map(|r| r.attribution.session().map(|s| s.subscriber.as_str())).collect();
        assert_eq!(who, [Some("alice"), Some("bob"), None]);
        assert_eq!(rows[0].flows, 2);
        assert_eq!(rows[0].attribution.session().unwrap().record, "radacct/detail:1");
        let t = table(&rows, false, true);
        assert!(
            t.contains("alice (user-name)")
                && t.contains("radius nas/bob 198.51.100.7/32 1970-01-01T00:00:05Z..open radacct/detail:9"),
            "{t}"
        );
        let c = csv(&rows, false, true);
        let line = c.lines().nth(1).unwrap();
        assert!(
            line.ends_with(",alice,user-name,radius,nas/alice,198.51.100.7/32,1970-01-01T00:00:01Z,1970-01-01T00:00:05Z,,\"eth0,1\",radacct/detail:1"),
            "{line}"
        );
        assert!(c.lines().nth(3).unwrap().ends_with(",,,,,,,,,,"), "{c}");
        let j = serde_json::to_value(&rows).unwrap();
        assert!(j[2]["attribution"].is_null() && j[1]["attribution"]["session_end"].is_null(), "{j}");
        // Without an index there is no attribution field at all.
        let mut plain = Analyzer::new(&policy, &lpm, Options::default());
        plain.add(&flow("198.51.100.7", 2000));
        assert!(serde_json::to_value(plain.rows()).unwrap()[0].get("attribution").is_none());
    }

    /// The figures as computed before, from every flow's (start, destination).
    fn reference(events: &[(u64, IpAddr)], window: u64, inbound_from: u64) -> (usize, usize, Vec<(IpAddr, u64)>, u64) {
        let mut ev = events.to_vec();
        ev.sort_unstable();
        let mut counts: std::collections::HashMap<IpAddr, usize> = Default::default();
        let (mut lo, mut peak) = (0, 0);
        for hi in 0..ev.len() {
            *counts.entry(ev[hi].1).or_default() += 1;
            while ev[hi].0 - ev[lo].0 > window {
                let c = counts.get_mut(&ev[lo].1).unwrap();
                *c -= 1;
                if *c == 0 {
                    counts.remove(&ev[lo].1);
                }
                lo += 1;
            }
            peak = peak.max(counts.len());
        }
        let (mut lo, mut rate) = (0, 0);
        for hi in 0..ev.len() {
            while ev[hi].0 - ev[lo].0 >= 60_000 {
                lo += 1;
            }
            rate = rate.max(hi - lo + 1);
        }
        let mut per: std::collections::HashMap<IpAddr, u64> = Default::default();
        for e in &ev {
            *per.entry(e.1).or_default() += 1;
        }
        let mut dsts: Vec<(IpAddr, u64)> = per.into_iter().collect();
        dsts.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        (peak, rate, dsts, ev.iter().filter(|e| e.0 >= inbound_from).count() as u64)
    }

    fn one_network() -> Policy {
        crate::policy::parse(
            "[[network]]\nname = \"res\"\nclass = \"residential\"\nprefixes = [\"198.51.100.0/24\"]\n",
            std::path::Path::new("p.toml"),
        )
        .unwrap()
    }

    fn smtp(src: IpAddr, dst: IpAddr, t: u64) -> Flow {
        Flow {
            src,
            dst,
            src_port: 1,
            dst_port: 25,
            proto: 6,
            tcp_flags: 2,
            packets: 1,
            bytes: 40,
            start_ms: t,
            end_ms: t,
        }
    }

    /// Flows of many subscribers interleaved over several batches give
    /// each subscriber the row its flows alone give: folding a batch row
    /// by row keeps every row's flows in the order they came.
    #[test]
    fn rows_are_the_same_whatever_flows_of_others_come_between() {
        let policy = one_network();
        let lpm = Table::new(&policy);
        let opts = Options { window_ms: 60_000, threshold: 5, block_at_ms: None, ..Options::default() };
        let mut all = Analyzer::new(&policy, &lpm, opts);
        let mut alone: Vec<Analyzer> = (0..200).map(|_| Analyzer::new(&policy, &lpm, opts)).collect();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut t = [0u64; 200];
        for _ in 0..3 * BATCH {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let who = (rng % 200) as usize;
            // Start times out of order within the reorder buffer's reach.
            t[who] += rng >> 40 & 1023;
            let start = t[who].saturating_sub(rng >> 20 & 255);
            let dst = IpAddr::from([192, 0, (rng >> 8) as u8 & 3, (rng >> 32) as u8]);
            let f = smtp(IpAddr::from([198, 51, 100, who as u8]), dst, start);
            all.add(&f);
            alone[who].add(&f);
        }
        let rows = all.rows();
        assert_eq!(rows.len(), 200);
        for r in &rows {
            let IpAddr::V4(a) = r.subscriber.ip else { panic!("{}", r.subscriber) };
            let own = alone[usize::from(a.octets()[3])].rows();
            assert_eq!(own.len(), 1);
            assert_eq!(*r, own[0]);
        }
    }

    /// Past 2^16 rows a fold's bucket holds the flows of several rows,
    /// interleaved: each row still gets what its flows alone give (here,
    /// what analyzers holding a quarter of the rows each, fewer than 2^16,
    /// give).
    #[test]
    fn rows_are_the_same_past_two_to_the_sixteen_rows() {
        let policy = crate::policy::parse(
            "[[network]]\nname = \"res\"\nclass = \"residential\"\nprefixes = [\"10.0.0.0/14\"]\n",
            std::path::Path::new("p.toml"),
        )
        .unwrap();
        let lpm = Table::new(&policy);
        let opts = Options { window_ms: 60_000, threshold: 2, block_at_ms: None, ..Options::default() };
        let mut all = Analyzer::new(&policy, &lpm, opts);
        let mut quarters: Vec<Analyzer> = (0..4).map(|_| Analyzer::new(&policy, &lpm, opts)).collect();
        let rows = 70_000u32;
        let mut x = 7u64;
        for round in 0..3u64 {
            for i in 0..rows {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Every row in a different order each round.
                let who = (u64::from(i) * 40_503 + round * 977 + (x & 1)) % u64::from(rows);
                let src = IpAddr::from((0x0a00_0000 + who as u32).to_be_bytes());
                let f = smtp(src, IpAddr::from([192, 0, 2, (x >> 8) as u8]), 1000 * round + (x >> 20) % 999);
                all.add(&f);
                quarters[(who % 4) as usize].add(&f);
            }
        }
        let mut want: Vec<Row> = quarters.iter_mut().flat_map(|a| a.rows()).collect();
        let mut got = all.rows();
        assert!(got.len() > 1 << 16, "{}", got.len());
        let key = |r: &Row| (r.subscriber, r.flows);
        want.sort_by_key(key);
        got.sort_by_key(key);
        assert!(got == want);
    }

    /// Within the caps, the streaming figures are the ones computed from
    /// every flow: in any order up to the reorder buffer, in start order
    /// beyond it.
    #[test]
    fn streaming_figures_equal_the_per_flow_ones_within_the_caps() {
        let policy = one_network();
        let lpm = Table::new(&policy);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..300 {
            let opts = Options {
                window_ms: 1 + next() % 200_000,
                threshold: 1 + (next() % 12) as usize,
                block_at_ms: None,
                ..Options::default()
            };
            let mut a = Analyzer::new(&policy, &lpm, opts);
            let src = IpAddr::from([198, 51, 100, 7]);
            let inbound_from = next() % 300_000;
            let in_order = round % 2 == 1;
            let n = if in_order { 1 + next() % 2000 } else { 1 + next() % crate::window::REORDER as u64 };
            let ndst = 1 + next() % crate::window::WINDOW_DESTINATIONS.min(crate::window::MAX_DESTINATIONS) as u64;
            let mut t = 0;
            let mut events = Vec::new();
            for _ in 0..n {
                let dst = IpAddr::from([192, 0, 2, (next() % ndst) as u8]);
                t = if in_order { t + next() % 3000 } else { next() % 300_000 };
                events.push((t, dst));
                a.add(&smtp(src, dst, t));
            }
            // Inbound proxy connections from outside, for the "after" count.
            for k in 0..3u8 {
                let inbound = Flow {
                    src: IpAddr::from([203, 0, 113, k]),
                    dst: src,
                    dst_port: 1080,
                    start_ms: inbound_from + u64::from(k),
                    end_ms: inbound_from + u64::from(k),
                    ..smtp(src, src, 0)
                };
                a.add(&inbound);
            }
            let (peak, rate, dsts, after) = reference(&events, opts.window_ms, inbound_from);
            let rows = a.rows();
            assert_eq!(rows.len(), 1);
            let r = &rows[0];
            let rate_exact = rate <= crate::window::RATE_CAP;
            assert_eq!(r.peak_destinations_in_window, peak, "round {round}");
            if rate_exact {
                assert_eq!(r.peak_flows_per_minute, rate, "round {round}");
            } else {
                assert_eq!(r.peak_flows_per_minute, crate::window::RATE_CAP, "round {round}");
            }
            assert_eq!(r.spambot, peak >= opts.threshold);
            assert_eq!(r.distinct_destinations, dsts.len());
            assert_eq!(r.destinations, dsts);
            let i = r.inbound.as_ref().unwrap();
            if !r.estimated.contains(&"inbound") {
                assert_eq!(i.smtp_after, after, "round {round}");
            }
            assert_eq!(r.estimated.is_empty(), rate_exact && !r.estimated.contains(&"inbound"), "{:?}", r.estimated);
            assert_eq!(a.flows_late(), 0);
        }
    }

    /// A row's state stays within fixed bounds however many flows it gets:
    /// the figures past a cap are marked estimated.
    #[test]
    fn prefiltered_flows_give_the_same_rows() {
        // Flows of every kind: in and out of blocked space, TCP and UDP,
        // to blocked, proxy and other ports; those the prefilter drops
        // only count as seen.
        let p = one_network();
        let table = Table::new(&p);
        let (mut all, mut some) =
            (Analyzer::new(&p, &table, Options::default()), Analyzer::new(&p, &table, Options::default()));
        let pre = all.prefilter();
        let mut x = 99u64;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let inside = IpAddr::from([198, 51, 100, (x % 8) as u8]);
            let outside = IpAddr::from([203, 0, 113, (x >> 8) as u8 % 8]);
            let (src, dst) = if x >> 16 & 1 == 0 { (inside, outside) } else { (outside, inside) };
            let mut f = smtp(src, dst, 1_000 * i);
            f.dst_port = [25, 25, 3128, 8080, 443, 80][(x >> 20) as usize % 6];
            f.proto = if x >> 24 & 7 == 0 { 17 } else { 6 };
            all.add_counted(&f, 1 + (x >> 28) % 2);
            if let Some(w) = pre.wants(&f) {
                some.add_wanted(&f, 1 + (x >> 28) % 2, w);
            } else {
                some.flows_seen += 1 + (x >> 28) % 2;
            }
        }
        let rows = all.rows();
        assert!(rows.iter().any(|r| r.inbound.is_some()) && rows.len() == 8, "{rows:?}");
        assert_eq!(rows, some.rows());
        assert_eq!((all.flows_seen, all.flows_matched), (some.flows_seen, some.flows_matched));
    }

    /// Flows split by subscriber into shards, each analyzed apart and
    /// absorbed back, give the rows and counts one analyzer gives.
    #[test]
    fn shards_absorbed_give_the_same_rows() {
        let p = one_network();
        let table = Table::new(&p);
        let opts = Options { window_ms: 30_000, threshold: 3, block_at_ms: Some(9_000_000), ..Options::default() };
        let mut all = Analyzer::new(&p, &table, opts);
        let mut one = Analyzer::new(&p, &table, opts);
        let mut shards: Vec<Analyzer> = (1..3).map(|_| one.shard()).collect();
        let pre = all.prefilter();
        let mut x = 5u64;
        for i in 0..40_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let inside = IpAddr::from([198, 51, 100, (x % 64) as u8]);
            let outside = IpAddr::from([203, 0, 113, (x >> 8) as u8 % 32]);
            let (src, dst) = if x >> 16 & 1 == 0 { (inside, outside) } else { (outside, inside) };
            let mut f = smtp(src, dst, 500 * i);
            f.dst_port = [25, 25, 3128, 8080, 443][(x >> 20) as usize % 5];
            all.add(&f);
            match pre.wants(&f) {
                Some(w) => match pre.shard(w, &f, 3) {
                    0 => one.add_wanted(&f, 1, w),
                    k => shards[k - 1].add_wanted(&f, 1, w),
                },
                None => one.flows_seen += 1,
            }
        }
        assert!(shards.iter_mut().all(|s| !s.rows().is_empty()));
        for s in shards {
            one.absorb(s);
        }
        let rows = all.rows();
        assert!(rows.iter().filter(|r| r.inbound.is_some()).count() > 10 && rows.len() == 64, "{rows:?}");
        assert_eq!(rows, one.rows());
        assert_eq!((all.flows_seen, all.flows_matched), (one.flows_seen, one.flows_matched));
    }

    #[test]
    fn row_state_stays_bounded_as_flows_grow() {
        use crate::window::*;
        let policy = one_network();
        let lpm = Table::new(&policy);
        let mut a = Analyzer::new(&policy, &lpm, Options::default());
        let src = IpAddr::from([198, 51, 100, 7]);
        let bound = MAX_DESTINATIONS.next_power_of_two() * (4 + 32)
            + 2 * DISTINCT_EXACT * 8
            + (REORDER + 1).next_power_of_two() * 32
            + (2 * WINDOW_DESTINATIONS).next_power_of_two() * (4 + 16 + 8)
            + RATE_CAP.next_power_of_two() * 8
            + 2 * TIME_BUCKETS * 24;
        let mut sizes = Vec::new();
        let mut x = 1u64;
        for i in 0..200_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            // Out of order by up to 2 s, to 65 536 destinations.
            let t = i * 50 + (x >> 60) * 125;
            a.add(&smtp(src, IpAddr::from([10, 9, (x >> 40) as u8, (x >> 48) as u8]), t));
            if (i + 1) % 20_000 == 0 {
                sizes.push(a.max_row_heap_bytes());
            }
        }
        assert!(sizes.iter().all(|&s| s <= bound), "{sizes:?} > {bound}");
        assert_eq!(sizes.first(), sizes.last(), "{sizes:?}");
        let r = &a.rows()[0];
        assert_eq!(r.flows, 200_000);
        assert!(r.spambot && r.peak_destinations_in_window >= WINDOW_DESTINATIONS, "{}", r.peak_destinations_in_window);
        assert_eq!(r.peak_flows_per_minute, RATE_CAP);
        assert_eq!(r.estimated, ["distinct_destinations", "peak_destinations_in_window", "peak_flows_per_minute"]);
        let err = (r.distinct_destinations as f64 - 65_536.0).abs() / 65_536.0;
        assert!(err < 0.2, "{}", r.distinct_destinations);
        assert_eq!(r.destinations.len(), MAX_DESTINATIONS);
        let j = serde_json::to_value(a.rows()).unwrap();
        assert_eq!(j[0]["estimated"][0], "distinct_destinations", "{j}");
    }
}
