//! Smoke fuzzing on stable, run by CI: the seeds in fuzz/seeds/mta_sts
//! (the first byte picks policy file, HTTP answer or TXT records) mutated
//! 20,000 times by the shared mutator (fuzz/src/smoke.rs), aimed with the
//! policy's and HTTP's punctuation and keys. The properties are the
//! libFuzzer target's, from fuzz/src/mta_sts.rs, included here. The real
//! fuzzing is `cargo fuzz run mta_sts`.

#[allow(dead_code)]
#[path = "../../../fuzz/src/mta_sts.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

use smoke::Mutator;

const MUTATOR: Mutator = Mutator {
    special: b":;=*. \t\r\n\0\xc3\xa9\xff",
    pieces: &[
        b"version: STSv1\n",
        b"mode: enforce\n",
        b"mode: none\n",
        b"mx: *.",
        b"max_age: ",
        b"\r\n\r\n",
        b"Content-Length: ",
        b"Content-Type: text/plain\r\n",
        b"v=STSv1; id=",
    ],
};

#[test]
fn mutated_policies_answers_and_records() {
    smoke::smoke_with("mta_sts", 20_000, 0x5eed_0575, &MUTATOR, checks::check);
}
