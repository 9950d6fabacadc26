//! Per-source bookkeeping: open connections (for the per-source cap) and
//! messages seen (for probe recognition). Bounded: past `MAX_SOURCES`
//! entries, sources with no open connection are forgotten, so a scan from
//! millions of addresses cannot grow memory without end (a forgotten source
//! only looks new again to the probe rule).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

const MAX_SOURCES: usize = 200_000;

#[derive(Default)]
struct Entry {
    connections: usize,
    messages: u64,
}

pub struct Sources {
    map: Mutex<HashMap<IpAddr, Entry>>,
    max_per_source: usize,
}

/// Holds one connection slot of a source; released on drop.
pub struct Slot {
    sources: Arc<Sources>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.sources.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(&self.ip) {
            e.connections = e.connections.saturating_sub(1);
        }
    }
}

impl Sources {
    pub fn new(max_per_source: usize) -> Arc<Sources> {
        Arc::new(Sources { map: Mutex::new(HashMap::new()), max_per_source })
    }

    /// A connection slot for `ip`, or `None` at the per-source cap.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SOURCES && !map.contains_key(&ip) {
            map.retain(|_, e| e.connections > 0);
        }
        let e = map.entry(ip).or_default();
        if e.connections >= self.max_per_source {
            return None;
        }
        e.connections += 1;
        Some(Slot { sources: self.clone(), ip })
    }

    /// Counts a message from `ip`; returns how many came before it.
    pub fn message(&self, ip: IpAddr) -> u64 {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let e = map.entry(ip).or_default();
        e.messages += 1;
        e.messages - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_source_cap_and_release() {
        let s = Sources::new(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = s.enter(ip).unwrap();
        let _b = s.enter(ip).unwrap();
        assert!(s.enter(ip).is_none());
        assert!(s.enter("192.0.2.2".parse().unwrap()).is_some());
        drop(a);
        assert!(s.enter(ip).is_some());
        assert_eq!(s.message(ip), 0);
        assert_eq!(s.message(ip), 1);
    }
}
