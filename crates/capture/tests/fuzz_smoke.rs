//! Smoke fuzzing of the capture log reader on stable: the properties of
//! the `capture_log` libFuzzer target (fuzz/src/capture.rs) on its seeds
//! and deterministic mutants (fuzz/src/smoke.rs).

#[allow(dead_code)]
#[path = "../../../fuzz/src/capture.rs"]
mod checks;

#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

#[test]
fn capture_log() {
    smoke::smoke("capture_log", 3000, 0x5a4f_0005, checks::capture_log);
}

#[test]
fn body_paths() {
    smoke::smoke("capture_body_path", 5000, 0x5a4f_0006, checks::body_path);
}
