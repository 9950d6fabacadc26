//! `port25 spampot` and `port25 spampot collect` under systemd (issue 15):
//! `systemd-socket-activate` passes the listening sockets (LISTEN_FDS,
//! LISTEN_FDNAMES) the way port25-spampot.socket and
//! port25-collector.socket do, and a notification socket held by the test
//! receives READY=1, WATCHDOG=1 and STOPPING=1. The configured addresses
//! are held by the test, so a service that bound them itself would fail:
//! what answers came through the socket systemd passed.

use crate::harness::require;
use crate::systemd::{wait_notify, Activated};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `systemd-socket-activate -l 127.0.0.1:PORT... --fdname=NAME:... -E
/// NOTIFY_SOCKET=... -E WATCHDOG_USEC=300000 port25 ARGS`; a socket
/// without a name gets "unknown", what systemd-socket-activate gives one.
fn start(sockets: &[(u16, &str)], notify: &Path, args: &[&str]) -> Activated {
    let ports: Vec<u16> = sockets.iter().map(|(p, _)| *p).collect();
    let names: Vec<&str> = sockets.iter().map(|(_, n)| if n.is_empty() { "unknown" } else { n }).collect();
    let (names, notify) = (format!("--fdname={}", names.join(":")), format!("NOTIFY_SOCKET={}", notify.display()));
    Activated::start_port25(&ports, &[&names, "-E", &notify, "-E", "WATCHDOG_USEC=300000"], args)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn notify_socket(dir: &Path) -> (UnixDatagram, std::path::PathBuf) {
    let path = dir.join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    (sock, path)
}

/// READY=1, then WATCHDOG=1 three times (every 150 ms), then on SIGTERM
/// STOPPING=1 and a clean exit.
fn notifies_ready_watchdog_stopping(s: &mut Activated, sock: &UnixDatagram) {
    let mut seen = Vec::new();
    assert!(wait_notify(sock, "READY=1", &mut seen), "no READY=1: {seen:?}; log {:?}", s.log.lock().unwrap());
    for _ in 0..3 {
        assert!(wait_notify(sock, "WATCHDOG=1", &mut seen), "{seen:?}");
    }
    let status = s.term();
    assert!(wait_notify(sock, "STOPPING=1", &mut seen), "{seen:?}");
    assert!(status.success(), "{status:?} {:?}", s.log.lock().unwrap());
}

#[test]
fn the_spampot_takes_its_bait_sockets_from_systemd_and_notifies() {
    let dir = tempfile::tempdir().unwrap();
    // Both configured addresses are taken: binding them would fail.
    let (taken_smtp, taken_proxy) =
        (TcpListener::bind("127.0.0.1:0").unwrap(), TcpListener::bind("127.0.0.1:0").unwrap());
    let (smtp, proxy) = (free_port(), free_port());
    let config = dir.path().join("spampot.toml");
    std::fs::write(
        &config,
        format!(
            "sensor = \"it\"\ndata_dir = \"{}\"\nlog_format = \"json\"\n\
             [[listener]]\nname = \"smtp-25\"\naddress = \"{}\"\nkind = \"smtp\"\n\
             [[listener]]\nname = \"bait\"\naddress = \"127.0.0.1:{proxy}\"\nkind = \"proxy\"\n",
            dir.path().join("data").display(),
            taken_smtp.local_addr().unwrap(),
        ),
    )
    .unwrap();
    let _ = &taken_proxy;
    let (sock, path) = notify_socket(dir.path());
    // One socket by name (--fdname), one without a name: matched by address.
    let mut s = start(&[(smtp, "smtp-25"), (proxy, "")], &path, &["spampot", "--config", config.to_str().unwrap()]);
    // systemd-socket-activate starts the service at the first connection.
    let mut c = TcpStream::connect(("127.0.0.1", smtp)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut banner = [0u8; 4];
    c.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"220 ", "the relay bait's banner on the inherited socket");
    let listening =
        s.wait_log("\"listener\":\"bait\"", Duration::from_secs(15)).expect("the proxy bait's listening event");
    assert!(listening.contains(&format!("127.0.0.1:{proxy}")), "{listening}");
    // The proxy bait answers an HTTP proxy request on its inherited socket.
    let out = Command::new(require("curl"))
        .args(["-s", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", "-x"])
        .arg(format!("http://127.0.0.1:{proxy}"))
        .arg("http://example.com/")
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(code != "000", "the proxy bait did not answer through the inherited socket: {code}");
    drop(c);
    notifies_ready_watchdog_stopping(&mut s, &sock);
}

#[test]
fn the_collector_takes_its_socket_from_systemd_and_notifies() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free_port();
    let config = dir.path().join("collect.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{}\"\ndata_dir = \"{}\"\nlog_format = \"json\"\n[[sensor]]\nname = \"it\"\ntoken = \"it-token-0123456789abcdef\"\n",
            taken.local_addr().unwrap(),
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let (sock, path) = notify_socket(dir.path());
    let mut s = start(&[(port, "collect")], &path, &["spampot", "collect", "--config", config.to_str().unwrap()]);
    // A wrong token over TLS: the collector itself answers (401), on the inherited socket.
    let out = Command::new(require("curl"))
        .args(["-sk", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: Bearer wrong"])
        .arg(format!("https://127.0.0.1:{port}/v1/bodies/{}", "ab".repeat(32)))
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(code.starts_with('4'), "collector over the inherited socket: {code}; log {:?}", s.log.lock().unwrap());
    notifies_ready_watchdog_stopping(&mut s, &sock);
}
