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

pub fn capture_section(r: &CaptureReport) -> Section {
    let mut charts = Vec::new();
    if let Some(t) = find(&r.tables, "per_day") {
        charts.push(crate::svg::bars("chart_per_day", "Spam captured per day", &texts(col(t, "day")), &nums(col(t, "emails"))));
    }
    if let Some(t) = find(&r.tables, "top_countries") {
        let n = t.rows.len().min(10);
        charts.push(crate::svg::hbars(
            "chart_countries",
            "Origin: share of spam by country",
            &texts(col(t, "country"))[..n],
            &nums(col(t, "share_pct"))[..n],
            "%",
        ));
    }
    if let Some(t) = find(&r.tables, "top_asns") {
        let n = t.rows.len().min(10);
        let labels: Vec<String> = texts(col(t, "asn")).into_iter().map(|a| format!("AS{a}")).collect();
        charts.push(crate::svg::hbars("chart_asns", "Origin: share of spam by AS", &labels[..n], &nums(col(t, "share_pct"))[..n], "%"));
    }
    if let Some(t) = find(&r.tables, "dest_countries") {
        let n = t.rows.len().min(10);
        charts.push(crate::svg::hbars(
            "chart_destinations",
            "Destination: share of recipients by country (ccTLD)",
            &texts(col(t, "country"))[..n],
            &nums(col(t, "share_pct"))[..n],
            "%",
        ));
    }
    let summary = serde_json::json!({
        "table1": r.table1,
        "top5_country_share_pct": r.top5_country_share,
        "abroad_recipient_share_pct": r.abroad_recipient_share,
        "enrichment": r.enrichment,
        "damage": r.damage,
    });
    Section { id: "capture".into(), title: "SpamPots capture".into(), notes: r.notes.clone(), charts, tables: r.tables.clone(), summary }
}

/// Writes the directory; returns the HTML path.
pub fn write_dir(out: &Path, title: &str, sections: &[Section]) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(out.join("csv"))?;
    let mut page = crate::html::Page::new(title);
    for s in sections {
        page.heading(&s.title);
        page.notes(&s.notes);
        for c in &s.charts {
            page.chart(c);
        }
        for t in &s.tables {
            page.table(t);
            let mut f = std::io::BufWriter::new(std::fs::File::create(out.join("csv").join(format!("{}-{}.csv", s.id, t.id)))?);
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
