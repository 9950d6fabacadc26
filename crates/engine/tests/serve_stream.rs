//! `serve_stream`: a session over a connection accepted elsewhere, with the
//! bytes already read from it, a per-session hostname and a policy banner
//! (how the spampot hands a SOCKS/HTTP tunnel to the engine).

mod common;

use port25_engine::address::ForwardPath;
use port25_engine::{Decision, Envelope, Hooks, Message, Reply, SessionInfo};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

struct Capture(Mutex<Vec<Vec<u8>>>);

impl Hooks for Capture {
    type State = ();
    async fn connect(&self, _info: &SessionInfo, _: &mut ()) -> Decision {
        Decision::AcceptWith(Reply::owned(220, "2.0.0", "mx.requested.example ESMTP Postfix".to_owned()))
    }
    async fn rcpt(&self, _: &SessionInfo, _: &mut (), _: &Envelope, _: &ForwardPath) -> Decision {
        Decision::Accept
    }
    async fn data(&self, _: &SessionInfo, _: &mut (), _: &Envelope, m: Message) -> Decision {
        self.0.lock().unwrap().push(m.into_body());
        Decision::Accept
    }
}

#[tokio::test]
async fn a_session_over_an_accepted_stream_starts_with_buffered_bytes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (server, peer) = listener.accept().await.unwrap();
    let settings = common::plain_settings("tunnel", "mx.requested.example");
    let info = SessionInfo::new(port25_engine::session_id(), "tunnel".into(), peer, addr);
    let hooks = Arc::new(Capture(Mutex::new(Vec::new())));
    let task = tokio::spawn(port25_engine::serve_stream(
        info,
        server,
        b"EHLO c.example\r\n",
        settings,
        hooks.clone(),
        CancellationToken::new(),
    ));
    client.write_all(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<v@c.example>\r\nDATA\r\n").await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("354 ") {
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    client.write_all(b"Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n").await.unwrap();
    client.read_to_end(&mut seen).await.unwrap();
    task.await.unwrap();
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.starts_with(
            "220 2.0.0 mx.requested.example ESMTP Postfix\r\n250-mx.requested.example greets 127.0.0.1\r\n"
        ),
        "{text}"
    );
    assert!(text.contains("250 2.0.0 Ok: queued as "), "{text}");
    assert_eq!(hooks.0.lock().unwrap().as_slice(), &[b"Subject: x\r\n\r\nhi\r\n".to_vec()]);
}
