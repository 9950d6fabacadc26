//! The SMTP client's reply parser: port25_outbound::reply::parse.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::outbound::smtp_reply(data));
