//! Blocklist rank: dated dumps of a DNS blocklist (rbldnsd ip4set or plain
//! address lists) -> listed addresses per country and per AS at each date,
//! each country's rank, and a country's ASes in the top N over time: the
//! slides' "from CBL 1st in 2009 to 25th in 2013" and "main Brazilian ASNs
//! in the CBL top 200".
//!
//! Addresses are looked up as of the dump's date. A range is expanded
//! address by address up to [`EXPAND`] addresses (what lists like the CBL
//! hold: single hosts, small blocks); a larger range is credited whole to
//! the country and AS of its first address, and the report says how many
//! addresses were counted that way. Bad lines are skipped and counted,
//! with file:line examples: one damaged line does not lose a dump.

use crate::enrich::{country_str, Enricher};
use crate::table::{pct, Table};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

pub const EXPAND: u128 = 4096;

#[derive(Debug, Default, Clone)]
pub struct Dump {
    pub day: i64,
    pub path: PathBuf,
    pub listed: u64,
    pub per_country: HashMap<String, u64>,
    pub per_asn: HashMap<u32, u64>,
    pub asn_country: HashMap<u32, String>,
    pub bad_lines: u64,
    pub coarse: u64,
    pub unknown_country: u64,
}

/// Files given: each file, or each file of a directory; every name must carry a date.
pub fn dated_files(paths: &[PathBuf]) -> Result<Vec<(i64, PathBuf)>, crate::error::InputError> {
    let mut out = Vec::new();
    for p in paths {
        let files: Vec<PathBuf> = if p.is_dir() {
            crate::error::files_in(p)?
        } else if p.exists() {
            vec![p.clone()]
        } else {
            return Err(crate::error::InputError::file(p, "no such file or directory"));
        };
        for f in files {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let day = crate::date::day_in_name(&name).ok_or_else(|| {
                crate::error::InputError::file(
                    &f,
                    "blocklist dumps need their date in the file name (YYYY-MM-DD, YYYYMMDD or YYYY-MM)",
                )
            })?;
            out.push((day, f));
        }
    }
    out.sort();
    Ok(out)
}

/// Reads and counts one dump. `examples` collects the first bad lines.
pub fn count(
    path: &Path,
    day: i64,
    enricher: &Enricher,
    examples: &mut Vec<String>,
) -> Result<Dump, crate::error::InputError> {
    let bytes = crate::error::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut d = Dump { day, path: path.to_owned(), ..Dump::default() };
    let mut listed: HashSet<u128> = HashSet::new();
    let mut excluded: HashSet<u128> = HashSet::new();
    let mut coarse: Vec<crate::ip4set::Entry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match crate::ip4set::parse_line(line) {
            Ok(Some(e)) if e.size() <= EXPAND => {
                let set = if e.excluded { &mut excluded } else { &mut listed };
                for k in e.first..=e.last {
                    set.insert(k);
                }
            }
            Ok(Some(e)) if !e.excluded => coarse.push(e),
            Ok(_) => {}
            Err(m) => {
                d.bad_lines += 1;
                if examples.len() < 20 {
                    examples.push(format!("{}:{}: {m}; line skipped", path.display(), i + 1));
                }
            }
        }
    }
    let credit = |ip: std::net::IpAddr, n: u64, d: &mut Dump| {
        let info = enricher.lookup(ip, day);
        d.listed += n;
        match info.country {
            Some(c) => {
                let c = country_str(c);
                *d.per_country.entry(c.clone()).or_default() += n;
                for a in &info.asns {
                    d.asn_country.entry(*a).or_insert_with(|| c.clone());
                }
            }
            None => d.unknown_country += n,
        }
        for a in info.asns {
            *d.per_asn.entry(a).or_default() += n;
        }
    };
    for k in &listed {
        if !excluded.contains(k) {
            credit(crate::ip::from_key(*k), 1, &mut d);
        }
    }
    for e in coarse {
        let n = u64::try_from(e.size()).unwrap_or(u64::MAX);
        d.coarse += n;
        credit(crate::ip::from_key(e.first), n, &mut d);
    }
    Ok(d)
}

/// Competition ranking by count, highest first: ties share a rank.
pub fn ranks<K: Clone + Ord + std::hash::Hash>(m: &HashMap<K, u64>) -> Vec<(K, u64, u64)> {
    let mut v: Vec<(K, u64)> = m.iter().map(|(k, n)| (k.clone(), *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut out = Vec::with_capacity(v.len());
    let mut rank = 0;
    for (i, (k, n)) in v.iter().enumerate() {
        if i == 0 || v[i - 1].1 != *n {
            rank = i as u64 + 1;
        }
        out.push((k.clone(), *n, rank));
    }
    out
}

pub struct Options {
    /// The country followed (rank over time, its ASes).
    pub country: String,
    /// The AS ranking cut-off ("top 200").
    pub top_asns: usize,
    /// Countries drawn in the rank chart besides the followed one.
    pub chart_countries: usize,
}

pub fn section(
    dumps: &[Dump],
    examples: Vec<String>,
    opt: &Options,
    ctx: &crate::output::Context,
) -> crate::output::Section {
    section_as("blocklist", "Blocklist rank", dumps, examples, opt, ctx)
}

/// [`section`] under another id and title (the CBL statistics beside the
/// dumps' section: its charts' ids are prefixed with `id` so both fit on
/// one page).
pub fn section_as(
    id: &str,
    section_title: &str,
    dumps: &[Dump],
    examples: Vec<String>,
    opt: &Options,
    ctx: &crate::output::Context,
) -> crate::output::Section {
    let chart_id = |c: &str| if id == "blocklist" { c.to_owned() } else { format!("{id}_{c}") };
    let (rank_id, asns_id) = (chart_id("chart_rank"), chart_id("chart_focus_asns"));
    let days: Vec<String> = dumps.iter().map(|d| crate::date::format_day(d.day)).collect();
    let mut notes = examples;
    let focus = opt.country.to_ascii_uppercase();
    let mut t_all = Table::new(
        "country_rank",
        "Listed addresses per country and rank, per dump",
        &["date", "rank", "country", "listed", "share_pct"],
    );
    let mut t_focus = Table::new(
        "focus_rank",
        &format!("{focus}: rank and listed addresses per dump"),
        &["date", "rank", "listed", "share_pct", "countries_ranked"],
    );
    let mut t_asn = Table::new(
        "focus_asns",
        &format!("{focus}: its ASes in the top {} ASes, per dump", opt.top_asns),
        &["date", "asn", "listed", "rank_among_all_asns"],
    );
    let mut rank_series: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    let mut asn_series: BTreeMap<u32, Vec<Option<f64>>> = BTreeMap::new();
    // Countries that were ever in the top `chart_countries`: drawn too.
    let mut drawn: Vec<String> = vec![focus.clone()];
    for (i, d) in dumps.iter().enumerate() {
        let r = ranks(&d.per_country);
        for (c, n, k) in &r {
            t_all.push(vec![json!(days[i]), json!(k), json!(c), json!(n), pct(*n, d.listed)]);
            if (*k as usize) <= opt.chart_countries && !drawn.contains(c) {
                drawn.push(c.clone());
            }
        }
        match r.iter().find(|x| x.0 == focus) {
            Some((_, n, k)) => {
                t_focus.push(vec![json!(days[i]), json!(k), json!(n), pct(*n, d.listed), json!(r.len())])
            }
            None => t_focus.push(vec![json!(days[i]), json!(null), json!(0), pct(0, d.listed), json!(r.len())]),
        }
        for (a, n, k) in ranks(&d.per_asn).into_iter().take(opt.top_asns) {
            if d.asn_country.get(&a) == Some(&focus) {
                t_asn.push(vec![json!(days[i]), json!(a), json!(n), json!(k)]);
                asn_series.entry(a).or_insert_with(|| vec![None; dumps.len()])[i] = Some(n as f64);
            }
        }
        if d.bad_lines > 0 {
            notes.push(format!("{}: {} bad line(s) skipped.", d.path.display(), d.bad_lines));
        }
        if d.coarse > 0 {
            notes.push(format!(
                "{}: {} addresses in ranges larger than {EXPAND} were credited to the country and AS of each range's first address.",
                d.path.display(),
                d.coarse
            ));
        }
        if d.unknown_country > 0 {
            notes.push(format!(
                "{}: {} listed addresses have no known country (not ranked).",
                d.path.display(),
                d.unknown_country
            ));
        }
    }
    for c in &drawn {
        let v: Vec<Option<f64>> =
            dumps.iter().map(|d| ranks(&d.per_country).into_iter().find(|x| &x.0 == c).map(|x| x.2 as f64)).collect();
        rank_series.insert(c.clone(), v);
    }
    let mut charts = Vec::new();
    let mut series: Vec<(String, Vec<Option<f64>>)> =
        vec![(focus.clone(), rank_series.remove(&focus).unwrap_or_default())];
    series.extend(rank_series.into_iter().take(9));
    let caption = ctx.caption();
    let title = format!("Rank by listed addresses ({focus} and the top {})", opt.chart_countries);
    charts.push(crate::svg::lines(
        &crate::svg::Frame {
            id: &rank_id,
            title: &title,
            x_title: "Date of the dump",
            y_title: "Rank (1 = most listed)",
            caption: &caption,
            markers: &ctx.markers,
        },
        &days,
        &series,
        true,
    ));
    // The ASes with the most listings at any date, at most ten lines.
    let mut asns: Vec<(u32, f64)> =
        asn_series.iter().map(|(a, v)| (*a, v.iter().flatten().copied().fold(0.0, f64::max))).collect();
    asns.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let aseries: Vec<(String, Vec<Option<f64>>)> =
        asns.iter().take(10).map(|(a, _)| (format!("AS{a}"), asn_series[a].clone())).collect();
    if !aseries.is_empty() {
        let title = format!("{focus}'s ASes in the top {}: listed addresses", opt.top_asns);
        charts.push(crate::svg::lines(
            &crate::svg::Frame {
                id: &asns_id,
                title: &title,
                x_title: "Date of the dump",
                y_title: "Listed addresses",
                caption: &caption,
                markers: &ctx.markers,
            },
            &days,
            &aseries,
            false,
        ));
    } else {
        notes.push(format!("None of {focus}'s ASes is in the top {} at any date.", opt.top_asns));
    }
    let summary = json!({
        "country": focus,
        "dumps": dumps.iter().map(|d| json!({"date": crate::date::format_day(d.day), "file": d.path.display().to_string(), "listed": d.listed, "bad_lines": d.bad_lines})).collect::<Vec<_>>(),
    });
    let mut tables = vec![t_focus, t_asn, t_all];
    if !ctx.markers.is_empty() {
        tables.push(crate::markers::table("before_after", &ctx.markers, &series_of(id, dumps, &focus)));
    }
    crate::output::Section { id: id.into(), title: section_title.into(), notes, charts, tables, summary }
}

/// What the `--event` markers split: the followed country's rank (dumps
/// where it is not listed have no rank and are left out), its listed
/// addresses and share, per dump.
fn series_of(id: &str, dumps: &[Dump], focus: &str) -> Vec<crate::markers::Series> {
    let mut rank = Vec::new();
    let mut listed = Vec::new();
    let mut share = Vec::new();
    for d in dumps {
        let n = d.per_country.get(focus).copied().unwrap_or(0);
        if let Some(r) = ranks(&d.per_country).into_iter().find(|x| x.0 == focus) {
            rank.push((d.day, r.2 as f64));
        }
        listed.push((d.day, n as f64));
        share.push((d.day, if d.listed == 0 { 0.0 } else { n as f64 * 100.0 / d.listed as f64 }));
    }
    let s = |metric: String, points| crate::markers::Series { section: id.into(), metric, per: "dump", points };
    vec![
        s(format!("{focus} rank"), rank),
        s(format!("{focus} listed addresses"), listed),
        s(format!("{focus} share of listings (%)"), share),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn competition_ranking() {
        let m: HashMap<&str, u64> = [("BR", 5), ("CN", 9), ("US", 5), ("TW", 1)].into_iter().collect();
        assert_eq!(ranks(&m), vec![("CN", 9, 1), ("BR", 5, 2), ("US", 5, 2), ("TW", 1, 4)]);
    }
}
