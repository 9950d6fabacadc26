//! The command line: --version, --help, config check.

use crate::harness::*;
use std::process::Command;

#[test]
fn version_and_help() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("port25 {}", env!("CARGO_PKG_VERSION")));
    let out = Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--config"));
}

#[test]
fn config_check_reports_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "hostname = \"mx.example.net\"\n[mx]\ndomains = [\"example.net\"]\n\n[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:25\"\nmax_recipents = 10\n",
    )
    .unwrap();
    let out = Command::new(BIN).args(["config", "check"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&format!("{}:8:1: unknown field `max_recipents`", bad.display())), "{err}");
    assert!(err.contains("fix:"), "{err}");
    // serve refuses to start on the same file, with the same message.
    let out = Command::new(BIN).args(["serve", "--config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":8:1: unknown field"));

    let good = dir.path().join("good.toml");
    let out = Command::new(BIN).args(["config", "default"]).output().unwrap();
    std::fs::write(&good, &out.stdout).unwrap();
    let out = Command::new(BIN).args(["config", "check"]).arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("listener   mx 127.0.0.1:2525 Mx tls=Starttls"));
}

#[test]
fn config_check_names_a_postgresql_connection_string_that_would_not_connect() {
    // The directory's and the shared store's strings are parsed when the file
    // is read, not when serve first opens the database: a typo is a line.
    let dir = tempfile::tempdir().unwrap();
    let head = "hostname = \"mx.example.net\"\n[mx]\ndomains = [\"example.net\"]\n";
    let directory = "[submission.directory]\ntype = \"postgresql\"\nlogin_query = \"SELECT password FROM users WHERE login = $1\"\n";
    let cases = [
        (format!("{head}{directory}connection = \"host=/run/postgresql port=fivefourthreetwo\"\n"), 7),
        (format!("{head}{directory}connection = \"host=/run/postgresql\"\n[submission.shared]\nbackend = \"postgresql\"\nconnection = \"hots=db.example\"\n"), 10),
    ];
    for (i, (text, line)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("pg{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let out = Command::new(BIN).args(["config", "check"]).arg(&file).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with(&format!("{}:{line}:", file.display())), "{err}");
        assert!(err.contains("is not a PostgreSQL connection string"), "{err}");
        assert!(err.contains("fix: libpq key=value pairs or a postgresql:// URL"), "{err}");
    }
    // The same file with a good string passes.
    let file = dir.path().join("good.toml");
    std::fs::write(&file, format!("{head}{directory}connection = \"postgresql://port25@db.example/mail\"\n")).unwrap();
    let out = Command::new(BIN).args(["config", "check"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn serve_with_no_configuration_uses_the_embedded_default() {
    // Run in an empty directory: data goes to ./port25-data. The default
    // port may be taken on a shared machine, so only the start-up is checked
    // through its events, then the process is stopped.
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--log-format", "json"])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut seen = Vec::new();
    for line in lines.by_ref().take(4) {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        seen.push(v["event"].as_str().unwrap_or("").to_owned());
        if v["event"] == "port25.server.listening" {
            assert_eq!(v["address"], "127.0.0.1:2525");
            break;
        }
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    assert!(seen.contains(&"port25.tls.cert.generated".to_owned()), "{seen:?}");
    assert!(dir.path().join("port25-data/tls/selfsigned.crt").exists());
    assert!(dir.path().join("port25-data/spool/batches").is_dir());
}
