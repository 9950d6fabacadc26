//! Smoke fuzzing on stable, run by CI: the properties of the libFuzzer
//! targets (fuzz/src/spampot.rs) on the seeds in fuzz/seeds/ and on
//! deterministic mutants (fuzz/src/smoke.rs). The real fuzzing is
//! `cargo fuzz run socks5` etc. (fuzz/README.md).

#[allow(dead_code)]
#[path = "../../../fuzz/src/spampot.rs"]
mod checks;

#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;

#[test]
fn socks4() {
    smoke::smoke("socks4", 5000, 0x5a4f_0001, checks::socks4);
}

#[test]
fn socks5() {
    smoke::smoke("socks5", 5000, 0x5a4f_0002, checks::socks5);
}

#[test]
fn http_proxy() {
    smoke::smoke("http_proxy", 5000, 0x5a4f_0003, checks::http_proxy);
}

#[test]
fn sniff() {
    smoke::smoke("sniff", 1000, 0x5a4f_0004, checks::sniff);
}

#[test]
fn sensor_config() {
    smoke::smoke("sensor_config", 5000, 0x5a4f_0007, checks::sensor_config);
}
