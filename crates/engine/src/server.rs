//! The SMTP listener over the shared [`port25_listen::accept`] loop (connection
//! cap, drain on shutdown): per connection, read a PROXY header (only from
//! the listener's trusted proxies), take the client's slot of the
//! per-client cap, do the implicit TLS handshake, then run a session.

use crate::hooks::{Hooks, SessionInfo};
use crate::input::Input;
use crate::proxy::{self, ProxyHeader};
use crate::reply::std_replies as R;
use crate::session::Session;
use crate::settings::{ListenerSettings, TlsMode};
use crate::stream::Stream;
use port25_events as ev;
use port25_events::emit;
use port25_listen::accept::{accept_loop, canonical, drain, ClientSlot, Clients, Refused};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

static SESSION_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A session id that is unique in this process and, being time-based,
/// across restarts: 10 hex digits of seconds-and-millis, 5 of a counter.
pub fn session_id() -> String {
    let millis = port25_time::unix_millis();
    let n = SESSION_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:010X}{:05X}", millis & 0xff_ffff_ffff, n & 0xf_ffff)
}

/// The queue id of a session's `transaction`th message (from 1): the
/// session's id and the number. The abuse desk's index finds a session's
/// messages by this prefix (it keeps no index by session), so every queue
/// id begins with its session's id, and session ids all have one length
/// (no session's id is the beginning of another's).
pub fn queue_id(session: &str, transaction: u32) -> String {
    format!("{session}{transaction:03}")
}

/// Serves SMTP on an already bound listener until `shutdown` is cancelled,
/// then waits up to the drain timeout for open sessions.
pub async fn run<H: Hooks>(
    listener: TcpListener,
    settings: Arc<ListenerSettings>,
    hooks: Arc<H>,
    shutdown: CancellationToken,
) {
    let session_settings = settings.clone();
    run_with(listener, settings, shutdown, move |admitted, sessions| {
        start_session(admitted, session_settings.clone(), hooks.clone(), sessions)
    })
    .await
}

/// A connection past the PROXY header (only from trusted proxies) and
/// holding its client's slot of the per-client cap: what [`run_with`]
/// hands to its callback. `input` holds what arrived after the header.
pub struct Admitted {
    pub info: SessionInfo,
    pub tcp: TcpStream,
    pub input: Input,
    /// The client's slot; the session holds it until it ends.
    pub slot: ClientSlot,
}

/// The listener every SMTP port shares (connection cap, PROXY header,
/// per-client cap, drain on shutdown), with what happens to an admitted
/// connection given by `serve`: the engine's session ([`run`]), or the
/// MX's screening before it (crates/screen).
pub async fn run_with<S, F>(
    listener: TcpListener,
    settings: Arc<ListenerSettings>,
    shutdown: CancellationToken,
    serve: S,
) where
    S: Fn(Admitted, CancellationToken) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (name, drain_timeout) = (settings.name.clone(), settings.drain_timeout);
    let tracker = accept_until(listener, settings, &shutdown, shutdown.child_token(), serve).await;
    emit!(info, ev::SERVER_STOPPING, listener = %name, sessions = tracker.len());
    if !drain(&tracker, drain_timeout).await {
        emit!(warn, ev::SERVER_STOPPING, listener = %name, sessions = tracker.len(), note = "drain timeout; closing remaining sessions");
    }
}

/// Sessions with `hooks` on `listener` until `accepting` is cancelled:
/// [`run`] for one generation of a listener that a reload replaces
/// (crates/port25/src/cmd/generation.rs). Returns once it stops
/// accepting, the socket closed; the sessions go on in the tracker until
/// they end or `sessions` is cancelled.
pub async fn accept_sessions_until<H: Hooks>(
    listener: TcpListener,
    settings: Arc<ListenerSettings>,
    hooks: Arc<H>,
    accepting: &CancellationToken,
    sessions: CancellationToken,
) -> TaskTracker {
    let session_settings = settings.clone();
    accept_until(listener, settings, accepting, sessions, move |admitted, sessions| {
        start_session(admitted, session_settings.clone(), hooks.clone(), sessions)
    })
    .await
}

/// [`run_with`]'s accept loop alone: accepts until `accepting` is
/// cancelled (then drops the listener, so a socket nobody else holds is
/// closed); the sessions it started stay in the returned tracker, told to
/// stop by `sessions`. Each call has its own connection cap and
/// per-client table.
pub async fn accept_until<S, F>(
    listener: TcpListener,
    settings: Arc<ListenerSettings>,
    accepting: &CancellationToken,
    sessions: CancellationToken,
    serve: S,
) -> TaskTracker
where
    S: Fn(Admitted, CancellationToken) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(settings.limits.max_connections));
    let clients = Clients::new(settings.limits.max_connections_per_client);
    let tracker = TaskTracker::new();
    let refused = |r: Refused<'_>| match r {
        Refused::Accept(e) => emit!(warn, ev::SESSION_LIMIT, listener = %settings.name, limit = "accept", error = %e),
        Refused::Full(tcp, peer) => {
            emit!(info, ev::SESSION_LIMIT, listener = %settings.name, peer = %peer, limit = "max_connections");
            let _ = tcp.try_write(&R::TOO_MANY_CONNECTIONS.to_wire());
        }
    };
    let serve = Arc::new(serve);
    let connection = |tcp, peer| {
        let (settings, clients, sessions, serve) = (settings.clone(), clients.clone(), sessions.clone(), serve.clone());
        async move {
            if let Some(admitted) = admit(tcp, peer, &settings, &clients).await {
                serve(admitted, sessions).await;
            }
        }
    };
    accept_loop(&listener, &slots, &tracker, accepting, refused, connection).await;
    drop(listener);
    tracker
}

/// Reads the PROXY header where the listener expects one (closing the
/// connection of anyone who is not a trusted proxy), then takes the
/// client's slot of the per-client cap (421 when it has none left).
async fn admit(
    tcp: TcpStream,
    socket_peer: SocketAddr,
    settings: &ListenerSettings,
    clients: &Arc<Clients>,
) -> Option<Admitted> {
    let local = tcp.local_addr().map(canonical).unwrap_or(socket_peer);
    let mut info = SessionInfo::new(session_id(), settings.name.clone(), socket_peer, local);
    let mut stream = Stream::Plain(tcp);
    let mut input = Input::default();
    if settings.proxy_protocol {
        if !settings.proxy_protocol_from.iter().any(|net| net.contains(&socket_peer.ip())) {
            // Not one of our proxies: its header would be a lie it chose.
            emit!(warn, ev::SESSION_PROXY_UNTRUSTED, session = %info.id, listener = %info.listener, peer = %socket_peer);
            return None;
        }
        match tokio::time::timeout(settings.limits.handshake_timeout, read_proxy_header(&mut stream, &mut input)).await
        {
            Ok(Ok(ProxyHeader::Proxied { source, destination })) => {
                emit!(debug, ev::SESSION_PROXY, session = %info.id, proxy = %socket_peer, source = %source, destination = %destination);
                info.proxied_by = Some(socket_peer);
                info.peer = source;
                info.local = destination;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                emit!(info, ev::SESSION_PROXY_INVALID, session = %info.id, peer = %socket_peer, error = %e);
                return None;
            }
            Err(_) => {
                emit!(info, ev::SESSION_PROXY_INVALID, session = %info.id, peer = %socket_peer, error = "timeout");
                return None;
            }
        }
    }
    // The per-client cap counts the real client, so it is taken after the
    // PROXY header and held for the whole session.
    let Some(slot) = clients.enter(info.peer.ip()) else {
        emit!(info, ev::SESSION_LIMIT, session = %info.id, listener = %info.listener, peer = %info.peer, limit = "max_connections_per_client",
            max = clients.max_per_client());
        // No plaintext reply where the client expects a TLS handshake.
        if settings.tls_mode != TlsMode::Implicit {
            let _ = tokio::time::timeout(
                settings.limits.handshake_timeout,
                stream.write_all(&R::TOO_MANY_FROM_CLIENT.to_wire()),
            )
            .await;
            let _ = tokio::time::timeout(settings.limits.handshake_timeout, stream.shutdown()).await;
        }
        return None;
    };
    let Stream::Plain(tcp) = stream else { return None };
    Some(Admitted { info, tcp, input, slot })
}

async fn start_session<H: Hooks>(
    admitted: Admitted,
    settings: Arc<ListenerSettings>,
    hooks: Arc<H>,
    shutdown: CancellationToken,
) {
    let Admitted { info, tcp, input, slot: _client } = admitted;
    let mut stream = Stream::Plain(tcp);
    emit!(info, ev::SESSION_CONNECT, session = %info.id, listener = %info.listener, peer = %info.peer, local = %info.local);
    if settings.tls_mode == TlsMode::Implicit {
        let Some(config) = settings.tls.clone() else { return };
        let Stream::Plain(tcp) = stream else { return };
        // Bytes read with the PROXY header belong to the TLS handshake.
        if !input.buffered().is_empty() {
            emit!(info, ev::SESSION_PROXY_INVALID, session = %info.id, peer = %info.proxied_by.unwrap_or(info.peer), error = "data after PROXY header before TLS");
            return;
        }
        // The ClientHello first: an ACME TLS-ALPN-01 validation (ALPN
        // acme-tls/1) gets the challenge certificate and nothing more.
        let handshake = async {
            let start = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
            let (config, acme) = port25_listen::tls::for_client_hello(&config, &start.client_hello());
            let tls = start.into_stream(config).await?;
            std::io::Result::Ok((tls, acme))
        };
        match tokio::time::timeout(settings.limits.handshake_timeout, handshake).await {
            Ok(Ok((mut tls, true))) => {
                let domain = tls.get_ref().1.server_name().unwrap_or_default().to_owned();
                emit!(info, ev::ACME_CHALLENGE_SERVED, challenge = "tls-alpn-01", peer = %info.peer, domain = %domain);
                let _ = tokio::time::timeout(settings.limits.handshake_timeout, tls.shutdown()).await;
                return;
            }
            Ok(Ok((tls, false))) => stream = Stream::Tls(Box::new(tls)),
            Ok(Err(e)) => {
                emit!(info, ev::SMTP_STARTTLS_FAILED, session = %info.id, peer = %info.peer, error = %e);
                return;
            }
            Err(_) => {
                emit!(info, ev::SMTP_STARTTLS_FAILED, session = %info.id, peer = %info.peer, error = "timeout");
                return;
            }
        }
    }
    Session::new(info, settings, hooks, stream, input).run(shutdown).await;
}

/// Reads exactly the PROXY header; anything after it stays in `input`.
async fn read_proxy_header(stream: &mut Stream, input: &mut Input) -> Result<ProxyHeader, proxy::ProxyError> {
    loop {
        if let Some((header, used)) = proxy::parse(input.buffered())? {
            input.consume(used);
            return Ok(header);
        }
        match input.fill(stream, proxy::V2_MAX).await {
            Ok(0) | Err(_) => return Err(proxy::ProxyError::Missing),
            Ok(_) => {}
        }
    }
}

/// Runs one SMTP session over a connection someone else accepted and
/// already read from (the spampot's proxy layer hands over a tunnel this
/// way): `buffered` is what the client sent after the handshake, `info`
/// says who it is, `settings` may be per session (hostname of the host the
/// client believes it reached). No PROXY header or implicit TLS here.
pub async fn serve_stream<H: Hooks>(
    info: SessionInfo,
    tcp: TcpStream,
    buffered: &[u8],
    settings: Arc<ListenerSettings>,
    hooks: Arc<H>,
    shutdown: CancellationToken,
) {
    let mut input = Input::default();
    input.push(buffered);
    emit!(info, ev::SESSION_CONNECT, session = %info.id, listener = %info.listener, peer = %info.peer, local = %info.local);
    Session::new(info, settings, hooks, Stream::Plain(tcp), input).run(shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_id_begins_with_its_session_id_which_begins_no_other_session_id() {
        let (a, b) = (session_id(), session_id());
        assert_eq!((a.len(), b.len()), (15, 15), "{a} {b}");
        assert_ne!(a, b);
        for n in [1, 2, 999, 1000, u32::MAX] {
            let id = queue_id(&a, n);
            assert!(!id.starts_with(&b), "{id}");
            let number = id.strip_prefix(&a).unwrap_or_else(|| panic!("{id} does not begin with {a}"));
            assert!(number.bytes().all(|c| c.is_ascii_digit()), "{id}");
        }
        assert_eq!(queue_id("S", 7), "S007");
    }
}
