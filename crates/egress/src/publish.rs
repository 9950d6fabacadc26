//! `egress publish`: the policy's end-user space (the blocked networks,
//! exemptions left out) as a DNSBL zone, so that other operators' MXes can
//! refuse direct delivery from it, the way ISPs feed the Spamhaus PBL.
//!
//! Two formats:
//! - rbldnsd: one `combined` dataset (`rbldnsd -b ADDR ZONE:combined:FILE`)
//!   with `$SOA`, `$NS`, `$TTL`, an `ip4set` and an `ip6trie` section;
//! - BIND: a master zone file of reversed names (`*.c.b.a` for a /24,
//!   nibbles for IPv6), prefixes not on an octet (nibble) boundary split
//!   into the ones that are.
//!
//! Both list the RFC 5782 §5 test entries (127.0.0.2 and ::ffff:7f00:2
//! listed, 127.0.0.1 not) so a user of the list can check it works.
//! Output is deterministic for a given policy and settings.

use crate::policy::Policy;
use crate::prefix::{Family, Prefix};
use crate::table::Table;
use std::fmt::Write;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Rbldnsd,
    Bind,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "rbldnsd" => Ok(Format::Rbldnsd),
            "bind" => Ok(Format::Bind),
            _ => Err(format!("unknown format {s:?}: use rbldnsd or bind")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Zone {
    /// The list's zone, e.g. "enduser.dnsbl.isp.example".
    pub name: String,
    /// Its name servers (at least one).
    pub ns: Vec<String>,
    /// The SOA's responsible person, as a name ("hostmaster.isp.example").
    pub hostmaster: String,
    pub serial: u32,
    pub ttl: u32,
    /// The A record a listed address gets (127.0.0.10, like the PBL's).
    pub code: Ipv4Addr,
    /// The TXT record; in rbldnsd `$` becomes the queried address.
    pub text: String,
}

/// The TXT text that tells a person what to do instead.
pub fn default_text(policy: &Policy) -> String {
    format!("end-user space of {}: no direct delivery to port 25; send through your provider's submission server on port 587 with your login", policy.name)
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// A TXT string for a zone file: quotes and backslashes escaped, no
/// control characters, at most 255 bytes (one character-string).
fn txt(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() + 1 > 255 {
            break;
        }
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn publish(policy: &Policy, zone: &Zone, format: Format) -> String {
    let table = Table::new(policy);
    let v4 = table.blocked_prefixes(Family::V4);
    let v6 = table.blocked_prefixes(Family::V6);
    match format {
        Format::Rbldnsd => rbldnsd(policy, zone, &v4, &v6),
        Format::Bind => bind(policy, zone, &v4, &v6),
    }
}

fn header(policy: &Policy, zone: &Zone, comment: &str, v4: &[Prefix], v6: &[Prefix]) -> String {
    format!(
        "{comment} port25 egress publish: the end-user space of policy {:?} ({} IPv4 and {} IPv6 prefixes), zone {}\n\
         {comment} Listed: no direct delivery to port 25 from these addresses. Test entries (RFC 5782 section 5): 127.0.0.2 and ::ffff:7f00:2 listed, 127.0.0.1 not.\n",
        policy.name,
        v4.len(),
        v6.len(),
        zone.name.trim_end_matches('.')
    )
}

fn rbldnsd(policy: &Policy, zone: &Zone, v4: &[Prefix], v6: &[Prefix]) -> String {
    let mut s = header(policy, zone, "#", v4, v6);
    let ns: Vec<String> = zone.ns.iter().map(|n| fqdn(n)).collect();
    let _ = writeln!(
        s,
        "$SOA {} {} {} {} 3600 600 604800 {}",
        zone.ttl,
        ns.first().cloned().unwrap_or_default(),
        fqdn(&zone.hostmaster),
        zone.serial,
        zone.ttl
    );
    let _ = writeln!(s, "$NS {} {}", zone.ttl, ns.join(" "));
    let _ = writeln!(s, "$TTL {}", zone.ttl);
    // rbldnsd's TXT template: "$" is the address asked about.
    let text = txt(&zone.text).replace('$', "");
    let _ = writeln!(s, "$DATASET ip4set:end-user-v4 @");
    let _ = writeln!(s, ":{}:{text} ($)", zone.code);
    let _ = writeln!(s, "127.0.0.2");
    for p in v4 {
        let _ = writeln!(s, "{p}");
    }
    let _ = writeln!(s, "$DATASET ip6trie:end-user-v6 @");
    let _ = writeln!(s, ":{}:{text} ($)", zone.code);
    let _ = writeln!(s, "::ffff:7f00:2/128");
    for p in v6 {
        let _ = writeln!(s, "{p}");
    }
    s
}

/// The reversed names covering `p`: octet (IPv4) or nibble (IPv6) labels,
/// `*.` for anything shorter than a host. A prefix off the boundary
/// becomes the 2..128 prefixes on the next boundary it holds.
pub fn reversed_names(p: &Prefix) -> Vec<String> {
    let step = match p.family {
        Family::V4 => 8,
        Family::V6 => 4,
    };
    let bits = p.family.bits();
    let len = p.len.div_ceil(step) * step;
    let count = 1u128 << (len - p.len);
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count {
        let addr = p.addr | (i << (bits - len));
        let labels = len / step;
        let mut parts: Vec<String> = (0..labels)
            .map(|k| {
                let shift = bits - step * (k + 1);
                let v = (addr >> shift) & ((1u128 << step) - 1);
                match p.family {
                    Family::V4 => v.to_string(),
                    Family::V6 => format!("{v:x}"),
                }
            })
            .collect();
        parts.reverse();
        let name = parts.join(".");
        out.push(match (len == bits, name.is_empty()) {
            (true, _) => name,
            (false, true) => "*".to_owned(),
            (false, false) => format!("*.{name}"),
        });
    }
    out
}

fn bind(policy: &Policy, zone: &Zone, v4: &[Prefix], v6: &[Prefix]) -> String {
    let mut s = header(policy, zone, ";", v4, v6);
    let origin = fqdn(&zone.name);
    let ns: Vec<String> = zone.ns.iter().map(|n| fqdn(n)).collect();
    let _ = writeln!(s, "$ORIGIN {origin}\n$TTL {}", zone.ttl);
    let _ = writeln!(
        s,
        "@ IN SOA {} {} ( {} 3600 600 604800 {} )",
        ns.first().cloned().unwrap_or_default(),
        fqdn(&zone.hostmaster),
        zone.serial,
        zone.ttl
    );
    for n in &ns {
        let _ = writeln!(s, "@ IN NS {n}");
    }
    let text = txt(&zone.text).replace('$', "");
    let mut entry = |name: &str| {
        let _ = writeln!(s, "{name} IN A {}\n{name} IN TXT \"{text}\"", zone.code);
    };
    // RFC 5782 section 5 test entries.
    entry("2.0.0.127");
    entry("2.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0");
    for p in v4.iter().chain(v6) {
        for name in reversed_names(p) {
            entry(&name);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Zone {
        Zone {
            name: "enduser.bl.example".into(),
            ns: vec!["ns1.bl.example".into()],
            hostmaster: "hostmaster.bl.example".into(),
            serial: 7,
            ttl: 300,
            code: "127.0.0.10".parse().unwrap(),
            text: "end-user \"space\"".into(),
        }
    }

    fn policy() -> Policy {
        crate::policy::parse(
            "[policy]\nname = \"isp\"\n[[network]]\nname = \"dsl\"\nclass = \"residential\"\nprefixes = [\"198.51.100.0/24\", \"2001:db8:100::/40\"]\n\
             [[network]]\nname = \"biz\"\nclass = \"business\"\nprefixes = [\"203.0.113.0/24\"]\n\
             [[exempt]]\nname = \"relay\"\nprefixes = [\"198.51.100.25/32\"]\n",
            std::path::Path::new("p.toml"),
        )
        .unwrap()
    }

    #[test]
    fn rbldnsd_lists_blocked_space_without_exemptions() {
        let out = publish(&policy(), &zone(), Format::Rbldnsd);
        assert!(out.contains("$SOA 300 ns1.bl.example. hostmaster.bl.example. 7 3600 600 604800 300\n"), "{out}");
        assert!(out.contains("$NS 300 ns1.bl.example.\n$TTL 300\n$DATASET ip4set:end-user-v4 @\n:127.0.0.10:end-user \\\"space\\\" ($)\n127.0.0.2\n"), "{out}");
        assert!(
            out.contains("198.51.100.0/28\n")
                && out.contains("198.51.100.24/32\n")
                && out.contains("198.51.100.26/31\n"),
            "{out}"
        );
        assert!(
            !out.contains("198.51.100.25/32") && !out.contains("203.0.113"),
            "exempt and business space are not listed: {out}"
        );
        assert!(out.contains("$DATASET ip6trie:end-user-v6 @\n") && out.contains("2001:db8:100::/40\n"), "{out}");
    }

    #[test]
    fn bind_names_are_reversed_on_label_boundaries() {
        let out = publish(&policy(), &zone(), Format::Bind);
        assert!(
            out.contains(
                "$ORIGIN enduser.bl.example.\n$TTL 300\n@ IN SOA ns1.bl.example. hostmaster.bl.example. ( 7 3600 600 604800 300 )\n@ IN NS ns1.bl.example.\n"
            ),
            "{out}"
        );
        assert!(out.contains("2.0.0.127 IN A 127.0.0.10\n2.0.0.127 IN TXT \"end-user \\\"space\\\"\"\n"), "{out}");
        assert!(out.contains("24.100.51.198 IN A 127.0.0.10\n") && !out.contains("\n25.100.51.198 "), "{out}");
        // 198.51.100.0/28 is 16 host names.
        assert!(out.contains("\n0.100.51.198 IN A") && out.contains("\n15.100.51.198 IN A"), "{out}");
        // A /40 on a nibble boundary: one wildcard.
        assert!(out.contains("*.1.0.8.b.d.0.1.0.0.2 IN A 127.0.0.10\n"), "{out}");
    }

    #[test]
    fn names_for_odd_lengths() {
        let p = |s: &str| s.parse::<Prefix>().unwrap();
        assert_eq!(reversed_names(&p("10.0.0.0/8")), vec!["*.10"]);
        assert_eq!(reversed_names(&p("10.1.2.3/32")), vec!["3.2.1.10"]);
        assert_eq!(reversed_names(&p("10.0.0.0/15")), vec!["*.0.10", "*.1.10"]);
        assert_eq!(reversed_names(&p("0.0.0.0/0")), vec!["*"]);
        assert_eq!(reversed_names(&p("10.0.0.0/9")).len(), 128);
        assert_eq!(reversed_names(&p("2001:db8::/33")).len(), 8);
        assert_eq!(reversed_names(&p("2001:db8::/33"))[0], "*.0.8.b.d.0.1.0.0.2");
    }
}
