//! IP address to country and AS, from any mix of sources, as of a date.
//!
//! Each `--enrich PATH` is one layer. A file is used for every date; a
//! directory holds dated versions of one source (the date is in each file
//! name: `GeoLite2-Country_20130301.mmdb`, `routeviews-rv2-20130301.pfx2as`,
//! `geoip-2013-03-01.csv`) and an address is looked up in the latest version
//! dated on or before the day it was seen (the earliest version for days
//! before all of them). Layers are asked in order; the first that knows the
//! country gives it, likewise the AS.
//!
//! The kind of a file comes from its name: `.mmdb` (MaxMind), `pfx2as` in
//! the name (CAIDA), anything else a range file ([`crate::ranges`]).

use crate::error::InputError;
use crate::mmdb::Mmdb;
use crate::pfx2as::Pfx2as;
use crate::ranges::{Ranges, Value};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub enum Source {
    Mmdb(Mmdb),
    Pfx2as(Pfx2as),
    Ranges(Ranges),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Info {
    pub country: Option<[u8; 2]>,
    /// Origin ASes (several for a multi-origin prefix).
    pub asns: Vec<u32>,
}

struct Layer {
    path: PathBuf,
    /// (day, source), by day; a single undated file has day `i64::MIN`.
    versions: Vec<(i64, Source)>,
}

#[derive(Default)]
pub struct Enricher {
    layers: Vec<Layer>,
}

/// What a report says about its enrichment (`describe`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerInfo {
    pub path: String,
    pub kind: String,
    pub versions: Vec<String>,
}

fn open_source(path: &Path) -> Result<Source, InputError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
    if name.ends_with(".gz") || name.ends_with(".bz2") || name.ends_with(".xz") {
        return Err(InputError::file(path, "compressed file: decompress it first (e.g. gunzip -k)"));
    }
    if name.ends_with(".mmdb") {
        return Mmdb::open(path).map(Source::Mmdb);
    }
    let text = String::from_utf8(crate::error::read(path)?).map_err(|_| InputError::file(path, "not UTF-8 text"))?;
    if name.contains("pfx2as") {
        Pfx2as::parse(&text).map(Source::Pfx2as).map_err(|e| e.in_file(path))
    } else {
        let r = Ranges::parse(&text).map_err(|e| e.in_file(path))?;
        if r.is_empty() {
            return Err(InputError::file(path, "no ranges in the file (expected low,high,country-or-AS lines)"));
        }
        Ok(Source::Ranges(r))
    }
}

impl Enricher {
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Adds a layer: a file, or a directory of dated files.
    pub fn add(&mut self, path: &Path) -> Result<(), InputError> {
        let meta = std::fs::metadata(path).map_err(|e| InputError::file(path, format!("cannot open: {e}")))?;
        let mut versions = Vec::new();
        if meta.is_dir() {
            let files = crate::error::files_in(path)?;
            for f in files {
                let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let day = crate::date::day_in_name(&name).ok_or_else(|| {
                    InputError::file(
                        &f,
                        "a dated directory's files need a date in their name (YYYY-MM-DD, YYYYMMDD or YYYY-MM)",
                    )
                })?;
                versions.push((day, open_source(&f)?));
            }
            if versions.is_empty() {
                return Err(InputError::file(path, "empty directory: no dated enrichment files"));
            }
            versions.sort_by_key(|v| v.0);
        } else {
            versions.push((i64::MIN, open_source(path)?));
        }
        self.layers.push(Layer { path: path.to_owned(), versions });
        Ok(())
    }

    pub fn describe(&self) -> Vec<LayerInfo> {
        self.layers
            .iter()
            .map(|l| LayerInfo {
                path: l.path.display().to_string(),
                kind: match &l.versions[0].1 {
                    Source::Mmdb(m) => format!("MaxMind DB ({})", m.kind()),
                    Source::Pfx2as(_) => "CAIDA pfx2as".into(),
                    Source::Ranges(_) => "IP ranges".into(),
                },
                versions: l.versions.iter().filter(|v| v.0 != i64::MIN).map(|v| crate::date::format_day(v.0)).collect(),
            })
            .collect()
    }

    /// Country and ASes of `ip` as of `day`.
    pub fn lookup(&self, ip: IpAddr, day: i64) -> Info {
        let mut info = Info::default();
        for l in &self.layers {
            let i = l.versions.partition_point(|v| v.0 <= day).saturating_sub(1);
            match &l.versions[i].1 {
                Source::Mmdb(m) => {
                    let a = m.lookup(ip);
                    if info.country.is_none() {
                        info.country = a.country;
                    }
                    if info.asns.is_empty() {
                        info.asns.extend(a.asn);
                    }
                }
                Source::Pfx2as(p) => {
                    if info.asns.is_empty() {
                        info.asns.extend_from_slice(p.lookup(ip).unwrap_or_default());
                    }
                }
                Source::Ranges(r) => match r.lookup(ip) {
                    Some(Value::Country(c)) if info.country.is_none() => info.country = Some(*c),
                    Some(Value::Asn(a)) if info.asns.is_empty() => info.asns.push(*a),
                    _ => {}
                },
            }
            if info.country.is_some() && !info.asns.is_empty() {
                break;
            }
        }
        info
    }
}

pub fn country_str(c: [u8; 2]) -> String {
    String::from_utf8_lossy(&c).into_owned()
}
