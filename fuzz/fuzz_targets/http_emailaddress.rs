//! The emailaddress parameter: port25_http::email::{query_param, parse}.
//! Properties: see port25_fuzz::http::http_emailaddress.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::http::http_emailaddress(data));
