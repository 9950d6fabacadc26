//! SMTP AUTH arguments, responses, PLAIN and LOGIN: port25_engine::sasl.
//! Properties: see port25_fuzz::sasl::sasl.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::sasl::sasl(data));
