//! The TOML configuration: port25_config::parse.
//! Properties: see port25_fuzz::config::config.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::config::config(data));
