//! `port25 report`: what the SpamPots captured and what changed after port
//! 25 management, as tables, charts and files other tools read.
//!
//! Layout, one concern per file:
//! - [`generate`]: the seeded synthetic capture with known answers;
//! - [`scan`] reads a capture store (through `port25_capture`'s reader) and
//!   [`stats`] counts it in one pass with bounded memory;
//! - enrichment: [`ranges`] (CSV/TSV IP ranges, e.g. tor-geoipdb),
//!   [`pfx2as`] (CAIDA prefix-to-AS), [`mmdb`] (MaxMind databases), tied
//!   together, with dates, by [`enrich`];
//! - [`table1`] turns counts into the white paper's Table 1 and the other
//!   tables; [`campaigns`] finds near-duplicate bodies;
//! - [`blocklist`] (rbldnsd ip4set and plain lists: rank per country and
//!   ASN over time) and [`complaints`] (ARF and plain abuse reports);
//! - output: [`table`] (JSON, CSV), [`svg`] (charts), [`html`].

pub mod arf;
pub mod blocklist;
pub mod campaigns;
pub mod cbl;
pub mod complaints;
pub mod date;
pub mod enrich;
pub mod error;
pub mod generate;
pub mod group;
pub mod html;
pub mod ip;
pub mod ip4set;
pub mod markers;
pub mod mmdb;
pub mod notices;
pub mod output;
pub mod parquet_export;
pub mod pfx2as;
pub mod ranges;
pub mod rng;
pub mod scan;
pub mod stats;
pub mod svg;
pub mod table;
pub mod table1;
