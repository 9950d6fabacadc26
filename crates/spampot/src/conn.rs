//! One bait connection from accept to close: the PROXY header (when the
//! listener has one, and only from its `proxy_protocol_from`), the
//! per-source cap (the engine's per-client cap: IPv6 counted per /64), the
//! proxy handshake or the relay bait, the SMTP session over the tunnel, and
//! the events around them.

use crate::config::{Kind, Listener};
use crate::policy::CapturePolicy;
use crate::proxy::{self, Tunnel};
use crate::Shared;
use port25_capture::Event;
use port25_engine::proxy::{self as proxy_header, ProxyHeader};
use port25_engine::SessionInfo;
use port25_events as ev;
use port25_events::emit;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

pub struct Conn {
    pub shared: Arc<Shared>,
    pub session: String,
    pub listener: Arc<str>,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub protocol: &'static str,
}

pub enum Outcome {
    /// Play the mail server; `None` on the relay bait (no proxy layer).
    Smtp(Option<Tunnel>),
    Closed(&'static str),
}

/// Reads more handshake bytes into `buf`, within the handshake timeout and
/// while `buf` is under `max`; false (with a limit event where it applies)
/// when the client is gone, too slow or too verbose.
pub async fn read_more(conn: &Conn, tcp: &mut TcpStream, buf: &mut Vec<u8>, max: usize) -> bool {
    if buf.len() >= max {
        conn.limit("handshake too large");
        return false;
    }
    let mut chunk = [0u8; 2048];
    let want = (max - buf.len()).min(chunk.len());
    match tokio::time::timeout(conn.shared.config.handshake_timeout(), tcp.read(&mut chunk[..want])).await {
        Ok(Ok(0)) | Ok(Err(_)) => false,
        Ok(Ok(n)) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        Err(_) => {
            conn.limit("handshake timeout");
            false
        }
    }
}

impl Conn {
    /// An event of this connection, stamped now.
    pub fn event(&self, id: &str) -> Event {
        let mut e = self.shared.store.event(id);
        e.session = self.session.clone();
        e.src_ip = Some(self.peer.ip().to_string());
        e.src_port = Some(self.peer.port());
        e.dst_port = Some(self.local.port());
        e.protocol = Some(self.protocol.to_owned());
        e
    }

    fn tunnel_event(&self, id: &str, t: &Tunnel) -> Event {
        let mut e = self.event(id);
        e.proxy_type = Some(t.proxy_type.to_owned());
        e.requested = Some(t.requested.clone());
        if let Some((u, p)) = &t.credentials {
            e.username = Some(u.clone());
            e.password = Some(p.clone());
        }
        e
    }

    pub fn limit(&self, reason: &str) {
        emit!(info, ev::SPAMPOT_LIMIT, session = %self.session, peer = %self.peer, reason);
        let mut e = self.event(ev::SPAMPOT_LIMIT);
        e.reason = Some(reason.to_owned());
        self.shared.store.record(&e);
    }

    pub fn unknown(&self, reason: &str) {
        emit!(info, ev::SPAMPOT_PROTOCOL_UNKNOWN, session = %self.session, peer = %self.peer, reason);
        let mut e = self.event(ev::SPAMPOT_PROTOCOL_UNKNOWN);
        e.reason = Some(reason.to_owned());
        self.shared.store.record(&e);
    }

    pub fn proxy_request(&self, t: &Tunnel) {
        emit!(info, ev::SPAMPOT_PROXY_REQUEST, session = %self.session, peer = %self.peer, proxy_type = t.proxy_type,
            host = %t.requested.host, port = t.requested.port, username = ?t.credentials.as_ref().map(|c| &c.0));
        self.shared.store.record(&self.tunnel_event(ev::SPAMPOT_PROXY_REQUEST, t));
    }

    pub fn refused(&self, t: &Tunnel, reason: &str) {
        emit!(info, ev::SPAMPOT_PROXY_REFUSED, session = %self.session, peer = %self.peer, proxy_type = t.proxy_type,
            host = %t.requested.host, port = t.requested.port, reason);
        let mut e = self.tunnel_event(ev::SPAMPOT_PROXY_REFUSED, t);
        e.reason = Some(reason.to_owned());
        self.shared.store.record(&e);
    }

    pub fn is_mail_port(&self, port: u16) -> bool {
        self.shared.config.mail_ports.contains(&port)
    }
}

/// Reads a PROXY v1/v2 header; on success the connection's addresses are
/// the ones it names.
async fn proxy_protocol(conn: &mut Conn, tcp: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    loop {
        match proxy_header::parse(buf) {
            Ok(Some((header, used))) => {
                buf.drain(..used);
                if let ProxyHeader::Proxied { source, destination } = header {
                    conn.peer = source;
                    conn.local = destination;
                }
                return true;
            }
            Ok(None) => {
                if !read_more(conn, tcp, buf, proxy_header::V2_MAX).await {
                    return false;
                }
            }
            Err(e) => {
                emit!(info, ev::SESSION_PROXY_INVALID, session = %conn.session, peer = %conn.peer, error = %e);
                return false;
            }
        }
    }
}

pub async fn serve(
    shared: Arc<Shared>,
    listener: Arc<Listener>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let local = tcp.local_addr().map(port25_listen::accept::canonical).unwrap_or(peer);
    let protocol = match listener.kind {
        Kind::Proxy => "proxy",
        Kind::Smtp => "smtp",
    };
    let wire = crate::wire::Wire::of(&tcp);
    let mut conn = Conn {
        shared,
        session: port25_engine::session_id(),
        listener: listener.name.as_str().into(),
        peer,
        local,
        protocol,
    };
    let mut buf = Vec::new();
    if listener.proxy_protocol {
        if !listener.proxy_protocol_from.iter().any(|net| net.contains(&peer.ip())) {
            // Anyone else's header would name whatever source it likes.
            emit!(warn, ev::SESSION_PROXY_UNTRUSTED, session = %conn.session, listener = %conn.listener, peer = %peer);
            conn.limit("PROXY header from a peer not in proxy_protocol_from");
            return;
        }
        if !proxy_protocol(&mut conn, &mut tcp, &mut buf).await {
            return;
        }
    }
    let Some(_slot) = conn.shared.clients.enter(conn.peer.ip()) else {
        conn.limit("max_connections_per_source");
        return;
    };
    emit!(info, ev::SPAMPOT_CONNECT, session = %conn.session, listener = %conn.listener, peer = %conn.peer, protocol);
    conn.shared.store.record(&conn.event(ev::SPAMPOT_CONNECT));
    let outcome = match listener.kind {
        Kind::Proxy => proxy::handle(&conn, &mut tcp, &mut buf).await,
        Kind::Smtp => Outcome::Smtp(None),
    };
    let (reason, messages, bytes) = match outcome {
        Outcome::Smtp(tunnel) => smtp(&conn, tcp, &buf, tunnel, shutdown).await,
        Outcome::Closed(reason) => (reason, 0, 0),
    };
    // The wire counters are read after the session let go of the stream.
    let counters = wire.counters();
    let (bytes_in, bytes_out) = (counters.map(|c| c.0), counters.map(|c| c.1));
    emit!(info, ev::SPAMPOT_SESSION_CLOSED, session = %conn.session, peer = %conn.peer, reason, messages, bytes, bytes_in, bytes_out);
    let mut e = conn.event(ev::SPAMPOT_SESSION_CLOSED);
    e.reason = Some(reason.to_owned());
    e.messages = Some(messages);
    e.bytes = Some(bytes);
    e.bytes_in = bytes_in;
    e.bytes_out = bytes_out;
    conn.shared.store.record(&e);
}

/// The name the fake server gives itself: the requested host when the
/// client named one, else the configured hostname.
fn banner_host(shared: &Shared, tunnel: Option<&Tunnel>) -> String {
    match tunnel {
        Some(t) if t.requested.host.parse::<IpAddr>().is_err() => t.requested.host.clone(),
        _ => shared.config.hostname.clone(),
    }
}

async fn smtp(
    conn: &Conn,
    tcp: TcpStream,
    buffered: &[u8],
    tunnel: Option<Tunnel>,
    shutdown: CancellationToken,
) -> (&'static str, u64, u64) {
    let host = banner_host(&conn.shared, tunnel.as_ref());
    let base = match &tunnel {
        Some(t) => conn.tunnel_event("", t),
        None => conn.event(""),
    };
    let mut settings = (*conn.shared.smtp).clone();
    settings.name = conn.listener.clone();
    settings.hostname = host.clone();
    let info = SessionInfo::new(conn.session.clone(), conn.listener.clone(), conn.peer, conn.local);
    if tunnel.is_some() {
        tokio::time::sleep(std::time::Duration::from_millis(conn.shared.config.tunnel_banner_delay_ms)).await;
    }
    let policy = Arc::new(CapturePolicy::new(conn.shared.clone(), base, host));
    port25_engine::serve_stream(info, tcp, buffered, Arc::new(settings), policy.clone(), shutdown).await;
    ("smtp session ended", policy.messages.load(Ordering::Relaxed), policy.bytes.load(Ordering::Relaxed))
}
