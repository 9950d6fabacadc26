//! UTC timestamps without a calendar crate: the log needs RFC 3339 times and
//! day names, nothing more (proleptic Gregorian, Howard Hinnant's algorithm).

use std::time::{SystemTime, UNIX_EPOCH};

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

fn since_epoch(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_millis()),
        Err(_) => (0, 0),
    }
}

/// `2026-11-23T23:50:00.123Z`
pub fn rfc3339(t: SystemTime) -> String {
    let (secs, millis) = since_epoch(t);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", s / 3600, s / 60 % 60, s % 60)
}

/// `20261123`: the UTC day a log segment belongs to.
pub fn day(t: SystemTime) -> String {
    let (secs, _) = since_epoch(t);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}{mo:02}{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (leap day in a century leap year) 12:34:56.789
        let t = UNIX_EPOCH + Duration::from_millis(951_827_696_789);
        assert_eq!(rfc3339(t), "2000-02-29T12:34:56.789Z");
        assert_eq!(day(t), "20000229");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_478_399);
        assert_eq!(rfc3339(t), "2026-11-23T23:59:59.000Z");
        assert_eq!(day(t + Duration::from_secs(1)), "20261124");
    }
}
