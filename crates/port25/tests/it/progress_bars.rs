//! Issue 18 (b): `egress flows` over pcap files and `users import` show a
//! progress bar on a terminal (bytes or records done, rate, time left) and
//! nothing when standard error is a pipe or with --quiet; what they print
//! on standard output is the same either way.

use crate::harness::{on_terminal, BIN};
use std::path::Path;
use std::process::Command;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn piped(args: &[&str]) -> (String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "port25 {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_bar(tty: &str, what: &str) {
    assert!(
        tty.contains(&format!("{what:18} [")) && tty.contains("left)") && tty.contains("\x1b[2K"),
        "no {what} bar drawn on the terminal: {tty:?}"
    );
}

fn assert_quiet(stderr: &str, what: &str) {
    assert!(
        !stderr.contains(what) && !stderr.contains('\x1b'),
        "{what}: control characters or a bar where there is no terminal: {stderr:?}"
    );
}

#[test]
fn egress_flows_over_pcap_files_shows_a_bar_on_a_terminal_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let pcap = root.join("fuzz/seeds/egress_pcap/softflowd-ipfix-ethernet.pcap");
    let policy = root.join("dist/egress.toml");
    let args = ["egress", "flows", "--policy", p(&policy), "--pcap", p(&pcap), "--pcap", p(&pcap), "--format", "csv"];
    let tty = on_terminal(&args);
    assert_bar(&tty, "reading flows");
    let (stdout, stderr) = piped(&args);
    assert_quiet(&stderr, "reading flows");
    assert!(tty.contains(stdout.lines().next().unwrap()), "{tty:?}");
    let quiet = on_terminal(&[&args[..], &["--quiet"]].concat());
    assert_quiet(&quiet, "reading flows");
}

#[test]
fn users_import_shows_a_bar_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let hash = Command::new("openssl")
        .args(["passwd", "-6", "-salt", "saltsalt", "secret"])
        .output()
        .expect("openssl (Debian package openssl) runs");
    assert!(hash.status.success());
    let hash = String::from_utf8_lossy(&hash.stdout).trim().to_owned();
    let file = dir.path().join("users.txt");
    std::fs::write(&file, (0..3000).map(|i| format!("user{i}@example.net:{hash}\n")).collect::<String>()).unwrap();
    let run = |n: u32, extra: &[&str], tty: bool| {
        let config = dir.path().join(format!("port25-{n}.toml"));
        std::fs::write(&config, format!("data_dir = \"{}\"\n", dir.path().join(format!("data-{n}")).display()))
            .unwrap();
        let args = [&["users", "import", p(&file), "-c", p(&config)][..], extra].concat();
        if tty {
            on_terminal(&args)
        } else {
            let (o, e) = piped(&args);
            assert_quiet(&e, "importing users");
            o
        }
    };
    let tty = run(1, &[], true);
    assert_bar(&tty, "importing users");
    assert!(tty.contains("3000 added"), "{tty:?}");
    assert!(run(2, &[], false).contains("3000 added"));
    let quiet = run(3, &["--quiet"], true);
    assert_quiet(&quiet, "importing users");
}
