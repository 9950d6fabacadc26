//! Attribution behind a CGNAT: one public address (198.51.100.77) shared by
//! alice and bob through port blocks. Flows from softflowd/nfcapd are
//! mapped (public address, source port, time) -> inside address by the
//! port-block log, then inside address -> subscriber by the radacct export.
//! The log is read as the documented CSV and as RFC 8158 IPFIX NAT events
//! (a capture written here, with a vendor's own natEvent numbering that
//! --cgnat-numbering declares); a release without its allocation is a
//! warning naming file:line.

use crate::flows::{Traffic, T0};
use crate::{example_policy, must, BIN};
use std::path::Path;
use std::process::Command;

const RADACCT: &str = "acctsessionid,username,acctstarttime,acctstoptime,framedipaddress\n\
                       s1,alice,2025-11-24 15:00:00,,100.64.0.10\n\
                       s2,bob,2025-11-24 15:00:00,,100.64.0.11\n";

const CGNAT_CSV: &str = "time,event,inside,outside,port_first,port_last\n\
                         2025-11-24T15:59:00Z,allocate,100.64.0.10,198.51.100.77,1024,2047\n\
                         2025-11-24T15:59:00Z,allocate,100.64.0.11,198.51.100.77,2048,3071\n\
                         2025-11-24T16:20:00Z,release,100.64.0.99,198.51.100.77,9000,9999\n";

/// IPFIX NAT events (RFC 8158 information elements) from exporter
/// 192.0.2.200 in a raw-IP pcap; the vendor numbers allocate 3, release 4.
const IPFIX_PCAP: &str = r#"
import socket, struct, sys
out, t0 = sys.argv[1], int(sys.argv[2])
fields = [(323, 8), (230, 1), (8, 4), (225, 4), (361, 2), (362, 2)]
tmpl = struct.pack(">HH", 256, len(fields)) + b"".join(struct.pack(">HH", i, l) for i, l in fields)
tset = struct.pack(">HH", 2, 4 + len(tmpl)) + tmpl
def rec(ms, ev, inside, outside, a, b):
    return struct.pack(">QB4s4sHH", ms, ev, socket.inet_aton(inside), socket.inet_aton(outside), a, b)
recs = rec((t0 - 60) * 1000, 3, "100.64.0.10", "198.51.100.77", 1024, 2047) + rec((t0 - 60) * 1000, 3, "100.64.0.11", "198.51.100.77", 2048, 3071) \
     + rec((t0 + 3600) * 1000, 4, "100.64.0.10", "198.51.100.77", 1024, 2047)
dset = struct.pack(">HH", 256, 4 + len(recs)) + recs
msg = tset + dset
msg = struct.pack(">HHIII", 10, 16 + len(msg), t0, 1, 7) + msg
udp = struct.pack(">HHHH", 4739, 4739, 8 + len(msg), 0) + msg
ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton("192.0.2.200"), socket.inet_aton("127.0.0.1")) + udp
with open(out, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 101))
    f.write(struct.pack("<IIII", t0, 0, len(ip), len(ip)) + ip)
"#;

fn flows(dir: &Path) -> std::path::PathBuf {
    let mut t = Traffic { packets: Vec::new() };
    // Through the CGNAT: alice's connection from port 1500 of her block,
    // bob's three from his, and one from a port in no block.
    t.attempt(T0 + 10, "198.51.100.77", "100.64.1.25", 1500, 25);
    for i in 0..3u32 {
        t.attempt(T0 + 20 + i, "198.51.100.77", "100.64.2.25", 2500 + i as u16, 25);
    }
    t.attempt(T0 + 30, "198.51.100.77", "100.64.3.25", 5000, 25);
    let pcap = dir.join("cgnat.pcap");
    std::fs::write(&pcap, t.pcap()).unwrap();
    let nf = dir.join("flows");
    crate::nfcapd::store(&pcap, &nf);
    nf
}

fn report(nf: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    let out = Command::new(BIN)
        .args(["egress", "flows", "--policy"])
        .arg(example_policy())
        .arg("--nfcapd")
        .arg(nf)
        .args(["--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    (serde_json::from_slice(&out.stdout).unwrap(), err)
}

/// (subscriber name or "-", flows) per row, sorted.
fn who(r: &serde_json::Value) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = r["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (row["attribution"]["subscriber"].as_str().unwrap_or("-").to_owned(), row["flows"].as_u64().unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn public_address_and_port_name_the_subscriber_through_port_blocks() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let nf = flows(w);
    let radacct = w.join("radacct.csv");
    std::fs::write(&radacct, RADACCT).unwrap();
    let csv = w.join("cgnat.csv");
    std::fs::write(&csv, CGNAT_CSV).unwrap();
    let (r, err) = report(
        &nf,
        &[
            "--attribution",
            &format!("radacct-csv:{}", radacct.display()),
            "--attribution",
            &format!("cgnat-csv:{}", csv.display()),
        ],
    );
    assert_eq!(who(&r), [("-".to_owned(), 1), ("alice".to_owned(), 1), ("bob".to_owned(), 3)], "{err}\n{r}");
    let alice =
        r["subscribers"].as_array().unwrap().iter().find(|x| x["attribution"]["subscriber"] == "alice").unwrap();
    let via = alice["attribution"]["cgnat"].as_str().unwrap();
    assert!(
        via.starts_with("198.51.100.77:1024-2047 -> 100.64.0.10 2025-11-24T15:59:00Z..open ")
            && via.ends_with("cgnat.csv:2"),
        "{via}"
    );
    assert_eq!(alice["attribution"]["prefix"], "100.64.0.10/32");
    assert!(err.contains("port25: attribution: 2 CGNAT port blocks"), "{err}");
    assert!(
        err.contains(
            "cgnat.csv:4: stop_without_start: release of 198.51.100.77:9000-9999 (100.64.0.99) without its allocation"
        ),
        "{err}"
    );

    // The same blocks as IPFIX NAT events, numbered 3/4 by this exporter.
    let ipfix = w.join("nat-events.pcap");
    must("python3", &["-c", IPFIX_PCAP, ipfix.to_str().unwrap(), &T0.to_string()]);
    let spec = format!("cgnat-ipfix:{}", ipfix.display());
    let radacct_spec = format!("radacct-csv:{}", radacct.display());
    let (r, err) = report(
        &nf,
        &[
            "--attribution",
            &radacct_spec,
            "--attribution",
            &spec,
            "--cgnat-numbering",
            "192.0.2.200=allocate:3,release:4",
        ],
    );
    assert_eq!(who(&r), [("-".to_owned(), 1), ("alice".to_owned(), 1), ("bob".to_owned(), 3)], "{err}\n{r}");
    assert!(err.contains("port25: attribution: 2 CGNAT port blocks"), "{err}");
    // With RFC 8158's numbering 3 and 4 are NAT64 session events: no
    // block, so nobody behind the public address is named.
    let (r, _) = report(&nf, &["--attribution", &radacct_spec, "--attribution", &spec]);
    assert_eq!(who(&r), [("-".to_owned(), 5)]);
}
