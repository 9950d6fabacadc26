//! kill -9 while many sessions send and while delivery runs: every message
//! that got a 250 is delivered exactly once, and the spool holds nothing
//! corrupt.

use crate::harness::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sends messages with unique subjects until the server dies; returns the
/// subjects that were answered 250.
fn sender(addr: std::net::SocketAddr, tag: String, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut acked = Vec::new();
    let Ok(stream) = std::net::TcpStream::connect(addr) else {
        return acked;
    };
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut c = Client { stream: stream.try_clone().unwrap(), reader: std::io::BufReader::new(stream) };
    if !c.reply().starts_with("220") || code(&c.cmd("EHLO crash.example")) != 250 {
        return acked;
    }
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let subject = format!("{tag}-{n}");
        if code(&c.cmd("MAIL FROM:<s@remote.example>")) != 250 {
            break;
        }
        let rcpt = if n % 3 == 0 { "bob@example.net" } else { "alice@example.net" };
        if code(&c.cmd(&format!("RCPT TO:<{rcpt}>"))) != 250 {
            break;
        }
        if code(&c.cmd("DATA")) != 354 {
            break;
        }
        let body = format!("Subject: {subject}\r\n\r\n{}\r\n.\r\n", "line of text\r\n".repeat(20));
        if std::io::Write::write_all(&mut c.stream, body.as_bytes()).is_err() {
            break;
        }
        let r = c.reply();
        if r.starts_with("250") {
            acked.push(subject);
        } else {
            break;
        }
    }
    acked
}

fn subjects(mail: &[Vec<u8>]) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for m in mail {
        let text = String::from_utf8_lossy(m);
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .expect("every message has its subject")
            .trim()
            .to_owned();
        *seen.entry(subject).or_insert(0) += 1;
    }
    seen
}

#[test]
fn kill_9_under_load_loses_nothing_and_duplicates_nothing() {
    let mut s = Server::mx();
    let acked_all: Arc<Mutex<Vec<String>>> = Arc::default();
    for round in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..12)
            .map(|t| {
                let (addr, stop, acked) = (s.addr(), stop.clone(), acked_all.clone());
                std::thread::spawn(move || {
                    let got = sender(addr, format!("r{round}t{t}"), stop);
                    acked.lock().unwrap().extend(got);
                })
            })
            .collect();
        // Let load build up (and delivery start), then kill without warning.
        std::thread::sleep(Duration::from_millis(700 + 300 * round as u64));
        s.kill9();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        s.spawn();
    }
    let acked = acked_all.lock().unwrap().clone();
    assert!(acked.len() > 100, "the load should have produced many acknowledged messages, got {}", acked.len());

    // Wait until the spool is empty: every batch delivered and removed.
    let start = Instant::now();
    loop {
        let left = std::fs::read_dir(s.data().join("spool/batches")).unwrap().count();
        if left == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "spool not drained: {left} files left");
        std::thread::sleep(Duration::from_millis(100));
    }
    let seen = subjects(&s.all_mail());
    let missing: Vec<_> = acked.iter().filter(|a| !seen.contains_key(*a)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let dupes: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "delivered more than once: {dupes:?}");
    assert_eq!(std::fs::read_dir(s.data().join("spool/quarantine")).unwrap().count(), 0, "nothing corrupt");
    // No half-written message is visible: every file in new/ is whole.
    for m in s.all_mail() {
        assert!(m.ends_with(b"line of text\r\n\r\n"), "truncated message: {:?}", String::from_utf8_lossy(&m));
    }
    eprintln!("acknowledged {} messages over 3 kill -9 rounds; delivered {}", acked.len(), seen.len());
}
