//! Load generator for bench/spampot-socks5.sh (not a test): clients that
//! tunnel through the sensor's SOCKS5 bait to "mxN.example:25" and either
//! send messages as fast as the sensor acknowledges them (`load`), or open
//! the tunnel, read the banner and stay idle (`idle`).
//!
//! Usage: [UNIQUE=0] socks5_load load ADDR CLIENTS SECONDS MSG_BYTES RCPTS
//!        socks5_load idle ADDR CLIENTS HOLD_SECONDS

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Conn = BufReader<TcpStream>;

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

/// Reads `n` complete replies; fails unless each starts with `code`.
async fn expect(c: &mut Conn, n: usize, code: &str) -> std::io::Result<()> {
    let mut line = String::new();
    let mut done = 0;
    while done < n {
        line.clear();
        if c.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        if !line.starts_with(code) {
            return Err(std::io::Error::other(format!("expected {code}, got {line:?}")));
        }
        done += 1;
    }
    Ok(())
}

fn body(size: usize) -> Vec<u8> {
    let mut b = b"From: bench@spam.example\r\nSubject: bench\r\n\r\n".to_vec();
    while b.len() + 80 < size {
        b.extend_from_slice(b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n");
    }
    b.extend_from_slice(b".\r\n");
    b
}

/// With `unique`, each message gets its own header line, so every body is
/// new to the store (the worst case: one zstd compression and one fsynced
/// file per message); without, all bodies are one campaign (deduplicated).
async fn sender(addr: String, n: usize, until: Instant, size: usize, rcpts: usize, unique: bool, sent: Arc<AtomicU64>) -> std::io::Result<()> {
    let mut c = tunnel(&addr, n).await?;
    c.get_mut().write_all(b"EHLO bench.example\r\n").await?;
    expect(&mut c, 1, "250").await?;
    let mut envelope = b"MAIL FROM:<bench@spam.example>\r\n".to_vec();
    for r in 0..rcpts {
        envelope.extend_from_slice(format!("RCPT TO:<victim{r}@example.com>\r\n").as_bytes());
    }
    envelope.extend_from_slice(b"DATA\r\n");
    let body = body(size);
    let mut i = 0u64;
    while Instant::now() < until {
        c.get_mut().write_all(&envelope).await?;
        expect(&mut c, 1 + rcpts, "250").await?;
        expect(&mut c, 1, "354").await?;
        if unique {
            i += 1;
            c.get_mut().write_all(format!("X-Seq: {n}-{i}\r\n").as_bytes()).await?;
        }
        c.get_mut().write_all(&body).await?;
        expect(&mut c, 1, "250").await?;
        sent.fetch_add(1, Ordering::Relaxed);
    }
    c.get_mut().write_all(b"QUIT\r\n").await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| panic!("usage: see the file's header"));
    let addr = arg(2);
    let clients: usize = arg(3).parse().unwrap();
    match arg(1).as_str() {
        "load" => {
            let seconds: u64 = arg(4).parse().unwrap();
            let size: usize = arg(5).parse().unwrap();
            let rcpts: usize = arg(6).parse().unwrap();
            let unique = std::env::var("UNIQUE").map(|v| v != "0").unwrap_or(true);
            let sent = Arc::new(AtomicU64::new(0));
            let start = Instant::now();
            let until = start + Duration::from_secs(seconds);
            let tasks: Vec<_> = (0..clients).map(|n| tokio::spawn(sender(addr.clone(), n, until, size, rcpts, unique, sent.clone()))).collect();
            let mut errors = 0;
            for t in tasks {
                if let Ok(Err(e)) = t.await {
                    errors += 1;
                    eprintln!("client error: {e}");
                }
            }
            let secs = start.elapsed().as_secs_f64();
            let n = sent.load(Ordering::Relaxed);
            println!(
                "messages={n} seconds={secs:.1} rate={:.0} clients={clients} size={size} rcpts={rcpts} unique_bodies={unique} errors={errors}",
                n as f64 / secs
            );
        }
        "idle" => {
            let hold: u64 = arg(4).parse().unwrap();
            let mut conns = Vec::with_capacity(clients);
            let mut failed = 0;
            for n in 0..clients {
                match tunnel(&addr, n).await {
                    Ok(c) => conns.push(c),
                    Err(_) => failed += 1,
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
        other => panic!("unknown mode {other}"),
    }
}
