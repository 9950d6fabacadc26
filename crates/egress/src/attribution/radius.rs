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

use super::lines::{record_too_long, too_long, without_cr, Line, Lines, MAX_RECORD};
use super::store::{Slots, Store, NONE};
use super::{
    civil_ms, prefix_of, printable, secs_ms, unhex, Origin, Session, Source, SubscriberKind, WarningKind, Warnings,
};
use super::{Warning, MAX_WARNINGS_NAMED};
use crate::prefix::Prefix;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead};

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

/// One accounting record as read, borrowing from the text where it can
/// (most values are bare or quoted without escapes): reading a detail file
/// allocates little per record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub status: Status,
    pub time_ms: u64,
    pub nas: Cow<'a, str>,
    pub session_id: Cow<'a, str>,
    pub subscriber: Option<(Cow<'a, str>, SubscriberKind)>,
    pub remote_id: Option<Cow<'a, str>>,
    pub circuit_id: Option<Cow<'a, str>>,
    pub prefixes: Vec<Prefix>,
    pub session_time: Option<u64>,
    pub origin: Origin,
}

impl Event {
    /// The record this event was read from.
    pub fn as_record(&self) -> Record<'_> {
        Record {
            status: self.status,
            time_ms: self.time_ms,
            nas: Cow::Borrowed(&self.nas),
            session_id: Cow::Borrowed(&self.session_id),
            subscriber: self.subscriber.as_ref().map(|(s, k)| (Cow::Borrowed(s.as_str()), *k)),
            remote_id: self.remote_id.as_deref().map(Cow::Borrowed),
            circuit_id: self.circuit_id.as_deref().map(Cow::Borrowed),
            prefixes: self.prefixes.clone(),
            session_time: self.session_time,
            origin: self.origin,
        }
    }
}

impl Record<'_> {
    pub fn to_event(&self) -> Event {
        Event {
            status: self.status,
            time_ms: self.time_ms,
            nas: self.nas.clone().into_owned(),
            session_id: self.session_id.clone().into_owned(),
            subscriber: self.subscriber.as_ref().map(|(s, k)| (s.clone().into_owned(), *k)),
            remote_id: self.remote_id.clone().map(Cow::into_owned),
            circuit_id: self.circuit_id.clone().map(Cow::into_owned),
            prefixes: self.prefixes.clone(),
            session_time: self.session_time,
            origin: self.origin,
        }
    }
}

/// Reads one detail file (`file` is its index in the caller's names).
pub fn parse(text: &str, file: u32, out: &mut Vec<Event>, w: &mut Warnings) {
    records(text, file, &mut |r| out.push(r.to_event()), w);
}

/// Each record of a detail file, handed to `each` as it is read.
pub fn records(text: &str, file: u32, each: &mut dyn FnMut(Record<'_>), w: &mut Warnings) {
    read_records(text.as_bytes(), file, each, w).expect("reading from memory cannot fail");
}

/// The lines of the record being read.
#[derive(Default)]
struct Pending {
    text: String,
    /// Each line's number and where it ends in `text`.
    ends: Vec<(u32, usize)>,
    start: u32,
    /// A line of it was too long to read: the record is not read.
    cut: bool,
}

impl Pending {
    /// Adds a line; `false` if the record passes [`MAX_RECORD`] with it
    /// (it is then not read, and no more of its lines are held).
    fn push(&mut self, n: u32, line: &str) -> bool {
        if self.ends.is_empty() {
            self.start = n;
        } else if self.cut {
            return true;
        }
        if self.text.len() + line.len() > MAX_RECORD {
            self.cut = true;
            return false;
        }
        self.text.push_str(line);
        self.ends.push((n, self.text.len()));
        true
    }

    /// Reads the record (unless cut) and starts the next.
    fn emit(&mut self, file: u32, each: &mut dyn FnMut(Record<'_>), w: &mut Warnings) {
        if !self.ends.is_empty() && !self.cut {
            let mut from = 0;
            let lines: Vec<(u32, &str)> = self
                .ends
                .iter()
                .map(|&(n, end)| {
                    let line = self.text.get(from..end).unwrap_or_default();
                    from = end;
                    (n, line)
                })
                .collect();
            record(&lines, Origin { file, line: self.start }, each, w);
        }
        self.text.clear();
        self.ends.clear();
        self.cut = false;
    }
}

/// [`records`] from a stream: one record's lines in memory at a time.
pub fn read_records(r: impl BufRead, file: u32, each: &mut dyn FnMut(Record<'_>), w: &mut Warnings) -> io::Result<()> {
    let mut rec = Pending::default();
    let mut lines = Lines::new(r);
    while let Some(l) = lines.next_line()? {
        let (n, line) = match l {
            Line::Text { n, ref text, terminated } => (n, without_cr(text, terminated)),
            Line::TooLong { n, indented } => {
                let origin = Origin { file, line: n };
                if indented {
                    // An attribute of the record: without it the record
                    // could name someone else.
                    w.add(WarningKind::BadRecord, origin, too_long("its record"));
                    rec.push(n, "");
                    rec.cut = true;
                } else {
                    // A date line (never read) opens the next record.
                    w.add(WarningKind::BadRecord, origin, too_long("this line"));
                    rec.emit(file, each, w);
                    rec.push(n, "");
                }
                continue;
            }
        };
        if line.trim().is_empty() {
            rec.emit(file, each, w);
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            // A date line opens the next record (the previous one should
            // have ended with a blank line; read it anyway).
            rec.emit(file, each, w);
        }
        if !rec.push(n, line) {
            w.add(WarningKind::BadRecord, Origin { file, line: rec.start }, record_too_long("this record"));
        }
    }
    if !rec.ends.is_empty() {
        w.add(
            WarningKind::Truncated,
            Origin { file, line: rec.start },
            "the file ends inside this record (no blank line after it): not read",
        );
    }
    Ok(())
}

/// `Name = value` with the value unquoted.
fn attribute(line: &str) -> Option<(&str, Cow<'_, str>)> {
    let (name, value) = line.trim().split_once('=')?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    Some((name, unquote(value.trim())?))
}

/// A detail-file value: bare, or `"..."` with `\"`, `\\`, `\n`, `\r`,
/// `\t` and octal `\NNN` escapes.
fn unquote(v: &str) -> Option<Cow<'_, str>> {
    let Some(inner) = v.strip_prefix('"') else { return Some(Cow::Borrowed(v)) };
    let inner = inner.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
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
    Some(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}

/// The attributes a record is read for (the last of each wins).
#[derive(Default)]
struct Attrs<'a> {
    status: Option<Cow<'a, str>>,
    delay: Option<Cow<'a, str>>,
    timestamp: Option<Cow<'a, str>>,
    event_timestamp: Option<Cow<'a, str>>,
    /// NAS-IP-Address, NAS-IPv6-Address, NAS-Identifier,
    /// Packet-Src-IP-Address: the first present names the NAS.
    nas: [Option<Cow<'a, str>>; 4],
    remote_id: Option<Cow<'a, str>>,
    circuit_id: Option<Cow<'a, str>>,
    user_name: Option<Cow<'a, str>>,
    calling_station: Option<Cow<'a, str>>,
    session_id: Option<Cow<'a, str>>,
    session_time: Option<Cow<'a, str>>,
}

fn record<'a>(lines: &[(u32, &'a str)], origin: Origin, each: &mut dyn FnMut(Record<'_>), w: &mut Warnings) {
    let mut a = Attrs::default();
    let mut prefixes = Vec::new();
    for &(n, line) in lines {
        if !line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((name, value)) = attribute(line) else {
            w.add(WarningKind::BadRecord, Origin { file: origin.file, line: n }, "not an `Attribute = value` line");
            continue;
        };
        let slot = match name {
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
                continue;
            }
            "Acct-Status-Type" => &mut a.status,
            "Acct-Delay-Time" => &mut a.delay,
            "Timestamp" => &mut a.timestamp,
            "Event-Timestamp" => &mut a.event_timestamp,
            "NAS-IP-Address" => &mut a.nas[0],
            "NAS-IPv6-Address" => &mut a.nas[1],
            "NAS-Identifier" => &mut a.nas[2],
            "Packet-Src-IP-Address" => &mut a.nas[3],
            "ADSL-Agent-Remote-Id" => &mut a.remote_id,
            "ADSL-Agent-Circuit-Id" => &mut a.circuit_id,
            "User-Name" => &mut a.user_name,
            "Calling-Station-Id" => &mut a.calling_station,
            "Acct-Session-Id" => &mut a.session_id,
            "Acct-Session-Time" => &mut a.session_time,
            _ => continue,
        };
        *slot = Some(value);
    }
    let status = match a.status.as_deref() {
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
    let delay = a.delay.as_deref().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let received = a
        .timestamp
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| a.event_timestamp.as_deref().and_then(event_timestamp));
    let Some(time_ms) = received.and_then(|t| secs_ms(t.saturating_sub(delay))) else {
        w.add(WarningKind::Incomplete, origin, "no Timestamp or Event-Timestamp: the record cannot be placed in time");
        return;
    };
    let [n0, n1, n2, n3] = a.nas;
    let nas = n0.or(n1).or(n2).or(n3).unwrap_or_default();
    // Octet attributes: FreeRADIUS writes them as 0x... hex.
    let octets = |v: Option<Cow<'a, str>>| {
        v.map(|v| if v.starts_with("0x") { unhex(&v).map_or(v, |b| Cow::Owned(printable(&b))) } else { v })
            .filter(|v| !v.trim().is_empty())
    };
    // An empty remote-id or circuit-id names nobody.
    let remote_id = octets(a.remote_id);
    let circuit_id = octets(a.circuit_id);
    let subscriber = a
        .user_name
        .filter(|v| !v.is_empty())
        .map(|v| (v, SubscriberKind::UserName))
        .or_else(|| a.calling_station.filter(|v| !v.is_empty()).map(|v| (v, SubscriberKind::CallingStationId)))
        .or_else(|| remote_id.clone().map(|r| (r, SubscriberKind::RemoteId)))
        .or_else(|| circuit_id.clone().map(|c| (c, SubscriberKind::CircuitId)));
    let session_id = a.session_id.unwrap_or_default();
    if status != Status::NasReset && session_id.is_empty() {
        w.add(WarningKind::Incomplete, origin, "no Acct-Session-Id");
        return;
    }
    each(Record {
        status,
        time_ms,
        nas,
        session_id,
        subscriber,
        remote_id,
        circuit_id,
        prefixes,
        session_time: a.session_time.as_deref().and_then(|v| v.parse().ok()),
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

/// What [`replay_in_time_order`] holds in memory at a time at least: the
/// records of one pass, in their compact form (about 100 bytes each).
pub const ORDER_BUDGET: usize = 64 << 20;

/// A pass over every record, for [`replay_in_time_order`]: hands each to
/// its argument.
pub type ReadAll<'r, E> = dyn FnMut(&mut dyn FnMut(Record<'_>)) -> Result<(), E> + 'r;

/// [`sessions`]' answer (the same sessions in the same order, the same
/// warnings) for records read in any order, with memory bounded by the
/// sessions and `budget` instead of by the records. `read_all` hands every
/// record to its argument (in any order) each time it is called: each call
/// is a pass that keeps the earliest records (by time, then origin) after
/// those already replayed, as many as fit in `budget` bytes, and replays
/// them in that order. Passes: the records' compact size over `budget`.
/// `None` past what one store holds (`u32` sessions or strings).
pub fn replay_in_time_order<E>(
    budget: usize,
    read_all: &mut ReadAll<'_, E>,
    w: &mut Warnings,
) -> Result<Option<Store>, E> {
    use std::collections::BinaryHeap;
    let mut replay = Replay::new();
    // The last record replayed: each pass takes only later ones.
    let mut done: Option<(u64, Origin)> = None;
    loop {
        // A max-heap: the latest record held is the first to let go.
        let mut held: BinaryHeap<Held> = BinaryHeap::new();
        let (mut bytes, mut more) = (0usize, false);
        read_all(&mut |r| {
            let key = (r.time_ms, r.origin);
            if done.is_some_and(|d| key <= d) {
                return;
            }
            if bytes >= budget && held.peek().is_some_and(|top| key > top.key) {
                more = true;
                return;
            }
            let h = Held::new(&r);
            bytes += h.size();
            held.push(h);
            // At least one record per pass, however large.
            while bytes > budget && held.len() > 1 {
                let Some(top) = held.pop() else { break };
                bytes -= top.size();
                more = true;
            }
        })?;
        let batch = held.into_sorted_vec();
        for h in &batch {
            replay.record(&h.record());
        }
        match batch.last() {
            Some(h) if more => done = Some(h.key),
            _ => return Ok(replay.finish(w)),
        }
    }
}

/// A record held by [`replay_in_time_order`]: its time and origin, and the
/// rest in one allocation (about 100 bytes where a [`Event`] takes 300).
struct Held {
    key: (u64, Origin),
    data: Box<[u8]>,
}

const KINDS: [SubscriberKind; 7] = [
    SubscriberKind::UserName,
    SubscriberKind::CallingStationId,
    SubscriberKind::RemoteId,
    SubscriberKind::CircuitId,
    SubscriberKind::HardwareAddress,
    SubscriberKind::ClientId,
    SubscriberKind::Duid,
];
const STATUSES: [Status; 4] = [Status::Start, Status::Stop, Status::Interim, Status::NasReset];
/// The length written for an absent string.
const ABSENT: u32 = u32::MAX;

impl Held {
    fn new(r: &Record<'_>) -> Held {
        let mut d = Vec::with_capacity(64);
        d.push(STATUSES.iter().position(|s| *s == r.status).unwrap_or(0) as u8);
        let kind = r.subscriber.as_ref().map(|(_, k)| *k);
        d.push(kind.and_then(|k| KINDS.iter().position(|x| *x == k)).map_or(u8::MAX, |i| i as u8));
        match r.session_time {
            Some(t) => {
                d.push(1);
                d.extend_from_slice(&t.to_le_bytes());
            }
            None => d.push(0),
        }
        let subscriber = r.subscriber.as_ref().map(|(s, _)| s.as_ref());
        for v in [
            Some(r.nas.as_ref()),
            Some(r.session_id.as_ref()),
            subscriber,
            r.remote_id.as_deref(),
            r.circuit_id.as_deref(),
        ] {
            match v {
                // A detail line is at most MAX_LINE bytes, so every value fits.
                Some(v) => {
                    d.extend_from_slice(&u32::try_from(v.len()).unwrap_or(ABSENT - 1).to_le_bytes());
                    d.extend_from_slice(v.as_bytes());
                }
                None => d.extend_from_slice(&ABSENT.to_le_bytes()),
            }
        }
        d.extend_from_slice(&u32::try_from(r.prefixes.len()).unwrap_or(0).to_le_bytes());
        for p in &r.prefixes {
            d.push(u8::from(p.family == crate::prefix::Family::V6));
            d.push(p.len);
            d.extend_from_slice(&p.addr.to_le_bytes());
        }
        Held { key: (r.time_ms, r.origin), data: d.into_boxed_slice() }
    }

    /// Its bytes, with the allocator's rounding and header.
    fn size(&self) -> usize {
        std::mem::size_of::<Held>() + self.data.len().next_multiple_of(16) + 16
    }

    /// The record as it was read.
    fn record(&self) -> Record<'_> {
        let mut d: &[u8] = &self.data;
        let mut take = |n: usize| {
            let (a, b) = d.split_at(n.min(d.len()));
            d = b;
            a
        };
        let status = STATUSES[usize::from(take(1)[0]) % STATUSES.len()];
        let kind = KINDS.get(usize::from(take(1)[0])).copied();
        let session_time = (take(1)[0] == 1).then(|| u64::from_le_bytes(take(8).try_into().unwrap_or_default()));
        let mut text = || {
            let n = u32::from_le_bytes(take(4).try_into().unwrap_or_default());
            (n != ABSENT).then(|| Cow::Borrowed(std::str::from_utf8(take(n as usize)).unwrap_or_default()))
        };
        let (nas, session_id, subscriber, remote_id, circuit_id) = (text(), text(), text(), text(), text());
        let n = u32::from_le_bytes(take(4).try_into().unwrap_or_default());
        let prefixes = (0..n)
            .map(|_| {
                let (family, len) = (take(1)[0], take(1)[0]);
                let addr = u128::from_le_bytes(take(16).try_into().unwrap_or_default());
                let family = if family == 1 { crate::prefix::Family::V6 } else { crate::prefix::Family::V4 };
                Prefix { family, addr, len }
            })
            .collect();
        Record {
            status,
            time_ms: self.key.0,
            nas: nas.unwrap_or_default(),
            session_id: session_id.unwrap_or_default(),
            subscriber: subscriber.zip(kind),
            remote_id,
            circuit_id,
            prefixes,
            session_time,
            origin: self.key.1,
        }
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        self.key == other.key
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    fn cmp(&self, other: &Held) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// When a warning happens in [`sessions`]' time-ordered replay: (phase:
/// records, then the sessions left open at the end; the record's time and
/// origin; the step within the record; the origin of the session it is
/// about, which orders the sessions one Accounting-On closes).
type When = (u8, u64, Origin, u8, Origin);

const NO_ORIGIN: Origin = Origin { file: 0, line: 0 };

/// A session of the replay besides its record in the store.
#[derive(Debug, Clone, Copy)]
struct Side {
    /// The last record of its (NAS, Acct-Session-Id) applied to it.
    last: (u64, Origin),
    open: bool,
    /// `false`: dropped when it closed (no address or no subscriber).
    kept: bool,
}

#[derive(Debug, Default)]
struct Nas {
    /// The latest record of this NAS applied, and its latest
    /// Accounting-On/Off.
    latest: Option<(u64, Origin)>,
    reset: Option<(u64, Origin)>,
    /// Sessions opened on this NAS (some since closed): what an
    /// Accounting-On/Off closes.
    open: Vec<u32>,
    nopen: usize,
}

/// [`sessions`] without holding the records: each record is applied as it
/// is read, to the latest session of its (NAS, Acct-Session-Id), and only
/// the sessions are kept, compactly. [`sessions`] replays in time order;
/// records come in file order, which is time order per session in any
/// detail file FreeRADIUS writes. Where it is not (a record older than one
/// already applied to its session, or than its NAS's last Accounting-On),
/// [`Replay::finish`] says so and the caller replays with
/// [`replay_in_time_order`].
/// Otherwise the result is [`sessions`]' own: the same sessions in the same
/// order, the same warnings counted and named.
#[derive(Debug, Default)]
pub struct Replay {
    store: Store,
    side: Vec<Side>,
    /// The latest session of each (NAS, Acct-Session-Id), by number.
    keys: Slots,
    nas: HashMap<u32, Nas>,
    /// Warnings by kind: all counted, the first [`MAX_WARNINGS_NAMED`] by
    /// when they happen in time order kept (a few more between trims).
    counts: BTreeMap<WarningKind, u64>,
    first: BTreeMap<WarningKind, Vec<(When, Warning)>>,
    out_of_order: bool,
}

impl Replay {
    pub fn new() -> Replay {
        Replay::default()
    }

    /// Counts a warning, keeping it (its message built by `message`) if
    /// it may be among the first named of its kind in time order.
    fn warn(&mut self, kind: WarningKind, when: When, origin: Origin, message: impl FnOnce(&Store) -> String) {
        *self.counts.entry(kind).or_default() += 1;
        let kept = self.first.entry(kind).or_default();
        if kept.iter().filter(|(w, _)| *w < when).count() >= MAX_WARNINGS_NAMED {
            return;
        }
        kept.push((when, Warning { kind, origin, message: message(&self.store) }));
        if kept.len() >= 2 * MAX_WARNINGS_NAMED {
            kept.sort_by_key(|(w, _)| *w);
            kept.truncate(MAX_WARNINGS_NAMED);
        }
    }

    fn key_hash(nas: u32, sid: u32) -> u64 {
        crate::window::mix((u128::from(nas) << 32) | u128::from(sid))
    }

    /// The memory it holds, in bytes.
    pub fn bytes(&self) -> usize {
        self.store.bytes() + self.side.capacity() * std::mem::size_of::<Side>() + self.keys.bytes()
    }

    /// Applies one record (in file order).
    pub fn record(&mut self, e: &Record<'_>) {
        if self.out_of_order {
            return;
        }
        let at = (e.time_ms, e.origin);
        let Some(nas) = self.store.strings.intern(&e.nas) else { return self.full() };
        let n = self.nas.entry(nas).or_default();
        if e.status == Status::NasReset {
            if n.latest.is_some_and(|l| l > at) {
                self.out_of_order = true;
                return;
            }
            n.latest = Some(at);
            n.reset = Some(at);
            let mut gone: Vec<u32> =
                std::mem::take(&mut n.open).into_iter().filter(|&i| self.side[i as usize].open).collect();
            n.nopen = 0;
            gone.sort_by_key(|&i| self.store.recs[i as usize].origin);
            for i in gone {
                let origin = self.store.recs[i as usize].origin;
                self.close(i, e.time_ms, at, (0, e.time_ms, e.origin, 1, origin));
            }
            return;
        }
        if n.reset.is_some_and(|r| r > at) {
            self.out_of_order = true;
            return;
        }
        n.latest = n.latest.max(Some(at));
        let Some(sid) = self.store.strings.intern(&e.session_id) else { return self.full() };
        let hash = Replay::key_hash(nas, sid);
        let recs = &self.store.recs;
        let latest = self.keys.find(hash, |i| recs[i as usize].id_scope == nas && recs[i as usize].id == sid);
        if let Some(l) = latest {
            if self.side[l as usize].last > at {
                self.out_of_order = true;
                return;
            }
        }
        let open = latest.filter(|&l| self.side[l as usize].open);
        let when = |step| (0, e.time_ms, e.origin, step, NO_ORIGIN);
        let since = || e.time_ms.saturating_sub(e.session_time.and_then(secs_ms).unwrap_or(0));
        match e.status {
            Status::Start => {
                if let Some(l) = open {
                    let s = self.store.recs[l as usize];
                    if s.start_ms != e.time_ms {
                        self.warn(WarningKind::StartWhileOpen, when(0), e.origin, |_| {
                            format!(
                                "Start for session {} which is open since line {}: closed here",
                                super::clean(&e.session_id),
                                s.origin.line
                            )
                        });
                    }
                    self.close(l, e.time_ms, at, when(1));
                }
                self.open(e, nas, sid, e.time_ms, hash);
            }
            Status::Interim => match open {
                Some(l) => {
                    self.update(l, e);
                    self.side[l as usize].last = at;
                }
                None => {
                    self.warn(WarningKind::InterimWithoutStart, when(0), e.origin, |_| {
                        format!(
                            "Interim-Update for session {} without its Start: opened at its Acct-Session-Time",
                            super::clean(&e.session_id)
                        )
                    });
                    self.open(e, nas, sid, since(), hash);
                }
            },
            Status::Stop => match open {
                Some(l) => {
                    self.update(l, e);
                    self.close(l, e.time_ms, at, when(0));
                }
                None => {
                    self.warn(WarningKind::StopWithoutStart, when(0), e.origin, |_| {
                        format!(
                            "Stop for session {} without its Start: its span is taken from Acct-Session-Time",
                            super::clean(&e.session_id)
                        )
                    });
                    if let Some(i) = self.open(e, nas, sid, since(), hash) {
                        self.close(i, e.time_ms, at, when(1));
                    }
                }
            },
            Status::NasReset => unreachable!("handled above"),
        }
    }

    /// Past `u32` sessions or strings (beyond what memory holds): the
    /// caller's fallback says so no worse.
    fn full(&mut self) {
        self.out_of_order = true;
    }

    /// A new open session from `e`, the latest of its key.
    fn open(&mut self, e: &Record<'_>, nas: u32, sid: u32, start_ms: u64, hash: u64) -> Option<u32> {
        let (subscriber, kind) = match &e.subscriber {
            Some((s, k)) => (s.as_ref(), *k),
            None => ("", SubscriberKind::UserName),
        };
        let st = &mut self.store;
        let Some(i) = st.push_ids(
            Source::Radius,
            kind,
            subscriber,
            nas,
            sid,
            e.remote_id.as_deref(),
            e.circuit_id.as_deref(),
            &e.prefixes,
            start_ms,
            u64::MAX,
            e.origin,
        ) else {
            self.full();
            return None;
        };
        self.side.push(Side { last: (e.time_ms, e.origin), open: true, kept: true });
        let recs = &self.store.recs;
        self.keys.replace(
            hash,
            i,
            |j| recs[j as usize].id_scope == nas && recs[j as usize].id == sid,
            |j| Replay::key_hash(recs[j as usize].id_scope, recs[j as usize].id),
        );
        let n = self.nas.entry(nas).or_default();
        n.open.push(i);
        n.nopen += 1;
        // Closed sessions stay in the list until an Accounting-On or
        // this: the list stays within twice the open ones.
        if n.open.len() > 2 * n.nopen + 16 {
            let side = &self.side;
            n.open.retain(|&j| side[j as usize].open);
        }
        Some(i)
    }

    /// A later record of the session adds what the earlier ones lacked.
    fn update(&mut self, i: u32, e: &Record<'_>) {
        let st = &mut self.store;
        let r = st.recs[i as usize];
        let new: Vec<Prefix> = e.prefixes.iter().filter(|p| !st.prefixes_of(&r).contains(p)).copied().collect();
        if !new.is_empty() {
            st.append_prefixes(i, &new);
        }
        let mut r = st.recs[i as usize];
        if st.strings.get(r.subscriber).is_empty() {
            if let Some((name, kind)) = &e.subscriber {
                let Some(id) = st.strings.intern(name) else { return self.out_of_order = true };
                (r.subscriber, r.kind) = (id, *kind);
            }
        }
        if r.remote_id == NONE {
            if let Some(v) = &e.remote_id {
                let Some(id) = st.strings.intern(v) else { return self.out_of_order = true };
                r.remote_id = id;
            }
        }
        if r.circuit_id == NONE {
            if let Some(v) = &e.circuit_id {
                let Some(id) = st.strings.intern(v) else { return self.out_of_order = true };
                r.circuit_id = id;
            }
        }
        st.recs[i as usize] = r;
    }

    /// Closes session `i` at `end` (not before its start) because of the
    /// record at `at`, keeping it if it can attribute.
    fn close(&mut self, i: u32, end: u64, at: (u64, Origin), when: When) {
        let r = &mut self.store.recs[i as usize];
        r.end_ms = end.max(r.start_ms);
        let side = &mut self.side[i as usize];
        (side.last, side.open) = (at, false);
        if let Some(n) = self.nas.get_mut(&r.id_scope) {
            n.nopen = n.nopen.saturating_sub(1);
        }
        self.check(i, when);
    }

    /// [`finish`]: a session without an address or a subscriber is a
    /// warning, and dropped.
    fn check(&mut self, i: u32, when: When) {
        let r = self.store.recs[i as usize];
        let what = if r.nprefixes == 0 {
            "names no Framed-IP-Address, Framed-IPv6-Prefix or Delegated-IPv6-Prefix"
        } else if self.store.strings.get(r.subscriber).is_empty() {
            "names no User-Name, Calling-Station-Id or agent remote/circuit id"
        } else {
            return;
        };
        self.side[i as usize].kept = false;
        self.warn(WarningKind::Incomplete, when, r.origin, |st| {
            format!("session {} {what}", super::clean(&st.get(i).map(|s| s.id).unwrap_or_default()))
        });
    }

    /// The sessions, in [`sessions`]' order, and the replay's warnings
    /// added to `w`; `None` if the records came out of time order for some
    /// session (replay them with [`replay_in_time_order`]).
    pub fn finish(mut self, w: &mut Warnings) -> Option<Store> {
        if self.out_of_order {
            return None;
        }
        // Sessions still open: finished in the order of their first record.
        let mut rest: Vec<u32> = (0..self.side.len() as u32).filter(|&i| self.side[i as usize].open).collect();
        rest.sort_by_key(|&i| self.store.recs[i as usize].origin);
        for i in rest {
            let origin = self.store.recs[i as usize].origin;
            self.check(i, (1, 0, NO_ORIGIN, 0, origin));
        }
        // [`sessions`] emits a session when it closes: in the order of the
        // closing record, those one Accounting-On closes by their origin,
        // those left open last.
        let side = &self.side;
        let recs = &self.store.recs;
        let mut order: Vec<u32> = (0..side.len() as u32).filter(|&i| side[i as usize].kept).collect();
        order.sort_by_key(|&i| {
            let s = side[i as usize];
            (s.open, if s.open { (0, NO_ORIGIN) } else { s.last }, recs[i as usize].origin)
        });
        self.side = Vec::new();
        self.keys = Slots::default();
        self.store.keep_in_order(order);
        let mut named: Vec<(When, Warning)> = self.first.into_values().flatten().collect();
        named.sort_by_key(|(w, _)| *w);
        let mut kept: BTreeMap<WarningKind, u64> = BTreeMap::new();
        for (_, x) in named {
            let k = kept.entry(x.kind).or_default();
            if (*k as usize) < MAX_WARNINGS_NAMED {
                *k += 1;
                w.add(x.kind, x.origin, x.message);
            }
        }
        for (kind, n) in self.counts {
            *w.counts.entry(kind).or_default() += n - kept.get(&kind).copied().unwrap_or(0);
        }
        Some(self.store)
    }
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

    /// The records of `text` replayed as read, if in time order per
    /// session.
    fn as_read(text: &str) -> Option<(Vec<Session>, Warnings)> {
        let mut w = Warnings::default();
        let mut replay = Replay::new();
        records(text, 0, &mut |r| replay.record(&r), &mut w);
        let store = replay.finish(&mut w)?;
        Some((store.iter().collect(), w))
    }

    fn in_time_order(text: &str) -> (Vec<Session>, Warnings) {
        let mut w = Warnings::default();
        let mut ev = Vec::new();
        parse(text, 0, &mut ev, &mut w);
        (sessions(ev, &mut w), w)
    }

    fn rec(status: &str, sid: &str, nas: &str, t: u64, extra: &str) -> String {
        format!("d\n\tAcct-Status-Type = {status}\n\tAcct-Session-Id = {sid}\n\tNAS-IP-Address = {nas}\n\tTimestamp = {t}\n{extra}\n")
    }

    fn ip(i: u32) -> String {
        format!("\tUser-Name = u{i}\n\tFramed-IP-Address = 10.0.0.{i}\n")
    }

    /// Sessions on two NASes, interleaved; one NAS restarts with two
    /// sessions open (closed in the order they started, whatever the order
    /// they close in); a Start repeated; a Stop that names no address
    /// (dropped, counted); sessions left open.
    fn mixed() -> String {
        let mut text = String::from(DETAIL);
        text.push('\n');
        for (status, sid, nas, t, extra) in [
            ("Start", "a", "n1", 100, ip(1)),
            ("Start", "b", "n2", 101, ip(2)),
            ("Start", "c", "n1", 102, ip(3)),
            ("Interim-Update", "a", "n1", 103, "\tFramed-IPv6-Prefix = 2001:db8::/64\n".into()),
            ("Start", "c", "n1", 104, ip(3)),
            ("Accounting-On", "", "n1", 105, String::new()),
            ("Stop", "b", "n2", 106, String::new()),
            ("Stop", "x", "n2", 107, "\tUser-Name = ux\n".into()),
            ("Start", "a", "n1", 108, ip(4)),
            ("Interim-Update", "y", "n2", 109, ip(5)),
            ("Start", "z", "n2", 110, "\tFramed-IP-Address = 10.0.0.6\n".into()),
        ] {
            text.push_str(&rec(status, sid, nas, t, &extra));
        }
        text
    }

    #[test]
    fn records_in_any_order_replayed_in_passes_as_in_time_order() {
        // Records read newest first (as if the files came in the wrong
        // order): each pass holds what fits in the budget, and the result
        // is the time-ordered replay's, sessions and warnings, whatever
        // the budget (0: one record per pass).
        // Also more warnings of one kind than are named.
        let mut many = String::new();
        for i in 0..60 {
            many.push_str(&rec("Stop", &format!("s{i}"), "n1", 1000 + i, "\tUser-Name = u\n"));
        }
        many.push_str(&rec("Start", "s0", "n1", 5000, &ip(1)));
        for text in [mixed(), many] {
            replayed_in_passes(&text);
        }
    }

    fn replayed_in_passes(text: &str) {
        let mut events = Vec::new();
        parse(text, 0, &mut events, &mut Warnings::default());
        let mut want_w = Warnings::default();
        let want = sessions(events.clone(), &mut want_w);
        events.reverse();
        for (budget, want_passes) in [(0, events.len()), (600, 0), (1 << 20, 1)] {
            let (mut w, mut passes) = (Warnings::default(), 0);
            let store = replay_in_time_order(
                budget,
                &mut |each: &mut dyn FnMut(Record<'_>)| -> Result<(), ()> {
                    passes += 1;
                    events.iter().for_each(|e| each(e.as_record()));
                    Ok(())
                },
                &mut w,
            )
            .unwrap()
            .expect("within a store's bounds");
            assert_eq!(store.iter().collect::<Vec<_>>(), want, "budget {budget}");
            assert_eq!((&w.counts, &w.named), (&want_w.counts, &want_w.named), "budget {budget}");
            if want_passes > 0 {
                assert_eq!(passes, want_passes, "budget {budget}");
            } else {
                assert!(passes > 1 && passes < events.len(), "budget {budget}: {passes} passes");
            }
        }
    }

    #[test]
    fn replayed_as_read_as_in_time_order() {
        let text = mixed();
        let (want, ww) = in_time_order(&text);
        let (got, w) = as_read(&text).expect("in order");
        assert_eq!(got, want);
        assert_eq!((&w.counts, &w.named), (&ww.counts, &ww.named));
        assert_eq!(want.len(), 9, "{want:#?}");
        assert_eq!(w.count(WarningKind::Incomplete), 2, "{:?}", w.named);
        assert_eq!(w.count(WarningKind::StartWhileOpen), 1);
        // Many warnings of one kind: the same ones named.
        let mut text = String::new();
        for i in (0..60).rev() {
            text.push_str(&rec("Stop", &format!("s{i}"), "n1", 1000 + i, "\tUser-Name = u\n"));
        }
        assert!(as_read(&text).is_some());
        text.push_str(&rec("Start", "s0", "n1", 5000, &ip(1)));
        let (got, w) = as_read(&text).expect("per session, in order");
        let (want, ww) = in_time_order(&text);
        assert_eq!(got, want);
        assert_eq!((&w.counts, &w.named), (&ww.counts, &ww.named));
        assert_eq!(w.count(WarningKind::Incomplete), 60);
        assert_eq!(w.named.len(), 2 * MAX_WARNINGS_NAMED, "incomplete and stop_without_start");
    }

    #[test]
    fn records_out_of_time_order_are_said_to_be() {
        // A Stop read before its Start (a later file holding earlier
        // records), and a NAS's records older than its restart.
        let late = rec("Stop", "a", "n1", 200, "") + &rec("Start", "a", "n1", 100, "\tUser-Name = u\n");
        assert!(as_read(&late).is_none());
        let reset = rec("Accounting-On", "", "n1", 200, "") + &rec("Start", "a", "n1", 100, "\tUser-Name = u\n");
        assert!(as_read(&reset).is_none());
        let reset = rec("Start", "a", "n1", 300, "\tUser-Name = u\n") + &rec("Accounting-On", "", "n1", 200, "");
        assert!(as_read(&reset).is_none());
        // Other sessions' records may interleave in any time order.
        let other = rec("Start", "a", "n1", 300, "\tUser-Name = u\n\tFramed-IP-Address = 10.0.0.1\n")
            + &rec("Start", "b", "n1", 100, "\tUser-Name = v\n\tFramed-IP-Address = 10.0.0.1\n");
        let (got, _) = as_read(&other).expect("per session, in order");
        assert_eq!(got, in_time_order(&other).0);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_record_that_runs_on_is_not_held() {
        // Attribute lines without a blank line for more than MAX_RECORD:
        // the record is named at its first line and not read; the next
        // record is.
        let filler = "\tVendor-Specific = 0123456789012345678901234567890123456789012345678901234567\n";
        let first = rec("Start", "a", "n1", 100, &(ip(1) + &filler.repeat(super::super::lines::MAX_RECORD / 40)));
        let text = first + &rec("Start", "b", "n1", 101, &ip(2));
        let (s, w) = in_time_order(&text);
        assert_eq!(s.iter().map(|s| s.subscriber.as_str()).collect::<Vec<_>>(), ["u2"]);
        assert_eq!((w.total(), w.named[0].origin.line), (1, 1), "{:?}", w.named);
        assert!(w.named[0].message.contains("more than 1 MiB"), "{:?}", w.named);
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
