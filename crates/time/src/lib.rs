//! Time without a calendar crate, in one place for every crate: Unix time
//! now (the spool's `received_at`, session ids, the accounts' usage
//! records) and UTC civil dates (the capture log's RFC 3339 times and day
//! names, the report's days, the egress attribution logs' timestamps).
//! Proleptic Gregorian, Howard Hinnant's `days_from_civil` and its inverse;
//! std only, so any crate may depend on it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch; zero for a clock set before 1970 (a time
/// stamp is never negative, and a wrong clock must not stop the server).
pub fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Unix seconds now.
pub fn unix_secs() -> u64 {
    since_epoch(SystemTime::now()).as_secs()
}

/// Unix milliseconds now.
pub fn unix_millis() -> u64 {
    since_epoch(SystemTime::now()).as_millis() as u64
}

/// Unix nanoseconds now (unique names, seeds).
pub fn unix_nanos() -> u128 {
    since_epoch(SystemTime::now()).as_nanos()
}

/// (year, month, day) of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a date (month 1 to 12; not checked).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds of a UTC date and time as logs write it; `None` for a
/// field out of range (month 13, hour 24; a leap second 60 is taken), a
/// year past 9999, or a time before 1970.
pub fn unix_from_civil(y: i64, m: i64, d: i64, hh: i64, mm: i64, ss: i64) -> Option<u64> {
    let valid = (1..=12).contains(&m)
        && (1..=31).contains(&d)
        && (0..=23).contains(&hh)
        && (0..=59).contains(&mm)
        && (0..=60).contains(&ss)
        && (0..=9999).contains(&y);
    if !valid {
        return None;
    }
    let days = days_from_civil(y, m as u32, d as u32);
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// `2026-11-23T23:50:00Z` for Unix seconds.
pub fn rfc3339_secs(secs: u64) -> String {
    let secs = secs as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// `2026-11-23T23:50:00.123Z`
pub fn rfc3339_millis(t: SystemTime) -> String {
    let since = since_epoch(t);
    let seconds = rfc3339_secs(since.as_secs());
    format!("{}.{:03}Z", seconds.trim_end_matches('Z'), since.subsec_millis())
}

/// `20261123`: the UTC day `t` falls in.
pub fn day(t: SystemTime) -> String {
    let (y, mo, d) = civil_from_days((since_epoch(t).as_secs() / 86_400) as i64);
    format!("{y:04}{mo:02}{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (leap day in a century leap year) 12:34:56.789
        let t = UNIX_EPOCH + Duration::from_millis(951_827_696_789);
        assert_eq!(rfc3339_millis(t), "2000-02-29T12:34:56.789Z");
        assert_eq!(rfc3339_secs(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(day(t), "20000229");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_478_399);
        assert_eq!(rfc3339_millis(t), "2026-11-23T23:59:59.000Z");
        assert_eq!(day(t + Duration::from_secs(1)), "20261124");
    }

    #[test]
    fn days_round_trip_both_ways() {
        for day in [-1_000_000, -1000, -1, 0, 59, 60, 11_016, 13_309, 20_000, 20_780, 2_932_896] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day, "{y}-{m}-{d}");
        }
        // Table 1 of the white paper: 10/06/2006 to 18/09/2007 is 466 days, both ends counted.
        assert_eq!(days_from_civil(2007, 9, 18) - days_from_civil(2006, 6, 10) + 1, 466);
    }

    #[test]
    fn civil_times_in_range_only() {
        assert_eq!(unix_from_civil(1970, 1, 1, 0, 0, 0), Some(0));
        assert_eq!(unix_from_civil(2025, 11, 24, 16, 0, 0), Some(1_764_000_000));
        assert_eq!(unix_from_civil(1969, 12, 31, 23, 59, 59), None);
        assert_eq!(unix_from_civil(2025, 13, 1, 0, 0, 0), None);
        assert_eq!(unix_from_civil(2025, 1, 1, 24, 0, 0), None);
        assert_eq!(unix_from_civil(10_000, 1, 1, 0, 0, 0), None);
    }

    #[test]
    fn a_clock_before_1970_reads_as_the_epoch() {
        assert_eq!(since_epoch(UNIX_EPOCH - Duration::from_secs(5)), Duration::ZERO);
        assert_eq!(rfc3339_millis(UNIX_EPOCH - Duration::from_secs(5)), "1970-01-01T00:00:00.000Z");
    }
}
