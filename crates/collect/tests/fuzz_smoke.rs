//! Smoke fuzzing of the shipping parsers on stable: the properties of the
//! libFuzzer targets (fuzz/src/collect.rs) on their seeds and deterministic
//! mutants (fuzz/src/smoke.rs).

#[allow(dead_code)]
#[path = "../../../fuzz/src/collect.rs"]
mod checks;

#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

#[test]
fn collect_http() {
    smoke::smoke("collect_http", 4000, 0x5a4f_0006, checks::collect_http);
}

#[test]
fn collect_append() {
    smoke::smoke("collect_append", 4000, 0x5a4f_0007, checks::collect_append);
}

#[test]
fn hpfeeds_frame() {
    smoke::smoke("hpfeeds_frame", 4000, 0x5a4f_0008, checks::hpfeeds_frame);
}
