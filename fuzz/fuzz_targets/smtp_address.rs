//! Mailboxes and paths: port25_engine::address, and RCPT TO:<...> agreeing with it.
//! Properties: see port25_fuzz::engine::smtp_address.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::engine::smtp_address(data));
