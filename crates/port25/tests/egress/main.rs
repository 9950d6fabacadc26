//! `port25 egress` end to end: the real binary, the real kernel (network
//! namespaces, veth, nftables, iptables + ipset) and real flow tools
//! (softflowd as exporter, nfcapd/nfdump as the reference collector) and
//! the attribution sources (FreeRADIUS with radclient, Kea with udhcpc),
//! nfcapd's own files read directly.
//! Tests that need root or a tool fail with a message saying so; none skip.

mod attribution;
mod bounds;
mod cgnat;
mod cli;
mod exporters;
mod flows;
mod kernel;
mod mail;
mod netns;
mod nfcapd;
mod notify;
mod plan;
mod stages;

pub const BIN: &str = env!("CARGO_BIN_EXE_port25");

pub fn example_policy() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/egress.toml")
}

/// The example policy with its residential network in `mode = "monitor"`
/// until `enforce_from`, written to `dir/staged.toml`.
pub fn staged_policy(dir: &std::path::Path, enforce_from: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(example_policy()).unwrap().replace(
        "prefixes = [\"198.51.100.0/24\", \"2001:db8:100::/40\"]\n",
        &format!("prefixes = [\"198.51.100.0/24\", \"2001:db8:100::/40\"]\nmode = \"monitor\"\nenforce_from = \"{enforce_from}\"\n"),
    );
    assert!(text.contains("mode = \"monitor\""), "dist/egress.toml no longer has the residential prefixes line");
    let p = dir.join("staged.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Panics (never skips) when a peer tool is missing.
pub fn require(tool: &str) {
    let found = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(found, "{tool} is required for this test and is not installed: run .ci/install-deps");
}

pub fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    out
}

pub fn must(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
