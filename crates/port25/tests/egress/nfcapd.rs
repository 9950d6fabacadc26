//! `egress flows --nfcapd`: nfdump 1.7's own files, as the ISP's flow store
//! holds them. softflowd exports the test traffic (IPFIX) to an nfcapd that
//! stores it uncompressed and repeats every datagram to a second nfcapd
//! (LZ4, -y), which repeats to a third (LZO, -z); nfdump also rewrites the
//! first file aggregated per source and destination (records standing for
//! several flows). port25 reads each directory and must give nfdump's
//! per-subscriber counts, which are the known ones.

use crate::flows::{expected, free_udp_port, nfdump_counts, port25_counts, spambots, traffic, BLOCK_AT, SOFTFLOWD};
use crate::{must, require, BIN};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nfcapd(port: u16, dir: &std::path::Path, extra: &[&str]) -> Kill {
    std::fs::create_dir_all(dir).unwrap();
    Kill(
        Command::new("nfcapd")
            .args(["-p", &port.to_string(), "-b", "127.0.0.1", "-t", "3600", "-w"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// softflowd (IPFIX) -> one nfcapd writing uncompressed into `dir`.
pub(crate) fn store(pcap: &std::path::Path, dir: &std::path::Path) {
    for tool in ["softflowd", "nfcapd"] {
        require(tool);
    }
    let port = free_udp_port();
    let mut n = nfcapd(port, dir, &[]);
    std::thread::sleep(Duration::from_millis(700));
    {
        let _guard = SOFTFLOWD.lock().unwrap_or_else(|e| e.into_inner());
        must(
            "softflowd",
            &["-a", "-6", "-d", "-r", pcap.to_str().unwrap(), "-n", &format!("127.0.0.1:{port}"), "-v", "10"],
        );
    }
    std::thread::sleep(Duration::from_millis(700));
    must("kill", &["-TERM", &n.0.id().to_string()]);
    n.0.wait().unwrap();
}

fn flows_json(path: &std::path::Path) -> (serde_json::Value, String) {
    let out = Command::new(BIN)
        .args(["egress", "flows", "--policy"])
        .arg(crate::example_policy())
        .arg("--nfcapd")
        .arg(path)
        .args(["--format", "json", "--block-at", &BLOCK_AT.to_string()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    (serde_json::from_slice(&out.stdout).unwrap(), err)
}

#[test]
fn nfcapd_files_agree_with_nfdump_uncompressed_lz4_lzo_and_aggregated() {
    for tool in ["softflowd", "nfcapd", "nfdump"] {
        require(tool);
    }
    let work = tempfile::tempdir().unwrap();
    let pcap = work.path().join("traffic.pcap");
    std::fs::write(&pcap, traffic().pcap()).unwrap();
    let (plain, lz4, lzo) = (work.path().join("plain"), work.path().join("lz4"), work.path().join("lzo"));
    let (p1, p2, p3) = (free_udp_port(), free_udp_port(), free_udp_port());
    let mut c = nfcapd(p3, &lzo, &["-z"]);
    let mut b = nfcapd(p2, &lz4, &["-y", "-R", &format!("127.0.0.1/{p3}")]);
    let mut a = nfcapd(p1, &plain, &["-R", &format!("127.0.0.1/{p2}")]);
    std::thread::sleep(Duration::from_millis(700));
    {
        let _guard = SOFTFLOWD.lock().unwrap_or_else(|e| e.into_inner());
        must(
            "softflowd",
            &["-a", "-6", "-d", "-r", pcap.to_str().unwrap(), "-n", &format!("127.0.0.1:{p1}"), "-v", "10"],
        );
    }
    std::thread::sleep(Duration::from_millis(700));
    // Each nfcapd writes its file (and the header's block count) on SIGTERM.
    for k in [&mut a, &mut b, &mut c] {
        must("kill", &["-TERM", &k.0.id().to_string()]);
        k.0.wait().unwrap();
    }
    // nfdump's own tools: the first file aggregated per (source, destination).
    let first = std::fs::read_dir(&plain)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("nfcapd."))
        .unwrap();
    let agg = work.path().join("agg");
    std::fs::create_dir_all(&agg).unwrap();
    must(
        "nfdump",
        &[
            "-r",
            first.to_str().unwrap(),
            "-A",
            "srcip,dstip,proto,dstport",
            "-w",
            agg.join("nfcapd.202511241600").to_str().unwrap(),
        ],
    );

    let want = expected(true);
    for (dir, compression) in [(&plain, "uncompressed"), (&lz4, "lz4"), (&lzo, "lzo"), (&agg, "aggregated")] {
        let header =
            must("nfdump", &["-v", std::fs::read_dir(dir).unwrap().next().unwrap().unwrap().path().to_str().unwrap()]);
        if compression != "aggregated" && compression != "uncompressed" {
            assert!(header.to_lowercase().contains(&format!("{compression} compressed")), "{compression}: {header}");
        }
        let nfdump = nfdump_counts(dir);
        let (report, err) = flows_json(dir);
        let ours = port25_counts(&report);
        assert_eq!(ours, nfdump, "{compression}: port25 and nfdump disagree\n{err}");
        assert_eq!(ours, want, "{compression}");
        let mut bots = spambots(&report);
        bots.sort();
        assert_eq!(bots, ["198.51.100.77", "2001:db8:100:1::/64"], "{compression}");
        let s = &report["nfcapd"];
        assert_eq!(
            (
                s["files"].as_u64(),
                s["blocks_corrupt"].as_u64(),
                s["records_malformed"].as_u64(),
                s["problems"].as_u64()
            ),
            (Some(1), Some(0), Some(0), Some(0)),
            "{compression}: {s}"
        );
        if compression != "aggregated" {
            let bot =
                report["subscribers"].as_array().unwrap().iter().find(|r| r["subscriber"] == "198.51.100.77").unwrap();
            assert_eq!(
                (bot["flows_before_block"].as_u64(), bot["flows_after_block"].as_u64()),
                (Some(25), Some(15)),
                "{compression}"
            );
        }
    }

    // The same file cut short: what was read before the cut is reported,
    // the cut is named with its byte offset, and the run still succeeds.
    let data = std::fs::read(&first).unwrap();
    let cut = work.path().join("cut");
    std::fs::create_dir_all(&cut).unwrap();
    std::fs::write(cut.join("nfcapd.202511241600"), &data[..data.len() / 2]).unwrap();
    let (report, err) = flows_json(&cut);
    assert_eq!(report["nfcapd"]["files_cut_short"], 1, "{err}");
    assert!(err.contains("nfcapd.202511241600: byte 40: block 1 is cut short"), "{err}");
    // Not an nfdump file at all: refused, naming the file.
    let junk = work.path().join("junk.nf");
    std::fs::write(&junk, b"not flows").unwrap();
    let out = Command::new(BIN)
        .args(["egress", "flows", "--policy"])
        .arg(crate::example_policy())
        .arg("--nfcapd")
        .arg(&junk)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("junk.nf: not an nfdump file (bad magic number)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory of several files in each compression, one with a block
/// that does not decompress and one cut short, read by several threads:
/// the same rows as the flows read one by one, every flow counted once,
/// and the problems named with their own file, in file order.
#[test]
fn nfcapd_directory_read_in_parallel_counts_every_file_in_order() {
    use port25_egress::flow::nfcapd::{write, Compression};
    use port25_egress::flow::Flow;
    let bot = |i: u64, dst: u8| Flow {
        src: "198.51.100.77".parse().unwrap(),
        dst: std::net::IpAddr::from([203, 0, 113, dst]),
        src_port: 40000,
        dst_port: 25,
        proto: 6,
        tcp_flags: 2,
        packets: 3,
        bytes: 180,
        start_ms: 1_764_000_000_000 + i * 1000,
        end_ms: 1_764_000_000_500 + i * 1000,
    };
    // 10 blocks of 30 flows per file: a subscriber's flows run across
    // blocks and files; other traffic (port 443) is only counted.
    let file = |from: u64, c: Compression| {
        let flows: Vec<Flow> = (from..from + 300)
            .map(|i| {
                let mut f = bot(i, (i % 200) as u8);
                if i % 3 == 0 {
                    f.src = std::net::IpAddr::from([198, 51, 100, (i % 50) as u8]);
                }
                if i % 7 == 0 {
                    f.dst_port = 443;
                }
                f
            })
            .collect();
        write(&flows, c, 30)
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nfcapd.202511241600"), file(0, Compression::Lz4)).unwrap();
    // A first block that does not decompress (a match before its start),
    // then the file's ten good blocks.
    let good = file(300, Compression::Lzo);
    let mut bad = good[..40].to_vec();
    bad.extend_from_slice(&[1, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 0x12, b'a', 64 | 7 << 2, 9]);
    bad.extend_from_slice(&good[40..]);
    bad[36..40].copy_from_slice(&11u32.to_le_bytes());
    std::fs::write(dir.path().join("nfcapd.202511241605"), &bad).unwrap();
    let cut = file(600, Compression::None);
    std::fs::write(dir.path().join("nfcapd.202511241610"), &cut[..cut.len() - 100]).unwrap();
    std::fs::write(dir.path().join("nfcapd.202511241615"), file(900, Compression::Lz4)).unwrap();
    // The one nfcapd is still writing is left out.
    std::fs::write(dir.path().join("nfcapd.current.1234"), b"half written").unwrap();

    let (report, err) = flows_json(dir.path());
    let s = &report["nfcapd"];
    // The cut file loses its last block (30 records).
    assert_eq!((s["files"].as_u64(), s["flows"].as_u64()), (Some(4), Some(1200 - 30)), "{s}\n{err}");
    assert_eq!((s["blocks_corrupt"].as_u64(), s["files_cut_short"].as_u64()), (Some(1), Some(1)), "{s}");
    let named: Vec<&str> = s["problems_named"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(named.len(), 2, "{named:?}");
    assert!(named[0].contains("nfcapd.202511241605: byte 40: block 1 does not decompress (lzo)"), "{named:?}");
    assert!(named[1].contains("nfcapd.202511241610: ") && named[1].contains("cut short"), "{named:?}");
    // What the files hold, counted here: port-25 flows per subscriber.
    let mut want = std::collections::BTreeMap::new();
    for i in (0..1200u64).filter(|i| !(870..900).contains(i) && i % 7 != 0) {
        let src = if i % 3 == 0 { format!("198.51.100.{}", i % 50) } else { "198.51.100.77".into() };
        *want.entry(src).or_insert(0u64) += 1;
    }
    // The example policy exempts its mail server.
    want.remove("198.51.100.25");
    let got: std::collections::BTreeMap<String, u64> = report["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["subscriber"].as_str().unwrap().to_owned(), r["flows"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, want, "{err}");
    // Read in order: the bot's last flow is the last file's.
    let row = report["subscribers"].as_array().unwrap().iter().find(|r| r["subscriber"] == "198.51.100.77").unwrap();
    assert_eq!(row["last_seen"], "2025-11-24T16:19:59Z", "{row}");
}
