//! `port25 report`: the real binary on a generated capture, its files, and
//! the HTML opened in headless chromium.

use crate::harness::BIN;
use std::path::Path;
use std::process::Command;

pub fn run(args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN).args(args).output().expect("port25 runs");
    assert!(
        out.status.success(),
        "port25 {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn generate_build_and_render() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    run(&[
        "report",
        "generate",
        p(&synth),
        "--seed",
        "7",
        "--days",
        "10",
        "--sources",
        "400",
        "--messages",
        "6000",
        "--asns",
        "60",
    ]);
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(synth.join("truth.json")).unwrap()).unwrap();

    // Damage the log: a bad line in the middle and a torn tail at the end.
    let events = synth.join("capture/events");
    let mut segs: Vec<_> = std::fs::read_dir(&events).unwrap().map(|e| e.unwrap().path()).collect();
    segs.sort();
    let seg = segs.last().unwrap().clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    let lines_before = bytes.iter().filter(|&&b| b == b'\n').count();
    // A torn last line (split so the event-catalogue test does not take it for an id).
    bytes.extend_from_slice(
        concat!("{\"v\":1, this is not json\n{\"v\":1,\"event\":\"port", "25.spampot.mess").as_bytes(),
    );
    std::fs::write(&seg, &bytes).unwrap();

    let out_dir = dir.path().join("report");
    let capture = synth.join("capture");
    let out = run(&[
        "report",
        "build",
        "--capture",
        p(&capture),
        "--enrich",
        p(&synth.join("geoip.csv")),
        "--enrich",
        p(&synth.join("routeviews.pfx2as")),
        "--out",
        p(&out_dir),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains(&format!("Emails collected             {}", truth["emails"])), "{stdout}");
    assert!(stdout.contains(&format!("Unique sender ASes           {}", truth["unique_asns"])), "{stdout}");
    // Both damages named with file:line, and the rest still counted.
    assert!(stderr.contains(&format!("{}:{}: not a capture event", seg.display(), lines_before + 1)), "{stderr}");
    assert!(stderr.contains(&format!("{}:{}: torn last line", seg.display(), lines_before + 2)), "{stderr}");

    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    let t1 = &json["sections"][0]["summary"]["table1"];
    for (k, v) in [
        ("emails", "emails"),
        ("recipients", "recipients"),
        ("unique_ips", "unique_ips"),
        ("unique_asns", "unique_asns"),
        ("countries", "countries"),
        ("probes", "probes"),
    ] {
        assert_eq!(t1[k], truth[v], "{k}");
    }
    assert_eq!(t1["days"], 10);
    assert_eq!(json["sections"][0]["summary"]["damage"]["bad_lines"], 1);
    let csv = std::fs::read_to_string(out_dir.join("csv/capture-per_day.csv")).unwrap();
    assert!(csv.starts_with("day,emails,recipients,probes\r\n2006-06-10,"), "{csv}");
    assert_eq!(csv.lines().count(), 11);

    // The HTML: self-contained (no URL to fetch), charts with data.
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("<script"),
        "no network, no script"
    );
    for id in ["chart_per_day", "chart_countries", "chart_asns", "chart_destinations"] {
        let (_, chart) = html.split_once(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("{id} missing"));
        let (chart, _) = chart.split_once("</svg>").unwrap();
        let marks = chart.matches("class=\"mark\"").count();
        assert!(marks > 0, "{id} has no data marks");
    }
    let per_day_marks = {
        let (_, chart) = html.split_once("id=\"chart_per_day\"").unwrap();
        chart.split_once("</svg>").unwrap().0.matches("<rect class=\"mark\"").count()
    };
    assert_eq!(per_day_marks, 10, "one bar per day");

    // Rendered by a real browser: a non-empty screenshot, and the DOM it
    // built holds the SVG charts.
    let shot = dir.path().join("shot.png");
    let url = format!("file://{}", out_dir.join("report.html").display());
    let chromium = |extra: &[&str]| {
        let mut c = Command::new("chromium");
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,1400"])
            .args(extra)
            .arg(&url);
        c.output().unwrap_or_else(|e| {
            panic!("chromium is required for this test (apt-get install chromium; .ci/install-deps does): {e}")
        })
    };
    let o = chromium(&[&format!("--screenshot={}", shot.display())]);
    assert!(o.status.success(), "chromium: {}", String::from_utf8_lossy(&o.stderr));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "screenshot too small: {} bytes", png.len());
    let o = chromium(&["--dump-dom"]);
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(dom.matches("<svg class=\"chart\"").count() >= 4, "the rendered DOM lacks the charts");
    assert!(dom.contains("data-value="));
}

#[test]
fn bad_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN).args(["report", "build", "--capture", p(dir.path())]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no capture segments"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.path().join("bad.mmdb"), b"not a database").unwrap();
    let out = Command::new(BIN)
        .args(["report", "build", "--capture", p(dir.path()), "--enrich", p(&dir.path().join("bad.mmdb"))])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.mmdb: not a MaxMind DB"), "{err}");
    let out = Command::new(BIN).args(["report", "build"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to report"));
}
