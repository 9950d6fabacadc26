//! Enrichment against real files: Debian's tor-geoipdb, MaxMind databases
//! written by the PyPI `mmdb-writer` package, dated versions, bad inputs.

use port25_report::enrich::Enricher;
use std::net::IpAddr;
use std::process::Command;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cc(e: &Enricher, a: &str, day: i64) -> Option<String> {
    e.lookup(ip(a), day).country.map(port25_report::enrich::country_str)
}

#[test]
fn debian_tor_geoipdb() {
    let path = std::path::Path::new("/usr/share/tor/geoip");
    assert!(path.exists(), "/usr/share/tor/geoip is missing: apt-get install tor-geoipdb (.ci/install-deps does)");
    let mut e = Enricher::default();
    e.add(path).unwrap();
    e.add(std::path::Path::new("/usr/share/tor/geoip6")).unwrap();
    // The file's first assigned rows: 1.0.0.0/24 is AU, 1.0.1.0 onwards CN.
    assert_eq!(cc(&e, "1.0.0.7", 0).as_deref(), Some("AU"));
    assert_eq!(cc(&e, "1.0.1.1", 0).as_deref(), Some("CN"));
    // Some well-known addresses fall in some country; unassigned space in none.
    assert!(cc(&e, "200.160.2.3", 0).is_some());
    assert!(cc(&e, "2001:12ff::1", 0).is_some(), "IPv6 from geoip6");
    assert_eq!(cc(&e, "0.0.0.1", 0), None);
}

const WRITER: &str = r#"
import sys
from netaddr import IPSet
from mmdb_writer import MMDBWriter, MmdbU32
out = sys.argv[1]
c = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country")
c.insert_network(IPSet(["20.0.0.0/16"]), {"country": {"iso_code": "TW", "names": {"en": "Taiwan"}}})
c.insert_network(IPSet(["20.1.0.0/16"]), {"registered_country": {"iso_code": "CN"}})
c.insert_network(IPSet(["2001:db8::/32"]), {"country": {"iso_code": "JP"}})
c.to_db_file(out + "/GeoLite2-Country.mmdb")
a = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN")
a.insert_network(IPSet(["20.0.0.0/15"]), {"autonomous_system_number": MmdbU32(3462), "autonomous_system_organization": "Data Communication Business Group"})
a.to_db_file(out + "/GeoLite2-ASN.mmdb")
"#;

#[test]
fn maxmind_databases() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("python3").arg("-c").arg(WRITER).arg(dir.path()).output().expect("python3 runs");
    assert!(
        out.status.success(),
        "mmdb-writer failed (pip install mmdb-writer netaddr; test.sh does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut e = Enricher::default();
    e.add(&dir.path().join("GeoLite2-Country.mmdb")).unwrap();
    e.add(&dir.path().join("GeoLite2-ASN.mmdb")).unwrap();
    let i = e.lookup(ip("20.0.5.5"), 0);
    assert_eq!((i.country, i.asns), (Some(*b"TW"), vec![3462]));
    let i = e.lookup(ip("20.1.5.5"), 0);
    assert_eq!((i.country, i.asns), (Some(*b"CN"), vec![3462]), "registered_country when country is absent");
    assert_eq!(cc(&e, "2001:db8::5", 0).as_deref(), Some("JP"));
    assert_eq!(e.lookup(ip("21.0.0.1"), 0), Default::default());
    let d = e.describe();
    assert_eq!(d[0].kind, "MaxMind DB (GeoLite2-Country)");
    assert_eq!(d[1].kind, "MaxMind DB (GeoLite2-ASN)");

    // A damaged database: a clear error naming the file.
    let bad = dir.path().join("broken.mmdb");
    let bytes = std::fs::read(dir.path().join("GeoLite2-Country.mmdb")).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    let err = Enricher::default().add(&bad).unwrap_err().to_string();
    assert!(err.contains("broken.mmdb") && err.contains("not a MaxMind DB"), "{err}");
}

#[test]
fn dated_versions_answer_as_of_the_day() {
    let dir = tempfile::tempdir().unwrap();
    let v = dir.path().join("pfx2as");
    std::fs::create_dir(&v).unwrap();
    std::fs::write(v.join("routeviews-rv2-20090101-1200.pfx2as"), "30.0.0.0\t8\t100\n").unwrap();
    std::fs::write(v.join("routeviews-rv2-20130101-1200.pfx2as"), "30.0.0.0\t8\t200_300\n").unwrap();
    let mut e = Enricher::default();
    e.add(&v).unwrap();
    let day = |s: &str| port25_report::date::parse_day(s).unwrap();
    assert_eq!(e.lookup(ip("30.1.2.3"), day("2010-06-01")).asns, vec![100]);
    assert_eq!(e.lookup(ip("30.1.2.3"), day("2013-01-01")).asns, vec![200, 300], "multi-origin");
    assert_eq!(e.lookup(ip("30.1.2.3"), day("2000-01-01")).asns, vec![100], "before all versions: the earliest");
    assert_eq!(e.describe()[0].versions, vec!["2009-01-01", "2013-01-01"]);
}

#[test]
fn missing_and_malformed_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = Enricher::default().add(&dir.path().join("nope.mmdb")).unwrap_err().to_string();
    assert!(err.contains("nope.mmdb") && err.contains("cannot open"), "{err}");
    std::fs::write(dir.path().join("geo.csv"), "1,2,AU\n3,four,NZ\n").unwrap();
    let err = Enricher::default().add(&dir.path().join("geo.csv")).unwrap_err().to_string();
    assert!(err.ends_with("geo.csv:2: \"four\" is neither an IP address nor a 32-bit integer"), "{err}");
    std::fs::write(dir.path().join("x.pfx2as"), "1.0.0.0\t24\t1\n\n1.0.0.0\t24\tAS1\n").unwrap();
    let err = Enricher::default().add(&dir.path().join("x.pfx2as")).unwrap_err().to_string();
    assert!(err.contains("x.pfx2as:3:"), "{err}");
    let undated = dir.path().join("dir");
    std::fs::create_dir(&undated).unwrap();
    std::fs::write(undated.join("geo.csv"), "1,2,AU\n").unwrap();
    let err = Enricher::default().add(&undated).unwrap_err().to_string();
    assert!(err.contains("date in their name"), "{err}");
    std::fs::write(dir.path().join("r.pfx2as.gz"), "x").unwrap();
    assert!(Enricher::default().add(&dir.path().join("r.pfx2as.gz")).unwrap_err().to_string().contains("decompress"));
}
