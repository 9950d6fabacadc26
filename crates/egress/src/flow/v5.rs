//! NetFlow v5: fixed 24-byte header, fixed 48-byte IPv4 records.

use super::{be16, be32, Flow, Malformed};
use std::net::{IpAddr, Ipv4Addr};

const HEADER: usize = 24;
const RECORD: usize = 48;

pub fn decode(d: &[u8], out: &mut Vec<Flow>) -> Result<(), Malformed> {
    let count = be16(d, 2)? as usize;
    let uptime = be32(d, 4)? as u64;
    let secs = be32(d, 8)? as u64;
    let nsecs = be32(d, 12)? as u64;
    if count == 0 || count > 30 {
        // The format caps a datagram at 30 records.
        return Err(Malformed("v5 record count"));
    }
    if d.len() < HEADER + count * RECORD {
        return Err(Malformed("v5 truncated"));
    }
    // Router uptime at export, in Unix milliseconds, anchors First/Last.
    let boot_ms = (secs * 1000 + nsecs / 1_000_000).saturating_sub(uptime);
    for i in 0..count {
        let r = &d[HEADER + i * RECORD..HEADER + (i + 1) * RECORD];
        let ip = |at: usize| IpAddr::V4(Ipv4Addr::new(r[at], r[at + 1], r[at + 2], r[at + 3]));
        let first = be32(r, 24)? as u64;
        let last = be32(r, 28)? as u64;
        out.push(Flow {
            src: ip(0),
            dst: ip(4),
            packets: be32(r, 16)? as u64,
            bytes: be32(r, 20)? as u64,
            start_ms: boot_ms + first,
            end_ms: boot_ms + last,
            src_port: be16(r, 32)?,
            dst_port: be16(r, 34)?,
            tcp_flags: r[37],
            proto: r[38],
        });
    }
    Ok(())
}
