//! The trace index: one row per session, per message and per recipient,
//! written as the server runs, so that "who sent this?" is a B-tree lookup
//! and never a scan of logs.
//!
//! Writes go through one thread ([`Index::send`] never blocks a session):
//! it gathers records for up to [`ROUND`] (or [`ROUND_MAX`] records, or
//! until someone waits in [`Index::sync`]), sleeping while it does (a
//! record sent wakes nobody: one wake-up per round, not per record),
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records waiting for the writer at most; beyond it they are dropped.
pub const QUEUE: usize = 100_000;
/// How long the writer gathers records before it commits them. Longer
/// rounds fold more of a session's records into its one row and commit
/// less often; [`Index::sync`] ends a round at once for whoever needs the
/// rows now (a hold, the tests).
pub const ROUND: Duration = Duration::from_millis(200);
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
CREATE INDEX IF NOT EXISTS messages_session ON messages(session);
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

/// [`open`] for a bulk load (bench/trace.sh's loader): still WAL, so that
/// lookups go on during the load, but no fsync at all and a page cache
/// that holds the indexes' hot pages (the default 2 MB thrashes past a
/// few million rows).
pub fn open_bulk(path: &Path) -> rusqlite::Result<Connection> {
    let c = open(path)?;
    c.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000;")?;
    Ok(c)
}

/// The writer's handle: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Index {
    tx: SyncSender<Record>,
    dropped: Arc<AtomicU64>,
    /// The writer, woken by [`Index::sync`] (it sleeps while it gathers).
    writer: std::thread::Thread,
    progress: Arc<Progress>,
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
        let (tx, rx) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let progress = Arc::new(Progress { base: Instant::now(), through: AtomicU64::new(0), lost: AtomicU64::new(0) });
        let (d, p, path) = (dropped.clone(), progress.clone(), path.to_owned());
        let writer = std::thread::Builder::new()
            .name("abuse-index".into())
            .spawn(move || {
                Writer { conn, retention, pruned: None, prune_left: false, dropped: d, progress: p, path }.run(rx)
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Index { tx, dropped, writer: writer.thread().clone(), progress })
    }

    pub fn send(&self, r: Record) {
        match self.tx.try_send(r) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.progress.lost.fetch_add(1, Ordering::SeqCst);
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.progress.lost.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// [`Index::send`], and a mark to ask [`Index::written`] about later.
    pub fn send_marked(&self, r: Record) -> Sent {
        let lost = self.progress.lost.load(Ordering::SeqCst);
        self.send(r);
        Sent { lost, at: Instant::now() }
    }

    /// True when the record is in the database for certain: the writer
    /// has written every record sent before it, and nothing was lost
    /// since (a record dropped, a round that failed). False says
    /// "not known": ask the database.
    pub fn written(&self, sent: &Sent) -> bool {
        self.written_before(sent.at) && self.progress.lost.load(Ordering::SeqCst) == sent.lost
    }

    /// True when every record sent before `t` is done (written, or lost
    /// and counted): a row missing now is missing for good.
    pub fn written_before(&self, t: Instant) -> bool {
        let through = self.progress.through.load(Ordering::Acquire);
        t.saturating_duration_since(self.progress.base).as_nanos() < through as u128
    }

    /// Waits (at most `wait`) until every record sent before is committed.
    pub fn sync(&self, wait: Duration) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        let before = Instant::now();
        if self.tx.send(Record::Sync(tx)).is_err() {
            return false;
        }
        // The writer may be asleep for the rest of its round.
        self.writer.unpark();
        // Answered only once its round is committed: what was sent
        // before it is written.
        let done = rx.recv_timeout(wait).is_ok();
        if done {
            self.progress.advance(before);
        }
        done
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

struct Writer {
    conn: Connection,
    retention: Duration,
    pruned: Option<Instant>,
    /// The last prune stopped at its batch: go on after the next round.
    prune_left: bool,
    dropped: Arc<AtomicU64>,
    progress: Arc<Progress>,
    path: PathBuf,
}

impl Writer {
    fn run(mut self, rx: Receiver<Record>) {
        let mut reported = 0;
        loop {
            // With pruning left to do, an idle writer does it instead of
            // waiting for the next record.
            let first = if self.prune_left {
                match rx.recv_timeout(ROUND) {
                    Ok(r) => Some(r),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(r) => Some(r),
                    Err(_) => break,
                }
            };
            let (round, drained) = match first {
                Some(first) => gather(first, &rx, ROUND, ROUND_MAX),
                None => (Vec::new(), None),
            };
            if round.is_empty() {
                // Only pruning to do (below).
            } else if let Err(e) = self.round(round) {
                self.progress.lost.fetch_add(1, Ordering::SeqCst);
                emit!(error, ev::ABUSE_INDEX_FAILED, path = %self.path.display(), error = %e);
            }
            // Lost or written, every record sent before `drained` is done.
            if let Some(t) = drained {
                self.progress.advance(t);
            }
            let dropped = self.dropped.load(Ordering::Relaxed);
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

    fn round(&mut self, round: Vec<Record>) -> rusqlite::Result<()> {
        let mut syncs = Vec::new();
        let tx = self.conn.transaction()?;
        for r in coalesce(round) {
            if let Record::Sync(s) = r {
                syncs.push(s);
            } else {
                write(&tx, &r)?;
            }
        }
        tx.commit()?;
        for s in syncs {
            let _ = s.send(());
        }
        Ok(())
    }
}

/// One round: `first` (the record that woke the writer), then what
/// arrives within `window` of it, at most `max`; a [`Record::Sync`] ends
/// the round at once (someone waits, and [`Index::sync`] wakes the
/// writer). With it, the last instant the queue was seen empty (taken before looking): every record sent before it is in
/// this round or an earlier one.
///
/// Between records the writer sleeps (`park_timeout`) instead of waiting
/// in `recv`: a receiver blocked in `recv` is woken by every send, a
/// futex call on the session's side and a context switch per record,
/// about ten per message.
fn gather(first: Record, rx: &Receiver<Record>, window: Duration, max: usize) -> (Vec<Record>, Option<Instant>) {
    let deadline = Instant::now() + window;
    let mut round = vec![first];
    let mut drained = None;
    while round.len() < max && !matches!(round.last(), Some(Record::Sync(_))) {
        let looked = Instant::now();
        match rx.try_recv() {
            Ok(r) => round.push(r),
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                drained = Some(looked);
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::park_timeout(left);
            }
        }
    }
    (round, drained)
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
pub fn coalesce(round: Vec<Record>) -> Vec<Record> {
    use crate::FastMap;
    let mut out: Vec<Record> = Vec::with_capacity(round.len());
    let mut messages: FastMap<String, usize> = FastMap::default();
    let mut rcpts: FastMap<(String, String), usize> = FastMap::default();
    let mut sessions: FastMap<String, usize> = FastMap::default();
    // The session row that `id` updates, when its start is in the round.
    fn started<'a>(out: &'a mut [Record], sessions: &FastMap<String, usize>, id: &str) -> Option<&'a mut Record> {
        sessions.get(id).map(|&i| &mut out[i])
    }
    for r in round {
        match r {
            Record::Session { id, listener, ip, port, local, proxy, time_ms, tls, login, end_ms } => {
                // A second start of one id is ignored by the insert but its
                // fields still apply (the upsert): it stays a record of its own.
                sessions.entry(id.clone()).or_insert(out.len());
                out.push(Record::Session { id, listener, ip, port, local, proxy, time_ms, tls, login, end_ms });
            }
            Record::Tls { session, version } => match started(&mut out, &sessions, &session) {
                Some(Record::Session { tls, .. }) => *tls = Some(version),
                _ => out.push(Record::Tls { session, version }),
            },
            Record::Login { session, login } => match started(&mut out, &sessions, &session) {
                Some(Record::Session { login: l, .. }) => *l = Some(login),
                _ => out.push(Record::Login { session, login }),
            },
            Record::SessionEnd { id, time_ms } => match started(&mut out, &sessions, &id) {
                Some(Record::Session { end_ms, .. }) => *end_ms = Some(time_ms),
                _ => out.push(Record::SessionEnd { id, time_ms }),
            },
            Record::Message { id, session, time_ms, message_id, login, sender, size } => match messages.get(&id) {
                Some(&i) => {
                    if let Record::Message { message_id: m, login: l, sender: s, size: z, .. } = &mut out[i] {
                        *m = message_id.or(m.take());
                        *l = login.or(l.take());
                        *s = sender.or(s.take());
                        *z = size.or(z.take());
                    }
                }
                None => {
                    messages.insert(id.clone(), out.len());
                    out.push(Record::Message { id, session, time_ms, message_id, login, sender, size });
                }
            },
            Record::Rcpt { id, rcpt, outcome, detail, time_ms } => {
                let key = (id, rcpt);
                match rcpts.get(&key) {
                    Some(&i) => {
                        if let Record::Rcpt { outcome: o, detail: d, time_ms: t, .. } = &mut out[i] {
                            (*o, *d, *t) = (outcome, detail, time_ms);
                        }
                    }
                    None => {
                        rcpts.insert(key.clone(), out.len());
                        out.push(Record::Rcpt { id: key.0, rcpt: key.1, outcome, detail, time_ms });
                    }
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Writes one record (the writer, and the bench's loader, use it).
pub fn write(c: &Connection, r: &Record) -> rusqlite::Result<()> {
    match r {
        Record::Session { id, listener, ip, port, local, proxy, time_ms, tls, login, end_ms } => {
            // A session's start is written once (a second one is ignored);
            // what was folded into it sets its fields as the updates would.
            c.prepare_cached(
                "INSERT INTO sessions(id, listener, ip, port, local, proxy, start_ms, tls, login, end_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(id) DO UPDATE SET tls = coalesce(excluded.tls, tls), login = coalesce(excluded.login, login),
                 end_ms = coalesce(excluded.end_ms, end_ms)",
            )?
            .execute(params![id, listener, ip, port, local, proxy, time_ms, tls, login, end_ms])?;
        }
        Record::SessionEnd { id, time_ms } => {
            c.prepare_cached("UPDATE sessions SET end_ms = ?2 WHERE id = ?1")?.execute(params![id, time_ms])?;
        }
        Record::Tls { session, version } => {
            c.prepare_cached("UPDATE sessions SET tls = ?2 WHERE id = ?1")?.execute(params![session, version])?;
        }
        Record::Login { session, login } => {
            c.prepare_cached("UPDATE sessions SET login = ?2 WHERE id = ?1")?.execute(params![session, login])?;
        }
        Record::Message { id, session, time_ms, message_id, login, sender, size } => {
            c.prepare_cached(
                "INSERT INTO messages(id, session, time_ms, message_id, login, sender, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(id) DO UPDATE SET message_id = coalesce(excluded.message_id, message_id), login = coalesce(excluded.login, login),
                 sender = coalesce(excluded.sender, sender), size = coalesce(excluded.size, size)",
            )?
            .execute(params![id, session, time_ms, message_id, login, sender, size])?;
        }
        Record::Rcpt { id, rcpt, outcome, detail, time_ms } => {
            // Only for a message the index has: [`prune`] removes a
            // message's recipients with it, so one without its message
            // (its record lost, or queued before the index existed) would
            // stay forever. A later outcome updates the row in place.
            c.prepare_cached(
                "INSERT INTO rcpts(id, rcpt, outcome, detail, time_ms)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM messages WHERE id = ?1)
                 ON CONFLICT(id, rcpt) DO UPDATE SET outcome = excluded.outcome, detail = excluded.detail, time_ms = excluded.time_ms",
            )?
            .execute(params![id, rcpt, outcome, detail, time_ms])?;
        }
        Record::Dkim { id, digest } => {
            c.prepare_cached("UPDATE messages SET dkim = ?2 WHERE id = ?1")?.execute(params![id, digest])?;
        }
        Record::Sync(_) => {}
    }
    Ok(())
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
                    let ids = self.ids(
                        "SELECT id FROM messages WHERE session = ?1 ORDER BY time_ms LIMIT ?2",
                        params![s, limit],
                    )?;
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

    #[test]
    fn a_round_folds_the_records_of_one_row_and_writes_what_they_write_one_by_one() {
        let msg = |mid: Option<&str>, login: Option<&str>, size: Option<i64>| Record::Message {
            id: "Q1".into(),
            session: "S1".into(),
            time_ms: 5,
            message_id: mid.map(Into::into),
            login: login.map(Into::into),
            sender: None,
            size,
        };
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
        let folded = coalesce(round.clone());
        assert_eq!(folded.len(), 3, "{folded:?}");
        assert!(
            matches!(&folded[0], Record::Message { message_id: Some(m), login: Some(l), size: Some(11), .. } if m == "m@x" && l == "alice")
        );
        assert!(matches!(&folded[1], Record::Rcpt { outcome, time_ms: 3, .. } if *outcome == "delivered"));
        assert!(matches!(&folded[2], Record::Dkim { .. }), "after the row it updates");
        let rows = |records: Vec<Record>| {
            let c = Connection::open_in_memory().unwrap();
            c.execute_batch(SCHEMA).unwrap();
            for r in &records {
                write(&c, r).unwrap();
            }
            let r = Reader::from_connection(c);
            (r.message("Q1").unwrap(), r.signed("d1").unwrap())
        };
        assert_eq!(rows(folded), rows(round));
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
        let folded = coalesce(round.clone());
        assert_eq!(folded.len(), 3, "{folded:?}");
        assert!(
            matches!(&folded[1], Record::Session { id, tls: Some(t), login: Some(l), end_ms: Some(9), .. }
                if id == "S1" && t == "TLSv1_3" && l == "alice"),
            "{folded:?}"
        );
        let rows = |records: Vec<Record>| {
            let c = Connection::open_in_memory().unwrap();
            c.execute_batch(SCHEMA).unwrap();
            for r in earlier.iter().chain(&records) {
                write(&c, r).unwrap();
            }
            let r = Reader::from_connection(c);
            (r.session("S0").unwrap(), r.session("S1").unwrap())
        };
        let (s0, s1) = rows(folded.clone());
        assert_eq!(s0.as_ref().and_then(|s| s.login.as_deref()), Some("bob"));
        assert_eq!(s1.as_ref().and_then(|s| s.tls.as_deref()), Some("TLSv1_3"));
        assert_eq!((s0, s1), rows(round), "what one by one writes");
        // A start seen twice keeps what the first one's row was given.
        let twice = coalesce(vec![
            start("S2", 3),
            Record::Login { session: "S2".into(), login: "carol".into() },
            start("S2", 4),
        ]);
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        for r in &twice {
            write(&c, r).unwrap();
        }
        let s2 = Reader::from_connection(c).session("S2").unwrap().unwrap();
        assert_eq!((s2.login.as_deref(), s2.start.as_str()), (Some("carol"), utc(3).as_str()));
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
        index.progress.lost.fetch_add(1, Ordering::SeqCst);
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
    fn an_older_database_loses_the_indexes_by_time_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abuse.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE sessions(id TEXT PRIMARY KEY, listener TEXT, ip TEXT, port INTEGER, local TEXT, proxy TEXT, start_ms INTEGER, end_ms INTEGER, tls TEXT, login TEXT);
                 CREATE INDEX sessions_start ON sessions(start_ms);
                 CREATE TABLE messages(id TEXT PRIMARY KEY, session TEXT, time_ms INTEGER, message_id TEXT, login TEXT, sender TEXT, size INTEGER, dkim TEXT);
                 CREATE INDEX messages_time ON messages(time_ms);
                 CREATE TABLE rcpts(id TEXT, rcpt TEXT, outcome TEXT, detail TEXT, time_ms INTEGER, PRIMARY KEY(id, rcpt)) WITHOUT ROWID;
                 CREATE INDEX rcpts_time ON rcpts(time_ms);",
            )
            .unwrap();
        }
        let c = open(&path).unwrap();
        let by_time: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('sessions_start', 'messages_time', 'rcpts_time')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(by_time, 0);
        session_and_message(&c, 0, now_ms());
        assert_eq!(count(&c, "rcpts"), 1);
    }
}
