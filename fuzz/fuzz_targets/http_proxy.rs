//! HTTP proxy request heads: port25_spampot::http::parse.
//! Properties: see port25_fuzz::spampot::http_proxy.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::spampot::http_proxy(data));
