//! Reverse-DNS names of end-user space, pure: does a PTR name carry the
//! address it points from, or a token access networks use for dynamic and
//! residential pools?
//!
//! An MTA's name is chosen (`mail.example.net`); an access network names
//! its millions of addresses by pattern (`dsl-192-0-2-7.dyn.isp.example`,
//! `c0000207.pool.isp.example`, `7.2.0.192.broadband.isp.example`). Each
//! finding is a reason with a score the configuration gives, never a
//! verdict on its own. The input is an untrusted DNS name (any bytes up to
//! 255, maybe not even a valid name): the work is linear in its length
//! times a fixed number of patterns, and nothing is indexed by position.

use std::net::IpAddr;

/// Dynamic and residential tokens (whole tokens of a label, split at
/// punctuation and at letter/digit boundaries: `dsl123` has `dsl`).
pub const DYNAMIC_TOKENS: &[&str] = &[
    "dyn",
    "dynamic",
    "dynip",
    "dhcp",
    "pool",
    "dsl",
    "adsl",
    "xdsl",
    "vdsl",
    "sdsl",
    "cable",
    "ppp",
    "pppoe",
    "client",
    "clients",
    "customer",
    "cust",
    "broadband",
    "dial",
    "dialup",
    "dialin",
    "dip",
    "resid",
    "residential",
    "home",
    "user",
    "users",
    "subscriber",
    "mobile",
    "wireless",
    "wifi",
    "cgnat",
    "nat",
    "ftth",
    "fttx",
    "fttb",
    "catv",
    "modem",
    "unassigned",
];

/// How the address appears in the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The address is written in the name; the form says how ("dotted",
    /// "dashed", "reversed", "zero-padded", "hex", "decimal").
    AddressInName(&'static str),
    /// A dynamic/residential token.
    DynamicToken(String),
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::AddressInName(form) => write!(f, "the address is in the name ({form})"),
            Finding::DynamicToken(t) => write!(f, "dynamic/residential token {t:?}"),
        }
    }
}

/// Longest name looked at: a DNS name is at most 255 bytes on the wire,
/// 253 as text; anything longer is judged by its first 255 bytes.
pub const MAX_NAME: usize = 255;

/// Findings for `name` (a PTR of `ip`); at most one address form and the
/// first few tokens.
pub fn classify(ip: IpAddr, name: &str) -> Vec<Finding> {
    let bytes = name.as_bytes();
    let bytes = bytes.get(..MAX_NAME).unwrap_or(bytes);
    let lower: Vec<u8> = bytes.iter().map(u8::to_ascii_lowercase).collect();
    let lower = lower.strip_suffix(b".").unwrap_or(&lower);
    let mut out = Vec::new();
    if let Some(form) = address_form(ip.to_canonical(), lower) {
        out.push(Finding::AddressInName(form));
    }
    // The last two labels are the registered domain's (approximately):
    // a provider called "pool.example" is not a pool.
    let labels: Vec<&[u8]> = lower.split(|b| *b == b'.').collect();
    let host_labels = labels.len().saturating_sub(2);
    for label in labels.iter().take(host_labels) {
        for token in tokens(label) {
            if out.len() >= 4 {
                return out;
            }
            if let Some(t) = DYNAMIC_TOKENS.iter().find(|t| t.as_bytes() == token) {
                if !out.contains(&Finding::DynamicToken((*t).to_owned())) {
                    out.push(Finding::DynamicToken((*t).to_owned()));
                }
            }
        }
    }
    out
}

/// A label split at anything that is not a letter or digit, and between
/// letters and digits.
fn tokens(label: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = label;
    std::iter::from_fn(move || {
        while let Some((first, tail)) = rest.split_first() {
            if first.is_ascii_alphanumeric() {
                break;
            }
            rest = tail;
        }
        let first = *rest.first()?;
        let alpha = first.is_ascii_alphabetic();
        let len = rest.iter().take_while(|b| b.is_ascii_alphanumeric() && b.is_ascii_alphabetic() == alpha).count();
        let (token, tail) = rest.split_at(len);
        rest = tail;
        Some(token)
    })
}

/// True when `needle` occurs in `hay` with no digit (or, for `hex`, no
/// hex digit) right before or after it.
fn contains_bounded(hay: &[u8], needle: &[u8], hex: bool) -> bool {
    if needle.is_empty() || needle.len() > hay.len() {
        return false;
    }
    let digitish = |b: u8| if hex { b.is_ascii_hexdigit() } else { b.is_ascii_digit() };
    hay.windows(needle.len()).enumerate().any(|(i, w)| {
        w == needle
            && !i.checked_sub(1).and_then(|p| hay.get(p)).is_some_and(|b| digitish(*b))
            && !hay.get(i + needle.len()).is_some_and(|b| digitish(*b))
    })
}

fn address_form(ip: IpAddr, name: &[u8]) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            for sep in [".", "-", "_", ""] {
                let plain = [a, b, c, d].map(|o| o.to_string());
                let padded = [a, b, c, d].map(|o| format!("{o:03}"));
                // Without a separator only the padded form is unambiguous.
                if !sep.is_empty() {
                    if contains_bounded(name, plain.join(sep).as_bytes(), false) {
                        return Some(if sep == "." { "dotted" } else { "dashed" });
                    }
                    let reversed: Vec<&str> = plain.iter().rev().map(String::as_str).collect();
                    if contains_bounded(name, reversed.join(sep).as_bytes(), false) {
                        return Some("reversed");
                    }
                }
                if contains_bounded(name, padded.join(sep).as_bytes(), false) {
                    return Some("zero-padded");
                }
            }
            if contains_bounded(name, format!("{:08x}", u32::from(v4)).as_bytes(), true) {
                return Some("hex");
            }
            let decimal = u32::from(v4);
            if decimal >= 1 << 24 && contains_bounded(name, decimal.to_string().as_bytes(), false) {
                return Some("decimal");
            }
            None
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let full: Vec<String> = s.iter().map(|g| format!("{g:x}")).collect();
            let padded: Vec<String> = s.iter().map(|g| format!("{g:04x}")).collect();
            if contains_bounded(name, full.join("-").as_bytes(), true)
                || contains_bounded(name, padded.join("-").as_bytes(), true)
            {
                return Some("dashed");
            }
            // The interface identifier (low 64 bits) as one hex run, or
            // the whole address without separators.
            let iid = padded.get(4..).map(|g| g.concat()).unwrap_or_default();
            if u64::from_str_radix(&iid, 16).is_ok_and(|v| v > 0xffff) && contains_bounded(name, iid.as_bytes(), true) {
                return Some("hex");
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ip: &str, name: &str) -> Vec<Finding> {
        classify(ip.parse().unwrap(), name)
    }

    #[test]
    fn address_forms() {
        let cases = [
            ("192.0.2.7", "192.0.2.7.static.isp.example", "dotted"),
            ("192.0.2.7", "host-192-0-2-7.isp.example", "dashed"),
            ("192.0.2.7", "7.2.0.192.broadband.isp.example", "reversed"),
            ("192.0.2.7", "7-2-0-192.isp.example", "reversed"),
            ("192.0.2.7", "c192000002007.isp.example", "zero-padded"),
            ("192.0.2.7", "a192-000-002-007.isp.example", "zero-padded"),
            ("192.0.2.7", "pc0000207.isp.example", "hex"),
            ("192.0.2.7", "x3221225991.isp.example", "decimal"),
            ("2001:db8::1:2", "2001-db8-0-0-0-0-1-2.isp.example", "dashed"),
            ("2001:db8::abcd:1:2", "p0000abcd00010002.isp.example", "hex"),
        ];
        for (ip, name, form) in cases {
            assert!(check(ip, name).contains(&Finding::AddressInName(form)), "{name}: {:?}", check(ip, name));
        }
    }

    #[test]
    fn mta_names_and_neighbours_are_not_generic() {
        assert!(check("192.0.2.7", "mail.example.net").is_empty());
        assert!(check("192.0.2.7", "mx1.pool.example").is_empty(), "the registered domain's own labels");
        // Digits around the address are another address.
        assert!(check("192.0.2.7", "host-192-0-2-71.isp.example")
            .iter()
            .all(|f| !matches!(f, Finding::AddressInName(_))));
        assert!(check("192.0.2.7", "host-1192-0-2-7.isp.example")
            .iter()
            .all(|f| !matches!(f, Finding::AddressInName(_))));
    }

    #[test]
    fn dynamic_tokens() {
        let f = check("198.51.100.9", "adsl123.dyn.isp.example");
        assert_eq!(f, vec![Finding::DynamicToken("adsl".into()), Finding::DynamicToken("dyn".into())]);
        let f = check("198.51.100.9", "CPE-Cable_Modem.customer.ISP.example.");
        assert!(
            f.contains(&Finding::DynamicToken("cable".into())) && f.contains(&Finding::DynamicToken("customer".into())),
            "{f:?}"
        );
        assert!(check("198.51.100.9", "dynamics.example.net").is_empty(), "whole tokens only");
    }

    #[test]
    fn hostile_names_are_bounded() {
        let long = "1-".repeat(5000);
        assert!(classify("1.1.1.1".parse().unwrap(), &long).len() <= 4);
        let many = "dsl.dyn.pool.ppp.cable.dhcp.".repeat(40);
        assert!(classify("1.1.1.1".parse().unwrap(), &many).len() <= 4);
        assert!(classify("1.1.1.1".parse().unwrap(), "\u{e9}\u{202e}.\0.").is_empty());
        assert!(classify("1.1.1.1".parse().unwrap(), "").is_empty());
    }
}
