//! nfdump 1.7's own files (what `nfcapd -w` and `nfdump -w` write, layout
//! version 2): the ISP's existing flow store, read directly instead of
//! being replayed as NetFlow.
//!
//! A file is a 40-byte header (magic 0xA50C in the writer's byte order,
//! layout 2, compression, number of data blocks, the offset of the
//! appendix that holds the ident and statistics) followed by data blocks:
//! a 12-byte block header (records, size, type, flags) and `size` bytes,
//! compressed as a whole with the file's method (none, LZO1X or LZ4; bz2
//! and zstd are refused with the nfdump command that rewrites the file).
//! A type-3 block holds records, each `type, size` first; flows are V3
//! records (type 11): a 12-byte record header and typed elements, of which
//! these are read: generic flow (times, packets, bytes, ports, protocol,
//! TCP flags), IPv4 or IPv6 addresses, and the flow counter of aggregated
//! files. Other records (exporter and sampler information) are skipped.
//!
//! Read as nfdump reads it: the header's number of blocks from the start,
//! blocks of at most [`MAX_BLOCK`] bytes before and after decompression,
//! so memory stays two block buffers whatever the file's size. Everything
//! is native byte order, which is little-endian on every machine nfdump
//! runs on today; a big-endian file is refused by its magic.
//!
//! Bad input is counted and named (byte offset in the file), never a
//! panic: a block that does not decompress or whose records overrun is
//! skipped (the next block header is still where the size says), a header
//! that lies (size 0 or above the limit, records 0) or a file cut short
//! ends the file with a warning.

use super::lz;
use super::Flow;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// nfdump's BUFFSIZE: no block it writes is larger, compressed or not.
pub const MAX_BLOCK: usize = 5 << 20;
/// Problems named with their offset; the rest are only counted.
pub const MAX_NAMED: usize = 16;

const MAGIC: u16 = 0xA50C;
const HEADER_LEN: usize = 40;
const BLOCK_HEADER_LEN: usize = 12;
const V3_RECORD: u16 = 11;
const V3_HEADER_LEN: usize = 12;
/// Element headers (type, length) as one little-endian word: the generic
/// flow element of 52 bytes and the IPv4 address element of 12.
const GENERIC_52: u32 = 1 | 52 << 16;
const IPV4_12: u32 = 2 | 12 << 16;
/// The V3 header, the generic flow and the IPv4 addresses.
const V3_COMMON_V4_LEN: usize = V3_HEADER_LEN + 52 + 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Lzo,
    Lz4,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Lzo => "lzo",
            Compression::Lz4 => "lz4",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub compression: Compression,
    /// Data blocks the writer recorded (0 while nfcapd still writes the file).
    pub blocks: u32,
    /// Unix seconds.
    pub created: i64,
    /// The nfdump version that wrote it, as nfdump prints it (hex).
    pub nfdump_version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfcapdError(pub String);

impl std::fmt::Display for NfcapdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What was read, and what was skipped and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub blocks: u64,
    pub records: u64,
    /// Flows yielded (records; an aggregated record counts once here).
    pub flows: u64,
    /// Records of other types (exporter, sampler, ...), skipped as nfdump does.
    pub records_other: u64,
    /// Blocks of a type other than 3, skipped.
    pub blocks_other: u64,
    /// Blocks that did not decompress, skipped whole.
    pub blocks_corrupt: u64,
    /// Records whose size or elements overrun, or are too short for their
    /// type; the rest of their block is skipped.
    pub records_malformed: u64,
    /// V3 records without addresses or the generic flow element.
    pub records_incomplete: u64,
    /// The file ended before the header's number of blocks (cut short, or
    /// a block header that could not be trusted).
    pub truncated: bool,
}

impl Stats {
    /// Adds `o`'s counts (a block's, or another file's) to these.
    pub fn add(&mut self, o: &Stats) {
        self.blocks += o.blocks;
        self.records += o.records;
        self.flows += o.flows;
        self.records_other += o.records_other;
        self.blocks_other += o.blocks_other;
        self.blocks_corrupt += o.blocks_corrupt;
        self.records_malformed += o.records_malformed;
        self.records_incomplete += o.records_incomplete;
        self.truncated |= o.truncated;
    }
}

/// One problem, at a byte offset of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub offset: u64,
    pub message: String,
}

/// A flow and how many flows it stands for (1, or the aggregated count).
pub type Counted = (Flow, u64);

pub struct Reader<R: Read> {
    r: R,
    pub header: Header,
    raw: Vec<u8>,
    block: Vec<u8>,
    next_block: u32,
    offset: u64,
    done: bool,
    pub stats: Stats,
    /// Problems in file order; the first [`MAX_NAMED`] are kept.
    pub problems: Vec<Problem>,
    /// All problems, named or not.
    pub problems_total: u64,
}

#[inline]
fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
#[inline]
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn le64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Parses and checks the file header.
pub fn header(b: &[u8]) -> Result<Header, NfcapdError> {
    if b.len() < 4 {
        return Err(NfcapdError("not an nfdump file: shorter than its header".into()));
    }
    match le16(b, 0) {
        MAGIC => {}
        0x0CA5 => {
            return Err(NfcapdError(
                "nfdump file written on a big-endian machine: read it with nfdump there and write it anew with `nfdump -r FILE -w NEW` on a little-endian one"
                    .into(),
            ))
        }
        _ => return Err(NfcapdError("not an nfdump file (bad magic number)".into())),
    }
    match le16(b, 2) {
        2 => {}
        1 => return Err(NfcapdError(
            "nfdump 1.6 file (layout version 1): convert it with nfdump 1.7, `nfdump -r FILE -w NEW`, then read NEW"
                .into(),
        )),
        v => {
            return Err(NfcapdError(format!(
                "nfdump file layout version {v} is not supported (version 2, nfdump 1.7, is)"
            )))
        }
    }
    if b.len() < HEADER_LEN {
        return Err(NfcapdError("nfdump file cut short inside its header".into()));
    }
    let compression = match b[16] {
        0 => Compression::None,
        1 => Compression::Lzo,
        3 => Compression::Lz4,
        2 => {
            return Err(NfcapdError(
                "bz2-compressed nfdump file: rewrite it with LZ4 (`nfdump -r FILE -y -w NEW`) and read NEW".into(),
            ))
        }
        4 => {
            return Err(NfcapdError(
                "zstd-compressed nfdump file: rewrite it with LZ4 (`nfdump -r FILE -y -w NEW`) and read NEW".into(),
            ))
        }
        c => return Err(NfcapdError(format!("nfdump file with unknown compression {c}"))),
    };
    if b[17] != 0 {
        return Err(NfcapdError("encrypted nfdump file: not supported".into()));
    }
    Ok(Header { compression, blocks: le32(b, 36), created: le64(b, 8) as i64, nfdump_version: le32(b, 4) })
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header; blocks are read by [`Reader::next_block`].
    pub fn new(mut r: R) -> Result<Reader<R>, NfcapdError> {
        let mut h = [0u8; HEADER_LEN];
        let n = read_full(&mut r, &mut h).map_err(|e| NfcapdError(format!("reading the header: {e}")))?;
        let header = header(&h[..n])?;
        Ok(Reader {
            r,
            header,
            raw: Vec::new(),
            block: Vec::new(),
            next_block: 0,
            offset: HEADER_LEN as u64,
            done: false,
            stats: Stats::default(),
            problems: Vec::new(),
            problems_total: 0,
        })
    }

    fn problem(&mut self, offset: u64, message: String) {
        self.problems_total += 1;
        if self.problems.len() < MAX_NAMED {
            self.problems.push(Problem { offset, message });
        }
    }

    /// Decodes the next data block's flows into `out` (cleared first).
    /// `Ok(false)` at the end of the file; `Err` only for an I/O error.
    pub fn next_block(&mut self, out: &mut Vec<Counted>) -> std::io::Result<bool> {
        out.clear();
        self.next_block_each(|f, n| out.push((*f, n)))
    }

    /// Decodes the next data block, handing each flow and the flows it
    /// stands for to `each` as it is decoded (no per-block list of flows:
    /// the records are read where the block buffer holds them).
    /// `Ok(false)` at the end of the file; `Err` only for an I/O error.
    pub fn next_block_each(&mut self, mut each: impl FnMut(&Flow, u64)) -> std::io::Result<bool> {
        let mut raw = std::mem::take(&mut self.raw);
        let r = self.next_raw(&mut raw);
        let more = match r {
            Ok(Some(b)) => {
                let mut stats = Stats::default();
                if let Some(p) = decode_block(&b, &raw, &mut self.block, &mut stats, &mut each) {
                    self.problem(p.offset, p.message);
                }
                self.stats.add(&stats);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        };
        self.raw = raw;
        more
    }

    /// Reads the next data block as it is stored into `raw` (resized to
    /// it), without decoding it: [`decode_block`] does that, possibly on
    /// another thread while this reader goes on to the next block.
    /// `Ok(None)` at the end of the file (problems that end it early are
    /// recorded here); `Err` only for an I/O error.
    pub fn next_raw(&mut self, raw: &mut Vec<u8>) -> std::io::Result<Option<RawBlock>> {
        if self.done {
            return Ok(None);
        }
        if self.next_block >= self.header.blocks {
            self.done = true;
            if self.header.blocks == 0 {
                let mut probe = [0u8; 1];
                if read_full(&mut self.r, &mut probe)? == 1 {
                    self.problem(
                        self.offset,
                        "the header lists no data blocks though data follows (a file nfcapd is still writing?); nothing read, as nfdump reads nothing".into(),
                    );
                }
            }
            return Ok(None);
        }
        let at = self.offset;
        let mut bh = [0u8; BLOCK_HEADER_LEN];
        let n = read_full(&mut self.r, &mut bh)?;
        if n < BLOCK_HEADER_LEN {
            self.cut(
                at,
                format!("the file ends before block {} of {} (cut short?)", self.next_block + 1, self.header.blocks),
            );
            return Ok(None);
        }
        let (records, size, kind) = (le32(&bh, 0), le32(&bh, 4) as usize, le16(&bh, 8));
        if size == 0 || size > MAX_BLOCK || records == 0 {
            self.cut(
                at,
                format!(
                    "block {} header is not credible (size {size}, {records} records); the rest of the file is skipped",
                    self.next_block + 1
                ),
            );
            return Ok(None);
        }
        // Only growth is zeroed: a buffer reused block after block costs
        // no fill once it has reached the largest block.
        raw.resize(size, 0);
        let n = read_full(&mut self.r, raw)?;
        if n < size {
            self.cut(at, format!("block {} is cut short: {n} of {size} bytes", self.next_block + 1));
            return Ok(None);
        }
        self.offset += (BLOCK_HEADER_LEN + size) as u64;
        self.next_block += 1;
        self.stats.blocks += 1;
        Ok(Some(RawBlock { number: self.next_block, offset: at, records, kind, compression: self.header.compression }))
    }

    fn cut(&mut self, at: u64, message: String) {
        self.stats.truncated = true;
        self.done = true;
        self.problem(at, message);
    }
}

/// A data block as stored, read by [`Reader::next_raw`]: what
/// [`decode_block`] needs besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawBlock {
    /// Its place in the file, from 1.
    pub number: u32,
    /// The byte offset of its header in the file.
    pub offset: u64,
    pub records: u32,
    pub kind: u16,
    pub compression: Compression,
}

/// Decodes one block read by [`Reader::next_raw`] (`raw`: its stored
/// bytes; `scratch`: the decompression buffer, reused from block to
/// block), handing each flow to `each` and adding what it found to
/// `stats` (not `blocks`, which the reader counts). The problem that cut
/// the block short, if any, to be named with the file.
pub fn decode_block(
    b: &RawBlock,
    raw: &[u8],
    scratch: &mut Vec<u8>,
    stats: &mut Stats,
    each: &mut impl FnMut(&Flow, u64),
) -> Option<Problem> {
    decode_block_where(b, raw, scratch, stats, &|_, _| true, &mut |_| {}, each)
}

/// [`decode_block`], with a test of each flow's protocol and destination
/// port made before the flow is built: a flow that `wanted` refuses is
/// counted in `stats` as any other, and the number of flows it stands
/// for is handed to `refused` instead of the flow to `each`. A reader that
/// keeps few flows (TCP to a handful of ports) spares building the rest,
/// which was a third of its cost per record.
pub fn decode_block_where(
    b: &RawBlock,
    raw: &[u8],
    scratch: &mut Vec<u8>,
    stats: &mut Stats,
    wanted: &impl Fn(u8, u16) -> bool,
    refused: &mut impl FnMut(u64),
    each: &mut impl FnMut(&Flow, u64),
) -> Option<Problem> {
    if b.kind != 3 {
        stats.blocks_other += 1;
        return None;
    }
    let decoded = match b.compression {
        Compression::None => Ok(raw.len()),
        Compression::Lzo => lz::lzo1x(raw, scratch, MAX_BLOCK),
        Compression::Lz4 => lz::lz4_block(raw, scratch, MAX_BLOCK),
    };
    let n = match decoded {
        Ok(n) => n,
        Err(e) => {
            stats.blocks_corrupt += 1;
            let c = b.compression.as_str();
            return Some(Problem {
                offset: b.offset,
                message: format!("block {} does not decompress ({c}): {}; skipped", b.number, e.as_str()),
            });
        }
    };
    let body = if b.compression == Compression::None { raw } else { &scratch[..n] };
    let (pos, why) = decode_records_where(body, b.records, stats, wanted, refused, each).err()?;
    stats.records_malformed += 1;
    let where_ = if b.compression == Compression::None {
        format!("at byte {}", b.offset + (BLOCK_HEADER_LEN + pos) as u64)
    } else {
        format!("{pos} bytes into it, decompressed")
    };
    Some(Problem {
        offset: b.offset,
        message: format!(
            "block {}: a record {where_} is malformed ({why}); the rest of the block is skipped",
            b.number
        ),
    })
}

/// Fills `buf` as far as the reader goes; the count read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The records of one decompressed type-3 block, each flow handed to
/// `each`. `Err((offset, why))` at the first record that cannot be walked;
/// flows before it were handed over.
pub fn decode_records(
    b: &[u8],
    records: u32,
    stats: &mut Stats,
    each: &mut impl FnMut(&Flow, u64),
) -> Result<(), (usize, &'static str)> {
    decode_records_where(b, records, stats, &|_, _| true, &mut |_| {}, each)
}

/// [`decode_records`], with [`decode_block_where`]'s test before a flow is built.
pub fn decode_records_where(
    b: &[u8],
    records: u32,
    stats: &mut Stats,
    wanted: &impl Fn(u8, u16) -> bool,
    refused: &mut impl FnMut(u64),
    each: &mut impl FnMut(&Flow, u64),
) -> Result<(), (usize, &'static str)> {
    let mut pos = 0usize;
    for _ in 0..records {
        if b.len() - pos < 4 {
            return Err((pos, "the block ends before its record count"));
        }
        let (kind, size) = (le16(b, pos), le16(b, pos + 2) as usize);
        if size < 4 || size > b.len() - pos {
            return Err((pos, "record size"));
        }
        stats.records += 1;
        if kind == V3_RECORD {
            match v3(&b[pos..pos + size], wanted) {
                Ok(V3::Flow(f, n)) => {
                    stats.flows += 1;
                    each(&f, n);
                }
                Ok(V3::Refused(n)) => {
                    stats.flows += 1;
                    refused(n);
                }
                Ok(V3::Incomplete) => stats.records_incomplete += 1,
                Err(why) => return Err((pos, why)),
            }
        } else {
            stats.records_other += 1;
        }
        pos += size;
    }
    Ok(())
}

/// The source and destination of an IPv4 address element's contents
/// (at least 8 bytes).
#[inline]
fn v4_pair(e: &[u8]) -> (IpAddr, IpAddr) {
    (IpAddr::V4(Ipv4Addr::from(le32(e, 0))), IpAddr::V4(Ipv4Addr::from(le32(e, 4))))
}

/// What one V3 record holds.
enum V3 {
    /// A flow and the number of flows it stands for.
    Flow(Flow, u64),
    /// A flow that the test of [`decode_block_where`] refused, and the
    /// number of flows it stands for.
    Refused(u64),
    /// No addresses or no generic flow element.
    Incomplete,
}

/// One V3 record; its flow is built only when `wanted` takes its
/// protocol and destination port.
#[inline]
fn v3(r: &[u8], wanted: &impl Fn(u8, u16) -> bool) -> Result<V3, &'static str> {
    if r.len() < V3_HEADER_LEN {
        return Err("V3 record shorter than its header");
    }
    let elements = le16(r, 4);
    let mut pos = V3_HEADER_LEN;
    let (mut generic, mut addrs, mut count) = (None, None, 1u64);
    let mut walked = 0;
    // What nfcapd writes for a NetFlow v5 or IPv4 v9/IPFIX flow starts
    // with the generic flow element then the IPv4 addresses: both element
    // headers are checked with one compare each and their contents read at
    // fixed offsets, the loop below walking only what follows (the same
    // result as walking them: both lengths are the minimum it accepts).
    if elements >= 2 && r.len() >= V3_COMMON_V4_LEN && le32(r, 12) == GENERIC_52 && le32(r, 64) == IPV4_12 {
        generic = Some(&r[16..64]);
        addrs = Some(v4_pair(&r[68..76]));
        pos = V3_COMMON_V4_LEN;
        walked = 2;
    }
    for _ in walked..elements {
        if r.len() - pos < 4 {
            return Err("V3 element header past the record");
        }
        let (kind, len) = (le16(r, pos), le16(r, pos + 2) as usize);
        if len < 4 || len > r.len() - pos {
            return Err("V3 element length");
        }
        let e = &r[pos + 4..pos + len];
        match kind {
            1 => {
                if e.len() < 48 {
                    return Err("generic flow element too short");
                }
                generic = Some(e);
            }
            2 => {
                if e.len() < 8 {
                    return Err("IPv4 element too short");
                }
                addrs = Some(v4_pair(e));
            }
            3 => {
                if e.len() < 32 {
                    return Err("IPv6 element too short");
                }
                // Each address is two 64-bit halves in host order.
                let v6 = |at: usize| IpAddr::V6(Ipv6Addr::from((le64(e, at) as u128) << 64 | le64(e, at + 8) as u128));
                addrs = Some((v6(0), v6(16)));
            }
            5 => {
                if e.len() < 8 {
                    return Err("flow counter element too short");
                }
                // Aggregated records say how many flows they stand for;
                // nfdump counts a 0 as 1.
                count = le64(e, 0).max(1);
            }
            _ => {}
        }
        pos += len;
    }
    let (Some(g), Some((src, dst))) = (generic, addrs) else {
        return Ok(V3::Incomplete);
    };
    // Every path above left at least 48 bytes in `g`: one check here
    // instead of one per field read.
    let Some(g) = g.first_chunk::<48>() else {
        return Err("generic flow element too short");
    };
    if !wanted(g[44], le16(g, 42)) {
        return Ok(V3::Refused(count));
    }
    let f = Flow {
        src,
        dst,
        start_ms: le64(g, 0),
        end_ms: le64(g, 8),
        packets: le64(g, 24),
        bytes: le64(g, 32),
        src_port: le16(g, 40),
        dst_port: le16(g, 42),
        proto: g[44],
        tcp_flags: g[45],
    };
    Ok(V3::Flow(f, count))
}

/// Writes an nfdump 1.7 file holding `flows` (for tests, fuzz seeds and the
/// benchmark): one V3 record per flow (generic flow + addresses), blocks of
/// at most `per_block` records, compressed with `compression` as stored
/// blocks (LZ4 literal-only sequences; LZO one literal run and the end
/// marker), which every decompressor reads.
pub fn write(flows: &[Flow], compression: Compression, per_block: usize) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    let mut blocks = 0u32;
    for chunk in flows.chunks(per_block.max(1)) {
        let mut body = Vec::new();
        for f in chunk {
            let v6 = f.src.is_ipv6();
            let size = V3_HEADER_LEN + 52 + if v6 { 36 } else { 12 };
            body.extend_from_slice(&V3_RECORD.to_le_bytes());
            body.extend_from_slice(&(size as u16).to_le_bytes());
            body.extend_from_slice(&2u16.to_le_bytes());
            body.extend_from_slice(&[0, 0, 1, 0, 0, 10]);
            body.extend_from_slice(&1u16.to_le_bytes());
            body.extend_from_slice(&52u16.to_le_bytes());
            for v in [f.start_ms, f.end_ms, f.end_ms, f.packets, f.bytes] {
                body.extend_from_slice(&v.to_le_bytes());
            }
            body.extend_from_slice(&f.src_port.to_le_bytes());
            body.extend_from_slice(&f.dst_port.to_le_bytes());
            body.extend_from_slice(&[f.proto, f.tcp_flags, 0, 0]);
            match (f.src, f.dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    body.extend_from_slice(&[2, 0, 12, 0]);
                    body.extend_from_slice(&u32::from(s).to_le_bytes());
                    body.extend_from_slice(&u32::from(d).to_le_bytes());
                }
                (s, d) => {
                    body.extend_from_slice(&[3, 0, 36, 0]);
                    for a in [s, d] {
                        let v = match a {
                            IpAddr::V6(v) => u128::from(v),
                            IpAddr::V4(v) => u128::from(v.to_ipv6_mapped()),
                        };
                        body.extend_from_slice(&((v >> 64) as u64).to_le_bytes());
                        body.extend_from_slice(&(v as u64).to_le_bytes());
                    }
                }
            }
        }
        let stored = match compression {
            Compression::None => body,
            Compression::Lz4 => lz4_stored(&body),
            Compression::Lzo => lzo_stored(&body),
        };
        out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
        out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
        out.extend_from_slice(&[3, 0, 0, 0]);
        out.extend_from_slice(&stored);
        blocks += 1;
    }
    out[0..2].copy_from_slice(&MAGIC.to_le_bytes());
    out[2..4].copy_from_slice(&2u16.to_le_bytes());
    out[4..8].copy_from_slice(&0x0107_0100u32.to_le_bytes());
    out[16] = match compression {
        Compression::None => 0,
        Compression::Lzo => 1,
        Compression::Lz4 => 3,
    };
    out[32..36].copy_from_slice(&(MAX_BLOCK as u32).to_le_bytes());
    out[36..40].copy_from_slice(&blocks.to_le_bytes());
    out
}

fn lz4_stored(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + b.len() / 255 + 16);
    let n = b.len();
    if n >= 15 {
        out.push(0xf0);
        let mut rest = n - 15;
        while rest >= 255 {
            out.push(255);
            rest -= 255;
        }
        out.push(rest as u8);
    } else {
        out.push((n as u8) << 4);
    }
    out.extend_from_slice(b);
    out
}

fn lzo_stored(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + b.len() / 255 + 16);
    let n = b.len();
    if n > 0 && n <= 238 {
        out.push((n + 17) as u8);
    } else if n > 238 {
        // A run of n = 3 + 15 + 255 * zeros + last.
        out.push(0);
        let mut rest = n - 18;
        while rest > 255 {
            out.push(0);
            rest -= 255;
        }
        out.push(rest as u8);
    }
    out.extend_from_slice(b);
    out.extend_from_slice(&[0x11, 0, 0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flows(n: usize) -> Vec<Flow> {
        (0..n)
            .map(|i| Flow {
                src: if i % 3 == 0 {
                    "2001:db8:100:1::77".parse().unwrap()
                } else {
                    IpAddr::V4(Ipv4Addr::new(198, 51, 100, (i % 250) as u8))
                },
                dst: if i % 3 == 0 {
                    "2001:db8:ffff::1".parse().unwrap()
                } else {
                    IpAddr::V4(Ipv4Addr::new(100, 64, 0, 25))
                },
                src_port: 40000 + i as u16,
                dst_port: 25,
                proto: 6,
                tcp_flags: 2,
                packets: 2,
                bytes: 80,
                start_ms: 1_764_000_000_000 + i as u64,
                end_ms: 1_764_000_001_000 + i as u64,
            })
            .collect()
    }

    fn read_all(data: &[u8]) -> (Vec<Counted>, Reader<&[u8]>) {
        let mut r = Reader::new(data).unwrap();
        let (mut all, mut buf) = (Vec::new(), Vec::new());
        while r.next_block(&mut buf).unwrap() {
            all.append(&mut buf);
        }
        (all, r)
    }

    #[test]
    fn round_trip_each_compression() {
        let want = flows(1000);
        for c in [Compression::None, Compression::Lz4, Compression::Lzo] {
            let file = write(&want, c, 300);
            let (got, r) = read_all(&file);
            assert_eq!(got.iter().map(|x| x.0).collect::<Vec<_>>(), want, "{c:?}");
            assert!(got.iter().all(|x| x.1 == 1));
            assert_eq!((r.stats.blocks, r.stats.flows, r.problems_total), (4, 1000, 0), "{c:?}");
        }
    }

    /// A test of protocol and port before the flow is built keeps the
    /// flows it takes, in order, hands over the count of the others, and
    /// leaves the counts of what was read as they are without it.
    #[test]
    fn flows_refused_before_they_are_built_are_still_counted() {
        let mut want = flows(900);
        for (i, f) in want.iter_mut().enumerate() {
            f.dst_port = [25, 443, 25, 53][i % 4];
            f.proto = if i % 5 == 0 { 17 } else { 6 };
        }
        for c in [Compression::None, Compression::Lz4, Compression::Lzo] {
            let file = write(&want, c, 250);
            let (mut all, mut kept, mut refused) = (Stats::default(), Vec::new(), 0);
            let mut some = Stats::default();
            let mut r = Reader::new(&file[..]).unwrap();
            let (mut raw, mut scratch) = (Vec::new(), Vec::new());
            while let Some(b) = r.next_raw(&mut raw).unwrap() {
                assert!(decode_block(&b, &raw, &mut scratch, &mut all, &mut |_, _| {}).is_none());
                let wanted = |proto: u8, port: u16| proto == 6 && port == 25;
                let p = decode_block_where(
                    &b,
                    &raw,
                    &mut scratch,
                    &mut some,
                    &wanted,
                    &mut |n| refused += n,
                    &mut |f, n| kept.push((*f, n)),
                );
                assert!(p.is_none());
            }
            let expected: Vec<Counted> =
                want.iter().filter(|f| f.proto == 6 && f.dst_port == 25).map(|f| (*f, 1)).collect();
            assert!(expected.len() > 300 && expected.len() < 600, "{}", expected.len());
            assert_eq!(kept, expected, "{c:?}");
            assert_eq!(refused, (want.len() - expected.len()) as u64, "{c:?}");
            assert_eq!(some, all, "{c:?}");
            assert_eq!(some.flows, 900);
        }
    }

    /// A V3 record of these elements (each its type and contents).
    fn record(elements: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let size = V3_HEADER_LEN + elements.iter().map(|e| 4 + e.1.len()).sum::<usize>();
        let mut r = Vec::new();
        r.extend_from_slice(&V3_RECORD.to_le_bytes());
        r.extend_from_slice(&(size as u16).to_le_bytes());
        r.extend_from_slice(&(elements.len() as u16).to_le_bytes());
        r.extend_from_slice(&[0, 0, 1, 0, 0, 10]);
        for (kind, body) in elements {
            r.extend_from_slice(&kind.to_le_bytes());
            r.extend_from_slice(&((4 + body.len()) as u16).to_le_bytes());
            r.extend_from_slice(body);
        }
        r
    }

    fn generic(f: &Flow, extra: usize) -> (u16, Vec<u8>) {
        let mut e = Vec::new();
        for v in [f.start_ms, f.end_ms, f.end_ms, f.packets, f.bytes] {
            e.extend_from_slice(&v.to_le_bytes());
        }
        e.extend_from_slice(&f.src_port.to_le_bytes());
        e.extend_from_slice(&f.dst_port.to_le_bytes());
        e.extend_from_slice(&[f.proto, f.tcp_flags, 0, 0]);
        e.resize(48 + extra, 0);
        (1, e)
    }

    fn ipv4(src: [u8; 4], dst: [u8; 4]) -> (u16, Vec<u8>) {
        let mut e = u32::from_be_bytes(src).to_le_bytes().to_vec();
        e.extend_from_slice(&u32::from_be_bytes(dst).to_le_bytes());
        (2, e)
    }

    fn decode(records: &[Vec<u8>]) -> Result<Vec<Counted>, (usize, &'static str)> {
        let mut got = Vec::new();
        decode_records(&records.concat(), records.len() as u32, &mut Stats::default(), &mut |f, n| got.push((*f, n)))?;
        Ok(got)
    }

    #[test]
    fn records_read_the_same_whatever_the_order_of_their_elements() {
        // nfcapd's usual layout (generic flow, then IPv4 addresses, then
        // the rest) is read at fixed offsets: the same elements in another
        // order or of other lengths, and what follows them (a flow
        // counter, a later address element that replaces the first), read
        // as the element walk reads them.
        let mut f = flows(2)[1];
        f.src = IpAddr::V4(Ipv4Addr::new(10, 0, 3, 7));
        f.dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25));
        let (a, b) = ([10, 0, 3, 7], [192, 0, 2, 25]);
        let counter = (5u16, 7u64.to_le_bytes().to_vec());
        let received = (12u16, vec![127, 0, 0, 1]);
        let usual = record(&[generic(&f, 0), ipv4(a, b), received.clone()]);
        let swapped = record(&[ipv4(a, b), received.clone(), generic(&f, 0)]);
        let longer = record(&[generic(&f, 8), ipv4(a, b)]);
        assert_eq!(decode(&[usual, swapped, longer]).unwrap(), vec![(f, 1); 3]);
        let counted = record(&[generic(&f, 0), ipv4(a, b), counter.clone()]);
        let counted_swapped = record(&[counter, ipv4(a, b), generic(&f, 0)]);
        assert_eq!(decode(&[counted, counted_swapped]).unwrap(), vec![(f, 7); 2]);
        // A second address element replaces the first, in either place.
        let mut g = f;
        g.src = IpAddr::V4(Ipv4Addr::new(10, 0, 9, 9));
        let twice = record(&[generic(&f, 0), ipv4(a, b), ipv4([10, 0, 9, 9], b)]);
        let twice_swapped = record(&[ipv4(a, b), generic(&f, 0), ipv4([10, 0, 9, 9], b)]);
        assert_eq!(decode(&[twice, twice_swapped]).unwrap(), vec![(g, 1); 2]);
        // The usual headers in a record too short for the addresses: malformed, as walked.
        let mut cut = record(&[generic(&f, 0), ipv4(a, b)]);
        cut.truncate(V3_COMMON_V4_LEN - 4);
        cut[2..4].copy_from_slice(&((V3_COMMON_V4_LEN - 4) as u16).to_le_bytes());
        assert_eq!(decode(&[cut]), Err((0, "V3 element length")));
    }

    #[test]
    fn refusals_name_the_fix() {
        let mut file = write(&flows(3), Compression::None, 10);
        file[16] = 2;
        assert!(Reader::new(&file[..]).err().unwrap().0.contains("nfdump -r FILE -y -w NEW"));
        file[2] = 1;
        assert!(Reader::new(&file[..]).err().unwrap().0.contains("nfdump 1.6"));
        assert!(Reader::new(&b"\xa5\x0c\x00\x02"[..]).err().unwrap().0.contains("big-endian"));
        assert!(Reader::new(&b"GIF89a"[..]).err().unwrap().0.contains("bad magic"));
    }

    #[test]
    fn cut_and_corrupt_files_are_counted_and_named() {
        let file = write(&flows(20), Compression::Lz4, 10);
        // Cut inside the second block: the first block's flows, a warning.
        let (got, r) = read_all(&file[..file.len() - 5]);
        assert_eq!(got.len(), 10);
        assert!(r.stats.truncated && r.problems[0].message.contains("cut short"), "{:?}", r.problems);
        // A first block that does not decompress (a match before its
        // start): skipped, the second read.
        let one = write(&flows(10), Compression::Lz4, 10);
        let mut bad = one[..HEADER_LEN].to_vec();
        bad.extend_from_slice(&[1, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 0x10, b'a', 5, 0]);
        bad.extend_from_slice(&one[HEADER_LEN..]);
        bad[36..40].copy_from_slice(&2u32.to_le_bytes());
        let (got, r) = read_all(&bad);
        assert_eq!((got.len(), r.stats.blocks_corrupt), (10, 1));
        assert_eq!(r.problems[0].offset, HEADER_LEN as u64);
        // An uncompressed record whose size overruns: the block's flows before it are kept.
        let mut bad = write(&flows(4), Compression::None, 10);
        let second = HEADER_LEN + BLOCK_HEADER_LEN + V3_HEADER_LEN + 52 + 36;
        bad[second + 2..second + 4].copy_from_slice(&9999u16.to_le_bytes());
        let (got, r) = read_all(&bad);
        assert_eq!((got.len(), r.stats.records_malformed), (1, 1));
        assert!(r.problems[0].message.contains(&format!("at byte {second}")), "{:?}", r.problems);
        // A header that lists no blocks with data after it (nfcapd still writing).
        let mut open = write(&flows(4), Compression::None, 10);
        open[36..40].copy_from_slice(&0u32.to_le_bytes());
        let (got, r) = read_all(&open);
        assert!(got.is_empty() && r.problems[0].message.contains("still writing"));
    }
}
