//! HAProxy PROXY protocol v1/v2 headers: port25_engine::proxy::parse.
//! Properties: see port25_fuzz::engine::proxy_header.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::engine::proxy_header(data));
