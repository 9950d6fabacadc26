//! rbldnsd `ip4set` data files and plain address lists, one entry a line.
//!
//! ip4set forms (rbldnsd(8)): `1.2.3.4`, `1.2.3.0/24`, `1.2.3.4-1.2.3.9`,
//! and the abbreviations `1.2.3` (a /24), `1.2` (a /16), `1` (a /8); a
//! leading `!` excludes the range again; anything after the range (an A
//! value or TXT template such as `:127.0.0.2:Listed`) is ignored here.
//! Lines starting with `#` or `;` are comments, `$SOA`/`$NS`/`$TTL`...
//! are directives and `:...` sets the default value: all skipped. A plain
//! list (one IPv4 or IPv6 address a line, `#` comments) is the same grammar.
//!
//! Pure: one line in, one entry out; the caller decides what a bad line
//! costs (the blocklist counts it and goes on).

use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// First and last address, as [`crate::ip::key`]s.
    pub first: u128,
    pub last: u128,
    pub excluded: bool,
}

impl Entry {
    pub fn size(&self) -> u128 {
        self.last - self.first + 1
    }
}

/// `1.2.3` -> 1.2.3.0/24 and so on; `None` when not dotted decimal.
fn partial_v4(s: &str) -> Option<(u32, u8)> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut v = 0u32;
    for p in &parts {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = p.parse().ok()?;
        if n > 255 {
            return None;
        }
        v = (v << 8) | n;
    }
    let bits = 8 * parts.len() as u8;
    Some((if bits == 32 { v } else { v << (32 - u32::from(bits)) }, bits))
}

fn prefix(ip: IpAddr, len: u8) -> Result<Entry, String> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(format!("/{len} is longer than /{max}"));
    }
    let l = crate::ip::len128(ip, len);
    let first = crate::ip::mask(crate::ip::key(ip), l);
    let last = first | if l == 128 { 0 } else { u128::MAX >> l };
    Ok(Entry { first, last, excluded: false })
}

/// One line: `Ok(None)` for blank lines, comments and directives.
pub fn parse_line(line: &str) -> Result<Option<Entry>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with(['#', ';', '$']) {
        return Ok(None);
    }
    // `:value` sets the default; an IPv6 address such as `::1` (plain
    // lists) also starts with a colon, and is an entry.
    if line.starts_with(':')
        && line
            .split_whitespace()
            .next()
            .is_none_or(|w| w.split('/').next().is_none_or(|a| a.parse::<std::net::Ipv6Addr>().is_err()))
    {
        return Ok(None);
    }
    let (excluded, rest) = match line.strip_prefix('!') {
        Some(r) => (true, r.trim_start()),
        None => (false, line),
    };
    // The range is the first word; an IPv4 range may carry its value
    // glued on (`1.2.3.4:127.0.0.2:text`), an IPv6 one has colons of its own.
    let word = rest.split_whitespace().next().unwrap_or("");
    let range = if word.contains('.') { word.split(':').next().unwrap_or("") } else { word };
    let mut e = if let Some((a, b)) = range.split_once('-') {
        let a: Ipv4Addr = a.parse().map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let b: Ipv4Addr = b.parse().map_err(|_| format!("{b:?} is not an IPv4 address"))?;
        let (first, last) = (crate::ip::key(a.into()), crate::ip::key(b.into()));
        if last < first {
            return Err(format!("range {range} ends before it starts"));
        }
        Entry { first, last, excluded: false }
    } else if let Some((a, len)) = range.split_once('/') {
        let len: u8 = len.parse().map_err(|_| format!("{len:?} is not a prefix length"))?;
        let ip: IpAddr = match a.parse() {
            Ok(ip) => ip,
            Err(_) => IpAddr::V4(Ipv4Addr::from(partial_v4(a).ok_or_else(|| format!("{a:?} is not an IP address"))?.0)),
        };
        prefix(ip, len)?
    } else if let Ok(ip) = range.parse::<IpAddr>() {
        prefix(ip, if ip.is_ipv4() { 32 } else { 128 })?
    } else {
        let (v, bits) = partial_v4(range).ok_or_else(|| format!("{range:?} is not an address, prefix or range"))?;
        prefix(IpAddr::V4(Ipv4Addr::from(v)), bits)?
    };
    e.excluded = excluded;
    Ok(Some(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> u128 {
        crate::ip::key(s.parse().unwrap())
    }

    #[test]
    fn forms() {
        assert_eq!(
            parse_line("1.2.3.4").unwrap(),
            Some(Entry { first: k("1.2.3.4"), last: k("1.2.3.4"), excluded: false })
        );
        assert_eq!(parse_line("1.2.3.4 :127.0.0.2:Listed").unwrap().unwrap().last, k("1.2.3.4"));
        assert_eq!(parse_line("1.2.3.4:127.0.0.2:x").unwrap().unwrap().first, k("1.2.3.4"));
        assert_eq!(parse_line("1.2.3.0/24").unwrap().unwrap().size(), 256);
        assert_eq!(
            parse_line("1.2.3").unwrap().unwrap(),
            Entry { first: k("1.2.3.0"), last: k("1.2.3.255"), excluded: false }
        );
        assert_eq!(parse_line("10").unwrap().unwrap().size(), 1 << 24);
        assert_eq!(parse_line("1.2.3.4-1.2.3.9").unwrap().unwrap().size(), 6);
        assert!(parse_line("!1.2.3.5").unwrap().unwrap().excluded);
        assert_eq!(parse_line("2001:db8::1").unwrap().unwrap().size(), 1);
        assert_eq!(parse_line("::1").unwrap().unwrap().first, k("::1"));
        assert_eq!(parse_line("2001:db8::/64 listed").unwrap().unwrap().size(), 1 << 64);
        for skip in ["", "# c", "; c", "$SOA 3600 a b 0 1 2 3 4", ":127.0.0.2:Listed $"] {
            assert_eq!(parse_line(skip).unwrap(), None, "{skip:?}");
        }
        assert!(parse_line("1.2.3.4-1.2.3.1").unwrap_err().contains("ends before"));
        assert!(parse_line("1.2.3.256").is_err());
        assert!(parse_line("example.com").is_err());
        assert!(parse_line("1.2.3.0/33").is_err());
    }
}
