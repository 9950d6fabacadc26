//! What one row of the flow analysis ([`crate::report`]) stands for: one
//! address, or the IPv6 prefix its flows came from.
//!
//! An IPv6 subscriber holds a whole prefix (a /64 on its link, a /48 to
//! /64 delegated to its router) and its hosts choose addresses in it at
//! will: privacy addresses change every day, and a bot may take a new one
//! for every connection. Counted per address, one subscriber became as
//! many rows as it used addresses, so memory followed its flows, and a
//! bot that spread its flows over many addresses stayed under the spambot
//! threshold in each. So IPv6 rows are per prefix: the prefix of the
//! session that attribution found (the delegated prefix), else a /64 (the
//! analysis's `ipv6_prefix_len`). IPv4 rows stay per address: the
//! end-user space bounds them, and behind a CGNAT the port block names
//! the subscriber.

use crate::prefix::{ip_to_u128, u128_to_ip, Family};
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

/// An address (`len` its full length) or an IPv6 prefix, host bits zero.
/// IPv4-mapped IPv6 addresses are their IPv4 address, as in the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sender {
    pub ip: IpAddr,
    pub len: u8,
}

impl Sender {
    /// `ip` alone.
    pub fn host(ip: IpAddr) -> Sender {
        Sender::of(ip, 128)
    }

    /// `ip`'s row without a session: the address itself (IPv4), or its
    /// prefix of `v6_len` bits (IPv6).
    #[inline]
    pub fn of(ip: IpAddr, v6_len: u8) -> Sender {
        match ip_to_u128(ip) {
            (Family::V4, v) => Sender { ip: u128_to_ip(Family::V4, v), len: 32 },
            (Family::V6, v) => Sender::prefix(v, v6_len),
        }
    }

    /// The IPv6 prefix of `len` bits (at most 128) holding `v`.
    #[inline]
    fn prefix(v: u128, len: u8) -> Sender {
        let len = len.min(128);
        let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
        Sender { ip: u128_to_ip(Family::V6, v & mask), len }
    }

    /// One address, not a prefix.
    pub fn is_host(&self) -> bool {
        self.len == if self.ip.is_ipv4() { 32 } else { 128 }
    }
}

/// `192.0.2.7`, `2001:db8::1` (one address) or `2001:db8:0:100::/56`.
impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.ip)
        } else {
            write!(f, "{}/{}", self.ip, self.len)
        }
    }
}

impl Serialize for Sender {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_fold_to_their_prefix_and_ipv4_stays_one_address() {
        let p = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(Sender::of(p("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), 64).to_string(), "2001:db8:1:2::/64");
        assert_eq!(Sender::of(p("2001:db8:1:2ff::9"), 56).to_string(), "2001:db8:1:200::/56");
        assert_eq!(Sender::of(p("2001:db8::9"), 128).to_string(), "2001:db8::9");
        assert_eq!(Sender::of(p("2001:db8::9"), 0).to_string(), "::/0");
        assert_eq!(Sender::of(p("198.51.100.7"), 64).to_string(), "198.51.100.7");
        // Mapped: the IPv4 host, as the policy's lookup takes it.
        assert_eq!(Sender::of(p("::ffff:198.51.100.7"), 64), Sender::host(p("198.51.100.7")));
        assert_eq!(
            Sender::of(p("2001:db8:1:2::1"), 64),
            Sender::of(p("2001:db8:1:2:ffff:ffff:ffff:ffff"), 64),
            "one /64, one row"
        );
        assert_eq!(serde_json::to_value(Sender::of(p("2001:db8::1"), 64)).unwrap(), "2001:db8::/64");
        // IPv4 sorts before IPv6, and a prefix by its first address.
        assert!(Sender::host(p("203.0.113.1")) < Sender::of(p("2001:db8::1"), 64));
    }
}
