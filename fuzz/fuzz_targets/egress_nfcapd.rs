//! port25_egress: see port25_fuzz's egress module, function `nfcapd_file`.
#![no_main]

#[allow(dead_code)] // each target uses one of the checks
#[path = "../src/egress.rs"]
mod egress;

libfuzzer_sys::fuzz_target!(|data: &[u8]| egress::nfcapd_file(data));
