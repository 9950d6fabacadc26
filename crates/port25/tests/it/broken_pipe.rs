//! Issue 18 (a): `port25 ... | head` must not panic when the reader goes
//! away. Every command here runs with its standard output (and, the second
//! time, standard error too) on a pipe whose reading end is already
//! closed, so each write gets EPIPE deterministically (a real `head` may or
//! may not have left by the time of the write). The command still does its
//! real work (the report's files are written) and exits with its own
//! status, silently. A full disk behind `>` (/dev/full) is not a reader
//! leaving: that is an error, exit 2, named.

use crate::harness::BIN;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};

/// The writing end of a pipe nobody reads any more.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two descriptors we then own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] is ours and not used again; fds[1] is handed to OwnedFd once.
    unsafe {
        libc::close(fds[0]);
        Stdio::from(OwnedFd::from_raw_fd(fds[1]))
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs `args` with standard output closed (and standard error if
/// `both`); returns (exit code, standard error).
fn run_closed(args: &[&str], both: bool, stdin: &[u8]) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdout(closed_pipe()).stdin(Stdio::piped());
    cmd.stderr(if both { closed_pipe() } else { Stdio::piped() });
    let mut child = cmd.spawn().expect("port25 runs");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn every_command_exits_quietly_when_its_reader_has_gone() {
    let dir = tempfile::tempdir().unwrap();
    let synth = dir.path().join("synth");
    let capture = synth.join("capture");
    let config = dir.path().join("port25.toml");
    std::fs::write(&config, format!("data_dir = \"{}\"\n", dir.path().join("data").display())).unwrap();
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/egress.toml");
    let gen = ["report", "generate", p(&synth), "--days", "3", "--sources", "50", "--messages", "300", "--asns", "10"];
    let report_out = dir.path().join("report");
    let build = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> =
            ["report", "build", "--capture", p(&capture), "--enrich", p(&synth.join("geoip.csv")), "--enrich"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        v.push(p(&synth.join("routeviews.pfx2as")).into());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let mut with_out = build(&["--out"]);
    with_out.push(p(&report_out).into());
    let cases: Vec<(Vec<String>, &[u8], i32)> = vec![
        (gen.iter().map(|s| s.to_string()).collect(), b"", 0),
        (with_out, b"", 0),
        (build(&["--json"]), b"", 0),
        (vec!["--help".into()], b"", 0),
        (vec!["report".into(), "build".into(), "--help".into()], b"", 0),
        (vec!["config".into(), "default".into()], b"", 0),
        (vec!["egress".into(), "compile".into(), "--policy".into(), p(&policy).into()], b"", 0),
        (vec!["egress".into(), "check".into(), "--policy".into(), p(&policy).into(), "192.0.2.1".into()], b"", -1),
        (vec!["users".into(), "add".into(), "alice@example.net".into(), "-c".into(), p(&config).into()], b"pw\n", 0),
        (vec!["users".into(), "list".into(), "-c".into(), p(&config).into()], b"", 0),
        (vec!["dns".into(), "records".into(), "localhost".into()], b"", 0),
    ];
    for both in [false, true] {
        for (args, stdin, want) in &cases {
            let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            if both && args.first() == Some(&"users") && args.get(1) == Some(&"add") {
                continue; // the login exists after the first round
            }
            let (code, stderr) = run_closed(&args, both, stdin);
            assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "port25 {args:?}: {stderr}");
            match want {
                -1 => assert!(matches!(code, Some(0) | Some(1)), "port25 {args:?}: exit {code:?}: {stderr}"),
                w => assert_eq!(code, Some(*w), "port25 {args:?} (stderr closed too: {both}): {stderr}"),
            }
        }
        // The report's files were written although its summary had no reader.
        assert!(report_out.join("report.html").is_file());
        std::fs::remove_dir_all(&report_out).unwrap();
    }
}

#[test]
fn a_full_disk_behind_standard_output_is_an_error() {
    let out = Command::new(BIN)
        .args(["config", "default"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("writing standard output") && stderr.contains("No space left"), "{stderr}");
}

/// The server's log goes to standard error; when its reader is gone
/// (`port25 serve 2>&1 | head`), every log event's write fails. The server
/// must go on serving (tracing-subscriber reported the failed write with
/// eprintln!, which panicked on the same closed stream) and stop cleanly.
#[test]
fn serve_goes_on_when_its_log_reader_has_gone() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listener = format!("[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:{port}\"\n");
    let config = dir.path().join("port25.toml");
    std::fs::write(
        &config,
        crate::harness::base_config(
            dir.path(),
            "domains = [\"example.net\"]\nrecipients = [\"alice@example.net\"]",
            &listener,
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "-c", p(&config)])
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let stream = loop {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            break s;
        }
        assert!(child.try_wait().unwrap().is_none(), "port25 serve died with its log closed: {:?}", child.try_wait());
        assert!(std::time::Instant::now() < deadline, "port25 serve never listened");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut line = String::new();
    for round in 0..3 {
        line.clear();
        if round == 0 {
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with("220 "), "{line:?}");
        }
        w.write_all(b"NOOP\r\n").unwrap();
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("250 "), "round {round}: {line:?}");
    }
    w.write_all(b"QUIT\r\n").unwrap();
    assert!(child.try_wait().unwrap().is_none(), "port25 serve stopped");
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}
