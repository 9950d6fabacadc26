//! Whether a spooled message needs SMTPUTF8: port25_spool::smtputf8::needed.
//! Properties: see port25_fuzz::queue::smtputf8_needed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::queue::smtputf8_needed(data));
