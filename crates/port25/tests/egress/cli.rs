//! compile / check / diff through the binary: output bytes and exit codes.

use crate::{example_policy, BIN};
use std::process::Command;

#[test]
fn check_names_the_rule_and_exits_by_verdict() {
    let p = example_policy();
    let out =
        Command::new(BIN).args(["egress", "check", "--policy"]).arg(&p).args(["198.51.100.77", "25"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("198.51.100.77 -> TCP port 25: BLOCKED (reject with TCP reset)\n  rule: network \"residential-broadband\" (residential), prefix 198.51.100.0/24, policy line 62\n"), "{text}");

    let out = Command::new(BIN)
        .args(["egress", "check", "--policy"])
        .arg(&p)
        .args(["198.51.100.77", "587"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("port: 587 is not a blocked port and protected"));

    let out =
        Command::new(BIN).args(["egress", "check", "--policy"]).arg(&p).args(["198.51.100.25", "25"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("rule: exemption \"provider-mta\", prefix 198.51.100.25/32"));

    let out =
        Command::new(BIN).args(["egress", "check", "--policy"]).arg(&p).args(["2001:db8:200::9"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("network \"business-fibre\" (business)"));
}

#[test]
fn refused_policy_names_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[policy]\nblocked_ports = [25, 465]\n[[network]]\nname = \"r\"\nclass = \"residential\"\nprefixes = [\"10.0.0.0/8\"]\n").unwrap();
    let out = Command::new(BIN).args(["egress", "compile", "--policy"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "port25: {}:2:17: port 465 (submission over implicit TLS, RFC 8314) is protected",
            bad.display()
        )),
        "{err}"
    );
    assert!(err.contains("fix: remove it from blocked_ports"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn diff_lists_changed_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.toml");
    let new = dir.path().join("new.toml");
    std::fs::write(&old, "[[network]]\nname = \"r\"\nclass = \"residential\"\nprefixes = [\"10.0.0.0/16\"]\n").unwrap();
    std::fs::write(
        &new,
        "[[network]]\nname = \"r\"\nclass = \"residential\"\nprefixes = [\"10.0.0.0/16\", \"10.1.0.0/24\"]\n[[exempt]]\nname = \"mta\"\nprefixes = [\"10.0.0.25\"]\n",
    )
    .unwrap();
    let out = Command::new(BIN).args(["egress", "diff"]).arg(&old).arg(&new).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "- 10.0.0.25/32                                no longer blocked (network r -> exemption mta)\n\
         + 10.1.0.0/24                                 now blocked (no rule -> network r)\n"
    );
    let out = Command::new(BIN).args(["egress", "diff"]).arg(&old).arg(&old).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no address changes verdict\n");
}

#[test]
fn compile_writes_the_golden_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("e.nft");
    let out = Command::new(BIN)
        .args(["egress", "compile", "--policy"])
        .arg(example_policy())
        .args(["--target", "nftables", "--output"])
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../egress/tests/golden/example.nftables.nft");
    assert_eq!(std::fs::read_to_string(out_file).unwrap(), std::fs::read_to_string(golden).unwrap());
    let out = Command::new(BIN)
        .args(["egress", "compile", "--policy"])
        .arg(example_policy())
        .args(["--target", "pf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "unknown target \"pf\"; one of: nftables, nftables-json, ipset, iptables, ip6tables, cisco, juniper"
    ));
}
