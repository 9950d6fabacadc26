//! Stable smoke fuzzing of the screen's parsers (the cargo-fuzz targets are
//! fuzz/fuzz_targets/screen_*.rs; the properties are fuzz/src/screen.rs).

#[allow(dead_code)]
#[path = "../../../fuzz/src/screen.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

#[test]
fn reverse_dns_names() {
    let aim = smoke::Mutator {
        special: b".-_0123456789",
        pieces: &[b"dyn", b"pool", b"dsl-", b"192-0-2-7", b"c0000207", b".isp.example", b"\xc3\xa9"],
    };
    smoke::smoke_with("screen_rdns", 20_000, 0x5c01, &aim, checks::rdns);
}

#[test]
fn dnsbl_answers() {
    let aim = smoke::Mutator {
        special: b"\x7f\xff\x00\x01\x02\x0a-./",
        pieces: &[b"\x7f\xff\xff\xfe", b"\x7f\x00\x00\x02", b"127.0.0.", b"-11", b"/24"],
    };
    smoke::smoke_with("screen_dnsbl", 20_000, 0x5c02, &aim, checks::dnsbl);
}
