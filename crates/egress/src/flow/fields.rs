//! Decoding data records through a template (shared by v9 and IPFIX, which
//! use the same information element numbers for everything needed here).

use super::template::{Template, VARLEN};
use super::{Context, Flow, Malformed, Stats};
use crate::attribution::cgnat::NatRecord;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Unsigned big-endian of any width (IPFIX reduced-size encoding, RFC 7011
/// section 6.2, lets an exporter send a 64-bit counter in 4 bytes).
fn uint(v: &[u8]) -> u64 {
    let v = if v.len() > 8 { &v[v.len() - 8..] } else { v };
    v.iter().fold(0u64, |acc, b| acc << 8 | *b as u64)
}

#[derive(Default)]
struct Rec {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    src_port: u16,
    dst_port: u16,
    proto: u8,
    tcp_flags: u8,
    packets: Option<u64>,
    bytes: Option<u64>,
    packets_total: u64,
    bytes_total: u64,
    start_abs: Option<u64>,
    end_abs: Option<u64>,
    start_up: Option<u64>,
    end_up: Option<u64>,
    init: Option<u64>,
    // RFC 8158 NAT event fields.
    nat_event: Option<u8>,
    post_src: Option<IpAddr>,
    post_port: Option<u16>,
    range_start: Option<u16>,
    range_end: Option<u16>,
    observed_ms: Option<u64>,
}

fn ip4(v: &[u8]) -> Option<IpAddr> {
    <[u8; 4]>::try_from(v).ok().map(|a| IpAddr::V4(Ipv4Addr::from(a)))
}

fn ip6(v: &[u8]) -> Option<IpAddr> {
    <[u8; 16]>::try_from(v).ok().map(|a| IpAddr::V6(Ipv6Addr::from(a)))
}

impl Rec {
    fn set(&mut self, id: u16, v: &[u8]) {
        match id {
            1 => self.bytes = Some(uint(v)),
            2 => self.packets = Some(uint(v)),
            85 => self.bytes_total = uint(v),
            86 => self.packets_total = uint(v),
            4 => self.proto = uint(v) as u8,
            // tcpControlBits is 2 bytes in IPFIX, 1 in v9: the low byte holds SYN..FIN.
            6 => self.tcp_flags = uint(v) as u8,
            7 => self.src_port = uint(v) as u16,
            11 => self.dst_port = uint(v) as u16,
            8 => self.src = ip4(v),
            12 => self.dst = ip4(v),
            27 => self.src = ip6(v),
            28 => self.dst = ip6(v),
            22 => self.start_up = Some(uint(v)),
            21 => self.end_up = Some(uint(v)),
            150 => self.start_abs = Some(uint(v).saturating_mul(1000)),
            151 => self.end_abs = Some(uint(v).saturating_mul(1000)),
            152 => self.start_abs = Some(uint(v)),
            153 => self.end_abs = Some(uint(v)),
            160 => self.init = Some(uint(v)),
            230 => self.nat_event = Some(uint(v) as u8),
            225 => self.post_src = ip4(v),
            281 => self.post_src = ip6(v),
            227 => self.post_port = Some(uint(v) as u16),
            361 => self.range_start = Some(uint(v) as u16),
            362 => self.range_end = Some(uint(v) as u16),
            323 => self.observed_ms = Some(uint(v)),
            _ => {}
        }
    }

    fn time(&self, abs: Option<u64>, up: Option<u64>, ctx: Context) -> u64 {
        if let Some(t) = abs {
            return t;
        }
        match (up, ctx.uptime_ms, ctx.init_ms) {
            // v9: the header's uptime anchors FIRST/LAST_SWITCHED.
            (Some(u), Some(now_up), _) => ctx.export_ms.saturating_add(u).saturating_sub(now_up),
            // IPFIX: the exporter's boot time from its options records.
            (Some(u), None, Some(init)) => init.saturating_add(u),
            _ => ctx.export_ms,
        }
    }
}

/// What records other than flows go to: an options record's boot time,
/// NAT events (tagged with their exporter).
pub(crate) struct Side<'a> {
    pub options_init: &'a mut Option<u64>,
    pub nat: &'a mut Vec<NatRecord>,
    pub exporter: IpAddr,
}

pub(crate) fn decode_records(
    t: &Template,
    body: &[u8],
    ctx: Context,
    out: &mut Vec<Flow>,
    stats: &mut Stats,
    side: Side,
) -> Result<(), Malformed> {
    let Side { options_init, nat, exporter } = side;
    let mut pos = 0usize;
    // Anything shorter than the smallest record is padding.
    while body.len() - pos >= t.min_len.max(1) {
        let mut rec = Rec::default();
        for f in &t.fields {
            let len = if f.len == VARLEN {
                let l = *body.get(pos).ok_or(Malformed("truncated varlen"))? as usize;
                pos += 1;
                if l == 255 {
                    let l = super::be16(body, pos)? as usize;
                    pos += 2;
                    l
                } else {
                    l
                }
            } else {
                f.len as usize
            };
            let v = body.get(pos..pos + len).ok_or(Malformed("record overruns its set"))?;
            pos += len;
            if f.enterprise == 0 {
                rec.set(f.id, v);
            }
        }
        if t.options {
            if rec.init.is_some() {
                *options_init = rec.init;
            }
            continue;
        }
        if let Some(event) = rec.nat_event {
            // A NAT event (RFC 8158), not a flow: for CGNAT attribution.
            stats.nat_events += 1;
            if nat.len() < super::MAX_NAT_RECORDS {
                nat.push(NatRecord {
                    exporter,
                    event,
                    inside: rec.src,
                    outside: rec.post_src,
                    first: rec.range_start,
                    last: rec.range_end,
                    port: rec.post_port,
                    time_ms: rec.observed_ms.or(rec.start_abs).unwrap_or(ctx.export_ms),
                });
            } else {
                stats.nat_events_dropped += 1;
            }
            continue;
        }
        let (Some(src), Some(dst)) = (rec.src, rec.dst) else {
            stats.records_incomplete += 1;
            continue;
        };
        out.push(Flow {
            src,
            dst,
            src_port: rec.src_port,
            dst_port: rec.dst_port,
            proto: rec.proto,
            tcp_flags: rec.tcp_flags,
            packets: rec.packets.unwrap_or(rec.packets_total),
            bytes: rec.bytes.unwrap_or(rec.bytes_total),
            start_ms: rec.time(rec.start_abs, rec.start_up, ctx),
            end_ms: rec.time(rec.end_abs, rec.end_up, ctx),
        });
    }
    Ok(())
}
