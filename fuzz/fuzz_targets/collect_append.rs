//! the collector's offset append rule: port25_collect::append::plan.
//! Properties: see port25_fuzz::collect::collect_append.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::collect::collect_append(data));
