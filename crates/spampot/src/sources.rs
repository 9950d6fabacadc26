//! Per-source bookkeeping: messages seen (for probe recognition). Bounded:
//! past `MAX_SOURCES` entries the table is emptied, so a scan from millions
//! of addresses cannot grow memory without end (a forgotten source only
//! looks new again to the probe rule). Open connections per source are
//! counted by the engine's [`port25_listen::accept::Clients`] (IPv6 per
//! /64), which every SMTP listener shares.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

const MAX_SOURCES: usize = 200_000;

pub struct Sources {
    messages: Mutex<HashMap<IpAddr, u64>>,
}

impl Sources {
    pub fn new() -> Arc<Sources> {
        Arc::new(Sources { messages: Mutex::new(HashMap::new()) })
    }

    /// Counts a message from `ip`; returns how many came before it.
    pub fn message(&self, ip: IpAddr) -> u64 {
        let mut map = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SOURCES && !map.contains_key(&ip) {
            map.clear();
        }
        let n = map.entry(ip).or_default();
        *n += 1;
        *n - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_counted_per_source() {
        let s = Sources::new();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(s.message(ip), 0);
        assert_eq!(s.message(ip), 1);
        assert_eq!(s.message("192.0.2.2".parse().unwrap()), 0);
    }
}
