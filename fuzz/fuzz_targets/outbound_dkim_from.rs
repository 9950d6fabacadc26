//! The DKIM signer's From: domain: port25_outbound::dkim::from_domain.
//! Properties: see port25_fuzz::outbound::dkim_from.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| port25_fuzz::outbound::dkim_from(data));
