//! The staged rollout in a real kernel: the residential network in
//! `mode = "monitor"` with an enforce_from date. Compiled for a time before
//! the date, its subscriber still reaches a remote MX on port 25 while the
//! attempt is counted and logged (nftables counter + `log group 25`, read
//! back from the nflog group with tcpdump; iptables count rule + LOG);
//! compiled for the date, the same attempt is refused.

use crate::netns::Net;
use crate::{require, BIN};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const MX4: &str = "100.64.25.25";
const MX6: &str = "2001:db8:ffff::25";
const BEFORE: &str = "2029-06-01T00:00:00Z";
const FROM: &str = "2030-01-01T00:00:00Z";

fn compile(policy: &std::path::Path, target: &str, at: &str) -> String {
    let out = Command::new(BIN)
        .args(["egress", "compile", "--policy"])
        .arg(policy)
        .args(["--target", target, "--at", at])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn nft_counter(net: &Net, name: &str) -> u64 {
    let out = net.exec("router", &["nft", "-j", "list", "counter", "inet", "port25_egress", name]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["nftables"].as_array().unwrap().iter().find_map(|o| o.get("counter")).unwrap()["packets"].as_u64().unwrap()
}

#[test]
fn monitored_network_is_counted_and_logged_to_nflog_then_enforced_from_its_date() {
    require("nft");
    require("tcpdump");
    let dir = tempfile::tempdir().unwrap();
    let policy = crate::staged_policy(dir.path(), FROM);
    let mut net = Net::build("m");
    net.listen("mx", &[25, 80]);
    net.listen("mta", &[25, 587, 465]);
    let ruleset = compile(&policy, "nftables", BEFORE);
    assert!(ruleset.contains("log prefix \"port25-monitor: \" group 25"), "{ruleset}");
    net.exec_stdin("router", &["nft", "-f", "-"], &ruleset);

    // Read the nflog group the monitor rules log to, as ulogd2 would.
    let cap = dir.path().join("nflog.pcap");
    let mut tcpdump = Command::new("ip")
        .args(["netns", "exec", &net.ns("router"), "tcpdump", "-Z", "root", "-i", "nflog:25", "-U", "-w"])
        .arg(&cap)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(tcpdump.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("listening on nflog:25"), "{line}");
    std::thread::sleep(Duration::from_millis(700));

    // No verdict: the subscriber's port-25 connections go through...
    assert_eq!(net.probe("sub", MX4, 25, 3.0), "open", "monitored residential -> {MX4}:25 must pass");
    assert_eq!(net.probe("sub", MX6, 25, 3.0), "open", "monitored residential -> {MX6}:25 must pass");
    // ...counted (SYN and the rest of each connection's forward packets)...
    assert!(nft_counter(&net, "monitor_v4") >= 1);
    assert!(nft_counter(&net, "monitor_v6") >= 1);
    assert_eq!(nft_counter(&net, "blocked_v4"), 0);
    // ...and logged to nflog group 25 (tcpdump -U writes each packet as it
    // comes: read the capture until both families are there, 10 s at most).
    let seen = |t: &str| t.contains(&format!("> {MX4}.25:")) && t.contains(&format!("> {MX6}.25:"));
    let mut logged = String::new();
    for _ in 0..50 {
        let out = Command::new("tcpdump").args(["-n", "-r"]).arg(&cap).output().unwrap();
        logged = String::from_utf8_lossy(&out.stdout).into_owned();
        if seen(&logged) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    crate::must("kill", &["-INT", &tcpdump.id().to_string()]);
    tcpdump.wait().unwrap();
    assert!(logged.contains("198.51.100.77.") && logged.contains(&format!("> {MX4}.25:")), "{logged}");
    assert!(logged.contains("2001:db8:100:1::77.") && logged.contains(&format!("> {MX6}.25:")), "{logged}");

    // egress check says so (the date is in the future today).
    let out = Command::new(BIN)
        .args(["egress", "check", "--policy"])
        .arg(&policy)
        .args(["198.51.100.77", "25"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("MONITORED") && text.contains(&format!("enforced from {FROM}")), "{text}");

    // Compiled for the date: the same attempt is refused.
    let ruleset = compile(&policy, "nftables", FROM);
    assert!(!ruleset.contains("@monitor_v4"), "{ruleset}");
    net.exec_stdin("router", &["nft", "-f", "-"], &ruleset);
    assert_eq!(net.probe("sub", MX4, 25, 1.5), "refused");
    assert_eq!(net.probe("sub", MX6, 25, 1.5), "refused");
    assert_eq!(net.probe("sub", MX4, 80, 3.0), "open");
}

fn iptables_packets(net: &Net, comment: &str) -> u64 {
    let out = net.exec("router", &["iptables", "-L", "port25_egress", "-v", "-n", "-x"]);
    let line = out.lines().find(|l| l.contains(comment)).unwrap_or_else(|| panic!("no {comment} rule in\n{out}"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn monitored_network_passes_and_is_counted_with_iptables() {
    require("iptables-restore");
    require("ipset");
    let dir = tempfile::tempdir().unwrap();
    let policy = crate::staged_policy(dir.path(), FROM);
    let mut net = Net::build("mi");
    net.listen("mx", &[25]);
    net.exec_stdin("router", &["ipset", "restore", "-exist"], &compile(&policy, "ipset", BEFORE));
    net.exec_stdin("router", &["iptables-restore", "--noflush"], &compile(&policy, "iptables", BEFORE));
    net.exec("router", &["iptables", "-I", "FORWARD", "-j", "port25_egress"]);
    assert_eq!(net.probe("sub", MX4, 25, 3.0), "open");
    assert!(iptables_packets(&net, "monitor: count") >= 1);
    assert!(iptables_packets(&net, "LOG") >= 1);
    assert_eq!(iptables_packets(&net, "REJECT"), 0);
    // Compiled for the date: the restore replaces the chain's rules and the blocked set grows.
    net.exec_stdin("router", &["ipset", "restore", "-exist"], &compile(&policy, "ipset", FROM));
    net.exec_stdin("router", &["iptables-restore", "--noflush"], &compile(&policy, "iptables", FROM));
    assert_eq!(net.probe("sub", MX4, 25, 1.5), "refused");
    assert_eq!(iptables_packets(&net, "REJECT"), 1);
}
