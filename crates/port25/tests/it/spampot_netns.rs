//! Nothing leaves the sensor, shown in the kernel: the sensor runs in a
//! network namespace whose only way out is a veth link to a "remote MX"
//! namespace, where a real listener waits on port 25 and tcpdump watches the
//! link. A direct connection from the sensor's namespace reaches the MX (the
//! route exists); tunnels through the sensor's SOCKS5 and HTTP CONNECT bait
//! to that same address are captured and answered, and not one packet from
//! the sensor's namespace reaches the MX.

use crate::harness::{require, BIN};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Netns {
    sensor: String,
    mx: String,
    children: Vec<Child>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("iproute2");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Netns {
    fn new() -> Netns {
        require("ip");
        let id = std::process::id();
        let n = Netns { sensor: format!("p25sp{id}"), mx: format!("p25mx{id}"), children: Vec::new() };
        let (vs, vm) = (format!("sps{id}"), format!("spm{id}"));
        ip(&["netns", "add", &n.sensor]);
        ip(&["netns", "add", &n.mx]);
        ip(&["link", "add", &vs, "type", "veth", "peer", "name", &vm]);
        ip(&["link", "set", &vs, "netns", &n.sensor]);
        ip(&["link", "set", &vm, "netns", &n.mx]);
        ip(&["-n", &n.sensor, "link", "set", "lo", "up"]);
        ip(&["-n", &n.sensor, "addr", "add", "100.64.0.2/24", "dev", &vs]);
        ip(&["-n", &n.sensor, "link", "set", &vs, "up"]);
        ip(&["-n", &n.sensor, "route", "add", "default", "via", "100.64.0.1"]);
        ip(&["-n", &n.mx, "link", "set", "lo", "up"]);
        ip(&["-n", &n.mx, "addr", "add", "100.64.0.1/24", "dev", &vm]);
        ip(&["-n", &n.mx, "link", "set", &vm, "up"]);
        n
    }

    fn exec(&self, ns: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.sensor]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.mx]).status();
    }
}

/// Prints one line per accepted connection.
const MX: &str = r#"
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("100.64.0.1", 25)); s.listen(16)
print("ready", flush=True)
while True:
    c, a = s.accept(); print("accepted", a[0], flush=True); c.close()
"#;

fn lines_of(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn tunnels_to_a_reachable_mx_never_leave_the_sensors_namespace() {
    let tcpdump = require("tcpdump");
    let curl = require("curl");
    let mut n = Netns::new();
    let vm = format!("spm{}", std::process::id());

    let mut mx = n.exec(&n.mx).args(["python3", "-c", MX]).stdout(Stdio::piped()).spawn().unwrap();
    let mx_lines = lines_of(&mut mx);
    n.children.push(mx);
    assert_eq!(mx_lines.recv_timeout(Duration::from_secs(10)).unwrap(), "ready");
    // Every TCP packet from the sensor's namespace that reaches the MX side.
    let mut dump = n
        .exec(&n.mx)
        .arg(tcpdump)
        .args(["-i", &vm, "-n", "-l", "-q", "tcp and src host 100.64.0.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let packets = lines_of(&mut dump);
    n.children.push(dump);
    std::thread::sleep(Duration::from_millis(800));

    // The route exists: a direct connection reaches the MX and is seen.
    let direct = n
        .exec(&n.sensor)
        .args(["python3", "-c", "import socket; socket.create_connection(('100.64.0.1', 25), timeout=5).close()"])
        .status()
        .unwrap();
    assert!(direct.success());
    assert!(mx_lines.recv_timeout(Duration::from_secs(5)).unwrap().starts_with("accepted 100.64.0.2"));
    let start = Instant::now();
    let mut seen = 0;
    while start.elapsed() < Duration::from_secs(2) {
        if packets.recv_timeout(Duration::from_millis(200)).is_ok() {
            seen += 1;
        }
    }
    assert!(seen > 0, "tcpdump must see the direct connection");

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("spampot.toml");
    std::fs::write(
        &config,
        format!(
            "sensor = \"netns\"\ndata_dir = \"{}\"\nlog_format = \"json\"\n[[listener]]\nname = \"proxy\"\naddress = \"127.0.0.1:11080\"\nkind = \"proxy\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut sensor =
        n.exec(&n.sensor).arg(BIN).args(["spampot", "--config"]).arg(&config).stderr(Stdio::piped()).spawn().unwrap();
    let err = sensor.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if l.contains("port25.server.listening") {
                let _ = tx.send(());
            }
        }
    });
    n.children.push(sensor);
    rx.recv_timeout(Duration::from_secs(20)).expect("the sensor listens");

    let eml = dir.path().join("m.eml");
    std::fs::write(&eml, "Subject: netns\r\n\r\nhello\r\n").unwrap();
    for proxy in [["--proxy", "socks5://127.0.0.1:11080"], ["--proxy", "socks5h://127.0.0.1:11080"]]
        .iter()
        .chain(&[["-x", "http://127.0.0.1:11080"]])
    {
        let mut cmd = n.exec(&n.sensor);
        cmd.arg(&curl).args(["-sv", "--max-time", "20"]).args(proxy.as_slice());
        if proxy[0] == "-x" {
            cmd.arg("--proxytunnel");
        }
        let out = cmd
            .args(["smtp://100.64.0.1:25", "--mail-from", "a@spam.example", "--mail-rcpt", "v@victim.example", "-T"])
            .arg(&eml)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("250 2.0.0 Ok: queued as"), "{proxy:?}: {text}");
    }
    std::thread::sleep(Duration::from_secs(1));
    let leaked: Vec<String> = packets.try_iter().collect();
    assert!(leaked.is_empty(), "packets left the sensor's namespace: {leaked:?}");
    assert!(mx_lines.try_iter().next().is_none(), "the MX was reached");
    let events = std::fs::read_dir(dir.path().join("data/capture/events"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    assert_eq!(events.matches("\"port25.spampot.message\"").count(), 3, "{events}");
    assert_eq!(events.matches("\"requested\":{\"host\":\"100.64.0.1\",\"port\":25}").count(), 6, "{events}");
}
