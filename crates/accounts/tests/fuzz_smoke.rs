//! Stable smoke fuzzing of the import format (the cargo-fuzz target is
//! fuzz/fuzz_targets/import_line.rs; the properties are fuzz/src/accounts.rs).

#[allow(dead_code)]
#[path = "../../../fuzz/src/accounts.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

#[test]
fn import_lines_keep_their_properties() {
    smoke::smoke("import_line", 20_000, 0x1a2b, checks::import_line);
}
