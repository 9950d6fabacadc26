//! Events published to a real hpfeeds broker (the Python reference broker,
//! `hpfeeds-broker` from PyPI's hpfeeds, installed by .ci/install-deps) and
//! read back by a subscriber with the reference client.

use crate::harness::*;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const SUBSCRIBER: &str = r#"
import sys, hpfeeds.client
c = hpfeeds.client.new("127.0.0.1", int(sys.argv[1]), "reader", "reader-secret")
c.subscribe("spampot.events")
print("subscribed", flush=True)
c.run(lambda ident, chan, payload: print(ident, chan, payload.decode(), flush=True), lambda e: print("error", e, flush=True))
"#;

#[test]
fn events_are_published_to_an_hpfeeds_broker() {
    let broker_bin = require_in_path("hpfeeds-broker");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _broker = Kill(
        Command::new(broker_bin)
            .args(["--bind", &format!("127.0.0.1:{port}"), "--auth", "env"])
            .env("HPFEEDS_SPAMPOT_SECRET", "spampot-secret")
            .env("HPFEEDS_SPAMPOT_PUBCHANS", "spampot.events")
            .env("HPFEEDS_READER_SECRET", "reader-secret")
            .env("HPFEEDS_READER_SUBCHANS", "spampot.events")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "hpfeeds-broker did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut sub =
        Command::new("python3").args(["-c", SUBSCRIBER, &port.to_string()]).stdout(Stdio::piped()).spawn().unwrap();
    let out = sub.stdout.take().unwrap();
    let _sub = Kill(sub);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(20)).unwrap(), "subscribed");

    let s = Server::start_with("spampot", |dir: &Path| {
        format!(
            "sensor = \"hp-sensor\"\ndata_dir = \"{}\"\nlog_format = \"json\"\n[[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:0\"\nkind = \"smtp\"\n\
             [hpfeeds]\nbroker = \"127.0.0.1:{port}\"\nident = \"spampot\"\nsecret = \"spampot-secret\"\n",
            dir.join("data").display()
        )
    });
    // Publishing is best effort: send until the subscriber sees a message
    // (the sensor may still be logging in to the broker for the first one).
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(20), "no message event reached the subscriber");
        let mut c = Client::open(s.addr());
        c.cmd("EHLO hp.example");
        assert!(c
            .send_mail("hp@spam.example", &["v@victim.example"], "Subject: hp\r\n\r\nfeed me\r\n")
            .starts_with("250"));
        c.cmd("QUIT");
        let got: Vec<String> = rx.try_iter().collect();
        if let Some(line) = got.iter().find(|l| l.contains("\"port25.spampot.message\"")) {
            assert!(line.starts_with("spampot spampot.events {"), "{line}");
            let json: serde_json::Value =
                serde_json::from_str(line.split_once(' ').unwrap().1.split_once(' ').unwrap().1).unwrap();
            assert_eq!(json["sensor"], "hp-sensor");
            assert_eq!(json["mail_from"], "hp@spam.example");
            assert_eq!(json["digest"].as_str().unwrap().len(), 64);
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Like `require`, for programs pip installs (found on PATH).
fn require_in_path(program: &str) -> std::path::PathBuf {
    let out = Command::new("sh").args(["-c", &format!("command -v {program}")]).output().unwrap();
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!path.is_empty(), "{program} is not installed; run .ci/install-deps (pip install 'hpfeeds[broker]')");
    path.into()
}
