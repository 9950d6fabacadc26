//! The SMTP client's reply parser: port25_wire::reply::parse, shared
//! with LMTP delivery.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::outbound::smtp_reply(data));
