//! Deadline markers: `--event 2013-03-01="port 25 blocked"` (repeatable)
//! names the days something changed, the slides' "before and after port 25
//! management". Each marker splits every time series of the report
//! (capture, blocklist rank, complaints) into the period before it and the
//! period from it on, and is drawn on every time chart.
//!
//! With several markers each one compares adjacent periods: before is from
//! the previous marker (or the start of the data) to the day before this
//! one, after is from this one to the day before the next marker (or the
//! end), so a change is credited to the marker it follows.

use crate::table::Table;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Marker {
    pub day: i64,
    pub label: String,
}

impl Marker {
    pub fn date(&self) -> String {
        crate::date::format_day(self.day)
    }
}

/// `YYYY-MM-DD=label` (the label may be empty: the date names it).
pub fn parse(arg: &str) -> Result<Marker, String> {
    let (day, label) = arg.split_once('=').unwrap_or((arg, ""));
    let d = crate::date::parse_day(day.trim()).filter(|_| day.trim().len() == 10).ok_or_else(|| {
        format!("--event {arg:?}: expected YYYY-MM-DD=label, e.g. --event 2013-03-01=\"port 25 blocked\"")
    })?;
    if label.chars().any(char::is_control) {
        return Err(format!("--event {arg:?}: the label has control characters"));
    }
    Ok(Marker { day: d, label: label.trim().to_owned() })
}

/// Sorted by day; two markers on one day are refused (which period would
/// lie between them?).
pub fn sorted(mut v: Vec<Marker>) -> Result<Vec<Marker>, String> {
    v.sort_by_key(|m| m.day);
    if let Some(w) = v.windows(2).find(|w| w[0].day == w[1].day) {
        return Err(format!(
            "--event: two markers on {} ({:?} and {:?}); give one",
            w[0].date(),
            w[0].label,
            w[1].label
        ));
    }
    Ok(v)
}

/// The day a time-axis label stands for: `YYYY-MM-DD`, or `YYYY-MM` (its
/// first day). Other labels (countries, ASes) are no time axis.
pub fn label_day(label: &str) -> Option<i64> {
    match label.len() {
        10 => crate::date::parse_day(label),
        7 => crate::date::parse_day(&format!("{label}-01")),
        _ => None,
    }
}

/// One series to compare: a value per point (a day, a month, a dump),
/// each point dated by its first day. Points must be given for every
/// period unit where the value is known, zeros included (a day without
/// spam is 0 spam, not unknown), so a mean over a period is a rate.
pub struct Series {
    pub section: String,
    pub metric: String,
    /// What one point is: `day`, `month`, `dump`.
    pub per: &'static str,
    pub points: Vec<(i64, f64)>,
}

/// The before/after periods of marker `i`: [start, day) and [day, end),
/// `None` where open.
pub fn periods(markers: &[Marker], i: usize) -> ((Option<i64>, i64), (i64, Option<i64>)) {
    let prev = i.checked_sub(1).map(|p| markers[p].day);
    let next = markers.get(i + 1).map(|m| m.day);
    ((prev, markers[i].day), (markers[i].day, next))
}

fn mean(points: &[(i64, f64)], from: Option<i64>, to: Option<i64>) -> (usize, Option<f64>, Option<i64>, Option<i64>) {
    let inside: Vec<&(i64, f64)> =
        points.iter().filter(|(d, _)| from.is_none_or(|f| *d >= f) && to.is_none_or(|t| *d < t)).collect();
    if inside.is_empty() {
        return (0, None, None, None);
    }
    let sum: f64 = inside.iter().map(|p| p.1).sum();
    (inside.len(), Some(sum / inside.len() as f64), inside.first().map(|p| p.0), inside.last().map(|p| p.0))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The before/after table: one row per marker and series.
pub fn table(id: &str, markers: &[Marker], series: &[Series]) -> Table {
    let mut t = Table::new(
        id,
        "Before and after each event: mean per day, month or dump",
        &[
            "event_date",
            "event",
            "section",
            "metric",
            "per",
            "before",
            "after",
            "change",
            "change_pct",
            "before_points",
            "after_points",
            "before_window",
            "after_window",
        ],
    );
    let window = |n: usize, a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => json!(format!("{}..{}", crate::date::format_day(a), crate::date::format_day(b))),
        _ => json!(if n == 0 { "no data" } else { "" }),
    };
    for i in 0..markers.len() {
        let ((b0, b1), (a0, a1)) = periods(markers, i);
        for s in series {
            let (nb, before, fb, lb) = mean(&s.points, b0, Some(b1));
            let (na, after, fa, la) = mean(&s.points, Some(a0), a1);
            let change = before.zip(after).map(|(b, a)| a - b);
            let change_pct = before.zip(after).and_then(|(b, a)| (b != 0.0).then(|| round2((a - b) * 100.0 / b)));
            t.push(vec![
                json!(markers[i].date()),
                json!(markers[i].label),
                json!(s.section),
                json!(s.metric),
                json!(s.per),
                json!(before.map(round2)),
                json!(after.map(round2)),
                json!(change.map(round2)),
                json!(change_pct),
                json!(nb),
                json!(na),
                window(nb, fb, lb),
                window(na, fa, la),
            ]);
        }
    }
    t
}

/// Every day from `first` to `last` with its value (0 where `values` has
/// none): a daily series a mean over a period can be taken of.
pub fn dense_days(values: &std::collections::BTreeMap<i64, f64>) -> Vec<(i64, f64)> {
    let (Some(first), Some(last)) = (values.keys().next(), values.keys().next_back()) else {
        return Vec::new();
    };
    (*first..=*last).map(|d| (d, values.get(&d).copied().unwrap_or(0.0))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_order() {
        let m = parse("2013-03-01=port 25 blocked").unwrap();
        assert_eq!((m.date(), m.label.as_str()), ("2013-03-01".into(), "port 25 blocked"));
        assert_eq!(parse("2013-03-01").unwrap().label, "");
        for bad in ["2013-3-1=x", "port 25=2013-03-01", "2013-02-30x=y", "2013-03-01=a\nb"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let two = vec![parse("2013-03-01=b").unwrap(), parse("2012-01-01=a").unwrap()];
        assert_eq!(sorted(two).unwrap()[0].label, "a");
        assert!(sorted(vec![parse("2013-03-01=b").unwrap(), parse("2013-03-01=c").unwrap()]).is_err());
        assert_eq!(label_day("2013-03"), crate::date::parse_day("2013-03-01"));
        assert_eq!(label_day("BR"), None);
    }

    /// Adjacent periods: the second marker's "before" starts at the first.
    #[test]
    fn adjacent_periods_and_change() {
        let d = |s: &str| crate::date::parse_day(s).unwrap();
        let markers = vec![
            Marker { day: d("2013-01-03"), label: "a".into() },
            Marker { day: d("2013-01-05"), label: "b".into() },
        ];
        // 10, 10 | 4, 4 | 1, 1, 1
        let points: Vec<(i64, f64)> = [10.0, 10.0, 4.0, 4.0, 1.0, 1.0, 1.0]
            .iter()
            .enumerate()
            .map(|(i, v)| (d("2013-01-01") + i as i64, *v))
            .collect();
        let t = table(
            "before_after",
            &markers,
            &[Series { section: "capture".into(), metric: "emails".into(), per: "day", points }],
        );
        let col = |r: usize, c: &str| t.rows[r][t.columns.iter().position(|x| x == c).unwrap()].clone();
        assert_eq!(
            (col(0, "before"), col(0, "after"), col(0, "change"), col(0, "change_pct")),
            (json!(10.0), json!(4.0), json!(-6.0), json!(-60.0))
        );
        assert_eq!((col(1, "before"), col(1, "after"), col(1, "change_pct")), (json!(4.0), json!(1.0), json!(-75.0)));
        assert_eq!((col(1, "before_window"), col(1, "after_points")), (json!("2013-01-03..2013-01-04"), json!(3)));
    }
}
