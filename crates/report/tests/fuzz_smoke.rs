//! Stable smoke fuzzing of the report's parsers (the cargo-fuzz targets are
//! fuzz/fuzz_targets/report_*.rs; the properties are fuzz/src/report.rs).

#[allow(dead_code)]
#[path = "../../../fuzz/src/report.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

#[test]
fn range_files() {
    smoke::smoke("report_ranges", 5_000, 0x5e01, checks::ranges);
}

#[test]
fn pfx2as_files() {
    smoke::smoke("report_pfx2as", 5_000, 0x5e02, checks::pfx2as);
}

#[test]
fn ip4set_lines() {
    smoke::smoke("report_ip4set", 5_000, 0x5e03, checks::ip4set);
}

#[test]
fn abuse_reports() {
    smoke::smoke("report_complaint", 5_000, 0x5e04, checks::complaint);
}

#[test]
fn mbox_streams() {
    let aim = smoke::Mutator { special: b"\n\r>F ", pieces: &[b"From ", b"\n\nFrom ", b">From ", b"\r\n"] };
    smoke::smoke_with("report_mbox", 5_000, 0x5e06, &aim, checks::mbox);
}

#[test]
fn dates() {
    smoke::smoke("report_dates", 20_000, 0x5e05, checks::dates);
}

#[test]
fn cbl_snapshots() {
    let aim = smoke::Mutator {
        special: b"<>,\n\"",
        pieces: &[b"<tr>", b"<td>", b"</td>", b"<th>", b"Listings", b"Country", b"ASN", b"AS??", b","],
    };
    smoke::smoke_with("report_cbl", 5_000, 0x5e07, &aim, checks::cbl);
}
