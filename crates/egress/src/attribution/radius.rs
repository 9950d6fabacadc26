//! FreeRADIUS accounting detail files (`radacct/<client>/detail-YYYYMMDD`,
//! written by the `detail` module).
//!
//! A record is a date line, then one `Attribute = value` per line
//! (indented), then a blank line. A record the file ends inside (no blank
//! line after it) is being written or was cut: it is a warning, not read.
//! The event time is `Timestamp` (the server's receive time, which the
//! detail module adds) minus `Acct-Delay-Time` (how long the NAS held the
//! packet); without `Timestamp`, `Event-Timestamp` is used.
//!
//! [`parse`] reads one file into [`Event`]s; [`sessions`] replays the events
//! of all files in time order into sessions, keyed by NAS and
//! `Acct-Session-Id`: Start opens, Interim-Update keeps open (and adds
//! addresses), Stop closes, Accounting-On/Off closes everything open on
//! that NAS. The subscriber is `User-Name`, else `Calling-Station-Id`, else
//! the option-82 values relayed as `ADSL-Agent-Remote-Id` /
//! `ADSL-Agent-Circuit-Id` (RFC 4679).

use super::{
    civil_ms, nonempty, prefix_of, printable, secs_ms, unhex, Origin, Session, Source, SubscriberKind, WarningKind,
    Warnings,
};
use crate::prefix::Prefix;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Start,
    Stop,
    Interim,
    /// Accounting-On or Accounting-Off: the NAS (re)started, every session
    /// it had is over.
    NasReset,
}

/// One accounting record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub status: Status,
    pub time_ms: u64,
    pub nas: String,
    pub session_id: String,
    /// (name, kind), by the precedence in the module documentation.
    pub subscriber: Option<(String, SubscriberKind)>,
    pub remote_id: Option<String>,
    pub circuit_id: Option<String>,
    pub prefixes: Vec<Prefix>,
    /// Acct-Session-Time, seconds.
    pub session_time: Option<u64>,
    pub origin: Origin,
}

/// Reads one detail file (`file` is its index in the caller's names).
pub fn parse(text: &str, file: u32, out: &mut Vec<Event>, w: &mut Warnings) {
    parse_chunk(text, file, 1, out, w);
}

/// Reads a piece of a detail file that starts on line `first_line` (the
/// loader reads large files a few MiB at a time, cut after a blank line).
pub fn parse_chunk(text: &str, file: u32, first_line: u32, out: &mut Vec<Event>, w: &mut Warnings) {
    let mut rec: Vec<(u32, &str)> = Vec::new();
    let mut start = 0u32;
    let (lines, _) = super::lines(text);
    for (n, line) in lines {
        let n = n.saturating_add(first_line - 1);
        if line.trim().is_empty() {
            if !rec.is_empty() {
                record(&rec, Origin { file, line: start }, out, w);
                rec.clear();
            }
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            // A date line opens the next record (the previous one should
            // have ended with a blank line; read it anyway).
            if !rec.is_empty() {
                record(&rec, Origin { file, line: start }, out, w);
                rec.clear();
            }
            start = n;
            rec.push((n, line));
            continue;
        }
        if rec.is_empty() {
            start = n;
        }
        rec.push((n, line));
    }
    if !rec.is_empty() {
        w.add(
            WarningKind::Truncated,
            Origin { file, line: start },
            "the file ends inside this record (no blank line after it): not read",
        );
    }
}

/// `Name = value` with the value unquoted.
fn attribute(line: &str) -> Option<(&str, String)> {
    let (name, value) = line.trim().split_once('=')?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    Some((name, unquote(value.trim())?))
}

/// A detail-file value: bare, or `"..."` with `\"`, `\\`, `\n`, `\r`,
/// `\t` and octal `\NNN` escapes.
fn unquote(v: &str) -> Option<String> {
    let Some(inner) = v.strip_prefix('"') else { return Some(v.to_owned()) };
    let inner = inner.strip_suffix('"')?;
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(b'0'..=b'7') => {
                let o = b.get(i + 1..i + 4)?;
                if !o.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    return None;
                }
                let v = o.iter().fold(0u32, |a, d| a * 8 + (d - b'0') as u32);
                out.push(u8::try_from(v).ok()?);
                i += 4;
                continue;
            }
            Some(&c) => out.push(c),
            None => return None,
        }
        i += 2;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn record(lines: &[(u32, &str)], origin: Origin, out: &mut Vec<Event>, w: &mut Warnings) {
    let mut a: HashMap<&str, String> = HashMap::new();
    let mut prefixes = Vec::new();
    for &(n, line) in lines {
        if !line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((name, value)) = attribute(line) else {
            w.add(WarningKind::BadRecord, Origin { file: origin.file, line: n }, "not an `Attribute = value` line");
            continue;
        };
        match name {
            "Framed-IP-Address" | "Framed-IPv6-Prefix" | "Delegated-IPv6-Prefix" | "Framed-IPv6-Address" => {
                match prefix_of(&value) {
                    Some(p) => {
                        if !prefixes.contains(&p) {
                            prefixes.push(p)
                        }
                    }
                    None => w.add(
                        WarningKind::BadRecord,
                        Origin { file: origin.file, line: n },
                        format!("{name} is not an address or prefix"),
                    ),
                }
            }
            _ => {
                a.insert(name, value);
            }
        }
    }
    let status = match a.get("Acct-Status-Type").map(String::as_str) {
        Some("Start" | "1") => Status::Start,
        Some("Stop" | "2") => Status::Stop,
        Some("Interim-Update" | "Alive" | "3") => Status::Interim,
        Some("Accounting-On" | "Accounting-Off" | "7" | "8") => Status::NasReset,
        // Other accounting (tunnel records, failed) says nothing about
        // who holds an address.
        Some(_) => return,
        None => {
            w.add(WarningKind::Incomplete, origin, "no Acct-Status-Type");
            return;
        }
    };
    let delay = a.get("Acct-Delay-Time").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let received = a
        .get("Timestamp")
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| a.get("Event-Timestamp").and_then(|v| event_timestamp(v)));
    let Some(time_ms) = received.and_then(|t| secs_ms(t.saturating_sub(delay))) else {
        w.add(WarningKind::Incomplete, origin, "no Timestamp or Event-Timestamp: the record cannot be placed in time");
        return;
    };
    let nas = ["NAS-IP-Address", "NAS-IPv6-Address", "NAS-Identifier", "Packet-Src-IP-Address"]
        .iter()
        .find_map(|k| a.get(k))
        .cloned()
        .unwrap_or_default();
    // Octet attributes: FreeRADIUS writes them as 0x... hex.
    let octets = |k: &str| {
        a.get(k).map(|v| {
            if v.starts_with("0x") {
                unhex(v).map_or_else(|| v.clone(), |b| printable(&b))
            } else {
                v.clone()
            }
        })
    };
    let remote_id = nonempty(octets("ADSL-Agent-Remote-Id"));
    let circuit_id = nonempty(octets("ADSL-Agent-Circuit-Id"));
    let subscriber =
        [("User-Name", SubscriberKind::UserName), ("Calling-Station-Id", SubscriberKind::CallingStationId)]
            .iter()
            .find_map(|(k, kind)| a.get(k).filter(|v| !v.is_empty()).map(|v| (v.clone(), *kind)))
            .or_else(|| remote_id.clone().map(|r| (r, SubscriberKind::RemoteId)))
            .or_else(|| circuit_id.clone().map(|c| (c, SubscriberKind::CircuitId)));
    let session_id = a.get("Acct-Session-Id").cloned().unwrap_or_default();
    if status != Status::NasReset && session_id.is_empty() {
        w.add(WarningKind::Incomplete, origin, "no Acct-Session-Id");
        return;
    }
    out.push(Event {
        status,
        time_ms,
        nas,
        session_id,
        subscriber,
        remote_id,
        circuit_id,
        prefixes,
        session_time: a.get("Acct-Session-Time").and_then(|v| v.parse().ok()),
        origin,
    });
}

/// `Dec  2 2026 11:00:00 UTC` (how the detail module prints dates), or
/// Unix seconds.
fn event_timestamp(v: &str) -> Option<u64> {
    if let Ok(n) = v.parse() {
        return Some(n);
    }
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [mon, day, year, hms, zone] = parts[..] else { return None };
    if zone != "UTC" && zone != "GMT" {
        return None;
    }
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let m = MONTHS.iter().position(|x| *x == mon)? as i64 + 1;
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    civil_ms(year.parse().ok()?, m, day.parse().ok()?, hh, mm, ss).map(|ms| ms / 1000)
}

/// Replays the events of every file, in time order, into sessions.
pub fn sessions(mut events: Vec<Event>, w: &mut Warnings) -> Vec<Session> {
    events.sort_by_key(|e| (e.time_ms, e.origin));
    // Open sessions per NAS, then per Acct-Session-Id: an Accounting-On
    // closes one NAS's sessions without looking at the others'.
    let mut open: HashMap<String, HashMap<String, Session>> = HashMap::new();
    let mut out = Vec::new();
    let close = |mut s: Session, end: u64, out: &mut Vec<Session>, w: &mut Warnings| {
        s.end_ms = Some(end.max(s.start_ms));
        finish(s, out, w);
    };
    for e in events {
        if e.status == Status::NasReset {
            let mut gone: Vec<Session> = open.remove(&e.nas).map(|m| m.into_values().collect()).unwrap_or_default();
            gone.sort_by_key(|s| s.origin);
            for s in gone {
                close(s, e.time_ms, &mut out, w);
            }
            continue;
        }
        let nas = open.entry(e.nas.clone()).or_default();
        match e.status {
            Status::Start => {
                if let Some(s) = nas.remove(&e.session_id) {
                    if s.start_ms != e.time_ms {
                        w.add(
                            WarningKind::StartWhileOpen,
                            e.origin,
                            format!(
                                "Start for session {} which is open since line {}: closed here",
                                super::clean(&e.session_id),
                                s.origin.line
                            ),
                        );
                    }
                    close(s, e.time_ms, &mut out, w);
                }
                nas.insert(e.session_id.clone(), new_session(&e, e.time_ms));
            }
            Status::Interim => match nas.get_mut(&e.session_id) {
                Some(s) => update(s, &e),
                None => {
                    let start = e.time_ms.saturating_sub(e.session_time.and_then(secs_ms).unwrap_or(0));
                    w.add(
                        WarningKind::InterimWithoutStart,
                        e.origin,
                        format!(
                            "Interim-Update for session {} without its Start: opened at its Acct-Session-Time",
                            super::clean(&e.session_id)
                        ),
                    );
                    nas.insert(e.session_id.clone(), new_session(&e, start));
                }
            },
            Status::Stop => match nas.remove(&e.session_id) {
                Some(mut s) => {
                    update(&mut s, &e);
                    close(s, e.time_ms, &mut out, w);
                }
                None => {
                    w.add(
                        WarningKind::StopWithoutStart,
                        e.origin,
                        format!(
                            "Stop for session {} without its Start: its span is taken from Acct-Session-Time",
                            super::clean(&e.session_id)
                        ),
                    );
                    let start = e.time_ms.saturating_sub(e.session_time.and_then(secs_ms).unwrap_or(0));
                    let mut s = new_session(&e, start);
                    s.end_ms = Some(e.time_ms);
                    finish(s, &mut out, w);
                }
            },
            Status::NasReset => unreachable!("handled above"),
        }
    }
    let mut rest: Vec<Session> = open.into_values().flat_map(HashMap::into_values).collect();
    rest.sort_by_key(|s| s.origin);
    for s in rest {
        finish(s, &mut out, w);
    }
    out
}

fn new_session(e: &Event, start_ms: u64) -> Session {
    let (subscriber, kind) = e.subscriber.clone().unwrap_or((String::new(), SubscriberKind::UserName));
    Session {
        source: Source::Radius,
        subscriber,
        kind,
        id: if e.nas.is_empty() { e.session_id.clone() } else { format!("{}/{}", e.nas, e.session_id) },
        remote_id: e.remote_id.clone(),
        circuit_id: e.circuit_id.clone(),
        prefixes: e.prefixes.clone(),
        start_ms,
        end_ms: None,
        origin: e.origin,
    }
}

/// A later record of the session adds what the earlier ones lacked.
fn update(s: &mut Session, e: &Event) {
    for p in &e.prefixes {
        if !s.prefixes.contains(p) {
            s.prefixes.push(*p);
        }
    }
    if s.subscriber.is_empty() {
        if let Some((name, kind)) = &e.subscriber {
            s.subscriber = name.clone();
            s.kind = *kind;
        }
    }
    if s.remote_id.is_none() {
        s.remote_id = e.remote_id.clone();
    }
    if s.circuit_id.is_none() {
        s.circuit_id = e.circuit_id.clone();
    }
}

/// Keeps a session that can attribute (an address and a subscriber).
fn finish(s: Session, out: &mut Vec<Session>, w: &mut Warnings) {
    if s.prefixes.is_empty() {
        w.add(
            WarningKind::Incomplete,
            s.origin,
            format!(
                "session {} names no Framed-IP-Address, Framed-IPv6-Prefix or Delegated-IPv6-Prefix",
                super::clean(&s.id)
            ),
        );
        return;
    }
    if s.subscriber.is_empty() {
        w.add(
            WarningKind::Incomplete,
            s.origin,
            format!(
                "session {} names no User-Name, Calling-Station-Id or agent remote/circuit id",
                super::clean(&s.id)
            ),
        );
        return;
    }
    out.push(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    const DETAIL: &str = "Wed Dec  2 11:00:00 2026
\tAcct-Status-Type = Start
\tUser-Name = \"alice\"
\tAcct-Session-Id = \"s1\"
\tFramed-IP-Address = 100.64.0.10
\tDelegated-IPv6-Prefix = 2001:db8:10::/56
\tADSL-Agent-Remote-Id = 0x7269642d31
\tNAS-IP-Address = 192.0.2.1
\tAcct-Delay-Time = 5
\tTimestamp = 1764673205

Wed Dec  2 11:30:00 2026
\tAcct-Status-Type = Interim-Update
\tUser-Name = \"alice\"
\tAcct-Session-Id = \"s1\"
\tFramed-IP-Address = 100.64.0.10
\tNAS-IP-Address = 192.0.2.1
\tTimestamp = 1764675000

Wed Dec  2 12:00:00 2026
\tAcct-Status-Type = Stop
\tUser-Name = \"alice\"
\tAcct-Session-Id = \"s1\"
\tNAS-IP-Address = 192.0.2.1
\tAcct-Session-Time = 3600
\tTimestamp = 1764676800

Wed Dec  2 12:10:00 2026
\tAcct-Status-Type = Stop
\tCalling-Station-Id = \"02-00-00-00-00-02\"
\tAcct-Session-Id = \"s2\"
\tFramed-IP-Address = 100.64.0.11
\tAcct-Session-Time = 600
\tEvent-Timestamp = \"Dec  2 2025 12:10:00 UTC\"

Wed Dec  2 12:20:00 2026
\tAcct-Status-Type = Start
\tUser-Name = \"bo\\\"b\\012\"
\tAcct-Session-Id = \"s3\"
\tFramed-IP-Address = 100.64.0.12
\tTimestamp = 1764678000
";

    #[test]
    fn start_interim_stop() {
        let mut w = Warnings::default();
        let mut ev = Vec::new();
        parse(DETAIL, 0, &mut ev, &mut w);
        assert_eq!(ev.len(), 4, "{:?}", w.named);
        assert_eq!(ev[0].time_ms, 1_764_673_200_000, "Timestamp minus Acct-Delay-Time");
        assert_eq!(w.count(WarningKind::Truncated), 1);
        assert_eq!(w.named[0].origin.line, 36);
        let s = sessions(ev, &mut w);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].subscriber.as_str(), s[0].kind), ("alice", SubscriberKind::UserName));
        assert_eq!(s[0].id, "192.0.2.1/s1");
        assert_eq!((s[0].start_ms, s[0].end_ms), (1_764_673_200_000, Some(1_764_676_800_000)));
        assert_eq!(
            s[0].prefixes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["100.64.0.10/32", "2001:db8:10::/56"]
        );
        assert_eq!((s[0].origin.line, s[1].origin.line), (1, 28));
        assert_eq!(s[0].remote_id.as_deref(), Some("rid-1"));
        assert_eq!((s[1].subscriber.as_str(), s[1].kind), ("02-00-00-00-00-02", SubscriberKind::CallingStationId));
        assert_eq!((s[1].start_ms, s[1].end_ms), (1_764_677_400_000 - 600_000, Some(1_764_677_400_000)));
        assert_eq!(w.count(WarningKind::StopWithoutStart), 1);
    }

    #[test]
    fn escapes_and_resets() {
        assert_eq!(unquote("\"bo\\\"b\\012\"").as_deref(), Some("bo\"b\n"));
        assert_eq!(unquote("\"open"), None);
        let text = "d\n\tAcct-Status-Type = Start\n\tUser-Name = u\n\tAcct-Session-Id = a\n\tFramed-IP-Address = 10.0.0.1\n\tNAS-IP-Address = 192.0.2.9\n\tTimestamp = 100\n\n\
                    d\n\tAcct-Status-Type = Accounting-On\n\tNAS-IP-Address = 192.0.2.9\n\tTimestamp = 200\n\n";
        let mut w = Warnings::default();
        let mut ev = Vec::new();
        parse(text, 0, &mut ev, &mut w);
        let s = sessions(ev, &mut w);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].end_ms, Some(200_000));
        assert_eq!(w.total(), 0, "{:?}", w.named);
    }
}
