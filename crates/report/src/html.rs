//! The self-contained HTML report: one file, inline CSS and SVG, no script
//! and no network. Sections are added by the parts of the report (capture,
//! blocklist, complaints); every table of every section is printed, so the
//! HTML never shows less than the JSON and CSV files.

use crate::svg::esc;
use crate::table::{cell_text, Table};
use std::fmt::Write;

#[derive(Default)]
pub struct Page {
    title: String,
    body: String,
}

// Narrow screens: charts scale down with the page (their viewBox), wide
// tables scroll inside their own box instead of widening the page.
const STYLE: &str =
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 12px;color:#222;overflow-wrap:break-word}\
table{border-collapse:collapse;margin:0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}.notes li{color:#555}\
.scroll{overflow-x:auto;max-width:100%;margin:1em 0}\
table.t1{font-size:15px}table.t1 td{font-variant-numeric:tabular-nums}table.t1 td+td{white-space:nowrap}\
figure.chart{margin:1.5em 0;max-width:100%}svg.chart{display:block;max-width:100%;height:auto;background:#fff}\
figcaption{font-size:12px;color:#555;margin-top:4px}\
@media (max-width:600px){body{margin:1em auto}h1{font-size:1.4em}}";

impl Page {
    pub fn new(title: &str) -> Page {
        Page { title: title.into(), body: String::new() }
    }

    pub fn heading(&mut self, text: &str) {
        let _ = write!(self.body, "<h2>{}</h2>", esc(text));
    }

    pub fn notes(&mut self, notes: &[String]) {
        if notes.is_empty() {
            return;
        }
        self.body.push_str("<ul class=\"notes\">");
        for n in notes {
            let _ = write!(self.body, "<li>{}</li>", esc(n));
        }
        self.body.push_str("</ul>");
    }

    pub fn paragraph(&mut self, text: &str) {
        let _ = write!(self.body, "<p>{}</p>", esc(text));
    }

    /// Raw HTML: a chart from [`crate::svg`], Table 1.
    pub fn chart(&mut self, svg: &str) {
        self.body.push_str(svg);
    }

    pub fn table(&mut self, t: &Table) {
        let _ = write!(self.body, "<h3 id=\"{}\">{}</h3><div class=\"scroll\"><table><tr>", esc(&t.id), esc(&t.title));
        for c in &t.columns {
            let _ = write!(self.body, "<th>{}</th>", esc(c));
        }
        self.body.push_str("</tr>");
        for r in &t.rows {
            self.body.push_str("<tr>");
            for v in r {
                let _ = write!(self.body, "<td>{}</td>", esc(&cell_text(v)));
            }
            self.body.push_str("</tr>");
        }
        self.body.push_str("</table></div>");
    }

    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title><style>{STYLE}</style></head><body><h1>{t}</h1>{}</body></html>\n",
            self.body,
            t = esc(&self.title)
        )
    }
}
