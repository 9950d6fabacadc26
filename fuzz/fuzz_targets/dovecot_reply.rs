//! Lines from a Dovecot auth server: port25_directory::dovecot::proto.
//! Properties: see port25_fuzz::directory::dovecot_reply.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::directory::dovecot_reply(data));
