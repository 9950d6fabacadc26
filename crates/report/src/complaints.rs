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
const END_USER: &[&str] = &[
    "dynamic",
    "dial-up",
    "dialup",
    "residential",
    "dsl",
    "dhcp",
    "cable",
    "ppp",
    "pool",
    "botnet",
    "spambot",
    "direct delivery",
    ".dyn.",
];

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
        let ip: IpAddr =
            a.parse().map_err(|_| crate::error::LineError::new(i as u64 + 1, format!("{a:?} is not an IP address")))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = if len.is_empty() {
            max
        } else {
            len.parse()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| crate::error::LineError::new(i as u64 + 1, format!("{len:?} is not a prefix length")))?
        };
        out.push((ip, len));
    }
    Ok(out)
}

/// A message is read whole up to this size; past it the rest is skipped
/// (a report's headers and its feedback part come first), so one huge
/// message, or a file without line ends, cannot take the memory.
pub const MAX_MESSAGE: usize = 16 << 20;

/// Messages in `path`: a Maildir (cur/ and new/), a directory of message
/// files (in directory order), an mbox (first line `From `), or one
/// message. Each with where it was. All in memory: for tests and small
/// inputs; the report streams them with [`for_each_message`].
pub fn messages(path: &Path) -> Result<Vec<(String, Vec<u8>)>, crate::error::InputError> {
    let mut out = Vec::new();
    for_each_message(path, &mut |place, raw| out.push((place.to_owned(), raw.to_vec())))?;
    Ok(out)
}

/// Hands each message in `path` (as [`messages`] finds them) to `f`, one
/// at a time, in order: memory is one message (at most [`MAX_MESSAGE`]),
/// whatever the size of the mbox or the number of files.
pub fn for_each_message(path: &Path, f: &mut dyn FnMut(&str, &[u8])) -> Result<(), crate::error::InputError> {
    use crate::error::InputError;
    if path.is_dir() {
        let dirs: Vec<PathBuf> = if path.join("cur").is_dir() || path.join("new").is_dir() {
            vec![path.join("cur"), path.join("new")]
        } else {
            vec![path.to_owned()]
        };
        for d in dirs.into_iter().filter(|d| d.is_dir()) {
            // In directory order, not sorted: a Maildir of millions of
            // reports is never listed in memory (the counts do not depend
            // on the order; only which unreadable reports are named first).
            for entry in std::fs::read_dir(&d).map_err(|e| InputError::file(&d, e))? {
                let file = entry.map_err(|e| InputError::file(&d, e))?.path();
                if file.is_file() {
                    for_each_message(&file, f)?;
                }
            }
        }
        return Ok(());
    }
    let file = std::fs::File::open(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))?;
    let mut r = std::io::BufReader::with_capacity(1 << 16, file);
    let err = |e: std::io::Error| InputError::file(path, format!("cannot read: {e}"));
    let is_mbox = std::io::BufRead::fill_buf(&mut r).map_err(err)?.starts_with(b"From ");
    if !is_mbox {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(&mut r, MAX_MESSAGE as u64), &mut raw).map_err(err)?;
        f(&path.display().to_string(), &raw);
        return Ok(());
    }
    mbox(&mut r, &path.display().to_string(), f).map_err(err)
}

/// The messages of an mbox read from `r`, one at a time, named
/// `name:line`: a message starts at each `From ` line that follows a blank
/// line (or the start); that line is not part of it, and `>From ` lines
/// inside are unquoted. Each is kept up to [`MAX_MESSAGE`] bytes.
pub fn mbox(r: &mut impl std::io::BufRead, name: &str, f: &mut dyn FnMut(&str, &[u8])) -> std::io::Result<()> {
    let mut msg: Vec<u8> = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    let (mut line_no, mut start_line) = (0u64, 1u64);
    let mut prev_blank = true;
    loop {
        line.clear();
        // Enough of a line past the cap to see "From " and blank lines.
        let room = (MAX_MESSAGE - msg.len().min(MAX_MESSAGE)).max(8);
        if read_line_capped(r, &mut line, room)? == 0 {
            break;
        }
        line_no += 1;
        if prev_blank && line.starts_with(b"From ") {
            if line_no > 1 {
                f(&format!("{name}:{start_line}"), &msg);
            }
            msg.clear();
            start_line = line_no;
            prev_blank = false;
            continue;
        }
        prev_blank = line == b"\n" || line == b"\r\n";
        let text = if line.starts_with(b">From ") { &line[1..] } else { &line[..] };
        let keep = text.len().min(MAX_MESSAGE - msg.len().min(MAX_MESSAGE));
        msg.extend_from_slice(&text[..keep]);
    }
    f(&format!("{name}:{start_line}"), &msg);
    Ok(())
}

/// One line (its `\n` included) into `line`, keeping at most `cap` bytes
/// of it; the rest of the line is read and dropped. 0 at the end.
fn read_line_capped(r: &mut impl std::io::BufRead, line: &mut Vec<u8>, cap: usize) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(total);
        }
        let (n, end) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let keep = n.min(cap.saturating_sub(line.len()));
        line.extend_from_slice(&buf[..keep]);
        r.consume(n);
        total += n;
        if end {
            return Ok(total);
        }
    }
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
        let series: Vec<(String, Vec<Option<f64>>)> = CATEGORIES
            .iter()
            .map(|c| {
                (
                    c.replace('_', " "),
                    self.per_month.values().map(|m| Some(m.get(c).copied().unwrap_or(0) as f64)).collect(),
                )
            })
            .collect();
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
        let mut per_category: BTreeMap<&str, u64> = CATEGORIES.iter().map(|c| (*c, 0)).collect();
        for cats in self.per_month.values() {
            for (c, n) in cats {
                *per_category.entry(c).or_default() += n;
            }
        }
        let summary = json!({"reports": self.reports, "arf": self.arf, "unreadable": self.unreadable, "per_category": per_category});
        let mut tables = vec![t, ta];
        if !ctx.markers.is_empty() {
            tables.push(crate::markers::table("before_after", &ctx.markers, &self.series()));
        }
        crate::output::Section {
            id: "complaints".into(),
            title: "Spam complaints".into(),
            notes,
            charts: vec![chart],
            tables,
            summary,
        }
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
