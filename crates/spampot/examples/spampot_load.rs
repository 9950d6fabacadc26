//! Load generator for the SpamPots benchmarks (not a test):
//! bench/spampot-socks5.sh and bench/spampot-vs-honeypots.sh.
//!
//! `socks5` and `smtp` run the same spammer: `CLIENTS` sessions, each
//! says EHLO once and then sends messages of `MSG_BYTES` to `RCPTS`
//! recipients back to back, as fast as the server answers 250 after DATA,
//! for `SECONDS`. The sessions are opened first, `CONNECT_AT_ONCE` at a
//! time, and the clock starts when all are open: the figure is the rate
//! that `CLIENTS` open sessions sustain, not how fast a server accepts a
//! burst of connections (behind a listen backlog of 5, as Python's smtpd
//! has, the rest of a burst waits for the kernel's retries, a second and
//! more later). `socks5` first tunnels through a SOCKS5 proxy bait to
//! "mxN.example:25"; `smtp` speaks SMTP directly (an open-relay bait, or
//! any other SMTP honeypot), so one client measures both paths and every
//! server it is pointed at. `idle` opens SOCKS5 tunnels, reads the banner
//! and holds them.
//!
//! Usage: spampot_load socks5 ADDR CLIENTS SECONDS MSG_BYTES RCPTS
//!        spampot_load smtp   ADDR CLIENTS SECONDS MSG_BYTES RCPTS
//!        spampot_load idle   ADDR CLIENTS HOLD_SECONDS
//! Environment (socks5, smtp):
//!   UNIQUE=1         every body different, across runs too (an `X-Seq:`
//!                    first line); 0: one campaign
//!   PIPELINING=auto  MAIL, the RCPTs and DATA in one write when the EHLO
//!                    reply offers PIPELINING (RFC 2920); `on`: always;
//!                    `off`: one command, one reply (lock-step)
//!   MSGS_PER_CONN=0  messages before QUIT and a new connection (0: no limit;
//!                    reconnections happen inside the measured time)
//!   CONNECT_AT_ONCE=4 sessions being opened at the same time
//!   REPLY_TIMEOUT=30 seconds to wait for a session or a reply before the
//!                    client fails
//!
//! Every body ends with the line `BODY_END` (below), so a bench script can
//! check that a store holds whole messages.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};

type Conn = BufReader<TcpStream>;

/// The last line of every message body.
const BODY_END: &str = "End of bench message.";

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Socks5,
    Smtp,
}

#[derive(Clone, Copy, PartialEq)]
enum Pipelining {
    Auto,
    On,
    Off,
}

/// What every sender of one run shares.
struct Run {
    addr: String,
    transport: Transport,
    rcpts: usize,
    unique: bool,
    pipelining: Pipelining,
    per_conn: u64,
    reply_timeout: Duration,
    body: Vec<u8>,
    /// Tells this run's bodies from earlier runs' (`X-Seq: <tag>-<client>-<n>`).
    tag: u128,
    sent: AtomicU64,
    connections: AtomicU64,
    pipelined: AtomicU64,
}

async fn tunnel(addr: &str, n: usize) -> std::io::Result<Conn> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"\x05\x01\x00").await?;
    let mut two = [0u8; 2];
    s.read_exact(&mut two).await?;
    let host = format!("mx{}.example", n % 1000);
    let mut req = vec![5, 1, 0, 3, host.len() as u8];
    req.extend_from_slice(host.as_bytes());
    req.extend_from_slice(&25u16.to_be_bytes());
    s.write_all(&req).await?;
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).await?;
    if reply[1] != 0 {
        return Err(std::io::Error::other("SOCKS5 refused"));
    }
    let mut c = BufReader::new(s);
    expect(&mut c, 1, "220").await?;
    Ok(c)
}

/// Reads one complete (possibly multi-line) reply; returns its lines.
async fn reply(c: &mut Conn) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if c.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("connection closed after {lines:?}"),
            ));
        }
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if last {
            return Ok(lines);
        }
    }
}

/// Reads `n` complete replies; fails unless each starts with `code`.
async fn expect(c: &mut Conn, n: usize, code: &str) -> std::io::Result<()> {
    for _ in 0..n {
        let lines = reply(c).await?;
        if !lines[0].starts_with(code) {
            return Err(std::io::Error::other(format!("expected {code}, got {lines:?}")));
        }
    }
    Ok(())
}

/// `expect` bounded by the run's reply timeout, so a stuck server ends the
/// run instead of hanging it.
async fn expect_in(run: &Run, c: &mut Conn, n: usize, code: &str) -> std::io::Result<()> {
    match tokio::time::timeout(run.reply_timeout, expect(c, n, code)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no {code} reply in {:?}", run.reply_timeout),
        )),
    }
}

fn body(size: usize) -> Vec<u8> {
    let mut b = b"From: bench@spam.example\r\nSubject: bench\r\n\r\n".to_vec();
    while b.len() + 80 + BODY_END.len() < size {
        b.extend_from_slice(b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n");
    }
    b.extend_from_slice(BODY_END.as_bytes());
    b.extend_from_slice(b"\r\n.\r\n");
    b
}

/// Opens a session (the transport, the banner, EHLO) within the reply
/// timeout. Returns it and whether to pipeline on it.
async fn open(run: &Run, n: usize) -> std::io::Result<(Conn, bool)> {
    let session = async {
        let mut c = match run.transport {
            Transport::Socks5 => tunnel(&run.addr, n).await?,
            Transport::Smtp => {
                let mut c = BufReader::new(TcpStream::connect(&run.addr).await?);
                expect(&mut c, 1, "220").await?;
                c
            }
        };
        // Each write is a whole command or message: Nagle would only hold
        // the last one back until the server's (delayed) ACK.
        c.get_mut().set_nodelay(true)?;
        c.get_mut().write_all(b"EHLO bench.example\r\n").await?;
        let lines = reply(&mut c).await?;
        if !lines[0].starts_with("250") {
            return Err(std::io::Error::other(format!("EHLO refused: {lines:?}")));
        }
        Ok((c, lines))
    };
    let (c, lines) = match tokio::time::timeout(run.reply_timeout, session).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("session not open in {:?}", run.reply_timeout),
            ))
        }
    };
    run.connections.fetch_add(1, Ordering::Relaxed);
    let offered = lines.iter().any(|l| l.get(4..).is_some_and(|k| k.trim_end().eq_ignore_ascii_case("PIPELINING")));
    let pipeline = match run.pipelining {
        Pipelining::Auto => offered,
        Pipelining::On => true,
        Pipelining::Off => false,
    };
    if pipeline {
        run.pipelined.fetch_add(1, Ordering::Relaxed);
    }
    Ok((c, pipeline))
}

/// With `unique`, each message gets its own first line, so every body is
/// new to the store (the worst case for port25: one zstd compression and
/// one file per message); without, all bodies are one campaign.
///
/// The first session is opened under `gate` and reported on `ready`; the
/// messages start when `go` gives the end of the measured time.
async fn sender(
    run: Arc<Run>,
    n: usize,
    gate: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<()>,
    mut go: watch::Receiver<Option<Instant>>,
) -> std::io::Result<()> {
    let first = {
        let _turn = gate.acquire().await.expect("the gate is never closed");
        let first = open(&run, n).await;
        let _ = ready.send(());
        first?
    };
    let until = go
        .wait_for(Option::is_some)
        .await
        .map_err(|_| std::io::Error::other("the run was called off"))?
        .expect("waited for Some");
    let mail = b"MAIL FROM:<bench@spam.example>\r\n".to_vec();
    let rcpts: Vec<Vec<u8>> =
        (0..run.rcpts).map(|r| format!("RCPT TO:<victim{r}@example.com>\r\n").into_bytes()).collect();
    let envelope: Vec<u8> = [mail.clone(), rcpts.concat(), b"DATA\r\n".to_vec()].concat();
    let mut session = Some(first);
    let mut i = 0u64;
    let mut message = Vec::with_capacity(run.body.len() + 32);
    while Instant::now() < until {
        let (mut c, pipeline) = match session.take() {
            Some(s) => s,
            None => open(&run, n).await?,
        };
        let mut here = 0;
        while Instant::now() < until && (run.per_conn == 0 || here < run.per_conn) {
            if pipeline {
                c.get_mut().write_all(&envelope).await?;
                expect_in(&run, &mut c, 1 + run.rcpts, "250").await?;
            } else {
                for command in std::iter::once(&mail).chain(&rcpts) {
                    c.get_mut().write_all(command).await?;
                    expect_in(&run, &mut c, 1, "250").await?;
                }
                c.get_mut().write_all(b"DATA\r\n").await?;
            }
            expect_in(&run, &mut c, 1, "354").await?;
            message.clear();
            if run.unique {
                i += 1;
                message.extend_from_slice(format!("X-Seq: {}-{n}-{i}\r\n", run.tag).as_bytes());
            }
            message.extend_from_slice(&run.body);
            c.get_mut().write_all(&message).await?;
            expect_in(&run, &mut c, 1, "250").await?;
            run.sent.fetch_add(1, Ordering::Relaxed);
            here += 1;
        }
        c.get_mut().write_all(b"QUIT\r\n").await?;
    }
    Ok(())
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v}: not a valid value")))
        .unwrap_or(default)
}

async fn load(transport: Transport, addr: String, clients: usize, seconds: u64, size: usize, rcpts: usize) {
    let pipelining = match std::env::var("PIPELINING").as_deref().unwrap_or("auto") {
        "auto" => Pipelining::Auto,
        "on" => Pipelining::On,
        "off" => Pipelining::Off,
        other => panic!("PIPELINING={other}: auto, on or off"),
    };
    let run = Arc::new(Run {
        addr,
        transport,
        rcpts,
        unique: env::<u8>("UNIQUE", 1) != 0,
        pipelining,
        per_conn: env("MSGS_PER_CONN", 0),
        reply_timeout: Duration::from_secs(env("REPLY_TIMEOUT", 30)),
        body: body(size),
        tag: port25_time::unix_nanos(),
        sent: AtomicU64::new(0),
        connections: AtomicU64::new(0),
        pipelined: AtomicU64::new(0),
    });
    let gate = Arc::new(Semaphore::new(env("CONNECT_AT_ONCE", 4usize).max(1)));
    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    let (go, go_rx) = watch::channel(None);
    let opening = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|n| tokio::spawn(sender(run.clone(), n, gate.clone(), ready_tx.clone(), go_rx.clone())))
        .collect();
    drop(ready_tx);
    // Every client reports once (a client that panicked reports by
    // dropping its sender).
    for _ in 0..clients {
        if ready.recv().await.is_none() {
            break;
        }
    }
    let open_secs = opening.elapsed().as_secs_f64();
    let start = Instant::now();
    go.send_replace(Some(start + Duration::from_secs(seconds)));
    let mut errors = 0;
    for t in tasks {
        let failure = match t.await {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        errors += 1;
        // The first few say what went wrong; the count says how often.
        if errors <= 5 {
            eprintln!("client error: {failure}");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = run.sent.load(Ordering::Relaxed);
    println!(
        "messages={n} seconds={secs:.2} rate={:.0} clients={clients} size={size} rcpts={rcpts} unique_bodies={} connections={} pipelined_sessions={} sessions_open_seconds={open_secs:.2} errors={errors}",
        n as f64 / secs,
        run.unique,
        run.connections.load(Ordering::Relaxed),
        run.pipelined.load(Ordering::Relaxed),
    );
    // A bench script under `set -e` stops here instead of printing a figure
    // for a run in which clients failed.
    if errors > 0 || n == 0 {
        std::process::exit(1);
    }
}

async fn idle(addr: String, clients: usize, hold: u64) {
    // Opened 500 at a time: each tunnel waits for its banner.
    let gate = Arc::new(Semaphore::new(500));
    let tasks: Vec<_> = (0..clients)
        .map(|n| {
            let (addr, gate) = (addr.clone(), gate.clone());
            tokio::spawn(async move {
                let _p = gate.acquire_owned().await.unwrap();
                tunnel(&addr, n).await
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(clients);
    let mut failed = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(c)) => conns.push(c),
            _ => failed += 1,
        }
    }
    println!("idle_open={} failed={failed}", conns.len());
    tokio::time::sleep(Duration::from_secs(hold)).await;
    // Every tunnel must still answer.
    let mut alive = 0;
    for c in conns.iter_mut() {
        if c.get_mut().write_all(b"NOOP\r\n").await.is_ok() && expect(c, 1, "250").await.is_ok() {
            alive += 1;
        }
    }
    println!("idle_alive={alive}");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| {
        args.get(i)
            .cloned()
            .unwrap_or_else(|| panic!("usage: see the header of crates/spampot/examples/spampot_load.rs"))
    };
    let num = |i: usize| arg(i).parse::<u64>().unwrap_or_else(|_| panic!("argument {i} ({}) is not a number", arg(i)));
    let (addr, clients) = (arg(2), num(3) as usize);
    match arg(1).as_str() {
        "socks5" => load(Transport::Socks5, addr, clients, num(4), num(5) as usize, num(6) as usize).await,
        "smtp" => load(Transport::Smtp, addr, clients, num(4), num(5) as usize, num(6) as usize).await,
        "idle" => idle(addr, clients, num(4)).await,
        other => panic!("unknown mode {other}: socks5, smtp or idle"),
    }
}
