//! The accept loop every port25 listener shares: the engine's SMTP server
//! and the spampot's bait listeners both accept, cap connections with a
//! semaphore, run each connection as a tracked task, stop accepting on
//! shutdown and then drain. It lives here once so that the cap, the accept
//! back-off and the drain cannot drift apart between the two; what differs
//! (which event a refusal logs, whether the client gets a reply, what a
//! connection runs) is the caller's, passed in as closures.
//!
//! The per-client cap ([`Clients`]) lives here too, but is taken by the
//! caller once it knows who the client is: behind a PROXY header that is
//! the address the header names, not the load balancer's.
//!
//! Addresses are folded here: a dual-stack `[::]` listener sees IPv4
//! clients as `::ffff:a.b.c.d`, and everything after the accept (trusted
//! networks, caps, logs, Received) must see the IPv4 address.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the loop did not start a connection task.
pub enum Refused<'a> {
    /// `accept` failed (EMFILE and friends); the loop backs off 100 ms.
    Accept(&'a io::Error),
    /// Every slot is taken; the connection is closed when the callback
    /// returns (it may write a reply first).
    Full(&'a TcpStream, SocketAddr),
}

/// Accepts on `listener` until `shutdown` is cancelled. Each connection
/// takes a permit of `slots` (without waiting: when none is free it is
/// refused) and runs `serve(tcp, peer)` as a task of `tracker`, holding the
/// permit until that future ends. Returns when it stops accepting; the
/// caller then [`drain`]s (several loops may share one tracker and one
/// semaphore).
pub async fn accept_loop<S, F>(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    mut refused: impl FnMut(Refused<'_>),
    mut serve: S,
) where
    S: FnMut(TcpStream, SocketAddr) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok((tcp, peer)) => (tcp, canonical(peer)),
            Err(e) => {
                // Back off instead of spinning.
                refused(Refused::Accept(&e));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refused(Refused::Full(&tcp, peer));
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let connection = serve(tcp, peer);
        tracker.spawn(async move {
            connection.await;
            drop(permit);
        });
    }
}

/// `addr` with an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a
/// dual-stack socket reports for an IPv4 client) folded to plain IPv4.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// The unit the per-client caps count: an IPv4 address, or the /64 an IPv6
/// address is in (one subscriber or host usually has a whole /64, so
/// counting single IPv6 addresses would let it open 2^64 times the cap).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Open connections per client ([`client_key`]), capped. An entry exists
/// only while its client has a connection open, so the table never holds
/// more entries than there are connections.
pub struct Clients {
    open: Mutex<HashMap<IpAddr, usize>>,
    max_per_client: usize,
}

/// One connection of a client; gives its place back when dropped.
pub struct ClientSlot {
    clients: Arc<Clients>,
    key: IpAddr,
}

impl Clients {
    pub fn new(max_per_client: usize) -> Arc<Clients> {
        Arc::new(Clients { open: Mutex::new(HashMap::new()), max_per_client })
    }

    pub fn max_per_client(&self) -> usize {
        self.max_per_client
    }

    /// A slot for a connection from `ip`, or `None` when its client (its
    /// address, or its IPv6 /64) already has `max_per_client` open.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let key = client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.max_per_client {
            if *n == 0 {
                open.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(ClientSlot { clients: self.clone(), key })
    }

    /// Connections `ip`'s client has open now.
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&client_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.clients.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Closes `tracker` to new tasks and waits up to `timeout` for the ones
/// still running; false when the timeout cut the wait short. Tasks still
/// running then are not aborted here.
pub async fn drain(tracker: &TaskTracker, timeout: Duration) -> bool {
    tracker.close();
    tokio::time::timeout(timeout, tracker.wait()).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_fold_to_ipv4() {
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:2525".parse().unwrap();
        assert_eq!(canonical(mapped), "192.0.2.1:2525".parse::<SocketAddr>().unwrap());
        let v6: SocketAddr = "[2001:db8::1]:25".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    #[test]
    fn caps_count_ipv4_addresses_and_ipv6_slash_64s() {
        let clients = Clients::new(2);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = clients.enter(ip("192.0.2.1")).unwrap();
        // The same client seen through a dual-stack socket.
        let _b = clients.enter(ip("::ffff:192.0.2.1")).unwrap();
        assert!(clients.enter(ip("192.0.2.1")).is_none());
        assert!(clients.enter(ip("192.0.2.2")).is_some());
        drop(a);
        assert_eq!(clients.open(ip("192.0.2.1")), 1);
        let _c = clients.enter(ip("192.0.2.1")).unwrap();

        // Rotating addresses inside one /64 does not get past the cap.
        let _d = clients.enter(ip("2001:db8:1:2::1")).unwrap();
        let _e = clients.enter(ip("2001:db8:1:2:ffff::9")).unwrap();
        assert!(clients.enter(ip("2001:db8:1:2:1234:5678:9abc:def0")).is_none());
        assert!(clients.enter(ip("2001:db8:1:3::1")).is_some(), "the next /64 is another client");
    }

    #[test]
    fn the_table_forgets_clients_without_connections() {
        let clients = Clients::new(1);
        for i in 0..1000u32 {
            let slot = clients.enter(IpAddr::from(i.to_be_bytes()));
            assert!(slot.is_some());
        }
        assert!(clients.open.lock().unwrap().is_empty());
        let zero = Clients::new(0);
        assert!(zero.enter("192.0.2.1".parse().unwrap()).is_none());
        assert!(zero.open.lock().unwrap().is_empty());
    }
}
