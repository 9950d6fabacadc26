//! hpfeeds frames: port25_collect::hpfeeds::parse.
//! Properties: see port25_fuzz::collect::hpfeeds_frame.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::collect::hpfeeds_frame(data));
