//! New connections per window, per address and per IPv6 /64 (a host that
//! rotates addresses inside its /64 is one client). Concurrent connections
//! are the listener's cap (port25_listen::accept::Clients); this counts
//! arrivals, which a bot that connects, is refused and reconnects at once
//! would otherwise repeat as fast as the network allows.
//!
//! Fixed windows per key; the table holds at most `max_keys` keys. When it
//! is full and no window has ended, a new key is refused (fail closed: the
//! client gets the rate action, a tempfail by default, and retries).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Rate {
    window: Duration,
    per_address: u32,
    per_64: u32,
    max_keys: usize,
    table: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// Why a connection is over the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    Address,
    Slash64,
    TableFull,
}

impl Over {
    pub fn as_str(self) -> &'static str {
        match self {
            Over::Address => "per address",
            Over::Slash64 => "per IPv6 /64",
            Over::TableFull => "rate table full",
        }
    }
}

fn slash64(v6: Ipv6Addr) -> IpAddr {
    let s = v6.segments();
    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
}

impl Rate {
    pub fn new(window: Duration, per_address: u32, per_64: u32, max_keys: usize) -> Rate {
        Rate { window, per_address, per_64, max_keys, table: Mutex::new(HashMap::new()) }
    }

    /// Counts a new connection from `ip`; `Err` when it is over a limit.
    pub fn arrive(&self, ip: IpAddr, now: Instant) -> Result<(), Over> {
        let ip = ip.to_canonical();
        let mut keys = Vec::with_capacity(2);
        if self.per_address > 0 {
            keys.push((ip, self.per_address, Over::Address));
        }
        if let IpAddr::V6(v6) = ip {
            if self.per_64 > 0 {
                keys.push((slash64(v6), self.per_64, Over::Slash64));
            }
        }
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let window = self.window;
        let new_keys = keys.iter().filter(|(k, _, _)| !table.contains_key(k)).count();
        if table.len() + new_keys > self.max_keys {
            table.retain(|_, (start, _)| now.duration_since(*start) < window);
            if table.len() + new_keys > self.max_keys {
                return Err(Over::TableFull);
            }
        }
        let mut over = None;
        for (key, limit, why) in keys {
            let entry = table.entry(key).or_insert((now, 0));
            if now.duration_since(entry.0) >= window {
                *entry = (now, 0);
            }
            entry.1 = entry.1.saturating_add(1);
            if entry.1 > limit && over.is_none() {
                over = Some(why);
            }
        }
        over.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_and_per_slash_64() {
        let r = Rate::new(Duration::from_secs(60), 3, 5, 1000);
        let t = Instant::now();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for _ in 0..3 {
            assert_eq!(r.arrive(ip("192.0.2.1"), t), Ok(()));
        }
        assert_eq!(r.arrive(ip("::ffff:192.0.2.1"), t), Err(Over::Address));
        assert_eq!(r.arrive(ip("192.0.2.2"), t), Ok(()));
        // The window ends.
        assert_eq!(r.arrive(ip("192.0.2.1"), t + Duration::from_secs(61)), Ok(()));
        // Rotating inside a /64.
        for i in 0..5u16 {
            assert_eq!(r.arrive(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i + 1)), t), Ok(()));
        }
        assert_eq!(r.arrive(ip("2001:db8:0:1::99"), t), Err(Over::Slash64));
        assert_eq!(r.arrive(ip("2001:db8:0:2::99"), t), Ok(()), "the next /64");
    }

    #[test]
    fn the_table_is_bounded_and_fails_closed() {
        let r = Rate::new(Duration::from_secs(60), 100, 100, 10);
        let t = Instant::now();
        for i in 0..10u32 {
            assert_eq!(r.arrive(IpAddr::from(i.to_be_bytes()), t), Ok(()));
        }
        assert_eq!(r.arrive("192.0.2.1".parse().unwrap(), t), Err(Over::TableFull));
        assert_eq!(
            r.arrive("192.0.2.1".parse().unwrap(), t + Duration::from_secs(60)),
            Ok(()),
            "expired windows make room"
        );
        assert!(r.table.lock().unwrap().len() <= 10);
    }
}
