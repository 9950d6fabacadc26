//! The capture reader's fast path (`port25_capture::fastview`) and serde's
//! deserializer give the same report, byte for byte: the same generated
//! capture is read once as written (the fast path answers for the
//! writer's lines) and once with every line rewritten so that only serde
//! can read it (an escape in the event name, which decodes to the same
//! text), and Table 1, every table and the report section must serialise
//! to the same JSON. The capture holds non-ASCII (the generator's sensors
//! in São Paulo, recipients added below) and escaped strings (quotes,
//! backslashes, `\u` escapes in recipients and sensors).

use port25_report::generate::{generate, Params};
use port25_report::scan::scan;
use port25_report::stats::Filter;
use std::path::Path;

fn params() -> Params {
    Params {
        seed: 7,
        days: 5,
        sensors: 4,
        sources: 200,
        messages: 3_000,
        campaigns: 6,
        variants: 3,
        asns: 30,
        ..Params::default()
    }
}

/// Lines a writer of escaped and non-ASCII text produces: copies of a
/// generated message with recipients, sensor and proxy type changed.
fn extra_lines(template: &str) -> String {
    let mut out = String::new();
    let rcpts: [&[&str]; 4] = [
        &["a\"b@Dé.Example", "c\\d@x.example", "é@ñ.example."],
        &["\u{1F600}@emoji.example", "tab\there@x.example"],
        &["plain@x.example"],
        &["UPPER@MiXeD.Example", "x@mixed.example"],
    ];
    for (i, r) in rcpts.iter().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(template).unwrap();
        v["rcpt_to"] = serde_json::json!(r);
        v["proxy_type"] = serde_json::json!(if i % 2 == 0 { "socks\"5" } else { "http-connect" });
        v["src_ip"] = serde_json::json!(format!("198.51.100.{}", 10 + i));
        out.push_str(&serde_json::to_string(&v).unwrap());
        out.push('\n');
    }
    // Written by hand: `\u` escapes serde_json itself would not write
    // (in a recipient, and the sensor's first letter: still "br-sp-..").
    let mut v: serde_json::Value = serde_json::from_str(template).unwrap();
    v["rcpt_to"] = serde_json::json!(["u@caf\u{e9}.example"]);
    let line = serde_json::to_string(&v).unwrap().replace("caf\u{e9}", "caf\\u00e9");
    out.push_str(&line.replacen("\"sensor\":\"b", "\"sensor\":\"\\u0062", 1));
    out.push('\n');
    out
}

/// Every event line of `from`'s segments, rewritten by `f`, into `to`.
fn rewrite(from: &Path, to: &Path, f: impl Fn(&str) -> String) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let out: String = text.lines().map(|l| f(l) + "\n").collect();
        std::fs::write(to.join(p.file_name().unwrap()), out).unwrap();
    }
}

fn report(capture: &Path, synth: &Path) -> String {
    let (acc, damage) = scan(capture, &Filter::default(), 2).unwrap();
    assert_eq!(damage.bad_lines + damage.torn_tails, 0, "{:?}", damage.examples);
    let bodies = port25_capture::bodies::Bodies::open(&synth.join("capture/bodies")).unwrap();
    let mut enricher = port25_report::enrich::Enricher::default();
    enricher.add(&synth.join("geoip.csv")).unwrap();
    enricher.add(&synth.join("routeviews.pfx2as")).unwrap();
    let opt = port25_report::table1::Options { top: 50, ..Default::default() };
    let r = port25_report::table1::build(&acc, damage, &enricher, Some(&bodies), &opt);
    let ctx = port25_report::output::Context {
        source: "SpamPots capture".into(),
        window: port25_report::output::capture_window(&r, None, None),
        markers: Vec::new(),
    };
    let section = port25_report::output::capture_section(&r, &ctx, "capture", "SpamPots capture");
    format!("{}\n{}", serde_json::to_string(&r).unwrap(), serde_json::to_string(&section).unwrap())
}

#[test]
fn fast_path_and_serde_give_the_same_report() {
    let synth = tempfile::tempdir().unwrap();
    generate(&params(), synth.path()).unwrap();
    let events = synth.path().join("capture/events");
    // The extra lines go at the end of the last segment.
    let mut segs: Vec<_> = std::fs::read_dir(&events).unwrap().map(|e| e.unwrap().path()).collect();
    segs.sort();
    let last = segs.last().unwrap();
    let text = std::fs::read_to_string(last).unwrap();
    let template = text.lines().find(|l| l.contains("\"probe\":false")).expect("a spam message").to_owned();
    std::fs::write(last, text + &extra_lines(&template)).unwrap();

    let fast = synth.path().join("fast/events");
    rewrite(&events, &fast, str::to_owned);
    let slow = synth.path().join("slow/events");
    rewrite(&events, &slow, |l| {
        assert!(l.contains("\"event\":\"port25."), "{l}");
        l.replacen("\"event\":\"port25.", "\"event\":\"\\u0070ort25.", 1)
    });

    // Both paths are taken: the fast one answers for the writer's lines
    // (non-ASCII included), not for escapes; serde reads every slow line.
    let (mut answered, mut lines, mut non_ascii) = (0, 0, 0);
    for (dir, want_fast) in [(&fast, true), (&slow, false)] {
        for e in std::fs::read_dir(dir).unwrap() {
            for l in std::fs::read(e.unwrap().path()).unwrap().split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let f = port25_capture::fastview::parse(l);
                assert!(serde_json::from_slice::<port25_capture::view::EventView>(l).is_ok());
                if want_fast {
                    lines += 1;
                    answered += usize::from(f.is_some());
                    non_ascii += usize::from(f.is_some() && !l.is_ascii());
                } else {
                    assert!(f.is_none(), "{}", String::from_utf8_lossy(l));
                }
            }
        }
    }
    // The extra lines with escapes (4 of 5) are serde's in both captures.
    assert_eq!((lines - answered, non_ascii > 100), (4, true), "{answered} of {lines}, {non_ascii} non-ASCII");

    let a = report(&fast, synth.path());
    let b = report(&slow, synth.path());
    assert!(a.contains("dé.example") && a.contains("café.example") && a.contains("socks\\\"5"), "{a}");
    assert_eq!(a, b);
}

/// Segments compressed with zstd (`events-*.jsonl.zst`, how a 100 M-event
/// capture fits the disk: bench/report.sh `COMPRESS=1`) give the same
/// report as the plain ones; a segment present both ways is refused.
#[test]
fn compressed_segments_give_the_same_report() {
    let synth = tempfile::tempdir().unwrap();
    generate(&Params { messages: 1_500, ..params() }, synth.path()).unwrap();
    // The generator's log fits one segment: cut it in four.
    let mut lines = String::new();
    let mut gen: Vec<_> =
        std::fs::read_dir(synth.path().join("capture/events")).unwrap().map(|e| e.unwrap().path()).collect();
    gen.sort();
    for p in &gen {
        lines += &std::fs::read_to_string(p).unwrap();
    }
    let all: Vec<&str> = lines.lines().collect();
    let events = synth.path().join("split/events");
    std::fs::create_dir_all(&events).unwrap();
    for (i, part) in all.chunks(all.len() / 4 + 1).enumerate() {
        let text: String = part.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(events.join(format!("events-20070101-{:06}.jsonl", i + 1)), text).unwrap();
    }
    let packed = synth.path().join("packed/events");
    std::fs::create_dir_all(&packed).unwrap();
    let mut segs: Vec<_> = std::fs::read_dir(&events).unwrap().map(|e| e.unwrap().path()).collect();
    segs.sort();
    assert_eq!(segs.len(), 4, "{segs:?}");
    for (i, p) in segs.iter().enumerate() {
        let name = p.file_name().unwrap().to_str().unwrap();
        let bytes = std::fs::read(p).unwrap();
        // Every other segment compressed; in two frames (as `cat a.zst b.zst`).
        if i % 2 == 0 {
            let (a, b) = bytes.split_at(bytes.len() / 2);
            let mut z = zstd::stream::encode_all(a, 3).unwrap();
            z.extend(zstd::stream::encode_all(b, 3).unwrap());
            std::fs::write(packed.join(format!("{name}.zst")), z).unwrap();
        } else {
            std::fs::write(packed.join(name), bytes).unwrap();
        }
    }
    let read = std::sync::atomic::AtomicU64::new(0);
    let (g, _) = port25_report::scan::scan_grouped(&packed, &Filter::default(), None, 2, &|n| {
        read.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    let on_disk: u64 = std::fs::read_dir(&packed).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert_eq!(read.into_inner(), on_disk, "progress counts the bytes on disk");
    assert!(g.total.spam.emails > 1_000);
    assert_eq!(report(&events, synth.path()), report(&packed, synth.path()));

    let first = segs[0].file_name().unwrap().to_str().unwrap();
    std::fs::copy(&segs[0], packed.join(first)).unwrap();
    let err = scan(&packed, &Filter::default(), 2).unwrap_err().to_string();
    assert!(err.contains("the same segment twice"), "{err}");
}
