//! Every table of a report in one shape, so JSON, CSV and HTML are written
//! by the same code and none of them can miss a table.

use serde::Serialize;
use serde_json::Value;
use std::io::Write;

#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// File-name-safe id: `top_countries` -> `top_countries.csv`.
    pub id: String,
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn new(id: &str, title: &str, columns: &[&str]) -> Table {
        Table {
            id: id.into(),
            title: title.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Value>) {
        debug_assert_eq!(row.len(), self.columns.len(), "{}: row width", self.id);
        self.rows.push(row);
    }

    /// RFC 4180 CSV: header line, CRLF line ends, fields quoted when needed.
    pub fn write_csv(&self, w: &mut impl Write) -> std::io::Result<()> {
        let line = |cells: Vec<String>| cells.into_iter().map(|c| csv_field(&c)).collect::<Vec<_>>().join(",") + "\r\n";
        w.write_all(line(self.columns.clone()).as_bytes())?;
        for r in &self.rows {
            w.write_all(line(r.iter().map(cell_text).collect()).as_bytes())?;
        }
        Ok(())
    }
}

/// A cell as text: strings bare, numbers as JSON writes them, null empty.
pub fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// A percentage rounded to two decimals (shares in tables).
pub fn pct(part: u64, whole: u64) -> Value {
    if whole == 0 {
        return Value::Null;
    }
    let p = (part as f64) * 100.0 / (whole as f64);
    serde_json::json!((p * 100.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_quotes_what_needs_it() {
        let mut t = Table::new("t", "T", &["a", "b"]);
        t.push(vec![json!("x,y"), json!(3)]);
        t.push(vec![json!("say \"hi\""), Value::Null]);
        let mut out = Vec::new();
        t.write_csv(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a,b\r\n\"x,y\",3\r\n\"say \"\"hi\"\"\",\r\n");
        assert_eq!(pct(1, 3), json!(33.33));
        assert_eq!(pct(1, 0), Value::Null);
    }
}
