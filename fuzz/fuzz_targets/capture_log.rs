//! capture event log reader: port25_capture::reader::parse.
//! Properties: see port25_fuzz::capture::capture_log.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::capture::capture_log(data));
