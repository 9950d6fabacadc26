//! `egress flows --attribution` against the real sources: FreeRADIUS
//! (started here on a free port with a generated configuration, fed
//! accounting packets by radclient) writing its detail files, and Kea
//! handing a DHCPv4 lease to udhcpc across a veth pair in network
//! namespaces, its memfile lease file read back. The flows are IPFIX
//! exports built for the addresses and times the peers recorded.

use crate::netns::Net;
use crate::{example_policy, require, BIN};
use port25_egress::flow::encode::{self, IPFIX_V4, IPFIX_V6};
use port25_egress::flow::{pcap, Flow};
use port25_time::unix_secs as now;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A port-25 attempt from `src` at `t` (Unix seconds).
fn attempt(src: &str, t: u64) -> Flow {
    let src: IpAddr = src.parse().unwrap();
    let dst: IpAddr =
        if src.is_ipv4() { "100.64.25.25".parse().unwrap() } else { "2001:db8:ffff::25".parse().unwrap() };
    Flow {
        src,
        dst,
        src_port: 40000,
        dst_port: 25,
        proto: 6,
        tcp_flags: 2,
        packets: 2,
        bytes: 120,
        start_ms: t * 1000,
        end_ms: t * 1000 + 1000,
    }
}

/// One IPFIX message holding `flows`, in a pcap.
fn exports(flows: &[Flow], path: &Path) {
    let (v4, v6): (Vec<Flow>, Vec<Flow>) = flows.iter().partition(|f| f.src.is_ipv4());
    let export = (flows.iter().map(|f| f.end_ms).max().unwrap() / 1000 + 1) as u32;
    let d = encode::ipfix(
        1,
        export,
        1,
        &[
            encode::template_set(true, 256, IPFIX_V4),
            encode::template_set(true, 257, IPFIX_V6),
            encode::data_set(256, IPFIX_V4, &v4, 0),
            encode::data_set(257, IPFIX_V6, &v6, 0),
        ],
    );
    std::fs::write(path, pcap::write_raw_udp(&[d], Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 2055, export)).unwrap();
}

/// `port25 egress flows` over `pcap` with `--attribution` sources:
/// (stdout, stderr).
fn egress_flows(pcap: &Path, sources: &[String], format: &str) -> (String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["egress", "flows", "--policy"]).arg(example_policy()).arg("--pcap").arg(pcap).args(["--format", format]);
    for s in sources {
        cmd.args(["--attribution", s]);
    }
    let out = cmd.output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "egress flows failed: {stdout}{stderr}");
    (stdout, stderr)
}

/// The JSON row for `address` whose attribution names `subscriber`
/// (`None`: the row without a session).
fn row<'a>(report: &'a serde_json::Value, address: &str, subscriber: Option<&str>) -> &'a serde_json::Value {
    report["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["subscriber"] == address && r["attribution"]["subscriber"].as_str() == subscriber)
        .unwrap_or_else(|| panic!("no row for {address} attributed to {subscriber:?} in {report:#}"))
}

/// A FreeRADIUS server writing accounting detail files under
/// `dir/radacct`, stopped on drop.
struct Radius {
    _peer: Peer,
    port: u16,
}

impl Radius {
    fn start(dir: &Path) -> Radius {
        require("freeradius");
        require("radclient");
        for d in ["radacct", "log", "run"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let port = free_udp_port();
        let conf = format!(
            r#"prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {dir}/log
raddbdir = {dir}
radacctdir = {dir}/radacct
name = freeradius
confdir = ${{raddbdir}}
modconfdir = ${{confdir}}/mods-config
run_dir = {dir}/run
db_dir = {dir}
libdir = /usr/lib/freeradius
pidfile = ${{run_dir}}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
log {{
  destination = stdout
}}
security {{
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = no
}}
thread pool {{
  start_servers = 1
  max_servers = 2
  min_spare_servers = 1
  max_spare_servers = 2
  max_requests_per_server = 0
}}
client local {{
  ipaddr = 127.0.0.1
  secret = testing123
}}
modules {{
  # The stock layout: one directory per client, one file per day.
  detail {{
    filename = ${{radacctdir}}/%{{%{{Packet-Src-IP-Address}}:-%{{Packet-Src-IPv6-Address}}}}/detail-%Y%m%d
    permissions = 0600
    header = "%t"
  }}
}}
server default {{
  listen {{
    type = acct
    ipaddr = 127.0.0.1
    port = {port}
  }}
  accounting {{
    detail
  }}
}}
"#,
            dir = dir.display()
        );
        std::fs::write(dir.join("radiusd.conf"), conf).unwrap();
        let child = Command::new("freeradius")
            .args(["-f", "-l", "stdout", "-d"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting freeradius");
        let (peer, _) = started(child, "Ready to process requests");
        Radius { _peer: peer, port }
    }

    /// Sends one Accounting-Request with radclient and waits for the answer.
    fn account(&self, attributes: &str) {
        let mut c = Command::new("radclient")
            .args(["-r", "3", "-t", "5", &format!("127.0.0.1:{}", self.port), "acct", "testing123"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("radclient");
        std::io::Write::write_all(c.stdin.as_mut().unwrap(), attributes.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("Accounting-Response"),
            "radclient got no Accounting-Response: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A peer process, killed on drop.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `child` prints a line containing `ready`; panics with what
/// it printed if it exits first. Its output is drained from then on.
fn started(mut child: Child, ready: &str) -> (Peer, String) {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let peer = Peer(child);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            panic!("the peer exited before it printed {ready:?}:\n{seen}");
        }
        seen.push_str(&line);
        if line.contains(ready) {
            break;
        }
    }
    // Keep draining so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in out.lines() {});
    (peer, seen)
}

#[test]
fn freeradius_accounting_names_the_subscriber_of_a_flow() {
    let dir = tempfile::tempdir().unwrap();
    let radius = Radius::start(dir.path());
    let n = now();
    let nas = "NAS-IP-Address = 192.0.2.1";
    // alice held 198.51.100.77 and a delegated /56 from about n-600 to
    // n-300 (the NAS sent each packet late, Acct-Delay-Time); bob has held
    // the address since about n-200; dave's Start never arrived.
    radius.account(&format!(
        "Acct-Status-Type = Start, User-Name = \"alice\", Acct-Session-Id = \"s1\", Framed-IP-Address = 198.51.100.77, Delegated-IPv6-Prefix = 2001:db8:100:1200::/56, ADSL-Agent-Remote-Id = \"rid-1\", Acct-Delay-Time = 600, {nas}\n"
    ));
    radius
        .account(&format!("Acct-Status-Type = Stop, User-Name = \"alice\", Acct-Session-Id = \"s1\", Acct-Session-Time = 300, Acct-Delay-Time = 300, {nas}\n"));
    radius.account(&format!(
        "Acct-Status-Type = Start, User-Name = \"bob\", Acct-Session-Id = \"s2\", Framed-IP-Address = 198.51.100.77, Acct-Delay-Time = 200, {nas}\n"
    ));
    radius.account(&format!(
        "Acct-Status-Type = Stop, Calling-Station-Id = \"02-00-00-00-00-99\", Acct-Session-Id = \"s9\", Framed-IP-Address = 198.51.100.99, Acct-Session-Time = 50, Acct-Delay-Time = 100, {nas}\n"
    ));
    drop(radius);
    let detail: Vec<_> = walk(&dir.path().join("radacct"));
    assert_eq!(detail.len(), 1, "one detail file expected: {detail:?}");
    let text = std::fs::read_to_string(&detail[0]).unwrap();
    assert!(text.contains("Timestamp = ") && text.contains("Acct-Delay-Time = 600"), "{text}");

    let pcap = dir.path().join("exports.pcap");
    exports(
        &[
            attempt("198.51.100.77", n - 450),
            attempt("2001:db8:100:12ab::5", n - 450),
            attempt("198.51.100.77", n - 60),
            attempt("198.51.100.78", n - 60),
            attempt("198.51.100.99", n - 120),
        ],
        &pcap,
    );
    let source = format!("radius:{}", dir.path().join("radacct").display());
    let (json, stderr) = egress_flows(&pcap, std::slice::from_ref(&source), "json");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();

    let a = &row(&report, "198.51.100.77", Some("alice"))["attribution"];
    assert_eq!(
        (a["subscriber_kind"].as_str(), a["source"].as_str(), a["session"].as_str()),
        (Some("user-name"), Some("radius"), Some("192.0.2.1/s1")),
        "{a:#}"
    );
    assert_eq!(a["remote_id"], "rid-1");
    assert!(a["session_end"].is_string(), "alice's session was stopped: {a:#}");
    assert_eq!(a["record"].as_str().unwrap(), format!("{}:1", detail[0].display()));
    // The flow from 2001:db8:100:12ab::5 is counted for alice's whole
    // delegated prefix: its hosts choose their addresses inside it.
    let v6 = &row(&report, "2001:db8:100:1200::/56", Some("alice"))["attribution"];
    assert_eq!(v6["prefix"], "2001:db8:100:1200::/56", "matched on the delegated prefix: {v6:#}");
    let b = &row(&report, "198.51.100.77", Some("bob"))["attribution"];
    assert_eq!((b["session"].as_str(), &b["session_end"]), (Some("192.0.2.1/s2"), &serde_json::Value::Null), "{b:#}");
    let d = &row(&report, "198.51.100.99", Some("02-00-00-00-00-99"))["attribution"];
    assert_eq!(d["subscriber_kind"], "calling-station-id");
    assert!(row(&report, "198.51.100.78", None)["attribution"].is_null());
    let at = &report["attribution"];
    assert_eq!((at["flows_attributed"].as_u64(), at["flows_unattributed"].as_u64()), (Some(4), Some(1)), "{at:#}");
    assert_eq!(at["warnings"]["stop_without_start"], 1, "{at:#}");

    // The warning names the file and the line of dave's Stop record.
    let line = text.lines().position(|l| l.contains("\"s9\"")).unwrap();
    let header = text
        .lines()
        .take(line)
        .enumerate()
        .filter(|(_, l)| !l.starts_with('\t') && !l.is_empty())
        .map(|(i, _)| i + 1)
        .last()
        .unwrap();
    let want = format!("{}:{header}: stop_without_start:", detail[0].display());
    assert!(stderr.contains(&want), "{want} not in:\n{stderr}");

    // The table names subscribers and sessions too.
    let (table, _) = egress_flows(&pcap, &[source], "table");
    assert!(
        table.contains("ATTRIBUTED TO") && table.contains("alice (user-name)") && table.contains("bob (user-name)"),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.starts_with("198.51.100.77")
            && l.contains("radius 192.0.2.1/s2 198.51.100.77/32")
            && l.contains("..open")),
        "{table}"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn kea_lease_to_udhcpc_names_the_subscriber_of_a_flow() {
    require("kea-dhcp4");
    require("udhcpc");
    let net = Net::build("kea");
    let dir = tempfile::tempdir().unwrap();
    let leases = dir.path().join("kea-leases4.csv");
    let conf = serde_json::json!({
        "Dhcp4": {
            "interfaces-config": { "interfaces": ["r-sub"], "dhcp-socket-type": "raw" },
            "lease-database": { "type": "memfile", "persist": true, "name": leases, "lfc-interval": 0 },
            "valid-lifetime": 3600,
            "subnet4": [{ "id": 1, "subnet": "198.51.100.64/26", "pools": [{ "pool": "198.51.100.100 - 198.51.100.110" }] }],
            "loggers": [{ "name": "kea-dhcp4", "output_options": [{ "output": "stdout" }], "severity": "INFO" }]
        }
    });
    let conf_path = dir.path().join("kea-dhcp4.conf");
    std::fs::write(&conf_path, serde_json::to_string_pretty(&conf).unwrap()).unwrap();
    net.exec("router", &["kea-dhcp4", "-t", conf_path.to_str().unwrap()]);
    let child = Command::new("ip")
        .args(["netns", "exec", &net.ns("router"), "kea-dhcp4", "-c", conf_path.to_str().unwrap()])
        .env("KEA_PIDFILE_DIR", dir.path())
        .env("KEA_LOCKFILE_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting kea-dhcp4");
    let (kea, seen) = started(child, "DHCP4_STARTED");
    // udhcpc's script only records what it was given (the interface keeps
    // its static address).
    let script = dir.path().join("udhcpc.sh");
    let got = dir.path().join("lease.env");
    std::fs::write(&script, format!("#!/bin/sh\n[ \"$1\" = bound ] && echo \"$ip\" > {}\nexit 0\n", got.display()))
        .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let before = now();
    net.exec("sub", &["udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-T", "2", "-s", script.to_str().unwrap()]);
    let ip = std::fs::read_to_string(&got)
        .unwrap_or_else(|e| panic!("udhcpc got no lease ({e}); kea said:\n{seen}"))
        .trim()
        .to_owned();
    // Kea wrote the lease before it answered.
    let mut rows = String::new();
    for _ in 0..50 {
        rows = std::fs::read_to_string(&leases).unwrap_or_default();
        if rows.contains(&ip) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(rows.contains(&ip), "{ip} not in {}:\n{rows}", leases.display());
    drop(kea);
    let mac = net.exec("sub", &["cat", "/sys/class/net/eth0/address"]).trim().to_owned();

    let pcap = dir.path().join("exports.pcap");
    exports(&[attempt(&ip, before + 1), attempt(&ip, before - 7200)], &pcap);
    let (json, stderr) = egress_flows(&pcap, &[format!("kea:{}", leases.display())], "json");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let a = &row(&report, &ip, Some(&mac))["attribution"];
    assert_eq!(
        (a["subscriber_kind"].as_str(), a["source"].as_str(), a["prefix"].as_str()),
        (Some("hwaddr"), Some("kea"), Some(format!("{ip}/32").as_str())),
        "{a:#}"
    );
    assert_eq!(a["record"].as_str().unwrap(), format!("{}:2", leases.display()), "the lease row after the header");
    // Two hours before the lease, nobody held the address.
    assert!(row(&report, &ip, None)["attribution"].is_null(), "{report:#}");
    assert!(stderr.contains("flows attributed 1, unattributed 1"), "{stderr}");
}

#[test]
fn dhcpd_dnsmasq_and_radacct_files_name_subscribers_too() {
    let dir = tempfile::tempdir().unwrap();
    let n = now();
    let day = |t: u64| {
        // dhcpd's `W YYYY/MM/DD HH:MM:SS` (UTC); the weekday is not read.
        let s = port25_egress::report::rfc3339(t * 1000);
        format!("0 {} {}", s.get(..10).unwrap().replace('-', "/"), s.get(11..19).unwrap())
    };
    std::fs::write(
        dir.path().join("dhcpd.leases"),
        format!(
            "lease 198.51.100.81 {{\n  starts {};\n  ends {};\n  binding state active;\n  hardware ethernet 02:00:00:00:00:81;\n  option agent.remote-id \"cpe-81\";\n}}\n",
            day(n - 3600),
            day(n + 3600)
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("dnsmasq.leases"),
        format!("{} 02:00:00:00:00:82 198.51.100.82 laptop *\n", n + 3600),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("radacct.csv"),
        format!(
            "radacctid,acctsessionid,username,nasipaddress,acctstarttime,acctstoptime,callingstationid,framedipaddress\n1,x1,\"carol, jr\",192.0.2.1,{},,,198.51.100.83\n",
            port25_egress::report::rfc3339((n - 600) * 1000)
        ),
    )
    .unwrap();
    let pcap = dir.path().join("exports.pcap");
    exports(
        &[attempt("198.51.100.81", n - 60), attempt("198.51.100.82", n - 60), attempt("198.51.100.83", n - 60)],
        &pcap,
    );
    let p = |f: &str| dir.path().join(f).display().to_string();
    let sources = [
        format!("dhcpd:{}", p("dhcpd.leases")),
        format!("dnsmasq:{}", p("dnsmasq.leases")),
        format!("radacct-csv:{}", p("radacct.csv")),
    ];
    let (json, _) = egress_flows(&pcap, &sources, "json");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let a = &row(&report, "198.51.100.81", Some("cpe-81"))["attribution"];
    assert_eq!((a["subscriber_kind"].as_str(), a["source"].as_str()), (Some("remote-id"), Some("dhcpd")), "{a:#}");
    let b = &row(&report, "198.51.100.82", Some("02:00:00:00:00:82"))["attribution"];
    assert_eq!(
        (b["source"].as_str(), b["session"].as_str()),
        (Some("dnsmasq"), Some("198.51.100.82/32 laptop")),
        "{b:#}"
    );
    let c = &row(&report, "198.51.100.83", Some("carol, jr"))["attribution"];
    assert_eq!((c["source"].as_str(), c["session"].as_str()), (Some("radacct-csv"), Some("192.0.2.1/x1")), "{c:#}");
    // CSV keeps the comma inside one quoted field.
    let (csv, _) = egress_flows(&pcap, &sources, "csv");
    assert!(
        csv.lines().any(|l| l.starts_with("198.51.100.83,") && l.contains(",\"carol, jr\",user-name,radacct-csv,")),
        "{csv}"
    );
    // Bad sources are refused before anything is read.
    let out = Command::new(BIN)
        .args(["egress", "flows", "--policy"])
        .arg(example_policy())
        .arg("--pcap")
        .arg(&pcap)
        .args(["--attribution", "ldap:/x"])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not an attribution source"),
        "{out:?}"
    );
    let out = Command::new(BIN)
        .args(["egress", "flows", "--policy"])
        .arg(example_policy())
        .arg("--pcap")
        .arg(&pcap)
        .args(["--attribution", "kea:/nonexistent/kea-leases4.csv"])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/nonexistent/kea-leases4.csv"),
        "{out:?}"
    );
}
