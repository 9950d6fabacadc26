//! Issue 18 (d): notices to abuse contacts. Per AS, every spam source the
//! capture saw, as an ARF report (RFC 5965) with the evidence (times,
//! counts, sample headers), addressed to the AS's abuse mailbox from an
//! offline file (CSV or an RIR whois export in RPSL); written to files,
//! nothing sent. Python's mailbox/email read them as ARF, and the report's
//! own complaint reader (`report build --complaints`) counts them back.

use crate::harness::BIN;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn notices_per_as_to_abuse_contacts_read_back_as_arf() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    let gen = Command::new(BIN)
        .args([
            "report",
            "generate",
            p(&synth),
            "--seed",
            "3",
            "--days",
            "4",
            "--sources",
            "120",
            "--messages",
            "2000",
            "--asns",
            "12",
        ])
        .output()
        .unwrap();
    assert!(gen.status.success(), "{}", String::from_utf8_lossy(&gen.stderr));
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(synth.join("truth.json")).unwrap()).unwrap();
    // The generator's ASes; contacts for all but the last: half in CSV, half in a RIPE-style whois export.
    let pfx = std::fs::read_to_string(synth.join("routeviews.pfx2as")).unwrap();
    let mut asns: Vec<u32> = pfx.lines().filter_map(|l| l.split('\t').nth(2)?.parse().ok()).collect();
    asns.sort();
    asns.dedup();
    assert!(asns.len() >= 4, "{asns:?}");
    let uncovered = *asns.last().unwrap();
    let mut csv = String::from("asn,abuse,name\n");
    let mut rpsl = String::from("% RIPE-style split export (aut-num, role)\n\n");
    let mut contact = BTreeMap::new();
    for (i, a) in asns[..asns.len() - 1].iter().enumerate() {
        let addr = format!("abuse@as{a}.example");
        if i % 2 == 0 {
            csv.push_str(&format!("AS{a},{addr},NET{a}\n"));
        } else {
            rpsl.push_str(&format!(
                "aut-num:        AS{a}\nas-name:        NET{a}\nabuse-c:        AR{a}-RIPE\nsource:         RIPE\n\n"
            ));
            rpsl.push_str(&format!("role:           Abuse team\nnic-hdl:        AR{a}-RIPE\nabuse-mailbox:  {addr}\nsource:         RIPE\n\n"));
        }
        contact.insert(*a, addr);
    }
    // A line that could inject a recipient is refused, not obeyed.
    csv.push_str(&format!("AS{uncovered},abuse@x.example\rBcc: victim@y.example,\n"));
    let (csv_file, rpsl_file) = (dir.path().join("contacts.csv"), dir.path().join("ripe.db.aut-num"));
    std::fs::write(&csv_file, &csv).unwrap();
    std::fs::write(&rpsl_file, &rpsl).unwrap();

    let out_dir = dir.path().join("notices");
    let run = Command::new(BIN)
        .args([
            "report",
            "notices",
            "--capture",
            p(&synth.join("capture")),
            "--enrich",
            p(&synth.join("routeviews.pfx2as")),
        ])
        .args([
            "--contacts",
            p(&csv_file),
            "--contacts",
            p(&rpsl_file),
            "--reporter",
            "spampots@cert.example",
            "--max-sources",
            "100000",
            "--out",
            p(&out_dir),
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("nothing was sent"), "{stdout}");
    assert!(stderr.contains("is not an e-mail address"), "the injecting line is named: {stderr}");

    // index.csv: asn,contact,sources,emails,notices,file
    let index = std::fs::read_to_string(out_dir.join("index.csv")).unwrap();
    let mut files = Vec::new();
    let mut emails_indexed = 0;
    for l in index.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let asn: u32 = f[0].parse().unwrap();
        assert_eq!(f[1], contact[&asn], "{l}");
        emails_indexed += f[3].parse::<u64>().unwrap();
        files.push(out_dir.join(f[5]));
    }
    let missing = std::fs::read_to_string(out_dir.join("no-contact.csv")).unwrap();
    let emails_missing: u64 =
        missing.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().parse::<u64>().unwrap()).sum();
    assert!(missing.lines().skip(1).all(|l| l.starts_with(&format!("{uncovered},"))), "{missing}");
    assert_eq!(
        emails_indexed + emails_missing,
        truth["emails"].as_u64().unwrap(),
        "every spam message is in one notice or in no-contact.csv"
    );

    // Python's mailbox + email: real ARF, to the contact, evidence inside.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/report_notices.py");
    let py = Command::new("python3").arg(&script).args(&files).output().expect("python3 runs");
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let parsed: BTreeMap<String, Vec<serde_json::Value>> = serde_json::from_slice(&py.stdout).unwrap();
    let mut notices = 0;
    let mut incidents = 0;
    for (file, msgs) in &parsed {
        let asn: u32 = Path::new(file).file_stem().unwrap().to_str().unwrap().trim_start_matches("AS").parse().unwrap();
        for m in msgs {
            assert_eq!(m["to"], contact[&asn].as_str(), "{file}");
            assert_eq!(m["from"], "spampots@cert.example");
            assert_eq!(m["feedback_type"], "abuse");
            assert_eq!(
                m["types"],
                serde_json::json!(["text/plain", "message/feedback-report", "text/rfc822-headers"]),
                "{file}"
            );
            let text = m["text"].as_str().unwrap();
            assert!(
                text.contains("first seen:")
                    && text.contains("last seen:")
                    && text.contains(&format!("messages:    {}", m["incidents"])),
                "{text}"
            );
            assert!(m["headers"].as_str().unwrap().contains("Subject:"), "sample headers: {}", m["headers"]);
            incidents += m["incidents"].as_u64().unwrap();
            notices += 1;
        }
    }
    assert_eq!(incidents, emails_indexed);

    // The report's ARF reader counts every notice, none unreadable.
    let mut args: Vec<String> = vec!["report".into(), "build".into(), "--json".into()];
    for f in &files {
        args.push("--complaints".into());
        args.push(p(f).into());
    }
    let back = Command::new(BIN).args(&args).output().unwrap();
    assert!(back.status.success(), "{}", String::from_utf8_lossy(&back.stderr));
    let v: serde_json::Value = serde_json::from_slice(&back.stdout).unwrap();
    assert_eq!(v["complaints"]["reports"], notices, "{}", v["complaints"]);
    assert_eq!(v["complaints"]["arf"], notices);
    assert_eq!(v["complaints"]["unreadable"], 0);

    // A second run into the same directory would mix two runs: refused.
    let again = Command::new(BIN)
        .args([
            "report",
            "notices",
            "--capture",
            p(&synth.join("capture")),
            "--enrich",
            p(&synth.join("routeviews.pfx2as")),
        ])
        .args(["--contacts", p(&csv_file), "--reporter", "spampots@cert.example", "--out", p(&out_dir)])
        .output()
        .unwrap();
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("not empty"));
    // A contacts file in no known layout (an RIR delegated-stats file) is refused saying what was expected.
    let delegated = dir.path().join("delegated-lacnic-extended-latest");
    std::fs::write(
        &delegated,
        "2|lacnic|20130301|3|19700101|20130301|+0000\nlacnic|BR|asn|28573|1|20000101|allocated|abc\n",
    )
    .unwrap();
    let bad = Command::new(BIN)
        .args([
            "report",
            "notices",
            "--capture",
            p(&synth.join("capture")),
            "--enrich",
            p(&synth.join("routeviews.pfx2as")),
        ])
        .args(["--contacts", p(&delegated), "--reporter", "spampots@cert.example", "--out", p(&dir.path().join("n2"))])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success()
            && e.contains("expected CSV with the header \"asn,abuse\"")
            && e.contains("delegated-stats file has no contacts"),
        "{e}"
    );
}
