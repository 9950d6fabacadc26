//! The resolver sender authentication asks, and RFC 7208's void-lookup
//! limit, which mail-auth does not enforce.
//!
//! The name servers are configurable (`[mx.auth] nameservers`; default:
//! those of /etc/resolv.conf) so tests point it at a DNS server of their
//! own. hickory keeps its own cache (bounded, by TTL).
//!
//! SPF evaluation runs through [`Tally`], a set of per-evaluation caches
//! that note which names mail-auth asked for and which came back with
//! records (keys are compared by hash: mail-auth's cache trait hands over
//! only a hashable key). A name asked for and never answered was either a
//! void lookup (NXDOMAIN or an empty answer, RFC 7208 4.6.4) or a DNS
//! error; mail-auth ends the evaluation with `temperror` at the first DNS
//! error of a mechanism, so every unanswered name but that one was void.
//! More than two voids make the result `permerror`. RFC 7208 stops at the
//! third void; here evaluation may go on until mail-auth's own limit of
//! 10 DNS mechanisms, which gives the same answer: whatever it reached
//! after the third void is replaced by `permerror`. One approximation:
//! an `exists:` mechanism is asked without a cache answer either way, so
//! it counts as unanswered even when it matched.

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::TokioResolver;
use mail_auth::{RecordSet, ResolverCache, Txt, MX};
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

/// At most this many names are remembered per evaluation (mail-auth's
/// 10-mechanism limit keeps a real evaluation far below it).
const MAX_NAMES: usize = 256;

/// The resolver: `servers`, or the system's when empty.
pub fn resolver(servers: &[SocketAddr], timeout: Duration) -> Result<TokioResolver, String> {
    let config = if servers.is_empty() {
        let (config, _) = hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| format!("cannot read /etc/resolv.conf: {e}"))?;
        config
    } else {
        let mut name_servers = Vec::new();
        for s in servers {
            let mut udp = ConnectionConfig::udp();
            udp.port = s.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = s.port();
            name_servers.push(NameServerConfig::new(s.ip(), true, vec![udp, tcp]));
        }
        ResolverConfig::from_parts(None, vec![], name_servers)
    };
    let mut opts = ResolverOpts::default();
    opts.timeout = timeout;
    opts.attempts = 2;
    // Names are always absolute here: never append a search domain.
    opts.ndots = 0;
    // Only DNS speaks for a sender: /etc/hosts would make iprev pass for
    // any address the machine lists (127.0.0.1 is "localhost" there).
    opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
    // Every message asks half a dozen questions at the end of DATA; on a
    // TCP connection to a name server (answers too big for UDP) hickory
    // answers "busy" past 32 in flight by default, which would turn a busy
    // MX's checks into temperrors (and so into acceptances).
    opts.max_active_requests = 1024;
    let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
    *builder.options_mut() = opts;
    builder.build().map_err(|e| format!("cannot start the DNS resolver: {e}"))
}

/// A definite "there are none": NXDOMAIN, or NOERROR without records of
/// that type (NODATA). SERVFAIL, REFUSED and timeouts are errors.
pub fn is_void(e: &NetError) -> bool {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(n)) => {
            matches!(n.response_code, ResponseCode::NXDomain | ResponseCode::NoError)
        }
        _ => false,
    }
}

fn key_hash<Q: Hash + ?Sized>(q: &Q) -> u64 {
    use std::hash::BuildHasher;
    // A fixed hasher: the same key must give the same hash in get and insert.
    std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(q)
}

/// What one SPF evaluation asked and got: shared by its five caches.
#[derive(Default)]
pub struct Tally {
    inner: Mutex<TallyInner>,
}

#[derive(Default)]
struct TallyInner {
    asked: HashSet<u64>,
    answered: HashSet<u64>,
    txt: HashMap<u64, Txt>,
    mx: HashMap<u64, RecordSet<MX>>,
    v4: HashMap<u64, RecordSet<Ipv4Addr>>,
    v6: HashMap<u64, RecordSet<Ipv6Addr>>,
    ptr: HashMap<u64, RecordSet<Box<str>>>,
}

impl Tally {
    /// Names asked for that never came back with records.
    pub fn unanswered(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.asked.difference(&inner.answered).count()
    }

    pub fn txt(&self) -> Cache<'_, Txt> {
        Cache { tally: self, pick: |i| &mut i.txt }
    }
    pub fn mx(&self) -> Cache<'_, RecordSet<MX>> {
        Cache { tally: self, pick: |i| &mut i.mx }
    }
    pub fn v4(&self) -> Cache<'_, RecordSet<Ipv4Addr>> {
        Cache { tally: self, pick: |i| &mut i.v4 }
    }
    pub fn v6(&self) -> Cache<'_, RecordSet<Ipv6Addr>> {
        Cache { tally: self, pick: |i| &mut i.v6 }
    }
    pub fn ptr(&self) -> Cache<'_, RecordSet<Box<str>>> {
        Cache { tally: self, pick: |i| &mut i.ptr }
    }
}

/// One of the five caches over a [`Tally`] (A and AAAA questions for one
/// name count as one name).
pub struct Cache<'t, V> {
    tally: &'t Tally,
    pick: fn(&mut TallyInner) -> &mut HashMap<u64, V>,
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for Cache<'_, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = key_hash(name);
        let mut inner = self.tally.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = (self.pick)(&mut inner).get(&h) {
            return Some(v.clone());
        }
        if inner.asked.len() < MAX_NAMES {
            inner.asked.insert(h);
        }
        None
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = key_hash(name);
        let mut inner = self.tally.inner.lock().unwrap_or_else(|p| p.into_inner());
        (self.pick)(&mut inner).remove(&h)
    }

    fn insert(&self, key: K, value: V, _valid_until: std::time::Instant) {
        // K: Borrow<Q> hashes as Q does, so get's hash of the name matches.
        let h = key_hash(&key);
        let mut inner = self.tally.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.answered.insert(h);
        let map = (self.pick)(&mut inner);
        if map.len() < MAX_NAMES {
            map.insert(h, value);
        }
    }
}
