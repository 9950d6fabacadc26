//! IP prefixes as integer ranges, and aggregation to a minimal equivalent set.
//!
//! Both families live in `u128` (IPv4 in the low 32 bits) so one set of
//! range arithmetic serves both; the family travels alongside so that an
//! IPv4 /8 never merges with an IPv6 range that happens to have the same
//! numbers.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
    pub fn max(self) -> u128 {
        match self {
            Family::V4 => u32::MAX as u128,
            Family::V6 => u128::MAX,
        }
    }
}

/// `addr/len` with the host bits zero (enforced by the parser: a prefix
/// written with host bits set is almost always a typo, so it is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    pub family: Family,
    pub addr: u128,
    pub len: u8,
}

/// An inclusive range of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    pub family: Family,
    pub first: u128,
    pub last: u128,
}

#[inline]
pub fn ip_to_u128(ip: IpAddr) -> (Family, u128) {
    match ip {
        IpAddr::V4(a) => (Family::V4, u32::from(a) as u128),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            // ::ffff:a.b.c.d is the IPv4 host as far as a firewall is concerned.
            Some(v4) => (Family::V4, u32::from(v4) as u128),
            None => (Family::V6, u128::from(a)),
        },
    }
}

pub fn u128_to_ip(family: Family, v: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

impl Prefix {
    pub fn host(ip: IpAddr) -> Prefix {
        let (family, addr) = ip_to_u128(ip);
        Prefix { family, addr, len: family.bits() }
    }
    fn host_mask(family: Family, len: u8) -> u128 {
        let host_bits = family.bits() - len;
        if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        }
    }
    pub fn first(&self) -> u128 {
        self.addr
    }
    pub fn last(&self) -> u128 {
        self.addr | Self::host_mask(self.family, self.len)
    }
    pub fn range(&self) -> Range {
        Range { family: self.family, first: self.first(), last: self.last() }
    }
    pub fn contains(&self, family: Family, v: u128) -> bool {
        self.family == family && v >= self.first() && v <= self.last()
    }
    pub fn covers(&self, other: &Prefix) -> bool {
        self.family == other.family
            && self.len <= other.len
            && other.first() >= self.first()
            && other.last() <= self.last()
    }
    pub fn network(&self) -> IpAddr {
        u128_to_ip(self.family, self.addr)
    }
    /// The netmask in dotted form (IPv4) for dialects that want one.
    pub fn netmask_v4(&self) -> Ipv4Addr {
        Ipv4Addr::from(!(Self::host_mask(Family::V4, self.len) as u32))
    }
    /// Cisco's wildcard (inverse) mask.
    pub fn wildcard_v4(&self) -> Ipv4Addr {
        Ipv4Addr::from(Self::host_mask(Family::V4, self.len) as u32)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.len)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixError(pub String);

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;
    /// `a.b.c.d/n`, `x::/n`, or a bare address (a host prefix).
    fn from_str(s: &str) -> Result<Prefix, PrefixError> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr =
            addr.trim().parse().map_err(|_| PrefixError(format!("{s:?} is not an IPv4 or IPv6 address or prefix")))?;
        // Mapped addresses are not folded here: a prefix written in IPv6
        // notation is meant as IPv6.
        let (family, v) = match ip {
            IpAddr::V4(a) => (Family::V4, u32::from(a) as u128),
            IpAddr::V6(a) => (Family::V6, u128::from(a)),
        };
        let len = match len {
            None => family.bits(),
            Some(l) => match l.trim().parse::<u8>() {
                Ok(n) if n <= family.bits() => n,
                _ => return Err(PrefixError(format!("{s:?}: prefix length must be 0..={}", family.bits()))),
            },
        };
        if v & Prefix::host_mask(family, len) != 0 {
            let p = Prefix { family, addr: v & !Prefix::host_mask(family, len), len };
            return Err(PrefixError(format!("{s:?} has host bits set; did you mean {p}?")));
        }
        Ok(Prefix { family, addr: v, len })
    }
}

/// The fewest prefixes covering exactly `first..=last`.
pub fn range_to_prefixes(r: Range, out: &mut Vec<Prefix>) {
    let bits = r.family.bits();
    let mut cur = r.first;
    loop {
        // Largest aligned block starting at `cur` that does not pass `last`.
        let align = if cur == 0 { bits as u32 } else { cur.trailing_zeros().min(bits as u32) };
        let mut size_bits = align;
        while size_bits > 0 {
            let span_last = if size_bits == 128 { u128::MAX } else { cur + ((1u128 << size_bits) - 1) };
            if span_last <= r.last && span_last >= cur {
                break;
            }
            size_bits -= 1;
        }
        out.push(Prefix { family: r.family, addr: cur, len: bits - size_bits as u8 });
        let block_last = if size_bits == 128 { u128::MAX } else { cur + ((1u128 << size_bits) - 1) };
        if block_last >= r.last {
            return;
        }
        cur = block_last + 1;
    }
}

/// Merges overlapping and adjacent ranges; the result is sorted and disjoint.
pub fn merge_ranges(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.sort();
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    for r in ranges {
        if let Some(last) = out.last_mut() {
            if last.family == r.family
                && (r.first <= last.last || r.first == last.last.wrapping_add(1) && last.last != r.family.max())
            {
                last.last = last.last.max(r.last);
                continue;
            }
        }
        out.push(r);
    }
    out
}

/// The minimal set of prefixes covering exactly the union of `prefixes`:
/// nested prefixes disappear, adjacent siblings become their parent.
pub fn aggregate(prefixes: &[Prefix]) -> Vec<Prefix> {
    let merged = merge_ranges(prefixes.iter().map(Prefix::range).collect());
    let mut out = Vec::with_capacity(merged.len());
    for r in merged {
        range_to_prefixes(r, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(p("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(p("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(p("192.0.2.1").to_string(), "192.0.2.1/32");
        assert!("10.0.0.1/8".parse::<Prefix>().unwrap_err().0.contains("did you mean 10.0.0.0/8"));
        assert!("10.0.0.0/33".parse::<Prefix>().is_err());
        assert!("::/0".parse::<Prefix>().is_ok());
        assert!("0.0.0.0/0".parse::<Prefix>().is_ok());
    }

    #[test]
    fn aggregation_is_minimal() {
        let v = aggregate(&[p("10.0.0.0/25"), p("10.0.0.128/25"), p("10.0.1.0/24"), p("10.0.0.7/32")]);
        assert_eq!(v, vec![p("10.0.0.0/23")]);
        let v = aggregate(&[p("10.0.0.1/32"), p("10.0.0.2/31"), p("10.0.0.4/32")]);
        let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        assert_eq!(s, ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/32"]);
        assert_eq!(aggregate(&[p("0.0.0.0/1"), p("128.0.0.0/1")]), vec![p("0.0.0.0/0")]);
        assert_eq!(aggregate(&[p("::/1"), p("8000::/1")]), vec![p("::/0")]);
        // Families never merge.
        assert_eq!(aggregate(&[p("0.0.0.0/0"), p("::/96")]).len(), 2);
    }

    #[test]
    fn range_to_prefix_edges() {
        let mut out = Vec::new();
        range_to_prefixes(Range { family: Family::V4, first: 0, last: u32::MAX as u128 }, &mut out);
        assert_eq!(out, vec![p("0.0.0.0/0")]);
        out.clear();
        range_to_prefixes(Range { family: Family::V6, first: u128::MAX, last: u128::MAX }, &mut out);
        assert_eq!(out[0].to_string(), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
        out.clear();
        range_to_prefixes(Range { family: Family::V4, first: 1, last: 6 }, &mut out);
        assert_eq!(
            out.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            ["0.0.0.1/32", "0.0.0.2/31", "0.0.0.4/31", "0.0.0.6/32"]
        );
    }
}
