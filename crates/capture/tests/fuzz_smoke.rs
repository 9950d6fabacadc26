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

#[test]
fn fastview_agrees_with_serde() {
    let aim = smoke::Mutator {
        special: b"\"\\{}[],:0-.e\n",
        pieces: &[
            b"null",
            b"true",
            b"\"v\":1",
            b"\"rcpt_to\":[]",
            b"\"requested\":{\"host\":\"h\",\"port\":25}",
            b"\\u00e9",
            b"1e5",
        ],
    };
    smoke::smoke_with("capture_fastview", 20_000, 0x5a4f_0007, &aim, checks::fastview);
}
