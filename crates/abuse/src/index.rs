//! The trace index: one row per session, per message and per recipient,
//! written as the server runs, so that "who sent this?" is a B-tree lookup
//! and never a scan of logs.
//!
//! Writes go through one thread ([`Index::send`] never waits for it: a
//! record is copied into a shared buffer under a short lock, no
//! allocation per record, nothing a session allocated freed by another
//! thread): it gathers records for up to [`ROUND`] (or [`ROUND_MAX`]
//! records, or until someone waits in [`Index::sync`]), sleeping while it
//! does (only a round's first record wakes it: one wake-up per round),
//! folds the records of one row into one write ([`coalesce`]: a
//! message's two records, a recipient's `accepted` then `delivered`, a
//! session's start, login, TLS and end) and
//! writes the round in one transaction (WAL, `synchronous = NORMAL`: no
//! fsync per round; the index is evidence for the abuse desk, not mail,
//! and a crash loses at most the last rounds). One commit per round, not
//! per message: each commit rewrites the B-tree pages it touched into the
//! WAL, so per-message commits cost more than the rows themselves. Rows
//! older than the retention are dropped once an hour. The queue between
//! sessions and the writer is bounded; when it is full a record is dropped
//! and counted (`port25.abuse.index.dropped`), a session never waits.
//!
//! Lookups ([`Reader`]) open their own connection: `port25 trace` reads
//! while the server writes.

use port25_events as ev;
use port25_events::emit;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Records waiting for the writer at most; beyond it they are dropped.
pub const QUEUE: usize = 100_000;
/// Bytes of records waiting for the writer at most (their text: a
/// bounce's reply can be long); beyond it they are dropped.
pub const QUEUE_BYTES: usize = 64 << 20;
/// How long the writer gathers records before it commits them. Longer
/// rounds fold more of a session's records into its one row (a
/// recipient's `delivered` into its `accepted`) and commit less often: the
/// writer's CPU per message was 10-20 % lower with 1 s than with 200 ms
/// (bench/README.md, stop 28). [`Index::sync`] ends a round at once for
/// whoever needs the rows now (a hold, the tests); `port25 trace` sees a
/// message a second after it was accepted at most.
pub const ROUND: Duration = Duration::from_millis(1000);
/// Records per round at most.
pub const ROUND_MAX: usize = 8192;
/// The writer's page cache, in KiB (SQLite's negative `cache_size`). The
/// default 2 MB holds the top of the indexes only: once the index is a
/// few tens of MB every insert into a secondary index (Message-ID,
/// login, client) fetches its leaf from the OS again, and the cost per
/// message grows with the index. A fixed size, so memory stays bounded
/// whatever the number of messages.
pub const WRITER_CACHE_KIB: i64 = 32 * 1024;
/// A session longer than this is not found by a window that starts after
/// it began (sessions end within minutes; the engine's timeouts see to it).
const MAX_SESSION_MS: i64 = 86_400_000;

pub fn now_ms() -> i64 {
    port25_time::unix_millis() as i64
}

/// One thing the server saw, for the index.
#[derive(Debug, Clone)]
pub enum Record {
    Session {
        id: String,
        listener: String,
        ip: String,
        port: u16,
        local: String,
        proxy: Option<String>,
        time_ms: i64,
        /// What [`Record::Tls`], [`Record::Login`] and [`Record::SessionEnd`]
        /// set, when [`coalesce`] folded them in (`None`: left as it is).
        tls: Option<String>,
        login: Option<String>,
        end_ms: Option<i64>,
    },
    SessionEnd {
        id: String,
        time_ms: i64,
    },
    Tls {
        session: String,
        version: String,
    },
    Login {
        session: String,
        login: String,
    },
    /// A message stored (queue id). Fields not known by the sender of
    /// the record are `None` and keep what another record wrote.
    Message {
        id: String,
        session: String,
        time_ms: i64,
        message_id: Option<String>,
        login: Option<String>,
        sender: Option<String>,
        size: Option<i64>,
    },
    Rcpt {
        id: String,
        rcpt: String,
        /// accepted, delivered, deferred, bounced or expired.
        outcome: &'static str,
        detail: String,
        time_ms: i64,
    },
    /// The fingerprint of the DKIM signature we put on message `id`.
    Dkim {
        id: String,
        digest: String,
    },
    /// Everything sent before it is committed once this is answered.
    Sync(std::sync::mpsc::Sender<()>),
}

pub const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, listener TEXT, ip TEXT, port INTEGER, local TEXT, proxy TEXT,
    start_ms INTEGER, end_ms INTEGER, tls TEXT, login TEXT);
CREATE INDEX IF NOT EXISTS sessions_client ON sessions(ip, start_ms);
CREATE TABLE IF NOT EXISTS messages(id TEXT PRIMARY KEY, session TEXT, time_ms INTEGER, message_id TEXT, login TEXT, sender TEXT, size INTEGER, dkim TEXT);
CREATE INDEX IF NOT EXISTS messages_dkim ON messages(dkim) WHERE dkim IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_mid ON messages(message_id);
CREATE INDEX IF NOT EXISTS messages_login ON messages(login, time_ms);
CREATE TABLE IF NOT EXISTS rcpts(id TEXT, rcpt TEXT, outcome TEXT, detail TEXT, time_ms INTEGER, PRIMARY KEY(id, rcpt)) WITHOUT ROWID;
-- The desk counts bounces every second: over this one it reads the few
-- bounced rows only, not every recipient of the last second.
CREATE INDEX IF NOT EXISTS rcpts_bounced ON rcpts(time_ms) WHERE outcome IN ('bounced', 'expired');
-- Indexes by time only pruning read, one B-tree more written per row:
-- [`prune`] goes by insertion order instead. Gone from older databases.
DROP INDEX IF EXISTS sessions_start;
DROP INDEX IF EXISTS messages_time;
DROP INDEX IF EXISTS rcpts_time;
-- A session's messages are found by their queue ids, which begin with the
-- session's id (the engine makes them so): no index by session, one
-- B-tree less written per message. Gone from older databases.
DROP INDEX IF EXISTS messages_session;
";

/// Opens (creating) the index database at `path` with its schema.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
    }
    // Who sent what to whom: port25's user only (docs/abuse.md).
    port25_groupcommit::private::private_file(path)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let c = port25_sqlite::open(path)?;
    c.busy_timeout(Duration::from_secs(5))?;
    c.execute_batch(SCHEMA)?;
    // Lookups never wait for the writer only in WAL mode: with a rollback
    // journal a commit locks readers out (SQLITE_BUSY, "database is
    // locked" once the busy timeout has passed during a long commit).
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::ToSqlConversionFailure(
            format!("{}: journal mode {mode}, not WAL (lookups would wait for the writer)", path.display()).into(),
        ));
    }
    Ok(c)
}

/// A record as the writer reads it: its text borrowed, from a
/// [`Record`] or from the queue's bytes ([`Index::send_ref`] takes one,
/// so that a caller holding the strings already allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordRef<'a> {
    Session {
        id: &'a str,
        listener: &'a str,
        ip: &'a str,
        port: u16,
        local: &'a str,
        proxy: Option<&'a str>,
        time_ms: i64,
        tls: Option<&'a str>,
        login: Option<&'a str>,
        end_ms: Option<i64>,
    },
    SessionEnd {
        id: &'a str,
        time_ms: i64,
    },
    Tls {
        session: &'a str,
        version: &'a str,
    },
    Login {
        session: &'a str,
        login: &'a str,
    },
    Message {
        id: &'a str,
        session: &'a str,
        time_ms: i64,
        message_id: Option<&'a str>,
        login: Option<&'a str>,
        sender: Option<&'a str>,
        size: Option<i64>,
    },
    Rcpt {
        id: &'a str,
        rcpt: &'a str,
        outcome: &'static str,
        detail: &'a str,
        time_ms: i64,
    },
    Dkim {
        id: &'a str,
        digest: &'a str,
    },
}

impl Record {
    /// The record borrowed; `None` for [`Record::Sync`], which writes nothing.
    pub fn as_ref(&self) -> Option<RecordRef<'_>> {
        Some(match self {
            Record::Session { id, listener, ip, port, local, proxy, time_ms, tls, login, end_ms } => {
                RecordRef::Session {
                    id,
                    listener,
                    ip,
                    port: *port,
                    local,
                    proxy: proxy.as_deref(),
                    time_ms: *time_ms,
                    tls: tls.as_deref(),
                    login: login.as_deref(),
                    end_ms: *end_ms,
                }
            }
            Record::SessionEnd { id, time_ms } => RecordRef::SessionEnd { id, time_ms: *time_ms },
            Record::Tls { session, version } => RecordRef::Tls { session, version },
            Record::Login { session, login } => RecordRef::Login { session, login },
            Record::Message { id, session, time_ms, message_id, login, sender, size } => RecordRef::Message {
                id,
                session,
                time_ms: *time_ms,
                message_id: message_id.as_deref(),
                login: login.as_deref(),
                sender: sender.as_deref(),
                size: *size,
            },
            Record::Rcpt { id, rcpt, outcome, detail, time_ms } => {
                RecordRef::Rcpt { id, rcpt, outcome, detail, time_ms: *time_ms }
            }
            Record::Dkim { id, digest } => RecordRef::Dkim { id, digest },
            Record::Sync(_) => return None,
        })
    }
}

impl RecordRef<'_> {
    /// The record with its text owned.
    pub fn to_record(&self) -> Record {
        let own = |s: &str| s.to_owned();
        match *self {
            RecordRef::Session { id, listener, ip, port, local, proxy, time_ms, tls, login, end_ms } => {
                Record::Session {
                    id: own(id),
                    listener: own(listener),
                    ip: own(ip),
                    port,
                    local: own(local),
                    proxy: proxy.map(own),
                    time_ms,
                    tls: tls.map(own),
                    login: login.map(own),
                    end_ms,
                }
            }
            RecordRef::SessionEnd { id, time_ms } => Record::SessionEnd { id: own(id), time_ms },
            RecordRef::Tls { session, version } => Record::Tls { session: own(session), version: own(version) },
            RecordRef::Login { session, login } => Record::Login { session: own(session), login: own(login) },
            RecordRef::Message { id, session, time_ms, message_id, login, sender, size } => Record::Message {
                id: own(id),
                session: own(session),
                time_ms,
                message_id: message_id.map(own),
                login: login.map(own),
                sender: sender.map(own),
                size,
            },
            RecordRef::Rcpt { id, rcpt, outcome, detail, time_ms } => {
                Record::Rcpt { id: own(id), rcpt: own(rcpt), outcome, detail: own(detail), time_ms }
            }
            RecordRef::Dkim { id, digest } => Record::Dkim { id: own(id), digest: own(digest) },
        }
    }
}

/// The outcomes a recipient's row can have, by their code in the queue.
const OUTCOMES: [&str; 6] = ["accepted", "delivered", "deferred", "bounced", "expired", "deleted"];

/// The queue's encoding of records: a tag byte, then each field in the
/// variant's order (text as a u32 length and its bytes, `None` text as
/// length `u32::MAX`; integers little-endian, an optional one after a
/// presence byte). Only [`encode`] writes it and only [`decode`] reads it,
/// within one process.
mod wire {
    use super::{RecordRef, OUTCOMES};

    const NONE: u32 = u32::MAX;

    /// Appends `r` to `b`; false (and `b` as it was) when a text is too
    /// long for the encoding (4 GiB: never, in practice).
    pub fn encode(b: &mut Vec<u8>, r: &RecordRef<'_>) -> bool {
        fn text(b: &mut Vec<u8>, s: Option<&str>) -> bool {
            match s {
                None => b.extend_from_slice(&NONE.to_le_bytes()),
                Some(s) => match u32::try_from(s.len()) {
                    Ok(n) if n != NONE => {
                        b.extend_from_slice(&n.to_le_bytes());
                        b.extend_from_slice(s.as_bytes());
                    }
                    _ => return false,
                },
            }
            true
        }
        fn int(b: &mut Vec<u8>, v: i64) -> bool {
            b.extend_from_slice(&v.to_le_bytes());
            true
        }
        fn opt_int(b: &mut Vec<u8>, v: Option<i64>) -> bool {
            match v {
                None => b.push(0),
                Some(v) => {
                    b.push(1);
                    b.extend_from_slice(&v.to_le_bytes());
                }
            }
            true
        }
        let start = b.len();
        let ok = match *r {
            RecordRef::Session { id, listener, ip, port, local, proxy, time_ms, tls, login, end_ms } => {
                b.push(0);
                let ok = text(b, Some(id)) & text(b, Some(listener)) & text(b, Some(ip));
                b.extend_from_slice(&port.to_le_bytes());
                ok & text(b, Some(local))
                    & text(b, proxy)
                    & int(b, time_ms)
                    & text(b, tls)
                    & text(b, login)
                    & opt_int(b, end_ms)
            }
            RecordRef::SessionEnd { id, time_ms } => {
                b.push(1);
                text(b, Some(id)) & int(b, time_ms)
            }
            RecordRef::Tls { session, version } => {
                b.push(2);
                text(b, Some(session)) & text(b, Some(version))
            }
            RecordRef::Login { session, login } => {
                b.push(3);
                text(b, Some(session)) & text(b, Some(login))
            }
            RecordRef::Message { id, session, time_ms, message_id, login, sender, size } => {
                b.push(4);
                text(b, Some(id))
                    & text(b, Some(session))
                    & int(b, time_ms)
                    & text(b, message_id)
                    & text(b, login)
                    & text(b, sender)
                    & opt_int(b, size)
            }
            RecordRef::Rcpt { id, rcpt, outcome, detail, time_ms } => {
                b.push(5);
                let ok = text(b, Some(id)) & text(b, Some(rcpt));
                // Only the outcomes the index knows (the feed and the
                // desk use no other).
                let code = OUTCOMES.iter().position(|o| *o == outcome);
                b.push(code.unwrap_or(0) as u8);
                ok & code.is_some() & text(b, Some(detail)) & int(b, time_ms)
            }
            RecordRef::Dkim { id, digest } => {
                b.push(6);
                text(b, Some(id)) & text(b, Some(digest))
            }
        };
        if !ok {
            b.truncate(start);
        }
        ok
    }

    /// Reads what [`encode`] wrote, record by record.
    pub struct Decoder<'a> {
        b: &'a [u8],
    }

    impl<'a> Decoder<'a> {
        pub fn new(b: &'a [u8]) -> Decoder<'a> {
            Decoder { b }
        }

        fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
            let (head, rest) = (self.b.get(..n)?, self.b.get(n..)?);
            self.b = rest;
            Some(head)
        }

        fn byte(&mut self) -> Option<u8> {
            Some(self.bytes(1)?[0])
        }

        fn int(&mut self) -> Option<i64> {
            Some(i64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
        }

        fn opt_int(&mut self) -> Option<Option<i64>> {
            match self.byte()? {
                0 => Some(None),
                _ => Some(Some(self.int()?)),
            }
        }

        fn opt_text(&mut self) -> Option<Option<&'a str>> {
            let n = u32::from_le_bytes(self.bytes(4)?.try_into().ok()?);
            if n == NONE {
                return Some(None);
            }
            std::str::from_utf8(self.bytes(n as usize)?).ok().map(Some)
        }

        fn text(&mut self) -> Option<&'a str> {
            self.opt_text()?
        }

        fn record(&mut self) -> Option<RecordRef<'a>> {
            Some(match self.byte()? {
                0 => RecordRef::Session {
                    id: self.text()?,
                    listener: self.text()?,
                    ip: self.text()?,
                    port: u16::from_le_bytes(self.bytes(2)?.try_into().ok()?),
                    local: self.text()?,
                    proxy: self.opt_text()?,
                    time_ms: self.int()?,
                    tls: self.opt_text()?,
                    login: self.opt_text()?,
                    end_ms: self.opt_int()?,
                },
                1 => RecordRef::SessionEnd { id: self.text()?, time_ms: self.int()? },
                2 => RecordRef::Tls { session: self.text()?, version: self.text()? },
                3 => RecordRef::Login { session: self.text()?, login: self.text()? },
                4 => RecordRef::Message {
                    id: self.text()?,
                    session: self.text()?,
                    time_ms: self.int()?,
                    message_id: self.opt_text()?,
                    login: self.opt_text()?,
                    sender: self.opt_text()?,
                    size: self.opt_int()?,
                },
                5 => RecordRef::Rcpt {
                    id: self.text()?,
                    rcpt: self.text()?,
                    outcome: OUTCOMES.get(usize::from(self.byte()?))?,
                    detail: self.text()?,
                    time_ms: self.int()?,
                },
                6 => RecordRef::Dkim { id: self.text()?, digest: self.text()? },
                _ => return None,
            })
        }
    }

    impl<'a> Iterator for Decoder<'a> {
        type Item = RecordRef<'a>;
        fn next(&mut self) -> Option<RecordRef<'a>> {
            if self.b.is_empty() {
                return None;
            }
            let r = self.record();
            if r.is_none() {
                // Not what encode wrote: nothing after it can be read.
                self.b = &[];
            }
            r
        }
    }
}

/// [`open`] for a bulk load (bench/trace.sh's loader): still WAL, so that
/// lookups go on during the load, but no fsync at all and a page cache
/// that holds the indexes' hot pages (the default 2 MB thrashes past a
/// few million rows).
pub fn open_bulk(path: &Path) -> rusqlite::Result<Connection> {
    let c = open(path)?;
    c.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000;")?;
    Ok(c)
}

/// The writer's handle: cheap to clone, never blocks (beyond a short
/// lock to append a record).
#[derive(Clone)]
pub struct Index {
    shared: Arc<Shared>,
    handles: Arc<Handles>,
}

/// What the sessions and the writer share.
struct Shared {
    queue: Mutex<Queue>,
    dropped: AtomicU64,
    /// False once the writer has stopped: a sync gets no answer.
    running: AtomicBool,
    progress: Progress,
}

/// Alive while some [`Index`] is: the writer holds it weakly, and once
/// the last handle is gone it writes what is left and ends.
struct Handles {
    /// The writer, woken by the first record of a round and by
    /// [`Index::sync`] (it sleeps while it gathers).
    writer: OnceLock<std::thread::Thread>,
}

impl Drop for Handles {
    fn drop(&mut self) {
        if let Some(w) = self.writer.get() {
            w.unpark();
        }
    }
}

/// The records sent and not yet taken by the writer, encoded one after
/// the other in one buffer ([`wire`]): a record costs the sender a copy
/// of its text into the buffer and no allocation of its own, and nothing
/// allocated by a session is freed by the writer (that traffic between
/// threads made every allocation of the process dearer). The writer takes
/// the whole buffer at the end of a round and hands back the one it
/// emptied, so the two buffers are reused.
#[derive(Default)]
struct Queue {
    bytes: Vec<u8>,
    records: usize,
    syncs: Vec<std::sync::mpsc::Sender<()>>,
}

/// How far the writer got, so that whether a record is in the database
/// can be known without reading it ([`Index::written`]).
struct Progress {
    base: Instant,
    /// Every record sent before `base` + this many nanoseconds is written
    /// (or lost, which `lost` counts).
    through: AtomicU64,
    /// Records dropped (queue full) and rounds that failed, ever.
    lost: AtomicU64,
}

impl Progress {
    fn advance(&self, to: Instant) {
        let nanos = to.saturating_duration_since(self.base).as_nanos().min(u64::MAX as u128) as u64;
        self.through.fetch_max(nanos, Ordering::AcqRel);
    }
}

/// When a record was sent, for [`Index::written`].
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    /// Losses before it was sent.
    lost: u64,
    /// Taken after it was sent.
    at: Instant,
}

impl Index {
    /// Starts the writer thread over the database at `path`; rows older
    /// than `retention` are removed hourly.
    pub fn start(path: &Path, retention: Duration) -> rusqlite::Result<Index> {
        let conn = open(path)?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            dropped: AtomicU64::new(0),
            running: AtomicBool::new(true),
            progress: Progress { base: Instant::now(), through: AtomicU64::new(0), lost: AtomicU64::new(0) },
        });
        let handles = Arc::new(Handles { writer: OnceLock::new() });
        let (s, h, path) = (shared.clone(), Arc::downgrade(&handles), path.to_owned());
        let writer = std::thread::Builder::new()
            .name("abuse-index".into())
            .spawn(move || {
                let w = Writer { conn, retention, pruned: None, prune_left: false, path };
                w.run(&s, &h);
                s.running.store(false, Ordering::SeqCst);
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let _ = handles.writer.set(writer.thread().clone());
        Ok(Index { shared, handles })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.shared.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `r` for the writer ([`Record::Sync`]: see [`Index::sync`]).
    pub fn send(&self, r: Record) {
        if let Record::Sync(tx) = r {
            self.queue().syncs.push(tx);
            self.wake();
        } else if let Some(r) = r.as_ref() {
            self.send_ref(r);
        }
    }

    /// Queues a record without owning its text: copied into the queue,
    /// nothing allocated per record.
    pub fn send_ref(&self, r: RecordRef<'_>) {
        let mut q = self.queue();
        let first = q.records == 0;
        let full = q.records >= QUEUE || q.bytes.len() >= QUEUE_BYTES || !self.shared.running.load(Ordering::Relaxed);
        if !full && wire::encode(&mut q.bytes, &r) {
            q.records += 1;
            let n = q.records;
            drop(q);
            // The first record of a round wakes the writer (it sleeps
            // until then); the others wake nobody, unless the round is full.
            if first || n == ROUND_MAX {
                self.wake();
            }
        } else {
            drop(q);
            self.shared.progress.lost.fetch_add(1, Ordering::SeqCst);
            if full {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn wake(&self) {
        if let Some(w) = self.handles.writer.get() {
            w.unpark();
        }
    }

    /// [`Index::send`], and a mark to ask [`Index::written`] about later.
    pub fn send_marked(&self, r: Record) -> Sent {
        let lost = self.shared.progress.lost.load(Ordering::SeqCst);
        self.send(r);
        Sent { lost, at: Instant::now() }
    }

    /// [`Index::send_ref`], and a mark to ask [`Index::written`] about later.
    pub fn send_ref_marked(&self, r: RecordRef<'_>) -> Sent {
        let lost = self.shared.progress.lost.load(Ordering::SeqCst);
        self.send_ref(r);
        Sent { lost, at: Instant::now() }
    }

    /// True when the record is in the database for certain: the writer
    /// has written every record sent before it, and nothing was lost
    /// since (a record dropped, a round that failed). False says
    /// "not known": ask the database.
    pub fn written(&self, sent: &Sent) -> bool {
        self.written_before(sent.at) && self.shared.progress.lost.load(Ordering::SeqCst) == sent.lost
    }

    /// True when every record sent before `t` is done (written, or lost
    /// and counted): a row missing now is missing for good.
    pub fn written_before(&self, t: Instant) -> bool {
        let p = &self.shared.progress;
        let through = p.through.load(Ordering::Acquire);
        t.saturating_duration_since(p.base).as_nanos() < through as u128
    }

    /// Waits (at most `wait`) until every record sent before is committed.
    pub fn sync(&self, wait: Duration) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        let before = Instant::now();
        if !self.shared.running.load(Ordering::SeqCst) {
            return false;
        }
        // Ends the writer's round at once (it may be asleep in it); it
        // answers once the round is committed: what was sent before the
        // sync is in it.
        self.send(Record::Sync(tx));
        let done = rx.recv_timeout(wait).is_ok();
        if done {
            self.shared.progress.advance(before);
        }
        done
    }

    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

struct Writer {
    conn: Connection,
    retention: Duration,
    pruned: Option<Instant>,
    /// The last prune stopped at its batch: go on after the next round.
    prune_left: bool,
    path: PathBuf,
}

/// One round taken from the queue.
struct Round {
    bytes: Vec<u8>,
    syncs: Vec<std::sync::mpsc::Sender<()>>,
    /// Taken before the queue was locked to take it: every record sent
    /// before this instant is in this round or an earlier one.
    drained: Instant,
}

impl Writer {
    fn run(mut self, s: &Shared, handles: &std::sync::Weak<Handles>) {
        let mut reported = 0;
        // The buffers the writer emptied, handed back to the queue.
        let mut spare_bytes = Vec::new();
        let mut spare_syncs = Vec::new();
        loop {
            let Some(round) = take_round(s, handles, self.prune_left, &mut spare_bytes, &mut spare_syncs) else {
                break;
            };
            if let Some(round) = round {
                if let Err(e) = self.round(&round.bytes) {
                    s.progress.lost.fetch_add(1, Ordering::SeqCst);
                    emit!(error, ev::ABUSE_INDEX_FAILED, path = %self.path.display(), error = %e);
                    // The syncs go unanswered (dropped): their callers see
                    // the round failed.
                } else {
                    for tx in &round.syncs {
                        let _ = tx.send(());
                    }
                }
                // Lost or written, every record sent before `drained` is done.
                s.progress.advance(round.drained);
                (spare_bytes, spare_syncs) = (round.bytes, round.syncs);
                spare_bytes.clear();
                spare_syncs.clear();
                // A burst's buffer is not kept for ever.
                if spare_bytes.capacity() > SPARE_BYTES {
                    spare_bytes = Vec::new();
                }
            }
            let dropped = s.dropped.load(Ordering::Relaxed);
            if dropped != reported {
                emit!(warn, ev::ABUSE_INDEX_DROPPED, records = dropped - reported, queue = QUEUE);
                reported = dropped;
            }
            if self.prune_left || self.pruned.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                self.pruned = Some(Instant::now());
                let now = now_ms();
                self.prune_left = false;
                match prune(&self.conn, now - self.retention.as_millis() as i64, now) {
                    Ok((n, more)) => {
                        self.prune_left = more;
                        if n > 0 {
                            emit!(
                                info,
                                ev::ABUSE_INDEX_PRUNED,
                                rows = n,
                                retention_days = self.retention.as_secs() / 86400
                            )
                        }
                    }
                    Err(e) => emit!(error, ev::ABUSE_INDEX_FAILED, path = %self.path.display(), error = %e),
                }
            }
        }
    }

    fn round(&mut self, bytes: &[u8]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut writes = Writes::new(&tx);
            let folded = coalesce(wire::Decoder::new(bytes).collect());
            for (at, r) in folded.records.iter().enumerate() {
                match *r {
                    // Its message was written a moment ago, in this round:
                    // no look for it.
                    RecordRef::Rcpt { id, .. } if folded.message_before(id, at) => writes.rcpt_of_written_message(r)?,
                    _ => writes.write(r)?,
                }
            }
        }
        tx.commit()
    }
}

/// The capacity of an emptied buffer kept for the next round at most.
const SPARE_BYTES: usize = 4 << 20;

/// Waits for a round and takes it: once something is queued, the rest of
/// [`ROUND`] (the writer sleeps: a record sent wakes nobody but the
/// round's first, one wake-up per round instead of a futex call on the
/// session's side and a context switch per record), cut short by
/// [`ROUND_MAX`] records, a [`Record::Sync`] or the last handle's drop.
/// `Some(None)`: nothing came within a round while pruning is left to
/// do; `None`: every handle is gone and nothing is left.
fn take_round(
    s: &Shared,
    handles: &std::sync::Weak<Handles>,
    prune_left: bool,
    spare_bytes: &mut Vec<u8>,
    spare_syncs: &mut Vec<std::sync::mpsc::Sender<()>>,
) -> Option<Option<Round>> {
    let mut deadline: Option<Instant> = None;
    let idle_until = Instant::now() + ROUND;
    loop {
        let closed = handles.strong_count() == 0;
        let looked = Instant::now();
        {
            let mut q = s.queue.lock().unwrap_or_else(|p| p.into_inner());
            let pending = q.records > 0 || !q.syncs.is_empty();
            if pending {
                let end = *deadline.get_or_insert(looked + ROUND);
                if looked >= end || closed || !q.syncs.is_empty() || q.records >= ROUND_MAX {
                    q.records = 0;
                    let bytes = std::mem::replace(&mut q.bytes, std::mem::take(spare_bytes));
                    let syncs = std::mem::replace(&mut q.syncs, std::mem::take(spare_syncs));
                    return Some(Some(Round { bytes, syncs, drained: looked }));
                }
            } else if closed {
                return None;
            } else if prune_left && looked >= idle_until {
                return Some(None);
            }
        }
        match (deadline, prune_left) {
            (Some(d), _) => std::thread::park_timeout(d.saturating_duration_since(Instant::now())),
            (None, true) => std::thread::park_timeout(idle_until.saturating_duration_since(Instant::now())),
            (None, false) => std::thread::park(),
        }
    }
}

/// The round with the records of one row folded into the first of them
/// (so that every record that needs the row, such as a message's DKIM
/// digest, still comes after it): a message's records (later values
/// that are `Some` win, as the upsert does), a recipient's outcomes
/// (the last wins, as `INSERT OR REPLACE` does) and a session's TLS,
/// login and end when its start is in the round (the last wins, as the
/// updates do). What it writes is what writing the records one by one
/// writes; a session of a few messages becomes one insert instead of an
/// insert and three updates.
pub fn coalesce<'a>(round: Vec<RecordRef<'a>>) -> Folded<'a> {
    use crate::FastMap;
    let mut out: Vec<RecordRef<'a>> = Vec::with_capacity(round.len());
    // Sized for the round at once: no rehash while it is folded.
    let n = round.len();
    let mut messages: FastMap<&'a str, usize> = FastMap::with_capacity_and_hasher(n / 2, Default::default());
    let mut rcpts: FastMap<(&'a str, &'a str), usize> = FastMap::with_capacity_and_hasher(n / 2, Default::default());
    let mut sessions: FastMap<&'a str, usize> = FastMap::with_capacity_and_hasher(n / 8, Default::default());
    // The session row that `id` updates, when its start is in the round.
    fn started<'o, 'a>(
        out: &'o mut [RecordRef<'a>],
        sessions: &FastMap<&'a str, usize>,
        id: &str,
    ) -> Option<&'o mut RecordRef<'a>> {
        sessions.get(id).map(|&i| &mut out[i])
    }
    for r in round {
        match r {
            RecordRef::Session { id, .. } => {
                // A second start of one id is ignored by the insert but its
                // fields still apply (the upsert): it stays a record of its own.
                sessions.entry(id).or_insert(out.len());
                out.push(r);
            }
            RecordRef::Tls { session, version } => match started(&mut out, &sessions, session) {
                Some(RecordRef::Session { tls, .. }) => *tls = Some(version),
                _ => out.push(r),
            },
            RecordRef::Login { session, login } => match started(&mut out, &sessions, session) {
                Some(RecordRef::Session { login: l, .. }) => *l = Some(login),
                _ => out.push(r),
            },
            RecordRef::SessionEnd { id, time_ms } => match started(&mut out, &sessions, id) {
                Some(RecordRef::Session { end_ms, .. }) => *end_ms = Some(time_ms),
                _ => out.push(r),
            },
            RecordRef::Message { id, message_id, login, sender, size, .. } => match messages.get(id) {
                Some(&i) => {
                    if let RecordRef::Message { message_id: m, login: l, sender: s, size: z, .. } = &mut out[i] {
                        *m = message_id.or(*m);
                        *l = login.or(*l);
                        *s = sender.or(*s);
                        *z = size.or(*z);
                    }
                }
                None => {
                    messages.insert(id, out.len());
                    out.push(r);
                }
            },
            RecordRef::Rcpt { id, rcpt, outcome, detail, time_ms } => match rcpts.get(&(id, rcpt)) {
                Some(&i) => {
                    if let RecordRef::Rcpt { outcome: o, detail: d, time_ms: t, .. } = &mut out[i] {
                        (*o, *d, *t) = (outcome, detail, time_ms);
                    }
                }
                None => {
                    rcpts.insert((id, rcpt), out.len());
                    out.push(r);
                }
            },
            RecordRef::Dkim { .. } => out.push(r),
        }
    }
    Folded { records: out, messages }
}

/// A round's records as [`coalesce`] folded them, and where each
/// message's record is among them (the map the folding made).
pub struct Folded<'a> {
    pub records: Vec<RecordRef<'a>>,
    messages: crate::FastMap<&'a str, usize>,
}

impl Folded<'_> {
    /// Whether message `id`'s record comes before place `at` of the
    /// records: written by this round before what is at `at`.
    fn message_before(&self, id: &str, at: usize) -> bool {
        self.messages.get(id).is_some_and(|&i| i < at)
    }
}

/// Writes one record (tests and the bench's loader; see [`write_ref`]).
pub fn write(c: &Connection, r: &Record) -> rusqlite::Result<()> {
    match r.as_ref() {
        Some(r) => write_ref(c, &r),
        None => Ok(()),
    }
}

/// Writes one record (see [`Writes`]).
pub fn write_ref(c: &Connection, r: &RecordRef<'_>) -> rusqlite::Result<()> {
    Writes::new(c).write(r)
}

/// The statements that write records, each taken from the connection's
/// statement cache once and kept: the writer makes one per round, so a
/// record costs no cache lookup (it hashes the statement's text) and no
/// hand-back (a reset and a second hash), about a sixth of a record's
/// write.
pub struct Writes<'c> {
    c: &'c Connection,
    statements: [Option<rusqlite::CachedStatement<'c>>; WRITE_SQL.len()],
}

/// One per kind of record, in [`Writes::write`]'s order, then
/// [`Writes::rcpt_of_written_message`]'s.
const WRITE_SQL: [&str; 8] = [
    // A session's start is written once (a second one is ignored); what
    // was folded into it sets its fields as the updates would.
    "INSERT INTO sessions(id, listener, ip, port, local, proxy, start_ms, tls, login, end_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
     ON CONFLICT(id) DO UPDATE SET tls = coalesce(excluded.tls, tls), login = coalesce(excluded.login, login),
     end_ms = coalesce(excluded.end_ms, end_ms)",
    "UPDATE sessions SET end_ms = ?2 WHERE id = ?1",
    "UPDATE sessions SET tls = ?2 WHERE id = ?1",
    "UPDATE sessions SET login = ?2 WHERE id = ?1",
    "INSERT INTO messages(id, session, time_ms, message_id, login, sender, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT(id) DO UPDATE SET message_id = coalesce(excluded.message_id, message_id), login = coalesce(excluded.login, login),
     sender = coalesce(excluded.sender, sender), size = coalesce(excluded.size, size)",
    // Only for a message the index has: [`prune`] removes a message's
    // recipients with it, so one without its message (its record lost,
    // or queued before the index existed) would stay forever. A later
    // outcome updates the row in place.
    "INSERT INTO rcpts(id, rcpt, outcome, detail, time_ms)
     SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM messages WHERE id = ?1)
     ON CONFLICT(id, rcpt) DO UPDATE SET outcome = excluded.outcome, detail = excluded.detail, time_ms = excluded.time_ms",
    "UPDATE messages SET dkim = ?2 WHERE id = ?1",
    // A recipient of a message known to be there (written in this round).
    "INSERT INTO rcpts(id, rcpt, outcome, detail, time_ms) VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT(id, rcpt) DO UPDATE SET outcome = excluded.outcome, detail = excluded.detail, time_ms = excluded.time_ms",
];

impl<'c> Writes<'c> {
    pub fn new(c: &'c Connection) -> Writes<'c> {
        Writes { c, statements: Default::default() }
    }

    /// Statement `i` of [`WRITE_SQL`], taken from the cache the first time.
    fn statement(&mut self, i: usize) -> rusqlite::Result<&mut rusqlite::CachedStatement<'c>> {
        let slot = &mut self.statements[i];
        if slot.is_none() {
            *slot = Some(self.c.prepare_cached(WRITE_SQL[i])?);
        }
        match slot {
            Some(st) => Ok(st),
            None => unreachable!("set above"),
        }
    }

    /// Writes one record.
    pub fn write(&mut self, r: &RecordRef<'_>) -> rusqlite::Result<()> {
        match *r {
            RecordRef::Session { id, listener, ip, port, local, proxy, time_ms, tls, login, end_ms } => self
                .statement(0)?
                .execute(params![id, listener, ip, port, local, proxy, time_ms, tls, login, end_ms])?,
            RecordRef::SessionEnd { id, time_ms } => self.statement(1)?.execute(params![id, time_ms])?,
            RecordRef::Tls { session, version } => self.statement(2)?.execute(params![session, version])?,
            RecordRef::Login { session, login } => self.statement(3)?.execute(params![session, login])?,
            RecordRef::Message { id, session, time_ms, message_id, login, sender, size } => {
                self.statement(4)?.execute(params![id, session, time_ms, message_id, login, sender, size])?
            }
            RecordRef::Rcpt { id, rcpt, outcome, detail, time_ms } => {
                self.statement(5)?.execute(params![id, rcpt, outcome, detail, time_ms])?
            }
            RecordRef::Dkim { id, digest } => self.statement(6)?.execute(params![id, digest])?,
        };
        Ok(())
    }

    /// Writes a recipient's record ([`RecordRef::Rcpt`]; any other as
    /// [`Writes::write`]) without checking that its message is there: for
    /// a message this transaction has written.
    pub fn rcpt_of_written_message(&mut self, r: &RecordRef<'_>) -> rusqlite::Result<()> {
        match *r {
            RecordRef::Rcpt { id, rcpt, outcome, detail, time_ms } => {
                self.statement(7)?.execute(params![id, rcpt, outcome, detail, time_ms])?;
                Ok(())
            }
            _ => self.write(r),
        }
    }
}

/// Rows [`prune`] removes from each table in one call at most: a
/// retention's worth of backlog (the first prune after a long stop, or a
/// shortened retention) goes in steps between the writer's rounds instead
/// of one long transaction while records pile up in its queue.
pub const PRUNE_BATCH: usize = 20_000;

/// Removes sessions and messages (with their recipients) older than
/// `cutoff_ms`, at most [`PRUNE_BATCH`] of each; returns how many rows
/// and whether some old ones may be left (call again).
///
/// Rows are taken in insertion order (rowid), which is time order, up to
/// the first one still within retention: no index by time is kept for
/// this. A row dated more than a day after `now_ms` (a clock that jumped
/// ahead and came back) does not stop the pruning of the rows after it.
pub fn prune(c: &Connection, cutoff_ms: i64, now_ms: i64) -> rusqlite::Result<(usize, bool)> {
    let future = now_ms.saturating_add(86_400_000);
    let mut n = 0;
    let mut more = false;
    for (table, time) in [("messages", "time_ms"), ("sessions", "start_ms")] {
        let Some((last, rows)) = prefix_older(c, table, time, cutoff_ms, future)? else { continue };
        if table == "messages" {
            n += c
                .prepare_cached("DELETE FROM rcpts WHERE id IN (SELECT id FROM messages WHERE rowid <= ?1)")?
                .execute([last])?;
        }
        n += c.prepare_cached(&format!("DELETE FROM {table} WHERE rowid <= ?1"))?.execute([last])?;
        more |= rows == PRUNE_BATCH;
    }
    Ok((n, more))
}

/// The last rowid of the oldest rows of `table` (at most [`PRUNE_BATCH`])
/// that are all older than `cutoff_ms`, and how many they are.
fn prefix_older(
    c: &Connection,
    table: &str,
    time: &str,
    cutoff_ms: i64,
    future: i64,
) -> rusqlite::Result<Option<(i64, usize)>> {
    let mut st = c.prepare_cached(&format!("SELECT rowid, {time} FROM {table} ORDER BY rowid LIMIT ?1"))?;
    let mut rows = st.query([PRUNE_BATCH as i64])?;
    let mut last = None;
    let mut count = 0;
    while let Some(r) = rows.next()? {
        let t: Option<i64> = r.get(1)?;
        if t.is_some_and(|t| t >= cutoff_ms && t <= future) {
            break;
        }
        last = Some(r.get::<_, i64>(0)?);
        count += 1;
    }
    Ok(last.map(|l| (l, count)))
}

/// `<id@host>` or `id@host`: the angle brackets are not part of the key.
pub fn bare_message_id(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('<').and_then(|s| s.strip_suffix('>')).unwrap_or(s)
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SessionRow {
    pub session: String,
    pub listener: String,
    pub client_ip: String,
    pub client_port: u16,
    pub local: String,
    pub proxied_by: Option<String>,
    pub start: String,
    pub end: Option<String>,
    pub tls: Option<String>,
    pub login: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RcptRow {
    pub rcpt: String,
    /// accepted (not tried yet), delivered, deferred, bounced, expired, deleted
    pub outcome: String,
    pub detail: String,
    pub time: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MessageRow {
    pub queue_id: String,
    pub session: String,
    pub time: String,
    pub message_id: Option<String>,
    pub login: Option<String>,
    pub sender: Option<String>,
    pub size: Option<i64>,
    pub recipients: Vec<RcptRow>,
}

/// What `port25 trace` prints: the sessions found and their messages.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Trace {
    pub sessions: Vec<SessionRow>,
    pub messages: Vec<MessageRow>,
}

/// How to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    MessageId(String),
    QueueId(String),
    /// Sessions from this client address (and source port) alive between
    /// the two times (ms since the epoch).
    Client {
        ip: IpAddr,
        port: Option<u16>,
        from_ms: i64,
        to_ms: i64,
    },
}

/// UTC, to the millisecond: `2026-12-02T13:14:04.123Z`.
pub fn utc(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rest = ms.rem_euclid(86_400_000);
    let (h, m, s, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
    format!("{}T{h:02}:{m:02}:{s:02}.{milli:03}Z", port25_report::date::format_day(days))
}

/// Parses `2026-12-02T13:14:04Z` (seconds and fraction optional, `Z` or
/// none: always UTC) or seconds since the epoch.
pub fn parse_utc(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return secs.checked_mul(1000);
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, "00:00:00"));
    // parse_day reads the first ten bytes: nothing may follow them.
    if date.len() != 10 {
        return None;
    }
    let day = port25_report::date::parse_day(date)?;
    // One or two digits, at most `max`: no sign (i64's parse takes "-9..."
    // and "+1", and a large negative hour overflowed the sum below).
    let field = |t: &str, max: i64| -> Option<i64> {
        if t.is_empty() || t.len() > 2 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok().filter(|v| *v <= max)
    };
    let mut parts = time.split(':');
    let h = field(parts.next()?, 23)?;
    let m = field(parts.next().unwrap_or("0"), 59)?;
    let sec_part = parts.next().unwrap_or("0");
    let (sec, frac) = sec_part.split_once('.').unwrap_or((sec_part, ""));
    let sec = field(sec, 60)?;
    if parts.next().is_some() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let milli: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    Some(day * 86_400_000 + h * 3_600_000 + m * 60_000 + sec * 1000 + milli)
}

/// A session's messages (`?1`), in time order: a range of the queue ids
/// (they begin with the session's id, [`queue_ids_end`]), each checked
/// against its session.
const SESSION_MESSAGES: &str =
    "SELECT id FROM messages WHERE id >= ?1 AND id < ?2 AND session = ?1 ORDER BY time_ms LIMIT ?3";

/// Above every queue id of session `session` (they are the session's id
/// and a transaction number: `port25_engine::queue_id`):
/// the end of the range [`Reader::trace`] reads a session's messages from.
fn queue_ids_end(session: &str) -> String {
    format!("{session}\u{10FFFF}")
}

/// A read-only view for lookups.
pub struct Reader {
    conn: Connection,
}

impl Reader {
    pub fn open(path: &Path) -> rusqlite::Result<Reader> {
        let conn = port25_sqlite::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Reader { conn })
    }

    pub fn from_connection(conn: Connection) -> Reader {
        Reader { conn }
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// At most `limit` sessions (newest first) and their messages.
    pub fn trace(&self, q: &Query, limit: usize) -> rusqlite::Result<Trace> {
        let mut t = Trace::default();
        let limit = limit as i64;
        match q {
            Query::MessageId(mid) => {
                let ids = self.ids(
                    "SELECT id FROM messages WHERE message_id = ?1 ORDER BY time_ms DESC LIMIT ?2",
                    params![bare_message_id(mid), limit],
                )?;
                self.messages_and_sessions(&mut t, ids)?;
            }
            Query::QueueId(id) => {
                let ids = self.ids("SELECT id FROM messages WHERE id = ?1 LIMIT ?2", params![id, limit])?;
                self.messages_and_sessions(&mut t, ids)?;
            }
            Query::Client { ip, port, from_ms, to_ms } => {
                let ip = ip.to_canonical().to_string();
                let sessions = self.ids(
                    "SELECT id FROM sessions WHERE ip = ?1 AND start_ms BETWEEN ?2 AND ?3 AND (end_ms IS NULL OR end_ms >= ?4)
                     AND (?5 IS NULL OR port = ?5) ORDER BY start_ms DESC LIMIT ?6",
                    params![ip, from_ms - MAX_SESSION_MS, to_ms, from_ms, port, limit],
                )?;
                for s in &sessions {
                    if let Some(row) = self.session(s)? {
                        t.sessions.push(row);
                    }
                    let ids = self.ids(SESSION_MESSAGES, params![s, queue_ids_end(s), limit])?;
                    for id in ids {
                        if let Some(m) = self.message(&id)? {
                            t.messages.push(m);
                        }
                    }
                }
            }
        }
        Ok(t)
    }

    fn ids(&self, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<Vec<String>> {
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map(p, |r| r.get::<_, String>(0))?;
        rows.collect()
    }

    fn messages_and_sessions(&self, t: &mut Trace, ids: Vec<String>) -> rusqlite::Result<()> {
        for id in ids {
            let Some(m) = self.message(&id)? else { continue };
            if !t.sessions.iter().any(|s| s.session == m.session) {
                if let Some(s) = self.session(&m.session)? {
                    t.sessions.push(s);
                }
            }
            t.messages.push(m);
        }
        Ok(())
    }

    pub fn session(&self, id: &str) -> rusqlite::Result<Option<SessionRow>> {
        self.conn
            .prepare_cached(
                "SELECT id, listener, ip, port, local, proxy, start_ms, end_ms, tls, login FROM sessions WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok(SessionRow {
                    session: r.get(0)?,
                    listener: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    client_ip: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    client_port: r.get::<_, Option<u16>>(3)?.unwrap_or(0),
                    local: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    proxied_by: r.get(5)?,
                    start: utc(r.get::<_, Option<i64>>(6)?.unwrap_or(0)),
                    end: r.get::<_, Option<i64>>(7)?.map(utc),
                    tls: r.get(8)?,
                    login: r.get(9)?,
                })
            })
            .optional()
    }

    pub fn message(&self, id: &str) -> rusqlite::Result<Option<MessageRow>> {
        let Some(mut m) = self
            .conn
            .prepare_cached("SELECT id, session, time_ms, message_id, login, sender, size FROM messages WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(MessageRow {
                    queue_id: r.get(0)?,
                    session: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    time: utc(r.get::<_, Option<i64>>(2)?.unwrap_or(0)),
                    message_id: r.get(3)?,
                    login: r.get(4)?,
                    sender: r.get(5)?,
                    size: r.get(6)?,
                    recipients: Vec::new(),
                })
            })
            .optional()?
        else {
            return Ok(None);
        };
        let mut st =
            self.conn.prepare_cached("SELECT rcpt, outcome, detail, time_ms FROM rcpts WHERE id = ?1 ORDER BY rcpt")?;
        let rows = st.query_map([id], |r| {
            Ok(RcptRow { rcpt: r.get(0)?, outcome: r.get(1)?, detail: r.get(2)?, time: utc(r.get(3)?) })
        })?;
        m.recipients = rows.collect::<rusqlite::Result<_>>()?;
        Ok(Some(m))
    }

    /// The queue id and login of the message we signed with this DKIM
    /// signature (its [`port25_outbound::dkim::signature_digest`]).
    pub fn signed(&self, digest: &str) -> rusqlite::Result<Option<(String, Option<String>)>> {
        self.conn
            .prepare_cached("SELECT id, login FROM messages WHERE dkim = ?1")
            .and_then(|mut st| st.query_row([digest], |r| Ok((r.get(0)?, r.get(1)?))).optional())
    }

    /// The login and Message-ID recorded for queue id `id`.
    pub fn sent_by(&self, id: &str) -> rusqlite::Result<Option<(Option<String>, Option<String>)>> {
        self.conn
            .prepare_cached("SELECT login, message_id FROM messages WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_both_ways() {
        let ms = parse_utc("2026-12-02T13:14:04.5Z").unwrap();
        assert_eq!(utc(ms), "2026-12-02T13:14:04.500Z");
        assert_eq!(parse_utc("2026-12-02T13:14"), Some(ms - 4500));
        assert_eq!(parse_utc("2026-12-02"), parse_utc("2026-12-02T00:00:00Z"));
        assert_eq!(parse_utc("1700000000"), Some(1_700_000_000_000));
        for bad in [
            "",
            "2026-13-01",
            "2026-12-02T25:00",
            "2026-12-02T10:00:00:00",
            "2026-12-02T10:00:00.x",
            "x",
            // Signs and trailing digits (the hour overflowed the sum).
            "2026-12-02T-9223372036854775808:00",
            "2026-12-02T-1:00",
            "2026-12-02T+1:00",
            "2026-12-02T10:-5",
            "2026-12-02T100:00",
            "2026-12-0212",
            "2026-12-02junk",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad:?}");
        }
        assert_eq!(bare_message_id(" <a@b> "), "a@b");
    }

    fn refs(records: &[Record]) -> Vec<RecordRef<'_>> {
        records.iter().filter_map(Record::as_ref).collect()
    }

    fn message(i: u64) -> [Record; 3] {
        message_at(i, 1_700_000_000_000 + i as i64)
    }

    /// Session `S{i}`, its message `S{i}A` and one delivered recipient, at `t`.
    fn message_at(i: u64, t: i64) -> [Record; 3] {
        let (session, id) = (format!("S{i}"), format!("S{i}A"));
        [
            Record::Session {
                id: session.clone(),
                listener: "submission".into(),
                ip: "100.64.0.1".into(),
                port: (1024 + i % 60_000) as u16,
                local: "192.0.2.1:587".into(),
                proxy: None,
                time_ms: t,
                tls: None,
                login: None,
                end_ms: None,
            },
            Record::Message {
                id: id.clone(),
                session,
                time_ms: t,
                message_id: Some(format!("m{i}@example.net")),
                login: Some("alice@example.net".into()),
                sender: None,
                size: None,
            },
            Record::Rcpt {
                id,
                rcpt: "x@remote.example".into(),
                outcome: "delivered",
                detail: String::new(),
                time_ms: t,
            },
        ]
    }

    #[test]
    fn a_lookup_never_waits_for_the_writer_not_even_during_a_long_bulk_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abuse.sqlite");
        let mut w = open_bulk(&path).unwrap();
        for r in message(0) {
            write(&w, &r).unwrap();
        }
        let (started, writing) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            // The strongest lock a writer takes, held well past what a
            // reader waiting for it would tolerate (1 s below), with
            // enough rows that the page cache spills into the file.
            let tx = w.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive).unwrap();
            for i in 1..50_000 {
                for r in message(i) {
                    write(&tx, &r).unwrap();
                }
            }
            started.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            tx.commit().unwrap();
        });
        writing.recv().unwrap();
        let mut slowest = Duration::ZERO;
        let mut lookups = 0;
        while !writer.is_finished() {
            let t = Instant::now();
            let r = Reader::open(&path).and_then(|r| r.trace(&Query::QueueId("S0A".into()), 10));
            let found = r.unwrap_or_else(|e| panic!("a lookup during the write failed: {e}"));
            assert_eq!(found.messages.len(), 1);
            slowest = slowest.max(t.elapsed());
            lookups += 1;
        }
        writer.join().unwrap();
        assert!(lookups > 1 && slowest < Duration::from_secs(1), "{lookups} lookups, slowest {slowest:?}");
        let after = Reader::open(&path).unwrap().trace(&Query::QueueId("S49999A".into()), 10).unwrap();
        assert_eq!(after.messages.len(), 1, "committed");
    }

    /// Message `id` of session S1 at time 5, with these of its fields.
    fn message_record(id: &str, mid: Option<&str>, login: Option<&str>, size: Option<i64>) -> Record {
        Record::Message {
            id: id.into(),
            session: "S1".into(),
            time_ms: 5,
            message_id: mid.map(Into::into),
            login: login.map(Into::into),
            sender: None,
            size,
        }
    }

    #[test]
    fn a_round_folds_the_records_of_one_row_and_writes_what_they_write_one_by_one() {
        let msg = |mid, login, size| message_record("Q1", mid, login, size);
        let rcpt = |outcome: &'static str, t: i64| Record::Rcpt {
            id: "Q1".into(),
            rcpt: "x@r.example".into(),
            outcome,
            detail: outcome.to_uppercase(),
            time_ms: t,
        };
        let round = vec![
            msg(None, Some("alice"), None),
            rcpt("accepted", 1),
            Record::Dkim { id: "Q1".into(), digest: "d1".into() },
            msg(Some("m@x"), None, Some(10)),
            rcpt("deferred", 2),
            msg(None, None, Some(11)),
            rcpt("delivered", 3),
        ];
        let folded = coalesce(refs(&round)).records;
        assert_eq!(folded.len(), 3, "{folded:?}");
        assert!(
            matches!(&folded[0], RecordRef::Message { message_id: Some(m), login: Some(l), size: Some(11), .. } if *m == "m@x" && *l == "alice")
        );
        assert!(matches!(&folded[1], RecordRef::Rcpt { outcome, time_ms: 3, .. } if *outcome == "delivered"));
        assert!(matches!(&folded[2], RecordRef::Dkim { .. }), "after the row it updates");
        let rows = |records: &[RecordRef]| {
            let c = Connection::open_in_memory().unwrap();
            c.execute_batch(SCHEMA).unwrap();
            for r in records {
                write_ref(&c, r).unwrap();
            }
            let r = Reader::from_connection(c);
            (r.message("Q1").unwrap(), r.signed("d1").unwrap())
        };
        assert_eq!(rows(&folded), rows(&refs(&round)));
    }

    #[test]
    fn a_sessions_login_tls_and_end_fold_into_its_start_when_in_the_same_round() {
        let start = |id: &str, t: i64| Record::Session {
            id: id.into(),
            listener: "submission".into(),
            ip: "203.0.113.9".into(),
            port: 40001,
            local: "192.0.2.1:587".into(),
            proxy: None,
            time_ms: t,
            tls: None,
            login: None,
            end_ms: None,
        };
        // S0 started in an earlier round: its records stay updates.
        let earlier = [start("S0", 1)];
        let round = vec![
            Record::Login { session: "S0".into(), login: "bob".into() },
            start("S1", 2),
            Record::Tls { session: "S1".into(), version: "TLSv1_2".into() },
            Record::Login { session: "S1".into(), login: "alice".into() },
            Record::Tls { session: "S1".into(), version: "TLSv1_3".into() },
            Record::SessionEnd { id: "S0".into(), time_ms: 8 },
            Record::SessionEnd { id: "S1".into(), time_ms: 9 },
        ];
        let folded = coalesce(refs(&round)).records;
        assert_eq!(folded.len(), 3, "{folded:?}");
        assert!(
            matches!(
                &folded[1],
                RecordRef::Session { id: "S1", tls: Some("TLSv1_3"), login: Some("alice"), end_ms: Some(9), .. }
            ),
            "{folded:?}"
        );
        let rows = |records: &[RecordRef]| {
            let c = Connection::open_in_memory().unwrap();
            c.execute_batch(SCHEMA).unwrap();
            for r in refs(&earlier).iter().chain(records) {
                write_ref(&c, r).unwrap();
            }
            let r = Reader::from_connection(c);
            (r.session("S0").unwrap(), r.session("S1").unwrap())
        };
        let (s0, s1) = rows(&folded);
        assert_eq!(s0.as_ref().and_then(|s| s.login.as_deref()), Some("bob"));
        assert_eq!(s1.as_ref().and_then(|s| s.tls.as_deref()), Some("TLSv1_3"));
        assert_eq!((s0, s1), rows(&refs(&round)), "what one by one writes");
        // A start seen twice keeps what the first one's row was given.
        let twice = [start("S2", 3), Record::Login { session: "S2".into(), login: "carol".into() }, start("S2", 4)];
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        for r in &coalesce(refs(&twice)).records {
            write_ref(&c, r).unwrap();
        }
        let s2 = Reader::from_connection(c).session("S2").unwrap().unwrap();
        assert_eq!((s2.login.as_deref(), s2.start.as_str()), (Some("carol"), utc(3).as_str()));
    }

    #[test]
    fn every_record_comes_out_of_the_queue_as_it_went_in() {
        let records = [
            Record::Session {
                id: "S1".into(),
                listener: "submission".into(),
                ip: "2001:db8::1".into(),
                port: 65535,
                local: "[2001:db8::2]:587".into(),
                proxy: Some("10.0.0.1:9".into()),
                time_ms: -1,
                tls: Some("TLSv1_3".into()),
                login: Some("Zoë@example.net".into()),
                end_ms: Some(i64::MAX),
            },
            Record::Session {
                id: String::new(),
                listener: "mx".into(),
                ip: "203.0.113.9".into(),
                port: 0,
                local: String::new(),
                proxy: None,
                time_ms: 7,
                tls: None,
                login: None,
                end_ms: None,
            },
            Record::SessionEnd { id: "S1".into(), time_ms: 9 },
            Record::Tls { session: "S1".into(), version: "TLSv1_2".into() },
            Record::Login { session: "S1".into(), login: "alice".into() },
            Record::Message {
                id: "S1001".into(),
                session: "S1".into(),
                time_ms: 10,
                message_id: Some("m@x".into()),
                login: None,
                sender: Some(String::new()),
                size: Some(0),
            },
            Record::Message {
                id: "S1002".into(),
                session: "S1".into(),
                time_ms: 11,
                message_id: None,
                login: Some("alice".into()),
                sender: None,
                size: None,
            },
            Record::Rcpt {
                id: "S1001".into(),
                rcpt: "bob@remote.example".into(),
                outcome: "expired",
                detail: "550 5.1.1 ".repeat(1000),
                time_ms: 12,
            },
            Record::Dkim { id: "S1001".into(), digest: "d1".into() },
        ];
        let mut bytes = Vec::new();
        for r in refs(&records) {
            assert!(wire::encode(&mut bytes, &r));
        }
        assert_eq!(wire::Decoder::new(&bytes).collect::<Vec<_>>(), refs(&records));
        // An outcome the index does not know is not queued, nor anything
        // half written of it.
        let before = bytes.len();
        let odd = RecordRef::Rcpt { id: "S1", rcpt: "x", outcome: "lost", detail: "", time_ms: 1 };
        assert!(!wire::encode(&mut bytes, &odd));
        assert_eq!(bytes.len(), before);
        // A cut buffer yields the records before the cut, then nothing.
        let cut = &bytes[..before - 3];
        assert_eq!(wire::Decoder::new(cut).count(), records.len() - 1);
    }

    #[test]
    fn what_was_sent_before_the_last_handle_went_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abuse.sqlite");
        let index = Index::start(&path, Duration::from_secs(86400)).unwrap();
        let shared = index.shared.clone();
        for r in message_at(1, now_ms()) {
            index.send(r);
        }
        drop(index);
        // The writer ends once it has written them (and lets go of the
        // database); bounded, so that a writer that never ends fails here.
        let t = Instant::now();
        while shared.running.load(Ordering::SeqCst) {
            assert!(t.elapsed() < Duration::from_secs(30), "the writer did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
        let found = Reader::open(&path).unwrap().trace(&Query::QueueId("S1A".into()), 10).unwrap();
        assert_eq!(found.messages.len(), 1);
        assert_eq!(found.messages[0].recipients.len(), 1);
    }

    #[test]
    fn a_full_queue_drops_and_counts_what_does_not_fit_and_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let index = Index::start(&dir.path().join("abuse.sqlite"), Duration::from_secs(86400)).unwrap();
        // A queue as full as senders faster than the writer leave it
        // (the writer is not woken: it leaves the queue alone).
        {
            let mut q = index.queue();
            q.records = QUEUE;
        }
        let lost = index.send_marked(Record::Login { session: "S1".into(), login: "a".into() });
        assert_eq!(index.dropped(), 1);
        index.queue().records = 0;
        assert!(index.sync(Duration::from_secs(10)));
        assert!(!index.written(&lost), "dropped: not known written");
    }

    #[test]
    fn a_record_is_known_written_once_the_writer_is_past_it_and_nothing_was_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abuse.sqlite");
        let index = Index::start(&path, Duration::from_secs(86400)).unwrap();
        let login = |n: &str| Record::Login { session: "S1".into(), login: n.into() };
        let first = index.send_marked(login("a"));
        assert!(index.sync(Duration::from_secs(10)));
        assert!(index.written(&first));
        // A record lost after one was sent: whether that one is written
        // is no longer known from memory (the database says).
        let second = index.send_marked(login("b"));
        index.shared.progress.lost.fetch_add(1, Ordering::SeqCst);
        assert!(index.sync(Duration::from_secs(10)));
        assert!(!index.written(&second));
        let third = index.send_marked(login("c"));
        assert!(index.sync(Duration::from_secs(10)));
        assert!(index.written(&third), "sent after the loss");
    }

    #[test]
    fn written_rows_are_found_by_each_key_and_pruned_after_retention() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abuse.sqlite");
        let index = Index::start(&path, Duration::from_secs(86400)).unwrap();
        let t0 = now_ms();
        index.send(Record::Session {
            id: "S1".into(),
            listener: "submission".into(),
            ip: "203.0.113.9".into(),
            port: 40001,
            local: "192.0.2.1:587".into(),
            proxy: None,
            time_ms: t0,
            tls: None,
            login: None,
            end_ms: None,
        });
        index.send(Record::Session {
            id: "S2".into(),
            listener: "submission".into(),
            ip: "203.0.113.9".into(),
            port: 40002,
            local: "192.0.2.1:587".into(),
            proxy: None,
            time_ms: t0,
            tls: None,
            login: None,
            end_ms: None,
        });
        index.send(Record::Login { session: "S1".into(), login: "alice@example.net".into() });
        index.send(Record::Tls { session: "S1".into(), version: "TLSv1_3".into() });
        let msg = |mid: Option<&str>, login: Option<&str>| Record::Message {
            id: "S1A".into(),
            session: "S1".into(),
            time_ms: t0 + 5,
            message_id: mid.map(Into::into),
            login: login.map(Into::into),
            sender: None,
            size: Some(10),
        };
        // Two writers of one message, in either order, make one row.
        index.send(msg(None, Some("alice@example.net")));
        index.send(msg(Some("m1@example.net"), None));
        index.send(Record::Rcpt {
            id: "S1A".into(),
            rcpt: "x@remote.example".into(),
            outcome: "accepted",
            detail: String::new(),
            time_ms: t0 + 5,
        });
        index.send(Record::Rcpt {
            id: "S1A".into(),
            rcpt: "x@remote.example".into(),
            outcome: "delivered",
            detail: "250 ok".into(),
            time_ms: t0 + 9,
        });
        index.send(Record::SessionEnd { id: "S1".into(), time_ms: t0 + 20 });
        index.send(Record::SessionEnd { id: "S2".into(), time_ms: t0 + 20 });
        assert!(index.sync(Duration::from_secs(10)));
        let r = Reader::open(&path).unwrap();
        let by_mid = r.trace(&Query::MessageId("<m1@example.net>".into()), 10).unwrap();
        assert_eq!(by_mid.messages.len(), 1);
        let m = &by_mid.messages[0];
        assert_eq!((m.login.as_deref(), m.size), (Some("alice@example.net"), Some(10)));
        assert_eq!(m.recipients[0].outcome, "delivered");
        assert_eq!(by_mid.sessions[0].tls.as_deref(), Some("TLSv1_3"));
        assert_eq!(r.trace(&Query::QueueId("S1A".into()), 10).unwrap(), by_mid);
        let ip = "203.0.113.9".parse().unwrap();
        let by_port =
            r.trace(&Query::Client { ip, port: Some(40001), from_ms: t0 - 1000, to_ms: t0 + 1000 }, 10).unwrap();
        assert_eq!(by_port.sessions.len(), 1, "the port tells two sessions of one address apart (RFC 6302)");
        assert_eq!(by_port.messages, by_mid.messages);
        assert_eq!(
            r.trace(&Query::Client { ip, port: None, from_ms: t0 - 1000, to_ms: t0 + 1000 }, 10)
                .unwrap()
                .sessions
                .len(),
            2
        );
        assert!(
            r.trace(&Query::Client { ip, port: None, from_ms: t0 + 60_000, to_ms: t0 + 70_000 }, 10)
                .unwrap()
                .sessions
                .is_empty(),
            "ended before the window"
        );
        let mapped: IpAddr = "::ffff:203.0.113.9".parse().unwrap();
        assert_eq!(
            r.trace(&Query::Client { ip: mapped, port: Some(40001), from_ms: t0 - 1000, to_ms: t0 + 1000 }, 10)
                .unwrap()
                .sessions
                .len(),
            1
        );
        let c = open(&path).unwrap();
        assert!(prune(&c, t0 + 10_000, t0).unwrap().0 >= 4);
        assert_eq!(r.trace(&Query::QueueId("S1A".into()), 10).unwrap(), Trace::default());
    }

    /// [`message_at`] written, its recipient's outcome written twice (the
    /// second an update of the row).
    fn session_and_message(c: &Connection, n: u64, t: i64) {
        let records = message_at(n, t);
        for r in records.iter().chain(&records[2..]) {
            write(c, r).unwrap();
        }
    }

    fn count(c: &Connection, table: &str) -> i64 {
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn pruning_goes_in_batches_by_insertion_order_and_takes_a_messages_recipients_along() {
        let dir = tempfile::tempdir().unwrap();
        let c = open_bulk(&dir.path().join("abuse.sqlite")).unwrap();
        let now = now_ms();
        let old = (PRUNE_BATCH + PRUNE_BATCH / 2) as u64;
        let tx = c.unchecked_transaction().unwrap();
        for n in 0..old {
            session_and_message(&tx, n, now - 90 * 86_400_000);
        }
        for n in old..old + 10 {
            session_and_message(&tx, n, now - 1000);
        }
        tx.commit().unwrap();
        assert_eq!(count(&c, "rcpts"), (old + 10) as i64, "an outcome updates its recipient's row");
        let cutoff = now - 30 * 86_400_000;
        let (first, more) = prune(&c, cutoff, now).unwrap();
        assert!(more, "a batch at most per call");
        assert_eq!(first, 3 * PRUNE_BATCH, "sessions, messages, recipients");
        let (second, more) = prune(&c, cutoff, now).unwrap();
        assert_eq!((second, more), (3 * (old as usize - PRUNE_BATCH), false));
        assert_eq!(prune(&c, cutoff, now).unwrap(), (0, false));
        for table in ["sessions", "messages", "rcpts"] {
            assert_eq!(count(&c, table), 10, "{table}: what is within retention stays");
        }
    }

    #[test]
    fn a_row_dated_far_ahead_does_not_stop_the_pruning_of_the_rows_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(&dir.path().join("abuse.sqlite")).unwrap();
        let now = now_ms();
        session_and_message(&c, 0, now - 90 * 86_400_000);
        session_and_message(&c, 1, now + 365 * 86_400_000);
        session_and_message(&c, 2, now - 80 * 86_400_000);
        session_and_message(&c, 3, now + 3_600_000);
        session_and_message(&c, 4, now - 70 * 86_400_000);
        prune(&c, now - 30 * 86_400_000, now).unwrap();
        let left: Vec<String> = c
            .prepare("SELECT id FROM messages ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(left, ["S3A", "S4A"], "pruned up to the first row within retention (an hour ahead counts)");
    }

    #[test]
    fn an_outcome_for_a_message_the_index_does_not_have_is_not_kept() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        write(
            &c,
            &Record::Rcpt {
                id: "NOPE".into(),
                rcpt: "bob@remote.example".into(),
                outcome: "delivered",
                detail: String::new(),
                time_ms: 1,
            },
        )
        .unwrap();
        assert_eq!(count(&c, "rcpts"), 0);
    }

    #[test]
    fn an_older_database_loses_the_indexes_by_time_and_by_session_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abuse.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE sessions(id TEXT PRIMARY KEY, listener TEXT, ip TEXT, port INTEGER, local TEXT, proxy TEXT, start_ms INTEGER, end_ms INTEGER, tls TEXT, login TEXT);
                 CREATE INDEX sessions_start ON sessions(start_ms);
                 CREATE TABLE messages(id TEXT PRIMARY KEY, session TEXT, time_ms INTEGER, message_id TEXT, login TEXT, sender TEXT, size INTEGER, dkim TEXT);
                 CREATE INDEX messages_time ON messages(time_ms);
                 CREATE INDEX messages_session ON messages(session);
                 CREATE TABLE rcpts(id TEXT, rcpt TEXT, outcome TEXT, detail TEXT, time_ms INTEGER, PRIMARY KEY(id, rcpt)) WITHOUT ROWID;
                 CREATE INDEX rcpts_time ON rcpts(time_ms);",
            )
            .unwrap();
        }
        let c = open(&path).unwrap();
        let by_time: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('sessions_start', 'messages_time', 'rcpts_time', 'messages_session')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(by_time, 0, "the indexes by time and by session are gone");
        session_and_message(&c, 0, now_ms());
        assert_eq!(count(&c, "rcpts"), 1);
    }

    /// A session's messages are read by the range of queue ids that begin
    /// with its id: another session whose id begins with this one's (not
    /// the engine's, whose ids have one length; tests' and old tools')
    /// keeps its own messages.
    #[test]
    fn trace_by_client_finds_a_sessions_messages_by_their_queue_ids() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        let t0 = 1_700_000_000_000;
        let session = |id: &str, port: u16| Record::Session {
            id: id.into(),
            listener: "submission".into(),
            ip: "203.0.113.9".into(),
            port,
            local: "192.0.2.1:587".into(),
            proxy: None,
            time_ms: t0,
            tls: None,
            login: None,
            end_ms: Some(t0 + 100),
        };
        let message = |id: &str, session: &str, t: i64| Record::Message {
            id: id.into(),
            session: session.into(),
            time_ms: t,
            message_id: None,
            login: None,
            sender: None,
            size: None,
        };
        for r in [
            session("S1", 40001),
            session("S10", 40010),
            message("S1001", "S1", t0 + 2),
            message("S10001", "S10", t0 + 3),
            message("S1002", "S1", t0 + 1),
            message("S1", "S1", t0 + 4),
        ] {
            write(&c, &r).unwrap();
        }
        let r = Reader::from_connection(c);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let ids = |port| -> Vec<String> {
            r.trace(&Query::Client { ip, port: Some(port), from_ms: t0 - 1000, to_ms: t0 + 1000 }, 10)
                .unwrap()
                .messages
                .into_iter()
                .map(|m| m.queue_id)
                .collect()
        };
        assert_eq!(ids(40001), ["S1002", "S1001", "S1"], "in time order");
        assert_eq!(ids(40010), ["S10001"]);
        // A seek into the queue ids, not a scan of every message.
        let plan: Vec<String> = r
            .connection()
            .prepare(&format!("EXPLAIN QUERY PLAN {SESSION_MESSAGES}"))
            .unwrap()
            .query_map(params!["S1", queue_ids_end("S1"), 10], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(plan.iter().any(|p| p.contains("USING INDEX sqlite_autoindex_messages_1 (id>? AND id<?)")), "{plan:?}");
    }

    /// The writer's rounds: a recipient of a message of the same round or
    /// of an earlier one is kept, one of a message the index does not have
    /// is not.
    #[test]
    fn a_round_keeps_recipients_of_messages_it_or_an_earlier_round_wrote_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abuse.sqlite");
        let index = Index::start(&path, Duration::from_secs(86400)).unwrap();
        let rcpt = |id: &str, to: &str| Record::Rcpt {
            id: id.into(),
            rcpt: to.into(),
            outcome: "bounced",
            detail: String::new(),
            time_ms: now_ms(),
        };
        for r in message_at(1, now_ms()) {
            index.send(r);
        }
        index.send(rcpt("NOPE", "x@remote.example"));
        assert!(index.sync(Duration::from_secs(10)));
        index.send(rcpt("S1A", "y@remote.example"));
        index.send(rcpt("GONE", "y@remote.example"));
        assert!(index.sync(Duration::from_secs(10)));
        let c = open(&path).unwrap();
        let rows: Vec<(String, String)> = c
            .prepare("SELECT id, rcpt FROM rcpts ORDER BY id, rcpt")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected =
            [("S1A", "x@remote.example"), ("S1A", "y@remote.example")].map(|(a, b)| (a.to_owned(), b.to_owned()));
        assert_eq!(rows, expected);
    }

    /// A message's records written one by one (in rounds of their own)
    /// make one row: each later value that is there wins, a missing one
    /// keeps what the row has.
    #[test]
    fn a_messages_records_in_separate_rounds_make_one_row() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        let msg = |mid, login, size| message_record("S1A", mid, login, size);
        write(&c, &msg(None, Some("alice"), Some(10))).unwrap();
        write(&c, &msg(Some("m@x"), None, None)).unwrap();
        write(&c, &msg(None, None, Some(11))).unwrap();
        let row: (String, String, i64, i64) = c
            .query_row("SELECT message_id, login, size, time_ms FROM messages WHERE id = 'S1A'", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap();
        assert_eq!(row, ("m@x".into(), "alice".into(), 11, 5));
        assert_eq!(count(&c, "messages"), 1);
    }
}
