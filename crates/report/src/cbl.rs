//! CBL statistics snapshots: the counts the CBL publishes per country
//! (`country.html`) and per AS (`asntraffic.html`), saved as HTML or
//! written as CSV, read as a blocklist source beside rbldnsd dumps. They
//! give counts, not addresses, so no enrichment is involved: the numbers
//! are the CBL's own.
//!
//! Accepted layouts (anything else is refused, saying what was expected):
//! - HTML: a table whose header row has a `Country` (or `ASN`) column and
//!   a `Listings` (or `Count`) column; other columns (Traffic, Size(K),
//!   Infect %, IPop...) are ignored. A country cell holds its ISO code
//!   (`BR`, `BR (Brazil)`, `Brazil (BR)`); an ASN cell `AS28573` or
//!   `28573`, with `AS??` and `C_...` rows (the CBL's "AS unknown")
//!   counted as unknown. An ASN table may have a `Country` column too:
//!   it says whose ASes are the followed country's.
//! - CSV: a header `country,listings` or `asn,listings[,country]`
//!   (`cc`, `count` and `listed` accepted as names), one row a line.
//!
//! Pure: text in, [`Snapshot`] out; bad rows are counted and named by line.

use crate::error::LineError;

/// What a snapshot lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Country,
    Asn,
}

/// One row: by country (ISO code) or by AS; `None` is "unknown".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Country(Option<String>),
    Asn(Option<u32>, Option<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub kind: Kind,
    pub rows: Vec<(Key, u64)>,
    /// Rows that could not be read: (line, why).
    pub bad: Vec<LineError>,
}

/// What the refusal of an unknown layout says.
pub const EXPECTED: &str =
    "not a CBL statistics snapshot: expected an HTML table with a header row holding a \"Country\" or \"ASN\" column \
and a \"Listings\" (or \"Count\") column (the CBL's country.html or asntraffic.html, saved), or CSV with the header \
\"country,listings\" or \"asn,listings\" (optionally \",country\")";

/// Cells longer than this are not a statistics table's.
const MAX_CELL: usize = 4096;

pub fn parse(text: &str) -> Result<Snapshot, String> {
    let lower = text.to_ascii_lowercase();
    let rows = if lower.contains("<table") || lower.contains("<tr") { html_rows(text, &lower) } else { csv_rows(text) };
    let mut it = rows.into_iter();
    // The header: the first row naming both columns.
    let (kind, key_col, count_col, country_col) = loop {
        let Some((_, cells)) = it.next() else { return Err(EXPECTED.into()) };
        let names: Vec<String> = cells.iter().map(|c| c.trim().to_ascii_lowercase()).collect();
        let find = |want: &[&str]| names.iter().position(|n| want.contains(&n.as_str()));
        let count = find(&["listings", "count", "listed"]);
        let asn = find(&["asn", "as", "as number"]);
        let country = find(&["country", "cc", "country code"]);
        match (asn, country, count) {
            (Some(a), c, Some(n)) => break (Kind::Asn, a, n, c),
            (None, Some(c), Some(n)) => break (Kind::Country, c, n, None),
            _ => continue,
        }
    };
    let mut snap = Snapshot { kind, rows: Vec::new(), bad: Vec::new() };
    for (line, cells) in it {
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let (Some(k), Some(n)) = (cells.get(key_col), cells.get(count_col)) else {
            snap.bad.push(LineError::new(line, format!("{} cells, the header has more", cells.len())));
            continue;
        };
        let Some(n) = count(n) else {
            // A repeated header or a totals row is not data either.
            if n.trim().eq_ignore_ascii_case("listings") || k.trim().eq_ignore_ascii_case("total") {
                continue;
            }
            snap.bad.push(LineError::new(line, format!("listings {:?} is not a count", short(n))));
            continue;
        };
        let key = match kind {
            Kind::Country => match country(k) {
                Ok(c) => Key::Country(c),
                Err(m) => {
                    snap.bad.push(LineError::new(line, m));
                    continue;
                }
            },
            Kind::Asn => {
                let c = match country_col.and_then(|i| cells.get(i)).map(|c| country(c)) {
                    Some(Ok(c)) => c,
                    Some(Err(_)) | None => None,
                };
                match asn(k) {
                    Ok(a) => Key::Asn(a, c),
                    Err(m) => {
                        snap.bad.push(LineError::new(line, m));
                        continue;
                    }
                }
            }
        };
        snap.rows.push((key, n));
    }
    if snap.rows.is_empty() && snap.bad.is_empty() {
        return Err(format!("{EXPECTED}; the header was found but no row follows it"));
    }
    Ok(snap)
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// `1,234,567` (or with spaces, dots as separators) to 1234567.
fn count(s: &str) -> Option<u64> {
    let d: String = s.trim().chars().filter(|c| !matches!(c, ',' | '.' | ' ' | '\u{a0}' | '_')).collect();
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    d.parse().ok()
}

/// A country cell: its ISO code; `??`, `--` or empty: unknown.
fn country(s: &str) -> Result<Option<String>, String> {
    let t = s.trim();
    if t.is_empty() || t.chars().all(|c| matches!(c, '?' | '-')) {
        return Ok(None);
    }
    for w in t.split(|c: char| !c.is_ascii_alphabetic()) {
        if w.len() == 2 && w.bytes().all(|b| b.is_ascii_uppercase()) {
            return Ok(Some(w.to_owned()));
        }
    }
    if t.len() == 2 && t.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Ok(Some(t.to_ascii_uppercase()));
    }
    Err(format!("country {:?} has no two-letter ISO code", short(t)))
}

/// An ASN cell: `AS28573`, `28573`; `AS??`, `C_...`: unknown.
fn asn(s: &str) -> Result<Option<u32>, String> {
    let t = s.trim();
    let word = t.split_whitespace().next().unwrap_or("");
    let upper = word.to_ascii_uppercase();
    if upper.starts_with("C_") || upper.trim_start_matches("AS").chars().all(|c| c == '?') {
        return Ok(None);
    }
    upper.trim_start_matches("AS").parse::<u32>().map(Some).map_err(|_| format!("ASN {:?} is not AS<number>", short(t)))
}

/// CSV lines split on commas (double quotes around a cell are removed),
/// each with its line number.
fn csv_rows(text: &str) -> Vec<(u64, Vec<String>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i as u64 + 1, csv_fields(l)))
        .collect()
}

/// One CSV line's fields: commas inside double quotes are data, `""`
/// inside quotes is a quote; fields are trimmed.
pub fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_owned()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_owned());
    out
}

/// The rows of every HTML table: `<tr>` blocks, their `<td>`/`<th>` cells
/// as text (tags dropped, entities decoded), with the row's line number.
/// `lower` is `text` lower-cased (ASCII only, so the offsets agree).
fn html_rows(text: &str, lower: &str) -> Vec<(u64, Vec<String>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(i) = lower.get(pos..).and_then(|s| s.find("<tr")).map(|i| i + pos) {
        let end = lower.get(i + 3..).and_then(|s| s.find("<tr")).map_or(lower.len(), |j| j + i + 3);
        let row_end = lower.get(i..end).and_then(|s| s.find("</tr")).map_or(end, |j| j + i);
        let line = text.as_bytes()[..i].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let mut cells = Vec::new();
        let mut c = i;
        loop {
            let next = ["<td", "<th"].iter().filter_map(|t| lower.get(c..row_end).and_then(|s| s.find(t))).min();
            let Some(j) = next.map(|j| j + c) else { break };
            let Some(open_end) = lower.get(j..row_end).and_then(|s| s.find('>')).map(|k| k + j + 1) else { break };
            let close = ["<td", "<th", "</td", "</th"]
                .iter()
                .filter_map(|t| lower.get(open_end..row_end).and_then(|s| s.find(t)))
                .min();
            let cell_end = close.map_or(row_end, |k| k + open_end);
            cells.push(cell_text(text.get(open_end..cell_end).unwrap_or("")));
            c = cell_end;
        }
        out.push((line, cells));
        pos = end;
    }
    out
}

fn cell_text(html: &str) -> String {
    let mut s = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => s.push(ch),
            _ => {}
        }
        if s.len() > MAX_CELL {
            break;
        }
    }
    s.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .trim()
        .to_owned()
}

/// Snapshots of one day (a country page and/or an AS page) as a dump the
/// blocklist section ranks.
pub fn dump(
    day: i64,
    files: &[(std::path::PathBuf, Snapshot)],
) -> Result<crate::blocklist::Dump, crate::error::InputError> {
    let mut d = crate::blocklist::Dump {
        day,
        path: files.first().map(|f| f.0.clone()).unwrap_or_default(),
        ..Default::default()
    };
    let mut seen: Vec<Kind> = Vec::new();
    let (mut by_country, mut by_asn) = (0u64, 0u64);
    for (path, s) in files {
        if seen.contains(&s.kind) {
            return Err(crate::error::InputError::file(
                path,
                format!(
                    "a second CBL {} snapshot for {}: give one per day",
                    if s.kind == Kind::Country { "country" } else { "ASN" },
                    crate::date::format_day(day)
                ),
            ));
        }
        seen.push(s.kind);
        d.bad_lines += s.bad.len() as u64;
        for (k, n) in &s.rows {
            match k {
                Key::Country(Some(c)) => {
                    *d.per_country.entry(c.clone()).or_default() += n;
                    by_country += n;
                }
                Key::Country(None) => {
                    d.unknown_country += n;
                    by_country += n;
                }
                Key::Asn(a, c) => {
                    by_asn += n;
                    if let Some(a) = a {
                        *d.per_asn.entry(*a).or_default() += n;
                        if let Some(c) = c {
                            d.asn_country.entry(*a).or_insert_with(|| c.clone());
                        }
                    }
                }
            }
        }
    }
    d.listed = if seen.contains(&Kind::Country) { by_country } else { by_asn };
    Ok(d)
}

/// Reads the snapshots given (files, or directories of them), dated by
/// their names, into one dump per day; bad rows go to `examples` as
/// `file:line: why`.
pub fn read(
    paths: &[std::path::PathBuf],
    examples: &mut Vec<String>,
) -> Result<Vec<crate::blocklist::Dump>, crate::error::InputError> {
    let mut by_day: std::collections::BTreeMap<i64, Vec<(std::path::PathBuf, Snapshot)>> = Default::default();
    for (day, f) in crate::blocklist::dated_files(paths)? {
        let bytes = crate::error::read(&f)?;
        let s = parse(&String::from_utf8_lossy(&bytes)).map_err(|m| crate::error::InputError::file(&f, m))?;
        for b in &s.bad {
            if examples.len() < 20 {
                examples.push(format!("{}:{}: {}; row skipped", f.display(), b.line, b.msg));
            }
        }
        by_day.entry(day).or_default().push((f, s));
    }
    by_day.into_iter().map(|(day, files)| dump(day, &files)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNTRY_HTML: &str = "<html><body><p>Listings per country</p>\n<table border=1>\n\
<tr><th>Country</th><th>Listings</th><th>Traffic</th><th>Size(K)</th><th>Infect %</th></tr>\n\
<tr><td><a href=\"x\">IN</a> (India)</td><td>1,234,567</td><td>9</td><td>747</td><td>6.118</td></tr>\n\
<tr><td>Brazil (BR)</td><td>98,765</td><td>1</td><td>2</td><td>0.5</td></tr>\n\
<tr><td>??</td><td>12</td><td></td><td></td><td></td></tr>\n\
<tr><td>Atlantis</td><td>5</td><td></td><td></td><td></td></tr>\n\
</table></body></html>";

    #[test]
    fn country_page() {
        let s = parse(COUNTRY_HTML).unwrap();
        assert_eq!(s.kind, Kind::Country);
        assert_eq!(
            s.rows,
            vec![
                (Key::Country(Some("IN".into())), 1_234_567),
                (Key::Country(Some("BR".into())), 98_765),
                (Key::Country(None), 12)
            ]
        );
        assert_eq!(s.bad, vec![LineError::new(7, "country \"Atlantis\" has no two-letter ISO code")]);
    }

    #[test]
    fn asn_page_and_csv() {
        let html = "<TABLE><TR><TH>ASN</TH><TH>Listings</TH><TH>Domain</TH><TH>Country</TH></TR>\n\
<TR><TD>AS28573</TD><TD>50,000</TD><TD>net.br</TD><TD>BR</TD></TR>\n<TR><TD>AS??</TD><TD>7</TD><TD></TD><TD></TD></TR>\n\
<TR><TD>C_foo</TD><TD>3</TD><TD></TD><TD></TD></TR>\n<TR><TD>9829</TD><TD>70000</TD><TD>bsnl.in</TD><TD>IN</TD></TR></TABLE>";
        let s = parse(html).unwrap();
        assert_eq!(s.kind, Kind::Asn);
        assert_eq!(s.rows[0], (Key::Asn(Some(28573), Some("BR".into())), 50_000));
        assert_eq!(s.rows[1], (Key::Asn(None, None), 7));
        assert_eq!(s.rows[2], (Key::Asn(None, None), 3));
        assert_eq!(s.rows[3], (Key::Asn(Some(9829), Some("IN".into())), 70_000));
        let csv = "# CBL 2013-03-01\ncountry,listings\nBR,10\n\"US\",\"1,200\"\nXX,notanumber\n";
        let s = parse(csv).unwrap();
        assert_eq!(s.rows, vec![(Key::Country(Some("BR".into())), 10), (Key::Country(Some("US".into())), 1200)]);
        assert_eq!(s.bad[0].line, 5);
    }

    #[test]
    fn unknown_layouts_are_refused_saying_what_was_expected() {
        for text in [
            "",
            "127.0.0.2\n192.0.2.0/24\n",
            "<table><tr><td>IP</td><td>when</td></tr></table>",
            "ip,listings\n1.2.3.4,1\n",
            "country,listings\n",
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains("expected an HTML table") && e.contains("country,listings"), "{text:?}: {e}");
        }
    }

    #[test]
    fn one_day_makes_one_dump() {
        let c = parse("country,listings\nBR,10\nUS,30\n??,2\n").unwrap();
        let a = parse("asn,listings,country\nAS1,6,BR\nAS2,30,US\n").unwrap();
        let d = dump(5, &[("c.csv".into(), c.clone()), ("a.csv".into(), a)]).unwrap();
        assert_eq!(
            (d.listed, d.unknown_country, d.per_country["BR"], d.per_asn[&1], d.asn_country[&1].as_str()),
            (42, 2, 10, 6, "BR")
        );
        assert!(dump(5, &[("c.csv".into(), c.clone()), ("d.csv".into(), c)])
            .unwrap_err()
            .to_string()
            .contains("second CBL country snapshot"));
    }
}
