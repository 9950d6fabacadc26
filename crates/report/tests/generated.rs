//! The report against the synthetic capture, whose answers are known.

use port25_report::generate::{generate, Params, Truth};
use port25_report::scan::scan;
use port25_report::stats::Filter;
use std::collections::BTreeMap;

fn small() -> Params {
    Params {
        seed: 42,
        days: 7,
        sensors: 3,
        sources: 300,
        messages: 5_000,
        campaigns: 8,
        variants: 3,
        asns: 40,
        ..Params::default()
    }
}

#[test]
fn generator_is_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ta = generate(&small(), a.path()).unwrap();
    let tb = generate(&small(), b.path()).unwrap();
    assert_eq!(ta, tb);
    assert_eq!(ta.emails, 5_000);
    assert_eq!(
        std::fs::read(a.path().join("truth.json")).unwrap(),
        std::fs::read(b.path().join("truth.json")).unwrap()
    );
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
    let per_day: BTreeMap<String, u64> =
        acc.per_day.iter().map(|(d, c)| (port25_report::date::format_day(*d), c.0.emails)).collect();
    assert_eq!(per_day, truth.per_day);
    let per_sensor: BTreeMap<String, u64> = acc.per_sensor.iter().map(|(s, c)| (s.clone(), c.0.emails)).collect();
    assert_eq!(per_sensor, truth.per_sensor);
    let domains: BTreeMap<String, u64> = acc.domains.clone().into_iter().collect();
    assert_eq!(domains, truth.per_domain);
    assert_eq!(acc.proxy_types, truth.per_proxy_type);
    assert_eq!(acc.requested_ports, truth.per_port);
    // The sensor x day series adds up to both margins.
    let mut by_day: BTreeMap<i64, u64> = BTreeMap::new();
    for (s, days) in &acc.sensor_days {
        assert_eq!(days.values().sum::<u64>(), truth.per_sensor[s]);
        for (d, n) in days {
            *by_day.entry(*d).or_default() += n;
        }
    }
    assert_eq!(
        by_day.into_iter().map(|(d, n)| (port25_report::date::format_day(d), n)).collect::<BTreeMap<_, _>>(),
        truth.per_day
    );
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

    let want: Vec<serde_json::Value> =
        expected_top(&truth.per_country, 10).into_iter().map(|x| serde_json::json!(x.0)).collect();
    assert_eq!(column(table(&r, "top_countries"), "country"), want);
    let want: Vec<serde_json::Value> =
        expected_top(&truth.per_country, 10).into_iter().map(|x| serde_json::json!(x.1)).collect();
    assert_eq!(column(table(&r, "top_countries"), "emails"), want);
    let want: Vec<serde_json::Value> =
        expected_top(&truth.per_asn, 10).into_iter().map(|x| serde_json::json!(x.0)).collect();
    assert_eq!(column(table(&r, "top_asns"), "asn"), want);
    let want: Vec<serde_json::Value> =
        expected_top(&truth.per_ip, 10).into_iter().map(|x| serde_json::json!(x.0)).collect();
    assert_eq!(column(table(&r, "top_ips"), "ip"), want);
    let want: Vec<serde_json::Value> =
        expected_top(&truth.per_domain, 10).into_iter().map(|x| serde_json::json!(x.0)).collect();
    assert_eq!(column(table(&r, "dest_domains"), "domain"), want);
    let top5: u64 = expected_top(&truth.per_country, 5).iter().map(|x| x.1).sum();
    assert_eq!(r.top5_country_share, Some(((top5 as f64 * 100.0 / truth.emails as f64) * 100.0).round() / 100.0));
    let br: u64 = truth.per_domain.iter().filter(|(d, _)| d.ends_with(".br")).map(|x| x.1).sum();
    assert_eq!(
        r.abroad_recipient_share,
        Some((((truth.recipients - br) as f64 * 100.0 / truth.recipients as f64) * 100.0).round() / 100.0)
    );

    // Near-duplicates: one cluster per campaign, holding its variants.
    let nd = table(&r, "near_duplicates");
    assert_eq!(nd.rows.len(), truth.campaign_digests.len().min(10));
    let got: Vec<(u64, u64)> = column(nd, "emails")
        .iter()
        .zip(column(nd, "bodies"))
        .map(|(e, b)| (e.as_u64().unwrap(), b.as_u64().unwrap()))
        .collect();
    let mut want: Vec<(u64, u64)> = truth
        .campaign_digests
        .iter()
        .map(|c| (c.iter().map(|d| truth.per_digest[d]).sum::<u64>(), c.len() as u64))
        .collect();
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

/// Issue 18, section 1: the figures the seeds quote beyond Table 1, from
/// the synthetic capture whose answers are known: the share of proxy
/// connections from abroad (the white paper's 99.84 %), bytes on the wire
/// per sensor per day, and every figure per sensor operator.
#[test]
fn connections_abroad_bandwidth_and_groups_match_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(&small(), dir.path()).unwrap();
    assert!(
        truth.connections > truth.connections_abroad && truth.connections_abroad > 0,
        "the plan has BR sources and foreign ones"
    );
    let by = Some(port25_report::group::GroupBy::Operator);
    let (g, damage) =
        port25_report::scan::scan_grouped(&dir.path().join("capture"), &Filter::default(), by, 2, &|_| {}).unwrap();
    let r = port25_report::table1::build(&g.total, damage, &enricher(dir.path()), None, &Default::default());
    let t1 = &r.table1;
    assert_eq!(t1.connections, truth.connections);
    assert_eq!(t1.connections_abroad, Some(truth.connections_abroad));
    assert_eq!(t1.connections_unknown_country, Some(0));
    let share = ((truth.connections_abroad as f64 * 100.0 / truth.connections as f64) * 100.0).round() / 100.0;
    assert_eq!(t1.connections_abroad_pct, Some(share));

    // Bandwidth per sensor per day, and in all.
    let bw = table(&r, "bandwidth");
    let mut got: BTreeMap<String, BTreeMap<String, [u64; 2]>> = BTreeMap::new();
    for row in &bw.rows {
        let cell = |c: &str| row[bw.columns.iter().position(|x| x == c).unwrap()].clone();
        assert_eq!(cell("sessions"), cell("sessions_counted"));
        got.entry(cell("sensor").as_str().unwrap().into()).or_default().insert(
            cell("day").as_str().unwrap().into(),
            [cell("bytes_in").as_u64().unwrap(), cell("bytes_out").as_u64().unwrap()],
        );
    }
    assert_eq!(got, truth.bandwidth);
    let total_in: u64 = truth.bandwidth.values().flat_map(|d| d.values()).map(|b| b[0]).sum();
    assert_eq!((t1.bytes_in, t1.sessions_without_counters), (total_in, 0));

    // Every sensor's site, and the groups add up to the whole.
    let sites = table(&r, "sensor_sites");
    assert_eq!(sites.rows.len(), 3);
    assert_eq!(sites.rows[0][1], serde_json::json!(port25_report::generate::site_of(1).operator));
    let per_op: BTreeMap<String, u64> = g.groups.iter().map(|(k, a)| (k.clone(), a.spam.emails)).collect();
    assert_eq!(per_op, truth.per_operator);
    assert_eq!(g.groups.values().map(|a| a.conn_per_day.values().sum::<u64>()).sum::<u64>(), truth.connections);
}

/// A capture written in format version 1 (no wire counters, no site) is
/// read as before: the same Table 1, bandwidth unknown (not zero), every
/// event in the group "(no site)".
#[test]
fn a_version_1_capture_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(&small(), dir.path()).unwrap();
    for seg in std::fs::read_dir(dir.path().join("capture/events")).unwrap() {
        let seg = seg.unwrap().path();
        let mut v1 = String::new();
        for line in std::fs::read_to_string(&seg).unwrap().lines() {
            let mut e: serde_json::Value = serde_json::from_str(line).unwrap();
            let o = e.as_object_mut().unwrap();
            assert_eq!(o["v"], 2);
            o.insert("v".into(), serde_json::json!(1));
            for k in ["site", "bytes_in", "bytes_out"] {
                o.remove(k);
            }
            v1.push_str(&e.to_string());
            v1.push('\n');
        }
        std::fs::write(&seg, v1).unwrap();
    }
    let by = Some(port25_report::group::GroupBy::City);
    let (g, damage) =
        port25_report::scan::scan_grouped(&dir.path().join("capture"), &Filter::default(), by, 2, &|_| {}).unwrap();
    assert_eq!(damage.bad_lines, 0);
    let r = port25_report::table1::build(&g.total, damage, &enricher(dir.path()), None, &Default::default());
    assert_eq!(
        (r.table1.emails, r.table1.unique_ips, r.table1.connections),
        (truth.emails, truth.unique_ips, truth.connections)
    );
    assert_eq!((r.table1.bytes_in, r.table1.sessions_without_counters), (0, r.table1.sessions));
    assert!(r.table1.sessions > 0);
    assert!(r.notes.iter().any(|n| n.contains("have no wire counters")), "{:?}", r.notes);
    assert_eq!(g.groups.keys().collect::<Vec<_>>(), vec![port25_report::group::NO_SITE]);
}
