//! CAIDA Routeviews prefix-to-AS files: `prefix<TAB>length<TAB>origin` per
//! line. The origin is one AS, `a_b` for a multi-origin prefix (several
//! ASes announce it: all are kept, and each is credited) or `a,b` for an AS
//! set. Lookup is longest-prefix match: one hash probe per prefix length in
//! use, most specific first.
//!
//! Pure: text in, a table out; errors name the line.

use crate::error::LineError;
use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug, Default)]
pub struct Pfx2as {
    by_len: HashMap<(u8, u128), Vec<u32>>,
    /// Prefix lengths present (128-bit space), longest first.
    lens: Vec<u8>,
}

impl Pfx2as {
    pub fn parse(text: &str) -> Result<Pfx2as, LineError> {
        let mut t = Pfx2as::default();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i as u64 + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 3 {
                return Err(LineError::new(
                    line_no,
                    format!("expected prefix, length and AS separated by tabs, found {} field(s)", f.len()),
                ));
            }
            let ip: IpAddr =
                f[0].parse().map_err(|_| LineError::new(line_no, format!("{:?} is not an IP address", f[0])))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len: u8 = f[1]
                .parse()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| LineError::new(line_no, format!("{:?} is not a prefix length (0-{max})", f[1])))?;
            let asns: Vec<u32> =
                f[2].split(['_', ',']).map(|a| a.parse::<u32>()).collect::<Result<_, _>>().map_err(|_| {
                    LineError::new(
                        line_no,
                        format!("{:?} is not an AS number, a_b (multi-origin) or a,b (AS set)", f[2]),
                    )
                })?;
            let l = crate::ip::len128(ip, len);
            let net = crate::ip::mask(crate::ip::key(ip), l);
            let e = t.by_len.entry((l, net)).or_default();
            for a in asns {
                if !e.contains(&a) {
                    e.push(a);
                }
            }
            if !t.lens.contains(&l) {
                t.lens.push(l);
            }
        }
        t.lens.sort_unstable_by(|a, b| b.cmp(a));
        Ok(t)
    }

    pub fn len(&self) -> usize {
        self.by_len.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_len.is_empty()
    }

    /// Origin ASes of the most specific prefix holding `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<&[u32]> {
        let k = crate::ip::key(ip);
        // IPv4 entries all lie in ::ffff:0:0/96, so an IPv6 address never
        // meets one, and real tables hold no IPv6 prefix covering that range.
        self.lens.iter().find_map(|&l| self.by_len.get(&(l, crate::ip::mask(k, l))).map(|v| v.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_match_and_multi_origin() {
        let t = Pfx2as::parse("20.0.0.0\t8\t100\n20.1.0.0\t16\t200_300\n20.1.2.0\t24\t400,500\n2001:db8::\t32\t600\n")
            .unwrap();
        assert_eq!(t.lookup("20.9.9.9".parse().unwrap()), Some(&[100][..]));
        assert_eq!(t.lookup("20.1.9.9".parse().unwrap()), Some(&[200, 300][..]));
        assert_eq!(t.lookup("20.1.2.3".parse().unwrap()), Some(&[400, 500][..]));
        assert_eq!(t.lookup("2001:db8::1".parse().unwrap()), Some(&[600][..]));
        assert_eq!(t.lookup("21.0.0.1".parse().unwrap()), None);
        assert_eq!(t.lookup("::1".parse().unwrap()), None);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(Pfx2as::parse("1.0.0.0\t24\t1\n1.0.0.0\t33\t1\n").unwrap_err().line, 2);
        assert!(Pfx2as::parse("1.0.0.0\t24\tAS1\n").unwrap_err().msg.contains("AS number"));
        assert!(Pfx2as::parse("1.0.0\t24\t1\n").unwrap_err().msg.contains("IP address"));
        assert!(Pfx2as::parse("1.0.0.0 24\n").unwrap_err().msg.contains("2 field"));
    }
}
