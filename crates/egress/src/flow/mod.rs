//! NetFlow v5, NetFlow v9 and IPFIX, decoded into [`Flow`] records.
//!
//! Pure: bytes in, records out, no sockets or files, so every decoder is
//! fuzzed alone. [`Collector`] keeps the only state the protocols need:
//! templates per exporter and observation domain (v9/IPFIX), and data sets
//! that arrived before their template, kept (bounded) until it comes.
//! Malformed input is counted in [`Stats`] and skipped; nothing panics.
//!
//! Exports arrive over UDP, from anyone who can send a datagram: the
//! collector takes an exporter allow-list ([`Collector::only_from`];
//! datagrams from other addresses are dropped and counted) and bounds every
//! table an exporter fills: templates per exporter and in total (also by
//! their total field count, since one template may describe thousands of
//! fields), the oldest (least recently sent) evicted first and counted;
//! deferred data sets; options-record boot times.

pub mod encode;
mod fields;
mod ipfix;
pub mod lz;
pub mod nfcapd;
pub mod pcap;
mod template;
mod v5;
mod v9;

pub use template::{Template, TemplateKey};

use crate::prefix::{ip_to_u128, Prefix};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

/// One flow record, whatever the export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
    pub tcp_flags: u8,
    pub packets: u64,
    pub bytes: u64,
    /// Unix time in milliseconds.
    pub start_ms: u64,
    pub end_ms: u64,
}

impl Flow {
    /// One unanswered connection attempt: a TCP SYN of one packet from
    /// port 40000 at `t_ms` (what tests and benches feed the analysis).
    pub fn syn(src: IpAddr, dst: IpAddr, dst_port: u16, t_ms: u64) -> Flow {
        Flow {
            src,
            dst,
            src_port: 40_000,
            dst_port,
            proto: 6,
            tcp_flags: 2,
            packets: 1,
            bytes: 60,
            start_ms: t_ms,
            end_ms: t_ms,
        }
    }
}

/// What the collector has seen; every skipped byte is counted somewhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub datagrams: u64,
    pub flows: u64,
    /// Datagrams that could not be decoded whole (bad header, lengths that
    /// overrun, unknown version; the rest of the datagram is skipped), each
    /// counted once: also when the fault is found in a data set decoded
    /// later, once its template arrived.
    pub malformed: u64,
    pub templates_learned: u64,
    pub templates_changed: u64,
    pub templates_withdrawn: u64,
    /// Data sets kept because their template had not arrived yet.
    pub sets_deferred: u64,
    /// Deferred sets decoded once their template arrived.
    pub sets_recovered: u64,
    /// Data sets dropped because their template never came (or the
    /// deferral buffer was full).
    pub sets_without_template: u64,
    /// Records without the fields a flow needs (addresses), skipped.
    pub records_incomplete: u64,
    /// Templates dropped to stay within [`MAX_TEMPLATES_PER_EXPORTER`],
    /// [`MAX_TEMPLATES`] or [`MAX_TEMPLATE_FIELDS`] (least recently sent
    /// first); data for them is deferred until the exporter resends them.
    pub templates_evicted: u64,
    /// Datagrams from addresses outside the exporter allow-list, dropped
    /// undecoded (not counted in `datagrams`).
    pub datagrams_refused: u64,
    /// IPFIX NAT event records (RFC 8158, `natEvent` present): kept in
    /// [`Collector::nat_records`] for CGNAT attribution, not flows.
    pub nat_events: u64,
    /// NAT event records dropped because the caller had not taken the
    /// pending ones ([`MAX_NAT_RECORDS`]).
    pub nat_events_dropped: u64,
}

/// NAT event records held until the caller takes them (after each datagram).
pub const MAX_NAT_RECORDS: usize = 1 << 16;

/// Bounds on the late-template buffer: an exporter that never sends its
/// templates must not grow memory without limit.
pub const MAX_DEFERRED_SETS: usize = 1024;
pub const MAX_DEFERRED_BYTES: usize = 4 << 20;

/// Bounds on the template table. A router sends a few dozen templates per
/// observation domain; these leave room for large ones while a flood of
/// template ids (from one exporter, or spread over many) cannot grow memory.
pub const MAX_TEMPLATES_PER_EXPORTER: usize = 4096;
pub const MAX_TEMPLATES: usize = 65_536;
/// Fields in all templates together (a field takes 12 bytes): about 12 MiB.
pub const MAX_TEMPLATE_FIELDS: usize = 1 << 20;
/// Exporter boot times remembered from options records, (exporter, domain).
pub const MAX_BOOT_TIMES: usize = 4096;
/// Refused source addresses kept to name in the summary.
pub const MAX_REFUSED_NAMED: usize = 16;

/// A data set waiting for its template, with the header context needed to
/// decode its timestamps later.
struct Deferred {
    body: Vec<u8>,
    ctx: Context,
    /// The datagram it came from (its number in `stats.datagrams`), which
    /// is the one counted malformed if the set turns out to be.
    datagram: u64,
}

/// A datagram with data sets still deferred: how many, and whether it has
/// been counted malformed already (so that it is counted once).
#[derive(Default)]
struct Pending {
    sets: usize,
    malformed: bool,
}

/// Per-datagram header values data records are decoded against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    pub export_ms: u64,
    /// NetFlow v9 sysUpTime at export, for FIRST/LAST_SWITCHED.
    pub uptime_ms: Option<u64>,
    /// IPFIX: the exporter's boot time if an options record gave it.
    pub init_ms: Option<u64>,
}

/// A template and when it was last sent (a sequence number: the bound
/// evicts the smallest).
struct Held {
    template: Template,
    seq: u64,
}

#[derive(Default)]
pub struct Collector {
    templates: HashMap<TemplateKey, Held>,
    /// Every held template by `seq`, oldest first.
    age: BTreeMap<u64, TemplateKey>,
    /// The same per exporter, for its own bound.
    age_per_exporter: HashMap<IpAddr, BTreeMap<u64, TemplateKey>>,
    next_seq: u64,
    /// Fields in all held templates.
    fields_held: usize,
    deferred: HashMap<TemplateKey, VecDeque<Deferred>>,
    deferred_sets: usize,
    deferred_bytes: usize,
    /// Datagrams with deferred sets, by number (at most [`MAX_DEFERRED_SETS`]).
    pending: HashMap<u64, Pending>,
    /// The datagram being decoded, and whether something in it (a deferred
    /// set decoded by a template it carried included) failed to decode.
    current: u64,
    current_malformed: bool,
    /// systemInitTimeMilliseconds per (exporter, domain), from options data.
    init_ms: HashMap<(IpAddr, u32), u64>,
    /// `None`: every exporter is accepted (a pcap read without --exporter).
    allowed: Option<Vec<Prefix>>,
    /// The first [`MAX_REFUSED_NAMED`] refused source addresses.
    pub refused_from: BTreeSet<IpAddr>,
    pub stats: Stats,
    /// NAT event records decoded so far (take them with `std::mem::take`).
    pub nat_records: Vec<crate::attribution::cgnat::NatRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl Collector {
    pub fn new() -> Collector {
        Collector::default()
    }

    /// Accepts datagrams only from exporters inside `prefixes` (an
    /// IPv4-mapped IPv6 source counts as its IPv4 address); the others are
    /// counted in `datagrams_refused` and not decoded.
    pub fn only_from(&mut self, prefixes: Vec<Prefix>) {
        self.allowed = Some(prefixes);
    }

    fn allows(&self, exporter: IpAddr) -> bool {
        let Some(allowed) = &self.allowed else {
            return true;
        };
        let (family, v) = ip_to_u128(exporter);
        allowed.iter().any(|p| p.contains(family, v))
    }

    /// Decodes one export datagram from `exporter`, appending its flows
    /// (and those of deferred sets it unblocks) to `out`.
    pub fn datagram(&mut self, exporter: IpAddr, data: &[u8], out: &mut Vec<Flow>) {
        if !self.allows(exporter) {
            self.stats.datagrams_refused += 1;
            if self.refused_from.len() < MAX_REFUSED_NAMED {
                self.refused_from.insert(exporter);
            }
            return;
        }
        // Keyed by the folded address, so that a dual-stack socket's
        // ::ffff:a.b.c.d and a.b.c.d are one exporter.
        let exporter = exporter.to_canonical();
        self.stats.datagrams += 1;
        self.current = self.stats.datagrams;
        self.current_malformed = false;
        let before = out.len();
        let r = match data.get(..2).map(|v| u16::from_be_bytes([v[0], v[1]])) {
            Some(5) => v5::decode(data, out),
            Some(9) => v9::decode(self, exporter, data, out),
            Some(10) => ipfix::decode(self, exporter, data, out),
            _ => Err(Malformed("unknown version")),
        };
        if r.is_err() || self.current_malformed {
            self.stats.malformed += 1;
            if let Some(p) = self.pending.get_mut(&self.current) {
                p.malformed = true;
            }
        }
        self.stats.flows += (out.len() - before) as u64;
    }

    /// End of input: what is still deferred will never be decoded.
    pub fn finish(&mut self) {
        self.stats.sets_without_template += self.deferred_sets as u64;
        self.deferred.clear();
        self.pending.clear();
        self.deferred_sets = 0;
        self.deferred_bytes = 0;
    }

    pub fn template_count(&self) -> usize {
        self.templates.len()
    }

    /// Templates held for one exporter.
    pub fn template_count_of(&self, exporter: IpAddr) -> usize {
        self.age_per_exporter.get(&exporter.to_canonical()).map_or(0, BTreeMap::len)
    }

    /// Fields in all held templates.
    pub fn template_fields(&self) -> usize {
        self.fields_held
    }

    /// Removes a held template from every index; its fields are released.
    fn forget(&mut self, key: TemplateKey) -> Option<Template> {
        let held = self.templates.remove(&key)?;
        self.age.remove(&held.seq);
        if let Some(mine) = self.age_per_exporter.get_mut(&key.exporter) {
            mine.remove(&held.seq);
            if mine.is_empty() {
                self.age_per_exporter.remove(&key.exporter);
            }
        }
        self.fields_held -= held.template.fields.len();
        Some(held.template)
    }

    /// Stores a template (as the newest); decodes what waited for it.
    pub(crate) fn learn(&mut self, key: TemplateKey, t: Template, out: &mut Vec<Flow>) {
        match self.forget(key) {
            Some(old) if old == t => {}
            Some(_) => self.stats.templates_changed += 1,
            None => self.stats.templates_learned += 1,
        }
        // Room first: the exporter's own bound, then the totals; the new
        // template itself is never the one evicted.
        let fields = t.fields.len();
        while self.age_per_exporter.get(&key.exporter).is_some_and(|m| m.len() >= MAX_TEMPLATES_PER_EXPORTER) {
            let oldest = *self.age_per_exporter[&key.exporter].values().next().expect("non-empty");
            self.forget(oldest);
            self.stats.templates_evicted += 1;
        }
        while self.templates.len() >= MAX_TEMPLATES
            || (!self.templates.is_empty() && self.fields_held + fields > MAX_TEMPLATE_FIELDS)
        {
            let oldest = *self.age.values().next().expect("non-empty");
            self.forget(oldest);
            self.stats.templates_evicted += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.age.insert(seq, key);
        self.age_per_exporter.entry(key.exporter).or_default().insert(seq, key);
        self.fields_held += fields;
        self.templates.insert(key, Held { template: t, seq });
        if let Some(waiting) = self.deferred.remove(&key) {
            for d in waiting {
                self.deferred_sets -= 1;
                self.deferred_bytes -= d.body.len();
                self.stats.sets_recovered += 1;
                let t = self.templates.get(&key).expect("just inserted").template.clone();
                let failed = self.data_set(key, &t, &d.body, d.ctx, out).is_err();
                self.recovered(d.datagram, failed);
            }
        }
    }

    /// A deferred set of datagram `n` was decoded; `failed`: it was
    /// malformed, so datagram `n` is, counted once. The current datagram is
    /// counted when it ends (with whatever else fails in it).
    fn recovered(&mut self, n: u64, failed: bool) {
        let counted = if n == self.current {
            self.current_malformed |= failed;
            true
        } else {
            false
        };
        let Some(p) = self.pending.get_mut(&n) else {
            return;
        };
        if failed && !counted && !p.malformed {
            p.malformed = true;
            self.stats.malformed += 1;
        }
        p.sets -= 1;
        if p.sets == 0 {
            self.pending.remove(&n);
        }
    }

    pub(crate) fn withdraw(&mut self, key: TemplateKey) {
        if self.forget(key).is_some() {
            self.stats.templates_withdrawn += 1;
        }
    }

    /// A data set: decoded now if its template is known, else deferred.
    pub(crate) fn data(
        &mut self,
        key: TemplateKey,
        body: &[u8],
        ctx: Context,
        out: &mut Vec<Flow>,
    ) -> Result<(), Malformed> {
        match self.templates.get(&key) {
            Some(held) => {
                let t = held.template.clone();
                self.data_set(key, &t, body, ctx, out)
            }
            None => {
                if self.deferred_sets >= MAX_DEFERRED_SETS || self.deferred_bytes + body.len() > MAX_DEFERRED_BYTES {
                    self.stats.sets_without_template += 1;
                    return Ok(());
                }
                self.stats.sets_deferred += 1;
                self.deferred_sets += 1;
                self.deferred_bytes += body.len();
                self.pending.entry(self.current).or_default().sets += 1;
                self.deferred.entry(key).or_default().push_back(Deferred {
                    body: body.to_vec(),
                    ctx,
                    datagram: self.current,
                });
                Ok(())
            }
        }
    }

    fn data_set(
        &mut self,
        key: TemplateKey,
        t: &Template,
        body: &[u8],
        mut ctx: Context,
        out: &mut Vec<Flow>,
    ) -> Result<(), Malformed> {
        if ctx.init_ms.is_none() {
            ctx.init_ms = self.init_ms.get(&(key.exporter, key.domain)).copied();
        }
        let mut options_init = None;
        let side = fields::Side { options_init: &mut options_init, nat: &mut self.nat_records, exporter: key.exporter };
        let r = fields::decode_records(t, body, ctx, out, &mut self.stats, side);
        if let Some(init) = options_init {
            let k = (key.exporter, key.domain);
            if self.init_ms.len() >= MAX_BOOT_TIMES && !self.init_ms.contains_key(&k) {
                // Bounded like the templates; which one goes matters little
                // (an exporter repeats its options record).
                let any = *self.init_ms.keys().next().expect("non-empty");
                self.init_ms.remove(&any);
            }
            self.init_ms.insert(k, init);
        }
        r
    }
}

/// Walks the sets of a v9/IPFIX message from `pos`: (set id, set body).
/// Fewer than 4 trailing bytes are padding; a set length that is too short
/// or overruns the message makes the message malformed.
pub(crate) fn for_each_set(
    d: &[u8],
    mut pos: usize,
    mut f: impl FnMut(u16, &[u8]) -> Result<(), Malformed>,
) -> Result<(), Malformed> {
    while d.len().saturating_sub(pos) >= 4 {
        let id = be16(d, pos)?;
        let len = be16(d, pos + 2)? as usize;
        if len < 4 || pos + len > d.len() {
            return Err(Malformed("set length"));
        }
        f(id, &d[pos + 4..pos + len])?;
        pos += len;
    }
    Ok(())
}

pub(crate) fn be16(b: &[u8], at: usize) -> Result<u16, Malformed> {
    b.get(at..at + 2).map(|v| u16::from_be_bytes([v[0], v[1]])).ok_or(Malformed("truncated"))
}

pub(crate) fn be32(b: &[u8], at: usize) -> Result<u32, Malformed> {
    b.get(at..at + 4).map(|v| u32::from_be_bytes([v[0], v[1], v[2], v[3]])).ok_or(Malformed("truncated"))
}
