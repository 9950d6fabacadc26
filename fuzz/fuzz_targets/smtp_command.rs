//! SMTP command lines (CRLF removed): port25_engine::command::parse.
//! Properties: see port25_fuzz::engine::smtp_command.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::engine::smtp_command(data));
