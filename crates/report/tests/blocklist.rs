//! Blocklist rank on dumps built here with known counts: the followed
//! country goes from 1st to 25th, as Brazil did in the CBL.

use port25_report::blocklist::{count, dated_files, section, Options};
use port25_report::enrich::Enricher;
use std::fmt::Write;

const OTHERS: usize = 29;
/// BR's listed addresses per dump and the rank that follows: the 29 other
/// countries list 100, 110, ... 380 addresses each.
const BR: [(u32, u64); 5] = [(1000, 1), (300, 9), (200, 19), (145, 25), (50, 30)];

fn country(i: usize) -> String {
    if i == 0 {
        "BR".into()
    } else {
        format!("{}{}", (b'A' + (i / 26) as u8 + 2) as char, (b'A' + (i % 26) as u8) as char)
    }
}

fn setup(dir: &std::path::Path) -> Enricher {
    let mut geo = String::from("# test plan\n");
    let mut pfx = String::new();
    for i in 0..=OTHERS {
        let base = (40 + i as u32) << 24;
        writeln!(geo, "{},{},{}", base, base | 0xFFFF, country(i)).unwrap();
        if i == 0 {
            // BR: four ASes of a /18 each.
            for k in 0..4u32 {
                writeln!(pfx, "40.0.{}.0\t18\t{}", k * 64, 64600 + k).unwrap();
            }
        } else {
            writeln!(pfx, "{}.0.0.0\t16\t{}", 40 + i, 65000 + i).unwrap();
        }
    }
    std::fs::write(dir.join("geoip.csv"), geo).unwrap();
    std::fs::write(dir.join("plan.pfx2as"), pfx).unwrap();
    let mut e = Enricher::default();
    e.add(&dir.join("geoip.csv")).unwrap();
    e.add(&dir.join("plan.pfx2as")).unwrap();
    e
}

/// BR's n addresses spread over its four ASes (a quarter each, the first
/// AS takes the remainder), written in every ip4set form.
fn br_lines(n: u32, out: &mut String) {
    let per = n / 4;
    for k in 0..4u32 {
        let mut m = per + if k == 0 { n % 4 } else { 0 };
        let third = k * 64;
        // a /30 and a dash range first, then single addresses
        if m >= 10 {
            writeln!(out, "40.0.{third}.0/30 :127.0.0.2:listed").unwrap();
            writeln!(out, "40.0.{third}.4-40.0.{third}.9").unwrap();
            m -= 10;
        }
        // one listed then excluded again: not counted
        writeln!(out, "40.0.{}.255\n!40.0.{}.255", third + 1, third + 1).unwrap();
        for j in 0..m {
            writeln!(out, "40.0.{}.{}", third + 2 + j / 250, j % 250).unwrap();
        }
    }
}

#[test]
fn rank_from_first_to_twenty_fifth_and_top_asns() {
    let dir = tempfile::tempdir().unwrap();
    let e = setup(dir.path());
    let dumps_dir = dir.path().join("cbl");
    std::fs::create_dir(&dumps_dir).unwrap();
    for (k, (br, _)) in BR.iter().enumerate() {
        let mut text =
            String::from("$SOA 3600 cbl.example hostmaster 0 600 300 86400 300\n:127.0.0.2:Blocked\n# dump\n");
        br_lines(*br, &mut text);
        for i in 1..=OTHERS {
            for j in 0..(100 + 10 * (i as u32 - 1)) {
                writeln!(text, "{}.0.{}.{}", 40 + i, j / 200, j % 200).unwrap();
            }
        }
        text.push_str("this is not an address\n");
        std::fs::write(dumps_dir.join(format!("cbl-{}-03-01.txt", 2009 + k)), text).unwrap();
    }
    let files = dated_files(std::slice::from_ref(&dumps_dir)).unwrap();
    assert_eq!(files.len(), 5);
    let mut examples = Vec::new();
    let dumps: Vec<_> = files.iter().map(|(d, f)| count(f, *d, &e, &mut examples).unwrap()).collect();
    for (d, (br, _)) in dumps.iter().zip(BR) {
        assert_eq!(d.per_country["BR"], u64::from(br));
        assert_eq!(d.bad_lines, 1);
        assert_eq!(d.listed, u64::from(br) + (0..OTHERS as u64).map(|i| 100 + 10 * i).sum::<u64>());
        assert_eq!(d.per_asn[&64600], u64::from(br / 4 + br % 4));
    }
    assert_eq!(examples.len(), 5);
    assert!(examples[0].contains("cbl-2009-03-01.txt:") && examples[0].contains("not an address"), "{}", examples[0]);
    // The line number of the bad line: the last line of the file.
    let last_line = std::fs::read_to_string(&files[0].1).unwrap().lines().count();
    assert!(examples[0].contains(&format!(":{last_line}:")), "{}", examples[0]);

    let s = section(
        &dumps,
        examples,
        &Options { country: "br".into(), top_asns: 20, chart_countries: 5 },
        &Default::default(),
    );
    let focus = s.tables.iter().find(|t| t.id == "focus_rank").unwrap();
    let ranks: Vec<u64> = focus.rows.iter().map(|r| r[1].as_u64().unwrap()).collect();
    assert_eq!(ranks, BR.iter().map(|x| x.1).collect::<Vec<_>>());
    assert_eq!(focus.rows[0][0], serde_json::json!("2009-03-01"));
    // Top 20 ASes: each other country is one AS (100..380) and BR splits
    // into four. 2009: BR's ASes hold 250 each -> all four in the top 20.
    let asns = s.tables.iter().find(|t| t.id == "focus_asns").unwrap();
    let in_2009: Vec<u64> = asns.rows.iter().filter(|r| r[0] == "2009-03-01").map(|r| r[1].as_u64().unwrap()).collect();
    assert_eq!(in_2009, vec![64600, 64601, 64602, 64603]);
    // 2010: 75 each, below the 20th AS (190): none.
    assert!(asns.rows.iter().all(|r| r[0] != "2010-03-01"));
    assert!(s.charts[0].contains("chart_rank") && s.charts[0].contains(r#"data-value="25""#));

    // Issue 18: "port 25 blocked" on 2011-01-01 splits the rank series:
    // before, the 2009 and 2010 dumps (ranks 1 and 9); after, 2011-2013
    // (19, 25, 30); the charts mark the day and the caption names the source.
    let ctx = port25_report::output::Context {
        source: "5 blocklist dumps (cbl/)".into(),
        window: "2009-03-01 to 2013-03-01".into(),
        markers: vec![port25_report::markers::parse("2011-01-01=port 25 blocked").unwrap()],
    };
    let s = section(&dumps, Vec::new(), &Options { country: "br".into(), top_asns: 20, chart_countries: 5 }, &ctx);
    let ba = s.tables.iter().find(|t| t.id == "before_after").unwrap();
    let row = |metric: &str| ba.rows.iter().find(|r| r[3] == metric).unwrap().clone();
    let rank = row("BR rank");
    assert_eq!((rank[5].as_f64(), rank[6].as_f64(), rank[7].as_f64()), (Some(5.0), Some(24.67), Some(19.67)));
    assert_eq!(
        (rank[9].as_u64(), rank[10].as_u64(), rank[11].as_str()),
        (Some(2), Some(3), Some("2009-03-01..2010-03-01"))
    );
    let listed = row("BR listed addresses");
    assert_eq!((listed[5].as_f64(), listed[6].as_f64(), listed[8].as_f64()), (Some(650.0), Some(131.67), Some(-79.74)));
    for c in &s.charts {
        assert!(
            c.contains(r#"<line class="marker" data-day="2011-01-01""#)
                && c.contains(">2011-01-01 port 25 blocked</text>"),
            "{c}"
        );
        assert!(
            c.contains("<figcaption>Source: 5 blocklist dumps (cbl/); window: 2009-03-01 to 2013-03-01.</figcaption>")
        );
        assert!(c.contains(">Date of the dump</text>"));
    }
}

#[test]
fn undated_dump_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cbl.txt"), "1.2.3.4\n").unwrap();
    let err = dated_files(&[dir.path().join("cbl.txt")]).unwrap_err().to_string();
    assert!(err.contains("cbl.txt") && err.contains("date in the file name"), "{err}");
}
