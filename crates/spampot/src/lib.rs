//! The SpamPots sensor: low-interaction open-proxy and open-relay bait.
//!
//! Spammers who find the sensor believe it is an open proxy (HTTP CONNECT,
//! SOCKS4, SOCKS4a, SOCKS5, all sniffed on the same port) or an open relay;
//! when they tunnel to port 25 or 587 of any host, the sensor itself plays
//! that host's mail server over the tunnel with the port25 SMTP engine and a
//! capture policy, answers `250 … queued as`, and stores everything in the
//! capture store. Nothing is ever forwarded: this crate depends on neither
//! the queue nor the delivery crate, and opens no outbound connection
//! (tests/no_relay.rs holds both).
//!
//! Layout: pure parsers ([`sniff`], [`socks4`], [`socks5`], [`http`],
//! [`probe`]), then [`config`], [`sources`] (messages per source), [`policy`]
//! (the capture Hooks), [`proxy`] (handshakes), [`conn`] (one connection),
//! [`server`] (accept loop) and [`run`]; [`wire`] counts the bytes on the
//! wire of each connection.

pub mod config;
pub mod conn;
pub mod http;
pub mod policy;
pub mod probe;
pub mod proxy;
mod server;
pub mod sniff;
pub mod socks4;
pub mod socks5;
pub mod sources;
pub mod wire;

use port25_capture::Store;
use port25_engine::{Limits, ListenerSettings, TlsMode};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every connection shares.
pub struct Shared {
    pub config: config::Config,
    pub store: Store,
    pub sources: Arc<sources::Sources>,
    /// Open connections per source (an IPv4 address or an IPv6 /64), for
    /// `max_connections_per_source`: the engine's per-client cap.
    pub clients: Arc<port25_listen::accept::Clients>,
    /// The total connection cap across listeners.
    pub slots: Arc<Semaphore>,
    /// Engine settings for the fake mail server; cloned per session with
    /// the host the client asked for.
    pub smtp: Arc<ListenerSettings>,
}

impl Shared {
    pub fn new(config: config::Config, store: Store) -> Arc<Shared> {
        let l = &config.limits;
        let smtp = ListenerSettings {
            name: "spampot".into(),
            hostname: config.hostname.clone(),
            tls_mode: TlsMode::None,
            tls: None,
            proxy_protocol: false,
            proxy_protocol_from: Vec::new(),
            limits: Limits {
                max_connections: l.max_connections,
                max_connections_per_client: l.max_connections_per_source,
                max_recipients: l.max_recipients,
                max_message_size: l.max_message_size,
                command_timeout: Duration::from_secs(l.command_timeout_secs),
                data_timeout: Duration::from_secs(l.data_timeout_secs),
                handshake_timeout: Duration::from_secs(l.handshake_timeout_secs),
                ..Limits::default()
            },
            data_budget: port25_engine::DataBudget::new(l.max_data_memory),
            drain_timeout: Duration::from_secs(10),
        };
        Arc::new(Shared {
            sources: sources::Sources::new(),
            clients: port25_listen::accept::Clients::new(l.max_connections_per_source),
            slots: Arc::new(Semaphore::new(l.max_connections)),
            smtp: Arc::new(smtp),
            config,
            store,
        })
    }
}

/// Serves the bait on already bound listeners until `shutdown`, then waits
/// (up to 10 s) for open sessions; a session in the middle of a message is
/// let finish it.
pub async fn run(shared: Arc<Shared>, listeners: Vec<(config::Listener, TcpListener)>, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    let mut loops = Vec::new();
    for (config, listener) in listeners {
        loops.push(tokio::spawn(server::accept_loop(
            shared.clone(),
            Arc::new(config),
            listener,
            shutdown.clone(),
            tracker.clone(),
        )));
    }
    for l in loops {
        let _ = l.await;
    }
    port25_listen::accept::drain(&tracker, Duration::from_secs(10)).await;
}
