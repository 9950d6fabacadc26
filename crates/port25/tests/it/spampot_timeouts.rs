//! The sensor's SMTP timeouts are its own keys, in seconds and named so:
//! `data_timeout_secs` bounds each block of message data and
//! `command_timeout_secs` each command (the data timeout used to be the
//! command timeout, whatever the file said). Python smtplib on the relay
//! bait: a client that pauses longer than the command timeout in the
//! middle of its message is still answered 250; idle between commands as
//! long, it gets 421.

use crate::harness::*;
use std::path::Path;
use std::process::Command;

#[test]
fn data_timeout_secs_bounds_the_message_and_command_timeout_secs_the_commands() {
    let s = Server::start_with("spampot", |dir: &Path| {
        format!(
            "sensor = \"it-sensor\"\ndata_dir = \"{}\"\nlog_format = \"json\"\nlog_level = \"info\"\n\
             [[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:0\"\nkind = \"smtp\"\n\
             [limits]\ncommand_timeout_secs = 1\ndata_timeout_secs = 8\n",
            dir.join("data").display()
        )
    });
    let relay = s.addrs.iter().find(|(n, _)| n == "smtp").expect("the smtp listener").1;
    let script = r#"
import smtplib, sys, time
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=20)
s.ehlo("checker")
assert s.mail("me@checker.example")[0] == 250
assert s.rcpt("you@victim.example")[0] == 250
s.putcmd("data")
code, _ = s.getreply()
assert code == 354, code
s.send(b"Subject: slow\r\n\r\nfirst half\r\n")
time.sleep(3)  # three command timeouts, well inside the data timeout
s.send(b"second half\r\n.\r\n")
code, text = s.getreply()
assert code == 250, (code, text)
time.sleep(3)  # idle between commands: past the command timeout
try:
    code, text = s.noop()
except smtplib.SMTPServerDisconnected:
    code, text = 0, b"closed"
print(code, text.decode())
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(relay.ip().to_string())
        .arg(relay.port().to_string())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("421 ") && stdout.contains("Timeout"), "idle past command_timeout_secs: {stdout}");
}

#[test]
fn the_old_timeout_keys_are_refused_with_their_new_names() {
    for (old, new) in [("command_timeout", "command_timeout_secs"), ("handshake_timeout", "handshake_timeout_secs")] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spampot.toml");
        std::fs::write(&path, format!("sensor = \"s\"\n\n[limits]\n{old} = 5\n")).unwrap();
        let out = Command::new(BIN).args(["spampot", "--config"]).arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains(&format!("{}:4:1:", path.display())), "file:line:column: {err}");
        assert!(err.contains(&format!("fix: rename {old} to {new}")), "{err}");
    }
}
