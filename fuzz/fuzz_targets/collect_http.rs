//! shipper/collector HTTP heads: port25_collect::http::parse.
//! Properties: see port25_fuzz::collect::collect_http.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::collect::collect_http(data));
