//! Issue 18 (e): `report build --parquet DIR` writes a Hive-partitioned
//! dataset (by day and sensor), and docs/report.md's SQL computes exactly
//! the report's Table 1 from it in two real engines: DuckDB (PyPI) and
//! Apache Spark (PyPI pyspark, local mode, on the machine's OpenJDK 17).
//! The address plan gets a multi-origin prefix, so an address credited to
//! two ASes must be counted the same way by the SQL as by the report.

use crate::harness::BIN;
use std::path::Path;
use std::process::Command;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The ```sql block under docs/report.md's Parquet heading: what a user copies.
fn documented_sql() -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/report.md")).unwrap();
    let section = doc.split("## Parquet dataset").nth(1).expect("docs/report.md has the Parquet section");
    let block = section.split("```sql\n").nth(1).expect("a ```sql block in it").split("\n```").next().unwrap();
    assert!(block.contains("FROM capture"), "{block}");
    block.to_owned()
}

#[test]
fn parquet_table1_in_duckdb_and_spark() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    let out = Command::new(BIN)
        .args([
            "report",
            "generate",
            p(&synth),
            "--seed",
            "11",
            "--days",
            "6",
            "--sensors",
            "3",
            "--sources",
            "300",
            "--messages",
            "5000",
            "--asns",
            "40",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // One prefix announced by two ASes (CAIDA's multi-origin form).
    let pfx = synth.join("routeviews.pfx2as");
    let text = std::fs::read_to_string(&pfx).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let first = lines.iter().position(|l| l.split('\t').count() == 3).unwrap();
    lines[first] = format!("{}_4200000001", lines[first]);
    std::fs::write(&pfx, lines.join("\n") + "\n").unwrap();

    let dataset = dir.path().join("dataset");
    let out = Command::new(BIN)
        .args([
            "report",
            "build",
            "--capture",
            p(&synth.join("capture")),
            "--enrich",
            p(&synth.join("geoip.csv")),
            "--enrich",
            p(&pfx),
        ])
        .args(["--json", "--parquet", p(&dataset)])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t1 = &report["table1"];
    assert!(stderr.contains("Parquet files under"), "{stderr}");

    // Hive layout: day=YYYY-MM-DD/sensor=NAME/part-NNNNN.parquet, nothing else.
    let mut days = 0;
    for d in std::fs::read_dir(&dataset).unwrap() {
        let d = d.unwrap().path();
        let name = d.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.strip_prefix("day=").and_then(port25_report::date::parse_day).is_some(), "{name}");
        days += 1;
        for s in std::fs::read_dir(&d).unwrap() {
            let s = s.unwrap().path();
            assert!(s.file_name().unwrap().to_str().unwrap().starts_with("sensor="), "{}", s.display());
            for f in std::fs::read_dir(&s).unwrap() {
                let f = f.unwrap().path();
                let n = f.file_name().unwrap().to_str().unwrap().to_owned();
                assert!(n.starts_with("part-") && n.ends_with(".parquet"), "{n}");
            }
        }
    }
    assert_eq!(days, 6);
    // A second export into the same directory would count everything twice: refused.
    let again = Command::new(BIN)
        .args(["report", "build", "--capture", p(&synth.join("capture")), "--parquet", p(&dataset)])
        .output()
        .unwrap();
    assert!(
        !again.status.success() && String::from_utf8_lossy(&again.stderr).contains("not an empty directory"),
        "{again:?}"
    );

    let sql = dir.path().join("table1.sql");
    std::fs::write(&sql, documented_sql()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/parquet_sql.py");
    let run = Command::new("python3").arg(&script).arg(&dataset).arg(&sql).output().expect("python3 runs");
    assert!(
        run.status.success(),
        "DuckDB / Spark failed (pip install duckdb pyspark and a Java 17 runtime, openjdk-17-jre-headless; .ci/install-deps and test.sh install them):\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let rows: Vec<serde_json::Value> =
        String::from_utf8_lossy(&run.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.iter().map(|r| r["engine"].as_str().unwrap()).collect::<Vec<_>>(), ["duckdb", "spark"]);
    // The multi-origin prefix counted both ASes in the report.
    assert!(t1["unique_asns"].as_u64().unwrap() > 1);
    for r in &rows {
        let engine = r["engine"].as_str().unwrap();
        for (sql, ours) in [
            ("start_day", "start"),
            ("end_day", "end"),
            ("days", "days"),
            ("days_with_spam", "days_with_data"),
            ("emails", "emails"),
            ("recipients", "recipients"),
            ("recipients_per_spam", "recipients_per_spam"),
            ("emails_per_day", "emails_per_day"),
            ("unique_ips", "unique_ips"),
            ("unique_asns", "unique_asns"),
            ("countries", "countries"),
            ("probes", "probes"),
            ("probe_recipients", "probe_recipients"),
            ("probe_sources", "probe_sources"),
        ] {
            assert_eq!(r[sql], t1[ours], "{engine}: {sql} = {} but the report's {ours} = {}", r[sql], t1[ours]);
        }
    }
}
