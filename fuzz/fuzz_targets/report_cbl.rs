//! port25_report input parser; properties: see port25_fuzz::report::cbl.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::report::cbl(data));
