//! The MTA-STS policy, its HTTP answer and TXT record: port25_wire::mta_sts.
//! Properties: see port25_fuzz::mta_sts::check.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::mta_sts::check(data));
