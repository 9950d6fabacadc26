//! CGNAT port-block allocation logs: (public address, port, time) to the
//! inside address that held that port then, which the other sources name.
//!
//! A carrier-grade NAT shares one public address among many subscribers by
//! giving each a block of ports for a while; it logs each allocation and
//! release. Two forms are read:
//!
//! - **IPFIX NAT events** (RFC 8158): records with `natEvent` (230),
//!   `sourceIPv4Address` (8) or `sourceIPv6Address` (27) inside,
//!   `postNATSourceIPv4Address` (225) outside, `portRangeStart` (361) and
//!   `portRangeEnd` (362), `observationTimeMilliseconds` (323) or the
//!   export time; single-port session events use
//!   `postNAPTSourceTransportPort` (227). The event numbers differ between
//!   vendors, so [`Numbering`] says which mean allocate and release, per
//!   exporter (default RFC 8158: 13 port-block allocation, 14
//!   de-allocation; 1 and 2, NAT44 session create and delete).
//! - **CSV** with a header `time,event,inside,outside,port_first,port_last`:
//!   `time` Unix seconds or `YYYY-MM-DDTHH:MM:SSZ`, `event` `allocate` or
//!   `release` (documented in docs/egress.md; what a syslog-to-CSV step
//!   of any vendor's log produces).
//!
//! Events are replayed in time order per (outside address, port range):
//! an allocation opens a [`Block`], the release closes it; a release
//! without its allocation, an allocation over an open block, and bad rows
//! are counted warnings naming file:line (for IPFIX, the datagram's number
//! in the capture). Memory is that of the blocks.

use super::lines::{too_long, Line, Lines};
use super::{Origin, WarningKind, Warnings};
use crate::prefix::Prefix;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allocate,
    Release,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub action: Action,
    pub inside: IpAddr,
    pub outside: IpAddr,
    pub first: u16,
    pub last: u16,
    pub time_ms: u64,
    pub origin: Origin,
}

/// A port block: `outside:first-last` was `inside`'s from start to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub outside: IpAddr,
    pub first: u16,
    pub last: u16,
    pub inside: IpAddr,
    pub start_ms: u64,
    /// Exclusive; `None` while still allocated at the end of the logs.
    pub end_ms: Option<u64>,
    pub origin: Origin,
}

/// Which natEvent values mean allocate and release, for the exporters in
/// `exporters` (none: every exporter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbering {
    pub exporters: Vec<Prefix>,
    pub allocate: Vec<u8>,
    pub release: Vec<u8>,
}

impl Default for Numbering {
    /// RFC 8158: 13/14 port-block (de)allocation, 1/2 NAT44 session create/delete.
    fn default() -> Numbering {
        Numbering { exporters: Vec::new(), allocate: vec![13, 1], release: vec![14, 2] }
    }
}

impl std::str::FromStr for Numbering {
    type Err = String;
    /// `[CIDR=]allocate:N[/N...],release:N[/N...]`, e.g.
    /// `192.0.2.1=allocate:3,release:4`.
    fn from_str(s: &str) -> Result<Numbering, String> {
        let (exp, rest) = match s.split_once('=') {
            Some((e, r)) => (Some(e), r),
            None => (None, s),
        };
        let exporters = match exp {
            Some(e) => vec![e.parse::<Prefix>().map_err(|e| format!("{s:?}: {e}"))?],
            None => Vec::new(),
        };
        let (mut allocate, mut release) = (Vec::new(), Vec::new());
        for part in rest.split(',') {
            let (k, v) = part.split_once(':').ok_or_else(|| format!("{s:?}: expected allocate:N,release:N"))?;
            let nums = v
                .split('/')
                .map(|n| n.trim().parse::<u8>().map_err(|_| format!("{s:?}: {n:?} is not a natEvent number (0-255)")))
                .collect::<Result<Vec<_>, _>>()?;
            match k.trim() {
                "allocate" => allocate = nums,
                "release" => release = nums,
                other => return Err(format!("{s:?}: {other:?} is neither allocate nor release")),
            }
        }
        if allocate.is_empty() || release.is_empty() || allocate.iter().any(|a| release.contains(a)) {
            return Err(format!("{s:?}: give distinct allocate:N and release:N numbers"));
        }
        Ok(Numbering { exporters, allocate, release })
    }
}

/// The numbering for `exporter`: the first whose prefixes hold it, else the
/// first without prefixes, else RFC 8158's.
pub fn numbering_for(list: &[Numbering], exporter: IpAddr) -> Numbering {
    let (family, v) = crate::prefix::ip_to_u128(exporter);
    list.iter()
        .find(|n| n.exporters.iter().any(|p| p.contains(family, v)))
        .or_else(|| list.iter().find(|n| n.exporters.is_empty()))
        .cloned()
        .unwrap_or_default()
}

/// Parses the CSV form; `file` is the index of the file's name.
pub fn parse_csv(text: &str, file: u32, out: &mut Vec<Event>, w: &mut Warnings) {
    read_csv(text.as_bytes(), file, out, w).expect("reading from memory cannot fail");
}

/// [`parse_csv`] from a stream, one line in memory at a time.
pub fn read_csv(r: impl BufRead, file: u32, out: &mut Vec<Event>, w: &mut Warnings) -> io::Result<()> {
    const HEADER: &str = "time,event,inside,outside,port_first,port_last";
    let origin = |n: u32| Origin { file, line: n };
    let mut lines = Lines::new(r);
    match lines.next_line()? {
        Some(Line::Text { text, .. }) if text.trim_end_matches('\r').trim() == HEADER => {}
        _ => {
            w.add(WarningKind::BadRecord, origin(1), format!("the header must be {HEADER}"));
            return Ok(());
        }
    }
    while let Some(l) = lines.next_line()? {
        let (n, text, terminated) = match l {
            Line::Text { n, text, terminated } => (n, text, terminated),
            Line::TooLong { n, .. } => {
                w.add(WarningKind::BadRecord, origin(n), too_long("this row"));
                continue;
            }
        };
        let line = text.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if !terminated {
            w.add(WarningKind::Truncated, origin(n), "the file ends inside this row (still being written?)");
            continue;
        }
        match csv_row(line) {
            Ok(mut e) => {
                e.origin = origin(n);
                out.push(e);
            }
            Err(why) => w.add(WarningKind::BadRecord, origin(n), why),
        }
    }
    Ok(())
}

fn csv_row(line: &str) -> Result<Event, String> {
    let f: Vec<&str> = line.split(',').map(str::trim).collect();
    if f.len() != 6 {
        return Err(format!("{} fields, expected 6 (time,event,inside,outside,port_first,port_last)", f.len()));
    }
    let time_ms = crate::report::parse_time(f[0])?;
    let action = match f[1] {
        "allocate" => Action::Allocate,
        "release" => Action::Release,
        other => return Err(format!("event {:?} is neither allocate nor release", super::clean(other))),
    };
    let ip = |s: &str, what: &str| {
        s.parse::<IpAddr>()
            .map(|a| a.to_canonical())
            .map_err(|_| format!("{what} {:?} is not an address", super::clean(s)))
    };
    let port =
        |s: &str, what: &str| s.parse::<u16>().map_err(|_| format!("{what} {:?} is not a port", super::clean(s)));
    let (first, last) = (port(f[4], "port_first")?, port(f[5], "port_last")?);
    if first > last {
        return Err(format!("port_first {first} is above port_last {last}"));
    }
    Ok(Event {
        action,
        inside: ip(f[2], "inside")?,
        outside: ip(f[3], "outside")?,
        first,
        last,
        time_ms,
        origin: Origin { file: 0, line: 0 },
    })
}

/// One IPFIX NAT event record, before the numbering says what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatRecord {
    pub exporter: IpAddr,
    pub event: u8,
    pub inside: Option<IpAddr>,
    pub outside: Option<IpAddr>,
    pub first: Option<u16>,
    pub last: Option<u16>,
    /// postNAPTSourceTransportPort: a session event's single port.
    pub port: Option<u16>,
    pub time_ms: u64,
}

/// Turns decoded NAT records into events by each exporter's numbering;
/// records of other event numbers (quota, exhaustion) are ignored, records
/// without the addresses or ports an allocation needs are warnings.
pub fn events_from_records(
    records: &[NatRecord],
    numbering: &[Numbering],
    origin: Origin,
    out: &mut Vec<Event>,
    w: &mut Warnings,
) {
    for r in records {
        let n = numbering_for(numbering, r.exporter);
        let action = if n.allocate.contains(&r.event) {
            Action::Allocate
        } else if n.release.contains(&r.event) {
            Action::Release
        } else {
            continue;
        };
        let range = match (r.first, r.last, r.port) {
            (Some(a), Some(b), _) if a <= b => Some((a, b)),
            (Some(a), None, _) => Some((a, a)),
            (None, None, Some(p)) => Some((p, p)),
            _ => None,
        };
        match (r.inside, r.outside, range) {
            (Some(inside), Some(outside), Some((first, last))) => out.push(Event {
                action,
                inside: inside.to_canonical(),
                outside: outside.to_canonical(),
                first,
                last,
                time_ms: r.time_ms,
                origin,
            }),
            _ => w.add(
                WarningKind::Incomplete,
                origin,
                format!("natEvent {} from {} without inside, outside address or port range", r.event, r.exporter),
            ),
        }
    }
}

/// Replays events in time order into blocks.
pub fn blocks(mut events: Vec<Event>, w: &mut Warnings) -> Vec<Block> {
    events.sort_by_key(|e| (e.time_ms, e.origin));
    let mut open: HashMap<(IpAddr, u16, u16), Block> = HashMap::new();
    let mut out = Vec::new();
    for e in events {
        let key = (e.outside, e.first, e.last);
        match e.action {
            Action::Allocate => {
                if let Some(mut old) = open.remove(&key) {
                    w.add(
                        WarningKind::StartWhileOpen,
                        e.origin,
                        format!(
                            "{}:{}-{} allocated to {} while still {}'s: that one ends here",
                            e.outside, e.first, e.last, e.inside, old.inside
                        ),
                    );
                    old.end_ms = Some(e.time_ms);
                    out.push(old);
                }
                open.insert(
                    key,
                    Block {
                        outside: e.outside,
                        first: e.first,
                        last: e.last,
                        inside: e.inside,
                        start_ms: e.time_ms,
                        end_ms: None,
                        origin: e.origin,
                    },
                );
            }
            Action::Release => match open.remove(&key) {
                Some(mut b) => {
                    b.end_ms = Some(e.time_ms);
                    out.push(b);
                }
                None => w.add(
                    WarningKind::StopWithoutStart,
                    e.origin,
                    format!("release of {}:{}-{} ({}) without its allocation", e.outside, e.first, e.last, e.inside),
                ),
            },
        }
    }
    out.extend(open.into_values());
    out.sort_by_key(|b| (b.outside, b.first, b.start_ms));
    out
}

impl Block {
    /// The line (or datagram number) of the allocation.
    pub fn line(&self) -> u32 {
        self.origin.line
    }
}

/// (outside address, port, time) to the block that held it.
#[derive(Debug, Default)]
pub struct NatIndex {
    pub blocks: Vec<Block>,
    /// (outside, first, last) to indexes into `blocks`, by start time.
    ranges: BTreeMap<(IpAddr, u16, u16), Vec<u32>>,
}

impl NatIndex {
    pub fn build(blocks: Vec<Block>) -> NatIndex {
        let mut ranges: BTreeMap<(IpAddr, u16, u16), Vec<u32>> = BTreeMap::new();
        for (i, b) in blocks.iter().enumerate() {
            ranges.entry((b.outside, b.first, b.last)).or_default().push(i as u32);
        }
        for v in ranges.values_mut() {
            v.sort_by_key(|i| blocks[*i as usize].start_ms);
        }
        NatIndex { blocks, ranges }
    }

    /// The block holding `outside:port` at `t_ms`.
    pub fn lookup(&self, outside: IpAddr, port: u16, t_ms: u64) -> Option<u32> {
        let outside = outside.to_canonical();
        let lo = (outside, 0u16, 0u16);
        let hi = (outside, port, u16::MAX);
        for (&(_, _, last), v) in self.ranges.range(lo..=hi) {
            if last < port {
                continue;
            }
            // The last block of this range that started at or before t.
            let n = v.partition_point(|i| self.blocks[*i as usize].start_ms <= t_ms);
            if n > 0 {
                let b = &self.blocks[v[n - 1] as usize];
                if b.end_ms.is_none_or(|e| t_ms < e) {
                    return Some(v[n - 1]);
                }
            }
        }
        None
    }

    pub fn block(&self, i: u32) -> &Block {
        &self.blocks[i as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "time,event,inside,outside,port_first,port_last\n\
        2025-11-24T16:00:00Z,allocate,100.64.0.10,198.51.100.77,1024,2047\n\
        1764000000,allocate,100.64.0.11,198.51.100.77,2048,3071\n\
        2025-11-24T16:30:00Z,release,100.64.0.10,198.51.100.77,1024,2047\n\
        2025-11-24T16:31:00Z,allocate,100.64.0.12,198.51.100.77,1024,2047\n\
        2025-11-24T16:32:00Z,release,100.64.0.13,198.51.100.77,4096,5119\n\
        2025-11-24T16:33:00Z,allocate,100.64.0.13,nowhere,1,2\n\
        2025-11-24T16:34:00Z,allocate,100.64.0.14,198.51.100.78,1024,2047";

    #[test]
    fn csv_blocks_answer_port_and_time_with_warnings_by_line() {
        let (mut ev, mut w) = (Vec::new(), Warnings::default());
        parse_csv(CSV, 0, &mut ev, &mut w);
        assert_eq!(ev.len(), 5);
        let blocks = blocks(ev, &mut w);
        let idx = NatIndex::build(blocks);
        let who = |port: u16, t: u64| {
            idx.lookup("198.51.100.77".parse().unwrap(), port, t * 1000).map(|i| idx.block(i).inside.to_string())
        };
        assert_eq!(who(1500, 1_764_000_100).as_deref(), Some("100.64.0.10"));
        assert_eq!(who(2048, 1_764_000_100).as_deref(), Some("100.64.0.11"));
        assert_eq!(who(1500, 1_764_001_830).as_deref(), None, "released at 16:30, reallocated at 16:31");
        assert_eq!(who(1500, 1_764_001_900).as_deref(), Some("100.64.0.12"));
        assert_eq!(who(4000, 1_764_000_100), None);
        assert_eq!(
            idx.lookup("::ffff:198.51.100.77".parse().unwrap(), 1500, 1_764_000_100_000).map(|i| idx.block(i).line()),
            Some(2)
        );
        assert_eq!(w.count(WarningKind::StopWithoutStart), 1);
        assert_eq!(w.count(WarningKind::BadRecord), 1);
        assert_eq!(w.count(WarningKind::Truncated), 1);
        let lines: Vec<u32> = w.named.iter().map(|x| x.origin.line).collect();
        assert_eq!(lines, [7, 8, 6], "{:?}", w.named);
    }

    #[test]
    fn numbering_per_exporter() {
        let list: Vec<Numbering> = vec!["192.0.2.1=allocate:3,release:4".parse().unwrap()];
        assert_eq!(numbering_for(&list, "192.0.2.1".parse().unwrap()).allocate, [3]);
        assert_eq!(numbering_for(&list, "192.0.2.2".parse().unwrap()), Numbering::default());
        assert!("allocate:3,release:3".parse::<Numbering>().is_err());
        assert!("allocate:x".parse::<Numbering>().is_err());
        let rec = |event: u8| NatRecord {
            exporter: "192.0.2.1".parse().unwrap(),
            event,
            inside: Some("100.64.0.10".parse().unwrap()),
            outside: Some("198.51.100.77".parse().unwrap()),
            first: Some(1024),
            last: Some(2047),
            port: None,
            time_ms: 5,
        };
        let (mut out, mut w) = (Vec::new(), Warnings::default());
        events_from_records(&[rec(3), rec(13), rec(4)], &list, Origin { file: 0, line: 1 }, &mut out, &mut w);
        assert_eq!(out.iter().map(|e| e.action).collect::<Vec<_>>(), [Action::Allocate, Action::Release]);
    }
}
