//! A small access network in network namespaces, built with iproute2:
//!
//! ```text
//!  sub  198.51.100.77   2001:db8:100:1::77   residential subscriber
//!  mta  198.51.100.25   2001:db8:100::25     provider MTA (exempt), submission 587/465
//!  biz  192.0.2.10      2001:db8:200::10     business customer
//!         \      |       /
//!          router (forwards; the egress ruleset is loaded here)
//!                |
//!  mx   100.64.25.25    2001:db8:ffff::25    a remote MX on the Internet (25, 80)
//! ```
//!
//! Addresses follow dist/egress.toml, so the example policy applies as is.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Net {
    tag: String,
    listeners: Vec<Child>,
}

const LISTENER: &str = r#"
import socket, sys, threading
def serve(fam, host, port):
    s = socket.socket(fam)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, port)); s.listen(64)
    ready.release()
    while True:
        c, _ = s.accept(); c.close()
ports = [int(p) for p in sys.argv[1:]]
ready = threading.Semaphore(0)
for p in ports:
    for fam, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        threading.Thread(target=serve, args=(fam, host, p), daemon=True).start()
for _ in range(2 * len(ports)):
    ready.acquire()
print("ready", flush=True)
threading.Event().wait()
"#;

const PROBE: &str = r#"
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam); s.settimeout(float(sys.argv[3]))
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); print("open")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
except OSError as e:
    print("error", e)
"#;

pub const ROLES: [&str; 5] = ["router", "sub", "mta", "biz", "mx"];

/// (role, router v4/len, host v4, router v6, host v6, prefix lengths)
const LINKS: [(&str, &str, &str, &str, &str, u8, u8); 4] = [
    ("sub", "198.51.100.65", "198.51.100.77", "2001:db8:100:1::1", "2001:db8:100:1::77", 26, 64),
    ("mta", "198.51.100.26", "198.51.100.25", "2001:db8:100::1", "2001:db8:100::25", 30, 64),
    ("biz", "192.0.2.1", "192.0.2.10", "2001:db8:200::1", "2001:db8:200::10", 26, 64),
    ("mx", "100.64.25.1", "100.64.25.25", "2001:db8:ffff::1", "2001:db8:ffff::25", 24, 64),
];

fn ip(args: &[&str]) {
    crate::must("ip", args);
}

impl Net {
    pub fn build(name: &str) -> Net {
        assert!(euid() == 0, "this test needs root (network namespaces, nftables); run it as root");
        crate::require("ip");
        crate::require("python3");
        let tag = format!("p25e{}{}", std::process::id() % 100000, name);
        let net = Net { tag, listeners: Vec::new() };
        // Namespaces left by a crashed run with the same pid would make `add` fail.
        for r in ROLES {
            let _ = Command::new("ip").args(["netns", "del", &net.ns(r)]).stderr(Stdio::null()).status();
        }
        for r in ROLES {
            ip(&["netns", "add", &net.ns(r)]);
            ip(&["-n", &net.ns(r), "link", "set", "lo", "up"]);
        }
        let router = net.ns("router");
        for (role, r4, h4, r6, h6, l4, l6) in LINKS {
            let host = net.ns(role);
            let rif = format!("r-{role}");
            ip(&["link", "add", &rif, "netns", &router, "type", "veth", "peer", "name", "eth0", "netns", &host]);
            ip(&["-n", &router, "addr", "add", &format!("{r4}/{l4}"), "dev", &rif]);
            ip(&["-n", &router, "-6", "addr", "add", &format!("{r6}/{l6}"), "dev", &rif, "nodad"]);
            ip(&["-n", &router, "link", "set", &rif, "up"]);
            ip(&["-n", &host, "addr", "add", &format!("{h4}/{l4}"), "dev", "eth0"]);
            ip(&["-n", &host, "-6", "addr", "add", &format!("{h6}/{l6}"), "dev", "eth0", "nodad"]);
            ip(&["-n", &host, "link", "set", "eth0", "up"]);
            ip(&["-n", &host, "route", "add", "default", "via", r4]);
            ip(&["-n", &host, "-6", "route", "add", "default", "via", r6]);
        }
        net.exec("router", &["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
        net
    }

    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.tag)
    }

    /// Runs a command in a namespace; panics with its output when it fails.
    pub fn exec(&self, role: &str, args: &[&str]) -> String {
        let ns = self.ns(role);
        let mut all = vec!["netns", "exec", ns.as_str()];
        all.extend_from_slice(args);
        crate::must("ip", &all)
    }

    /// Runs a command in a namespace, feeding `input` on standard input.
    pub fn exec_stdin(&self, role: &str, args: &[&str], input: &str) -> String {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?} in {role} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// TCP listeners (IPv4 and IPv6) that accept and close, in `role`.
    pub fn listen(&mut self, role: &str, ports: &[u16]) {
        let mut args: Vec<String> =
            vec!["netns".into(), "exec".into(), self.ns(role), "python3".into(), "-c".into(), LISTENER.into()];
        args.extend(ports.iter().map(u16::to_string));
        let mut child = Command::new("ip").args(&args).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "listener in {role} did not start");
        self.listeners.push(child);
    }

    /// Connects from `role` to addr:port: "open", "refused" or "timeout".
    pub fn probe(&self, role: &str, addr: &str, port: u16, timeout: f64) -> String {
        self.exec(role, &["python3", "-c", PROBE, addr, &port.to_string(), &timeout.to_string()]).trim().to_owned()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.listeners {
            let _ = c.kill();
            let _ = c.wait();
        }
        for r in ROLES {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(r)]).status();
        }
    }
}

fn euid() -> u32 {
    // No libc dependency for one call: the effective uid is in /proc.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}
