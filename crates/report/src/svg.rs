//! Charts drawn as inline SVG by hand: the report must open with no
//! network and no script, and the three chart shapes it needs (bars over
//! time, horizontal shares, lines over time with an optional inverted axis
//! for ranks) are a few dozen lines each. Every mark carries its value in a
//! `<title>` (a tooltip in browsers) and `data-value`, so tests and people
//! can read the numbers back.

use std::fmt::Write;

const W: f64 = 760.0;
const H: f64 = 260.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 40.0;
const TOP: f64 = 30.0;
const COLORS: &[&str] = &["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

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

fn open(out: &mut String, id: &str, title: &str, h: f64) {
    let _ = write!(
        out,
        r#"<svg class="chart" id="{}" viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" aria-label="{}"><text x="{}" y="18" font-size="14" font-weight="bold">{}</text>"#,
        esc(id),
        esc(title),
        LEFT,
        esc(title)
    );
}

fn y_axis(out: &mut String, max: f64, invert: bool) {
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = if invert { TOP + plot_h * f64::from(i) / 4.0 } else { H - BOTTOM - plot_h * f64::from(i) / 4.0 };
        let label = if invert { (v.max(1.0)).round() } else { v };
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            W - 10.0,
            LEFT - 6.0,
            y + 4.0,
            fmt_num(label)
        );
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn x_labels(out: &mut String, labels: &[String], x_of: impl Fn(usize) -> f64) {
    let step = (labels.len() / 8).max(1);
    for (i, l) in labels.iter().enumerate().step_by(step) {
        let _ = write!(out, r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"#, x_of(i), H - BOTTOM + 16.0, esc(l));
    }
}

/// Vertical bars over an ordered axis (e.g. spam per day).
pub fn bars(id: &str, title: &str, labels: &[String], values: &[f64]) -> String {
    let mut out = String::new();
    open(&mut out, id, title, H);
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
    out.push_str("</svg>");
    out
}

/// Horizontal bars with labels and percentages (shares).
pub fn hbars(id: &str, title: &str, labels: &[String], values: &[f64], unit: &str) -> String {
    let row = 22.0;
    let h = TOP + row * values.len() as f64 + 10.0;
    let mut out = String::new();
    open(&mut out, id, title, h);
    let max = values.iter().copied().fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let plot_w = W - LEFT - 90.0;
    for (i, v) in values.iter().enumerate() {
        let y = TOP + row * i as f64;
        let _ = write!(
            out,
            r#"<text x="{}" y="{:.1}" font-size="12" text-anchor="end">{}</text><rect class="mark" x="{LEFT}" y="{y:.1}" width="{:.2}" height="{}" fill="{}" data-value="{v}"><title>{}: {v}{unit}</title></rect><text x="{:.1}" y="{:.1}" font-size="11">{v}{unit}</text>"#,
            LEFT - 6.0,
            y + 15.0,
            esc(&labels[i]),
            plot_w * v / max,
            row - 4.0,
            COLORS[i % COLORS.len()],
            esc(&labels[i]),
            LEFT + plot_w * v / max + 4.0,
            y + 15.0,
            unit = esc(unit)
        );
    }
    out.push_str("</svg>");
    out
}

/// Lines over an ordered axis; `None` is a gap. With `invert`, 1 is at the
/// top (ranks: "1st" is the worst place to be in a blocklist).
pub fn lines(id: &str, title: &str, labels: &[String], series: &[(String, Vec<Option<f64>>)], invert: bool) -> String {
    let legend_h = 18.0 * series.len().div_ceil(4) as f64;
    let mut out = String::new();
    open(&mut out, id, title, H + legend_h);
    let max = nice_max(series.iter().flat_map(|s| s.1.iter().flatten()).copied().fold(0.0, f64::max));
    y_axis(&mut out, max, invert);
    let plot_w = W - LEFT - 10.0;
    let plot_h = H - TOP - BOTTOM;
    let n = labels.len().max(2);
    let x_of = |i: usize| LEFT + plot_w * i as f64 / (n - 1) as f64;
    let y_of = |v: f64| if invert { TOP + plot_h * (v - 1.0).max(0.0) / (max - 1.0).max(1.0) } else { H - BOTTOM - plot_h * v / max };
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
                    let _ = write!(out, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, pts.trim_end());
                    pts.clear();
                }
                None => {}
            }
        }
        if !pts.is_empty() {
            let _ = write!(out, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, pts.trim_end());
        }
        out.push_str(&marks);
        let (lx, ly) = (LEFT + 170.0 * (k % 4) as f64, H + 4.0 + 18.0 * (k / 4) as f64);
        let _ = write!(
            out,
            r#"<rect x="{lx:.0}" y="{:.0}" width="12" height="12" fill="{color}"/><text x="{:.0}" y="{:.0}" font-size="12">{}</text>"#,
            ly - 10.0,
            lx + 16.0,
            ly,
            esc(name)
        );
    }
    x_labels(&mut out, labels, x_of);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_carry_values() {
        let s = bars("d", "Per day", &["a".into(), "b".into()], &[3.0, 5.0]);
        assert_eq!(s.matches(r#"class="mark""#).count(), 2);
        assert!(s.contains(r#"data-value="5""#) && s.starts_with("<svg") && s.ends_with("</svg>"));
        let s = hbars("c", "<Shares>", &["TW".into()], &[42.5], "%");
        assert!(s.contains("&lt;Shares&gt;") && s.contains("42.5%"));
        let s = lines("r", "Rank", &["x".into(), "y".into(), "z".into()], &[("BR".into(), vec![Some(1.0), None, Some(25.0)])], true);
        assert_eq!(s.matches("<polyline").count(), 2, "a gap splits the line");
        assert_eq!(s.matches(r#"class="mark""#).count(), 2);
    }
}
