//! Stable smoke fuzzing of the abuse desk's parsers (the cargo-fuzz targets
//! are fuzz/fuzz_targets/abuse_*.rs; the properties are fuzz/src/abuse.rs).

#[allow(dead_code)]
#[path = "../../../fuzz/src/abuse.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

#[test]
fn abuse_reports() {
    smoke::smoke("abuse_report", 5_000, 0xab01, checks::report);
}

#[test]
fn trace_times() {
    smoke::smoke("abuse_time", 5_000, 0xab02, checks::time);
}
