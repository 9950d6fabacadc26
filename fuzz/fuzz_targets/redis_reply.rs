//! Replies from a Redis server: port25_shared::resp.
//! Properties: see port25_fuzz::shared::redis_reply.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::shared::redis_reply(data));
