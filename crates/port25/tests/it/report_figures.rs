//! Issue 18: the figures from the seeds and the report's presentation.
//! A real sensor records its site and the bytes on the wire; the report
//! over a generated capture gives the connections from abroad, bandwidth,
//! groups by operator and before/after an event, in text, JSON and HTML;
//! the HTML is opened in headless chromium at a desktop and a phone width
//! (screenshots kept in the test output directory).

use crate::harness::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::report::{p, run};

/// Every event in a capture directory's log.
fn events(dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for (_, path) in port25_capture::log::list_segments(&dir.join("events")).unwrap() {
        for (_, e) in port25_capture::reader::read_file(&path).unwrap().events {
            out.push(serde_json::to_value(e).unwrap());
        }
    }
    out
}

/// Reads one SMTP reply (all its lines); returns it with its byte count.
fn reply(r: &mut BufReader<TcpStream>, got: &mut u64) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).unwrap();
        assert!(n > 0, "connection closed after {all:?}");
        *got += n as u64;
        all.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return all;
        }
    }
}

/// The sensor writes its `[site]` in every event and, on close, the bytes
/// the client sent and received on the wire (format version 2).
#[test]
fn the_sensor_records_its_site_and_the_bytes_on_the_wire() {
    let s = Server::start_with("spampot", |dir: &Path| {
        format!(
            "sensor = \"it-site\"\ndata_dir = \"{}\"\nlog_format = \"json\"\n\
             [site]\noperator = \"Operadora A\"\nasn = 64496\ncity = \"São Paulo\"\naccess = \"cable\"\n\
             [[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:0\"\nkind = \"smtp\"\n",
            dir.join("data").display()
        )
    });
    let addr = s.addrs.iter().find(|(n, _)| n == "smtp").unwrap().1;
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = tcp.try_clone().unwrap();
    let mut r = BufReader::new(tcp);
    let (mut sent, mut got) = (0u64, 0u64);
    let mut say = |w: &mut TcpStream, b: &[u8]| {
        w.write_all(b).unwrap();
        sent += b.len() as u64;
    };
    assert!(reply(&mut r, &mut got).starts_with("220"));
    say(&mut w, b"EHLO client.example\r\n");
    reply(&mut r, &mut got);
    say(&mut w, b"MAIL FROM:<a@spam.example>\r\n");
    reply(&mut r, &mut got);
    say(&mut w, b"RCPT TO:<v@example.com>\r\n");
    reply(&mut r, &mut got);
    say(&mut w, b"DATA\r\n");
    assert!(reply(&mut r, &mut got).starts_with("354"));
    let mut body = b"Subject: wire\r\n\r\n".to_vec();
    for i in 0..2000 {
        body.extend_from_slice(format!("line {i:05} of a body big enough to count\r\n").as_bytes());
    }
    body.extend_from_slice(b".\r\n");
    say(&mut w, &body);
    assert!(reply(&mut r, &mut got).starts_with("250"));
    say(&mut w, b"QUIT\r\n");
    let last = reply(&mut r, &mut got);
    assert!(last.starts_with("221"), "{last}");
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    got += rest.len() as u64;

    let capture = s.data().join("capture");
    let start = Instant::now();
    let closed = loop {
        let all = events(&capture);
        if let Some(c) = all.iter().find(|e| e["event"] == "port25.spampot.session.closed") {
            // Every event of the sensor names its site.
            for e in &all {
                assert_eq!(e["v"], 2, "{e}");
                assert_eq!(
                    e["site"],
                    serde_json::json!({"operator": "Operadora A", "asn": 64496, "city": "São Paulo", "access": "cable"}),
                    "{e}"
                );
            }
            break c.clone();
        }
        assert!(start.elapsed() < Duration::from_secs(15), "no session.closed event: {all:#?}");
        std::thread::sleep(Duration::from_millis(30));
    };
    // Every byte the client wrote arrived; of ours, everything but perhaps
    // the 221 (its ACK may still be on the way when the counters are read).
    assert_eq!(closed["bytes_in"].as_u64(), Some(sent), "{closed}");
    let out = closed["bytes_out"].as_u64().unwrap();
    assert!(out <= got && out >= got - last.len() as u64, "bytes_out {out}, client read {got}: {closed}");
    assert!(sent > 80_000, "the body is on the wire: {sent}");
    // The same counters in the sensor's own log (EVENTS.md).
    // (The log is read by another thread: wait for the line.)
    let logged = s.wait_event_where("port25.spampot.session.closed", Duration::from_secs(10), |e| {
        e["bytes_in"].as_u64() == Some(sent)
    });
    assert!(
        logged.is_some(),
        "no logged session.closed with bytes_in {sent}: {:?}",
        s.events("port25.spampot.session.closed")
    );
}

/// Where the screenshots go: kept after the test, for people to look at.
fn shots_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-figures");
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn report_figures_groups_events_and_layout_in_chromium() {
    let chromium = require("chromium");
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    run(&[
        "report",
        "generate",
        p(&synth),
        "--seed",
        "5",
        "--days",
        "12",
        "--sensors",
        "5",
        "--sources",
        "300",
        "--messages",
        "4000",
        "--asns",
        "50",
    ]);
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(synth.join("truth.json")).unwrap()).unwrap();
    let out_dir = dir.path().join("report");
    let out = run(&[
        "report",
        "build",
        "--capture",
        p(&synth.join("capture")),
        "--enrich",
        p(&synth.join("geoip.csv")),
        "--enrich",
        p(&synth.join("routeviews.pfx2as")),
        "--group-by",
        "operator",
        "--event",
        "2006-06-16=port 25 blocked",
        "--event",
        "2007-01-01=later",
        "--out",
        p(&out_dir),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (conns, abroad) = (truth["connections"].as_u64().unwrap(), truth["connections_abroad"].as_u64().unwrap());
    let share = (abroad as f64 * 100.0 / conns as f64 * 100.0).round() / 100.0;
    assert!(
        stdout.contains(&format!("Connections from abroad      {share:.2}% ({abroad} of {conns} placed in a country)")),
        "{stdout}"
    );
    let bytes_in: u64 = truth["bandwidth"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|d| d.as_object().unwrap().values())
        .map(|b| b[0].as_u64().unwrap())
        .sum();
    assert!(stdout.contains(&format!("Bytes on the wire            {bytes_in} in,")), "{stdout}");
    assert!(stdout.contains("By operator:\n  Operadora A: "), "{stdout}");
    assert!(stdout.contains("Before and after each event"), "{stdout}");

    // JSON: the same figures; a group per operator adding up to the whole.
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    let cap = &json["sections"][0];
    assert_eq!(cap["summary"]["table1"]["connections_abroad_pct"], serde_json::json!(share));
    assert_eq!(cap["summary"]["connections_abroad_pct"], serde_json::json!(share));
    let groups = cap["tables"].as_array().unwrap().iter().find(|t| t["id"] == "groups").unwrap();
    let emails: serde_json::Map<String, serde_json::Value> =
        groups["rows"].as_array().unwrap().iter().map(|r| (r[0].as_str().unwrap().to_owned(), r[1].clone())).collect();
    assert_eq!(serde_json::Value::Object(emails), truth["per_operator"]);
    let sections: Vec<&str> = json["sections"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(sections.len(), 6, "the whole capture and one section per operator: {sections:?}");
    let ba = cap["tables"].as_array().unwrap().iter().find(|t| t["id"] == "before_after").unwrap();
    let row = ba["rows"].as_array().unwrap().iter().find(|r| r[0] == "2006-06-16" && r[3] == "spam emails").unwrap();
    // Spam per day before (10th-15th) and after (16th-21st): the truth's.
    let per_day = truth["per_day"].as_object().unwrap();
    let mean = |days: std::ops::Range<u32>| {
        days.clone().map(|d| per_day[&format!("2006-06-{d:02}")].as_f64().unwrap()).sum::<f64>() / days.len() as f64
    };
    let (before, after) = (mean(10..16), mean(16..22));
    assert_eq!(
        (row[5].as_f64().unwrap(), row[6].as_f64().unwrap()),
        ((before * 100.0).round() / 100.0, (after * 100.0).round() / 100.0)
    );
    assert!(std::fs::read_to_string(out_dir.join("csv/capture-before_after.csv"))
        .unwrap()
        .starts_with("event_date,event,section,metric,"));

    // HTML: Table 1 first, with thousands separators, then the charts.
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
    let t1 = html.find("<section id=\"table1\">").expect("Table 1");
    assert!(t1 < html.find("<figure").unwrap(), "Table 1 before the charts");
    let emails = truth["emails"].as_u64().unwrap();
    assert!(
        emails >= 1000 && html.contains(&format!("<td>Emails collected</td><td>{}</td>", thousands(emails))),
        "{}",
        html.get(t1..).unwrap_or_default().chars().take(2000).collect::<String>()
    );
    assert!(html.contains(&format!("<td>Connections from abroad</td><td>{share:.2} %</td>")));
    // Every figure of the plain table1 (JSON, CSV) is in the lead, which
    // replaces it on the page.
    let lead = html.get(t1..html.find("</section>").unwrap()).unwrap();
    let plain = cap["tables"].as_array().unwrap().iter().find(|t| t["id"] == "table1").unwrap();
    for row in plain["rows"].as_array().unwrap() {
        let label = row[0].as_str().unwrap().trim_end_matches(" (%)");
        assert!(lead.contains(&format!("<td>{label}</td>")), "{label} missing from the lead");
    }
    assert!(!html.contains("<h3 id=\"table1\">"), "Table 1 twice");

    let desktop = layout(&chromium, &out_dir, 1280);
    let phone = layout(&chromium, &out_dir, 390);
    for (width, page) in [(1280, &desktop), (390, &phone)] {
        assert_eq!(page["after_h1"], "table1", "{width}px: the page opens with Table 1");
        assert_eq!(page["first_chart_after_table1"], true);
        assert_eq!(page["table1"][5][0], "Emails collected");
        assert_eq!(page["table1"][5][1].as_str(), Some(thousands(emails).as_str()));
        assert!(
            page["scroll_width"].as_f64() <= page["viewport"].as_f64(),
            "{width}px: the page scrolls sideways: {page:#}"
        );
        assert_eq!(page["wider_than_viewport"], serde_json::json!([]), "{width}px");
        let figures = page["figures"].as_array().unwrap();
        assert!(figures.len() >= 6 * 4, "{width}px: {} charts", figures.len());
        for f in figures {
            let id = f["id"].as_str().unwrap();
            assert!(f["box"]["right"].as_f64().unwrap() <= width as f64 + 0.5, "{width}px: {id} overflows: {f}");
            assert!(f["marks"].as_u64().unwrap() > 0, "{id} has no data");
            assert_eq!(f["x_title"].as_array().unwrap().len(), 1, "{width}px: {id} has no visible x axis title: {f}");
            assert_eq!(f["y_title"].as_array().unwrap().len(), 1, "{width}px: {id} has no visible y axis title: {f}");
            let caption = f["caption"].as_str().unwrap_or_default();
            assert!(
                caption.starts_with("Source: SpamPots capture ")
                    && caption.contains("; window: 2006-06-10 to 2006-06-21 (UTC)."),
                "{id}: {caption}"
            );
            // The whole capture's 5 sensors; a group's own (one operator each).
            let sensors = if id.contains("capture-operator-") { "operator = Operadora " } else { "(5 sensors)" };
            assert!(
                caption.contains(sensors) && (id.contains("capture-operator-") == caption.contains(": 1 sensor)")),
                "{id}: {caption}"
            );
            assert!(f["caption_box"]["height"].as_f64().unwrap() > 0.0);
            // Time charts carry the event in range and name the other.
            if ["chart_per_day", "chart_bandwidth", "chart_connections"].iter().any(|t| id.starts_with(t)) {
                assert_eq!(f["markers"], serde_json::json!(["2006-06-16"]), "{id}");
                assert_eq!(f["marker_labels"], serde_json::json!(["2006-06-16 port 25 blocked"]), "{width}px: {id}");
                assert!(caption.ends_with("Event 2007-01-01 (later) is outside this chart."), "{id}: {caption}");
            }
        }
        let ids: Vec<&str> = figures.iter().map(|f| f["id"].as_str().unwrap()).collect();
        for want in [
            "chart_per_day",
            "chart_bandwidth",
            "chart_connections",
            "chart_countries",
            "chart_asns",
            "chart_destinations",
            "chart_groups",
        ] {
            assert!(ids.contains(&want), "{want} missing: {ids:?}");
        }
    }
}

/// The report opened at `width` px: what chromium laid out, and a
/// screenshot in the test output directory.
fn layout(chromium: &Path, out_dir: &Path, width: u32) -> serde_json::Value {
    let shot = shots_dir().join(format!("report-{width}px.png"));
    let _ = std::fs::remove_file(&shot);
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/report_cdp.py"))
        .args([p(chromium), &format!("file://{}", out_dir.join("report.html").display()), &width.to_string(), p(&shot)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "report_cdp.py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000, "screenshot of {} bytes", png.len());
    // The PNG is as wide as the viewport (IHDR width, big-endian at 16).
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), width);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Progress bars on a terminal; none in a pipe or with --quiet (no control
/// characters in logs), and the summary on standard output is the same.
#[test]
fn progress_bars_only_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    let gen = ["report", "generate", p(&synth), "--days", "3", "--sources", "200", "--messages", "3000"];
    let tty = on_terminal(&gen);
    assert!(
        tty.contains("generating spam") && tty.contains("\x1b[2K"),
        "no progress bar drawn on the terminal: {tty:?}"
    );
    let piped = run(&gen);
    assert!(
        !String::from_utf8_lossy(&piped.stderr).contains("generating") && !piped.stderr.contains(&0x1b),
        "{piped:?}"
    );
    let capture = synth.join("capture");
    let complaints = dir.path().join("abuse.eml");
    std::fs::write(
        &complaints,
        "From: abuse@example.net\r\nDate: Tue, 10 Feb 2009 10:00:00 -0200\r\nSubject: spam from [40.3.0.1]\r\n\r\nSpam from 40.3.0.1\r\n",
    )
    .unwrap();
    let build = ["report", "build", "--capture", p(&capture), "--complaints", p(&complaints)];
    let tty = on_terminal(&build);
    assert!(tty.contains(&format!("{:18} [", "reading capture")), "no capture bar: {tty:?}");
    assert!(tty.contains(&format!("{:18} ", "complaints")), "no complaints counter: {tty:?}");
    let piped = run(&build);
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(!stderr.contains("reading capture") && !stderr.contains('\x1b'), "{stderr}");
    // The summary is the same: the bars were cleared before it.
    let summary = String::from_utf8_lossy(&piped.stdout).replace('\n', "\r\n");
    assert!(tty.contains(summary.lines().next().unwrap()), "{tty:?}");
    let quiet = on_terminal(&[&build[..], &["--quiet"]].concat());
    assert!(!quiet.contains("reading capture") && !quiet.contains('\x1b'), "--quiet still draws: {quiet:?}");
    let quiet = on_terminal(&[&gen[..], &["-q"]].concat());
    assert!(!quiet.contains("generating spam"), "{quiet:?}");
}

/// A capture in format version 1 (before the wire counters and the site),
/// through the binary: the same Table 1, bandwidth stated as unknown in
/// text and HTML (not 0), every event in the group "(no site)".
#[test]
fn a_version_1_capture_reports_bandwidth_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    run(&["report", "generate", p(&synth), "--days", "3", "--sources", "100", "--messages", "1000", "--sensors", "2"]);
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(synth.join("truth.json")).unwrap()).unwrap();
    for (_, seg) in port25_capture::log::list_segments(&synth.join("capture/events")).unwrap() {
        let mut v1 = String::new();
        for line in std::fs::read_to_string(&seg).unwrap().lines() {
            let mut e: serde_json::Value = serde_json::from_str(line).unwrap();
            let o = e.as_object_mut().unwrap();
            o.insert("v".into(), 1.into());
            o.retain(|k, _| !["site", "bytes_in", "bytes_out"].contains(&k.as_str()));
            v1.push_str(&format!("{e}\n"));
        }
        std::fs::write(&seg, v1).unwrap();
    }
    let out_dir = dir.path().join("report");
    let out =
        run(&["report", "build", "--capture", p(&synth.join("capture")), "--group-by", "city", "--out", p(&out_dir)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("Emails collected             {}\n", truth["emails"])), "{stdout}");
    assert!(
        stdout.contains("Bytes on the wire            unknown (no session has wire counters: capture format v1)"),
        "{stdout}"
    );
    assert!(stdout.contains("By city:\n  (no site): "), "{stdout}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(
        html.contains("<td>Bytes received on the wire</td><td>unknown</td><td>unknown</td>"),
        "all sensors and the one group"
    );
    assert!(!html.contains("chart_bandwidth"), "no bandwidth chart drawn from no counters");
}

/// Complaints are read as a stream (issue 18 section 4): a 48 MB mbox is
/// counted whole, in the right months, while the process never holds more
/// than a fraction of it (it held all of it, and a copy, before).
#[test]
fn complaints_are_streamed_in_bounded_memory() {
    let time = require("time");
    let dir = tempfile::tempdir().unwrap();
    let mbox = dir.path().join("abuse.mbox");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&mbox).unwrap());
    let n = 60_000u64;
    let pad = "x".repeat(600);
    for i in 0..n {
        let month = ["Jan", "Feb", "Mar"][(i * 3 / n) as usize];
        let ip = format!("40.{}.{}.{}", i % 4, (i / 4) % 256, 1 + i % 250);
        write!(
            w,
            "From MAILER-DAEMON Mon Jan  1 00:00:00 2013\nFrom: reports@spamcop.example\nDate: Mon, 7 {month} 2013 10:00:00 -0300\nSubject: [SpamCop] report {i}\n\nEmail from {ip} / open proxy\n{pad}\n\n"
        )
        .unwrap();
    }
    drop(w);
    assert!(std::fs::metadata(&mbox).unwrap().len() > 45_000_000);
    let out = Command::new(time)
        .args(["-f", "peak %M KiB"])
        .arg(BIN)
        .args(["report", "build", "--complaints", p(&mbox), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json["complaints"]["reports"].as_u64(), json["complaints"]["per_category"]["open_proxy"].as_u64()),
        (Some(n), Some(n)),
        "{json}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kib: u64 =
        stderr.rsplit("peak ").next().and_then(|s| s.split(' ').next()).and_then(|s| s.parse().ok()).expect(&stderr);
    assert!(kib < 40_000, "peak RSS {kib} KiB reading a 48 MB mbox: not streamed");
}

/// `--event` through the binary on blocklist dumps and complaints: the
/// before/after tables printed and in report.json, the marker on their
/// time charts, captions naming the inputs and window.
#[test]
fn events_split_blocklist_rank_and_complaints() {
    let dir = tempfile::tempdir().unwrap();
    let geo = dir.path().join("geo.csv");
    std::fs::write(&geo, "40.0.0.0,40.0.255.255,BR\n41.0.0.0,41.0.255.255,CN\n42.0.0.0,42.0.255.255,US\n").unwrap();
    let dumps = dir.path().join("cbl");
    std::fs::create_dir(&dumps).unwrap();
    // BR listed most in 2012 (rank 1), then less than CN and US (rank 3).
    for (date, br) in [("2012-01-01", 50), ("2013-01-01", 40), ("2014-01-01", 5), ("2015-01-01", 3)] {
        let mut text = String::new();
        for i in 0..br {
            text.push_str(&format!("40.0.0.{}\n", i + 1));
        }
        for i in 0..20 {
            text.push_str(&format!("41.0.0.{}\n42.0.0.{}\n", i + 1, i + 1));
        }
        std::fs::write(dumps.join(format!("cbl-{date}.txt")), text).unwrap();
    }
    let mbox = dir.path().join("abuse.mbox");
    let mut text = String::new();
    for (month, n) in [("Jan", 6), ("Feb", 4), ("Mar", 1), ("Apr", 1)] {
        for i in 0..n {
            text.push_str(&format!(
                "From MAILER-DAEMON Mon Jan  1 00:00:00 2013\nFrom: r@spamcop.example\nDate: Mon, 7 {month} 2013 10:00:00 -0300\nSubject: report\n\nEmail from 40.0.0.{} / open proxy\n\n",
                i + 1
            ));
        }
    }
    std::fs::write(&mbox, text).unwrap();
    let out_dir = dir.path().join("report");
    let out = run(&[
        "report",
        "build",
        "--blocklist",
        p(&dumps),
        "--complaints",
        p(&mbox),
        "--enrich",
        p(&geo),
        "--event",
        "2013-03-01=port 25 blocked",
        "--out",
        p(&out_dir),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Rank: 1, 1 before; 3, 3 after. Complaints: 6, 4 a month before; 1, 1 after.
    assert!(
        stdout.contains("2013-03-01\tport 25 blocked\tblocklist\tBR rank\tdump\t1.0\t3.0\t2.0\t200.0\t2\t2\t2012-01-01..2013-01-01\t2014-01-01..2015-01-01"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "2013-03-01\tport 25 blocked\tcomplaints\tall complaints\tmonth\t5.0\t1.0\t-4.0\t-80.0\t2\t2\t2013-01-01..2013-02-01\t2013-03-01..2013-04-01"
        ),
        "{stdout}"
    );
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    for (chart, caption) in [
        ("chart_rank", format!("Source: 4 blocklist dumps ({}); window: 2012-01-01 to 2015-01-01.", dumps.display())),
        (
            "chart_complaints",
            format!(
                "Source: 12 complaint reports ({}); window: 2013-01 to 2013-04 (months of arrival).",
                mbox.display()
            ),
        ),
    ] {
        let (_, rest) = html
            .split_once(&format!("<figure class=\"chart\" id=\"fig_{chart}\">"))
            .unwrap_or_else(|| panic!("{chart} missing"));
        let figure = rest.split_once("</figure>").unwrap().0;
        assert!(figure.contains("<line class=\"marker\" data-day=\"2013-03-01\""), "{chart}: no marker");
        assert!(figure.contains("class=\"axis-title x\"") && figure.contains("class=\"axis-title y\""), "{chart}");
        assert!(figure.contains(&format!("<figcaption>{caption}</figcaption>")), "{chart}: {figure}");
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    for s in json["sections"].as_array().unwrap() {
        assert!(
            s["tables"].as_array().unwrap().iter().any(|t| t["id"] == "before_after"),
            "{} has no before/after",
            s["id"]
        );
    }
}
