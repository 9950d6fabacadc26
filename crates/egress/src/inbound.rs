//! Evidence of open proxies inside the network: inbound TCP from outside
//! the policy's space to a subscriber in blocked space, on the ports open
//! proxies are abused on ([`PROXY_PORTS`]), joined by [`crate::report`]
//! to the subscriber's port-25 row.
//!
//! The sources of these connections are anyone on the internet: scanners
//! sweep every address of an access network on these ports, and an IPv6
//! network has more addresses than any memory. So the evidence is kept
//! per row ([`crate::sender::Sender`]: an IPv6 subscriber's prefix, not
//! each address a scanner tried), in a fixed size per subscriber (sources
//! counted exactly up to [`EXACT_SOURCES`], estimated beyond), and for at
//! most a fixed number of subscribers: connections to others past that
//! cap are counted, not kept.

use crate::flow::Flow;
use crate::report::Budget;
use crate::sender::Sender;
use crate::window::{key, mix, sketch_add, sketch_estimate};
use std::collections::HashMap;

/// The ports open proxies are abused on (the ports the SpamPots sensors
/// are attacked on): SOCKS, Squid, HTTP alternates, the AnalogX proxy, HTTP.
/// Ascending.
pub const PROXY_PORTS: &[u16] = &[80, 1080, 3128, 6588, 8000, 8080];
/// Distinct inbound sources counted exactly per subscriber: beyond the
/// plan's threshold of "many" (5 by default); past it, a sketch.
pub const EXACT_SOURCES: usize = 16;
/// Registers of the sketch of sources past [`EXACT_SOURCES`]: a standard
/// error of about 13 %, enough to tell dozens from thousands.
const SOURCE_REGISTERS: usize = 64;

/// Inbound TCP to a subscriber on proxy ports from outside addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inbound {
    pub flows: u64,
    /// Distinct source addresses: exact up to [`EXACT_SOURCES`], else an
    /// estimate (`sources_estimated`).
    pub sources: usize,
    pub sources_estimated: bool,
    /// Flows per destination port, ascending by port.
    pub ports: Vec<(u16, u64)>,
    pub first_ms: u64,
    pub last_ms: u64,
    /// This row's port-25 flows that started at or after the first inbound
    /// connection, and when the first of them started.
    pub smtp_after: u64,
    pub smtp_first_after_ms: Option<u64>,
}

/// Distinct sources: the addresses while they are few, then a sketch of
/// their hashes (the addresses are dropped: memory stays fixed).
#[derive(Debug, Default)]
struct Sources {
    exact: Vec<u128>,
    sketch: Option<Box<[u8; SOURCE_REGISTERS]>>,
}

impl Sources {
    fn add(&mut self, k: u128) {
        if let Some(s) = &mut self.sketch {
            return sketch_add(&mut s[..], mix(k));
        }
        if self.exact.contains(&k) {
            return;
        }
        if self.exact.len() < EXACT_SOURCES {
            // Most subscribers are probed from one or two addresses: room
            // for one, then four-fold (a plain push made room for four).
            if self.exact.len() == self.exact.capacity() {
                self.exact.reserve_exact((self.exact.len() * 4).clamp(1, EXACT_SOURCES) - self.exact.len());
            }
            self.exact.push(k);
            return;
        }
        let mut s = Box::new([0u8; SOURCE_REGISTERS]);
        for &x in self.exact.iter().chain([&k]) {
            sketch_add(&mut s[..], mix(x));
        }
        self.exact = Vec::new();
        self.sketch = Some(s);
    }

    /// Distinct sources, and whether that is an estimate.
    fn count(&self) -> (usize, bool) {
        match &self.sketch {
            None => (self.exact.len(), false),
            Some(s) => (sketch_estimate(&s[..]).max(EXACT_SOURCES + 1), true),
        }
    }
}

/// One subscriber's inbound evidence: fixed size but for [`Sources`].
#[derive(Debug)]
struct Seen {
    flows: u64,
    sources: Sources,
    /// Flows per port of [`PROXY_PORTS`], at its place there.
    ports: [u64; PROXY_PORTS.len()],
    first_ms: u64,
    last_ms: u64,
}

/// The evidence per subscriber, for as many subscribers as the budget
/// (shared by the shards of one analysis) allows. Hashed with the
/// standard library's keyed hasher: the keys are addresses an outside
/// scanner chooses, so an unkeyed hash would let it pick keys that collide.
#[derive(Debug)]
pub(crate) struct InboundMap {
    seen: HashMap<Sender, Seen>,
    budget: Budget,
    /// Inbound flows to subscribers past the cap: counted, not kept.
    pub flows_past_cap: u64,
}

impl InboundMap {
    pub fn new(budget: Budget) -> InboundMap {
        InboundMap { seen: HashMap::new(), budget, flows_past_cap: 0 }
    }

    /// The budget, to share with a shard's map.
    pub fn budget(&self) -> Budget {
        self.budget.clone()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// An inbound connection on a proxy port to `to` (standing for `n`).
    pub fn add(&mut self, to: Sender, f: &Flow, n: u64) {
        let e = match self.seen.entry(to) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) if self.budget.take() => e.insert(Seen {
                flows: 0,
                sources: Sources::default(),
                ports: [0; PROXY_PORTS.len()],
                first_ms: u64::MAX,
                last_ms: 0,
            }),
            std::collections::hash_map::Entry::Vacant(_) => {
                self.flows_past_cap += n;
                return;
            }
        };
        e.flows += n;
        e.sources.add(key(f.src));
        if let Some(i) = PROXY_PORTS.iter().position(|&p| p == f.dst_port) {
            e.ports[i] += n;
        }
        e.first_ms = e.first_ms.min(f.start_ms);
        e.last_ms = e.last_ms.max(f.end_ms.max(f.start_ms));
    }

    /// The evidence for `to`, without the port-25 flows after it (the
    /// row's to fill in).
    pub fn get(&self, to: &Sender) -> Option<Inbound> {
        let e = self.seen.get(to)?;
        let (sources, sources_estimated) = e.sources.count();
        Some(Inbound {
            flows: e.flows,
            sources,
            sources_estimated,
            ports: PROXY_PORTS.iter().zip(e.ports).filter(|(_, n)| *n > 0).map(|(p, n)| (*p, n)).collect(),
            first_ms: e.first_ms,
            last_ms: e.last_ms,
            smtp_after: 0,
            smtp_first_after_ms: None,
        })
    }

    /// Takes in another shard's evidence (of other subscribers: asserted).
    pub fn absorb(&mut self, other: InboundMap) {
        self.flows_past_cap += other.flows_past_cap;
        for (to, seen) in other.seen {
            let twice = self.seen.insert(to, seen).is_some();
            assert!(!twice, "inbound evidence in two shards: flows of one subscriber went to two shards");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn sources_are_exact_while_few_then_estimated_in_fixed_memory() {
        let to = Sender::of("2001:db8:1::1".parse().unwrap(), 64);
        let mut m = InboundMap::new(Budget::new(10));
        for i in 0..EXACT_SOURCES as u32 {
            // Each source twice: counted once.
            for _ in 0..2 {
                m.add(
                    to,
                    &Flow::syn(IpAddr::from((0xcb00_7100 + i).to_be_bytes()), to.ip, 3128, 1000 + u64::from(i)),
                    1,
                );
            }
        }
        let i = m.get(&to).unwrap();
        assert_eq!((i.flows, i.sources, i.sources_estimated), (2 * EXACT_SOURCES as u64, EXACT_SOURCES, false));
        assert_eq!((i.ports.as_slice(), i.first_ms, i.last_ms), (&[(3128, 32)][..], 1000, 1015));
        for i in 0..20_000u32 {
            m.add(to, &Flow::syn(IpAddr::from((0x0a00_0000 + i).to_be_bytes()), to.ip, 1080, 5000), 1);
        }
        let i = m.get(&to).unwrap();
        assert!(i.sources_estimated, "{i:?}");
        let err = (i.sources as f64 - 20_016.0).abs() / 20_016.0;
        assert!(err < 0.4, "{}", i.sources);
        assert_eq!(i.ports, [(1080, 20_000), (3128, 32)]);
        let e = m.seen.get(&to).unwrap();
        assert!(e.sources.exact.capacity() == 0 && e.sources.sketch.is_some());
    }

    #[test]
    fn subscribers_past_the_cap_are_counted_not_kept() {
        let mut m = InboundMap::new(Budget::new(3));
        let scanner: IpAddr = "203.0.113.9".parse().unwrap();
        for i in 0..10u16 {
            let to: IpAddr = format!("2001:db8:{i:x}::1").parse().unwrap();
            m.add(Sender::of(to, 64), &Flow::syn(scanner, to, 1080, 1), 2);
        }
        assert_eq!((m.seen.len(), m.flows_past_cap), (3, 14));
        // A subscriber kept is still counted after the cap is reached.
        let first = Sender::of("2001:db8::5".parse().unwrap(), 64);
        m.add(first, &Flow::syn(scanner, first.ip, 8080, 9), 1);
        assert_eq!((m.get(&first).unwrap().flows, m.flows_past_cap), (3, 14));
    }
}
