//! The PostgreSQL backend's window counts against a real PostgreSQL
//! (Debian postgresql, initdb as `nobody` in a temporary directory, as
//! crates/port25's directory tests do): the count row a reservation reads
//! instead of counting its window's entries must equal count(*) after
//! every operation that adds or removes entries (reserve, release,
//! expiry seen by a reservation, the sweep), including a database whose
//! windows were filled before the counts existed.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

mod common;

use port25_shared::{LockRules, Postgres, PostgresConfig, Scope, SharedState, Slot, Window};

fn pg_bin(name: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin").join(name)).filter(|p| p.exists()).collect())
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("{name} is not installed (/usr/lib/postgresql/*/bin): apt-get install postgresql"))
}

/// PostgreSQL refuses to run as root: every server command runs as nobody.
fn as_nobody(program: &PathBuf, args: &[&str]) {
    let out = Command::new("runuser").args(["-u", "nobody", "--"]).arg(program).args(args).output().unwrap();
    assert!(out.status.success(), "{} {args:?}: {}", program.display(), String::from_utf8_lossy(&out.stderr));
}

struct Server {
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").display().to_string();
        let _ = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(pg_bin("pg_ctl"))
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    assert!(Command::new("chown").args(["nobody", &d]).status().unwrap().success());
    let data = format!("{d}/data");
    as_nobody(&pg_bin("initdb"), &["-D", &data, "--auth-local=trust", "-U", "nobody"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let opts = format!("-p {port} -k {d} -c listen_addresses=''");
    let server = Server { dir, port };
    as_nobody(&pg_bin("pg_ctl"), &["-D", &data, "-o", &opts, "-l", &format!("{d}/pg.log"), "-w", "start"]);
    server
}

fn connection(s: &Server) -> String {
    format!("host={} port={} user=nobody dbname=postgres", s.dir.path().display(), s.port)
}

async fn node(s: &Server) -> Arc<Postgres> {
    let c = PostgresConfig {
        connection: connection(s),
        password: None,
        pool: 2,
        timeout: Duration::from_secs(5),
        prefix: "t:".into(),
    };
    let pg = Postgres::new(&c).unwrap();
    pg.init().await.unwrap();
    pg
}

async fn client(s: &Server) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&connection(s), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// Every window key's count row (0 when absent) next to count(*) of its
/// entries.
async fn counts(db: &tokio_postgres::Client) -> Vec<(String, i64, i64)> {
    db.query(
        "SELECT w.key, coalesce((SELECT n FROM port25_shared_key k WHERE k.key = w.key), 0)::bigint, \
         (SELECT count(*) FROM port25_shared_entry e WHERE e.key = w.key) \
         FROM (SELECT key FROM port25_shared_entry UNION SELECT key FROM port25_shared_key \
               WHERE expires = 'infinity') w WHERE w.key LIKE 't:w:%' ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

async fn assert_exact(db: &tokio_postgres::Client, when: &str) -> Vec<(String, i64, i64)> {
    let all = counts(db).await;
    for (key, n, entries) in &all {
        assert_eq!(n, entries, "{when}: {key}'s count row says {n}, its window holds {entries}");
    }
    all
}

fn hour(key: &str, max: u32) -> Window {
    Window { key: key.into(), span: Duration::from_secs(3600), max }
}

#[tokio::test]
async fn window_counts_equal_the_entries_after_every_operation() {
    let s = start();
    let (a, b) = (node(&s).await, node(&s).await);
    let db = client(&s).await;
    let w = vec![hour("mph:alice", 3), hour("rph:alice", 100)];

    assert_eq!(a.reserve(&w, Some("a1")).await.unwrap(), Ok(()));
    assert_eq!(b.reserve(&w, Some("b1")).await.unwrap(), Ok(()));
    assert_eq!(a.reserve(&w, Some("a2")).await.unwrap(), Ok(()));
    // The same member again (a retried command) counts once.
    assert!(a.reserve(&w, Some("a2")).await.unwrap().is_err(), "mph:alice is full");
    assert_eq!(
        assert_exact(&db, "after three reservations").await,
        vec![("t:w:mph:alice".into(), 3, 3), ("t:w:rph:alice".into(), 3, 3)]
    );
    let full = b.reserve(&w, Some("b2")).await.unwrap().unwrap_err();
    assert_eq!(full.index, 0);
    assert!(full.retry_after > Duration::from_secs(3500), "the oldest entry's time is still read: {full:?}");
    assert!(b.reserve(&w, None).await.unwrap().is_err(), "a check sees the full window");

    a.release(&["mph:alice".into(), "rph:alice".into()], "a2").await.unwrap();
    // Giving back what is not there changes nothing.
    a.release(&["mph:alice".into()], "nobody").await.unwrap();
    assert_exact(&db, "after a release").await;
    assert_eq!(b.reserve(&w, Some("b2")).await.unwrap(), Ok(()), "the released place is free again");
    for m in ["a1", "b1", "b2"] {
        a.release(&["mph:alice".into(), "rph:alice".into()], m).await.unwrap();
    }
    assert_eq!(assert_exact(&db, "everything given back").await, vec![], "an empty window keeps no count row");

    // A database filled before the counts existed: entries, no count row.
    // The first reservation counts them once and goes on from there.
    for i in 0..5 {
        db.execute(
            "INSERT INTO port25_shared_entry VALUES ('t:w:rph:bob', $1, now(), now() + interval '1 hour')",
            &[&format!("old{i}")],
        )
        .await
        .unwrap();
    }
    let bob = vec![hour("rph:bob", 6)];
    assert_eq!(a.reserve(&bob, Some("new1")).await.unwrap(), Ok(()));
    assert_eq!(assert_exact(&db, "counted from old entries").await, vec![("t:w:rph:bob".into(), 6, 6)]);
    assert!(b.reserve(&bob, Some("new2")).await.unwrap().is_err(), "six of six");

    // A node of the version before gives an entry back with a plain DELETE:
    // the count is one too high until the window is next empty.
    db.execute("DELETE FROM port25_shared_entry WHERE key = 't:w:rph:bob' AND member = 'old0'", &[]).await.unwrap();
    for m in ["old1", "old2", "old3", "old4", "new1"] {
        a.release(&["rph:bob".into()], m).await.unwrap();
    }
    assert_eq!(assert_exact(&db, "bob's window emptied").await, vec![]);
}

#[tokio::test]
async fn expired_entries_leave_the_count_when_reserving_and_when_swept() {
    let s = start();
    let pg = node(&s).await;
    let db = client(&s).await;
    let short = |key: &str, max| Window { key: key.into(), span: Duration::from_millis(300), max };

    for m in ["m1", "m2", "m3"] {
        assert_eq!(pg.reserve(&[short("rph:carol", 3), short("rph:dave", 10)], Some(m)).await.unwrap(), Ok(()));
    }
    assert!(pg.reserve(&[short("rph:carol", 3)], None).await.unwrap().is_err(), "full for now");
    // Past the span on the database's clock.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // carol's reservation deletes her expired entries itself.
    assert_eq!(pg.reserve(&[short("rph:carol", 3)], Some("m4")).await.unwrap(), Ok(()));
    assert_eq!(
        assert_exact(&db, "after carol's reservation").await,
        vec![("t:w:rph:carol".into(), 1, 1), ("t:w:rph:dave".into(), 3, 3)]
    );
    // dave's are left to the sweep, which keeps the counts too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pg.sweep().await.unwrap(), 4, "dave's three and carol's one");
    assert_eq!(assert_exact(&db, "after the sweep").await, vec![]);
    let left: i64 = db.query_one("SELECT count(*) FROM port25_shared_key", &[]).await.unwrap().get(0);
    assert_eq!(left, 0, "no count row outlives its window's entries");
}

#[tokio::test]
async fn locks_are_read_with_the_outcome() {
    let s = start();
    common::locks_are_read_with_the_outcome(&*node(&s).await, &*node(&s).await).await;
}

/// AUTH's one call: the login's failures forgotten, the address one of its
/// devices, and a session slot taken as enter_session would.
#[tokio::test]
async fn a_success_and_its_session_slot_in_one_call() {
    let s = start();
    let (a, b) = (node(&s).await, node(&s).await);
    let rules = LockRules {
        window: Duration::from_secs(600),
        address_lock_after: 100,
        login_lock_after: 3,
        lockout: Duration::from_secs(300),
        known_for: Duration::from_secs(3600),
    };
    let slot = |session| Slot { login: "alice", session, max: 1, ttl: Duration::from_secs(3600) };
    for _ in 0..2 {
        assert!(a.failed("203.0.113.1", Some("alice"), rules).await.unwrap().is_empty());
    }
    assert!(a.succeeded_entering("198.51.100.7", "alice", rules, slot("a:1")).await.unwrap());
    for _ in 0..2 {
        assert!(b.failed("203.0.113.2", Some("alice"), rules).await.unwrap().is_empty(), "the first two forgotten");
    }
    assert_eq!(b.failed("203.0.113.2", Some("alice"), rules).await.unwrap(), vec![(Scope::Login, 3)]);
    assert_eq!(a.locked("198.51.100.7", Some("alice")).await.unwrap(), None, "the known device is spared");
    assert!(!b.succeeded_entering("198.51.100.7", "alice", rules, slot("b:1")).await.unwrap(), "one of one");
    a.leave_session("alice", "a:1").await.unwrap();
    assert!(b.succeeded_entering("198.51.100.7", "alice", rules, slot("b:1")).await.unwrap());
}
