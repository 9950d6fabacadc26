//! `port25 spampot collect` against hostile peers, with curl as the client:
//! a wrong token is answered from the request head (the body is never read),
//! connections are capped per address and overall, duplicate tokens stop
//! start-up.

use crate::harness::*;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "it-token-0123456789abcdef";
const BAD: &str = "Authorization: Bearer wrong-token-0123456789";

fn collector(extra: &str) -> Server {
    Server::start_with("spampot collect", |dir: &Path| {
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nlog_format = \"json\"\n{extra}\n[[sensor]]\nname = \"it-sensor\"\ntoken = \"{TOKEN}\"\n",
            dir.join("data").display()
        )
    })
}

fn body_url(s: &Server) -> String {
    format!("https://127.0.0.1:{}/v1/bodies/{}", s.addr().port(), "ab".repeat(32))
}

/// curl's `-w` output (http_code, then what it uploaded) for a PUT of `file`.
fn curl_put(args: &[&str], file: &Path, url: &str) -> (String, u64) {
    let out = Command::new(require("curl"))
        .args(["-sk", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}"])
        .args(args)
        .arg("-T")
        .arg(file)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, up) = text.split_once(' ').unwrap_or_else(|| panic!("curl printed {text:?}"));
    (code.to_owned(), up.parse::<f64>().unwrap() as u64)
}

/// Peak resident set of a process, in KiB.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn collector_answers_a_wrong_token_from_the_head_without_reading_the_body() {
    let s = collector("");
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'x'; 10 * 1024 * 1024]).unwrap();
    let hwm_before = vm_hwm_kib(s.child.as_ref().unwrap().id());

    // With Expect: 100-continue curl waits for the server's word: the 401
    // comes before a byte of the 10 MiB is sent.
    let (code, uploaded) = curl_put(&["-H", BAD, "-H", "Expect: 100-continue"], &big, &body_url(&s));
    assert_eq!(code, "401");
    assert!(uploaded < 64 * 1024, "curl uploaded {uploaded} bytes before the 401");

    // Without it curl streams the body at once; the collector still answers
    // from the head and reads at most a small, discarded tail.
    let (code, _) = curl_put(&["-H", BAD, "-H", "Expect:"], &big, &body_url(&s));
    assert!(code == "401" || code == "000", "{code}");
    let start = Instant::now();
    let refusals = loop {
        let r: Vec<_> =
            s.events("port25.collect.refused").into_iter().filter(|e| e["reason"] == "bad or missing token").collect();
        if r.len() >= 2 || start.elapsed() > Duration::from_secs(10) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    for r in &refusals {
        let read = r["bytes_read"].as_u64().unwrap_or_else(|| panic!("no bytes_read in {r}"));
        assert!(read < 256 * 1024, "the collector read {read} bytes from a peer without a token");
    }

    // Eight of them at once (the per-address cap) leave the memory as it was.
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(require("curl"))
                .args(["-sk", "--max-time", "20", "-o", "/dev/null", "-H", BAD, "-H", "Expect:", "-T"])
                .arg(&big)
                .arg(body_url(&s))
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        c.wait().unwrap();
    }
    let grown = vm_hwm_kib(s.child.as_ref().unwrap().id()).saturating_sub(hwm_before);
    assert!(grown < 24 * 1024, "peak RSS grew by {grown} KiB for unauthenticated 10 MiB bodies");

    // A sensor's token keeps the large limit: its body is read after the
    // 100 Continue (and refused here only because it is not zstd).
    let two = dir.path().join("two");
    std::fs::write(&two, vec![b'y'; 2 * 1024 * 1024]).unwrap();
    let (code, uploaded) =
        curl_put(&["-H", &format!("Authorization: Bearer {TOKEN}"), "-H", "Expect: 100-continue"], &two, &body_url(&s));
    assert_eq!((code.as_str(), uploaded), ("422", 2 * 1024 * 1024));
}

/// A TCP connection from `src` that holds a slot (it never starts TLS).
fn hold_from(src: &str, to: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{src}:0").parse().unwrap()).unwrap();
        s.connect(to).await.unwrap().into_std().unwrap()
    })
}

/// curl from `src` with a wrong token: the status it saw ("000": none).
fn curl_from(src: &str, s: &Server) -> String {
    let out = Command::new(require("curl"))
        .args(["-sk", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", "--interface", src, "-H", BAD])
        .arg(body_url(s))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_refused(s: &Server, reason: &str) {
    let start = Instant::now();
    while !s.events("port25.collect.refused").iter().any(|e| e["reason"] == reason) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no refusal {reason:?}: {:?}",
            s.events("port25.collect.refused")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn collector_caps_connections_per_address_and_overall() {
    // The held connections never start TLS: the handshake deadline must
    // outlast the test, which on a loaded machine took over 30 s (the
    // default), and CI saw the first two freed before the overall cap.
    let s = collector("max_connections = 3\nmax_connections_per_address = 2\nhandshake_timeout_secs = 600");
    let held = [hold_from("127.0.0.1", s.addr()), hold_from("127.0.0.1", s.addr())];
    // hold_from returns once the kernel has the connection; the collector
    // counts it when it accepts it, a moment later on a loaded machine (CI
    // saw a third connection served before the two held ones were counted).
    wait_curl(&s, "127.0.0.1", "000", "a third connection from one address is closed at once");
    wait_refused(&s, "too many connections from this address");
    assert_eq!(curl_from("127.0.0.2", &s), "401", "another address is still served");
    let third = hold_from("127.0.0.2", s.addr());
    wait_curl(&s, "127.0.0.3", "000", "over the overall cap every address is refused");
    wait_refused(&s, "too many connections");
    drop(held);
    drop(third);
    wait_curl(&s, "127.0.0.1", "401", "slots were not freed when their connections closed");
}

/// Retries curl from `src` until it sees `want`: the collector counts a
/// connection (or frees its slot) a moment after the kernel has it, so one
/// attempt can see the state before. 30 s: once in five full runs of the
/// suite 10 s were not enough.
fn wait_curl(s: &Server, src: &str, want: &str, what: &str) {
    let start = Instant::now();
    loop {
        let got = curl_from(src, s);
        if got == want {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{what}: curl from {src} saw {got:?}, not {want:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn duplicate_tokens_in_collect_toml_stop_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collect.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[[sensor]]\nname = \"a\"\ntoken = \"{TOKEN}\"\n[[sensor]]\nname = \"b\"\ntoken = \"{TOKEN}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["spampot", "collect", "--config"])
        .arg(&path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(15) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the collector started with two sensors sharing one token");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:8: sensor \"b\"", path.display())) && err.contains("line 5"), "{err}");
}
