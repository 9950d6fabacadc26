//! Every `Decision` a policy gives is what the client sees, at every stage:
//! `AcceptWith`'s reply reaches the client, `Disconnect` closes the
//! connection after its reply, `Reject` at connect answers 503 until QUIT
//! (RFC 5321 §3.1), a 421 always closes, and a refusal never shows as a
//! success. The policy's per-session state is one value per session,
//! handed to every hook, with the reasons of each reset.

mod common;

use port25_engine::address::{ForwardPath, ReversePath};
use port25_engine::command::MailParams;
use port25_engine::{Decision, Envelope, Hooks, Message, Reply, Reset, SessionInfo};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connect,
    Ehlo,
    Mail,
    Rcpt,
    Data,
}

/// Answers `decision` at `stage` and accepts everything else; records the
/// hooks each session's state saw, in order.
struct Scripted {
    stage: Stage,
    decision: Decision,
    trails: Mutex<Vec<Vec<String>>>,
}

#[derive(Default)]
struct Trail(Vec<String>);

impl Scripted {
    fn at(&self, stage: Stage, trail: &mut Trail, name: &str) -> Decision {
        trail.0.push(name.to_owned());
        if stage == self.stage {
            self.decision.clone()
        } else {
            Decision::Accept
        }
    }
}

impl Hooks for Scripted {
    type State = Trail;

    async fn connect(&self, _: &SessionInfo, state: &mut Trail) -> Decision {
        self.at(Stage::Connect, state, "connect")
    }
    async fn ehlo(&self, _: &SessionInfo, state: &mut Trail, _: &str) -> Decision {
        self.at(Stage::Ehlo, state, "ehlo")
    }
    async fn mail(&self, _: &SessionInfo, state: &mut Trail, _: &ReversePath, _: &MailParams) -> Decision {
        self.at(Stage::Mail, state, "mail")
    }
    async fn rcpt(&self, _: &SessionInfo, state: &mut Trail, envelope: &Envelope, _: &ForwardPath) -> Decision {
        let name = format!("rcpt {}", envelope.rcpts.len());
        self.at(Stage::Rcpt, state, &name)
    }
    async fn data(&self, _: &SessionInfo, state: &mut Trail, _: &Envelope, _: Message) -> Decision {
        self.at(Stage::Data, state, "data")
    }
    fn reset(&self, _: &SessionInfo, state: &mut Trail, why: Reset) {
        state.0.push(format!("reset {why:?}"));
    }
    fn closed(&self, _: &SessionInfo, state: &mut Trail) {
        state.0.push("closed".into());
        self.trails.lock().unwrap().push(std::mem::take(&mut state.0));
    }
}

struct Client {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// The next whole reply, or "closed" when the server closed first.
    async fn reply(&mut self) -> String {
        loop {
            let mut end = 0;
            for line in self.buf.split_inclusive(|&b| b == b'\n').take_while(|l| l.ends_with(b"\r\n")) {
                end += line.len();
                if line.get(3) == Some(&b' ') {
                    let reply: Vec<u8> = self.buf.drain(..end).collect();
                    return String::from_utf8_lossy(&reply).trim_end().to_owned();
                }
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(Duration::from_secs(10), self.tcp.read(&mut chunk))
                .await
                .expect("the server answers within 10 s")
            {
                Ok(0) | Err(_) => return "closed".into(),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn send(&mut self, line: &str) -> String {
        if self.tcp.write_all(line.as_bytes()).await.is_err() {
            return "closed".into();
        }
        self.reply().await
    }
}

/// Runs one session against a policy that answers `decision` at `stage`;
/// returns each reply the client got (banner first) and the trail of hooks
/// the session's state saw.
async fn session(stage: Stage, decision: Decision, commands: &[&str]) -> (Vec<String>, Vec<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = common::plain_settings("decisions", "mx.test.example");
    let hooks = Arc::new(Scripted { stage, decision, trails: Mutex::new(Vec::new()) });
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(port25_engine::run(listener, settings, hooks.clone(), shutdown.clone()));
    let mut client = Client { tcp: TcpStream::connect(addr).await.unwrap(), buf: Vec::new() };
    let mut replies = vec![client.reply().await];
    for c in commands {
        let r = client.send(c).await;
        let closed = r == "closed";
        replies.push(r);
        if closed {
            break;
        }
    }
    drop(client);
    // The session ends (and its state is handed back) once the client is gone.
    for _ in 0..200 {
        if !hooks.trails.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    server.await.unwrap();
    let trail = hooks.trails.lock().unwrap().pop().expect("the session ended and called closed");
    (replies, trail)
}

const TRANSACTION: &[&str] = &[
    "EHLO client.example\r\n",
    "MAIL FROM:<a@client.example>\r\n",
    "RCPT TO:<r@test.example>\r\n",
    "DATA\r\n",
    "Subject: t\r\n\r\nhi\r\n.\r\n",
    "QUIT\r\n",
];

#[tokio::test]
async fn disconnect_at_rcpt_closes_the_connection_after_its_421() {
    let bye = Reply::new(421, "4.7.0", "Too many bad recipients, closing connection");
    let (replies, trail) = session(Stage::Rcpt, Decision::Disconnect(bye), TRANSACTION).await;
    assert_eq!(replies[3], "421 4.7.0 Too many bad recipients, closing connection", "{replies:?}");
    assert_eq!(replies[4], "closed", "the connection is closed after the 421: {replies:?}");
    assert_eq!(replies.len(), 5, "{replies:?}");
    assert_eq!(trail, ["connect", "ehlo", "reset Helo", "mail", "rcpt 0", "closed"]);
}

#[tokio::test]
async fn disconnect_at_mail_and_at_ehlo_close_the_connection() {
    let bye = Reply::new(421, "4.7.1", "Goodbye");
    let (replies, _) = session(Stage::Mail, Decision::Disconnect(bye.clone()), TRANSACTION).await;
    assert_eq!(&replies[2..], ["421 4.7.1 Goodbye", "closed"], "{replies:?}");
    let (replies, trail) = session(Stage::Ehlo, Decision::Disconnect(bye), TRANSACTION).await;
    assert_eq!(&replies[1..], ["421 4.7.1 Goodbye", "closed"], "{replies:?}");
    assert_eq!(trail, ["connect", "ehlo", "closed"]);
}

#[tokio::test]
async fn a_reject_with_421_closes_as_the_code_says() {
    let (replies, _) =
        session(Stage::Rcpt, Decision::Reject(Reply::new(421, "4.3.2", "Shutting down")), TRANSACTION).await;
    assert_eq!(&replies[3..], ["421 4.3.2 Shutting down", "closed"], "{replies:?}");
}

#[tokio::test]
async fn accept_with_replies_reach_the_client_at_every_stage() {
    let (replies, _) = session(
        Stage::Connect,
        Decision::AcceptWith(Reply::owned(220, "2.0.0", "mx.other.example ESMTP Postfix")),
        TRANSACTION,
    )
    .await;
    assert_eq!(replies[0], "220 2.0.0 mx.other.example ESMTP Postfix");

    let (replies, _) = session(
        Stage::Ehlo,
        Decision::AcceptWith(Reply::owned(250, "2.0.0", "Hello client.example, pleased to meet you")),
        TRANSACTION,
    )
    .await;
    assert!(
        replies[1].starts_with("250-Hello client.example, pleased to meet you\r\n250-PIPELINING\r\n"),
        "{replies:?}"
    );
    assert!(replies[1].ends_with("250 ENHANCEDSTATUSCODES"), "{replies:?}");
    let (replies, _) = session(
        Stage::Ehlo,
        Decision::AcceptWith(Reply::owned(250, "2.0.0", "Hi there")),
        &["HELO client.example\r\n"],
    )
    .await;
    assert_eq!(replies[1], "250 2.0.0 Hi there");

    let (replies, _) = session(
        Stage::Mail,
        Decision::AcceptWith(Reply::owned(250, "2.1.0", "Sender <a@client.example> ok, you have 3 messages left")),
        TRANSACTION,
    )
    .await;
    assert_eq!(replies[2], "250 2.1.0 Sender <a@client.example> ok, you have 3 messages left");
    assert!(replies[5].starts_with("250 2.0.0 Ok: queued as "), "the transaction goes on: {replies:?}");

    let (replies, _) = session(
        Stage::Rcpt,
        Decision::AcceptWith(Reply::owned(250, "2.1.5", "Recipient ok (greylisting passed)")),
        TRANSACTION,
    )
    .await;
    assert_eq!(replies[3], "250 2.1.5 Recipient ok (greylisting passed)");
    assert_eq!(replies[4], "354 End data with <CR><LF>.<CR><LF>", "the recipient counts: {replies:?}");

    let (replies, _) =
        session(Stage::Data, Decision::AcceptWith(Reply::owned(250, "2.0.0", "Ok: kept as evidence")), TRANSACTION)
            .await;
    assert_eq!(replies[5], "250 2.0.0 Ok: kept as evidence");
}

#[tokio::test]
async fn reject_at_connect_answers_503_until_quit() {
    let no = Reply::new(554, "5.7.1", "Your address is in end-user space; use your provider's submission server");
    let (replies, trail) = session(
        Stage::Connect,
        Decision::Reject(no),
        &["EHLO client.example\r\n", "MAIL FROM:<a@client.example>\r\n", "STARTTLS\r\n", "QUIT\r\n"],
    )
    .await;
    assert_eq!(replies[0], "554 5.7.1 Your address is in end-user space; use your provider's submission server");
    for r in &replies[1..4] {
        assert!(r.starts_with("503 5.5.1 "), "{replies:?}");
    }
    assert_eq!(replies[4], "221 2.0.0 Bye");
    assert_eq!(trail, ["connect", "closed"], "no hook runs for a refused session");

    let (replies, trail) =
        session(Stage::Connect, Decision::Disconnect(Reply::new(421, "4.7.0", "Come back later")), TRANSACTION).await;
    assert_eq!(replies, ["421 4.7.0 Come back later", "closed"]);
    assert_eq!(trail, ["connect", "closed"]);
}

#[tokio::test]
async fn replies_always_agree_with_the_decision() {
    // A refusal dressed as a success is answered 451: the client must not
    // believe a recipient was taken that the engine dropped.
    let (replies, _) =
        session(Stage::Rcpt, Decision::Reject(Reply::new(250, "2.1.5", "Recipient ok")), TRANSACTION).await;
    assert_eq!(replies[3], "451 4.3.0 Local error in processing; try again later");
    assert_eq!(replies[4], "503 5.5.1 Send RCPT first; no valid recipients", "{replies:?}");
    // An acceptance with a failure code gets the standard reply.
    let (replies, _) = session(Stage::Mail, Decision::AcceptWith(Reply::new(550, "5.7.1", "no")), TRANSACTION).await;
    assert_eq!(replies[2], "250 2.1.0 Sender ok");
}

#[tokio::test]
async fn one_state_per_session_sees_every_hook_and_reset() {
    let commands = [
        "EHLO client.example\r\n",
        "MAIL FROM:<a@client.example>\r\n",
        "RCPT TO:<r@test.example>\r\n",
        "RCPT TO:<s@test.example>\r\n",
        "RSET\r\n",
    ];
    let mut commands = commands.to_vec();
    commands.extend_from_slice(&TRANSACTION[1..]);
    let (replies, trail) = session(Stage::Data, Decision::Accept, &commands).await;
    assert!(replies[9].starts_with("250 2.0.0 Ok: queued as "), "{replies:?}");
    assert_eq!(
        trail,
        [
            "connect",
            "ehlo",
            "reset Helo",
            "mail",
            "rcpt 0",
            "rcpt 1",
            "reset Rset",
            "mail",
            "rcpt 0",
            "data",
            "reset Data",
            "closed"
        ]
    );
}
