//! The abuse desk's memory against the number of logins and of messages
//! (bench/abuse-memory.sh): one session per message, each login logging
//! in and submitting to two recipients through the desk's API as the
//! submission policy calls it, the session's index records as the event
//! layer sends them, a tick (what the server does every second) every
//! 10,000 messages. Volume rules high enough that no login is held (held
//! mail is bounded by the queue, not by the desk). Prints the process's
//! resident memory (VmRSS, VmHWM from /proc/self/status) every `N / 10`
//! messages, then the index's size.
//!
//! Usage: desk_memory DATA_DIR LOGINS MESSAGES

use port25_abuse::index::{now_ms, Record};
use port25_abuse::signals::Rules;
use port25_abuse::{Config, Desk};
use std::time::{Duration, Instant};

fn status(key: &str) -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_owned()).unwrap_or_default()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("DATA_DIR"));
    let logins: u64 = args.next().expect("LOGINS").parse().expect("LOGINS is a number");
    let n: u64 = args.next().expect("MESSAGES").parse().expect("MESSAGES is a number");
    let rules = Rules { recipients_per_day: u64::MAX, messages_per_day: u64::MAX, ..Rules::default() };
    let desk = Desk::open(Config {
        data_dir: dir.clone(),
        hostname: "bench.example".into(),
        retention: Duration::from_secs(90 * 86400),
        rules,
        lock_text: "locked".into(),
        notify: None,
        mailbox: None,
        enrich: None,
        reports_per_hour: 100,
    })
    .expect("open the desk");
    let index = desk.index().clone();
    let start = Instant::now();
    println!("logins {logins} messages {n}: start VmRSS {}", status("VmRSS:"));
    for i in 0..n {
        let login = format!("user{}@example.net", i % logins);
        let session = format!("{:016X}", i);
        let ip: std::net::IpAddr =
            format!("100.{}.{}.{}", 64 + (i % 64), (i >> 6) % 256, (i >> 14) % 256).parse().unwrap();
        index.send(Record::Session {
            id: session.clone(),
            listener: "submission".into(),
            ip: ip.to_string(),
            port: (1024 + i % 60_000) as u16,
            local: "192.0.2.1:587".into(),
            proxy: None,
            time_ms: now_ms(),
            tls: None,
            login: None,
            end_ms: None,
        });
        desk.logged_in(&session, &login, ip, Some("TLSv1_3"));
        let qid = format!("{session}A");
        let rcpts = [format!("r{}@remote.example", i % 100_000), format!("s{}@other.example", i % 77_777)];
        desk.submitted(&session, &qid, &login, Some(&format!("<{i}@laptop.example>")), &rcpts);
        for r in &rcpts {
            index.send(Record::Rcpt {
                id: qid.clone(),
                rcpt: r.clone(),
                outcome: "delivered",
                detail: "mx.remote.example 250 ok".into(),
                time_ms: now_ms(),
            });
        }
        index.send(Record::SessionEnd { id: session, time_ms: now_ms() });
        if i % 10_000 == 9_999 {
            // The writer keeps up (nothing dropped), as the server's does at
            // submission rates.
            index.sync(Duration::from_secs(600));
            desk.tick();
        }
        if (i + 1) % (n / 10).max(1) == 0 {
            println!(
                "{:>9} messages {:>6.0} s  VmRSS {}  VmHWM {}",
                i + 1,
                start.elapsed().as_secs_f64(),
                status("VmRSS:"),
                status("VmHWM:")
            );
        }
    }
    index.sync(Duration::from_secs(600));
    println!(
        "done: {n} messages from {logins} logins in {:.0} s; VmRSS {} VmHWM {}; dropped {}",
        start.elapsed().as_secs_f64(),
        status("VmRSS:"),
        status("VmHWM:"),
        index.dropped()
    );
}
