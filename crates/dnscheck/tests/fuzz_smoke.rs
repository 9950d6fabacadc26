//! Smoke fuzzing on stable, run by CI: the seed TXT records in
//! fuzz/seeds/dnscheck_txt mutated 20,000 times by the shared mutator
//! (fuzz/src/smoke.rs) aimed with tag-list and SPF punctuation, and read.
//! The properties are the libFuzzer target's, from fuzz/src/dnscheck.rs,
//! included here. The real fuzzing is `cargo fuzz run dnscheck_txt`.

#[allow(dead_code)]
#[path = "../../../fuzz/src/dnscheck.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

use smoke::Mutator;

const MUTATOR: Mutator = Mutator {
    special: b";= \t\r\n\"\\:.,~+-?\0\x1b\xc3\xa9\xff",
    pieces: &[
        b"v=DMARC1",
        b"v=spf1 ",
        b"v=DKIM1",
        b"p=",
        b"rua=mailto:",
        b" -all",
        b"redirect=",
        b"include:",
        b"ip4:192.0.2.1",
        b";;",
        b"==",
    ],
};

#[test]
fn mutated_txt_records() {
    smoke::smoke_with("dnscheck_txt", 20_000, 0x5eed_d115, &MUTATOR, checks::txt);
}
