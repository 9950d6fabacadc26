//! port25_abuse complaint reader; properties: see port25_fuzz::abuse::report.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::abuse::report(data));
