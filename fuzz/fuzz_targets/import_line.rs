//! Account import lines and address entries: port25_accounts::import.
//! Properties: see port25_fuzz::accounts::import_line.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::accounts::import_line(data));
