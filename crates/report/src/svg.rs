//! Charts drawn as inline SVG by hand: the report must open with no
//! network and no script, and the three chart shapes it needs (bars over
//! time, horizontal shares, lines over time with an optional inverted axis
//! for ranks) are a few dozen lines each. Every mark carries its value in a
//! `<title>` (a tooltip in browsers) and `data-value`, so tests and people
//! can read the numbers back.
//!
//! Every chart is a `<figure>`: the SVG with its title, both axis titles
//! (with units) and, on a time axis, the `--event` markers as labelled
//! dashed lines; then a one-line `<figcaption>` naming the source and the
//! window. The SVG scales to the page width (viewBox), so it reads on a
//! phone as on a desktop.

use crate::markers::Marker;
use std::fmt::Write;

const W: f64 = 760.0;
const H: f64 = 280.0;
const LEFT: f64 = 78.0;
const BOTTOM: f64 = 56.0;
const TOP: f64 = 44.0;
const COLORS: &[&str] =
    &["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

/// What every chart has besides its data.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    pub id: &'a str,
    pub title: &'a str,
    /// Axis titles, with the unit: "Day (UTC)", "Emails per day".
    pub x_title: &'a str,
    pub y_title: &'a str,
    /// Source and window, one line.
    pub caption: &'a str,
    /// Drawn when the x axis is time (labels `YYYY-MM-DD` or `YYYY-MM`).
    pub markers: &'a [Marker],
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn open(out: &mut String, f: &Frame<'_>, h: f64) {
    let _ = write!(
        out,
        r#"<figure class="chart" id="fig_{id}"><svg class="chart" id="{id}" viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" aria-label="{t}"><text x="{LEFT}" y="18" font-size="15" font-weight="bold">{t}</text>"#,
        id = esc(f.id),
        t = esc(f.title),
    );
}

/// Axis titles: x under the tick labels, y turned along the axis.
fn axis_titles(out: &mut String, f: &Frame<'_>, plot_top: f64, plot_bottom: f64) {
    let _ = write!(
        out,
        r#"<text class="axis-title x" x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle">{}</text><text class="axis-title y" transform="translate(16 {:.1}) rotate(-90)" font-size="13" text-anchor="middle">{}</text>"#,
        LEFT + (W - LEFT - 10.0) / 2.0,
        plot_bottom + 38.0,
        esc(f.x_title),
        (plot_top + plot_bottom) / 2.0,
        esc(f.y_title)
    );
}

fn close(out: &mut String, f: &Frame<'_>, missed: &[&Marker]) {
    out.push_str("</svg>");
    let mut caption = f.caption.to_owned();
    for m in missed {
        let _ = write!(caption, " Event {} ({}) is outside this chart.", m.date(), m.label);
    }
    let _ = write!(out, "<figcaption>{}</figcaption></figure>", esc(&caption));
}

/// Markers as dashed lines at the x of their day; `x_of_day` places a day
/// (None: outside the axis). Returns the markers it could not place.
fn markers<'m>(
    out: &mut String,
    f: &'m Frame<'_>,
    plot_bottom: f64,
    x_of_day: impl Fn(i64) -> Option<f64>,
) -> Vec<&'m Marker> {
    let mut missed = Vec::new();
    for (k, m) in f.markers.iter().enumerate() {
        let Some(x) = x_of_day(m.day) else {
            missed.push(m);
            continue;
        };
        let text = if m.label.is_empty() { m.date() } else { format!("{} {}", m.date(), m.label) };
        // Labels alternate between two rows so neighbours do not overprint.
        let ty = TOP - 6.0 - 12.0 * (k % 2) as f64;
        let anchor = if x > W * 0.7 { "end" } else { "start" };
        let _ = write!(
            out,
            r##"<line class="marker" data-day="{d}" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{plot_bottom:.1}" stroke="#444" stroke-width="1.5" stroke-dasharray="5 3"/><text class="marker-label" x="{:.1}" y="{ty:.1}" font-size="12" fill="#444" text-anchor="{anchor}">{}</text>"##,
            ty + 2.0,
            if anchor == "end" { x - 3.0 } else { x + 3.0 },
            esc(&text),
            d = m.date()
        );
    }
    missed
}

/// For a time axis: where day `d` falls, given the x of each label (their
/// days ascending). Between two labels the position is interpolated by
/// date; before the first or after the last it is outside.
fn time_x(days: &[Option<i64>], x_of: &dyn Fn(usize) -> f64, d: i64, edge: f64) -> Option<f64> {
    if days.is_empty() || days.iter().any(Option::is_none) {
        return None;
    }
    let days: Vec<i64> = days.iter().flatten().copied().collect();
    let last = days.len() - 1;
    if d < days[0] || d > days[last] {
        return None;
    }
    let i = days.partition_point(|&x| x < d);
    if days[i] == d || i == 0 {
        return Some(x_of(i) - edge);
    }
    let frac = (d - days[i - 1]) as f64 / (days[i] - days[i - 1]) as f64;
    Some(x_of(i - 1) + frac * (x_of(i) - x_of(i - 1)) - edge)
}

fn y_axis(out: &mut String, max: f64, invert: bool) {
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = if invert { TOP + plot_h * f64::from(i) / 4.0 } else { H - BOTTOM - plot_h * f64::from(i) / 4.0 };
        // Inverted (ranks): the axis runs from 1 at the top to `max`.
        let label = if invert { (1.0 + (max - 1.0) * f64::from(i) / 4.0).round() } else { v };
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="12" text-anchor="end">{}</text>"##,
            W - 10.0,
            LEFT - 6.0,
            y + 4.0,
            fmt_num(label)
        );
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Tick labels under the x axis: as many as fit without touching (a
/// label is about 7 px a character at 12 px), the last kept inside.
fn x_labels(out: &mut String, labels: &[String], x_of: impl Fn(usize) -> f64) {
    let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64 * 7.0 + 12.0;
    let fit = ((W - LEFT - 10.0) / widest).floor().max(1.0) as usize;
    let step = labels.len().div_ceil(fit).max(1);
    for (i, l) in labels.iter().enumerate().step_by(step) {
        let x = x_of(i).min(W - widest / 2.0);
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
            H - BOTTOM + 17.0,
            esc(l)
        );
    }
}

/// Vertical bars over an ordered axis (e.g. spam per day).
pub fn bars(f: &Frame<'_>, labels: &[String], values: &[f64]) -> String {
    let mut out = String::new();
    open(&mut out, f, H);
    let max = nice_max(values.iter().copied().fold(0.0, f64::max));
    y_axis(&mut out, max, false);
    let plot_w = W - LEFT - 10.0;
    let bw = plot_w / values.len().max(1) as f64;
    let plot_h = H - TOP - BOTTOM;
    for (i, v) in values.iter().enumerate() {
        let h = plot_h * v / max;
        let _ = write!(
            out,
            r#"<rect class="mark" x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="{}" data-value="{v}"><title>{}: {v}</title></rect>"#,
            LEFT + bw * i as f64,
            H - BOTTOM - h,
            (bw * 0.9).max(0.5),
            h,
            COLORS[0],
            esc(&labels[i])
        );
    }
    x_labels(&mut out, labels, |i| LEFT + bw * (i as f64 + 0.5));
    axis_titles(&mut out, f, TOP, H - BOTTOM);
    let days: Vec<Option<i64>> = labels.iter().map(|l| crate::markers::label_day(l)).collect();
    // A marker stands at the left edge of its day's bar.
    let missed = markers(&mut out, f, H - BOTTOM, |d| time_x(&days, &|i| LEFT + bw * (i as f64 + 0.5), d, bw * 0.5));
    close(&mut out, f, &missed);
    out
}

/// Horizontal bars with labels and percentages (shares).
pub fn hbars(f: &Frame<'_>, labels: &[String], values: &[f64], unit: &str) -> String {
    let row = 22.0;
    let h = TOP + row * values.len() as f64 + 50.0;
    let mut out = String::new();
    open(&mut out, f, h);
    let max = values.iter().copied().fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    // Room for the longest label (13 px: up to 8.5 px a character) right
    // of the y axis title.
    let left = LEFT.max(34.0 + 8.5 * labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64);
    let plot_w = W - left - 90.0;
    for (i, v) in values.iter().enumerate() {
        let y = TOP + row * i as f64;
        let _ = write!(
            out,
            r#"<text x="{}" y="{:.1}" font-size="13" text-anchor="end">{}</text><rect class="mark" x="{left:.1}" y="{y:.1}" width="{:.2}" height="{}" fill="{}" data-value="{v}"><title>{}: {v}{unit}</title></rect><text x="{:.1}" y="{:.1}" font-size="12">{v}{unit}</text>"#,
            left - 6.0,
            y + 15.0,
            esc(&labels[i]),
            plot_w * v / max,
            row - 4.0,
            COLORS[i % COLORS.len()],
            esc(&labels[i]),
            left + plot_w * v / max + 4.0,
            y + 15.0,
            unit = esc(unit)
        );
    }
    let bottom = TOP + row * values.len() as f64;
    let _ = write!(
        out,
        r##"<line x1="{left:.1}" y1="{bottom:.1}" x2="{:.1}" y2="{bottom:.1}" stroke="#999"/>"##,
        left + plot_w
    );
    axis_titles(&mut out, f, TOP, bottom - 20.0);
    // Not a time axis: no markers to place, none to mention.
    out.push_str("</svg>");
    let _ = write!(out, "<figcaption>{}</figcaption></figure>", esc(f.caption));
    out
}

/// Lines over an ordered axis; `None` is a gap. With `invert`, 1 is at the
/// top (ranks: "1st" is the worst place to be in a blocklist).
pub fn lines(f: &Frame<'_>, labels: &[String], series: &[(String, Vec<Option<f64>>)], invert: bool) -> String {
    let legend_h = 18.0 * series.len().div_ceil(4) as f64;
    let mut out = String::new();
    open(&mut out, f, H + legend_h);
    let max = nice_max(series.iter().flat_map(|s| s.1.iter().flatten()).copied().fold(0.0, f64::max));
    y_axis(&mut out, max, invert);
    let plot_w = W - LEFT - 10.0;
    let plot_h = H - TOP - BOTTOM;
    let n = labels.len().max(2);
    let x_of = |i: usize| LEFT + plot_w * i as f64 / (n - 1) as f64;
    let y_of = |v: f64| {
        if invert {
            TOP + plot_h * (v - 1.0).max(0.0) / (max - 1.0).max(1.0)
        } else {
            H - BOTTOM - plot_h * v / max
        }
    };
    for (k, (name, vals)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let mut pts = String::new();
        let mut marks = String::new();
        for (i, v) in vals.iter().enumerate() {
            match v {
                Some(v) => {
                    let _ = write!(pts, "{:.1},{:.1} ", x_of(i), y_of(*v));
                    let _ = write!(
                        marks,
                        r#"<circle class="mark" cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}" data-value="{v}"><title>{} {}: {v}</title></circle>"#,
                        x_of(i),
                        y_of(*v),
                        esc(name),
                        esc(&labels[i])
                    );
                }
                None if !pts.is_empty() => {
                    let _ = write!(
                        out,
                        r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                        pts.trim_end()
                    );
                    pts.clear();
                }
                None => {}
            }
        }
        if !pts.is_empty() {
            let _ =
                write!(out, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, pts.trim_end());
        }
        out.push_str(&marks);
        let (lx, ly) = (LEFT + 170.0 * (k % 4) as f64, H + 4.0 + 18.0 * (k / 4) as f64);
        let _ = write!(
            out,
            r#"<rect x="{lx:.0}" y="{:.0}" width="12" height="12" fill="{color}"/><text x="{:.0}" y="{:.0}" font-size="13">{}</text>"#,
            ly - 10.0,
            lx + 16.0,
            ly,
            esc(name)
        );
    }
    x_labels(&mut out, labels, x_of);
    axis_titles(&mut out, f, TOP, H - BOTTOM);
    let days: Vec<Option<i64>> = labels.iter().map(|l| crate::markers::label_day(l)).collect();
    let missed = markers(&mut out, f, H - BOTTOM, |d| time_x(&days, &x_of, d, 0.0));
    close(&mut out, f, &missed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame<'a>(id: &'a str, title: &'a str, markers: &'a [Marker]) -> Frame<'a> {
        Frame {
            id,
            title,
            x_title: "Day (UTC)",
            y_title: "Emails per day",
            caption: "Source: test, 2013-01-01 to 2013-01-03.",
            markers,
        }
    }

    #[test]
    fn marks_carry_values() {
        let s = bars(&frame("d", "Per day", &[]), &["a".into(), "b".into()], &[3.0, 5.0]);
        assert_eq!(s.matches(r#"class="mark""#).count(), 2);
        assert!(s.contains(r#"data-value="5""#) && s.starts_with("<figure") && s.ends_with("</figcaption></figure>"));
        let s = hbars(&frame("c", "<Shares>", &[]), &["TW".into()], &[42.5], "%");
        assert!(s.contains("&lt;Shares&gt;") && s.contains("42.5%"));
        let s = lines(
            &frame("r", "Rank", &[]),
            &["x".into(), "y".into(), "z".into()],
            &[("BR".into(), vec![Some(1.0), None, Some(25.0)])],
            true,
        );
        assert_eq!(s.matches("<polyline").count(), 2, "a gap splits the line");
        assert_eq!(s.matches(r#"class="mark""#).count(), 2);
    }

    /// Axis titles and the caption on every shape; markers on time axes,
    /// at their day, and named in the caption when outside the axis.
    #[test]
    fn titles_captions_and_markers() {
        let d = |s: &str| crate::date::parse_day(s).unwrap();
        let ms = [
            Marker { day: d("2013-01-02"), label: "port 25 blocked".into() },
            Marker { day: d("2014-01-01"), label: "later".into() },
        ];
        let days: Vec<String> = ["2013-01-01", "2013-01-02", "2013-01-03"].iter().map(|s| s.to_string()).collect();
        let f = frame("t", "T", &ms);
        for svg in [
            bars(&f, &days, &[1.0, 2.0, 3.0]),
            lines(&f, &days, &[("a".into(), vec![Some(1.0), Some(2.0), Some(3.0)])], false),
        ] {
            assert!(
                svg.contains(r#"class="axis-title x""#)
                    && svg.contains(">Day (UTC)</text>")
                    && svg.contains(">Emails per day</text>"),
                "{svg}"
            );
            assert_eq!(svg.matches(r#"<line class="marker" data-day="2013-01-02""#).count(), 1);
            assert!(svg.contains(">2013-01-02 port 25 blocked</text>"));
            assert!(svg.contains("<figcaption>Source: test, 2013-01-01 to 2013-01-03. Event 2014-01-01 (later) is outside this chart.</figcaption>"), "{svg}");
        }
        // Lines: the marker stands on the middle point's x.
        let svg = lines(&f, &days, &[("a".into(), vec![Some(1.0), Some(2.0), Some(3.0)])], false);
        let mid = LEFT + (W - LEFT - 10.0) / 2.0;
        assert!(svg.contains(&format!(r#"data-day="2013-01-02" x1="{mid:.1}""#)), "{svg}");
        // Months: a marker inside a month is placed between its neighbours.
        let months: Vec<String> = ["2013-01", "2013-02", "2013-03"].iter().map(|s| s.to_string()).collect();
        let m = [Marker { day: d("2013-02-15"), label: String::new() }];
        let svg = lines(&frame("m", "M", &m), &months, &[("a".into(), vec![Some(1.0), Some(2.0), Some(3.0)])], false);
        assert!(svg.contains(r#"data-day="2013-02-15""#) && !svg.contains("outside"));
        // Shares are no time axis: titles and caption, no marker.
        let svg = hbars(&f, &["TW".into()], &[50.0], "%");
        assert!(
            svg.contains("axis-title") && svg.contains("<figcaption>Source: test") && !svg.contains("class=\"marker\"")
        );
    }
}
