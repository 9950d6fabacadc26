//! protocol sniffing on a mixed proxy port: port25_spampot::sniff.
//! Properties: see port25_fuzz::spampot::sniff.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::spampot::sniff(data));
