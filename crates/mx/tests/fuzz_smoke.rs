//! Stable smoke fuzzing of the Authentication-Results stripper and value
//! quoting (the cargo-fuzz target is fuzz/fuzz_targets/mx_ar_strip.rs; the
//! properties are fuzz/src/mx.rs).

#[allow(dead_code)]
#[path = "../../../fuzz/src/mx.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

#[test]
fn authentication_results_stripper_keeps_its_properties() {
    let mutator = smoke::Mutator {
        special: b"\r\n\t ;:()\"\\",
        pieces: &[b"Authentication-Results:", b"mx.example.net", b"\r\n\r\n", b"\r\n\t", b"(", b")", b"\""],
    };
    smoke::smoke_with("mx_ar_strip", 30_000, 0xa125, &mutator, checks::ar_strip);
}
