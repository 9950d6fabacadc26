//! Smoke fuzzing on stable, run by CI: the seeds in fuzz/seeds/smtp_reply
//! and fuzz/seeds/outbound_state, mutated deterministically by the shared
//! mutator (fuzz/src/smoke.rs, aimed with reply-code bytes), through the
//! libFuzzer targets' property checks (fuzz/src/outbound.rs, included).
//! The real fuzzing is `cargo fuzz run smtp_reply` / `outbound_state`.

#[path = "../../../fuzz/src/outbound.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

use smoke::Mutator;

const SPECIAL: &[u8] = b"\r\n -\t0123456789\xff\xc3";
const MUTATOR: Mutator = Mutator { special: SPECIAL, pieces: &[] };

#[test]
fn smtp_reply_seeds_and_mutants() {
    smoke::smoke_with("smtp_reply", 20_000, 0x9E37_79B9_7F4A_7C15, &MUTATOR, checks::smtp_reply);
}

#[test]
fn outbound_state_seeds_and_mutants() {
    smoke::smoke_with("outbound_state", 20_000, 0x9E37_79B9_7F4A_7C15, &MUTATOR, checks::state_records);
}

#[test]
fn dkim_from_domain_seeds_and_mutants() {
    const HEADERS: Mutator = Mutator {
        special: b"\r\n :<>@\"(),\\\t\xff\xc3\x89\xe2",
        pieces: &[b"From:", b"\r\n ", b"=?UTF-8?B?w4k=?=", b"\xc3\x89"],
    };
    smoke::smoke_with("outbound_dkim_from", 20_000, 0x9E37_79B9_7F4A_7C15, &HEADERS, checks::dkim_from);
}
