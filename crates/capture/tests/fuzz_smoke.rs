//! Smoke fuzzing of the capture log reader on stable (properties in
//! fuzz/src/capture.rs, shared with the `capture_log` libFuzzer target;
//! generator shared with the spampot crate's smoke tests).

#[allow(dead_code)]
#[path = "../../../fuzz/src/capture.rs"]
mod checks;

#[path = "../../spampot/tests/support/smoke.rs"]
mod smoke;

#[test]
fn capture_log() {
    smoke::run("capture_log", 2000, checks::capture_log);
}
