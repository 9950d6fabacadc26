//! Calendar days as integers (days since 1970-01-01, UTC) and the few
//! textual forms the inputs use; the arithmetic is port25-time's.

use port25_time::{civil_from_days, days_from_civil};

/// `YYYY-MM-DD` (the first ten bytes of an RFC 3339 time) to a day number.
pub fn parse_day(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        // get: a byte index inside a UTF-8 character is no date.
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(i64::from(y), m, d))
}

/// A date found in a file name: `YYYY-MM-DD`, `YYYYMMDD` or `YYYY-MM` (first
/// of the month), the first that parses. Dated enrichment files and
/// blocklist dumps are named this way (`cbl-2013-03-01.txt`,
/// `routeviews-rv2-20130301-1200.pfx2as`).
pub fn day_in_name(name: &str) -> Option<i64> {
    let b = name.as_bytes();
    for i in 0..b.len() {
        if i > 0 && b[i - 1].is_ascii_digit() {
            continue;
        }
        if let Some(d) = name.get(i..i + 10).and_then(parse_day) {
            return Some(d);
        }
        if let Some(t) = name.get(i..i + 8) {
            if t.bytes().all(|c| c.is_ascii_digit()) && b.get(i + 8).is_none_or(|c| !c.is_ascii_digit()) {
                let iso = format!("{}-{}-{}", t.get(..4)?, t.get(4..6)?, t.get(6..)?);
                if let Some(d) = parse_day(&iso) {
                    return Some(d);
                }
            }
        }
        if let Some(t) = name.get(i..i + 7) {
            if b.get(i + 7).is_none_or(|c| !c.is_ascii_digit()) {
                if let Some(d) = parse_day(&format!("{t}-01")) {
                    return Some(d);
                }
            }
        }
    }
    None
}

/// `2006-06-10`
pub fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `2006-06`
pub fn format_month(day: i64) -> String {
    let (y, m, _) = civil_from_days(day);
    format!("{y:04}-{m:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names() {
        for day in [-1000, 0, 13_309, 20_000, 20_780] {
            assert_eq!(parse_day(&format_day(day)), Some(day));
        }
        // Table 1: 10/06/2006 to 18/09/2007 is 466 days, both ends counted.
        assert_eq!(parse_day("2007-09-18").unwrap() - parse_day("2006-06-10").unwrap() + 1, 466);
        assert_eq!(day_in_name("cbl-2013-03-01.txt"), parse_day("2013-03-01"));
        assert_eq!(day_in_name("routeviews-rv2-20130301-1200.pfx2as"), parse_day("2013-03-01"));
        assert_eq!(day_in_name("GeoLite2-Country_2013-03.mmdb"), parse_day("2013-03-01"));
        assert_eq!(day_in_name("geoip"), None);
        assert_eq!(day_in_name("as123456789"), None);
        assert_eq!(parse_day("2013-13-01"), None);
    }
}
