//! Encoders for NetFlow v5, v9 and IPFIX datagrams: the inverse of the
//! decoders, for tests, fuzz seeds and the benchmark's synthetic exports.
//! Only the fields port25 reads are written.

use super::Flow;
use std::net::IpAddr;

/// IPFIX fields for IPv4 flows with absolute millisecond timestamps.
pub const IPFIX_V4: &[(u16, u16)] =
    &[(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (2, 8), (1, 8), (152, 8), (153, 8)];
/// IPFIX fields for IPv6 flows.
pub const IPFIX_V6: &[(u16, u16)] =
    &[(27, 16), (28, 16), (7, 2), (11, 2), (4, 1), (6, 1), (2, 8), (1, 8), (152, 8), (153, 8)];
/// NetFlow v9 fields (IPv4), timestamps relative to the header's uptime.
pub const V9_V4: &[(u16, u16)] = &[(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (2, 4), (1, 4), (22, 4), (21, 4)];

fn put_field(out: &mut Vec<u8>, f: &Flow, id: u16, len: u16, boot_ms: u64) {
    let ip = |a: IpAddr| match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    };
    let v: u64 = match id {
        8 | 12 | 27 | 28 => {
            out.extend_from_slice(&ip(if id == 8 || id == 27 { f.src } else { f.dst }));
            return;
        }
        7 => f.src_port as u64,
        11 => f.dst_port as u64,
        4 => f.proto as u64,
        6 => f.tcp_flags as u64,
        2 => f.packets,
        1 => f.bytes,
        152 => f.start_ms,
        153 => f.end_ms,
        22 => f.start_ms - boot_ms,
        21 => f.end_ms - boot_ms,
        _ => 0,
    };
    out.extend_from_slice(&v.to_be_bytes()[8 - len as usize..]);
}

/// A NetFlow v5 datagram (at most 30 flows, IPv4 only).
pub fn v5(flows: &[Flow], export_secs: u32, uptime_ms: u32) -> Vec<u8> {
    let mut d = Vec::with_capacity(24 + 48 * flows.len());
    d.extend_from_slice(&5u16.to_be_bytes());
    d.extend_from_slice(&(flows.len() as u16).to_be_bytes());
    d.extend_from_slice(&uptime_ms.to_be_bytes());
    d.extend_from_slice(&export_secs.to_be_bytes());
    d.extend_from_slice(&[0; 12]);
    let boot = export_secs as u64 * 1000 - uptime_ms as u64;
    for f in flows {
        let (IpAddr::V4(s), IpAddr::V4(t)) = (f.src, f.dst) else {
            continue;
        };
        d.extend_from_slice(&s.octets());
        d.extend_from_slice(&t.octets());
        d.extend_from_slice(&[0; 8]);
        d.extend_from_slice(&(f.packets as u32).to_be_bytes());
        d.extend_from_slice(&(f.bytes as u32).to_be_bytes());
        d.extend_from_slice(&((f.start_ms - boot) as u32).to_be_bytes());
        d.extend_from_slice(&((f.end_ms - boot) as u32).to_be_bytes());
        d.extend_from_slice(&f.src_port.to_be_bytes());
        d.extend_from_slice(&f.dst_port.to_be_bytes());
        d.extend_from_slice(&[0, f.tcp_flags, f.proto, 0]);
        d.extend_from_slice(&[0; 8]);
    }
    d
}

fn set(id: u16, body: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(body.len() + 4);
    s.extend_from_slice(&id.to_be_bytes());
    s.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    s.extend_from_slice(body);
    s
}

/// A template set: v9 (set id 0) or IPFIX (set id 2).
pub fn template_set(ipfix: bool, template_id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&template_id.to_be_bytes());
    b.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (id, len) in fields {
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&len.to_be_bytes());
    }
    set(if ipfix { 2 } else { 0 }, &b)
}

/// A data set of flows encoded with `fields`; `boot_ms` anchors uptime fields.
pub fn data_set(template_id: u16, fields: &[(u16, u16)], flows: &[Flow], boot_ms: u64) -> Vec<u8> {
    let mut b = Vec::new();
    for f in flows {
        for (id, len) in fields {
            put_field(&mut b, f, *id, *len, boot_ms);
        }
    }
    set(template_id, &b)
}

/// An IPFIX message around `sets`.
pub fn ipfix(domain: u32, export_secs: u32, seq: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let len: usize = 16 + sets.iter().map(Vec::len).sum::<usize>();
    let mut d = Vec::with_capacity(len);
    d.extend_from_slice(&10u16.to_be_bytes());
    d.extend_from_slice(&(len as u16).to_be_bytes());
    d.extend_from_slice(&export_secs.to_be_bytes());
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(&domain.to_be_bytes());
    for s in sets {
        d.extend_from_slice(s);
    }
    d
}

/// A NetFlow v9 datagram around `sets`.
pub fn v9(source_id: u32, export_secs: u32, uptime_ms: u32, seq: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&9u16.to_be_bytes());
    d.extend_from_slice(&(sets.len() as u16).to_be_bytes());
    d.extend_from_slice(&uptime_ms.to_be_bytes());
    d.extend_from_slice(&export_secs.to_be_bytes());
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(&source_id.to_be_bytes());
    for s in sets {
        d.extend_from_slice(s);
    }
    d
}
