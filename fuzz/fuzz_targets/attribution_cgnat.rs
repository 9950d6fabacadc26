//! port25_egress: see port25_fuzz's attribution module, function `cgnat_csv`.
#![no_main]

#[allow(dead_code)] // each target uses one of the checks
#[path = "../src/attribution.rs"]
mod attribution;

libfuzzer_sys::fuzz_target!(|data: &[u8]| attribution::cgnat_csv(data));
