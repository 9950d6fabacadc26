//! Stable smoke fuzzing of the HTTP side's parsers (the cargo-fuzz targets
//! are fuzz/fuzz_targets/http_*.rs; the properties are fuzz/src/http.rs).

#[allow(dead_code)]
#[path = "../../../fuzz/src/http.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

#[test]
fn autodiscover_requests_keep_their_properties() {
    smoke::smoke("http_autodiscover", 20_000, 0x7a11, checks::http_autodiscover);
}

#[test]
fn emailaddress_parameters_keep_their_properties() {
    smoke::smoke("http_emailaddress", 20_000, 0x3e4d, checks::http_emailaddress);
}

#[test]
fn captured_subjects_never_panic() {
    smoke::smoke("http_subject", 20_000, 0x5b1e, checks::http_subject);
}
