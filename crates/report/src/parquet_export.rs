//! `--parquet DIR`: the capture's message records, enriched, as a
//! Hive-partitioned Parquet dataset for Spark/Trino/DuckDB when one machine
//! is outgrown:
//!
//! ```text
//! DIR/day=2006-06-10/sensor=sp01/part-00000.parquet
//! ```
//!
//! `day` and `sensor` are in the paths only (the Hive convention; engines
//! add them as columns). One row per captured message (spam and probes,
//! `probe` tells), zstd, row groups of at most [`ROW_GROUP`] rows. The
//! schema is [`SCHEMA`] and docs/report.md documents it with the SQL that
//! gives Table 1.
//!
//! Bounded memory whatever the capture: at most [`ROW_GROUP`] rows are
//! buffered over all partitions (then every buffer is written as a row
//! group) and at most [`MAX_OPEN`] files are open (the least recently used
//! is closed; a partition seen again later gets a further part file).
//! A part file is written under a `.tmp` name and renamed when complete,
//! so a reader never sees a half-written file.
//!
//! Enrichment follows Table 1: a spam source's country and ASes are those
//! of the day of its first spam in the window (the report's rule), so the
//! SQL over the dataset gives exactly the report's figures; a probe's are
//! those of its own day.

use crate::enrich::{country_str, Enricher, Info};
use crate::stats::Filter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows buffered over all partitions before they are written.
pub const ROW_GROUP: usize = 128 * 1024;
/// Part files open at once.
pub const MAX_OPEN: usize = 64;

/// The data files' schema (the partition columns `day` and `sensor` come
/// from the paths).
pub const SCHEMA: &str = "message capture_message {
  REQUIRED INT64 time (TIMESTAMP(MILLIS,true));
  REQUIRED INT32 epoch_day;
  OPTIONAL BYTE_ARRAY src_ip (UTF8);
  OPTIONAL BYTE_ARRAY country (UTF8);
  OPTIONAL INT64 asn;
  REQUIRED GROUP asns (LIST) {
    REPEATED GROUP list {
      REQUIRED INT64 element;
    }
  }
  OPTIONAL BYTE_ARRAY proxy_type (UTF8);
  OPTIONAL INT32 requested_port;
  REQUIRED INT64 recipients;
  OPTIONAL BYTE_ARRAY recipient_domain (UTF8);
  OPTIONAL BYTE_ARRAY digest (UTF8);
  OPTIONAL INT64 size;
  REQUIRED BOOLEAN probe;
}";

/// Column buffers of one row group; optional columns keep their
/// definition levels (1 present, 0 null) beside the present values.
#[derive(Default)]
struct Batch {
    rows: usize,
    time: Vec<i64>,
    epoch_day: Vec<i32>,
    src_ip: (Vec<i16>, Vec<ByteArray>),
    country: (Vec<i16>, Vec<ByteArray>),
    asn: (Vec<i16>, Vec<i64>),
    /// (definition levels, repetition levels, values) of the list.
    asns: (Vec<i16>, Vec<i16>, Vec<i64>),
    proxy_type: (Vec<i16>, Vec<ByteArray>),
    requested_port: (Vec<i16>, Vec<i32>),
    recipients: Vec<i64>,
    recipient_domain: (Vec<i16>, Vec<ByteArray>),
    digest: (Vec<i16>, Vec<ByteArray>),
    size: (Vec<i16>, Vec<i64>),
    probe: Vec<bool>,
}

fn opt<T>(col: &mut (Vec<i16>, Vec<T>), v: Option<T>) {
    match v {
        Some(v) => {
            col.0.push(1);
            col.1.push(v);
        }
        None => col.0.push(0),
    }
}

fn ba(s: &str) -> ByteArray {
    ByteArray::from(s.as_bytes().to_vec())
}

/// `2006-06-10T12:34:56.789Z` to milliseconds since the epoch.
pub fn millis(t: &str) -> Option<i64> {
    let day = crate::date::parse_day(t)?;
    let b = t.as_bytes();
    if b.len() < 19 || b[10] != b'T' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| t.get(r).and_then(|x| x.parse::<i64>().ok());
    let (h, m, s) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let ms = if b.get(19) == Some(&b'.') { n(20..23).unwrap_or(0) } else { 0 };
    Some(((day * 24 + h) * 60 + m) * 60_000 + s * 1000 + ms)
}

/// A partition value in a path, Hive's way: bytes outside `[A-Za-z0-9._-]`
/// percent-encoded (Spark and DuckDB decode them), so a sensor name can
/// never climb out of the dataset or make a second `=`.
pub fn escape_partition(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    // "." and ".." are path components, not names.
    if s.is_empty() || s.bytes().all(|b| b == b'.') {
        s = s.replace('.', "%2E");
        if s.is_empty() {
            s.push_str("%00");
        }
    }
    s
}

type Writer = SerializedFileWriter<std::fs::File>;

fn write_group(w: &mut Writer, b: &mut Batch) -> parquet::errors::Result<()> {
    if b.rows == 0 {
        return Ok(());
    }
    let mut rg = w.next_row_group()?;
    let mut i = 0;
    while let Some(mut col) = rg.next_column()? {
        match i {
            0 => col.typed::<Int64Type>().write_batch(&b.time, None, None)?,
            1 => col.typed::<Int32Type>().write_batch(&b.epoch_day, None, None)?,
            2 => col.typed::<ByteArrayType>().write_batch(&b.src_ip.1, Some(&b.src_ip.0), None)?,
            3 => col.typed::<ByteArrayType>().write_batch(&b.country.1, Some(&b.country.0), None)?,
            4 => col.typed::<Int64Type>().write_batch(&b.asn.1, Some(&b.asn.0), None)?,
            5 => col.typed::<Int64Type>().write_batch(&b.asns.2, Some(&b.asns.0), Some(&b.asns.1))?,
            6 => col.typed::<ByteArrayType>().write_batch(&b.proxy_type.1, Some(&b.proxy_type.0), None)?,
            7 => col.typed::<Int32Type>().write_batch(&b.requested_port.1, Some(&b.requested_port.0), None)?,
            8 => col.typed::<Int64Type>().write_batch(&b.recipients, None, None)?,
            9 => col.typed::<ByteArrayType>().write_batch(&b.recipient_domain.1, Some(&b.recipient_domain.0), None)?,
            10 => col.typed::<ByteArrayType>().write_batch(&b.digest.1, Some(&b.digest.0), None)?,
            11 => col.typed::<Int64Type>().write_batch(&b.size.1, Some(&b.size.0), None)?,
            _ => col.typed::<BoolType>().write_batch(&b.probe, None, None)?,
        };
        col.close()?;
        i += 1;
    }
    rg.close()?;
    *b = Batch::default();
    Ok(())
}

/// One open part file of a partition.
struct Part {
    w: Writer,
    tmp: PathBuf,
    path: PathBuf,
    batch: Batch,
    used: u64,
}

/// Every partition's open part and what was written.
struct Parts {
    out: PathBuf,
    schema: Arc<parquet::schema::types::Type>,
    props: Arc<WriterProperties>,
    open: HashMap<(i64, String), Part>,
    /// Part files made so far per partition (the next one's number).
    made: HashMap<(i64, String), u32>,
    buffered: usize,
    clock: u64,
    files: u64,
}

fn other(e: parquet::errors::ParquetError) -> std::io::Error {
    std::io::Error::other(e)
}

impl Parts {
    fn part(&mut self, day: i64, sensor: &str) -> std::io::Result<&mut Part> {
        self.clock += 1;
        let key = (day, sensor.to_owned());
        if !self.open.contains_key(&key) {
            if self.open.len() >= MAX_OPEN {
                let lru = self.open.iter().min_by_key(|(_, p)| p.used).map(|(k, _)| k.clone()).expect("MAX_OPEN > 0");
                let p = self.open.remove(&lru).expect("just found");
                self.close(p)?;
            }
            let dir = self
                .out
                .join(format!("day={}", crate::date::format_day(day)))
                .join(format!("sensor={}", escape_partition(sensor)));
            std::fs::create_dir_all(&dir)?;
            let n = self.made.entry(key.clone()).or_default();
            let path = dir.join(format!("part-{n:05}.parquet"));
            let tmp = dir.join(format!(".part-{n:05}.parquet.tmp"));
            *n += 1;
            let w = SerializedFileWriter::new(std::fs::File::create(&tmp)?, self.schema.clone(), self.props.clone())
                .map_err(other)?;
            self.open.insert(key.clone(), Part { w, tmp, path, batch: Batch::default(), used: 0 });
        }
        let p = self.open.get_mut(&key).expect("opened above");
        p.used = self.clock;
        Ok(p)
    }

    fn close(&mut self, mut p: Part) -> std::io::Result<()> {
        self.buffered -= p.batch.rows;
        write_group(&mut p.w, &mut p.batch).map_err(other)?;
        p.w.close().map_err(other)?;
        std::fs::rename(&p.tmp, &p.path)?;
        self.files += 1;
        Ok(())
    }

    /// Writes every buffer as a row group (memory is back to nothing).
    fn flush_all(&mut self) -> std::io::Result<()> {
        for p in self.open.values_mut() {
            write_group(&mut p.w, &mut p.batch).map_err(other)?;
        }
        self.buffered = 0;
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<u64> {
        let open: Vec<Part> = self.open.drain().map(|(_, p)| p).collect();
        for p in open {
            self.close(p)?;
        }
        Ok(self.files)
    }
}

/// What [`export`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
    pub files: u64,
}

/// Writes every message event of `dir` that passes `filter` into the
/// dataset `out` (created; refused if it exists and is not empty: old
/// parts would be counted twice). `first_spam_day` gives a spam source's
/// first day in the window (the report's accumulator knows it); without
/// an answer the message's own day is used.
pub fn export(
    dir: &Path,
    filter: &Filter,
    enricher: &Enricher,
    first_spam_day: &dyn Fn(IpAddr) -> Option<i64>,
    out: &Path,
) -> std::io::Result<Written> {
    if out.exists() && (!out.is_dir() || std::fs::read_dir(out)?.next().is_some()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{}: exists and is not an empty directory (a dataset is written into a new directory; old parts would be counted twice)", out.display()),
        ));
    }
    std::fs::create_dir_all(out)?;
    let schema = Arc::new(parquet::schema::parser::parse_message_type(SCHEMA).expect("the schema above parses"));
    let props = Arc::new(WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build());
    let mut parts = Parts {
        out: out.to_owned(),
        schema,
        props,
        open: HashMap::new(),
        made: HashMap::new(),
        buffered: 0,
        clock: 0,
        files: 0,
    };
    let mut rows = 0u64;
    let mut err: Option<std::io::Error> = None;
    let mut damage = crate::scan::Damage::default();
    // Spam sources' enrichment, once per address (bounded like the report's own source table).
    let mut infos: HashMap<IpAddr, Info> = HashMap::new();
    for seg in crate::scan::segments(dir)? {
        crate::scan::read_segment(&seg, &mut damage, &mut |e| {
            if err.is_some() || e.event != "port25.spampot.message" {
                return;
            }
            let (Some(ms), Some(day)) = (millis(&e.time), crate::date::parse_day(&e.time)) else { return };
            if !filter.day_ok(day) || !filter.sensor_ok(&e.sensor) {
                return;
            }
            let probe = e.probe == Some(true);
            let ip = e.src_ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok());
            let info = match ip {
                None => Info::default(),
                Some(ip) if probe => enricher.lookup(ip, day),
                Some(ip) => {
                    infos.entry(ip).or_insert_with(|| enricher.lookup(ip, first_spam_day(ip).unwrap_or(day))).clone()
                }
            };
            let p = match parts.part(day, &e.sensor) {
                Ok(p) => p,
                Err(x) => {
                    err = Some(x);
                    return;
                }
            };
            let b = &mut p.batch;
            b.time.push(ms);
            b.epoch_day.push(day as i32);
            opt(&mut b.src_ip, ip.map(|ip| ba(&ip.to_string())));
            opt(&mut b.country, info.country.map(|c| ba(&country_str(c))));
            opt(&mut b.asn, info.asns.first().map(|a| i64::from(*a)));
            if info.asns.is_empty() {
                b.asns.0.push(0);
                b.asns.1.push(0);
            }
            for (i, a) in info.asns.iter().enumerate() {
                b.asns.0.push(1);
                b.asns.1.push(i16::from(i > 0));
                b.asns.2.push(i64::from(*a));
            }
            opt(&mut b.proxy_type, e.proxy_type.as_deref().map(ba));
            opt(&mut b.requested_port, e.requested.as_ref().map(|r| i32::from(r.port)));
            b.recipients.push(e.rcpt_to.len() as i64);
            opt(
                &mut b.recipient_domain,
                e.rcpt_to
                    .first()
                    .and_then(|r| r.rsplit_once('@'))
                    .map(|x| ba(&x.1.trim_end_matches('.').to_ascii_lowercase())),
            );
            opt(&mut b.digest, e.digest.as_deref().map(ba));
            opt(&mut b.size, e.size.map(|s| s as i64));
            b.probe.push(probe);
            b.rows += 1;
            parts.buffered += 1;
            rows += 1;
            if parts.buffered >= ROW_GROUP {
                if let Err(x) = parts.flush_all() {
                    err = Some(x);
                }
            }
        })?;
    }
    if let Some(e) = err {
        return Err(e);
    }
    let files = parts.finish()?;
    Ok(Written { rows, files })
}

#[cfg(test)]
mod tests {
    #[test]
    fn times() {
        assert_eq!(super::millis("1970-01-02T00:00:01.500Z"), Some(86_401_500));
        assert_eq!(
            super::millis("2006-06-10T00:00:00Z"),
            Some(crate::date::parse_day("2006-06-10").unwrap() * 86_400_000)
        );
        assert_eq!(super::millis("2006-06-10"), None);
    }

    #[test]
    fn partition_values_stay_one_path_component() {
        use super::escape_partition as e;
        assert_eq!(e("sp-01.br_a"), "sp-01.br_a");
        assert_eq!(e("../x"), "..%2Fx");
        assert_eq!(e(".."), "%2E%2E");
        assert_eq!(e("a=b c"), "a%3Db%20c");
        assert_eq!(e("ção"), "%C3%A7%C3%A3o");
        assert_eq!(e(""), "%00");
    }
}
