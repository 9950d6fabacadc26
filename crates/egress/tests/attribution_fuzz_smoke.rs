//! Smoke fuzzing on stable, run by CI: deterministic mutants of the seeds in
//! fuzz/seeds/attribution_* (the shared mutator, fuzz/src/smoke.rs, aimed at
//! each format's framing) checked against the same properties as the
//! libFuzzer targets (fuzz/src/attribution.rs, included here). The real
//! fuzzing is `cargo fuzz run attribution_...` (see fuzz/README.md).

#[allow(dead_code)]
#[path = "../../../fuzz/src/attribution.rs"]
mod checks;

#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

use smoke::{smoke_with, Mutator};

const SPECIAL: &[u8] = b"\n\t =\",;{}:/.#\\0x5\xff";

#[test]
fn radius_detail_files() {
    let m = Mutator {
        special: SPECIAL,
        pieces: &[
            b"\tAcct-Status-Type = Stop\n",
            b"\tAcct-Status-Type = Start\n",
            b"\tTimestamp = 18446744073709551615\n",
            b"\tAcct-Delay-Time = 99999999999\n",
            b"\tFramed-IP-Address = ::ffff:1.2.3.4\n",
            b"\n\n",
            b"\\777",
            // The replay as read (the loader's) must equal the replay in
            // time order: resets, interims, sessions repeated and undone.
            b"\tAcct-Status-Type = Accounting-On\n",
            b"\tAcct-Status-Type = Interim-Update\n",
            b"\tNAS-IP-Address = 192.0.2.9\n",
            b"\tAcct-Session-Id = \"s1\"\n",
            b"\tTimestamp = 1764673205\n",
            b"\tAcct-Session-Time = 60\n",
        ],
    };
    smoke_with("attribution_radius", 20_000, 0x51_7c_c1_b7_27_22_0a_95, &m, checks::radius_detail);
}

#[test]
fn radacct_exports() {
    let m = Mutator { special: SPECIAL, pieces: &[b"\"", b"\"\"", b"+05:30", b"\\N", b",,", b"9999-12-31 23:59:60"] };
    smoke_with("attribution_radacct", 20_000, 0x2545_f491_4f6c_dd1f, &m, checks::radacct_csv);
}

#[test]
fn kea_lease_files() {
    let m = Mutator {
        special: SPECIAL,
        pieces: &[
            b"&#x2c",
            b",0,",
            b",2,",
            b",1,",
            b"18446744073709551615",
            b"{\"ISC\":{\"relay-agent-info\":\"0x02ff\"}}",
        ],
    };
    smoke_with("attribution_kea", 20_000, 0x9e37_79b9_7f4a_7c16, &m, checks::kea_leases);
}

#[test]
fn dhcpd_lease_files() {
    let m = Mutator {
        special: SPECIAL,
        pieces: &[
            b"lease 10.0.0.1 {\n",
            b"}\n",
            b"ends never;\n",
            b"binding state released;\n",
            b"starts epoch 18446744073709551615;\n",
            b"\"\\\"",
        ],
    };
    smoke_with("attribution_dhcpd", 20_000, 0xd1b5_4a32_d192_ed04, &m, checks::dhcpd_leases);
}

#[test]
fn cgnat_csv_files() {
    let m = Mutator {
        special: SPECIAL,
        pieces: &[b",allocate,", b",release,", b"65535", b"2025-11-24T16:00:00Z", b"::ffff:198.51.100.77"],
    };
    smoke_with("attribution_cgnat", 20_000, 0x8cb9_2ba7_2f3d_8dd9, &m, checks::cgnat_csv);
}

#[test]
fn dnsmasq_lease_files() {
    let m = Mutator { special: SPECIAL, pieces: &[b"duid ", b" * ", b"0 ", b"18446744073709551615 "] };
    smoke_with("attribution_dnsmasq", 20_000, 0x8cb9_2ba7_2f3d_8dd8, &m, checks::dnsmasq_leases);
}
