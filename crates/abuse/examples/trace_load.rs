//! Fills a trace index with N synthetic messages for bench/trace.sh: one
//! session, one message and two recipients each, spread over `days` days
//! before now, client addresses from 100.64.0.0/10 (CGNAT: many sessions
//! per address, told apart by port). Prints, one per line, sample keys the
//! bench looks up: `mid <message-id>`, `qid <queue id>`, `client ip:port ms`.
//!
//! Usage: trace_load DB N [DAYS]

use port25_abuse::index::{self, Record};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = std::path::PathBuf::from(args.next().expect("DB path"));
    let n: u64 = args.next().expect("N").parse().expect("N is a number");
    let days: u64 = args.next().map(|d| d.parse().expect("DAYS")).unwrap_or(30);
    // WAL as the server's writer (lookups during the load never wait), no fsync.
    let mut c = index::open_bulk(&path).expect("open the index");
    // Into an empty index, the secondary indexes are built once at the end
    // (a sort) rather than row by row (random inserts into B-trees that
    // outgrow the page cache); the load time printed includes building them.
    let empty: i64 = c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)).unwrap();
    let secondary: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    if empty == 0 {
        for name in &secondary {
            c.execute_batch(&format!("DROP INDEX {name}")).unwrap();
        }
    }
    let span = days * 86_400_000;
    let start = index::now_ms() - span as i64;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rng = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let chunk = 200_000;
    let mut i = 0;
    while i < n {
        let tx = c.transaction().unwrap();
        for _ in 0..chunk.min(n - i) {
            let t = start + (i * span / n) as i64;
            let r = rng();
            let ip = format!("100.{}.{}.{}", 64 + (r % 64), (r >> 8) % 256, (r >> 16) % 256);
            let port = 1024 + (r >> 24) % 64_000;
            let session = format!("{:010X}{:05X}", t as u64 & 0xff_ffff_ffff, i & 0xf_ffff);
            let qid = format!("{session}A");
            let mid = format!("{:016x}.{i}@laptop.example", r);
            let login = format!("user{}@example.net", r % 50_000);
            let recs = [
                Record::Session {
                    id: session.clone(),
                    listener: "submission".into(),
                    ip: ip.clone(),
                    port: port as u16,
                    local: "192.0.2.1:587".into(),
                    proxy: None,
                    time_ms: t,
                    tls: None,
                    login: None,
                    end_ms: None,
                },
                Record::Login { session: session.clone(), login: login.clone() },
                Record::SessionEnd { id: session.clone(), time_ms: t + 900 },
                Record::Message {
                    id: qid.clone(),
                    session: session.clone(),
                    time_ms: t + 500,
                    message_id: Some(mid.clone()),
                    login: Some(login),
                    sender: Some("a@example.net".into()),
                    size: Some(2048),
                },
                Record::Rcpt {
                    id: qid.clone(),
                    rcpt: format!("r{}@remote.example", r % 1_000_000),
                    outcome: "delivered",
                    detail: "mx.remote.example 250 ok".into(),
                    time_ms: t + 2000,
                },
                Record::Rcpt {
                    id: qid.clone(),
                    rcpt: format!("s{}@other.example", r % 1_000_000),
                    outcome: "delivered",
                    detail: "mx.other.example 250 ok".into(),
                    time_ms: t + 2100,
                },
            ];
            for rec in &recs {
                index::write(&tx, rec).unwrap();
            }
            if i % (n / 20).max(1) == 7 {
                println!("mid <{mid}>");
                println!("qid {qid}");
                println!("client {ip}:{port} {t}");
            }
            i += 1;
        }
        tx.commit().unwrap();
        eprintln!("{i} messages");
    }
    if empty == 0 {
        let t = std::time::Instant::now();
        c.execute_batch(index::SCHEMA).unwrap();
        eprintln!("{} secondary indexes built in {:.1} s", secondary.len(), t.elapsed().as_secs_f64());
    }
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
}
