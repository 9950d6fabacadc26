//! The dashboard's Subject of a captured spam: port25_http::captures::subject_of.
//! Properties: see port25_fuzz::http::http_subject.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::http::http_subject(data));
