//! Property checks for port25's parsers, shared by the libFuzzer targets in
//! `fuzz_targets/` and the stable smoke tests in `crates/*/tests/fuzz_smoke.rs`
//! (which include these module files with `#[path]`, so CI checks exactly the
//! properties the fuzzer checks). Every function panics when a property is
//! violated; that panic is what libFuzzer reports as a crash.
//!
//! Each module only uses `std` and the one port25 crate it checks (and
//! that crate's own port25 dependencies: engine.rs uses port25_wire), so it
//! compiles inside that crate's integration tests as well.

pub mod capture;
pub mod collect;
pub mod config;
pub mod engine;
pub mod queue;
pub mod spampot;

// --- submission ---
pub mod accounts;
pub mod directory;
pub mod sasl;
pub mod smoke;
pub mod submission;

// --- outbound ---
pub mod outbound;

// --- report ---
pub mod report;

// --- abuse ---
pub mod abuse;

// --- http ---
pub mod http;

// --- dnscheck ---
pub mod dnscheck;
// --- wire: MTA-STS ---
pub mod mta_sts;

// --- shared (issue 16) ---
pub mod shared;
// --- mx ---
pub mod mx;
// --- screen ---
pub mod screen;
