//! port25_screen parser; properties: see port25_fuzz::screen::dnsbl.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::screen::dnsbl(data));
