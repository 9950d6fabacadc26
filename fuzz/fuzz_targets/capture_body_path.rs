//! A body digest from a capture log: port25_capture::bodies::path_of.
//! Properties: see port25_fuzz::capture::body_path.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::capture::body_path(data));
