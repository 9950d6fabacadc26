//! Smoke fuzzing on stable, run by CI: the properties of the libFuzzer
//! targets (fuzz/src/spampot.rs, included below) checked on the seeds in
//! fuzz/seeds/, on every truncation and single-byte edit of each seed, and
//! on pseudo-random mutants. The real fuzzing is `cargo fuzz run socks5`
//! etc. (fuzz/README.md).

#[allow(dead_code)]
#[path = "../../../fuzz/src/spampot.rs"]
mod checks;

#[path = "support/smoke.rs"]
mod smoke;

#[test]
fn socks4() {
    smoke::run("socks4", 3000, checks::socks4);
}

#[test]
fn socks5() {
    smoke::run("socks5", 3000, checks::socks5);
}

#[test]
fn http_proxy() {
    smoke::run("http_proxy", 3000, checks::http_proxy);
}

#[test]
fn sniff() {
    smoke::run("sniff", 500, checks::sniff);
}
