//! Complaint trends: abuse reports (ARF or plain, in mbox files, Maildirs or
//! directories of message files) counted per month by category and per AS:
//! the white paper's Figure 1 and the slides' "reduction of spam complaints".
//!
//! Categories, first rule that matches (the report's wording and the
//! reported message's Received headers are the evidence):
//! 1. `authenticated`: a Received header records authenticated submission
//!    (`ESMTPA`, `ESMTPSA`, `ESMTPSA`, `Authenticated sender`, `authenticated`);
//! 2. `open_proxy`: the report says proxy (`open proxy`, `proxy`);
//! 3. `direct_delivery`: the source is in the given end-user prefixes (the
//!    access network's residential/dynamic space), or the evidence names
//!    end-user space (`dynamic`, `dial-up`, `residential`, `dsl`, `dhcp`,
//!    `cable`, `ppp`, `pool`, `botnet`, `spambot`, `direct delivery`);
//! 4. `other`.

use crate::arf::Complaint;
use crate::enrich::{country_str, Enricher};
use crate::table::Table;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub const CATEGORIES: [&str; 4] = ["open_proxy", "direct_delivery", "authenticated", "other"];

const AUTH: &[&str] = &["esmtpa", "esmtpsa", "authenticated sender", "authenticated", "asmtp"];
const PROXY: &[&str] = &["open proxy", "proxy"];
const END_USER: &[&str] =
    &["dynamic", "dial-up", "dialup", "residential", "dsl", "dhcp", "cable", "ppp", "pool", "botnet", "spambot", "direct delivery", ".dyn."];

pub fn classify(c: &Complaint, end_user: &[(IpAddr, u8)]) -> &'static str {
    let has = |words: &[&str]| words.iter().any(|w| c.evidence.contains(w));
    if has(AUTH) {
        "authenticated"
    } else if has(PROXY) {
        "open_proxy"
    } else if end_user.iter().any(|(net, len)| in_prefix(c.source, *net, *len)) || has(END_USER) {
        "direct_delivery"
    } else {
        "other"
    }
}

fn in_prefix(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    if ip.is_ipv4() != net.is_ipv4() {
        return false;
    }
    let l = crate::ip::len128(net, len);
    crate::ip::mask(crate::ip::key(ip), l) == crate::ip::mask(crate::ip::key(net), l)
}

/// A prefix list: `198.51.100.0/24` a line (a bare address is a host), `#` comments.
pub fn parse_prefixes(text: &str) -> Result<Vec<(IpAddr, u8)>, crate::error::LineError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let (a, len) = l.split_once('/').unwrap_or((l, ""));
        let ip: IpAddr = a.parse().map_err(|_| crate::error::LineError::new(i as u64 + 1, format!("{a:?} is not an IP address")))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = if len.is_empty() {
            max
        } else {
            len.parse().ok().filter(|n| *n <= max).ok_or_else(|| crate::error::LineError::new(i as u64 + 1, format!("{len:?} is not a prefix length")))?
        };
        out.push((ip, len));
    }
    Ok(out)
}

/// Messages in `path`: a Maildir (cur/ and new/), a directory of message
/// files, an mbox (first line `From `), or one message. Each with where it was.
pub fn messages(path: &Path) -> Result<Vec<(String, Vec<u8>)>, crate::error::InputError> {
    let mut out = Vec::new();
    if path.is_dir() {
        let dirs: Vec<PathBuf> =
            if path.join("cur").is_dir() || path.join("new").is_dir() { vec![path.join("cur"), path.join("new")] } else { vec![path.to_owned()] };
        for d in dirs.into_iter().filter(|d| d.is_dir()) {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
                .map_err(|e| crate::error::InputError::file(&d, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for f in files {
                out.extend(messages(&f)?);
            }
        }
        return Ok(out);
    }
    let bytes = crate::error::read(path)?;
    if bytes.starts_with(b"From ") {
        // mbox: a message starts at each "From " line that follows a blank line (or the start).
        let mut start = 0usize;
        let mut start_line = 1u64;
        let mut line_no = 1u64;
        let mut pos = 0usize;
        let mut prev_blank = true;
        while pos < bytes.len() {
            let end = bytes[pos..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| pos + i + 1);
            let line = &bytes[pos..end];
            if prev_blank && line.starts_with(b"From ") && pos > 0 {
                out.push((format!("{}:{start_line}", path.display()), strip_from_line(&bytes[start..pos])));
                start = pos;
                start_line = line_no;
            }
            prev_blank = line == b"\n" || line == b"\r\n";
            pos = end;
            line_no += 1;
        }
        out.push((format!("{}:{start_line}", path.display()), strip_from_line(&bytes[start..])));
    } else {
        out.push((path.display().to_string(), bytes));
    }
    Ok(out)
}

/// Drops the mbox separator line and undoes `>From ` quoting.
fn strip_from_line(m: &[u8]) -> Vec<u8> {
    let body = m.iter().position(|&b| b == b'\n').map_or(&m[m.len()..], |i| &m[i + 1..]);
    String::from_utf8_lossy(body).replace("\n>From ", "\nFrom ").into_bytes()
}

#[derive(Debug, Default)]
pub struct Trend {
    /// month -> category -> reports
    pub per_month: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// AS -> (country, category -> reports)
    pub per_asn: BTreeMap<u32, (Option<String>, BTreeMap<&'static str, u64>)>,
    pub reports: u64,
    pub arf: u64,
    pub unreadable: u64,
    pub examples: Vec<String>,
}

impl Trend {
    pub fn add(&mut self, place: &str, raw: &[u8], end_user: &[(IpAddr, u8)], enricher: &Enricher) {
        let c = match crate::arf::parse(raw) {
            Ok(c) => c,
            Err(e) => {
                self.unreadable += 1;
                if self.examples.len() < 20 {
                    self.examples.push(format!("{place}: {e}; report not counted"));
                }
                return;
            }
        };
        let cat = classify(&c, end_user);
        self.reports += 1;
        self.arf += u64::from(c.arf);
        *self.per_month.entry(crate::date::format_month(c.day)).or_default().entry(cat).or_default() += 1;
        let info = enricher.lookup(c.source, c.day);
        for a in info.asns {
            let e = self.per_asn.entry(a).or_insert_with(|| (info.country.map(country_str), BTreeMap::new()));
            *e.1.entry(cat).or_default() += 1;
        }
    }

    pub fn section(&self, ctx: &crate::output::Context) -> crate::output::Section {
        let mut cols = vec!["month"];
        cols.extend(CATEGORIES);
        cols.push("total");
        let mut t = Table::new("per_month", "Complaints per month by category", &cols);
        let months: Vec<String> = self.per_month.keys().cloned().collect();
        for (m, cats) in &self.per_month {
            let mut row = vec![json!(m)];
            row.extend(CATEGORIES.iter().map(|c| json!(cats.get(c).copied().unwrap_or(0))));
            row.push(json!(cats.values().sum::<u64>()));
            t.push(row);
        }
        let mut cols = vec!["asn", "country"];
        cols.extend(CATEGORIES);
        cols.push("total");
        let mut ta = Table::new("per_asn", "Complaints per AS by category", &cols);
        let mut asns: Vec<_> = self.per_asn.iter().collect();
        asns.sort_by(|a, b| b.1 .1.values().sum::<u64>().cmp(&a.1 .1.values().sum::<u64>()).then(a.0.cmp(b.0)));
        for (a, (cc, cats)) in asns {
            let mut row = vec![json!(a), json!(cc)];
            row.extend(CATEGORIES.iter().map(|c| json!(cats.get(c).copied().unwrap_or(0))));
            row.push(json!(cats.values().sum::<u64>()));
            ta.push(row);
        }
        let series: Vec<(String, Vec<Option<f64>>)> =
            CATEGORIES.iter().map(|c| (c.replace('_', " "), self.per_month.values().map(|m| Some(m.get(c).copied().unwrap_or(0) as f64)).collect())).collect();
        let caption = ctx.caption();
        let chart = crate::svg::lines(
            &crate::svg::Frame {
                id: "chart_complaints",
                title: "Complaints per month by category",
                x_title: "Month of arrival (UTC)",
                y_title: "Complaints per month",
                caption: &caption,
                markers: &ctx.markers,
            },
            &months,
            &series,
            false,
        );
        let mut notes = self.examples.clone();
        if self.unreadable > 0 {
            notes.push(format!("{} report(s) could not be read and were not counted.", self.unreadable));
        }
        let summary = json!({"reports": self.reports, "arf": self.arf, "unreadable": self.unreadable});
        let mut tables = vec![t, ta];
        if !ctx.markers.is_empty() {
            tables.push(crate::markers::table("before_after", &ctx.markers, &self.series()));
        }
        crate::output::Section { id: "complaints".into(), title: "Spam complaints".into(), notes, charts: vec![chart], tables, summary }
    }

    /// The months from the first to the last report, each dated by its
    /// first day (a month is on the side of a marker where its first day
    /// is), per category and in all; months without reports count 0.
    pub fn series(&self) -> Vec<crate::markers::Series> {
        let (Some(first), Some(last)) = (self.per_month.keys().next(), self.per_month.keys().next_back()) else {
            return Vec::new();
        };
        let mut months = Vec::new();
        let mut d = crate::markers::label_day(first).unwrap_or(0);
        let end = crate::markers::label_day(last).unwrap_or(0);
        while d <= end {
            months.push((d, crate::date::format_month(d)));
            d += 32;
            d = crate::markers::label_day(&crate::date::format_month(d)).unwrap_or(d);
        }
        let mut out = Vec::new();
        for cat in CATEGORIES.iter().map(Some).chain([None]) {
            let points = months
                .iter()
                .map(|(day, m)| {
                    let cats = self.per_month.get(m);
                    let n = match cat {
                        Some(c) => cats.and_then(|x| x.get(c)).copied().unwrap_or(0),
                        None => cats.map_or(0, |x| x.values().sum()),
                    };
                    (*day, n as f64)
                })
                .collect();
            out.push(crate::markers::Series {
                section: "complaints".into(),
                metric: cat.map_or("all complaints".into(), |c| c.replace('_', " ")),
                per: "month",
                points,
            });
        }
        out
    }
}
