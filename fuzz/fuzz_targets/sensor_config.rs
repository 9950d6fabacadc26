//! The sensor's configuration: port25_spampot::config::Config::parse.
//! Properties: see port25_fuzz::spampot::sensor_config.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::spampot::sensor_config(data));
