//! Stable smoke fuzzing of the header scan (the cargo-fuzz target is
//! fuzz/fuzz_targets/mail_headers.rs; the properties are fuzz/src/submission.rs).

#[allow(dead_code)]
#[path = "../../../fuzz/src/submission.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

#[test]
fn header_scan_keeps_its_properties() {
    smoke::smoke("mail_headers", 20_000, 0x6409, checks::mail_headers);
}
