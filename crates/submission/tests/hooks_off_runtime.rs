//! The submission hooks never wait on the accounts database (SQLite) on a
//! runtime thread: MAIL reads the login's addresses and limits on a
//! blocking thread, once per transaction, and RCPT and DATA use what it
//! read. Shown on a one-thread runtime while the accounts store is busy
//! (another writer holds SQLite's write lock, a write of this process
//! waits for it): a timer task on that runtime keeps ticking while MAIL
//! waits (with the read on the runtime thread it could not tick at all),
//! and MAIL is answered once the store is free.

use port25_accounts::gate::{Gate, GateConfig};
use port25_accounts::Accounts;
use port25_engine::address::{parse_forward_path, parse_reverse_path};
use port25_engine::command::MailParams;
use port25_engine::{Decision, Envelope, Hooks, Reset, SessionInfo};
use port25_mx::{MxConfig, MxPolicy};
use port25_submission::{Submission, SubmissionConfig, SubmissionPolicy};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn policy(dir: &std::path::Path) -> (SubmissionPolicy, Arc<Accounts>) {
    let accounts = Arc::new(Accounts::open(&dir.join("accounts.db"), None).unwrap());
    accounts.add("alice@example.net", "correct horse", &[]).unwrap();
    let (spool, _) = port25_spool::Spool::open(
        &dir.join("spool"),
        tokio::sync::mpsc::unbounded_channel().0,
        port25_spool::Gauges::default(),
    )
    .unwrap();
    let mx_config = MxConfig {
        domains: vec!["example.net".into()],
        recipients: Some(vec!["bob@example.net".into()]),
        recipient_delimiter: None,
        catch_all: vec![],
        plain_names_only: false,
    };
    let mx = Arc::new(MxPolicy::new(&mx_config, spool));
    let gate = Arc::new(Gate::new(accounts.clone(), GateConfig::default()));
    (SubmissionPolicy::new(Submission::new(SubmissionConfig::default(), gate, mx, "mail.example.net"), true), accounts)
}

#[test]
fn mail_reads_the_accounts_database_off_the_runtime_thread() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (policy, accounts) = rt.block_on(async { policy(dir.path()) });
    let mut info = SessionInfo::new(
        "S1".into(),
        "submission".into(),
        "192.0.2.7:40000".parse().unwrap(),
        "192.0.2.1:587".parse().unwrap(),
    );
    info.helo = Some("laptop".into());
    info.auth = Some("alice@example.net".into());
    let from = parse_reverse_path("alice@example.net").unwrap();

    // Another writer (here a second connection; in production `port25
    // users import` in another process) holds the write lock for 1.5 s;
    // meanwhile a write of this process (a dashboard change, a login's
    // usage record) waits for it inside the accounts store's mutex, which
    // every read of this process then waits for too.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let db = dir.path().join("accounts.db");
    let holder = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS hold (x); INSERT INTO hold VALUES (1);").unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        c.execute_batch("COMMIT;").unwrap();
    });
    locked_rx.recv().unwrap();
    let writer = std::thread::spawn(move || accounts.set_limits("alice@example.net", &Default::default()));
    std::thread::sleep(Duration::from_millis(300));

    let ticks = Arc::new(AtomicU32::new(0));
    let (decision, ticked) = rt.block_on(async {
        let t = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                t.fetch_add(1, Ordering::SeqCst);
            }
        });
        let mut state = Default::default();
        let started = std::time::Instant::now();
        let decision = policy.mail(&info, &mut state, &from, &MailParams::default()).await;
        let waited = started.elapsed();
        ticker.abort();
        assert!(
            waited >= Duration::from_millis(500),
            "MAIL waited for the accounts store ({waited:?}): the test holds it"
        );
        // The transaction's sender was resolved once: RCPT uses it even
        // with the database gone.
        let envelope = Envelope { from: from.clone(), params: MailParams::default(), rcpts: vec![] };
        let rcpt = policy.rcpt(&info, &mut state, &envelope, &parse_forward_path("bob@example.net").unwrap()).await;
        assert_eq!(rcpt, Decision::Accept);
        policy.reset(&info, &mut state, Reset::Rset);
        (decision, ticks.load(Ordering::SeqCst))
    });
    holder.join().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(decision, Decision::Accept);
    assert!(
        ticked >= 10,
        "the runtime thread was blocked while MAIL read SQLite: the timer ticked {ticked} times while MAIL waited"
    );
}
