//! NetFlow v5, NetFlow v9 and IPFIX, decoded into [`Flow`] records.
//!
//! Pure: bytes in, records out, no sockets or files, so every decoder is
//! fuzzed alone. [`Collector`] keeps the only state the protocols need:
//! templates per exporter and observation domain (v9/IPFIX), and data sets
//! that arrived before their template, kept (bounded) until it comes.
//! Malformed input is counted in [`Stats`] and skipped; nothing panics.

pub mod encode;
mod fields;
mod ipfix;
pub mod pcap;
mod template;
mod v5;
mod v9;

pub use template::{Template, TemplateKey};

use std::collections::{HashMap, VecDeque};
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

/// What the collector has seen; every skipped byte is counted somewhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub datagrams: u64,
    pub flows: u64,
    /// Datagrams or sets that could not be decoded (bad header, lengths
    /// that overrun, unknown version); the rest of the datagram is skipped.
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
}

/// Bounds on the late-template buffer: an exporter that never sends its
/// templates must not grow memory without limit.
pub const MAX_DEFERRED_SETS: usize = 1024;
pub const MAX_DEFERRED_BYTES: usize = 4 << 20;

/// A data set waiting for its template, with the header context needed to
/// decode its timestamps later.
struct Deferred {
    body: Vec<u8>,
    ctx: Context,
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

#[derive(Default)]
pub struct Collector {
    templates: HashMap<TemplateKey, Template>,
    deferred: HashMap<TemplateKey, VecDeque<Deferred>>,
    deferred_sets: usize,
    deferred_bytes: usize,
    /// systemInitTimeMilliseconds per (exporter, domain), from options data.
    init_ms: HashMap<(IpAddr, u32), u64>,
    pub stats: Stats,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl Collector {
    pub fn new() -> Collector {
        Collector::default()
    }

    /// Decodes one export datagram from `exporter`, appending its flows
    /// (and those of deferred sets it unblocks) to `out`.
    pub fn datagram(&mut self, exporter: IpAddr, data: &[u8], out: &mut Vec<Flow>) {
        self.stats.datagrams += 1;
        let before = out.len();
        let r = match data.get(..2).map(|v| u16::from_be_bytes([v[0], v[1]])) {
            Some(5) => v5::decode(data, out),
            Some(9) => v9::decode(self, exporter, data, out),
            Some(10) => ipfix::decode(self, exporter, data, out),
            _ => Err(Malformed("unknown version")),
        };
        if r.is_err() {
            self.stats.malformed += 1;
        }
        self.stats.flows += (out.len() - before) as u64;
    }

    /// End of input: what is still deferred will never be decoded.
    pub fn finish(&mut self) {
        self.stats.sets_without_template += self.deferred_sets as u64;
        self.deferred.clear();
        self.deferred_sets = 0;
        self.deferred_bytes = 0;
    }

    pub fn template_count(&self) -> usize {
        self.templates.len()
    }

    /// Stores a template; decodes what waited for it.
    pub(crate) fn learn(&mut self, key: TemplateKey, t: Template, out: &mut Vec<Flow>) {
        match self.templates.get(&key) {
            Some(old) if *old == t => {}
            Some(_) => self.stats.templates_changed += 1,
            None => self.stats.templates_learned += 1,
        }
        self.templates.insert(key, t);
        if let Some(waiting) = self.deferred.remove(&key) {
            for d in waiting {
                self.deferred_sets -= 1;
                self.deferred_bytes -= d.body.len();
                self.stats.sets_recovered += 1;
                let t = self.templates.get(&key).expect("just inserted").clone();
                if self.data_set(key, &t, &d.body, d.ctx, out).is_err() {
                    self.stats.malformed += 1;
                }
            }
        }
    }

    pub(crate) fn withdraw(&mut self, key: TemplateKey) {
        if self.templates.remove(&key).is_some() {
            self.stats.templates_withdrawn += 1;
        }
    }

    /// A data set: decoded now if its template is known, else deferred.
    pub(crate) fn data(&mut self, key: TemplateKey, body: &[u8], ctx: Context, out: &mut Vec<Flow>) -> Result<(), Malformed> {
        match self.templates.get(&key) {
            Some(t) => {
                let t = t.clone();
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
                self.deferred.entry(key).or_default().push_back(Deferred { body: body.to_vec(), ctx });
                Ok(())
            }
        }
    }

    fn data_set(&mut self, key: TemplateKey, t: &Template, body: &[u8], mut ctx: Context, out: &mut Vec<Flow>) -> Result<(), Malformed> {
        if ctx.init_ms.is_none() {
            ctx.init_ms = self.init_ms.get(&(key.exporter, key.domain)).copied();
        }
        let mut options_init = None;
        let r = fields::decode_records(t, body, ctx, out, &mut self.stats, &mut options_init);
        if let Some(init) = options_init {
            self.init_ms.insert((key.exporter, key.domain), init);
        }
        r
    }
}

/// Walks the sets of a v9/IPFIX message from `pos`: (set id, set body).
/// Fewer than 4 trailing bytes are padding; a set length that is too short
/// or overruns the message makes the message malformed.
pub(crate) fn for_each_set(d: &[u8], mut pos: usize, mut f: impl FnMut(u16, &[u8]) -> Result<(), Malformed>) -> Result<(), Malformed> {
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
