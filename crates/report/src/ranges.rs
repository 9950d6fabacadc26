//! IP range files: one range per line, `low,high,value` (comma or tab),
//! `#` comments. Debian's tor-geoipdb (`/usr/share/tor/geoip`) writes IPv4
//! bounds as 32-bit integers (`16777216,16777471,AU`) and `geoip6` writes
//! IPv6 literals; other exports use dotted literals and quotes. The value
//! is a country code (two letters) or an AS number (`AS64512` or `64512`).
//!
//! Pure: text in, a sorted table out; errors name the line.

use crate::error::LineError;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Country([u8; 2]),
    Asn(u32),
}

#[derive(Debug, Default)]
pub struct Ranges {
    /// (low, high, value), sorted by low, not overlapping.
    rows: Vec<(u128, u128, Value)>,
}

fn bound(s: &str, v4_int: &mut Option<bool>) -> Result<u128, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let n: u32 = s.parse().map_err(|_| format!("{s:?} is not a 32-bit IPv4 integer"))?;
        *v4_int = Some(true);
        return Ok(crate::ip::key_v4(n));
    }
    let ip: IpAddr = s.parse().map_err(|_| format!("{s:?} is neither an IP address nor a 32-bit integer"))?;
    Ok(crate::ip::key(ip))
}

pub fn parse_value(s: &str) -> Option<Value> {
    let b = s.as_bytes();
    if b.len() == 2 && b.iter().all(|c| c.is_ascii_alphabetic()) {
        return Some(Value::Country([b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()]));
    }
    let digits = s.strip_prefix("AS").or_else(|| s.strip_prefix("as")).unwrap_or(s);
    digits.parse().ok().map(Value::Asn)
}

impl Ranges {
    pub fn parse(text: &str) -> Result<Ranges, LineError> {
        let mut rows = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i as u64 + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let sep = if line.contains('\t') { '\t' } else { ',' };
            let f: Vec<&str> = line.split(sep).map(|x| x.trim().trim_matches('"')).collect();
            if f.len() < 3 {
                return Err(LineError::new(
                    line_no,
                    format!("expected low{sep}high{sep}value, found {} field(s)", f.len()),
                ));
            }
            let mut v4 = None;
            let lo = bound(f[0], &mut v4).map_err(|m| LineError::new(line_no, m))?;
            let hi = bound(f[1], &mut v4).map_err(|m| LineError::new(line_no, m))?;
            if hi < lo {
                return Err(LineError::new(line_no, "range ends before it starts"));
            }
            // tor-geoipdb marks unassigned space `??`: no answer, not an error.
            if f[2] == "??" {
                continue;
            }
            let value = parse_value(f[2]).ok_or_else(|| {
                LineError::new(line_no, format!("{:?} is neither a two-letter country code nor an AS number", f[2]))
            })?;
            rows.push((lo, hi, value, line_no));
        }
        rows.sort_by_key(|r| r.0);
        for w in rows.windows(2) {
            if w[1].0 <= w[0].1 {
                let (a, b) = (w[0].3.min(w[1].3), w[0].3.max(w[1].3));
                return Err(LineError::new(
                    b,
                    format!("this range overlaps the one on line {a} at {}", crate::ip::from_key(w[1].0)),
                ));
            }
        }
        Ok(Ranges { rows: rows.into_iter().map(|r| (r.0, r.1, r.2)).collect() })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn lookup(&self, ip: IpAddr) -> Option<&Value> {
        let k = crate::ip::key(ip);
        let i = self.rows.partition_point(|r| r.0 <= k);
        let r = self.rows.get(i.checked_sub(1)?)?;
        (k <= r.1).then_some(&r.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tor_geoip_forms() {
        let t = "# comment\n15726992,15726999,??\n16777216,16777471,AU\n\"1.0.1.0\",\"1.0.3.255\",\"cn\"\n2001:200::\t2001:200:ffff:ffff:ffff:ffff:ffff:ffff\tJP\n10.0.0.0,10.0.0.255,AS64512\n";
        let r = Ranges::parse(t).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r.lookup("1.0.0.7".parse().unwrap()), Some(&Value::Country(*b"AU")));
        assert_eq!(r.lookup("1.0.2.9".parse().unwrap()), Some(&Value::Country(*b"CN")));
        assert_eq!(r.lookup("2001:200::1".parse().unwrap()), Some(&Value::Country(*b"JP")));
        assert_eq!(r.lookup("10.0.0.255".parse().unwrap()), Some(&Value::Asn(64512)));
        assert_eq!(r.lookup("1.0.4.0".parse().unwrap()), None);
        assert_eq!(r.lookup("0.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(Ranges::parse("1,2,AU\n1.2.3,5,AU\n").unwrap_err().line, 2);
        assert_eq!(Ranges::parse("5,1,AU\n").unwrap_err().msg, "range ends before it starts");
        assert!(Ranges::parse("1,2,Australia\n").unwrap_err().msg.contains("country code"));
        assert!(Ranges::parse("1,2\n").unwrap_err().msg.contains("2 field"));
        let e = Ranges::parse("1,10,AU\n5,20,NZ\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.msg.contains("overlaps the one on line 1"), "{e:?}");
    }
}
