//! Authentication-Results fields claiming our authserv-id, removed from a
//! message's header section; values quoted for ours: port25_mx::auth::header.
//! Properties: see port25_fuzz::mx::ar_strip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::mx::ar_strip(data));
