//! port25_abuse trace time parser; properties: see port25_fuzz::abuse::time.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::abuse::time(data));
