//! The Parquet export read back by pyarrow (PyPI): rows, sums and
//! enrichment agree with the generator's truth.

use port25_report::generate::{generate, Params};

#[test]
fn pyarrow_reads_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let p = Params {
        seed: 5,
        days: 4,
        sensors: 2,
        sources: 150,
        messages: 3_000,
        campaigns: 5,
        asns: 30,
        ..Params::default()
    };
    let truth = generate(&p, dir.path()).unwrap();
    let mut e = port25_report::enrich::Enricher::default();
    e.add(&dir.path().join("geoip.csv")).unwrap();
    e.add(&dir.path().join("routeviews.pfx2as")).unwrap();
    let out = dir.path().join("dataset");
    let w =
        port25_report::parquet_export::export(&dir.path().join("capture"), &Default::default(), &e, &|_| None, &out)
            .unwrap();
    let rows = w.rows;
    assert_eq!(rows, truth.emails + truth.probes);
    // One file per (day, sensor) here: the capture is in time order.
    assert_eq!(w.files, u64::from(p.days * p.sensors));
    let script = r#"
import json, sys
import glob, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1]).to_pydict()
first_file = sorted(glob.glob(sys.argv[1] + "/day=*/sensor=*/part-*.parquet"))[0]
spam = [i for i, p in enumerate(t["probe"]) if not p]
countries = {}
for i in spam:
    countries[t["country"][i]] = countries.get(t["country"][i], 0) + 1
print(json.dumps({"rows": len(t["probe"]), "emails": len(spam), "recipients": sum(t["recipients"][i] for i in spam),
  "ips": len({t["src_ip"][i] for i in spam}), "countries": countries, "first": str(min(t["time"])), "schema": str(pq.read_schema(first_file)), "days": sorted(set(str(d) for d in t["day"]))}))
"#;
    let o = std::process::Command::new("python3").arg("-c").arg(script).arg(&out).output().expect("python3 runs");
    assert!(
        o.status.success(),
        "pyarrow failed (pip install pyarrow; test.sh does): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rows"], rows);
    assert_eq!(v["emails"], truth.emails);
    assert_eq!(v["recipients"], truth.recipients);
    assert_eq!(v["ips"], truth.unique_ips);
    assert_eq!(v["countries"], serde_json::to_value(&truth.per_country).unwrap());
    assert!(v["first"].as_str().unwrap().starts_with("2006-06-10 "), "{}", v["first"]);
    assert!(v["schema"].as_str().unwrap().contains("time: timestamp[ms, tz=UTC]"), "{}", v["schema"]);
    // The partition columns come from the paths.
    assert_eq!(v["days"].as_array().unwrap().len(), p.days as usize, "{}", v["days"]);
}
