//! The SQL accounting table (`radacct`, FreeRADIUS's rlm_sql schema)
//! exported as CSV with a header, e.g.
//! `psql -c "\copy radacct to 'radacct.csv' csv header"` or MySQL's
//! `SELECT ... INTO OUTFILE` with a header row added.
//!
//! One row per session, columns by header name (case does not matter):
//! `acctstarttime`, `acctstoptime` (empty while open), `username`,
//! `callingstationid`, `framedipaddress`, `framedipv6address`,
//! `framedipv6prefix`, `delegatedipv6prefix`, `acctsessionid` or
//! `acctuniqueid`, `nasipaddress`. Times are `YYYY-MM-DD HH:MM:SS` with
//! optional fraction and offset (`+00`, `+05:30`, `Z`); without an offset
//! they are taken as UTC. The subscriber is `username`, else
//! `callingstationid`.

use super::csv::records;
use super::{civil_ms, prefix_of, Origin, Session, Source, SubscriberKind, WarningKind, Warnings};
use std::collections::HashMap;
use std::io::{self, BufRead};

/// Reads one export.
pub fn parse(text: &str, file: u32, out: &mut Vec<Session>, w: &mut Warnings) {
    read_each(text.as_bytes(), file, &mut |s| out.push(s), w).expect("reading from memory cannot fail");
}

/// [`parse`] from a stream, one line in memory at a time, each session
/// handed to `each` as it is read.
pub fn read_each(r: impl BufRead, file: u32, each: &mut dyn FnMut(Session), w: &mut Warnings) -> io::Result<()> {
    let mut header: Option<HashMap<String, usize>> = None;
    let mut rows = records(r);
    while let Some(r) = rows.next_row(file, w)? {
        let origin = Origin { file, line: r.line };
        let Some(h) = &header else {
            let h: HashMap<String, usize> =
                r.fields.iter().enumerate().map(|(i, f)| (f.trim().to_ascii_lowercase(), i)).collect();
            if !h.contains_key("acctstarttime") || !h.contains_key("framedipaddress") {
                w.add(WarningKind::BadRecord, origin, "the first line is not a radacct header (acctstarttime, framedipaddress, ... missing): nothing read");
                return Ok(());
            }
            header = Some(h);
            continue;
        };
        match row(h, &r.fields, origin, w) {
            Ok(Some(s)) => each(s),
            Ok(None) => {}
            Err(why) => w.add(WarningKind::BadRecord, origin, why),
        }
    }
    Ok(())
}

fn row(h: &HashMap<String, usize>, f: &[String], origin: Origin, w: &mut Warnings) -> Result<Option<Session>, String> {
    if f.len() != h.len() {
        return Err(format!("{} columns where the header has {}", f.len(), h.len()));
    }
    let col = |name: &str| {
        h.get(name)
            .and_then(|&i| f.get(i))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("null") && *v != "\\N")
    };
    let start = col("acctstarttime").ok_or("no acctstarttime")?;
    let start_ms = sql_time(start).ok_or_else(|| format!("acctstarttime {:?} is not a time", super::clean(start)))?;
    let end_ms = match col("acctstoptime") {
        Some(t) => Some(sql_time(t).ok_or_else(|| format!("acctstoptime {:?} is not a time", super::clean(t)))?),
        None => None,
    };
    if end_ms.is_some_and(|e| e < start_ms) {
        return Err("acctstoptime is before acctstarttime".into());
    }
    let mut prefixes = Vec::new();
    for name in ["framedipaddress", "framedipv6address", "framedipv6prefix", "delegatedipv6prefix"] {
        if let Some(v) = col(name) {
            prefixes
                .push(prefix_of(v).ok_or_else(|| format!("{name} {:?} is not an address or prefix", super::clean(v)))?);
        }
    }
    let id = col("acctuniqueid").or(col("acctsessionid")).unwrap_or_default().to_owned();
    let Some((subscriber, kind)) = col("username")
        .map(|u| (u, SubscriberKind::UserName))
        .or_else(|| col("callingstationid").map(|c| (c, SubscriberKind::CallingStationId)))
    else {
        w.add(
            WarningKind::Incomplete,
            origin,
            format!("session {} names no username or callingstationid", super::clean(&id)),
        );
        return Ok(None);
    };
    if prefixes.is_empty() {
        w.add(WarningKind::Incomplete, origin, format!("session {} names no address", super::clean(&id)));
        return Ok(None);
    }
    Ok(Some(Session {
        source: Source::Radacct,
        subscriber: subscriber.to_owned(),
        kind,
        id: match col("nasipaddress") {
            Some(nas) if col("acctuniqueid").is_none() => format!("{nas}/{id}"),
            _ => id,
        },
        remote_id: None,
        circuit_id: None,
        prefixes,
        start_ms,
        end_ms,
        origin,
    }))
}

/// `YYYY-MM-DD HH:MM:SS[.frac][Z|+HH|+HH:MM|+HHMM|-...]` (also with `T`)
/// as Unix milliseconds.
pub fn sql_time(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let base = civil_ms(num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?)?;
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = frac.get(digits..)?;
    }
    let offset_secs: i64 = match rest.trim() {
        "" | "Z" | "UTC" => 0,
        z => {
            let sign = match z.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let z = z.get(1..)?.replace(':', "");
            let (hh, mm) = match z.len() {
                2 => (z.parse::<i64>().ok()?, 0),
                4 => (z.get(..2)?.parse::<i64>().ok()?, z.get(2..)?.parse::<i64>().ok()?),
                _ => return None,
            };
            if hh > 23 || mm > 59 {
                return None;
            }
            sign * (hh * 3600 + mm * 60)
        }
    };
    // Local time minus its offset is UTC.
    u64::try_from(base as i128 - offset_secs as i128 * 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_to_sessions() {
        let text = "radacctid,acctsessionid,acctuniqueid,username,nasipaddress,acctstarttime,acctstoptime,callingstationid,framedipaddress,delegatedipv6prefix
1,s1,u1,alice,192.0.2.1,2025-11-24 16:00:00+00,2025-11-24 17:00:00+00,,100.64.0.1,2001:db8:1::/56
2,s2,,,192.0.2.1,2025-11-24T16:30:00.123456Z,,\"02-00,x\",100.64.0.2,
3,s3,,bob,192.0.2.1,yesterday,,,100.64.0.3,
4,s4,,carol,192.0.2.1,2025-11-24 16:00:00,,,,
5,s5,,dave,192.0.2.1,2025-11-24 21:30:00+05:30,,,100.64.0.5,
7,s7,,frank,192.0.2.1,2025-11-24 16:00:00,2024-11-24 17:00:00,,100.64.0.7,
6,s6,,erin,192.0.2.1,2025-11-24 16:00:00,,,100.64.0.6";
        let mut w = Warnings::default();
        let mut s = Vec::new();
        parse(text, 0, &mut s, &mut w);
        assert_eq!(s.len(), 3, "{:?}", w.named);
        assert_eq!(
            (s[0].subscriber.as_str(), s[0].id.as_str(), s[0].start_ms, s[0].end_ms),
            ("alice", "u1", 1_764_000_000_000, Some(1_764_003_600_000))
        );
        assert_eq!(s[0].prefixes.len(), 2);
        assert_eq!(
            (s[1].subscriber.as_str(), s[1].kind, s[1].id.as_str(), s[1].end_ms),
            ("02-00,x", SubscriberKind::CallingStationId, "192.0.2.1/s2", None)
        );
        assert_eq!(s[1].start_ms, 1_764_001_800_000);
        assert_eq!(s[2].start_ms, 1_764_000_000_000, "+05:30");
        // Row 7 (found by attribution_radacct) stops before it starts.
        assert_eq!(
            (w.count(WarningKind::BadRecord), w.count(WarningKind::Incomplete), w.count(WarningKind::Truncated)),
            (2, 1, 1)
        );
        assert!(
            w.named.iter().any(|x| x.origin.line == 7 && x.message.contains("before acctstarttime")),
            "{:?}",
            w.named
        );
        assert_eq!(w.named.iter().find(|x| x.kind == WarningKind::BadRecord).unwrap().origin.line, 4);
    }
}
