//! Complaint trends from reports written here: ARF and plain, in an mbox
//! and a Maildir, with known months and categories.

use port25_report::complaints::{messages, parse_prefixes, Trend};
use port25_report::enrich::Enricher;

fn arf(date: &str, ip: &str, human: &str, received: &str) -> String {
    format!(
        "From: reports@spamcop.example\nDate: {date}\nSubject: report\nMIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\n{human}\n\n\
--b1\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\nSource-IP: {ip}\nArrival-Date: {date}\n\n\
--b1\nContent-Type: text/rfc822-headers\n\nReceived: {received}\nSubject: cheap\n\n--b1--\n"
    )
}

fn plain(date: &str, ip: &str, text: &str) -> String {
    format!(
        "From: reports@spamcop.example\nDate: {date}\nSubject: [SpamCop] report\n\nEmail from {ip} / {date}\n{text}\n"
    )
}

#[test]
fn per_month_by_category_and_per_asn() {
    let dir = tempfile::tempdir().unwrap();
    // 2009-01: 2 open proxy, 1 direct (end-user prefix), 1 authenticated; 2009-02: 1 direct (words), 1 other; 1 unreadable.
    let mbox = [
        arf(
            "Mon, 5 Jan 2009 10:00:00 -0200",
            "40.0.0.1",
            "Spam sent through an open proxy at this address",
            "from x ([40.0.0.1]) by mx with SMTP",
        ),
        plain("Tue, 6 Jan 2009 10:00:00 -0200", "40.0.0.2", "Probable open proxy"),
        arf("Wed, 7 Jan 2009 10:00:00 -0200", "40.1.0.9", "Abuse report", "from pc ([40.1.0.9]) by mx with SMTP"),
        arf(
            "Thu, 8 Jan 2009 10:00:00 -0200",
            "40.2.0.1",
            "Abuse report",
            "from mail.example ([40.2.0.1]) (Authenticated sender: bob) by smtp.example with ESMTPSA",
        ),
        plain("Mon, 2 Feb 2009 10:00:00 -0200", "40.2.0.5", "Received: from adsl-40-2-0-5.dyn.example ([40.2.0.5])"),
        "From: x\nSubject: no date, no address\n\nhello\n".to_string(),
    ];
    let mut text = String::new();
    for m in &mbox {
        text.push_str("From MAILER-DAEMON Thu Jan  1 00:00:00 2009\n");
        text.push_str(m);
        text.push('\n');
    }
    std::fs::write(dir.path().join("reports.mbox"), &text).unwrap();
    let md = dir.path().join("Maildir");
    for d in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(md.join(d)).unwrap();
    }
    std::fs::write(md.join("new/1.eml"), plain("Tue, 10 Feb 2009 10:00:00 -0200", "40.3.0.1", "Unsolicited mail"))
        .unwrap();
    std::fs::write(dir.path().join("geo.csv"), "40.0.0.0,40.3.255.255,BR\n").unwrap();
    std::fs::write(dir.path().join("a.pfx2as"), "40.0.0.0\t16\t64600\n40.1.0.0\t16\t64601\n40.2.0.0\t15\t64602\n")
        .unwrap();
    let mut e = Enricher::default();
    e.add(&dir.path().join("geo.csv")).unwrap();
    e.add(&dir.path().join("a.pfx2as")).unwrap();
    let end_user = parse_prefixes("# residential\n40.1.0.0/16\n").unwrap();

    let mut trend = Trend::default();
    let mut n = 0;
    for p in [dir.path().join("reports.mbox"), md.clone()] {
        for (place, raw) in messages(&p).unwrap() {
            n += 1;
            trend.add(&place, &raw, &end_user, &e);
        }
    }
    assert_eq!(n, 7);
    assert_eq!(trend.reports, 6);
    assert_eq!(trend.arf, 3);
    assert_eq!(trend.unreadable, 1);
    assert!(
        trend.examples[0].contains("reports.mbox:") && trend.examples[0].contains("no source address"),
        "{:?}",
        trend.examples
    );
    let s = trend.section(&Default::default());
    let t = s.tables.iter().find(|t| t.id == "per_month").unwrap();
    assert_eq!(t.columns, ["month", "open_proxy", "direct_delivery", "authenticated", "other", "total"]);
    let rows: Vec<Vec<String>> =
        t.rows.iter().map(|r| r.iter().map(port25_report::table::cell_text).collect()).collect();
    assert_eq!(rows, vec![vec!["2009-01", "2", "1", "1", "0", "4"], vec!["2009-02", "0", "1", "0", "1", "2"]]);
    let a = s.tables.iter().find(|t| t.id == "per_asn").unwrap();
    let rows: Vec<Vec<String>> =
        a.rows.iter().map(|r| r.iter().map(port25_report::table::cell_text).collect()).collect();
    assert_eq!(
        rows,
        vec![
            vec!["64602", "BR", "0", "1", "1", "1", "3"],
            vec!["64600", "BR", "2", "0", "0", "0", "2"],
            vec!["64601", "BR", "0", "1", "0", "0", "1"],
        ]
    );
    assert!(s.charts[0].contains("chart_complaints"));
    // 40.3.0.1 (the Maildir's report, "other") is in AS64602's /15.

    // Issue 18: an event on 2009-02-01 splits the months: January before
    // (4 reports, 2 of them open proxy), February after (2, none).
    let ctx = port25_report::output::Context {
        source: "6 complaint reports".into(),
        window: "2009-01 to 2009-02".into(),
        markers: vec![port25_report::markers::parse("2009-02-01=port 25 blocked").unwrap()],
    };
    let s = trend.section(&ctx);
    let ba = s.tables.iter().find(|t| t.id == "before_after").unwrap();
    let row = |metric: &str| ba.rows.iter().find(|r| r[3] == metric).unwrap().clone();
    let all = row("all complaints");
    assert_eq!(
        (all[4].as_str(), all[5].as_f64(), all[6].as_f64(), all[8].as_f64()),
        (Some("month"), Some(4.0), Some(2.0), Some(-50.0))
    );
    let proxy = row("open proxy");
    assert_eq!((proxy[5].as_f64(), proxy[6].as_f64(), proxy[7].as_f64()), (Some(2.0), Some(0.0), Some(-2.0)));
    assert!(
        s.charts[0].contains(r#"<line class="marker" data-day="2009-02-01""#)
            && s.charts[0].contains(">Complaints per month</text>")
    );
    assert!(s.charts[0].contains("<figcaption>Source: 6 complaint reports; window: 2009-01 to 2009-02.</figcaption>"));
}

#[test]
fn bad_prefix_list_names_the_line() {
    let e = parse_prefixes("10.0.0.0/8\n10.0.0.0/40\n").unwrap_err();
    assert_eq!(e.line, 2);
}

/// Issue 18 section 4: an mbox is read as a stream, one message at a time,
/// each at most MAX_MESSAGE bytes (a line without an end cannot take the
/// memory), with the same boundaries, places and `>From ` unquoting.
#[test]
fn mbox_is_streamed_with_bounded_messages() {
    use port25_report::complaints::{for_each_message, MAX_MESSAGE};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mbox");
    let mut text = String::from("From a Thu Jan  1 00:00:00 2009\nSubject: one\n\n>From the start\nbody\n\n");
    text.push_str("From b Thu Jan  1 00:00:00 2009\nSubject: two\n\n");
    text.push_str(&"x".repeat(MAX_MESSAGE + 1_000_000)); // one endless line
    text.push_str("\n\nFrom c Thu Jan  1 00:00:00 2009\nSubject: three\n\nbye\n");
    std::fs::write(&path, &text).unwrap();
    let mut seen = Vec::new();
    for_each_message(&path, &mut |place, raw| {
        assert!(raw.len() <= MAX_MESSAGE, "{place}: {} bytes", raw.len());
        seen.push((
            place.rsplit(':').next().unwrap().to_owned(),
            raw.len(),
            raw.starts_with(b"Subject: "),
            raw.windows(11).any(|w| w == b"\nFrom the s"),
        ));
    })
    .unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0], ("1".into(), 35, true, true), "first message, >From unquoted");
    assert_eq!((seen[1].0.as_str(), seen[1].1, seen[1].2), ("7", MAX_MESSAGE, true));
    assert_eq!((seen[2].0.as_str(), seen[2].2), ("12", true));
    // The collecting form gives the same messages.
    let all = messages(&path).unwrap();
    assert_eq!(all.iter().map(|m| m.1.len()).collect::<Vec<_>>(), seen.iter().map(|s| s.1).collect::<Vec<_>>());
}
