//! Pure readers of the TXT records the check judges (what DNS answers is
//! input from anyone: bounded, never sliced by byte index) and writers of
//! the records it suggests.

use std::net::IpAddr;

/// The most tags a tag list may have before it is refused as garbage (a
/// DKIM record has 2 to 6, DMARC up to 11).
const MAX_TAGS: usize = 64;

/// An RFC 6376 §3.2 tag list (`v=DKIM1; k=rsa; p=...`, also DMARC,
/// TLS-RPT and MTA-STS records): tag names lower-cased, values with their
/// folding whitespace removed at both ends. `None` when a tag is not
/// `name=value`, a name is not a tag name, or a name appears twice.
pub fn tags(record: &str) -> Option<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for part in record.split(';') {
        let part = part.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r' || c == '\n');
        if part.is_empty() {
            continue;
        }
        let (name, value) = part.split_once('=')?;
        let name = name.trim_end_matches([' ', '\t']).to_ascii_lowercase();
        let mut chars = name.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return None;
        }
        if out.iter().any(|(n, _)| *n == name) || out.len() == MAX_TAGS {
            return None;
        }
        out.push((name, value.trim_matches([' ', '\t', '\r', '\n']).to_owned()));
    }
    Some(out)
}

/// The value of `name` in a tag list.
pub fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Whether a tag list's first tag is `v=<version>` (DMARC, TLS-RPT and
/// MTA-STS records must start with it; DKIM's v= is optional but first).
pub fn starts_with_version(tags: &[(String, String)], version: &str) -> bool {
    tags.first().is_some_and(|(n, v)| n == "v" && v == version)
}

/// Whether a TXT record is an SPF record (RFC 7208 §4.5: "v=spf1" alone or
/// followed by a space, case-insensitive).
pub fn is_spf(record: &str) -> bool {
    let head = record.as_bytes();
    head.len() >= 6 && head[..6].eq_ignore_ascii_case(b"v=spf1") && (head.len() == 6 || head[6] == b' ')
}

/// The SPF mechanism that names one address.
pub fn spf_mechanism(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip4:{v4}"),
        IpAddr::V6(v6) => format!("ip6:{v6}"),
    }
}

/// `record` with mechanisms for `missing` added before its `all` (or
/// `redirect=`), or a new record when there is none: what to publish so
/// that those addresses pass.
pub fn spf_with(record: Option<&str>, missing: &[IpAddr]) -> String {
    let added: Vec<String> = missing.iter().map(|ip| spf_mechanism(*ip)).collect();
    let Some(record) = record else {
        let mut terms = vec!["v=spf1".to_owned(), "mx".to_owned()];
        terms.extend(added);
        terms.push("-all".to_owned());
        return terms.join(" ");
    };
    let mut terms: Vec<&str> = record.split_ascii_whitespace().collect();
    let at = terms
        .iter()
        .position(|t| {
            let t = t.to_ascii_lowercase();
            t.trim_start_matches(['+', '-', '~', '?']) == "all" || t.starts_with("redirect=")
        })
        .unwrap_or(terms.len());
    for (i, a) in added.iter().enumerate() {
        if !terms.iter().any(|t| t.eq_ignore_ascii_case(a)) {
            terms.insert(at + i, a);
        }
    }
    terms.join(" ")
}

/// The `all` qualifier of an SPF record, if it ends with one.
pub fn spf_all(record: &str) -> Option<char> {
    let last = record.split_ascii_whitespace().last()?.to_ascii_lowercase();
    match last.as_str() {
        "all" | "+all" => Some('+'),
        "-all" => Some('-'),
        "~all" => Some('~'),
        "?all" => Some('?'),
        _ => None,
    }
}

/// The name of an address's PTR record: `4.3.2.1.in-addr.arpa` for 1.2.3.4,
/// nibbles under `ip6.arpa` for IPv6.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut labels = Vec::with_capacity(33);
            for byte in v6.octets().iter().rev() {
                labels.push(format!("{:x}", byte & 0xF));
                labels.push(format!("{:x}", byte >> 4));
            }
            labels.push("ip6.arpa".to_owned());
            labels.join(".")
        }
    }
}

/// A DNS name compared case-insensitively, without its final dot.
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// A record value as it may be shown on a terminal: control characters
/// (and the other characters a log escapes) written as escapes, and at
/// most 600 characters.
pub fn shown(text: &str) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == 600 {
            out.push_str("...");
            break;
        }
        if c.is_control() || (!c.is_ascii() && c.escape_debug().next() == Some('\\')) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// A TXT record as zone-file text: the value quoted, in strings of at most
/// 255 bytes (RFC 1035 character-strings); `"` and `\` escaped with a
/// backslash, bytes outside printable ASCII as `\DDD` (RFC 1035 §5.1), so
/// a value taken from DNS prints as one safe line.
pub fn txt_rdata(value: &str) -> String {
    let mut out = String::from("\"");
    for (i, b) in value.bytes().enumerate() {
        if i > 0 && i % 255 == 0 {
            out.push_str("\" \"");
        }
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lists() {
        let t = tags("v=DMARC1; p=reject;rua=mailto:d@example.net ;  ").unwrap();
        assert_eq!(tag(&t, "p"), Some("reject"));
        assert_eq!(tag(&t, "rua"), Some("mailto:d@example.net"));
        assert!(starts_with_version(&t, "DMARC1"));
        assert!(tags("v=DMARC1; p").is_none());
        assert!(tags("v=1; v=2").is_none());
        assert!(tags("1x=3").is_none());
        assert_eq!(tags("").unwrap(), vec![]);
    }

    #[test]
    fn spf_suggestions_keep_the_record_and_add_before_all() {
        let ip: IpAddr = "192.0.2.25".parse().unwrap();
        let v6: IpAddr = "2001:db8::25".parse().unwrap();
        assert_eq!(
            spf_with(Some("v=spf1 mx include:_spf.example.org -all"), &[ip]),
            "v=spf1 mx include:_spf.example.org ip4:192.0.2.25 -all"
        );
        assert_eq!(
            spf_with(Some("v=spf1 redirect=_spf.example.org"), &[ip, v6]),
            "v=spf1 ip4:192.0.2.25 ip6:2001:db8::25 redirect=_spf.example.org"
        );
        assert_eq!(spf_with(None, &[ip]), "v=spf1 mx ip4:192.0.2.25 -all");
        assert_eq!(spf_with(Some("v=spf1 a"), &[ip]), "v=spf1 a ip4:192.0.2.25");
        assert!(is_spf("V=SPF1 -all") && is_spf("v=spf1") && !is_spf("v=spf10") && !is_spf("v=spf"));
        assert_eq!(spf_all("v=spf1 mx ~all"), Some('~'));
        assert_eq!(spf_all("v=spf1 mx"), None);
    }

    #[test]
    fn names_and_text() {
        assert_eq!(reverse_name("192.0.2.7".parse().unwrap()), "7.2.0.192.in-addr.arpa");
        assert_eq!(reverse_name("::ffff:192.0.2.7".parse().unwrap()), "7.2.0.192.in-addr.arpa");
        assert!(
            reverse_name("2001:db8::1".parse().unwrap()).starts_with("1.0.0.0.")
                && reverse_name("2001:db8::1".parse().unwrap()).ends_with(".8.b.d.0.1.0.0.2.ip6.arpa")
        );
        assert_eq!(shown("a\u{1b}[2J\n"), "a\\u{1b}[2J\\n");
        let long = "p".repeat(300);
        let rdata = txt_rdata(&format!("v=DKIM1; \"{long}"));
        assert!(rdata.starts_with("\"v=DKIM1; \\\"ppp") && rdata.contains("\" \"pp"), "{rdata}");
        assert_eq!(txt_rdata("a\u{1b}é\\"), "\"a\\027\\195\\169\\\\\"");
        assert!(same_name("MX.Example.NET.", "mx.example.net"));
    }
}
