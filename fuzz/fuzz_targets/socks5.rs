//! SOCKS5 greeting, RFC 1929 login and request: port25_spampot::socks5.
//! Properties: see port25_fuzz::spampot::socks5.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::spampot::socks5(data));
