//! The DATA reader: dot-unstuffing, the CRLF.CRLF terminator, bare CR/LF, limits, any split of the input.
//! Properties: see port25_fuzz::engine::smtp_data.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::engine::smtp_data(data));
