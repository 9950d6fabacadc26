//! Golden files: the exact bytes each compiler produces for two policies
//! (the documented dist/egress.toml and golden/edge.toml). A change in
//! output is a change operators see in their routers, so it must show up in
//! review. Regenerate with `UPDATE_GOLDEN=1 cargo test -p port25-egress --test golden`.

use port25_egress::compile::{compile, Target};
use port25_egress::policy;
use std::path::Path;

fn check(policy_file: &Path, stem: &str) {
    let p = policy::load(policy_file).unwrap_or_else(|e| panic!("{e}"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut mismatched = Vec::new();
    for (name, target) in Target::ALL {
        let ext = match target {
            Target::Nftables => "nft",
            Target::NftablesJson => "json",
            _ => "txt",
        };
        let file = dir.join(format!("{stem}.{name}.{ext}"));
        let got = compile(&p, *target);
        // Deterministic: the same policy compiles to the same bytes twice.
        assert_eq!(got, compile(&p, *target));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&file, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", file.display()));
        if got != want {
            mismatched.push(file.display().to_string());
            eprintln!("--- {}\n+++ got\n{got}", file.display());
        }
    }
    assert!(mismatched.is_empty(), "output differs from golden files: {mismatched:?}");
}

#[test]
fn documented_example() {
    check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/egress.toml"), "example");
}

#[test]
fn edge_cases() {
    check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/edge.toml"), "edge");
}
