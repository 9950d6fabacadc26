//! SOCKS4/4a requests: port25_spampot::socks4::parse.
//! Properties: see port25_fuzz::spampot::socks4.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::spampot::socks4(data));
