//! port25_capture's fast event-line scanner; properties: see port25_fuzz::capture::fastview.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::capture::fastview(data));
