//! The flattened table, the firewall sets and `check` agree on every address.

use port25_egress::check::deciding_entry;
use port25_egress::policy::{self, Policy};
use port25_egress::prefix::{ip_to_u128, u128_to_ip, Family};
use port25_egress::table::{EntryKind, Table, NONE};
use std::net::IpAddr;
use std::path::Path;

#[allow(dead_code)]
#[path = "../../../fuzz/src/smoke.rs"]
mod smoke;
use smoke::Rng;

fn edge() -> Policy {
    policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/edge.toml")).unwrap()
}

/// Addresses near every prefix boundary of the policy, plus random ones.
fn probes(p: &Policy, rng: &mut Rng) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let all =
        p.networks.iter().flat_map(|n| n.prefixes.iter()).chain(p.exemptions.iter().flat_map(|x| x.prefixes.iter()));
    for pf in all {
        for v in [
            pf.first().wrapping_sub(1),
            pf.first(),
            pf.first() + 1,
            pf.last() - 1,
            pf.last(),
            pf.last().wrapping_add(1),
        ] {
            let v = if pf.family == Family::V4 { v & 0xffff_ffff } else { v };
            out.push(u128_to_ip(pf.family, v));
        }
        for _ in 0..200 {
            let r = (rng.next() as u128) << 64 | rng.next() as u128;
            let v = pf.first() + r % (pf.last() - pf.first() + 1);
            out.push(u128_to_ip(pf.family, v));
        }
    }
    out
}

fn in_sets(sets: &(Vec<port25_egress::prefix::Prefix>, Vec<port25_egress::prefix::Prefix>), ip: IpAddr) -> bool {
    let (f, v) = ip_to_u128(ip);
    // Exempt first, then blocked: the order every dialect uses.
    !sets.1.iter().any(|p| p.contains(f, v)) && sets.0.iter().any(|p| p.contains(f, v))
}

#[test]
fn table_and_sets_agree_with_check() {
    for p in [edge(), policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/egress.toml")).unwrap()] {
        let t = Table::new(&p);
        let s4 = t.sets(Family::V4);
        let s6 = t.sets(Family::V6);
        let mut rng = Rng(0x9e3779b97f4a7c15);
        for ip in probes(&p, &mut rng) {
            let want = deciding_entry(&p, ip);
            let got = t.lookup(ip);
            match want {
                None => assert_eq!(got, NONE, "{ip}"),
                Some((kind, index, _)) => {
                    let e = &t.entries[got as usize];
                    assert_eq!((e.kind, e.index), (kind, index), "{ip}");
                }
            }
            let blocked = matches!(want, Some((EntryKind::Network, i, _)) if p.networks[i].block);
            let sets = if ip.is_ipv4() { &s4 } else { &s6 };
            assert_eq!(in_sets(sets, ip), blocked, "{ip}: firewall sets disagree with check");
        }
    }
}

#[test]
fn nested_networks_decide_by_longest_prefix() {
    let p = edge();
    let t = Table::new(&p);
    let name = |ip: &str| {
        let e = t.lookup(ip.parse().unwrap());
        if e == NONE {
            return "-".to_owned();
        }
        let e = &t.entries[e as usize];
        match e.kind {
            EntryKind::Network => p.networks[e.index].name.clone(),
            EntryKind::Exempt => p.exemptions[e.index].name.clone(),
        }
    };
    assert_eq!(name("10.0.0.1"), "res");
    assert_eq!(name("10.0.0.25"), "mta");
    assert_eq!(name("10.0.130.1"), "biz-inside-res");
    assert_eq!(name("172.16.5.9"), "dyn-inside-biz");
    assert_eq!(name("172.16.6.9"), "big-business");
    assert_eq!(name("10.1.255.255"), "mta");
    assert_eq!(name("10.2.0.0"), "-");
    assert_eq!(name("0.0.0.0"), "-");
    assert_eq!(name("255.255.255.255"), "-");
    assert_eq!(name("2001:db8::25"), "mta");
    assert_eq!(name("2001:db9:8000::1"), "v6-only-mobile");
    assert_eq!(name("2001:db9::1"), "-");
    assert_eq!(name("::ffff:10.0.0.1"), "res");
}

#[test]
fn default_route_prefixes_flatten() {
    let p = policy::parse(
        "[[network]]\nname=\"all\"\nclass=\"mobile\"\nprefixes=[\"0.0.0.0/0\",\"::/0\"]\n[[exempt]]\nname=\"x\"\nprefixes=[\"255.255.255.255\",\"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\",\"0.0.0.0\"]\n",
        Path::new("t"),
    )
    .unwrap();
    let t = Table::new(&p);
    assert!(t.is_blocked(t.lookup("1.2.3.4".parse().unwrap())));
    assert!(!t.is_blocked(t.lookup("255.255.255.255".parse().unwrap())));
    assert!(!t.is_blocked(t.lookup("0.0.0.0".parse().unwrap())));
    assert!(!t.is_blocked(t.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap())));
    assert!(t.is_blocked(t.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe".parse().unwrap())));
    let (b, e) = t.sets(Family::V4);
    assert_eq!(b.iter().map(|p| p.to_string()).collect::<Vec<_>>(), ["0.0.0.0/0"]);
    assert_eq!(e.len(), 2);
}
