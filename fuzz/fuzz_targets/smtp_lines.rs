//! The strict CRLF line splitter: port25_engine::input::Input.
//! Properties: see port25_fuzz::engine::smtp_lines.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::engine::smtp_lines(data));
