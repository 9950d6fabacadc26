//! Issue 18 (c): CBL statistics snapshots (the CBL's country and AS pages
//! saved as HTML, or CSV) as a blocklist source: the followed country's
//! rank and its ASes over time, from the CBL's own counts; a snapshot in an
//! unknown layout is refused saying what was expected; a bad row is named
//! file:line and the rest still counts.

use crate::harness::BIN;
use std::path::Path;
use std::process::Command;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The CBL's country page as saved by a browser (other columns included).
fn country_html(rows: &[(&str, u64)]) -> String {
    let mut s = String::from(
        "<html><head><title>CBL statistics</title></head><body>\n<h2>Listings by country</h2>\n<table border=\"1\">\n\
         <tr><th>Country</th><th>Listings</th><th>Traffic</th><th>Size(K)</th><th>Infect %</th><th>IPop</th><th>IPop%</th></tr>\n",
    );
    for (cc, n) in rows {
        s.push_str(&format!(
            "<tr><td><a href=\"/country/{cc}\">{cc}</a> (name)</td><td align=right>{}</td><td>1</td><td>747</td><td>0.1</td><td>1</td><td>0.2</td></tr>\n",
            crate::report_figures::thousands(*n)
        ));
    }
    s + "</table></body></html>\n"
}

fn build(args: &[&str]) -> std::process::Output {
    Command::new(BIN).arg("report").arg("build").args(args).output().unwrap()
}

#[test]
fn cbl_statistics_snapshots_rank_the_country_and_its_ases() {
    let dir = tempfile::tempdir().unwrap();
    let cbl = dir.path().join("cbl");
    std::fs::create_dir(&cbl).unwrap();
    // 2009: Brazil first (the slides' "CBL 1st in 2009").
    std::fs::write(
        cbl.join("cbl-country-2009-01-01.html"),
        country_html(&[("BR", 1_234_567), ("IN", 900_000), ("VN", 500_000), ("US", 400_000)]),
    )
    .unwrap();
    std::fs::write(
        cbl.join("cbl-asn-2009-01-01.csv"),
        "asn,listings,country\nAS28573,600000,BR\nAS18881,300000,BR\nAS9829,800000,IN\nAS??,40,\n",
    )
    .unwrap();
    // 2013: Brazil fourth; an AS page as HTML with a bad row.
    std::fs::write(
        cbl.join("cbl-country-2013-03-01.csv"),
        "country,listings\nIN,\"2,000,000\"\nVN,900000\nUS,500000\nBR,100000\n",
    )
    .unwrap();
    std::fs::write(
        cbl.join("cbl-asn-2013-03-01.html"),
        "<table>\n<tr><th>ASN</th><th>Listings</th><th>Traffic</th><th>Country</th></tr>\n<tr><td>AS9829</td><td>1,500,000</td><td>3</td><td>IN</td></tr>\n\
         <tr><td>AS28573</td><td>60,000</td><td>1</td><td>BR</td></tr>\n<tr><td>AS18881</td><td>lots</td><td>1</td><td>BR</td></tr>\n</table>\n",
    )
    .unwrap();
    let out_dir = dir.path().join("report");
    let out = build(&[
        "--cbl",
        p(&cbl),
        "--country",
        "BR",
        "--top-asns",
        "2",
        "--event",
        "2011-01-01=port 25 blocked",
        "--out",
        p(&out_dir),
    ]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:5: listings \"lots\" is not a count; row skipped",
            cbl.join("cbl-asn-2013-03-01.html").display()
        )),
        "{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    let section = report["sections"].as_array().unwrap().iter().find(|s| s["id"] == "cbl").expect("a cbl section");
    let table =
        |id: &str| section["tables"].as_array().unwrap().iter().find(|t| t["id"] == id).unwrap()["rows"].clone();
    // date, rank, listed, share_pct, countries ranked
    let focus = table("focus_rank");
    assert_eq!(focus[0][0], "2009-01-01");
    assert_eq!((focus[0][1].as_u64(), focus[0][2].as_u64()), (Some(1), Some(1_234_567)));
    assert_eq!(
        (focus[1][0].as_str(), focus[1][1].as_u64(), focus[1][2].as_u64()),
        (Some("2013-03-01"), Some(4), Some(100_000))
    );
    // BR's ASes in the top 2 ASes: AS28573 in 2009 (second after AS9829), and in 2013 (AS18881's row was bad).
    let asns = table("focus_asns");
    let rows: Vec<(String, u64, u64)> = asns
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_str().unwrap().into(), r[1].as_u64().unwrap(), r[2].as_u64().unwrap()))
        .collect();
    assert_eq!(rows, vec![("2009-01-01".into(), 28573, 600_000), ("2013-03-01".into(), 28573, 60_000)]);
    assert!(stdout.contains("CBL statistics"), "{stdout}");
    // Drawn in the HTML with the deadline marker.
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"cbl_chart_rank\"") && html.contains("port 25 blocked"), "chart or marker missing");

    // An unknown layout (an rbldnsd dump given as a CBL snapshot) is refused, naming the file and what was expected.
    let bad = dir.path().join("cbl-2013-04-01.txt");
    std::fs::write(&bad, ":127.0.0.2:Listed\n192.0.2.1\n198.51.100.0/24\n").unwrap();
    let out = build(&["--cbl", p(&bad)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(p(&bad))
            && stderr.contains("expected an HTML table")
            && stderr.contains("\"country,listings\""),
        "{stderr}"
    );
}
