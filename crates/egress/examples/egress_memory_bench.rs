//! Memory of the flow analysis as flows grow (bench/egress-memory.sh runs it):
//!   egress_memory_bench FLOWS SUBSCRIBERS [MODE]
//! feeds FLOWS generated flows to the analyzer, builds the rows, and prints
//! the rows, the time and the process's peak RSS (VmHWM). Deterministic
//! (fixed seed). Memory should follow SUBSCRIBERS, not FLOWS. Start times
//! advance with jitter (out of order by up to two seconds) in every mode.
//! MODE (default `v4`):
//!   v4                    port-25 flows from SUBSCRIBERS addresses in one
//!                         residential /16 to destinations drawn from 100 000
//!                         MX addresses, one in 50 an inbound connection on a
//!                         proxy port (from an MX address to the subscriber)
//!   v6-rotate             SUBSCRIBERS IPv6 subscribers, each holding a /56 of
//!                         the residential 2001:db8::/32, every flow from a new
//!                         random address in its /56 (a random /64, a random
//!                         interface id: privacy addresses, or a host rotating
//!                         its source on purpose); otherwise as v4, the MXes in
//!                         3fff::/20
//!   v6-rotate-attributed  v6-rotate with an attribution index built in
//!                         process: one RADIUS session per subscriber holding
//!                         its /56 as delegated prefix over the whole run
//!   inbound-sweep         a scan from outside: nine flows in ten inbound on
//!                         port 1080, 3128 or 8080 from one of 4096 scanners
//!                         to a new random address, three in four in the
//!                         residential 2001:db8::/32 and one in four in the
//!                         IPv4 /16; the tenth a port-25 flow, as in v4,
//!                         from the SUBSCRIBERS addresses of the /16 in turn
//!                         (so all have their row from about 10 x SUBSCRIBERS
//!                         flows on: the rows stop growing with the flows)
//! Each mode but v4 also prints the rows carrying inbound evidence and the
//! peak RSS before the rows were made (the analyzer's state alone).
//! IPV6_PREFIX_LEN (default 64) sets the rows of IPv6 sources no session
//! names, as `egress flows --ipv6-prefix-length` does.

use port25_egress::attribution::{Index, Origin, Session, Source, SubscriberKind, Warnings};
use port25_egress::flow::Flow;
use port25_egress::prefix::{Family, Prefix};
use port25_egress::report::{Analyzer, Options};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;
use smoke::Rng;

const USAGE: &str = "usage: egress_memory_bench FLOWS SUBSCRIBERS [v4|v6-rotate|v6-rotate-attributed|inbound-sweep]";

/// The first flow's start time (Unix milliseconds).
const T0: u64 = 1_764_000_000_000;
/// The residential IPv4 /16 of the policy: 10.0.0.0/16.
const RESIDENTIAL_V4: u32 = 0x0a00_0000;
/// The residential IPv6 /32 of the policy: 2001:db8::/32.
const RESIDENTIAL_V6: u128 = 0x2001_0db8 << 96;
/// Outside the policy, for the IPv6 MXes and scanners: 3fff::/20 (RFC 9637).
const OUTSIDE_V6: u128 = 0x3fff << 112;
/// Delegated prefixes a /32 holds: /56s.
const MAX_V6_SUBSCRIBERS: u32 = 1 << 24;
/// Distinct outside scanners in `inbound-sweep`.
const SCANNERS: u64 = 4096;
/// The proxy ports `inbound-sweep` scans (one drawn at random per probe).
const SCANNED_PORTS: [u16; 3] = [1080, 3128, 8080];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    V4,
    V6Rotate,
    V6RotateAttributed,
    InboundSweep,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "v4" => Mode::V4,
            "v6-rotate" => Mode::V6Rotate,
            "v6-rotate-attributed" => Mode::V6RotateAttributed,
            "inbound-sweep" => Mode::InboundSweep,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Mode::V4 => "v4",
            Mode::V6Rotate => "v6-rotate",
            Mode::V6RotateAttributed => "v6-rotate-attributed",
            Mode::InboundSweep => "inbound-sweep",
        }
    }

    fn v6_subscribers(self) -> bool {
        matches!(self, Mode::V6Rotate | Mode::V6RotateAttributed)
    }
}

fn peak_rss_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Subscriber `sub`'s delegated /56 in the residential /32.
fn delegated(sub: u32) -> Prefix {
    Prefix { family: Family::V6, addr: RESIDENTIAL_V6 | (u128::from(sub) << 72), len: 56 }
}

fn v4_subscriber(sub: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(RESIDENTIAL_V4 | (sub & 0xffff)))
}

/// One of 100 000 MX addresses, in the family of the sender.
fn mx(v: u64, v6: bool) -> IpAddr {
    let i = (v >> 20) as u32 % 100_000;
    if v6 {
        IpAddr::V6(Ipv6Addr::from(OUTSIDE_V6 | u128::from(i)))
    } else {
        IpAddr::V4(Ipv4Addr::from(0xc000_0000 | i))
    }
}

fn port25(src: IpAddr, dst: IpAddr, start: u64) -> Flow {
    Flow { packets: 2, bytes: 120, end_ms: start + 10, ..Flow::syn(src, dst, 25, start) }
}

/// A SYN from outside to a proxy port.
fn probe(src: IpAddr, dst: IpAddr, dst_port: u16, start: u64) -> Flow {
    Flow { packets: 3, bytes: 180, end_ms: start + 10, ..Flow::syn(src, dst, dst_port, start) }
}

/// The flows of a mode, one at a time.
struct Flows {
    mode: Mode,
    subs: u32,
    r: Rng,
    t: u64,
    /// `inbound-sweep`: the subscriber whose port-25 flow is next.
    turn: u32,
}

impl Flows {
    fn next(&mut self) -> Flow {
        let v = self.r.next();
        self.t += (v >> 40) % 3;
        // Start times out of order by up to two seconds, as exporters send them.
        let start = self.t.saturating_sub((v >> 50) % 2000);
        let sub = v as u32 % self.subs;
        match self.mode {
            Mode::V4 => {
                let (src, mx) = (v4_subscriber(sub), mx(v, false));
                if (v >> 8).is_multiple_of(50) {
                    probe(mx, src, 1080, start)
                } else {
                    port25(src, mx, start)
                }
            }
            Mode::V6Rotate | Mode::V6RotateAttributed => {
                // A random /64 of the /56 and a random interface id.
                let (net, iid) = (self.r.next(), self.r.next());
                let src = delegated(sub).addr | (u128::from(net as u8) << 64) | u128::from(iid);
                let (src, mx) = (IpAddr::V6(Ipv6Addr::from(src)), mx(v, true));
                if (v >> 8).is_multiple_of(50) {
                    probe(mx, src, 1080, start)
                } else {
                    port25(src, mx, start)
                }
            }
            Mode::InboundSweep => {
                if (v >> 8).is_multiple_of(10) {
                    let sub = self.turn;
                    self.turn = (self.turn + 1) % self.subs;
                    return port25(v4_subscriber(sub), mx(v, false), start);
                }
                let port = SCANNED_PORTS[((v >> 12) % 3) as usize];
                let scanner = (v >> 24) % SCANNERS;
                let to = self.r.next();
                if (v >> 16).is_multiple_of(4) {
                    let src = IpAddr::V4(Ipv4Addr::from(0xc612_0000 | scanner as u32)); // 198.18.0.0/15
                    probe(src, v4_subscriber(to as u32), port, start)
                } else {
                    let src = OUTSIDE_V6 | (1 << 80) | u128::from(scanner);
                    let dst = RESIDENTIAL_V6 | (u128::from(self.r.next() as u32) << 64) | u128::from(to);
                    probe(IpAddr::V6(Ipv6Addr::from(src)), IpAddr::V6(Ipv6Addr::from(dst)), port, start)
                }
            }
        }
    }
}

/// One RADIUS session per subscriber, holding its /56 from an hour before
/// the first flow to an hour after the last one can start.
fn sessions(subs: u32, flows: u64) -> Vec<Session> {
    let end = T0 + 2 * flows + 3_600_000;
    (0..subs)
        .map(|i| Session {
            source: Source::Radius,
            subscriber: format!("user{i}"),
            kind: SubscriberKind::UserName,
            id: format!("{i:x}"),
            remote_id: None,
            circuit_id: None,
            prefixes: vec![delegated(i)],
            start_ms: T0 - 3_600_000,
            end_ms: Some(end),
            origin: Origin { file: 0, line: i + 1 },
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flows: u64 = args.get(1).and_then(|a| a.parse().ok()).expect(USAGE);
    let subs: u32 = args.get(2).and_then(|a| a.parse().ok()).filter(|&s| s > 0).expect(USAGE);
    let mode = args.get(3).map_or(Some(Mode::V4), |m| Mode::parse(m)).expect(USAGE);
    // (IPv4 subscribers beyond 65536 wrap around in the /16, as they always did.)
    assert!(!mode.v6_subscribers() || subs <= MAX_V6_SUBSCRIBERS, "at most {MAX_V6_SUBSCRIBERS} /56s in a /32");
    let prefixes = if mode == Mode::V4 { r#""10.0.0.0/16""# } else { r#""10.0.0.0/16", "2001:db8::/32""# };
    let policy = port25_egress::policy::parse(
        &format!("[[network]]\nname = \"residential\"\nclass = \"residential\"\nprefixes = [{prefixes}]\n"),
        std::path::Path::new("bench.toml"),
    )
    .expect("policy");
    let table = port25_egress::table::Table::new(&policy);
    let files = vec!["bench-sessions".to_owned()];
    let index = (mode == Mode::V6RotateAttributed).then(|| {
        let started = std::time::Instant::now();
        let mut warnings = Warnings::default();
        let index = Index::build(sessions(subs, flows), &mut warnings);
        println!(
            "index: {} sessions, {} prefixes, {:.1} MB, {} warnings, built in {:.2} s",
            index.len(),
            index.prefixes(),
            index.bytes() as f64 / 1e6,
            warnings.total(),
            started.elapsed().as_secs_f64()
        );
        index
    });
    // IPV6_PREFIX_LEN: the rows of IPv6 sources no session names (`egress
    // flows --ipv6-prefix-length`); 56 makes each v6-rotate /56 one row.
    let ipv6_prefix_len =
        std::env::var("IPV6_PREFIX_LEN").ok().map_or(64, |v| v.parse().expect("IPV6_PREFIX_LEN: 1 to 128"));
    let mut a = Analyzer::new(&policy, &table, Options { ipv6_prefix_len, ..Options::default() });
    if let Some(index) = &index {
        a.attribute(index, &files);
    }
    let mut gen = Flows { mode, subs, r: Rng(11), t: T0, turn: 0 };
    let started = std::time::Instant::now();
    for _ in 0..flows {
        a.add(&gen.next());
    }
    // The analyzer's state alone, before the rows (the report) are made from it.
    let state_kb = peak_rss_kb();
    let rows = a.rows();
    let spambots = rows.iter().filter(|r| r.spambot).count();
    let line = format!(
        "flows {flows} subscribers {subs}: {} rows ({spambots} spambots, {} matched) in {:.2} s, peak RSS {} MB",
        rows.len(),
        a.flows_matched,
        started.elapsed().as_secs_f64(),
        peak_rss_kb() / 1024
    );
    if mode == Mode::V4 {
        println!("{line}");
        return;
    }
    let inbound = rows.iter().filter(|r| r.inbound.is_some()).count();
    let attributed = if index.is_some() { format!(", {} attributed", a.flows_attributed) } else { String::new() };
    println!(
        "mode {} {line}; {inbound} rows with inbound evidence{attributed}; VmHWM before the rows were made {} MB",
        mode.name(),
        state_kb / 1024
    );
}
