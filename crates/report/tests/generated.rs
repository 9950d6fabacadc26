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

fn enricher(dir: &std::path::Path) -> port25_report::enrich::Enricher {
    let mut e = port25_report::enrich::Enricher::default();
    e.add(&dir.join("geoip.csv")).unwrap();
    e.add(&dir.join("routeviews.pfx2as")).unwrap();
    e
}

fn column(t: &port25_report::table::Table, name: &str) -> Vec<serde_json::Value> {
    let i = t.columns.iter().position(|c| c == name).unwrap();
    t.rows.iter().map(|r| r[i].clone()).collect()
}

fn table<'a>(r: &'a port25_report::table1::CaptureReport, id: &str) -> &'a port25_report::table::Table {
    r.tables.iter().find(|t| t.id == id).unwrap()
}

/// The truth's top-N: by count, then key, as the report orders them.
fn expected_top<K: Clone + Ord>(m: &BTreeMap<K, u64>, n: usize) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = m.iter().map(|(k, c)| (k.clone(), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

#[test]
fn table1_top_lists_and_campaigns_match_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(&small(), dir.path()).unwrap();
    let (acc, damage) = scan(&dir.path().join("capture"), &Filter::default(), 2).unwrap();
    let bodies = port25_capture::bodies::Bodies::open(&dir.path().join("capture/bodies")).unwrap();
    let opt = port25_report::table1::Options { top: 10, ..Default::default() };
    let r = port25_report::table1::build(&acc, damage, &enricher(dir.path()), Some(&bodies), &opt);
    let t1 = &r.table1;
    assert_eq!(t1.start.as_deref(), Some(truth.first_day.as_str()));
    assert_eq!(t1.end.as_deref(), Some(truth.last_day.as_str()));
    assert_eq!(t1.days, 7);
    assert_eq!(t1.emails, truth.emails);
    assert_eq!(t1.recipients, truth.recipients);
    assert_eq!(t1.recipients_per_spam, ((truth.recipients as f64 / truth.emails as f64) * 100.0).round() / 100.0);
    assert_eq!(t1.emails_per_day, truth.emails / 7);
    assert_eq!(t1.unique_ips, truth.unique_ips);
    assert_eq!(t1.unique_asns, Some(truth.unique_asns));
    assert_eq!(t1.countries, Some(truth.countries));
    assert_eq!(t1.probes, truth.probes);
    assert_eq!(t1.probe_sources, truth.probes, "every source probes once");

    let want: Vec<serde_json::Value> = expected_top(&truth.per_country, 10).into_iter().map(|x| serde_json::json!(x.0)).collect();
    assert_eq!(column(table(&r, "top_countries"), "country"), want);
    let want: Vec<serde_json::Value> = expected_top(&truth.per_country, 10).into_iter().map(|x| serde_json::json!(x.1)).collect();
    assert_eq!(column(table(&r, "top_countries"), "emails"), want);
    let want: Vec<serde_json::Value> = expected_top(&truth.per_asn, 10).into_iter().map(|x| serde_json::json!(x.0)).collect();
    assert_eq!(column(table(&r, "top_asns"), "asn"), want);
    let want: Vec<serde_json::Value> = expected_top(&truth.per_ip, 10).into_iter().map(|x| serde_json::json!(x.0)).collect();
    assert_eq!(column(table(&r, "top_ips"), "ip"), want);
    let want: Vec<serde_json::Value> = expected_top(&truth.per_domain, 10).into_iter().map(|x| serde_json::json!(x.0)).collect();
    assert_eq!(column(table(&r, "dest_domains"), "domain"), want);
    let top5: u64 = expected_top(&truth.per_country, 5).iter().map(|x| x.1).sum();
    assert_eq!(r.top5_country_share, Some(((top5 as f64 * 100.0 / truth.emails as f64) * 100.0).round() / 100.0));
    let br: u64 = truth.per_domain.iter().filter(|(d, _)| d.ends_with(".br")).map(|x| x.1).sum();
    assert_eq!(r.abroad_recipient_share, Some((((truth.recipients - br) as f64 * 100.0 / truth.recipients as f64) * 100.0).round() / 100.0));

    // Near-duplicates: one cluster per campaign, holding its variants.
    let nd = table(&r, "near_duplicates");
    assert_eq!(nd.rows.len(), truth.campaign_digests.len().min(10));
    let got: Vec<(u64, u64)> = column(nd, "emails").iter().zip(column(nd, "bodies")).map(|(e, b)| (e.as_u64().unwrap(), b.as_u64().unwrap())).collect();
    let mut want: Vec<(u64, u64)> = truth.campaign_digests.iter().map(|c| (c.iter().map(|d| truth.per_digest[d]).sum::<u64>(), c.len() as u64)).collect();
    want.sort_by(|a, b| b.cmp(a));
    assert_eq!(got, want);
    // Exact campaigns: the largest digest.
    let (d, n) = expected_top(&truth.per_digest, 1)[0].clone();
    assert_eq!(table(&r, "campaigns").rows[0][1], serde_json::json!(d));
    assert_eq!(table(&r, "campaigns").rows[0][2], serde_json::json!(n));
}

#[test]
fn without_enrichment_the_report_says_so() {
    let dir = tempfile::tempdir().unwrap();
    generate(&small(), dir.path()).unwrap();
    let (acc, damage) = scan(&dir.path().join("capture"), &Filter::default(), 1).unwrap();
    let r = port25_report::table1::build(&acc, damage, &Default::default(), None, &Default::default());
    assert_eq!(r.table1.unique_asns, None);
    assert_eq!(r.table1.countries, None);
    assert!(r.notes.iter().any(|n| n.contains("No enrichment")), "{:?}", r.notes);
    assert!(r.tables.iter().all(|t| t.id != "top_countries"));
}
