//! Message headers as submission reads them: port25_submission::headers.
//! Properties: see port25_fuzz::submission::mail_headers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::submission::mail_headers(data));
