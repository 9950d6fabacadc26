//! The accept loop of one bait listener: the engine's shared
//! [`port25_listen::accept`] loop with the total connection cap across
//! listeners, then a task per connection ([`crate::conn::serve`]).

use crate::config::Listener;
use crate::Shared;
use port25_events as ev;
use port25_events::emit;
use port25_listen::accept::{self, Refused};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub async fn accept_loop(
    shared: Arc<Shared>,
    config: Arc<Listener>,
    listener: TcpListener,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    // Over the cap the connection is closed at once, without a reply
    // (docs/spampot.md, `max_connections`).
    let refused = |r: Refused<'_>| match r {
        Refused::Accept(e) => emit!(warn, ev::SPAMPOT_LIMIT, listener = %config.name, reason = "accept", error = %e),
        Refused::Full(_, peer) => {
            emit!(info, ev::SPAMPOT_LIMIT, listener = %config.name, peer = %peer, reason = "max_connections")
        }
    };
    let serve = |tcp, peer| crate::conn::serve(shared.clone(), config.clone(), tcp, peer, shutdown.clone());
    accept::accept_loop(&listener, &shared.slots, &tracker, &shutdown, refused, serve).await;
}
