//! The open-proxy bait on one connection: sniff the protocol, play the
//! SOCKS4/4a/5 or HTTP proxy handshake, and decide what the tunnel gets:
//! the fake mail server for mail ports, the configured refusal otherwise.
//! Nothing is ever connected to: the "tunnel" is this very socket.

use crate::config::Refusal;
use crate::conn::{read_more, Conn, Outcome};
use crate::http::{self, Target};
use crate::sniff::{sniff, Protocol};
use crate::{socks4, socks5};
use port25_capture::Destination;
use port25_events as ev;
use port25_events::emit;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// What the handshake established.
pub struct Tunnel {
    pub proxy_type: &'static str,
    pub requested: Destination,
    pub credentials: Option<(String, String)>,
}

/// Reads until `parse` gives a value; `buf` keeps unparsed bytes.
macro_rules! read_until {
    ($conn:expr, $tcp:expr, $buf:expr, $max:expr, $parse:expr) => {
        loop {
            match $parse(&$buf[..]) {
                Ok(Some((value, used))) => {
                    $buf.drain(..used);
                    break value;
                }
                Ok(None) => {
                    if !read_more($conn, $tcp, $buf, $max).await {
                        return Outcome::Closed("handshake incomplete");
                    }
                }
                Err(e) => {
                    $conn.unknown(&e.to_string());
                    return Outcome::Closed("bad handshake");
                }
            }
        }
    };
}

pub async fn handle(conn: &Conn, tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Outcome {
    if buf.is_empty() && !read_more(conn, tcp, buf, 1).await {
        return Outcome::Closed("no data");
    }
    match sniff(buf) {
        Some(Protocol::Socks4) => socks4_handshake(conn, tcp, buf).await,
        Some(Protocol::Socks5) => socks5_handshake(conn, tcp, buf).await,
        Some(Protocol::Http) => http_request(conn, tcp, buf).await,
        _ => {
            conn.unknown("first bytes are neither SOCKS nor HTTP");
            Outcome::Closed("unknown protocol")
        }
    }
}

async fn socks4_handshake(conn: &Conn, tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Outcome {
    let req = read_until!(conn, tcp, buf, 8 + 2 * (socks4::MAX_FIELD + 1), socks4::parse);
    let (proxy_type, host) = match req.host {
        socks4::Host::Ip(ip) => ("socks4", ip.to_string()),
        socks4::Host::Name(n) => ("socks4a", n),
    };
    let credentials = (!req.user_id.is_empty()).then(|| (req.user_id.clone(), String::new()));
    let tunnel = Tunnel { proxy_type, requested: Destination { host, port: req.port }, credentials };
    conn.proxy_request(&tunnel);
    if req.command != 1 || !conn.is_mail_port(req.port) {
        let refusal = if req.command != 1 { Refusal::Refuse } else { conn.shared.config.refusal_for(req.port) };
        conn.refused(&tunnel, if req.command != 1 { "BIND is not offered" } else { "not a mail port" });
        if refusal == Refusal::Refuse {
            let _ = tcp.write_all(&socks4::reply(socks4::REJECTED)).await;
        }
        return Outcome::Closed("refused");
    }
    if tcp.write_all(&socks4::reply(socks4::GRANTED)).await.is_err() {
        return Outcome::Closed("client closed");
    }
    Outcome::Smtp(Some(tunnel))
}

async fn socks5_handshake(conn: &Conn, tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Outcome {
    let methods = read_until!(conn, tcp, buf, 2 + 255, socks5::parse_greeting);
    // Ask for credentials whenever the client offers them: they are recorded.
    let method = if methods.contains(&socks5::USER_PASS) {
        socks5::USER_PASS
    } else if methods.contains(&socks5::NO_AUTH) {
        socks5::NO_AUTH
    } else {
        socks5::NO_ACCEPTABLE
    };
    if tcp.write_all(&[5, method]).await.is_err() || method == socks5::NO_ACCEPTABLE {
        conn.unknown("SOCKS5 client offers no usable method");
        return Outcome::Closed("no acceptable method");
    }
    let mut credentials = None;
    if method == socks5::USER_PASS {
        let creds = read_until!(conn, tcp, buf, 3 + 2 * 255, socks5::parse_auth);
        credentials = Some(creds);
        if tcp.write_all(&[1, 0]).await.is_err() {
            return Outcome::Closed("client closed");
        }
    }
    let req = read_until!(conn, tcp, buf, 6 + 256, socks5::parse_request);
    let tunnel = Tunnel {
        proxy_type: "socks5",
        requested: Destination { host: req.host.to_string(), port: req.port },
        credentials,
    };
    conn.proxy_request(&tunnel);
    if req.command != 1 {
        conn.refused(&tunnel, "only CONNECT is offered");
        let _ = tcp.write_all(&socks5::reply(socks5::COMMAND_NOT_SUPPORTED)).await;
        return Outcome::Closed("refused");
    }
    if !conn.is_mail_port(req.port) {
        conn.refused(&tunnel, "not a mail port");
        if conn.shared.config.refusal_for(req.port) == Refusal::Refuse {
            let _ = tcp.write_all(&socks5::reply(socks5::CONNECTION_REFUSED)).await;
        }
        return Outcome::Closed("refused");
    }
    if tcp.write_all(&socks5::reply(socks5::SUCCEEDED)).await.is_err() {
        return Outcome::Closed("client closed");
    }
    Outcome::Smtp(Some(tunnel))
}

/// A small page for absolute-URI requests: a proxy that works but whose
/// upstream has nothing to say, rather than an error that marks it dead.
const PAGE: &str = "<html><head><title>Welcome</title></head><body><p>It works!</p></body></html>\n";

fn http_response(status: &str, body: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\nServer: squid\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_bytes()
}

async fn http_request(conn: &Conn, tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Outcome {
    let req = read_until!(conn, tcp, buf, http::MAX_HEAD, http::parse);
    match req.target {
        Target::Connect { host, port } => {
            let tunnel = Tunnel {
                proxy_type: "http-connect",
                requested: Destination { host, port },
                credentials: req.credentials,
            };
            conn.proxy_request(&tunnel);
            if !conn.is_mail_port(port) {
                conn.refused(&tunnel, "not a mail port");
                if conn.shared.config.refusal_for(port) == Refusal::Refuse {
                    let _ = tcp.write_all(&http_response("503 Service Unavailable", "")).await;
                }
                return Outcome::Closed("refused");
            }
            if tcp.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
                return Outcome::Closed("client closed");
            }
            Outcome::Smtp(Some(tunnel))
        }
        Target::Absolute { host, port, url, .. } => {
            let mut e = conn.event(ev::SPAMPOT_HTTP_REQUEST);
            e.proxy_type = Some("http".into());
            e.requested = Some(Destination { host, port });
            e.method = Some(req.method.clone());
            e.url = Some(url.clone());
            e.user_agent = req.user_agent.clone();
            if let Some((u, p)) = req.credentials {
                e.username = Some(u);
                e.password = Some(p);
            }
            conn.shared.store.record(&e);
            emit!(info, ev::SPAMPOT_HTTP_REQUEST, session = %conn.session, peer = %conn.peer, method = %req.method, url = %url);
            let _ = tcp.write_all(&http_response("200 OK", PAGE)).await;
            Outcome::Closed("http request answered")
        }
        Target::Origin(path) => {
            let mut e = conn.event(ev::SPAMPOT_HTTP_REQUEST);
            e.method = Some(req.method.clone());
            e.url = Some(path.clone());
            e.user_agent = req.user_agent.clone();
            conn.shared.store.record(&e);
            emit!(info, ev::SPAMPOT_HTTP_REQUEST, session = %conn.session, peer = %conn.peer, method = %req.method, url = %path);
            let _ = tcp.write_all(&http_response("400 Bad Request", "<html><body>Invalid URL</body></html>\n")).await;
            Outcome::Closed("http request answered")
        }
    }
}
