//! Outlook Autodiscover request parser: port25_http::autodiscover::parse_request.
//! Properties: see port25_fuzz::http::http_autodiscover.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::http::http_autodiscover(data));
