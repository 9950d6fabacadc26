//! `egress plan` over flows that softflowd exported and nfcapd stored,
//! with the residential network in `mode = "monitor"`, and the provider's
//! readiness as a report signed with `port25 migration sign`:
//! - the spambots are classified bots, the client that tries its
//!   provider's submission host on 25 a mail client of that provider, with
//!   the evidence; the network is NOT READY, naming the client and the
//!   provider's share below 90 %; the exit status says so;
//! - a tampered report is refused (verify exits 1, plan stops);
//! - with only bots seen, the network is READY TO ENFORCE (exit 0).

use crate::flows::{traffic, Traffic, T0};
use crate::{must, BIN};
use std::path::Path;
use std::process::Command;

const PROVIDERS: &str = r#"[[provider]]
name = "example-mail"
hosts = ["100.64.200.1"]
submission = "smtp.example-mail.test"
domains = ["example-mail.test"]
autoconfig = "https://autoconfig.example-mail.test/mail/config-v1.1.xml"
"#;

/// The report `port25 migration report --json` prints, for one domain.
fn migration_report(share: f64) -> String {
    let active = 100;
    let only = share as u64;
    format!(
        "{{\"all_met\":{},\"days\":30,\"domains\":[{{\"active\":{active},\"domain\":\"example-mail.test\",\"share\":{share:.1},\"still_on_25\":[],\"submission_only\":{only},\"threshold_met\":{}}}],\"threshold\":90.0}}\n",
        share >= 90.0,
        share >= 90.0
    )
}

fn plan(policy: &Path, flows: &Path, providers: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(BIN)
        .args(["egress", "plan", "--policy"])
        .arg(policy)
        .arg("--providers")
        .arg(providers)
        .arg("--nfcapd")
        .arg(flows)
        .args(["--at", "2029-06-01T00:00:00Z", "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), v, err)
}

fn network<'a>(plan: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    plan["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["network"] == name)
        .unwrap_or_else(|| panic!("no {name} in {plan}"))
}

#[test]
fn plan_classifies_subscribers_and_gates_the_network_on_signed_readiness() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let policy = crate::staged_policy(w, "2030-01-01T00:00:00Z");
    let providers = w.join("providers.toml");
    std::fs::write(&providers, PROVIDERS).unwrap();
    let pcap = w.join("traffic.pcap");
    std::fs::write(&pcap, traffic().pcap()).unwrap();
    let flows = w.join("flows");
    crate::nfcapd::store(&pcap, &flows);

    // The provider signs its report; the access network verifies it.
    let key = w.join("example-mail.key");
    must(BIN, &["migration", "keygen", "--out", key.to_str().unwrap(), "--signer", "example-mail"]);
    let pubkey = w.join("example-mail.key.pub");
    let report = w.join("report.json");
    std::fs::write(&report, migration_report(72.0)).unwrap();
    let signed = w.join("report.signed.json");
    std::fs::write(
        &signed,
        must(BIN, &["migration", "sign", "--key", key.to_str().unwrap(), report.to_str().unwrap()]),
    )
    .unwrap();
    let good = must(BIN, &["migration", "verify", "--key", pubkey.to_str().unwrap(), signed.to_str().unwrap()]);
    assert!(good.starts_with("good signature by example-mail at "), "{good}");

    let (code, v, err) = plan(
        &policy,
        &flows,
        &providers,
        &["--readiness", signed.to_str().unwrap(), "--key", pubkey.to_str().unwrap()],
    );
    assert_eq!(code, Some(1), "{err}\n{v}");
    let res = network(&v, "residential-broadband");
    assert_eq!((res["mode_now"].as_str(), res["verdict"].as_str()), (Some("monitor"), Some("not ready")), "{res}");
    let kind = |addr: &str| {
        res["subscribers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["address"] == addr)
            .unwrap_or_else(|| panic!("{addr} in {res}"))
            .clone()
    };
    assert_eq!(kind("198.51.100.77")["kind"], "bot");
    assert!(
        kind("198.51.100.77")["evidence"].as_str().unwrap().contains("distinct destinations within one window"),
        "{res}"
    );
    assert_eq!(kind("2001:db8:100:1::/64")["kind"], "bot");
    let client = kind("198.51.100.8");
    assert_eq!(
        (client["kind"].as_str(), client["provider"].as_str()),
        (Some("mail-client"), Some("example-mail")),
        "{client}"
    );
    assert!(
        client["evidence"].as_str().unwrap().contains("100.64.200.1 x3 (example-mail submission host)"),
        "{client}"
    );
    let blockers: Vec<&str> = res["blockers"].as_array().unwrap().iter().map(|b| b.as_str().unwrap()).collect();
    assert!(
        blockers.iter().any(|b| b.starts_with("1 mail client(s) still on port 25 (example-mail: 1)")),
        "{blockers:?}"
    );
    assert!(
        blockers.iter().any(|b| b.starts_with("provider example-mail: only 72.0% of its users on 587/465, below 90%")),
        "{blockers:?}"
    );
    // The enforced networks are reported as such.
    assert_eq!(network(&v, "dynamic-dialup")["verdict"], "enforcing");

    // The table form says the same for a person.
    let out = Command::new(BIN)
        .args(["egress", "plan", "--policy"])
        .arg(&policy)
        .arg("--providers")
        .arg(&providers)
        .arg("--nfcapd")
        .arg(&flows)
        .args(["--at", "2029-06-01T00:00:00Z"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "network residential-broadband (residential): mode monitor, enforce from 2030-01-01T00:00:00Z: NOT READY"
        ),
        "{text}"
    );
    assert!(text.contains("  mail-client  198.51.100.8 of example-mail: "), "{text}");

    // A report changed after signing is refused, by verify and by plan.
    let tampered = w.join("tampered.json");
    std::fs::write(&tampered, std::fs::read_to_string(&signed).unwrap().replace("72.0", "95.0")).unwrap();
    let out = Command::new(BIN).args(["migration", "verify", "--key"]).arg(&pubkey).arg(&tampered).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("BAD signature"), "{}", String::from_utf8_lossy(&out.stdout));
    let (code, _, err) = plan(
        &policy,
        &flows,
        &providers,
        &["--readiness", tampered.to_str().unwrap(), "--key", pubkey.to_str().unwrap()],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("BAD signature"), "{err}");
    // So is one whose signing time was changed.
    let signed_text = std::fs::read_to_string(&signed).unwrap();
    let v: serde_json::Value = serde_json::from_str(&signed_text).unwrap();
    let redated = w.join("redated.json");
    std::fs::write(&redated, signed_text.replace(v["signed_at"].as_str().unwrap(), "2031-01-01T00:00:00Z")).unwrap();
    let out = Command::new(BIN).args(["migration", "verify", "--key"]).arg(&pubkey).arg(&redated).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    // Another provider's key does not vouch for example-mail.
    let other = w.join("other.key");
    must(BIN, &["migration", "keygen", "--out", other.to_str().unwrap(), "--signer", "other-mail"]);
    let (code, _, err) = plan(
        &policy,
        &flows,
        &providers,
        &["--readiness", signed.to_str().unwrap(), "--key", &format!("{}.pub", other.display())],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("whose key was not given"), "{err}");
}

#[test]
fn network_with_only_bots_on_25_is_ready_to_enforce() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let policy = crate::staged_policy(w, "2030-01-01T00:00:00Z");
    let providers = w.join("providers.toml");
    std::fs::write(&providers, PROVIDERS).unwrap();
    let mut t = Traffic { packets: Vec::new() };
    for i in 0..30u32 {
        t.attempt(T0 + i * 5, "198.51.100.77", &format!("100.64.{}.25", i + 1), 40000 + i as u16, 25);
    }
    // Submission to the provider on 587 is what migrated clients do: not port 25, not counted.
    t.attempt(T0 + 7, "198.51.100.8", "100.64.200.1", 41000, 587);
    let pcap = w.join("bots.pcap");
    std::fs::write(&pcap, t.pcap()).unwrap();
    let flows = w.join("flows");
    crate::nfcapd::store(&pcap, &flows);
    let (code, v, err) = plan(&policy, &flows, &providers, &[]);
    assert_eq!(code, Some(0), "{err}\n{v}");
    let res = network(&v, "residential-broadband");
    assert_eq!(res["verdict"], "ready to enforce", "{res}");
    assert_eq!(
        (res["bots"].as_u64(), res["mail_clients"].as_u64(), res["unclassified"].as_u64()),
        (Some(1), Some(0), Some(0))
    );
    assert!(res["blockers"].as_array().unwrap().is_empty());
}

#[test]
fn open_proxy_is_listed_apart_from_bots_with_inbound_evidence() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let policy = crate::staged_policy(w, "2030-01-01T00:00:00Z");
    let providers = w.join("providers.toml");
    std::fs::write(&providers, PROVIDERS).unwrap();
    let mut t = Traffic { packets: Vec::new() };
    // 12 outside addresses connect to the subscriber's SOCKS and Squid ports...
    for i in 0..12u32 {
        let port = if i % 3 == 0 { 3128 } else { 1080 };
        t.attempt(T0 + i, &format!("100.66.0.{}", i + 1), "198.51.100.90", 50000 + i as u16, port);
    }
    // ...and from then on it sends on 25 to 20 MXes: relayed spam.
    for i in 0..20u32 {
        t.attempt(T0 + 20 + i, "198.51.100.90", &format!("100.64.{}.25", i + 1), 41000 + i as u16, 25);
    }
    // A bot with no inbound connections, and a web server at home (inbound
    // on 80 from two addresses, no port 25): neither is an open proxy.
    for i in 0..15u32 {
        t.attempt(T0 + i * 3, "198.51.100.77", &format!("100.64.{}.25", 100 + i), 42000 + i as u16, 25);
    }
    for i in 0..2u32 {
        t.attempt(T0 + i, &format!("100.66.1.{}", i + 1), "198.51.100.91", 52000 + i as u16, 80);
    }
    let pcap = w.join("proxy.pcap");
    std::fs::write(&pcap, t.pcap()).unwrap();
    let flows = w.join("flows");
    crate::nfcapd::store(&pcap, &flows);
    let (_, v, err) = plan(&policy, &flows, &providers, &[]);
    let res = network(&v, "residential-broadband");
    assert_eq!((res["open_proxies"].as_u64(), res["bots"].as_u64()), (Some(1), Some(1)), "{err}\n{res}");
    let subs = res["subscribers"].as_array().unwrap();
    let proxy = subs.iter().find(|s| s["address"] == "198.51.100.90").unwrap();
    assert_eq!(proxy["kind"], "open-proxy", "{proxy}");
    let ev = proxy["evidence"].as_str().unwrap();
    // (softflowd stamps the capture's very first packet oddly, so the
    // exact second of the first inbound is not asserted.)
    assert!(
        ev.starts_with(
            "inbound connections on proxy ports (1080 x8, 3128 x4) from 12 outside addresses, 2025-11-24T16:00:"
        ),
        "{ev}"
    );
    assert!(ev.contains("then 20 port-25 flows, the first ") && ev.contains("an open proxy"), "{ev}");
    assert_eq!(subs.iter().find(|s| s["address"] == "198.51.100.77").unwrap()["kind"], "bot");
    assert!(subs.iter().all(|s| s["address"] != "198.51.100.91"), "{res}");
}
