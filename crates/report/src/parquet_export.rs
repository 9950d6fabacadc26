//! Parquet export of the capture's message records, enriched, for
//! Spark/Trino/DuckDB when one machine is outgrown: one row per captured
//! message (spam and probes, `probe` tells), in row groups of
//! [`ROW_GROUP`] rows, zstd-compressed. Streamed: memory is one row group.
//!
//! Columns: `time` (timestamp, ms, UTC), `day` (YYYY-MM-DD), `sensor`,
//! `src_ip`, `country` and `asn` (enrichment as of the message's day; the
//! first AS of a multi-origin prefix; null when unknown or not enriched),
//! `proxy_type`, `requested_port`, `recipients` (count), `recipient_domain`
//! (the first recipient's), `digest`, `size`, `probe`.

use crate::enrich::{country_str, Enricher};
use crate::stats::Filter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use std::path::Path;
use std::sync::Arc;

pub const ROW_GROUP: usize = 128 * 1024;

const SCHEMA: &str = "message capture_message {
  REQUIRED INT64 time (TIMESTAMP(MILLIS,true));
  REQUIRED BYTE_ARRAY day (UTF8);
  REQUIRED BYTE_ARRAY sensor (UTF8);
  REQUIRED BYTE_ARRAY src_ip (UTF8);
  OPTIONAL BYTE_ARRAY country (UTF8);
  OPTIONAL INT64 asn;
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
    day: Vec<ByteArray>,
    sensor: Vec<ByteArray>,
    src_ip: Vec<ByteArray>,
    country: (Vec<i16>, Vec<ByteArray>),
    asn: (Vec<i16>, Vec<i64>),
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

type Writer = SerializedFileWriter<std::fs::File>;

fn flush(w: &mut Writer, b: &mut Batch) -> parquet::errors::Result<()> {
    if b.rows == 0 {
        return Ok(());
    }
    let mut rg = w.next_row_group()?;
    let mut i = 0;
    while let Some(mut col) = rg.next_column()? {
        match i {
            0 => col.typed::<Int64Type>().write_batch(&b.time, None, None)?,
            1 => col.typed::<ByteArrayType>().write_batch(&b.day, None, None)?,
            2 => col.typed::<ByteArrayType>().write_batch(&b.sensor, None, None)?,
            3 => col.typed::<ByteArrayType>().write_batch(&b.src_ip, None, None)?,
            4 => col.typed::<ByteArrayType>().write_batch(&b.country.1, Some(&b.country.0), None)?,
            5 => col.typed::<Int64Type>().write_batch(&b.asn.1, Some(&b.asn.0), None)?,
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

/// Writes every message event of `dir` that passes `filter`; returns the rows written.
pub fn export(dir: &Path, filter: &Filter, enricher: &Enricher, out: &Path) -> std::io::Result<u64> {
    let schema = Arc::new(parquet::schema::parser::parse_message_type(SCHEMA).expect("the schema above parses"));
    let props = Arc::new(WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build());
    let file = std::fs::File::create(out)?;
    let mut w = SerializedFileWriter::new(file, schema, props).map_err(std::io::Error::other)?;
    let mut b = Batch::default();
    let mut rows = 0u64;
    let mut err: Option<parquet::errors::ParquetError> = None;
    let mut damage = crate::scan::Damage::default();
    for seg in crate::scan::segments(dir)? {
        crate::scan::read_segment(&seg, &mut damage, &mut |e| {
            if err.is_some() || e.event != "port25.spampot.message" {
                return;
            }
            let (Some(ms), Some(day)) = (millis(&e.time), crate::date::parse_day(&e.time)) else { return };
            if filter.from.is_some_and(|f| day < f)
                || filter.to.is_some_and(|t| day > t)
                || !(filter.sensors.is_empty() || filter.sensors.iter().any(|s| *s == *e.sensor))
            {
                return;
            }
            let ip = e.src_ip.as_deref().and_then(|s| s.parse::<std::net::IpAddr>().ok());
            let info = ip.map(|ip| enricher.lookup(ip, day)).unwrap_or_default();
            b.time.push(ms);
            b.day.push(ba(e.time.get(..10).unwrap_or_default()));
            b.sensor.push(ba(&e.sensor));
            b.src_ip.push(ba(e.src_ip.as_deref().unwrap_or("")));
            opt(&mut b.country, info.country.map(|c| ba(&country_str(c))));
            opt(&mut b.asn, info.asns.first().map(|a| i64::from(*a)));
            opt(&mut b.proxy_type, e.proxy_type.as_deref().map(ba));
            opt(&mut b.requested_port, e.requested.as_ref().map(|r| i32::from(r.port)));
            b.recipients.push(e.rcpt_to.len() as i64);
            opt(&mut b.recipient_domain, e.rcpt_to.first().and_then(|r| r.rsplit_once('@')).map(|x| ba(&x.1.to_ascii_lowercase())));
            opt(&mut b.digest, e.digest.as_deref().map(ba));
            opt(&mut b.size, e.size.map(|s| s as i64));
            b.probe.push(e.probe == Some(true));
            b.rows += 1;
            rows += 1;
            if b.rows >= ROW_GROUP {
                if let Err(x) = flush(&mut w, &mut b) {
                    err = Some(x);
                }
            }
        })?;
    }
    if let Some(e) = err {
        return Err(std::io::Error::other(e));
    }
    flush(&mut w, &mut b).map_err(std::io::Error::other)?;
    w.close().map_err(std::io::Error::other)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times() {
        assert_eq!(super::millis("1970-01-02T00:00:01.500Z"), Some(86_401_500));
        assert_eq!(super::millis("2006-06-10T00:00:00Z"), Some(crate::date::parse_day("2006-06-10").unwrap() * 86_400_000));
        assert_eq!(super::millis("2006-06-10"), None);
    }
}
