//! Stable smoke fuzzing of the AUTH parsers (the cargo-fuzz target is
//! fuzz/fuzz_targets/sasl.rs; the properties are fuzz/src/sasl.rs).

#[allow(dead_code)]
#[path = "../../../fuzz/src/sasl.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

#[test]
fn sasl_parsers_keep_their_properties() {
    smoke::smoke("sasl", 20_000, 0x5a51, checks::sasl);
}
