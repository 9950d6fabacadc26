//! Classic pcap files (what tcpdump -w writes) holding exported datagrams:
//! the way flow exports are archived and replayed. Yields the UDP payloads
//! with their source address; non-UDP packets and IP fragments are counted
//! and skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    big_endian: bool,
    nanos: bool,
    linktype: u32,
    /// Packets that were not IPv4/IPv6 UDP or were fragments.
    pub skipped: u64,
    /// A record header or body cut short at the end of the file.
    pub truncated: bool,
}

impl<'a> Reader<'a> {
    /// Bytes of the file read so far (for a progress bar).
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn new(data: &'a [u8]) -> Result<Reader<'a>, PcapError> {
        let magic = data.get(..4).ok_or_else(|| PcapError("not a pcap file: shorter than its header".into()))?;
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
        if data.len() < 24 {
            return Err(PcapError("not a pcap file: shorter than its header".into()));
        }
        let mut r = Reader { data, pos: 24, big_endian, nanos, linktype: 0, skipped: 0, truncated: false };
        r.linktype = r.u32(20) & 0x0fff_ffff;
        if ![0, 1, 12, 101, 113, 276, 228, 229].contains(&r.linktype) {
            return Err(PcapError(format!(
                "pcap link type {} is not supported (Ethernet, Linux cooked, raw IP and loopback are)",
                r.linktype
            )));
        }
        Ok(r)
    }

    fn u32(&self, at: usize) -> u32 {
        let b = [self.data[at], self.data[at + 1], self.data[at + 2], self.data[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
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

impl<'a> Iterator for Reader<'a> {
    type Item = Datagram<'a>;
    fn next(&mut self) -> Option<Datagram<'a>> {
        loop {
            if self.pos == self.data.len() {
                return None;
            }
            if self.data.len() - self.pos < 16 {
                self.truncated = true;
                return None;
            }
            let secs = self.u32(self.pos) as u64;
            let frac = self.u32(self.pos + 4) as u64;
            let caplen = self.u32(self.pos + 8) as usize;
            let start = self.pos + 16;
            if caplen > self.data.len() - start {
                self.truncated = true;
                return None;
            }
            let frame = &self.data[start..start + caplen];
            self.pos = start + caplen;
            let ts_ms = secs * 1000 + if self.nanos { frac / 1_000_000 } else { frac / 1000 };
            let Some((src, seg)) = self.ip_packet(frame).and_then(udp) else {
                self.skipped += 1;
                continue;
            };
            if seg.len() < 8 {
                self.skipped += 1;
                continue;
            }
            let ulen = (u16::from_be_bytes([seg[4], seg[5]]) as usize).clamp(8, seg.len());
            return Some(Datagram {
                src,
                src_port: u16::from_be_bytes([seg[0], seg[1]]),
                dst_port: u16::from_be_bytes([seg[2], seg[3]]),
                ts_ms,
                payload: &seg[8..ulen],
            });
        }
    }
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
