//! Writing a report directory: `report.html` (self-contained), `report.json`
//! (every figure and table), and `csv/<table>.csv` (one file per table).
//! Each part of the report (capture, blocklist, complaints) becomes a
//! [`Section`]: notes, charts and tables.

use crate::table::Table;
use crate::table1::CaptureReport;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub id: String,
    pub title: String,
    pub notes: Vec<String>,
    /// Inline SVG; not in the JSON (the tables hold the same numbers).
    #[serde(skip)]
    pub charts: Vec<String>,
    pub tables: Vec<Table>,
    /// Section-specific figures (Table 1, shares, inputs).
    pub summary: serde_json::Value,
}

fn find<'a>(tables: &'a [Table], id: &str) -> Option<&'a Table> {
    tables.iter().find(|t| t.id == id)
}

fn col(t: &Table, name: &str) -> Vec<serde_json::Value> {
    let i = t.columns.iter().position(|c| c == name).expect("known column");
    t.rows.iter().map(|r| r[i].clone()).collect()
}

fn texts(v: Vec<serde_json::Value>) -> Vec<String> {
    v.iter().map(crate::table::cell_text).collect()
}

fn nums(v: Vec<serde_json::Value>) -> Vec<f64> {
    v.iter().map(|x| x.as_f64().unwrap_or(0.0)).collect()
}

/// Where a section's numbers come from, for chart captions.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// "SpamPots capture /var/lib/port25-collector (10 sensors)".
    pub source: String,
    /// "2006-06-10 to 2007-09-18 (UTC)".
    pub window: String,
    pub markers: Vec<crate::markers::Marker>,
}

impl Context {
    pub fn caption(&self) -> String {
        format!("Source: {}; window: {}.", self.source, self.window)
    }
}

/// A frame for a chart of this context.
fn frame<'a>(
    ctx: &'a Context,
    caption: &'a str,
    id: &'a str,
    title: &'a str,
    x_title: &'a str,
    y_title: &'a str,
) -> crate::svg::Frame<'a> {
    crate::svg::Frame { id, title, x_title, y_title, caption, markers: &ctx.markers }
}

/// The capture's window as the report counted it: `--from`/`--to` where
/// given, else the first and last spam.
pub fn capture_window(r: &CaptureReport, from: Option<i64>, to: Option<i64>) -> String {
    let a = from.map(crate::date::format_day).or(r.table1.start.clone()).unwrap_or_else(|| "-".into());
    let b = to.map(crate::date::format_day).or(r.table1.end.clone()).unwrap_or_else(|| "-".into());
    format!("{a} to {b} (UTC)")
}

pub fn capture_section(r: &CaptureReport, ctx: &Context, id: &str, title: &str) -> Section {
    let mut charts = Vec::new();
    let caption = ctx.caption();
    let chart_id = |name: &str| if id == "capture" { format!("chart_{name}") } else { format!("chart_{name}_{id}") };
    if let Some(t) = find(&r.tables, "per_day") {
        let cid = chart_id("per_day");
        charts.push(crate::svg::bars(
            &frame(ctx, &caption, &cid, "Spam captured per day", "Day (UTC)", "Spam emails per day"),
            &texts(col(t, "day")),
            &nums(col(t, "emails")),
        ));
    }
    if let Some(t) = find(&r.tables, "bandwidth") {
        // All sensors together, per day.
        let mut per_day: std::collections::BTreeMap<String, (f64, f64)> = std::collections::BTreeMap::new();
        for ((d, i), o) in texts(col(t, "day")).into_iter().zip(nums(col(t, "bytes_in"))).zip(nums(col(t, "bytes_out")))
        {
            let e = per_day.entry(d).or_default();
            e.0 += i;
            e.1 += o;
        }
        if r.table1.sessions > r.table1.sessions_without_counters {
            let days: Vec<String> = per_day.keys().cloned().collect();
            let series = vec![
                ("bytes in (from clients)".to_string(), per_day.values().map(|v| Some(v.0)).collect()),
                ("bytes out (to clients)".to_string(), per_day.values().map(|v| Some(v.1)).collect()),
            ];
            let cid = chart_id("bandwidth");
            charts.push(crate::svg::lines(
                &frame(ctx, &caption, &cid, "Bandwidth on the wire per day, all sensors", "Day (UTC)", "Bytes per day"),
                &days,
                &series,
                false,
            ));
        }
    }
    if let Some(t) = find(&r.tables, "connections_per_day") {
        let cid = chart_id("connections");
        charts.push(crate::svg::bars(
            &frame(ctx, &caption, &cid, "Proxy and relay connections per day", "Day (UTC)", "Connections per day"),
            &texts(col(t, "day")),
            &nums(col(t, "connections")),
        ));
    }
    for (table, name, title, label_col, y_title, x_title, prefix) in [
        (
            "top_countries",
            "countries",
            "Origin: share of spam by country",
            "country",
            "Country of the source address",
            "Share of spam emails (%)",
            "",
        ),
        (
            "top_asns",
            "asns",
            "Origin: share of spam by AS",
            "asn",
            "Autonomous system of the source",
            "Share of spam emails (%)",
            "AS",
        ),
        (
            "dest_countries",
            "destinations",
            "Destination: share of recipients by country (ccTLD)",
            "country",
            "Country of the recipient domain",
            "Share of recipients (%)",
            "",
        ),
        (
            "groups",
            "groups",
            "Share of spam by sensor group",
            "group",
            "Group of sensors",
            "Share of spam emails (%)",
            "",
        ),
    ] {
        if let Some(t) = find(&r.tables, table) {
            let n = t.rows.len().min(10);
            let labels: Vec<String> = texts(col(t, label_col)).into_iter().map(|a| format!("{prefix}{a}")).collect();
            let cid = chart_id(name);
            charts.push(crate::svg::hbars(
                &frame(ctx, &caption, &cid, title, x_title, y_title),
                &labels[..n],
                &nums(col(t, "share_pct"))[..n],
                "%",
            ));
        }
    }
    let summary = serde_json::json!({
        "table1": r.table1,
        "top5_country_share_pct": r.top5_country_share,
        "abroad_recipient_share_pct": r.abroad_recipient_share,
        "connections_abroad_pct": r.table1.connections_abroad_pct,
        "enrichment": r.enrichment,
        "damage": r.damage,
    });
    Section { id: id.into(), title: title.into(), notes: r.notes.clone(), charts, tables: r.tables.clone(), summary }
}

/// `524585779` as `524,585,779`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The white paper's Table 1 ("Estatísticas gerais referentes aos emails
/// capturados"), in its order and layout: one row per figure, numbers with
/// thousands separators; one value column per group with `--group-by`.
pub fn table1_html(columns: &[(String, &crate::table1::Table1)]) -> String {
    use crate::svg::esc;
    type Cell = fn(&crate::table1::Table1) -> String;
    let rows: [(&str, Cell); 19] = [
        ("Start of data collection", |t| t.start.clone().unwrap_or_else(|| "-".into())),
        ("End of data collection", |t| t.end.clone().unwrap_or_else(|| "-".into())),
        ("Days of data collected", |t| thousands(t.days)),
        ("Days with spam", |t| thousands(t.days_with_data)),
        ("Emails collected", |t| thousands(t.emails)),
        ("Recipients", |t| thousands(t.recipients)),
        ("Recipients per spam", |t| format!("{:.2}", t.recipients_per_spam)),
        ("Emails per day", |t| thousands(t.emails_per_day)),
        ("Unique IPs that sent spam", |t| thousands(t.unique_ips)),
        ("Unique ASes that sent spam", |t| t.unique_asns.map_or("n/a".to_string(), thousands)),
        ("Countries of origin", |t| t.countries.map_or("n/a".to_string(), thousands)),
        ("Proxy and relay connections", |t| thousands(t.connections)),
        ("Connections from abroad", |t| t.connections_abroad_pct.map_or("n/a".into(), |p| format!("{p:.2} %"))),
        ("Bytes received on the wire", |t| {
            if t.sessions == t.sessions_without_counters && t.sessions > 0 {
                "unknown".into()
            } else {
                thousands(t.bytes_in)
            }
        }),
        ("Bytes sent on the wire", |t| {
            if t.sessions == t.sessions_without_counters && t.sessions > 0 {
                "unknown".into()
            } else {
                thousands(t.bytes_out)
            }
        }),
        ("Sessions without wire counters", |t| thousands(t.sessions_without_counters)),
        ("Probes (proxy tests, not counted above)", |t| thousands(t.probes)),
        ("Probe recipients", |t| thousands(t.probe_recipients)),
        ("IPs that sent probes", |t| thousands(t.probe_sources)),
    ];
    let mut h = String::from(
        "<section id=\"table1\"><h2>Table 1: general statistics of the captured emails</h2><div class=\"scroll\"><table class=\"t1\"><tr><th>Figure</th>",
    );
    for (name, _) in columns {
        h.push_str(&format!("<th>{}</th>", esc(name)));
    }
    h.push_str("</tr>");
    for (label, cell) in rows {
        h.push_str(&format!("<tr><td>{}</td>", esc(label)));
        for (_, t) in columns {
            h.push_str(&format!("<td>{}</td>", esc(&cell(t))));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table></div></section>");
    h
}

/// Writes the directory; returns the HTML path.
/// `lead` (Table 1, from [`table1_html`]) opens the page; then each
/// section: its charts, its notes, its tables (but the plain `table1`
/// table, which the lead shows formatted, every row of it; it stays in
/// the JSON and CSV).
pub fn write_dir(
    out: &Path,
    title: &str,
    lead: Option<&str>,
    sections: &[Section],
) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(out.join("csv"))?;
    let mut page = crate::html::Page::new(title);
    if let Some(lead) = lead {
        page.chart(lead);
    }
    for s in sections {
        page.heading(&s.title);
        for c in &s.charts {
            page.chart(c);
        }
        page.notes(&s.notes);
        for t in &s.tables {
            if lead.is_none() || t.id != "table1" {
                page.table(t);
            }
            let mut f =
                std::io::BufWriter::new(std::fs::File::create(out.join("csv").join(format!("{}-{}.csv", s.id, t.id)))?);
            t.write_csv(&mut f)?;
            std::io::Write::flush(&mut f)?;
        }
    }
    let json = serde_json::json!({ "title": title, "sections": sections });
    std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(&json).map_err(std::io::Error::other)?)?;
    let html = out.join("report.html");
    std::fs::write(&html, page.finish())?;
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The white paper's figures, as its Table 1 prints them (with a comma
    /// for the thousands, as the report's English does).
    #[test]
    fn table1_as_the_white_paper_lays_it_out() {
        assert_eq!(
            (thousands(524_585_779), thousands(4_805_521_964), thousands(466), thousands(0)),
            ("524,585,779".into(), "4,805,521,964".into(), "466".into(), "0".into())
        );
        let t = crate::table1::Table1 {
            start: Some("2006-06-10".into()),
            end: Some("2007-09-18".into()),
            days: 466,
            days_with_data: 466,
            emails: 524_585_779,
            recipients: 4_805_521_964,
            recipients_per_spam: 9.16,
            emails_per_day: 1_125_720,
            unique_ips: 216_888,
            unique_asns: Some(3_006),
            countries: Some(165),
            probes: 0,
            probe_recipients: 0,
            probe_sources: 0,
            connections: 1_000_000,
            connections_abroad_pct: Some(99.84),
            connections_abroad: Some(998_400),
            connections_unknown_country: Some(0),
            bytes_in: 0,
            bytes_out: 0,
            sessions: 10,
            sessions_without_counters: 10,
        };
        let h = table1_html(&[("All sensors".into(), &t)]);
        for row in [
            "<td>Start of data collection</td><td>2006-06-10</td>",
            "<td>Days of data collected</td><td>466</td>",
            "<td>Emails collected</td><td>524,585,779</td>",
            "<td>Recipients</td><td>4,805,521,964</td>",
            "<td>Recipients per spam</td><td>9.16</td>",
            "<td>Emails per day</td><td>1,125,720</td>",
            "<td>Unique IPs that sent spam</td><td>216,888</td>",
            "<td>Unique ASes that sent spam</td><td>3,006</td>",
            "<td>Countries of origin</td><td>165</td>",
            "<td>Connections from abroad</td><td>99.84 %</td>",
            "<td>Bytes received on the wire</td><td>unknown</td>",
        ] {
            assert!(h.contains(row), "{row} in {h}");
        }
        assert!(h.find("Emails collected").unwrap() < h.find("Unique IPs").unwrap());
    }
}
