//! `port25 serve` under systemd (issue 15, section 1), with systemd's own
//! tools as the peers: socket activation through `systemd-socket-activate`
//! (the sockets and LISTEN_FDS/LISTEN_FDNAMES systemd would pass), sd_notify
//! on a notification socket the test holds, the journal through a real
//! `systemd-journald` read back with `journalctl`, and `serve --check`.

use crate::harness::{base_config, require, BIN};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MX: &str = "domains = [\"example.net\"]\nrecipients = [\"alice@example.net\"]";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_config(dir: &Path, mx_address: &str) -> PathBuf {
    let path = dir.join("port25.toml");
    std::fs::write(&path, base_config(dir, MX, &format!("[[listener]]\nname = \"mx\"\naddress = \"{mx_address}\"\n")))
        .unwrap();
    path
}

/// `systemd-socket-activate -l 127.0.0.1:PORT [ARGS] port25 serve --config F`,
/// its stderr (port25's JSON log) collected.
pub(crate) struct Activated {
    pub(crate) child: Child,
    pub(crate) log: Arc<Mutex<Vec<String>>>,
}

impl Activated {
    fn start(port: u16, extra: &[&str], config: &Path) -> Activated {
        Activated::start_many(&[port], extra, config)
    }

    fn start_many(ports: &[u16], extra: &[&str], config: &Path) -> Activated {
        Activated::start_port25(ports, extra, &["serve", "--config", config.to_str().unwrap()])
    }

    /// `systemd-socket-activate -l 127.0.0.1:PORT... [EXTRA] port25 ARGS`
    /// (systemd_spampot.rs runs the sensor and the collector this way).
    pub(crate) fn start_port25(ports: &[u16], extra: &[&str], args: &[&str]) -> Activated {
        let activate = require("systemd-socket-activate");
        let mut child = Command::new(activate)
            .args(ports.iter().flat_map(|p| ["-l".to_owned(), format!("127.0.0.1:{p}")]))
            .args(extra)
            .arg(BIN)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("systemd-socket-activate (Debian package systemd)");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (stderr, l) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        let a = Activated { child, log };
        // It binds, then starts the service at the first connection.
        for p in ports {
            a.wait_log(&format!("Listening on 127.0.0.1:{p} "), Duration::from_secs(10))
                .expect("systemd-socket-activate did not listen");
        }
        a
    }

    pub(crate) fn wait_log(&self, needle: &str, wait: Duration) -> Option<String> {
        let start = Instant::now();
        while start.elapsed() < wait {
            if let Some(l) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return Some(l.clone());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub(crate) fn term(&mut self) -> std::process::ExitStatus {
        // systemd-socket-activate execs the service (Accept=no): this pid is port25's.
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(start.elapsed() < Duration::from_secs(40), "port25 did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn swaks(addr: &str) -> (bool, String) {
    let out = Command::new(require("swaks"))
        .args([
            "--server",
            addr,
            "--from",
            "bob@remote.example",
            "--to",
            "alice@example.net",
            "--header",
            "Subject: activated",
        ])
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Datagrams on the notification socket until one contains `want`.
pub(crate) fn wait_notify(sock: &UnixDatagram, want: &str, seen: &mut Vec<String>) -> bool {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(n) = sock.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = text.lines().any(|l| l == want);
            seen.push(text);
            if hit {
                return true;
            }
        }
    }
    false
}

#[test]
fn socket_activation_serves_mail_on_the_inherited_socket_and_notifies() {
    let dir = tempfile::tempdir().unwrap();
    // The configured address is taken by the test: binding it would fail,
    // so mail that arrives came through the socket systemd passed.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = write_config(dir.path(), &taken.local_addr().unwrap().to_string());
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let port = free_port();
    let env_notify = format!("NOTIFY_SOCKET={}", notify_path.display());
    let mut s = Activated::start(port, &["--fdname=mx", "-E", &env_notify, "-E", "WATCHDOG_USEC=300000"], &config);

    // systemd-socket-activate starts the service at the first connection.
    let (ok, text) = swaks(&format!("127.0.0.1:{port}"));
    assert!(ok && text.contains("250 2.0.0 Ok: queued as"), "{text}\nlog: {:?}", s.log.lock().unwrap());
    let mut seen = Vec::new();
    assert!(
        wait_notify(&notify, "READY=1", &mut seen),
        "no READY=1; notifications {seen:?}; log {:?}",
        s.log.lock().unwrap()
    );
    let listening = s.wait_log("port25.server.listening", Duration::from_secs(5)).expect("listening event");
    assert!(listening.contains(&format!("\"address\":\"127.0.0.1:{port}\"")), "{listening}");
    let maildir = dir.path().join("data/mail/example.net/alice/new");
    let start = Instant::now();
    while std::fs::read_dir(&maildir).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "no mail in {}", maildir.display());
        std::thread::sleep(Duration::from_millis(50));
    }

    // The watchdog: every half WATCHDOG_USEC (150 ms).
    let mut pings = 0;
    let start = Instant::now();
    while pings < 3 && start.elapsed() < Duration::from_secs(10) {
        if wait_notify(&notify, "WATCHDOG=1", &mut seen) {
            pings += 1;
        }
    }
    assert_eq!(pings, 3, "{seen:?}");

    // A reload: RELOADING=1 (with the monotonic time systemd wants), then READY=1.
    Command::new("kill").args(["-HUP", &s.child.id().to_string()]).status().unwrap();
    assert!(wait_notify(&notify, "RELOADING=1", &mut seen), "{seen:?}");
    assert!(seen.last().unwrap().contains("MONOTONIC_USEC="), "{seen:?}");
    assert!(wait_notify(&notify, "READY=1", &mut seen), "{seen:?}");
    assert!(s.wait_log("port25.server.reloaded", Duration::from_secs(5)).is_some());

    let status = s.term();
    assert!(wait_notify(&notify, "STOPPING=1", &mut seen), "{seen:?}");
    assert!(status.success(), "{status:?} {:?}", s.log.lock().unwrap());
    let ready = seen.iter().position(|d| d.lines().any(|l| l == "READY=1")).unwrap();
    let stopping = seen.iter().position(|d| d.lines().any(|l| l == "STOPPING=1")).unwrap();
    assert!(ready < stopping);
    println!("notifications: {seen:?}");
}

#[test]
fn socket_activation_without_names_matches_by_address_and_refuses_a_stranger() {
    // No --fdname: the socket goes to the listener configured with its address.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &format!("127.0.0.1:{port}"));
    let mut s = Activated::start(port, &[], &config);
    let (ok, text) = swaks(&format!("127.0.0.1:{port}"));
    assert!(ok, "{text}");
    let listening = s.wait_log("port25.server.listening", Duration::from_secs(5)).expect("listening event");
    assert!(listening.contains(&format!("\"address\":\"127.0.0.1:{port}\"")), "{listening}");
    assert!(s.term().success());

    // A socket named for no listener: refused at start, naming the fix.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), "127.0.0.1:0");
    let mut s = Activated::start(port, &["--fdname=smtp"], &config);
    let _first = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "port25 kept running with a socket for no listener");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let error = s
        .wait_log("matches no [[listener]]", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("{:?}", s.log.lock().unwrap()));
    assert!(error.contains("\"smtp\"") && error.contains("FileDescriptorName="), "{error}");
}

fn check(config: &Path, user: Option<&str>) -> (i32, String) {
    let mut cmd = match user {
        Some(u) => {
            let mut c = Command::new(require("runuser"));
            c.args(["-u", u, "--", BIN]);
            c
        }
        None => Command::new(BIN),
    };
    let out = cmd.args(["serve", "--check", "--config"]).arg(config).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn serve_check_passes_a_good_setup_and_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let mx = held.local_addr().unwrap();
    let config = write_config(dir.path(), &mx.to_string());
    let (code, out) = check(&config, None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("all checks passed") && out.contains("held by a listening socket"), "{out}");
    // --check starts nothing and makes nothing.
    assert!(!dir.path().join("data").exists());

    let append = |extra: &str| {
        let text = std::fs::read_to_string(&config).unwrap();
        let p = dir.path().join("broken.toml");
        std::fs::write(&p, format!("{text}\n{extra}")).unwrap();
        p
    };
    // A certificate that is not there.
    let p = append("[tls]\ncertificate = \"/nonexistent/fullchain.pem\"\nprivate_key = \"/nonexistent/privkey.pem\"\n");
    let (code, out) = check(&p, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  tls: cannot read /nonexistent/fullchain.pem"), "{out}");

    // A key that belongs to another certificate.
    let a = rcgen::generate_simple_self_signed(vec!["mx.test.example".into()]).unwrap();
    let b = rcgen::generate_simple_self_signed(vec!["mx.test.example".into()]).unwrap();
    std::fs::write(dir.path().join("a.crt"), a.cert.pem()).unwrap();
    std::fs::write(dir.path().join("b.key"), b.key_pair.serialize_pem()).unwrap();
    let p = append(&format!(
        "[tls]\ncertificate = \"{}/a.crt\"\nprivate_key = \"{}/b.key\"\n",
        dir.path().display(),
        dir.path().display()
    ));
    let (code, out) = check(&p, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  tls: certificate and key do not form a usable TLS configuration"), "{out}");

    // A pair that belongs together but expired in 2021.
    let mut params = rcgen::CertificateParams::new(vec!["mx.test.example".to_owned()]).unwrap();
    (params.not_before, params.not_after) = (rcgen::date_time_ymd(2020, 1, 1), rcgen::date_time_ymd(2021, 1, 1));
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.path().join("old.crt"), params.self_signed(&key).unwrap().pem()).unwrap();
    std::fs::write(dir.path().join("old.key"), key.serialize_pem()).unwrap();
    let p = append(&format!(
        "[tls]\ncertificate = \"{d}/old.crt\"\nprivate_key = \"{d}/old.key\"\n",
        d = dir.path().display()
    ));
    let (code, out) = check(&p, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("FAIL  certificate: {}/old.crt: expired", dir.path().display())), "{out}");

    // A data directory others can read.
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::set_permissions(dir.path().join("data"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (code, out) = check(&config, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is mode 0755") && out.contains("chmod 0700"), "{out}");
    std::fs::remove_dir(dir.path().join("data")).unwrap();

    // An address this machine does not have.
    let p = dir.path().join("elsewhere.toml");
    std::fs::write(&p, std::fs::read_to_string(&config).unwrap().replace(&mx.to_string(), "192.0.2.1:2525")).unwrap();
    let (code, out) = check(&p, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  listener mx: 192.0.2.1:2525: 192.0.2.1 is not an address of this machine"), "{out}");
}

#[test]
fn serve_check_as_an_unprivileged_user_needs_the_socket_or_the_capability_for_port_25() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    // A privileged port nothing listens on (port 1, tcpmux, is unused here).
    let port = (1..1024).find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok()).expect("a free port below 1024");
    let config = write_config(dir.path(), &format!("127.0.0.1:{port}"));
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (code, out) = check(&config, Some("nobody"));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "FAIL  listener mx: 127.0.0.1:{port}: port {port} is below 1024 and nothing listens on it"
        )),
        "{out}"
    );
    assert!(out.contains("port25-mx.socket") && out.contains("CAP_NET_BIND_SERVICE"), "{out}");
    // Held by a socket (what port25-mx.socket does): passes.
    let _held = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (_, out) = check(&config, Some("nobody"));
    assert!(out.contains("ok    listener mx: ") && out.contains("held by a listening socket"), "{out}");
}

#[test]
fn under_journald_events_are_journal_entries_with_the_event_id_as_a_field() {
    require("unshare");
    require("swaks");
    assert!(
        Path::new("/lib/systemd/systemd-journald").exists(),
        "systemd-journald is missing: apt-get install systemd"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &format!("127.0.0.1:{port}"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/journal_ns.sh");
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "bash"])
        .arg(&script)
        .arg(BIN)
        .arg(&config)
        .arg(port.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let entries: Vec<serde_json::Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let event = |id: &str| entries.iter().find(|e| e["PORT25_EVENT"] == id).cloned();
    let listening = event("port25.server.listening").unwrap_or_else(|| panic!("no listening entry in {entries:#?}"));
    assert_eq!(listening["PORT25_LISTENER"], "mx");
    assert_eq!(listening["PORT25_ADDRESS"], format!("127.0.0.1:{port}"));
    assert_eq!(listening["_TRANSPORT"], "journal", "sent natively, not as a text line");
    assert_eq!(listening["PRIORITY"], "6");
    assert_eq!(listening["SYSLOG_IDENTIFIER"], "port25");
    let accepted = event("port25.smtp.data.accepted").unwrap_or_else(|| panic!("{entries:#?}"));
    assert!(accepted["MESSAGE"].as_str().unwrap().contains("event=\"port25.smtp.data.accepted\""), "{accepted}");
    assert!(event("port25.server.stopped").is_some());
    // Nothing went to the stream as text (no line twice).
    let text_lines: Vec<&serde_json::Value> = entries.iter().filter(|e| e["_TRANSPORT"] == "stdout").collect();
    assert!(text_lines.is_empty(), "{text_lines:#?}");
}

/// Three sockets, named in another order than the listeners are written:
/// each is served by its own listener (plain MX, STARTTLS submission,
/// implicit-TLS submissions), none of which could bind its configured address.
#[test]
fn three_sockets_go_to_the_listeners_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let taken: Vec<TcpListener> = (0..3).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let at = |i: usize| taken[i].local_addr().unwrap().to_string();
    let listeners = format!(
        "[[listener]]\nname = \"mx\"\naddress = \"{}\"\ntls = \"none\"\n\
         [[listener]]\nname = \"submission\"\naddress = \"{}\"\nservice = \"submission\"\ntls = \"starttls\"\n\
         [[listener]]\nname = \"submissions\"\naddress = \"{}\"\nservice = \"submission\"\ntls = \"implicit\"\n",
        at(0),
        at(1),
        at(2)
    );
    let config = dir.path().join("port25.toml");
    std::fs::write(&config, base_config(dir.path(), MX, &listeners)).unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let (p_submissions, p_mx, p_submission) = (ports[0], ports[1], ports[2]);
    let mut s = Activated::start_many(&ports, &["--fdname=submissions:mx:submission"], &config);
    let ehlo = |port: u16, extra: &[&str]| {
        let out = Command::new(require("swaks"))
            .args(["--server", &format!("127.0.0.1:{port}"), "--quit-after", "EHLO"])
            .args(extra)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // The MX: plain, no STARTTLS offered (tls = "none").
    let (ok, text) = ehlo(p_mx, &[]);
    assert!(ok && text.contains("<-  250") && !text.contains("STARTTLS"), "{text}");
    // Submission: STARTTLS offered.
    let (ok, text) = ehlo(p_submission, &[]);
    assert!(ok && text.contains("STARTTLS"), "{text}");
    // Submissions: TLS from the first byte.
    let (ok, text) = ehlo(p_submissions, &["--tlsc"]);
    assert!(ok && text.contains("TLS started"), "{text}");
    for (name, port) in [("mx", p_mx), ("submission", p_submission), ("submissions", p_submissions)] {
        let bound = format!("\"listener\":\"{name}\",\"address\":\"127.0.0.1:{port}\"");
        assert!(
            s.wait_log(&bound, Duration::from_secs(5)).is_some(),
            "{name} is not on {port}: {:#?}",
            s.log.lock().unwrap()
        );
    }
    assert!(s.term().success());
}
