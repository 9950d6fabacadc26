//! Dates in capture logs, file names and abuse reports: port25_report::date, parquet_export::millis, arf::parse_date.
//! Properties: see port25_fuzz::report::dates.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::report::dates(data));
