//! The report against the synthetic capture, whose answers are known.

use port25_report::generate::{generate, Params, Truth};
use port25_report::scan::scan;
use port25_report::stats::Filter;
use std::collections::BTreeMap;

fn small() -> Params {
    Params { seed: 42, days: 7, sensors: 3, sources: 300, messages: 5_000, campaigns: 8, variants: 3, asns: 40, ..Params::default() }
}

#[test]
fn generator_is_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ta = generate(&small(), a.path()).unwrap();
    let tb = generate(&small(), b.path()).unwrap();
    assert_eq!(ta, tb);
    assert_eq!(ta.emails, 5_000);
    assert_eq!(std::fs::read(a.path().join("truth.json")).unwrap(), std::fs::read(b.path().join("truth.json")).unwrap());
    assert_eq!(std::fs::read(a.path().join("geoip.csv")).unwrap(), std::fs::read(b.path().join("geoip.csv")).unwrap());
    let other = generate(&Params { seed: 43, ..small() }, tempfile::tempdir().unwrap().path()).unwrap();
    assert_ne!(other.per_ip, ta.per_ip);
}

#[test]
fn counts_match_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let truth: Truth = generate(&small(), dir.path()).unwrap();
    let (acc, damage) = scan(&dir.path().join("capture"), &Filter::default(), 2).unwrap();
    assert_eq!(damage.bad_lines + damage.torn_tails, 0);
    assert_eq!(acc.spam.emails, truth.emails);
    assert_eq!(acc.spam.recipients, truth.recipients);
    assert_eq!(acc.probes.emails, truth.probes);
    assert_eq!(acc.probes.recipients, truth.probe_recipients);
    assert_eq!(acc.sources.len() as u64, truth.unique_ips);
    assert_eq!(acc.kinds.values().sum::<u64>(), truth.events);
    let per_ip: BTreeMap<String, u64> = acc.sources.iter().map(|(k, v)| (k.to_string(), v.count.emails)).collect();
    assert_eq!(per_ip, truth.per_ip);
    let per_day: BTreeMap<String, u64> = acc.per_day.iter().map(|(d, c)| (port25_report::date::format_day(*d), c.0.emails)).collect();
    assert_eq!(per_day, truth.per_day);
    let per_sensor: BTreeMap<String, u64> = acc.per_sensor.iter().map(|(s, c)| (s.clone(), c.0.emails)).collect();
    assert_eq!(per_sensor, truth.per_sensor);
    let domains: BTreeMap<String, u64> = acc.domains.clone().into_iter().collect();
    assert_eq!(domains, truth.per_domain);
    assert_eq!(acc.proxy_types, truth.per_proxy_type);
    assert_eq!(acc.requested_ports, truth.per_port);
    let digests: BTreeMap<String, u64> = acc.campaigns.iter().map(|(d, c)| (d.clone(), c.count.emails)).collect();
    assert_eq!(digests, truth.per_digest);
}

#[test]
fn window_and_sensor_filters() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(&small(), dir.path()).unwrap();
    let d = |s: &str| port25_report::date::parse_day(s);
    let f = Filter { from: d("2006-06-11"), to: d("2006-06-12"), sensors: vec![] };
    let (acc, _) = scan(&dir.path().join("capture"), &f, 1).unwrap();
    assert_eq!(acc.spam.emails, truth.per_day["2006-06-11"] + truth.per_day["2006-06-12"]);
    let f = Filter { sensors: vec!["br-sp-02".into()], ..Filter::default() };
    let (acc, _) = scan(&dir.path().join("capture"), &f, 2).unwrap();
    assert_eq!(acc.spam.emails, truth.per_sensor["br-sp-02"]);
}
