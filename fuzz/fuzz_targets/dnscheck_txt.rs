//! The TXT records port25 dns check reads: port25_dnscheck::records.
//! Properties: see port25_fuzz::dnscheck::txt.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::dnscheck::txt(data));
