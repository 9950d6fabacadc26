//! Files that hold mail, password hashes or private keys are 0600 and
//! their directories 0700 whatever the umask (issue 13, item 20): the
//! server runs under umask 022, as from a shell or a plain service unit,
//! and every file and directory it made under its data directory is
//! checked with std::fs::metadata.

use crate::harness::*;
use crate::local_retry::SUBMISSION;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every path under `dir` (not `dir` itself) with its permission bits.
fn modes(dir: &Path, out: &mut Vec<(PathBuf, u32, bool)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        out.push((e.path(), m.permissions().mode() & 0o7777, m.is_dir()));
        if m.is_dir() {
            modes(&e.path(), out);
        }
    }
}

/// Paths whose group or other bits are set, except `public` ones.
fn readable_by_others(dir: &Path, public: &[&str]) -> Vec<String> {
    let mut all = Vec::new();
    modes(dir, &mut all);
    assert!(!all.is_empty());
    all.iter()
        .filter(|(p, _, _)| !public.iter().any(|x| p.ends_with(x)))
        .filter(|(_, mode, is_dir)| if *is_dir { *mode != 0o700 } else { *mode != 0o600 })
        .map(|(p, mode, _)| format!("{} {mode:o}", p.display()))
        .collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o7777
}

fn files_in(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect()
}

fn set_umask_022() {
    // SAFETY: umask only sets the process's file mode mask.
    unsafe { libc::umask(0o022) };
}

#[test]
fn mail_accounts_spool_and_keys_are_0600_in_0700_directories_under_umask_022() {
    set_umask_022();
    let mx = "domains = [\"example.net\"]\nrecipients = [\"alice@example.net\", \"stuck@example.net\"]\n[delivery]\nfirst_retry_secs = 3600\nmax_retry_secs = 3600\n[outbound]\nhold = true\n";
    let s = Server::start(mx, &format!("{MX_LISTENER}{SUBMISSION}"));
    let data = s.data();
    let config = s.dir.path().join("port25.toml");

    // accounts.db, made by the CLI while the server has it open (WAL).
    let mut users = Command::new(BIN)
        .args(["users", "add", "carol@example.net", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut users.stdin.take().unwrap(), b"carol pw\n").unwrap();
    assert!(users.wait().unwrap().success());
    // A DKIM key.
    let key = data.join("dkim.pem");
    let out =
        Command::new(BIN).args(["dkim", "keygen", "--domain", "example.net", "--out"]).arg(&key).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A Maildir delivery, then a batch that stays in the spool with a done
    // file (alice delivered, stuck deferred for an hour).
    let mut c = Client::open(s.addr());
    c.cmd("EHLO client.example");
    assert_eq!(code(&c.send_mail("s@remote.example", &["alice@example.net"], "Subject: 1\r\n\r\nsecret")), 250);
    assert_eq!(s.wait_for_mail("example.net", "alice", 1, Duration::from_secs(10)).len(), 1);
    std::fs::write(data.join("mail/example.net/stuck"), b"not a directory").unwrap();
    assert_eq!(
        code(&c.send_mail("s@remote.example", &["alice@example.net", "stuck@example.net"], "Subject: 2\r\n\r\nsecret")),
        250
    );
    let start = Instant::now();
    while files_in(&data.join("spool/batches"), ".done").is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no done file: {:?}",
            files_in(&data.join("spool/batches"), "")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_file(data.join("mail/example.net/stuck")).unwrap();
    // Submitted mail for a remote domain, held in the outbound queue.
    let plain = s.addrs.iter().find(|(n, _)| n == "plain").unwrap().1;
    let mut p = Client::open(plain);
    p.cmd("EHLO laptop.example");
    // AUTH PLAIN \0carol@example.net\0carol pw
    assert_eq!(code(&p.cmd("AUTH PLAIN AGNhcm9sQGV4YW1wbGUubmV0AGNhcm9sIHB3")), 235);
    assert_eq!(
        code(&p.send_mail(
            "carol@example.net",
            &["bob@remote.example"],
            "From: carol@example.net\r\nSubject: 3\r\n\r\nsecret"
        )),
        250
    );

    // What must be there, each 0600.
    let mut private = vec![
        data.join("accounts.db"),
        data.join("accounts.db-wal"),
        data.join("accounts.db-shm"),
        data.join("tls/selfsigned.key"),
        key,
    ];
    private.extend(files_in(&data.join("spool/batches"), ".batch"));
    private.extend(files_in(&data.join("spool/batches"), ".done"));
    private.extend(files_in(&data.join("mail/example.net/alice/new"), ""));
    private.extend(files_in(&data.join("outbound/batches"), ".batch"));
    assert_eq!(private.len(), 10, "{private:?}");
    for f in &private {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    assert_eq!(mode(&data), 0o700);
    // And nothing else under the data directory is readable by others,
    // but the certificate (public by nature).
    let open = readable_by_others(&data, &["tls/selfsigned.crt"]);
    assert!(open.is_empty(), "readable by group or others under umask 022: {open:#?}");
}

#[test]
fn spampot_captures_are_0600_in_0700_directories_under_umask_022() {
    set_umask_022();
    let sensor = crate::http::sensor_with_a_hostile_capture();
    let capture = sensor.data().join("capture");
    let start = Instant::now();
    // The body is stored with the event (group commit): wait for both.
    loop {
        let mut all = Vec::new();
        modes(&capture, &mut all);
        if all.iter().filter(|(_, _, d)| !d).count() >= 2 || start.elapsed() > Duration::from_secs(10) {
            assert!(all.iter().filter(|(_, _, d)| !d).count() >= 2, "{all:?}");
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(mode(&sensor.data()), 0o700);
    let open = readable_by_others(&sensor.data(), &[]);
    assert!(open.is_empty(), "readable by group or others under umask 022: {open:#?}");
}
