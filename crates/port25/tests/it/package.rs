//! The Debian package (issue 15, section 1): built with
//! dist/debian/build-deb.sh, installed with dpkg on this machine (the suite
//! runs as root), its user, files and modes checked, its systemd units
//! checked by `systemd-analyze verify` and `systemd-analyze security`, then
//! removed (data kept) and purged (data gone).

use crate::harness::{require, BIN};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const UNITS: &[&str] = &[
    "port25.service",
    "port25-mx.socket",
    "port25-submission.socket",
    "port25-submissions.socket",
    "port25-spampot.service",
    "port25-spampot.socket",
    "port25-collector.service",
    "port25-collector.socket",
];

/// Runs dpkg, waiting while another installation holds its lock.
fn dpkg(args: &[&str]) -> String {
    let start = Instant::now();
    loop {
        let out = Command::new(require("dpkg")).args(args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() {
            return text;
        }
        let locked = text.contains("lock") || text.contains("locked");
        assert!(locked && start.elapsed() < Duration::from_secs(300), "dpkg {args:?} failed: {text}");
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Purges the package whatever happens to the test.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "port25"]).output();
    }
}

fn mode(path: &str) -> (u32, u32, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

fn id(what: &str, name: &str) -> Option<Vec<String>> {
    let out = Command::new("getent").args([what, name]).output().unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().split(':').map(str::to_owned).collect())
}

/// `systemd-analyze security --offline=true UNIT`: the overall exposure.
fn exposure(unit: &str) -> f64 {
    let out = Command::new(require("systemd-analyze"))
        .args(["security", "--offline=true", "--no-pager", unit])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("{text}{}", String::from_utf8_lossy(&out.stderr)));
    let figure = line.split(':').nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok());
    figure.unwrap_or_else(|| panic!("no figure in {line:?}"))
}

#[test]
fn the_debian_package_installs_runs_its_checks_removes_and_purges() {
    require("dpkg-deb");
    require("objdump");
    assert!(
        id("passwd", "port25").is_none() && !Path::new("/var/lib/port25").exists(),
        "port25 is already installed on this machine: dpkg --purge port25 first"
    );
    let out_dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/debian/build-deb.sh");
    let built = Command::new("bash")
        .arg(&script)
        .arg(BIN)
        .arg(out_dir.path())
        .env("PORT25_DEB_COMPRESSION", "gzip")
        .output()
        .unwrap();
    assert!(built.status.success(), "build-deb.sh: {}", String::from_utf8_lossy(&built.stderr));
    let deb = String::from_utf8_lossy(&built.stdout).trim().to_owned();
    let info = Command::new("dpkg-deb").args(["--info", &deb, "conffiles"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&info.stdout),
        "/etc/port25/port25.toml\n/etc/port25/spampot.toml\n/etc/port25/collect.toml\n"
    );

    let _guard = Installed;
    dpkg(&["--install", &deb]);

    // The configuration installed is valid, and the production one.
    let check = Command::new("/usr/bin/port25").args(["config", "check", "/etc/port25/port25.toml"]).output().unwrap();
    let summary = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{summary}{}", String::from_utf8_lossy(&check.stderr));
    assert!(
        summary.contains("data_dir   /var/lib/port25\n") && summary.contains("listener   mx 0.0.0.0:25 Mx"),
        "{summary}"
    );
    assert!(summary.contains("listener   submissions 0.0.0.0:465 Submission tls=Implicit"), "{summary}");

    // What ExecStartPre= runs, as the service's user, with the three ports
    // held the way the socket units hold them (a port already held by
    // another server on this machine counts the same).
    let _sockets: Vec<std::net::TcpListener> =
        [25, 587, 465].iter().filter_map(|p| std::net::TcpListener::bind(("0.0.0.0", *p)).ok()).collect();
    let pre = Command::new(require("runuser"))
        .args(["-u", "port25", "--", "/usr/bin/port25", "serve", "--check", "--config", "/etc/port25/port25.toml"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&pre.stdout);
    assert!(
        pre.status.success() && said.contains("all checks passed"),
        "serve --check as port25: {said}{}",
        String::from_utf8_lossy(&pre.stderr)
    );
    assert!(said.contains("ok    data_dir: /var/lib/port25 writable, mode 0700"), "{said}");
    drop(_sockets);

    // The user: a system account with no login and no home of its own.
    let user = id("passwd", "port25").expect("user port25");
    let group = id("group", "port25").expect("group port25");
    let (uid, gid): (u32, u32) = (user[2].parse().unwrap(), group[2].parse().unwrap());
    assert!(uid < 1000 && user[5] == "/var/lib/port25" && user[6] == "/usr/sbin/nologin", "{user:?}");
    assert_eq!(mode("/var/lib/port25"), (0o700, uid, gid));
    assert_eq!(mode("/etc/port25"), (0o750, 0, gid));
    assert_eq!(mode("/etc/port25/port25.toml"), (0o640, 0, gid));
    assert_eq!(mode("/etc/port25/collect.toml"), (0o640, 0, gid));
    assert_eq!(mode("/usr/bin/port25").0, 0o755);
    for unit in UNITS {
        assert_eq!(mode(&format!("/lib/systemd/system/{unit}")), (0o644, 0, 0));
    }
    assert!(Path::new("/usr/share/doc/port25/DEPLOY.md").exists());

    // The units as installed: systemd's own checks.
    let paths: Vec<String> = UNITS.iter().map(|u| format!("/lib/systemd/system/{u}")).collect();
    let verify = Command::new(require("systemd-analyze")).args(["verify", "--man=no"]).args(&paths).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&verify.stdout), String::from_utf8_lossy(&verify.stderr));
    // Other packages' units on this machine may draw warnings; ours draw none.
    let ours: Vec<&str> = said.lines().filter(|l| l.contains("port25")).collect();
    assert!(verify.status.success() && ours.is_empty(), "systemd-analyze verify: {said}");
    for unit in ["port25.service", "port25-spampot.service", "port25-collector.service"] {
        let e = exposure(&format!("/lib/systemd/system/{unit}"));
        println!("systemd-analyze security --offline=true {unit}: exposure {e}");
        assert!(e <= 2.0, "{unit}: exposure {e} > 2.0");
    }
    // The alternative: binding with CAP_NET_BIND_SERVICE instead of sockets.
    let dropin = Path::new("/etc/systemd/system/port25.service.d");
    std::fs::create_dir_all(dropin).unwrap();
    std::fs::copy("/usr/share/doc/port25/examples/bind-capability.conf", dropin.join("bind-capability.conf")).unwrap();
    let alt = exposure("port25.service");
    std::fs::remove_dir_all(dropin).unwrap();
    println!("systemd-analyze security --offline=true port25.service + bind-capability.conf: exposure {alt}");
    assert!(alt <= 2.0, "with bind-capability.conf: exposure {alt} > 2.0");

    // Remove: the program goes, the data and the configuration stay.
    std::fs::write("/var/lib/port25/kept", b"mail").unwrap();
    dpkg(&["--remove", "port25"]);
    assert!(!Path::new("/usr/bin/port25").exists() && !Path::new("/lib/systemd/system/port25.service").exists());
    assert_eq!(std::fs::read("/var/lib/port25/kept").unwrap(), b"mail");
    assert!(Path::new("/etc/port25/port25.toml").exists() && id("passwd", "port25").is_some());

    // Purge: nothing left.
    dpkg(&["--purge", "port25"]);
    for gone in ["/var/lib/port25", "/etc/port25"] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
    assert!(id("passwd", "port25").is_none() && id("group", "port25").is_none());
}
