//! The accept loop every port25 listener shares: the engine's SMTP server
//! and the spampot's bait listeners both accept, cap connections with a
//! semaphore, run each connection as a tracked task, stop accepting on
//! shutdown and then drain. It lives here once so that the cap, the accept
//! back-off and the drain cannot drift apart between the two; what differs
//! (which event a refusal logs, whether the client gets a reply, what a
//! connection runs) is the caller's, passed in as closures.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
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
            Ok(a) => a,
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

/// Closes `tracker` to new tasks and waits up to `timeout` for the ones
/// still running; false when the timeout cut the wait short. Tasks still
/// running then are not aborted here.
pub async fn drain(tracker: &TaskTracker, timeout: Duration) -> bool {
    tracker.close();
    tokio::time::timeout(timeout, tracker.wait()).await.is_ok()
}
