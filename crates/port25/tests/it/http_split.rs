//! The HTTP side split in two (issue 13, item 11): the public listener
//! answers only mail client autoconfiguration, the private one metrics,
//! dashboard and health; and `/metrics` reports the queues from gauges the
//! spool keeps, without opening a spool file. Checked with curl, and with
//! inotify on the spool directory (root reads any file whatever its mode,
//! so "unreadable files" would prove nothing here: inotify sees every open).

use crate::harness::*;
use crate::http::listening;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn curl(url: &str) -> (u16, String) {
    let out =
        Command::new(require("curl")).args(["-s", "--max-time", "20", "-w", "\n%{http_code}", url]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

/// Every open of a file in `dir`, from the moment of the call.
struct Opens(OwnedFd);

impl Opens {
    fn watch(dir: &Path) -> Opens {
        // SAFETY: plain system calls; the descriptor is owned right away.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify_init1: {}", std::io::Error::last_os_error());
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), libc::IN_OPEN | libc::IN_ACCESS) };
        assert!(wd >= 0, "inotify_add_watch: {}", std::io::Error::last_os_error());
        Opens(fd)
    }

    /// Names of the files opened or read since the watch began.
    fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            // SAFETY: reads into our buffer, at most its length.
            let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return names;
            }
            let mut pos = 0;
            while pos < n as usize {
                // struct inotify_event: wd, mask, cookie, len, then name.
                let len = u32::from_ne_bytes(buf[pos + 12..pos + 16].try_into().unwrap()) as usize;
                let name = &buf[pos + 16..pos + 16 + len];
                names.push(String::from_utf8_lossy(name).trim_end_matches('\0').to_owned());
                pos += 16 + len;
            }
        }
    }
}

#[test]
fn metrics_is_private_and_reads_no_spool_file() {
    // Every message defers (the mailbox directory is a file) and waits an
    // hour for its retry, so the batches stay in the spool untouched.
    let mx = "domains = [\"example.net\"]\nrecipients = [\"stuck@example.net\"]\n[delivery]\nfirst_retry_secs = 3600\nmax_retry_secs = 3600\n";
    let s = Server::start(mx, MX_LISTENER);
    let domain = s.data().join("mail/example.net");
    std::fs::create_dir_all(&domain).unwrap();
    std::fs::write(domain.join("stuck"), b"not a directory").unwrap();
    let (public, private) = (listening(&s, "public"), listening(&s, "private"));
    assert_ne!(public, private);

    const N: usize = 6;
    for i in 0..N {
        let mut c = Client::open(s.addr());
        c.cmd("EHLO client.example");
        assert_eq!(
            code(&c.send_mail("s@remote.example", &["stuck@example.net"], &format!("Subject: {i}\r\n\r\nx"))),
            250
        );
        c.cmd("QUIT");
    }
    let start = Instant::now();
    while s.events("port25.delivery.deferred").len() < N {
        assert!(start.elapsed() < Duration::from_secs(15), "deferrals: {:?}", s.events("port25.delivery.deferred"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let batches = s.data().join("spool/batches");
    let files: Vec<_> = std::fs::read_dir(&batches).unwrap().map(|e| e.unwrap().path()).collect();
    let on_disk: u64 =
        files.iter().filter(|p| p.extension().is_some_and(|e| e == "batch")).map(|p| p.metadata().unwrap().len()).sum();
    assert!(on_disk > 0, "{files:?}");

    // Public: autoconfig only. Private: the rest, and no autoconfig.
    for path in ["/metrics", "/dashboard", "/dashboard/login", "/healthz", "/readyz"] {
        assert_eq!(curl(&format!("http://{public}{path}")).0, 404, "{path} on the public listener");
    }
    assert_eq!(curl(&format!("http://{public}/mail/config-v1.1.xml?emailaddress=a@example.net")).0, 200);
    assert_eq!(curl(&format!("http://{private}/mail/config-v1.1.xml?emailaddress=a@example.net")).0, 404);
    assert_eq!(curl(&format!("http://{private}/healthz")).0, 200);

    let opens = Opens::watch(&batches);
    let mut metrics = String::new();
    for _ in 0..3 {
        let (status, body) = curl(&format!("http://{private}/metrics"));
        assert_eq!(status, 200, "{body}");
        metrics = body;
    }
    let sample = |name: &str| -> f64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{queue=\"local\"}} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"));
        line.rsplit_once(' ').unwrap().1.parse().unwrap()
    };
    assert_eq!(sample("port25_spool_messages"), N as f64);
    assert_eq!(sample("port25_spool_recipients"), N as f64);
    assert_eq!(sample("port25_spool_bytes"), on_disk as f64);
    assert!(sample("port25_spool_oldest_age_seconds") < 60.0);
    let opened = opens.names();
    assert!(opened.is_empty(), "/metrics opened spool files: {opened:?}");
    // The watch does see an open (so the empty list above means something).
    std::fs::read(&files[0]).unwrap();
    assert!(!opens.names().is_empty(), "inotify saw no open of {}", files[0].display());
}
