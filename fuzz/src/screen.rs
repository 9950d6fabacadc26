//! port25_screen's pure parsers: the reverse-DNS name classifier and the
//! DNSBL answer parser (with the configuration's code filters).

use port25_screen::dnsbl::{self, Answer};
use port25_screen::rdns::{self, Finding};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address from the first bytes: a first byte below 128 takes 4 more
/// bytes (IPv4), else 16 (IPv6); the rest is returned.
fn address(data: &[u8]) -> Option<(IpAddr, &[u8])> {
    let (&kind, rest) = data.split_first()?;
    if kind < 128 {
        let b: [u8; 4] = rest.get(..4)?.try_into().ok()?;
        Some((IpAddr::V4(Ipv4Addr::from(b)), rest.get(4..)?))
    } else {
        let b: [u8; 16] = rest.get(..16)?.try_into().ok()?;
        Some((IpAddr::V6(Ipv6Addr::from(b)), rest.get(16..)?))
    }
}

/// `screen_rdns` (port25_screen::rdns::classify): never panics on any
/// name (a PTR answer is untrusted, up to 255 bytes and beyond); at most
/// four findings, at most one of them an address form, no token twice;
/// ASCII case does not matter; the address written dashed in a name with a
/// dynamic token is always found.
pub fn rdns(data: &[u8]) {
    let Some((ip, rest)) = address(data) else { return };
    let name = String::from_utf8_lossy(rest);
    let found = rdns::classify(ip, &name);
    assert!(found.len() <= 4, "{name:?}: {found:?}");
    assert!(found.iter().filter(|f| matches!(f, Finding::AddressInName(_))).count() <= 1, "{found:?}");
    for (i, f) in found.iter().enumerate() {
        assert!(!found[..i].contains(f), "{f:?} twice in {found:?}");
    }
    if rest.len() <= rdns::MAX_NAME {
        assert_eq!(rdns::classify(ip, &name.to_ascii_uppercase()), found, "{name:?}: case changed the findings");
    }
    let dashed = match ip.to_canonical() {
        IpAddr::V4(v4) => v4.octets().map(|o| o.to_string()).join("-"),
        IpAddr::V6(v6) => v6.segments().map(|g| format!("{g:x}")).join("-"),
    };
    let generic = format!("x-{dashed}.dyn.isp.example");
    let g = rdns::classify(ip, &generic);
    assert!(g.iter().any(|f| matches!(f, Finding::AddressInName(_))), "{generic}: {g:?}");
    assert!(g.contains(&Finding::DynamicToken("dyn".into())), "{generic}: {g:?}");
}

/// `screen_dnsbl` (port25_screen::dnsbl::judge, rule_score, query_name
/// and port25_config::parse_code_filter): the A records of an answer are
/// the input's 4-byte groups. Never panics; an RFC 5782 error code among
/// the first 32 makes the list unusable and scores nothing; listed codes
/// are documented ones (127.0.0.0/8 but 127.0.0.1) and scored only by
/// filters that hold them; the kind of answer does not depend on the
/// order of the records. The input as text is a code filter: accepted
/// filters are non-empty ranges inside 127.0.0.0/8.
pub fn dnsbl(data: &[u8]) {
    let records: Vec<Ipv4Addr> = data.chunks_exact(4).map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3])).collect();
    let answer = dnsbl::judge(&records);
    let first = records.get(..32).unwrap_or(&records);
    let error = first.iter().any(|a| dnsbl::error_meaning(*a).is_some());
    assert_eq!(matches!(answer, Answer::Unusable(_)), error, "{records:?}: {answer:?}");
    let mut reversed = records.clone();
    reversed.reverse();
    if records.len() <= 32 {
        assert_eq!(std::mem::discriminant(&dnsbl::judge(&reversed)), std::mem::discriminant(&answer), "{records:?}");
    }
    let rule = port25_config::ScreenList {
        zone: "bl.example".into(),
        codes: vec![(Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 9))],
        weight: 3,
    };
    match &answer {
        Answer::Listed(codes) => {
            assert!(!codes.is_empty());
            for c in codes {
                assert!(
                    c.octets()[0] == 127 && *c != Ipv4Addr::new(127, 0, 0, 1) && dnsbl::error_meaning(*c).is_none(),
                    "{c} counted"
                );
            }
            let held = codes.iter().any(|c| (Ipv4Addr::new(127, 0, 0, 2)..=Ipv4Addr::new(127, 0, 0, 9)).contains(c));
            assert_eq!(dnsbl::rule_score(&rule, &answer).is_some(), held, "{codes:?}");
        }
        other => assert_eq!(dnsbl::rule_score(&rule, other), None),
    }
    if let Some((ip, _)) = address(data) {
        let q = dnsbl::query_name(ip, "bl.example");
        assert!(q.ends_with(".bl.example.") && q.is_ascii(), "{q}");
        let labels = q.trim_end_matches(".bl.example.").split('.').count();
        assert_eq!(labels, if ip.to_canonical().is_ipv4() { 4 } else { 32 }, "{q}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok((first, last)) = port25_config::parse_code_filter(text) {
            assert!(first <= last && first.octets()[0] == 127 && last.octets()[0] == 127, "{text:?}");
        }
    }
}
