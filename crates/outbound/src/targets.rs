//! Which MX addresses may be connected to. An MX record is written by
//! whoever owns the recipient's domain, so without this check anyone who
//! can get a user to mail them (or forge a sender for a DSN) points port25
//! at 127.0.0.1, at a host on the provider's private network, at a
//! link-local metadata service, or back at port25's own listeners (a mail
//! loop). Addresses in special-purpose ranges (RFC 6890 and its IPv6
//! counterparts) are refused unless the operator lists their network in
//! `[outbound] allowed_private_networks`; our own listener addresses are
//! refused always. The smarthost is not checked: the operator wrote it.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why `ip` is not a public unicast address, or None when it is one.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() => "unspecified",
        (0, _, _) => "\"this network\" (0.0.0.0/8)",
        (127, _, _) => "loopback",
        (10, _, _) => "private (RFC 1918)",
        (172, 16..=31, _) => "private (RFC 1918)",
        (192, 168, _) => "private (RFC 1918)",
        (100, 64..=127, _) => "shared address space (RFC 6598, carrier-grade NAT)",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation (RFC 5737)",
        (198, 18..=19, _) => "benchmarking (RFC 2544)",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved (240.0.0.0/4) or broadcast",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(match s[0] {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        0xff00..=0xffff => "multicast",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local (deprecated)",
        0xfc00..=0xfdff => "unique local (fc00::/7)",
        0x2001 if s[1] == 0x0db8 => "documentation (2001:db8::/32)",
        // NAT64 (RFC 6052) and 6to4 (RFC 3056) carry an IPv4 address that a
        // gateway would connect to: judge that one.
        0x0064 if s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] => {
            return special_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
        }
        0x2002 => return special_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8)),
        // IPv4-compatible (deprecated) and other addresses in ::/8.
        0 => "reserved (::/8)",
        _ => return None,
    })
}

/// The addresses of this machine's interfaces (getifaddrs(3)); empty if
/// they cannot be read.
pub fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that we only read
    // and then give back to freeifaddrs; every pointer is checked for null,
    // and sockaddr is read as sockaddr_in/in6 only when its family says so.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut cur = list;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out
}

/// The MX-target policy: special ranges refused unless allowed, our own
/// listeners refused always.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    /// Networks whose special-range addresses may be connected to.
    pub allowed: Vec<IpNet>,
    /// Where port25 itself listens (from the configuration; an address
    /// bound to 0.0.0.0 or :: stands for every interface address).
    pub own: Vec<SocketAddr>,
}

/// Why a target was refused: `looping` for our own listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub looping: bool,
}

impl TargetPolicy {
    /// Whether mail may go to `target`; `interfaces` are this machine's
    /// addresses ([`interface_addresses`]).
    pub fn check(&self, target: SocketAddr, interfaces: &[IpAddr]) -> Result<(), Refusal> {
        let ip = target.ip().to_canonical();
        let ours = self.own.iter().any(|l| {
            let lip = l.ip().to_canonical();
            l.port() == target.port()
                && (lip == ip
                    || lip.is_unspecified()
                        && (special_range(ip) == Some("loopback")
                            || ip.is_unspecified()
                            || interfaces.iter().any(|i| i.to_canonical() == ip)))
        });
        if ours {
            return Err(Refusal { reason: format!("{target} is port25's own listener (mail loop)"), looping: true });
        }
        match special_range(ip) {
            Some(kind) if !self.allowed.iter().any(|n| n.contains(&ip)) => Err(Refusal {
                reason: format!("{ip} is a {kind} address; list its network in [outbound] allowed_private_networks to deliver there"),
                looping: false,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn special_ranges_are_named_and_public_addresses_pass() {
        for (a, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.9.9.9", "loopback"),
            ("10.1.2.3", "RFC 1918"),
            ("172.16.0.1", "RFC 1918"),
            ("172.31.255.255", "RFC 1918"),
            ("192.168.1.1", "RFC 1918"),
            ("100.64.0.1", "RFC 6598"),
            ("100.127.255.254", "RFC 6598"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this network"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("192.0.2.1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "RFC 1918"),
            ("fe80::1", "link-local"),
            ("fd00::25", "unique local"),
            ("fc00::1", "unique local"),
            ("ff02::1", "multicast"),
            ("2001:db8::25", "documentation"),
            ("64:ff9b::a00:1", "RFC 1918"),
            ("2002:7f00:1::1", "loopback"),
            ("::127.0.0.1", "reserved"),
        ] {
            let got = special_range(ip(a));
            assert!(got.is_some_and(|k| k.contains(kind)), "{a}: {got:?}");
        }
        for a in [
            "192.0.43.10",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2a00:1450:4001::1b",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(special_range(ip(a)), None, "{a}");
        }
    }

    #[test]
    fn allowed_networks_and_own_listeners() {
        let p = TargetPolicy {
            allowed: vec!["127.0.0.0/8".parse().unwrap()],
            own: vec!["127.0.0.1:2525".parse().unwrap(), "[::]:25".parse().unwrap()],
        };
        let public = ip("192.0.43.10");
        assert!(p.check("127.0.5.1:26".parse().unwrap(), &[]).is_ok(), "allowed network");
        assert!(p.check("127.0.5.1:25".parse().unwrap(), &[]).unwrap_err().looping, "[::]:25 listens on loopback too");
        assert!(p.check("127.0.0.1:2526".parse().unwrap(), &[]).is_ok(), "another port");
        let r = p.check("127.0.0.1:2525".parse().unwrap(), &[]).unwrap_err();
        assert!(r.looping, "{r:?}");
        let r = p.check("10.0.0.1:25".parse().unwrap(), &[]).unwrap_err();
        assert!(!r.looping && r.reason.contains("allowed_private_networks"), "{r:?}");
        assert!(p.check(SocketAddr::new(public, 25), &[]).is_ok());
        assert!(
            p.check(SocketAddr::new(public, 25), &[public]).unwrap_err().looping,
            "[::]:25 listens on every interface address"
        );
        assert!(p.check(SocketAddr::new(public, 26), &[public]).is_ok());
        assert!(p.check("[::ffff:127.0.0.1]:2525".parse().unwrap(), &[]).unwrap_err().looping, "IPv4-mapped is folded");
        assert!(!interface_addresses().is_empty(), "at least the loopback interface");
    }
}
