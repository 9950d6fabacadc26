//! The compiled rulesets in a real kernel: a subscriber on a residential
//! prefix cannot reach a remote MX on port 25, everyone else can, the
//! protected ports pass, IPv6 behaves the same, and the counters count.

use crate::netns::Net;
use crate::{example_policy, require, BIN};
use std::process::Command;

const MX4: &str = "100.64.25.25";
const MX6: &str = "2001:db8:ffff::25";
const MTA4: &str = "198.51.100.25";
const MTA6: &str = "2001:db8:100::25";

fn compile(policy: &std::path::Path, target: &str) -> String {
    let out = Command::new(BIN)
        .args(["egress", "compile", "--policy"])
        .arg(policy)
        .args(["--target", target])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `name` keeps the namespaces of tests that run at the same time apart.
fn network(name: &str) -> Net {
    let mut net = Net::build(name);
    net.listen("mx", &[25, 80]);
    net.listen("mta", &[25, 587, 465]);
    net
}

/// Before any ruleset: every path is open (so a later "refused" is the
/// ruleset's doing, not a broken topology).
fn assert_all_open(net: &Net) {
    for (from, to, port) in [("sub", MX4, 25), ("sub", MX6, 25), ("biz", MX4, 25), ("mta", MX6, 25)] {
        assert_eq!(net.probe(from, to, port, 3.0), "open", "baseline {from} -> {to}:{port}");
    }
}

/// The behaviour the policy promises, for a ruleset already loaded.
/// `blocked` is what a blocked attempt looks like ("refused" for reject).
fn assert_policy_enforced(net: &Net, blocked: &str) {
    for mx in [MX4, MX6] {
        assert_eq!(net.probe("sub", mx, 25, 1.5), blocked, "residential -> remote {mx}:25 must be blocked");
        assert_eq!(net.probe("sub", mx, 80, 3.0), "open", "residential -> remote {mx}:80 (protected) must pass");
        assert_eq!(net.probe("mta", mx, 25, 3.0), "open", "provider MTA -> remote {mx}:25 must pass (exempt)");
        assert_eq!(net.probe("biz", mx, 25, 3.0), "open", "business -> remote {mx}:25 must pass");
    }
    for mta in [MTA4, MTA6] {
        for port in [587, 465] {
            assert_eq!(net.probe("sub", mta, port, 3.0), "open", "residential -> provider {mta}:{port} must pass");
        }
    }
}

fn nft_counter(net: &Net, name: &str) -> u64 {
    let out = net.exec("router", &["nft", "-j", "list", "counter", "inet", "port25_egress", name]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["nftables"].as_array().unwrap().iter().find_map(|o| o.get("counter")).unwrap()["packets"].as_u64().unwrap()
}

#[test]
fn nftables_ruleset_enforces_the_policy_in_the_kernel() {
    require("nft");
    let net = network("n");
    assert_all_open(&net);
    net.exec_stdin("router", &["nft", "-f", "-"], &compile(&example_policy(), "nftables"));
    assert_policy_enforced(&net, "refused");
    // Each blocked attempt above was one SYN answered by a reset: the
    // blocked counters hold exactly those.
    assert_eq!(nft_counter(&net, "blocked_v4"), 1);
    assert_eq!(nft_counter(&net, "blocked_v6"), 1);
    for _ in 0..4 {
        assert_eq!(net.probe("sub", MX4, 25, 1.5), "refused");
    }
    assert_eq!(nft_counter(&net, "blocked_v4"), 5);
    // Exempt traffic to port 25 (MTA and business, whole connections) is counted apart.
    assert!(nft_counter(&net, "exempt_v4") >= 2);
    assert!(nft_counter(&net, "exempt_v6") >= 2);

    // Loading again replaces the table atomically (no duplicate rules, counters reset).
    net.exec_stdin("router", &["nft", "-f", "-"], &compile(&example_policy(), "nftables"));
    let rules = net.exec("router", &["nft", "list", "chain", "inet", "port25_egress", "forward"]);
    assert_eq!(rules.matches("reject with tcp reset").count(), 2, "{rules}");
    assert_eq!(nft_counter(&net, "blocked_v4"), 0);
}

#[test]
fn nftables_json_form_loads_the_same_ruleset() {
    require("nft");
    let net = Net::build("j");
    let policy = example_policy();
    net.exec_stdin("router", &["nft", "-f", "-"], &compile(&policy, "nftables"));
    let from_text = net.exec("router", &["nft", "list", "table", "inet", "port25_egress"]);
    net.exec("router", &["nft", "delete", "table", "inet", "port25_egress"]);
    net.exec_stdin("router", &["nft", "-j", "-f", "-"], &compile(&policy, "nftables-json"));
    let from_json = net.exec("router", &["nft", "list", "table", "inet", "port25_egress"]);
    assert_eq!(from_text, from_json);
    assert!(from_text.contains("198.51.100.0/24"));
}

#[test]
fn drop_action_makes_attempts_time_out() {
    require("nft");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("drop.toml");
    let text = std::fs::read_to_string(example_policy()).unwrap().replace("action = \"reject\"", "action = \"drop\"");
    std::fs::write(&policy, text).unwrap();
    let mut net = Net::build("d");
    net.listen("mx", &[25, 80]);
    net.listen("mta", &[25, 587, 465]);
    net.exec_stdin("router", &["nft", "-f", "-"], &compile(&policy, "nftables"));
    assert_policy_enforced(&net, "timeout");
    // A dropped SYN is retransmitted within the 1.5 s probe: at least one counted.
    assert!(nft_counter(&net, "blocked_v4") >= 1);
}

fn iptables_packets(net: &Net, cmd: &str, target: &str) -> u64 {
    let out = net.exec("router", &[cmd, "-L", "port25_egress", "-v", "-n", "-x"]);
    let line = out.lines().find(|l| l.contains(target)).unwrap_or_else(|| panic!("no {target} rule in\n{out}"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn iptables_and_ipset_enforce_the_policy_in_the_kernel() {
    require("iptables-restore");
    require("ip6tables-restore");
    require("ipset");
    let net = network("i");
    assert_all_open(&net);
    let policy = example_policy();
    net.exec_stdin("router", &["ipset", "restore", "-exist"], &compile(&policy, "ipset"));
    net.exec_stdin("router", &["iptables-restore", "--noflush"], &compile(&policy, "iptables"));
    net.exec_stdin("router", &["ip6tables-restore", "--noflush"], &compile(&policy, "ip6tables"));
    net.exec("router", &["iptables", "-I", "FORWARD", "-j", "port25_egress"]);
    net.exec("router", &["ip6tables", "-I", "FORWARD", "-j", "port25_egress"]);
    assert_policy_enforced(&net, "refused");
    assert_eq!(iptables_packets(&net, "iptables", "REJECT"), 1);
    assert_eq!(iptables_packets(&net, "ip6tables", "REJECT"), 1);
    assert!(iptables_packets(&net, "iptables", "ACCEPT") >= 2);
    // Reloading is idempotent: same rules, one copy.
    net.exec_stdin("router", &["ipset", "restore", "-exist"], &compile(&policy, "ipset"));
    net.exec_stdin("router", &["iptables-restore", "--noflush"], &compile(&policy, "iptables"));
    let rules = net.exec("router", &["iptables", "-S", "port25_egress"]);
    assert_eq!(rules.matches("-j REJECT").count(), 1, "{rules}");
    assert_eq!(net.probe("sub", MX4, 25, 1.5), "refused");
}
