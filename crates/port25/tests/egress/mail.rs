//! port25's own services in the access-network topology: with the egress
//! ruleset on the router, a subscriber's direct delivery to a remote MX
//! fails, while the same subscriber submits through the provider's
//! submission service (587 STARTTLS, 465 implicit TLS, AUTH) and the
//! provider's MTA delivers to the remote MX on port 25. Real `port25 serve`
//! processes in the namespaces, real swaks as the client.
//!
//! The submitted message for the remote domain travels submission ->
//! outbound queue -> remote MX (the queue's smarthost setting stands in for
//! DNS); swaks from the MTA's namespace also shows the exempt hop directly.

use crate::netns::Net;
use crate::{example_policy, require, BIN};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "subscriber correct horse";

struct Serve {
    child: Child,
    data: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `port25 serve` inside `role`'s namespace; returns once every
/// listener logged `port25.server.listening`.
fn serve(
    net: &Net,
    role: &str,
    dir: &Path,
    domain: &str,
    listeners: &[(&str, &str, &str, &str)],
    extra: &str,
) -> Serve {
    let data = dir.join(role);
    let mut cfg = format!(
        "hostname = \"mx.{domain}\"\ndata_dir = \"{}\"\n[log]\nformat = \"json\"\n[http]\nenabled = false\n[mx]\ndomains = [\"{domain}\"]\n",
        data.display()
    );
    for (name, address, service, tls) in listeners {
        cfg += &format!(
            "[[listener]]\nname = \"{name}\"\naddress = \"{address}\"\nservice = \"{service}\"\ntls = \"{tls}\"\n"
        );
    }
    cfg += extra;
    let file = dir.join(format!("{role}.toml"));
    std::fs::write(&file, cfg).unwrap();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &net.ns(role), BIN, "serve", "--config"])
        .arg(&file)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Keep reading the log after start-up: a closed pipe would fail the
    // server's next log write.
    let (tx, rx) = std::sync::mpsc::channel();
    let err = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut listening = 0;
    let mut seen = Vec::new();
    while listening < listeners.len() {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else { break };
        listening += usize::from(line.contains("port25.server.listening"));
        seen.push(line);
    }
    assert_eq!(listening, listeners.len(), "port25 serve in {role} did not start:\n{}", seen.join("\n"));
    Serve { child, data }
}

fn add_user(dir: &Path, role: &str, login: &str) {
    let mut child = Command::new(BIN)
        .args(["users", "add", login, "--config"])
        .arg(dir.join(format!("{role}.toml")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "users add: {}", String::from_utf8_lossy(&out.stderr));
}

/// swaks arguments: AUTH PLAIN as the subscriber's login, from its address.
fn submit_as_alice(to: &str) -> [&str; 10] {
    [
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice@provider.example",
        "--auth-password",
        PASSWORD,
        "--from",
        "alice@provider.example",
        "--to",
        to,
    ]
}

fn swaks(net: &Net, role: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &net.ns(role), "swaks", "--timeout", "5"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn mailbox(s: &Serve, domain: &str, user: &str, n: usize) -> usize {
    let dir = s.data.join("mail").join(domain).join(user).join("new");
    let start = Instant::now();
    loop {
        let count = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        if count >= n || start.elapsed() > Duration::from_secs(10) {
            return count;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn subscriber_submits_through_the_provider_while_direct_delivery_fails() {
    require("nft");
    require("swaks");
    let net = Net::build("m");
    let dir = tempfile::tempdir().unwrap();
    let compiled = Command::new(BIN).args(["egress", "compile", "--policy"]).arg(example_policy()).output().unwrap();
    assert!(compiled.status.success());
    net.exec_stdin("router", &["nft", "-f", "-"], &String::from_utf8(compiled.stdout).unwrap());

    let provider = serve(
        &net,
        "mta",
        dir.path(),
        "provider.example",
        &[
            ("mx", "198.51.100.25:25", "mx", "starttls"),
            ("submission", "198.51.100.25:587", "submission", "starttls"),
            ("submissions", "198.51.100.25:465", "submission", "implicit"),
            ("submission6", "[2001:db8:100::25]:587", "submission", "starttls"),
        ],
        // The provider's outbound queue sends remote mail from the MTA's
        // address, through the router, to the remote MX (no DNS here).
        "[outbound]\nsmarthost = \"100.64.25.25:25\"\n",
    );
    add_user(dir.path(), "mta", "alice@provider.example");
    // The MX accepts only mailboxes that exist: carol, whom alice mails, too.
    add_user(dir.path(), "mta", "carol@provider.example");
    let remote = serve(
        &net,
        "mx",
        dir.path(),
        "remote.example",
        // No STARTTLS: the provider reaches this MX as its smarthost, and a
        // smarthost's certificate is verified (a self-signed one would defer).
        &[("mx", "100.64.25.25:25", "mx", "none"), ("mx6", "[2001:db8:ffff::25]:25", "mx", "none")],
        "",
    );

    add_user(dir.path(), "mx", "bob@remote.example");

    // Direct delivery from the subscriber: refused at the router, IPv4 and IPv6.
    for server in ["100.64.25.25:25", "[2001:db8:ffff::25]:25"] {
        let t =
            swaks(&net, "sub", &["--server", server, "--from", "alice@provider.example", "--to", "bob@remote.example"]);
        assert!(t.contains("Connection refused"), "direct delivery to {server} must fail:\n{t}");
    }
    assert_eq!(mailbox(&remote, "remote.example", "bob", 0), 0);

    // Submission from the same subscriber: 587 STARTTLS (v4 and v6) and 465 implicit TLS.
    let auth = submit_as_alice("carol@provider.example");
    for (server, tls) in
        [("198.51.100.25:587", "--tls"), ("[2001:db8:100::25]:587", "--tls"), ("198.51.100.25:465", "--tlsc")]
    {
        let t = swaks(&net, "sub", &[&["--server", server, tls][..], &auth].concat());
        assert!(
            t.contains("<~  235 2.7.0 Authentication successful") && t.contains("<~  250 2.0.0 Ok: queued"),
            "submission via {server}:\n{t}"
        );
    }
    assert_eq!(mailbox(&provider, "provider.example", "carol", 3), 3);

    // A message for the remote domain, submitted by the subscriber, is
    // carried by the provider's outbound queue to the remote MX.
    let remote_rcpt = submit_as_alice("bob@remote.example");
    let t = swaks(
        &net,
        "sub",
        &[&["--server", "198.51.100.25:587", "--tls", "--header", "Subject: through submission"][..], &remote_rcpt]
            .concat(),
    );
    assert!(t.contains("<~  250 2.0.0 Ok: queued"), "submission for a remote recipient:\n{t}");
    assert_eq!(mailbox(&remote, "remote.example", "bob", 1), 1, "the submitted message did not reach the remote MX");

    // The provider's MTA is exempt: its port-25 hop to the remote MX goes through.
    for server in ["100.64.25.25:25", "[2001:db8:ffff::25]:25"] {
        let t =
            swaks(&net, "mta", &["--server", server, "--from", "alice@provider.example", "--to", "bob@remote.example"]);
        assert!(t.contains("<-  250 2.0.0 Ok: queued"), "MTA -> remote MX {server}:\n{t}");
    }
    assert_eq!(mailbox(&remote, "remote.example", "bob", 3), 3);
}
