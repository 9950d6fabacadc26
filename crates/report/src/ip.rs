//! Addresses as one integer space: IPv4 as its IPv4-mapped IPv6 value, so
//! one sorted table or one prefix map holds both families.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

pub fn from_key(k: u128) -> IpAddr {
    let v6 = Ipv6Addr::from(k);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// The key of an IPv4 address given as a 32-bit integer (tor-geoipdb's form).
pub fn key_v4(n: u32) -> u128 {
    key(IpAddr::V4(Ipv4Addr::from(n)))
}

/// Prefix length in the 128-bit space.
pub fn len128(ip: IpAddr, len: u8) -> u8 {
    if ip.is_ipv4() {
        len + 96
    } else {
        len
    }
}

pub fn mask(k: u128, len128: u8) -> u128 {
    if len128 == 0 {
        0
    } else {
        k & (u128::MAX << (128 - u32::from(len128)))
    }
}
