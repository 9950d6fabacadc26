//! Classic pcap files (what tcpdump -w writes) holding exported datagrams:
//! the way flow exports are archived and replayed. Yields the UDP payloads
//! with their source address; non-UDP packets and IP fragments are counted
//! and skipped.
//!
//! Two readers, one decoder ([`Format`]): [`Stream`] reads a file (any
//! [`Read`]) one record at a time into one buffer, so memory stays one
//! record however large the capture (issue 20: memory bounded by the
//! leases and sessions, never by the flows); [`Reader`] walks a slice
//! already in memory (the fuzz target). A record's captured length is
//! capped at [`MAX_RECORD`], whatever the file header's snaplen says (a
//! corrupt or hostile length would otherwise be an allocation of up to
//! 4 GiB): a longer record is skipped unread and counted.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The most bytes of one captured packet kept: a UDP datagram is at most
/// 64 KiB plus its link and IP headers. Longer records (TSO/GRO frames a
/// host capture can hold, or a corrupt length) cannot be flow exports.
pub const MAX_RECORD: usize = 256 * 1024;

const FILE_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapError(pub String);

impl std::fmt::Display for PcapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct Datagram<'a> {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// Capture time, Unix milliseconds.
    pub ts_ms: u64,
    pub payload: &'a [u8],
}

/// What the file header says about every record: byte order, time
/// resolution, link type. Both readers decode with it.
#[derive(Debug, Clone, Copy)]
struct Format {
    big_endian: bool,
    nanos: bool,
    linktype: u32,
}

/// One record header: capture time and captured length.
struct Record {
    ts_ms: u64,
    caplen: usize,
}

impl Format {
    /// The file header (`header`: the file's first bytes, at least 24 for a
    /// pcap file).
    fn parse(header: &[u8]) -> Result<Format, PcapError> {
        let magic = header.get(..4).ok_or_else(|| PcapError("not a pcap file: shorter than its header".into()))?;
        let (big_endian, nanos) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                return Err(PcapError("pcapng is not supported: convert with `editcap -F pcap in.pcapng out.pcap` or capture with `tcpdump -w` (pcap)".into()))
            }
            _ => return Err(PcapError("not a pcap file (bad magic number)".into())),
        };
        if header.len() < FILE_HEADER {
            return Err(PcapError("not a pcap file: shorter than its header".into()));
        }
        let mut f = Format { big_endian, nanos, linktype: 0 };
        f.linktype = f.u32(header, 20) & 0x0fff_ffff;
        if ![0, 1, 12, 101, 113, 276, 228, 229].contains(&f.linktype) {
            return Err(PcapError(format!(
                "pcap link type {} is not supported (Ethernet, Linux cooked, raw IP and loopback are)",
                f.linktype
            )));
        }
        Ok(f)
    }

    /// The u32 at `at` in `b` (the caller checked the length).
    fn u32(&self, b: &[u8], at: usize) -> u32 {
        let b = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// A record header (16 bytes).
    fn record(&self, h: &[u8]) -> Record {
        let secs = self.u32(h, 0) as u64;
        let frac = self.u32(h, 4) as u64;
        let caplen = self.u32(h, 8) as usize;
        Record { ts_ms: secs * 1000 + if self.nanos { frac / 1_000_000 } else { frac / 1000 }, caplen }
    }

    /// The UDP datagram a captured frame holds, if it holds one.
    fn datagram<'b>(&self, ts_ms: u64, frame: &'b [u8]) -> Option<Datagram<'b>> {
        let (src, seg) = self.ip_packet(frame).and_then(udp)?;
        if seg.len() < 8 {
            return None;
        }
        let ulen = (u16::from_be_bytes([seg[4], seg[5]]) as usize).clamp(8, seg.len());
        Some(Datagram {
            src,
            src_port: u16::from_be_bytes([seg[0], seg[1]]),
            dst_port: u16::from_be_bytes([seg[2], seg[3]]),
            ts_ms,
            payload: &seg[8..ulen],
        })
    }

    /// The IP packet inside a link-layer frame, with its version.
    fn ip_packet<'b>(&self, f: &'b [u8]) -> Option<&'b [u8]> {
        let (ethertype, rest) = match self.linktype {
            1 => {
                let mut off = 12;
                let mut et = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
                while et == 0x8100 || et == 0x88a8 {
                    off += 4;
                    et = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
                }
                (Some(et), f.get(off + 2..)?)
            }
            113 => (Some(u16::from_be_bytes([*f.get(14)?, *f.get(15)?])), f.get(16..)?),
            276 => (Some(u16::from_be_bytes([*f.first()?, *f.get(1)?])), f.get(20..)?),
            0 => (None, f.get(4..)?),
            _ => (None, f),
        };
        match ethertype {
            Some(0x0800) | Some(0x86dd) | None => Some(rest),
            _ => None,
        }
    }
}

fn udp(ip: &[u8]) -> Option<(IpAddr, &[u8])> {
    match ip.first()? >> 4 {
        4 => {
            let ihl = (*ip.first()? & 0x0f) as usize * 4;
            let total = u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]) as usize;
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
            if *ip.get(9)? != 17 || frag & 0x3fff != 0 || ihl < 20 {
                return None;
            }
            let src = IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(12..16)?).ok()?));
            Some((src, ip.get(ihl..total.min(ip.len()))?))
        }
        6 => {
            if *ip.get(6)? != 17 {
                return None;
            }
            let plen = u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]) as usize;
            let src = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip.get(8..24)?).ok()?));
            Some((src, ip.get(40..(40 + plen).min(ip.len()))?))
        }
        _ => None,
    }
}

/// What a reader counted besides the datagrams it yielded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Packets that were not IPv4/IPv6 UDP or were fragments.
    pub skipped: u64,
    /// Records longer than [`MAX_RECORD`], skipped unread.
    pub oversized: u64,
    /// A record header or body cut short at the end of the file.
    pub truncated: bool,
}

/// A pcap file in memory.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    format: Format,
    counts: Counts,
}

impl<'a> Reader<'a> {
    /// Bytes of the file read so far (for a progress bar).
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn new(data: &'a [u8]) -> Result<Reader<'a>, PcapError> {
        let format = Format::parse(data)?;
        Ok(Reader { data, pos: FILE_HEADER, format, counts: Counts::default() })
    }

    /// What was counted so far; complete once the iterator ended.
    pub fn counts(&self) -> Counts {
        self.counts
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Datagram<'a>;
    fn next(&mut self) -> Option<Datagram<'a>> {
        loop {
            let rest = &self.data[self.pos..];
            if rest.is_empty() {
                return None;
            }
            let Some(header) = rest.get(..RECORD_HEADER) else {
                self.counts.truncated = true;
                return None;
            };
            let record = self.format.record(header);
            let Some(frame) = rest.get(RECORD_HEADER..RECORD_HEADER + record.caplen) else {
                self.counts.truncated = true;
                return None;
            };
            self.pos += RECORD_HEADER + record.caplen;
            if record.caplen > MAX_RECORD {
                self.counts.oversized += 1;
                continue;
            }
            match self.format.datagram(record.ts_ms, frame) {
                Some(d) => return Some(d),
                None => self.counts.skipped += 1,
            }
        }
    }
}

/// A pcap file read from `R` one record at a time: memory is one record
/// (at most [`MAX_RECORD`]) whatever the file's size. Give it a buffered
/// reader (`BufReader`): it asks for a record header, then the record.
pub struct Stream<R> {
    input: R,
    format: Format,
    /// The current record's captured bytes.
    frame: Vec<u8>,
    /// Bytes of the input consumed so far, the file header included.
    pos: u64,
    counts: Counts,
}

impl<R: Read> Stream<R> {
    /// Reads the file header; an input shorter than it or not a pcap file
    /// (pcapng included) is a `PcapError`, an I/O error is one too.
    pub fn new(mut input: R) -> Result<Stream<R>, PcapError> {
        let mut header = [0u8; FILE_HEADER];
        let n = fill(&mut input, &mut header).map_err(|e| PcapError(format!("reading the pcap header: {e}")))?;
        let format = Format::parse(&header[..n])?;
        Ok(Stream { input, format, frame: Vec::new(), pos: FILE_HEADER as u64, counts: Counts::default() })
    }

    /// Bytes of the input consumed so far (for a progress bar).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// What was counted so far; complete once `next_datagram` answered `Ok(None)`.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The next datagram; `Ok(None)` at the end of the input (a record cut
    /// short there sets `truncated`); `Err` when reading fails.
    pub fn next_datagram(&mut self) -> io::Result<Option<Datagram<'_>>> {
        let ts_ms = loop {
            let mut header = [0u8; RECORD_HEADER];
            let n = fill(&mut self.input, &mut header)?;
            self.pos += n as u64;
            if n < RECORD_HEADER {
                self.counts.truncated |= n > 0;
                return Ok(None);
            }
            let record = self.format.record(&header);
            if record.caplen > MAX_RECORD {
                // Past it without keeping it: copied into nothing.
                let want = record.caplen as u64;
                let n = io::copy(&mut (&mut self.input).take(want), &mut io::sink())?;
                self.pos += n;
                if n < want {
                    self.counts.truncated = true;
                    return Ok(None);
                }
                self.counts.oversized += 1;
                continue;
            }
            self.frame.resize(record.caplen, 0);
            let n = fill(&mut self.input, &mut self.frame)?;
            self.pos += n as u64;
            if n < record.caplen {
                self.counts.truncated = true;
                return Ok(None);
            }
            if self.format.datagram(record.ts_ms, &self.frame).is_some() {
                break record.ts_ms;
            }
            self.counts.skipped += 1;
        };
        // Decoded again to hand out the borrow: a datagram borrowed inside
        // the loop cannot be returned from it (the borrow checker sees the
        // next pass resizing the frame). Decoding is a few header reads.
        Ok(self.format.datagram(ts_ms, &self.frame))
    }
}

/// Reads until `buf` is full or the input ends: the bytes read.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Writes a pcap (Ethernet-less, linktype raw IPv4) holding one UDP datagram
/// per payload: used by tests and the benchmark to build replayable exports.
pub fn write_raw_udp(payloads: &[Vec<u8>], src: Ipv4Addr, dst: Ipv4Addr, dst_port: u16, ts_secs: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&101u32.to_le_bytes());
    for (i, p) in payloads.iter().enumerate() {
        let total = 28 + p.len();
        out.extend_from_slice(&ts_secs.to_le_bytes());
        out.extend_from_slice(&(i as u32 % 1_000_000).to_le_bytes());
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(total as u32).to_le_bytes());
        let mut ip = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&dst.octets());
        let ulen = 8 + p.len();
        ip.extend_from_slice(&[0x08, 0x00, (dst_port >> 8) as u8, dst_port as u8, (ulen >> 8) as u8, ulen as u8, 0, 0]);
        ip.extend_from_slice(p);
        out.extend_from_slice(&ip);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a reader yields, owned: source, ports, time, payload.
    type Seen = (IpAddr, u16, u16, u64, Vec<u8>);

    fn from_slice(data: &[u8]) -> (Vec<Seen>, Counts) {
        let mut r = Reader::new(data).unwrap();
        let seen = r.by_ref().map(|d| (d.src, d.src_port, d.dst_port, d.ts_ms, d.payload.to_vec())).collect();
        (seen, r.counts())
    }

    fn from_stream(input: impl Read) -> (Vec<Seen>, Counts, u64) {
        let mut s = Stream::new(input).unwrap();
        let mut seen = Vec::new();
        while let Some(d) = s.next_datagram().unwrap() {
            seen.push((d.src, d.src_port, d.dst_port, d.ts_ms, d.payload.to_vec()));
        }
        (seen, s.counts(), s.position())
    }

    /// A reader that hands out 1 to 7 bytes per read, in turn, so that
    /// record headers and bodies are split at every offset somewhere.
    struct Trickle<'a> {
        data: &'a [u8],
        turn: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.turn += 1;
            let n = (self.turn % 7 + 1).min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Datagrams of many sizes, with a packet that is not UDP among them.
    fn capture() -> Vec<u8> {
        let payloads: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 3 * i as usize]).collect();
        let mut data = write_raw_udp(&payloads, [192, 0, 2, 1].into(), [192, 0, 2, 2].into(), 2055, 1_764_000_000);
        // One TCP packet (protocol 6) after them: counted as skipped.
        let mut tcp = write_raw_udp(&[vec![7; 20]], [192, 0, 2, 3].into(), [192, 0, 2, 2].into(), 25, 1_764_000_001);
        tcp[FILE_HEADER + RECORD_HEADER + 9] = 6;
        data.extend_from_slice(&tcp[FILE_HEADER..]);
        data
    }

    #[test]
    fn the_stream_yields_what_the_slice_reader_does_across_any_split() {
        let data = capture();
        let (want, counts) = from_slice(&data);
        assert_eq!(want.len(), 40);
        assert_eq!(want[5], (IpAddr::from([192, 0, 2, 1]), 2048, 2055, 1_764_000_000_000, vec![5; 15]));
        assert_eq!(counts, Counts { skipped: 1, oversized: 0, truncated: false });
        for input in [Box::new(Trickle { data: &data, turn: 0 }) as Box<dyn Read>, Box::new(&data[..])] {
            let (seen, c, position) = from_stream(input);
            assert_eq!(seen, want);
            assert_eq!(c, counts);
            assert_eq!(position, data.len() as u64, "every byte consumed");
        }
    }

    /// A capture cut anywhere (a capture still running): the datagrams
    /// before the cut, and "truncated" unless the cut falls between records.
    #[test]
    fn a_capture_cut_anywhere_reads_up_to_the_cut() {
        let data = capture();
        let (all, _) = from_slice(&data);
        let mut boundaries = vec![FILE_HEADER];
        let mut at = FILE_HEADER;
        while at < data.len() {
            at += RECORD_HEADER + u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
            boundaries.push(at);
        }
        for cut in FILE_HEADER..data.len() {
            let (want, counts) = from_slice(&data[..cut]);
            assert_eq!(counts.truncated, !boundaries.contains(&cut), "cut at {cut}");
            assert!(all.starts_with(&want));
            let (seen, c, position) = from_stream(Trickle { data: &data[..cut], turn: cut });
            assert_eq!((seen, c, position), (want, counts, cut as u64), "cut at {cut}");
        }
    }

    /// A record longer than MAX_RECORD (whatever the snaplen says) is
    /// skipped, counted, and the records after it are read; cut inside,
    /// the capture is truncated there.
    #[test]
    fn an_oversized_record_is_skipped_unread() {
        let good = write_raw_udp(&[vec![1; 10]], [192, 0, 2, 1].into(), [192, 0, 2, 2].into(), 2055, 1_764_000_000);
        let mut data = good.clone();
        let big = MAX_RECORD + 1;
        data.extend_from_slice(&[0; 8]);
        data.extend_from_slice(&(big as u32).to_le_bytes());
        data.extend_from_slice(&(big as u32).to_le_bytes());
        data.resize(data.len() + big, 0x45);
        data.extend_from_slice(&good[FILE_HEADER..]);
        let (want, counts) = from_slice(&data);
        assert_eq!(want.len(), 2);
        assert_eq!(counts, Counts { skipped: 0, oversized: 1, truncated: false });
        assert_eq!(from_stream(&data[..]), (want.clone(), counts, data.len() as u64));
        let cut = good.len() + RECORD_HEADER + 1000;
        let counts = Counts { skipped: 0, oversized: 0, truncated: true };
        assert_eq!(from_stream(&data[..cut]), (want[..1].to_vec(), counts, cut as u64));
        assert_eq!(from_slice(&data[..cut]), (want[..1].to_vec(), counts));
    }

    #[test]
    fn what_is_not_a_pcap_file_is_refused_by_both() {
        for (data, error) in [
            (&b"\xd4\xc3\xb2\xa1\x02\x00"[..], "shorter than its header"),
            (&b"\x0a\x0d\x0d\x0a and then pcapng blocks"[..], "pcapng is not supported"),
            (&b"From alice@example.org Mon Dec  1 00:00:00 2025"[..], "bad magic number"),
            (&b""[..], "shorter than its header"),
        ] {
            assert!(Reader::new(data).err().unwrap().0.contains(error), "{error}");
            assert!(Stream::new(data).err().unwrap().0.contains(error), "{error}");
        }
    }
}
