//! DNS blocklists and allowlists (RFC 5782), pure: the query name for an
//! address, the code filters of the configuration, and what an answer
//! means.
//!
//! A list answers a question `<reversed address>.<zone>` with A records in
//! 127.0.0.0/8 when the address is listed (RFC 5782 §2.3), NXDOMAIN when it
//! is not. Only documented listing codes count: an answer outside
//! 127.0.0.0/8 (a resolver that rewrites NXDOMAIN to an advertising server)
//! and 127.0.0.1 (never a listing, §5) count for nothing, and the error
//! codes 127.255.255.0/24 (Spamhaus's 252: typo in the zone name, 254:
//! query through an open or public resolver, 255: rate limited) mean the
//! list is unusable from here: the caller raises an event and the list
//! scores nothing, so a broken list can never reject anyone.

use port25_config::ScreenList;
use std::net::{IpAddr, Ipv4Addr};

/// The RFC 5782 error codes and their meaning (Spamhaus's, the de facto
/// convention other lists follow).
pub fn error_meaning(code: Ipv4Addr) -> Option<&'static str> {
    let o = code.octets();
    if o[0..3] != [127, 255, 255] {
        return None;
    }
    Some(match o[3] {
        252 => "typo in the DNSBL zone name",
        254 => "query refused: it came through an open or public resolver",
        255 => "excessive number of queries",
        _ => "an error code of the list",
    })
}

/// What one zone said about an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// NXDOMAIN (or no A record): not listed.
    NotListed,
    /// Listing codes, in the order given, duplicates removed (documented
    /// codes only; at least one).
    Listed(Vec<Ipv4Addr>),
    /// An error code: the list cannot be used from here.
    Unusable(Ipv4Addr),
    /// Only codes that are not listing codes (outside 127.0.0.0/8, or
    /// 127.0.0.1): counts for nothing, but someone should look.
    Bogus(Vec<Ipv4Addr>),
    /// Timeout or server failure: counts for nothing, never rejects.
    Failed(String),
}

/// Interprets the A records of an answer (at most the first 32 are looked
/// at: a list that sends more is not following any convention).
pub fn judge(records: &[Ipv4Addr]) -> Answer {
    let records = records.get(..32).unwrap_or(records);
    if let Some(e) = records.iter().find(|a| error_meaning(**a).is_some()) {
        return Answer::Unusable(*e);
    }
    let mut listed: Vec<Ipv4Addr> = Vec::new();
    let mut bogus = Vec::new();
    for a in records {
        let documented = a.octets()[0] == 127 && *a != Ipv4Addr::new(127, 0, 0, 1);
        let into = if documented { &mut listed } else { &mut bogus };
        if !into.contains(a) {
            into.push(*a);
        }
    }
    match (listed.is_empty(), bogus.is_empty()) {
        (false, _) => Answer::Listed(listed),
        (true, false) => Answer::Bogus(bogus),
        (true, true) => Answer::NotListed,
    }
}

/// The weight a rule adds for a `Listed` answer: its weight when any code
/// passes its filter (no filter: any listing code), else nothing.
/// A `[[mx.screen.dnsbl]]` entry ([`ScreenList`]) is a zone, the codes it
/// counts and a weight; a zone may appear in several entries.
pub fn rule_score(rule: &ScreenList, answer: &Answer) -> Option<(i32, Ipv4Addr)> {
    let Answer::Listed(codes) = answer else { return None };
    let hit = codes
        .iter()
        .find(|c| rule.codes.is_empty() || rule.codes.iter().any(|(first, last)| first <= *c && *c <= last))?;
    Some((rule.weight, *hit))
}

/// The question for `ip` in `zone`: the IPv4 octets reversed, or the
/// IPv6 nibbles reversed (RFC 5782 §2.1, §2.4), with a final dot.
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_end_matches('.');
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{zone}.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(64 + zone.len() + 1);
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0xf, byte >> 4] {
                    s.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                    s.push('.');
                }
            }
            s.push_str(zone);
            s.push('.');
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn query_names_reverse_octets_and_nibbles() {
        assert_eq!(query_name("192.0.2.99".parse().unwrap(), "zen.example"), "99.2.0.192.zen.example.");
        assert_eq!(query_name("::ffff:192.0.2.99".parse().unwrap(), "zen.example."), "99.2.0.192.zen.example.");
        assert_eq!(
            query_name("2001:db8:1:2:3:4:567:89ab".parse().unwrap(), "l.example"),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.l.example."
        );
    }

    #[test]
    fn only_documented_codes_list_and_error_codes_make_a_list_unusable() {
        assert_eq!(judge(&[]), Answer::NotListed);
        assert_eq!(
            judge(&[ip("127.0.0.2"), ip("127.0.0.2"), ip("127.0.0.10")]),
            Answer::Listed(vec![ip("127.0.0.2"), ip("127.0.0.10")])
        );
        for e in ["127.255.255.252", "127.255.255.254", "127.255.255.255"] {
            assert_eq!(judge(&[ip("127.0.0.2"), ip(e)]), Answer::Unusable(ip(e)), "{e}");
            assert!(error_meaning(ip(e)).is_some());
        }
        // NXDOMAIN rewritten to an advertising server, and 127.0.0.1.
        assert_eq!(judge(&[ip("198.51.100.7")]), Answer::Bogus(vec![ip("198.51.100.7")]));
        assert_eq!(judge(&[ip("127.0.0.1")]), Answer::Bogus(vec![ip("127.0.0.1")]));
        assert_eq!(judge(&[ip("198.51.100.7"), ip("127.0.0.4")]), Answer::Listed(vec![ip("127.0.0.4")]));
    }

    #[test]
    fn filters_weigh_codes_apart() {
        let pbl =
            ScreenList { zone: "zen.example".into(), codes: vec![(ip("127.0.0.10"), ip("127.0.0.11"))], weight: 1 };
        let sbl = ScreenList { zone: "zen.example".into(), codes: vec![(ip("127.0.0.2"), ip("127.0.0.9"))], weight: 3 };
        let any = ScreenList { zone: "zen.example".into(), codes: vec![], weight: 2 };
        let a = judge(&[ip("127.0.0.11")]);
        assert_eq!(rule_score(&pbl, &a), Some((1, ip("127.0.0.11"))));
        assert_eq!(rule_score(&sbl, &a), None);
        assert_eq!(rule_score(&any, &a), Some((2, ip("127.0.0.11"))));
        assert_eq!(rule_score(&any, &Answer::Unusable(ip("127.255.255.254"))), None);
        assert_eq!(rule_score(&any, &Answer::Failed("timeout".into())), None);
    }
}
