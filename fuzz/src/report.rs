//! Properties of the report's input parsers (port25_report): IP range
//! files, CAIDA pfx2as, rbldnsd ip4set lines, abuse reports (ARF/plain)
//! and the mbox reader they come in.
//! Each never panics, reports errors with a line inside the input, and what
//! it accepts is consistent. std and port25_report only (included by
//! crates/report/tests/fuzz_smoke.rs).

use port25_report::{arf, ip4set, pfx2as::Pfx2as, ranges::Ranges};

fn lines_of(text: &str) -> u64 {
    text.lines().count() as u64
}

pub fn ranges(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Ranges::parse(text) {
        Ok(r) => {
            // Every accepted row answers for its own first address.
            for line in text.lines() {
                let f: Vec<&str> = line.trim().split([',', '\t']).map(|x| x.trim().trim_matches('"')).collect();
                if f.len() >= 3 && !line.trim_start().starts_with('#') && f[2] != "??" {
                    if let Ok(ip) = f[0].parse::<std::net::IpAddr>() {
                        assert!(r.lookup(ip).is_some(), "{ip} listed but not found");
                    }
                }
            }
        }
        Err(e) => {
            assert!(e.line >= 1 && e.line <= lines_of(text), "error line {} outside 1..={}", e.line, lines_of(text))
        }
    }
}

pub fn pfx2as(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Pfx2as::parse(text) {
        Ok(t) => {
            for line in text.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() == 3 && !line.trim_start().starts_with('#') {
                    let ip: std::net::IpAddr = f[0].parse().expect("accepted lines have an address");
                    assert!(t.lookup(ip).is_some_and(|a| !a.is_empty()), "{ip} has a prefix but no AS");
                }
            }
        }
        Err(e) => assert!(e.line >= 1 && e.line <= lines_of(text)),
    }
}

pub fn ip4set(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        if let Ok(Some(e)) = ip4set::parse_line(line) {
            assert!(e.first <= e.last, "{line:?}: range backwards");
            // The first address, written as a plain entry, is a one-address entry.
            let ip = port25_report::ip::from_key(e.first);
            let back = ip4set::parse_line(&ip.to_string()).expect("an address parses").expect("not a comment");
            assert_eq!((back.first, back.last), (e.first, e.first));
        }
    }
}

/// `report_mbox` (port25_report::complaints::mbox, the streaming reader):
/// the same messages, places and bytes as splitting the whole input at
/// once (the reader it replaced, bytewise), whatever the chunking of the
/// reads; never more than MAX_MESSAGE bytes a message.
pub fn mbox(data: &[u8]) {
    use port25_report::complaints::{mbox, MAX_MESSAGE};
    let Some(split) = data.first().map(|b| 1 + usize::from(*b)) else { return };
    let data = &data[1..];
    let mut want: Vec<(String, Vec<u8>)> = Vec::new();
    let (mut start_line, mut msg, mut prev_blank) = (1u64, Vec::new(), true);
    for (i, line) in data.split_inclusive(|&b| b == b'\n').enumerate() {
        if prev_blank && line.starts_with(b"From ") {
            if i > 0 {
                want.push((format!("m:{start_line}"), std::mem::take(&mut msg)));
            }
            start_line = i as u64 + 1;
            prev_blank = false;
            continue;
        }
        prev_blank = line == b"\n" || line == b"\r\n";
        msg.extend_from_slice(line.strip_prefix(b">").filter(|l| l.starts_with(b"From ")).unwrap_or(line));
    }
    want.push((format!("m:{start_line}"), msg));
    // Reads of `split` bytes at most: lines cross buffer ends.
    let mut r = std::io::BufReader::with_capacity(split, data);
    let mut got = Vec::new();
    mbox(&mut r, "m", &mut |place, raw| {
        assert!(raw.len() <= MAX_MESSAGE);
        got.push((place.to_owned(), raw.to_vec()));
    })
    .expect("reading a slice cannot fail");
    assert_eq!(got, want);
}

pub fn complaint(data: &[u8]) {
    if let Ok(c) = arf::parse(data) {
        let (y, _, _) = port25_time::civil_from_days(c.day);
        assert!((1970..=9999).contains(&y), "day {} out of range", c.day);
        assert_eq!(c.evidence, c.evidence.to_ascii_lowercase());
    }
}

/// `report_dates` (port25_report::date::{parse_day, day_in_name},
/// parquet_export::millis, arf::parse_date): dates read from capture logs
/// that sensors ship over the network, file names and abuse reports. Never
/// panic (issue 13: a multi-byte character at byte 9 of a capture's time
/// did); a day written back reads back equal; a time's day is its date's.
pub fn dates(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for s in [text.as_ref(), text.trim()] {
        if let Some(d) = port25_report::date::parse_day(s) {
            assert_eq!(port25_report::date::parse_day(&port25_report::date::format_day(d)), Some(d), "{s:?}");
        }
        if let Some(ms) = port25_report::parquet_export::millis(s) {
            assert_eq!(Some(ms.div_euclid(86_400_000)), port25_report::date::parse_day(s), "{s:?}");
        }
        let _ = port25_report::date::day_in_name(s);
        let _ = arf::parse_date(s);
    }
}

/// `report_cbl` (port25_report::cbl::parse, CBL statistics snapshots):
/// never panics; a refusal says what was expected; bad rows are named by
/// a line inside the input; counts survive a second read of the same text.
pub fn cbl(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match port25_report::cbl::parse(&text) {
        Ok(s) => {
            let lines = lines_of(&text).max(1);
            for b in &s.bad {
                assert!(b.line >= 1 && b.line <= lines, "bad row at line {} outside 1..={lines}", b.line);
            }
            assert_eq!(port25_report::cbl::parse(&text).expect("parsed once"), s);
        }
        Err(e) => assert!(e.contains("expected"), "{e}"),
    }
}
