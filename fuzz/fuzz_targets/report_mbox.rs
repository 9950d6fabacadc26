//! port25_report streaming mbox reader; properties: see port25_fuzz::report::mbox.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::report::mbox(data));
