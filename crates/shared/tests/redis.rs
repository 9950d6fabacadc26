//! The Redis backend against a real redis-server (Debian redis-server 7)
//! started here in a temporary directory on a free port. Two handles on
//! one server stand for two nodes.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use port25_shared::{LockRules, OnUnreachable, Redis, RedisConfig, Scope, Shared, SharedState, Slot, Window};

struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir", dir.path().to_str().unwrap(), "--save", ""])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server is missing: apt-get install redis-server");
    // Killed on drop, a panic below included.
    let server = Server { child, port, _dir: dir };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server did not listen on {port}");
}

async fn node(port: u16) -> Redis {
    let c = RedisConfig {
        url: format!("redis://127.0.0.1:{port}/0"),
        pool: 2,
        timeout: Duration::from_millis(500),
        prefix: "t:".into(),
    };
    Redis::connect(&c).await.unwrap()
}

fn rules() -> LockRules {
    LockRules {
        window: Duration::from_secs(600),
        address_lock_after: 100,
        login_lock_after: 3,
        lockout: Duration::from_secs(300),
        known_for: Duration::from_secs(3600),
    }
}

#[tokio::test]
async fn a_lock_started_on_one_node_refuses_on_the_other() {
    let s = start();
    let (a, b) = (node(s.port).await, node(s.port).await);
    b.succeeded("198.51.100.7", "alice", rules()).await.unwrap();
    assert!(a.failed("203.0.113.1", Some("alice"), rules()).await.unwrap().is_empty());
    assert!(b.failed("203.0.113.2", Some("alice"), rules()).await.unwrap().is_empty());
    assert_eq!(a.failed("203.0.113.3", Some("alice"), rules()).await.unwrap(), vec![(Scope::Login, 3)]);
    let (scope, left) = b.locked("203.0.113.9", Some("alice")).await.unwrap().expect("locked on node b");
    assert_eq!(scope, Scope::Login);
    assert!(left > Duration::from_secs(290) && left <= Duration::from_secs(300), "{left:?}");
    assert_eq!(b.locked("198.51.100.7", Some("alice")).await.unwrap(), None, "alice's own device is spared");
    // Failures during the lock do not extend it; a success does not end it.
    assert!(b.failed("203.0.113.4", Some("alice"), rules()).await.unwrap().is_empty());
    b.succeeded("198.51.100.7", "alice", rules()).await.unwrap();
    assert!(a.locked("203.0.113.9", Some("alice")).await.unwrap().is_some());
    assert_eq!(a.locked("203.0.113.9", Some("bob")).await.unwrap(), None);
}

#[tokio::test]
async fn windows_hold_across_nodes_and_give_back_what_was_not_stored() {
    let s = start();
    let (a, b) = (node(s.port).await, node(s.port).await);
    let w = vec![
        Window { key: "mph:alice".into(), span: Duration::from_secs(3600), max: 3 },
        Window { key: "mpd:alice".into(), span: Duration::from_secs(86400), max: 0 },
    ];
    assert_eq!(a.reserve(&w, Some("a1")).await.unwrap(), Ok(()));
    assert_eq!(b.reserve(&w, Some("b1")).await.unwrap(), Ok(()));
    assert_eq!(a.reserve(&w, Some("a2")).await.unwrap(), Ok(()));
    let full = b.reserve(&w, Some("b2")).await.unwrap().unwrap_err();
    assert_eq!(full.index, 0);
    assert!(full.retry_after > Duration::from_secs(3590), "{full:?}");
    assert!(b.reserve(&w, None).await.unwrap().is_err(), "a check sees the full window");
    a.release(&["mph:alice".into()], "a2").await.unwrap();
    assert_eq!(b.reserve(&w, Some("b2")).await.unwrap(), Ok(()));
    // Reserving the same member twice counts once (a retried command).
    assert!(b.reserve(&w, Some("b2")).await.unwrap().is_err());
}

#[tokio::test]
async fn sessions_are_capped_across_nodes_and_usage_is_one_record_per_login() {
    let s = start();
    let (a, b) = (node(s.port).await, node(s.port).await);
    let ttl = Duration::from_secs(3600);
    assert!(a.enter_session("alice", "a:1", 2, ttl).await.unwrap());
    assert!(b.enter_session("alice", "b:1", 2, ttl).await.unwrap());
    assert!(!b.enter_session("alice", "b:2", 2, ttl).await.unwrap());
    assert!(a.enter_session("alice", "a:1", 2, ttl).await.unwrap(), "a session already counted");
    a.leave_session("alice", "a:1").await.unwrap();
    assert!(b.enter_session("alice", "b:2", 2, ttl).await.unwrap());

    a.record_use("alice@example.org", false, "192.0.2.1", 587, 1000).await.unwrap();
    b.record_use("alice@example.org", false, "192.0.2.2", 465, 2000).await.unwrap();
    b.record_use("bob@example.org", true, "192.0.2.3", 25, 1500).await.unwrap();
    let uses = a.usage().await.unwrap();
    assert_eq!(uses.len(), 2, "{uses:?}");
    assert_eq!(
        (uses[0].login.as_str(), uses[0].uses, uses[0].last_seen, uses[0].last_port),
        ("alice@example.org", 2, 2000, 465)
    );
    assert!(uses[1].legacy);
}

/// AUTH's one call: the login's failures forgotten, the address one of
/// its devices, and a session slot taken as enter_session would.
#[tokio::test]
async fn a_success_and_its_session_slot_in_one_call() {
    let s = start();
    let (a, b) = (node(s.port).await, node(s.port).await);
    let slot = |session| Slot { login: "alice", session, max: 2, ttl: Duration::from_secs(3600) };
    for _ in 0..2 {
        assert!(a.failed("203.0.113.1", Some("alice"), rules()).await.unwrap().is_empty());
    }
    assert!(a.succeeded_entering("198.51.100.7", "alice", rules(), slot("a:1")).await.unwrap());
    // The two failures were forgotten: two more do not lock, a third does.
    for _ in 0..2 {
        assert!(b.failed("203.0.113.2", Some("alice"), rules()).await.unwrap().is_empty());
    }
    assert_eq!(b.failed("203.0.113.2", Some("alice"), rules()).await.unwrap(), vec![(Scope::Login, 3)]);
    assert!(a.locked("203.0.113.9", Some("alice")).await.unwrap().is_some());
    assert_eq!(a.locked("198.51.100.7", Some("alice")).await.unwrap(), None, "the known device is spared");

    assert!(b.succeeded_entering("198.51.100.7", "alice", rules(), slot("b:1")).await.unwrap());
    assert!(!b.succeeded_entering("198.51.100.7", "alice", rules(), slot("b:2")).await.unwrap(), "two of two");
    assert!(a.succeeded_entering("198.51.100.7", "alice", rules(), slot("a:1")).await.unwrap(), "already counted");
    a.leave_session("alice", "a:1").await.unwrap();
    assert!(b.enter_session("alice", "b:2", 2, Duration::from_secs(3600)).await.unwrap(), "the left slot is free");
}

/// Scripts run by hash once loaded; a server that forgot them (restarted,
/// SCRIPT FLUSH) gets them again without an error reaching the caller.
#[tokio::test]
async fn scripts_forgotten_by_the_server_are_loaded_again() {
    use std::io::{Read, Write};
    let s = start();
    let r = node(s.port).await;
    let w = vec![Window { key: "rph:alice".into(), span: Duration::from_secs(3600), max: 2 }];
    assert_eq!(r.reserve(&w, Some("m1")).await.unwrap(), Ok(()));
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.write_all(b"SCRIPT FLUSH\r\n").unwrap();
    let mut reply = [0u8; 5];
    c.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+OK\r\n");
    assert_eq!(r.reserve(&w, Some("m2")).await.unwrap(), Ok(()));
    assert!(r.reserve(&w, Some("m3")).await.unwrap().is_err(), "both entries counted, before and after the flush");
}

/// Stopped Redis: the node either refuses (fail closed) or decides alone.
#[tokio::test]
async fn an_unreachable_store_fails_closed_or_falls_back() {
    let s = start();
    let r: Arc<dyn SharedState> = Arc::new(node(s.port).await);
    drop(s);
    let started = std::time::Instant::now();
    let answer = r.locked("192.0.2.1", Some("alice")).await;
    assert!(answer.is_err(), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "bounded by the timeout: {:?}", started.elapsed());
    let closed = Shared::new(r.clone(), OnUnreachable::FailClosed);
    assert!(closed.settle("locked", r.locked("192.0.2.1", None).await, None).is_err());
    let local = Shared::new(r.clone(), OnUnreachable::Local);
    assert_eq!(local.settle("locked", r.locked("192.0.2.1", None).await, None), Ok(None));
}

#[tokio::test]
async fn nothing_answers_on_a_port_without_redis() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r = node(port).await;
    assert!(r.enter_session("alice", "x", 1, Duration::from_secs(1)).await.is_err());
}

/// The node's CPU per store call (issue 16: the client's cost per
/// session), not a test of behaviour: run by hand with
/// `cargo test --release -p port25-shared --test redis -- --ignored --nocapture cpu_per_call`.
/// 20,000 RESERVE calls (four windows, as a recipient's reservation) at
/// 16 and 64 concurrent callers over the default pool of 4, on two worker
/// threads as on the bench machine; prints this process's CPU (user +
/// system, /proc/self/stat) and redis-server's per call.
#[test]
#[ignore = "a measurement, run by hand"]
fn cpu_per_call() {
    const CALLS: usize = 20_000;
    let s = start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for callers in [16usize, 64] {
        let r = Arc::new(rt.block_on(async {
            let c = RedisConfig {
                url: format!("redis://127.0.0.1:{}/0", s.port),
                pool: 4,
                timeout: Duration::from_secs(5),
                prefix: format!("cost{callers}:"),
            };
            Redis::connect(&c).await.unwrap()
        }));
        let windows = |i: usize| -> Vec<Window> {
            ["rph", "rpd", "mph", "mpd"]
                .iter()
                .map(|k| Window {
                    key: format!("{k}:login{}", i % 50),
                    span: Duration::from_secs(3600),
                    max: 10_000_000,
                })
                .collect()
        };
        // Warm up: the connections opened and the script loaded.
        rt.block_on(async {
            for i in 0..200 {
                r.reserve(&windows(i), Some(&format!("w{i}"))).await.unwrap().unwrap();
            }
        });
        let (cpu0, server0, wall0) =
            (cpu_ticks("self"), cpu_ticks(&s.child.id().to_string()), std::time::Instant::now());
        rt.block_on(async {
            let mut tasks = Vec::new();
            for c in 0..callers {
                let r = r.clone();
                tasks.push(tokio::spawn(async move {
                    for i in (c..CALLS).step_by(callers) {
                        r.reserve(&windows(i), Some(&format!("m{i}"))).await.unwrap().unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let wall = wall0.elapsed();
        let (cpu, server) = (cpu_ticks("self") - cpu0, cpu_ticks(&s.child.id().to_string()) - server0);
        let per_call = |ticks: u64| ticks as f64 * 10_000.0 / CALLS as f64;
        println!(
            "{CALLS} RESERVE calls, {callers} callers, pool 4: client CPU {:.1} us/call, redis-server {:.1} us/call, {:.0} calls/s",
            per_call(cpu),
            per_call(server),
            CALLS as f64 / wall.as_secs_f64()
        );
    }
}

/// utime + stime of a process in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}
