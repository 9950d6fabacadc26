//! The flow analysis's memory bounds (issue 20: "memory is bounded by the
//! lease/session set, never by the number of flows"), through the public
//! API: IPv6 rows per prefix whatever addresses the hosts choose, the row
//! cap, the open-proxy evidence cap, and shards that share both.

use port25_egress::attribution::{Index, Origin, Session, Source, SubscriberKind, Warnings};
use port25_egress::flow::Flow;
use port25_egress::policy::Policy;
use port25_egress::report::{Analyzer, Options, Prefilter, Row};
use port25_egress::table::Table;
use std::net::IpAddr;

fn policy() -> Policy {
    port25_egress::policy::parse(
        "[[network]]\nname = \"res\"\nclass = \"residential\"\nprefixes = [\"198.51.100.0/24\", \"2001:db8::/32\"]\n",
        std::path::Path::new("p.toml"),
    )
    .unwrap()
}

fn flow(src: IpAddr, dst: IpAddr, port: u16, t: u64) -> Flow {
    Flow::syn(src, dst, port, t)
}

/// xorshift: a new number per call.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A fresh address inside `prefix` (a /56 or /64 written `2001:db8:a:b00::`).
    fn inside(&mut self, net: [u16; 4], len: u32) -> IpAddr {
        let base =
            u128::from(net[0]) << 112 | u128::from(net[1]) << 96 | u128::from(net[2]) << 80 | u128::from(net[3]) << 64;
        let host = (u128::from(self.next()) << 64 | u128::from(self.next())) & (u128::MAX >> len);
        IpAddr::from((base | host).to_be_bytes())
    }

    /// One of 250 MXes, outside the policy's space (3fff::/20, RFC 9637).
    fn mx(&mut self) -> IpAddr {
        outside(self.next() % 250 + 1)
    }
}

/// An IPv6 address outside the policy's space.
fn outside(n: u64) -> IpAddr {
    IpAddr::from((0x3fff_u128 << 112 | u128::from(n)).to_be_bytes())
}

fn session(who: &str, prefixes: &[&str], start_ms: u64) -> Session {
    Session {
        source: Source::Radius,
        subscriber: who.into(),
        kind: SubscriberKind::UserName,
        id: format!("nas/{who}"),
        remote_id: None,
        circuit_id: None,
        prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
        start_ms,
        end_ms: None,
        origin: Origin { file: 0, line: 1 },
    }
}

/// `f` to the shard of `one` and `rest` the prefilter picks, as `egress
/// flows` splits flows over its threads.
fn add_to_shard<'a>(pre: &Prefilter<'a>, one: &mut Analyzer<'a>, rest: &mut [Analyzer<'a>], f: &Flow) {
    let w = pre.wants(f).expect("a flow the analysis keeps");
    match pre.shard(w, f, rest.len() + 1) {
        0 => one.add_wanted(f, 1, w),
        k => rest[k - 1].add_wanted(f, 1, w),
    }
}

fn row<'r>(rows: &'r [Row], subscriber: &str) -> &'r Row {
    rows.iter()
        .find(|r| r.subscriber.to_string() == subscriber)
        .unwrap_or_else(|| panic!("no row {subscriber}: {rows:?}"))
}

/// A host that takes a new address in its /64 for every connection
/// (privacy addresses, or a bot rotating its sources) is one row, and is
/// flagged as the spambot it is: per address, each of its 5,000 rows had
/// seen one destination.
#[test]
fn ipv6_rows_are_per_64_whatever_addresses_the_hosts_take() {
    let p = policy();
    let table = Table::new(&p);
    let mut a = Analyzer::new(&p, &table, Options::default());
    let mut r = Rng(7);
    for i in 0..5_000u64 {
        let src = r.inside([0x2001, 0xdb8, 0x1, 0x200], 64);
        let dst = r.mx();
        a.add(&flow(src, dst, 25, 1_000_000 + i * 10));
    }
    // A mail client on another /64 of the same subscriber's /56: its own row.
    let client: IpAddr = "2001:db8:1:201::25".parse().unwrap();
    a.add(&flow(client, outside(9999), 25, 1_000_000));
    let rows = a.rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let bot = row(&rows, "2001:db8:1:200::/64");
    assert!(bot.spambot && bot.flows == 5_000 && bot.distinct_destinations == 250, "{bot:?}");
    assert!(!row(&rows, "2001:db8:1:201::/64").spambot);
    let csv = port25_egress::report::csv(&rows, false, false);
    assert!(csv.lines().nth(1).unwrap().starts_with("2001:db8:1:200::/64,res,residential,5000,"), "{csv}");
    let json = serde_json::to_value(&rows).unwrap();
    assert_eq!(json[0]["subscriber"], "2001:db8:1:200::/64");

    // Per address, if that is what the operator asks for.
    let mut per_address = Analyzer::new(&p, &table, Options { ipv6_prefix_len: 128, ..Options::default() });
    per_address.add(&flow(client, outside(9999), 25, 1_000_000));
    assert_eq!(per_address.rows()[0].subscriber.to_string(), "2001:db8:1:201::25");
}

/// With attribution, the row is the session's delegated prefix: the
/// subscriber's hosts on every /64 of its /56 are one row, named with the
/// session; an address no session holds is its /64's row, unnamed.
#[test]
fn an_attributed_ipv6_row_is_the_sessions_delegated_prefix() {
    let p = policy();
    let table = Table::new(&p);
    let index = Index::build(
        vec![session("alice", &["2001:db8:1:200::/56", "2001:db8:ffff::1/128"], 0)],
        &mut Warnings::default(),
    );
    let files = vec!["radacct/detail".to_string()];
    let mut a = Analyzer::new(&p, &table, Options::default());
    a.attribute(&index, &files);
    let mut r = Rng(3);
    for i in 0..2_000u64 {
        let src = r.inside([0x2001, 0xdb8, 0x1, 0x200], 56);
        let dst = r.mx();
        a.add(&flow(src, dst, 25, 1_000_000 + i));
    }
    a.add(&flow("2001:db8:ffff::1".parse().unwrap(), outside(9), 25, 5_000));
    a.add(&flow("2001:db8:9:9::9".parse().unwrap(), outside(9), 25, 5_000));
    let rows = a.rows();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let alice = row(&rows, "2001:db8:1:200::/56");
    let s = alice.attribution.session().expect("attributed");
    assert_eq!((s.subscriber.as_str(), s.prefix.as_str(), alice.flows), ("alice", "2001:db8:1:200::/56", 2_000));
    assert!(alice.spambot);
    // The same session's single address is a row of its own.
    let host = row(&rows, "2001:db8:ffff::1");
    assert_eq!(host.attribution.session().unwrap().prefix, "2001:db8:ffff::1/128");
    assert!(row(&rows, "2001:db8:9:9::/64").attribution.session().is_none());
    assert_eq!((a.flows_attributed, a.flows_unattributed), (2_001, 1));
}

/// Open-proxy evidence joins the row of the prefix it was sent to:
/// connections to any address of the subscriber's /56 count for it.
#[test]
fn inbound_evidence_joins_the_prefix_row() {
    let p = policy();
    let table = Table::new(&p);
    let index = Index::build(vec![session("bob", &["2001:db8:2:100::/56"], 0)], &mut Warnings::default());
    let files = vec!["radacct/detail".to_string()];
    let mut r = Rng(11);
    let mut a = Analyzer::new(&p, &table, Options::default());
    a.attribute(&index, &files);
    let mut plain = Analyzer::new(&p, &table, Options::default());
    for i in 0..40u8 {
        let to = r.inside([0x2001, 0xdb8, 0x2, 0x100], 56);
        let scanner = outside(0x1_0000 + u64::from(i));
        a.add(&flow(scanner, to, 1080, 1_000 + u64::from(i)));
        let to64 = r.inside([0x2001, 0xdb8, 0x2, 0x100], 64);
        plain.add(&flow(scanner, to64, 3128, 1_000 + u64::from(i)));
    }
    for i in 0..30u64 {
        let dst = r.mx();
        a.add(&flow(r.inside([0x2001, 0xdb8, 0x2, 0x100], 56), dst, 25, 2_000 + i));
        plain.add(&flow(r.inside([0x2001, 0xdb8, 0x2, 0x100], 64), dst, 25, 2_000 + i));
    }
    for (rows, name) in [(a.rows(), "2001:db8:2:100::/56"), (plain.rows(), "2001:db8:2:100::/64")] {
        assert_eq!(rows.len(), 1, "{rows:?}");
        let i = row(&rows, name).inbound.clone().expect("inbound evidence joined");
        // 40 sources: past the exact count, estimated.
        assert_eq!((i.flows, i.sources_estimated, i.smtp_after), (40, true, 30), "{i:?}");
        assert!((30..=50).contains(&i.sources), "{i:?}");
        assert!(row(&rows, name).estimated.contains(&"inbound_sources"));
    }
}

/// Past `max_rows`, no row is made: the flows are counted, the rows kept
/// go on counting theirs, and shards share the cap.
#[test]
fn rows_stop_at_the_cap_and_what_came_past_it_is_counted() {
    let p = policy();
    let table = Table::new(&p);
    let opts = Options { max_rows: 5, ..Options::default() };
    let mut a = Analyzer::new(&p, &table, opts);
    for i in 0..20u8 {
        a.add(&flow(IpAddr::from([198, 51, 100, i]), "192.0.2.1".parse().unwrap(), 25, 1_000));
    }
    a.add(&flow(IpAddr::from([198, 51, 100, 0]), "192.0.2.2".parse().unwrap(), 25, 2_000));
    let rows = a.rows();
    assert_eq!((rows.len(), a.flows_past_row_cap, a.flows_matched), (5, 15, 21));
    assert_eq!(rows.iter().map(|r| r.flows).sum::<u64>(), 6);

    // Four shards, fed from one prefilter: five rows in all.
    let mut one = Analyzer::new(&p, &table, opts);
    let pre = one.prefilter();
    let mut shards: Vec<Analyzer> = (1..4).map(|_| one.shard()).collect();
    let mut r = Rng(5);
    for i in 0..2_000u64 {
        let f = flow(r.inside([0x2001, 0xdb8, (i % 64) as u16, 0], 48), outside(1), 25, i);
        add_to_shard(&pre, &mut one, &mut shards, &f);
    }
    for s in shards {
        one.absorb(s);
    }
    let rows = one.rows();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows.iter().map(|r| r.flows).sum::<u64>() + one.flows_past_row_cap, 2_000);
}

/// Past `max_inbound` subscribers with evidence, a scanner's sweep of
/// the network is counted, not kept.
#[test]
fn inbound_evidence_stops_at_its_cap() {
    let p = policy();
    let table = Table::new(&p);
    let mut a = Analyzer::new(&p, &table, Options { max_inbound: 100, ..Options::default() });
    let mut r = Rng(9);
    for i in 0..10_000u64 {
        let to = r.inside([0x2001, 0xdb8, 0, 0], 32);
        a.add(&flow(outside(0x1_0000 + i % 200), to, 8080, i));
    }
    assert_eq!(a.inbound_flows_past_cap(), 9_900);
    assert!(a.rows().is_empty());
}

/// IPv6 flows of attributed /56 sessions and of unattributed /64s, split
/// into shards by the prefilter and absorbed back, give the rows one
/// analyzer gives (a row's addresses never reach two shards: that would
/// panic in `absorb`).
#[test]
fn ipv6_prefix_rows_stay_in_one_shard() {
    let p = policy();
    let table = Table::new(&p);
    let sessions: Vec<Session> =
        (0..32u16).map(|k| session(&format!("user{k}"), &[&format!("2001:db8:{k:x}:{:x}::/56", 0x100)], 0)).collect();
    let index = Index::build(sessions, &mut Warnings::default());
    let files = vec!["d".to_string()];
    let mut all = Analyzer::new(&p, &table, Options::default());
    all.attribute(&index, &files);
    let mut one = Analyzer::new(&p, &table, Options::default());
    one.attribute(&index, &files);
    let pre = one.prefilter();
    let mut shards: Vec<Analyzer> = (1..3).map(|_| one.shard()).collect();
    let mut r = Rng(13);
    for i in 0..30_000u64 {
        let x = r.next();
        let k = (x % 64) as u16;
        // Half the /48s have a session's /56; all flows inside a /56 of them.
        let inside = r.inside([0x2001, 0xdb8, k, 0x100], 56);
        let scanner = outside(0x1_0000 + (x >> 8) % 16);
        let dst = r.mx();
        let f = match x >> 20 & 3 {
            0 => flow(scanner, inside, 3128, i * 10),
            _ => flow(inside, dst, 25, i * 10),
        };
        all.add(&f);
        add_to_shard(&pre, &mut one, &mut shards, &f);
    }
    for s in shards {
        one.absorb(s);
    }
    let rows = all.rows();
    // 32 attributed /56 rows; the other 32 /48s' flows by /64 (256 each).
    assert_eq!(rows.iter().filter(|r| r.attribution.session().is_some()).count(), 32);
    assert!(rows.iter().all(|r| r.inbound.is_some() || r.flows < 100), "evidence joined");
    assert_eq!(rows, one.rows());
}
