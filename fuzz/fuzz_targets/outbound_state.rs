//! The outbound queue's state and history records: port25_outbound::state.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::outbound::state_records(data));
