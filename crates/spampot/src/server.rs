//! The accept loop of one bait listener: the total connection cap, then a
//! task per connection ([`crate::conn::serve`]).

use crate::config::Listener;
use crate::Shared;
use port25_events as ev;
use port25_events::emit;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub async fn accept_loop(shared: Arc<Shared>, config: Arc<Listener>, listener: TcpListener, shutdown: CancellationToken, tracker: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                emit!(warn, ev::SPAMPOT_LIMIT, listener = %config.name, reason = "accept", error = %e);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
            emit!(info, ev::SPAMPOT_LIMIT, listener = %config.name, peer = %peer, reason = "max_connections");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (shared, config, token) = (shared.clone(), config.clone(), shutdown.clone());
        tracker.spawn(async move {
            crate::conn::serve(shared, config, tcp, peer, token).await;
            drop(permit);
        });
    }
}
