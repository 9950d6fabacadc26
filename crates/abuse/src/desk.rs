//! The desk: per-login signals with their evidence, the actions they take
//! (tag, hold, lock), complaints from the abuse mailbox, and what
//! `port25 users explain|release` and `port25 queue release` read and
//! change.
//!
//! State lives in the same SQLite file as the index (`data_dir/abuse/
//! abuse.sqlite`): `logins` (the action in force and why), `signals` (each
//! with its evidence), `daily` (a login's counts per UTC day: its own
//! history), `networks` (networks, ASNs and countries a login came from),
//! `complaints` (each report and its verdict) and `released` (held
//! messages the operator let go). The CLI changes these tables; the server
//! notices within a second and applies them: `PRAGMA data_version` says
//! another connection wrote (the index writer does, every round), and the
//! `generation` row, which triggers on `logins` and `released` bump, says
//! whether it was a change the desk must read; only then are they read.
//!
//! In memory: per login the day's counters (fixed size), the actions in
//! force, the messages released one by one, and the held logins' mail of
//! the last moments that the index may not hold yet. Whether a queued
//! message is held is asked of the index (its login) only while some
//! login is on hold, so memory follows the logins, never their mail.

use crate::complaints::{self, RateLimit, Verdict};
use crate::index::{self, now_ms, Index, RecordRef};
use crate::signals::{network_of, Action, Day, Kind, Rules};
use port25_events as ev;
use port25_events::emit;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const STATE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS logins(login TEXT PRIMARY KEY, action TEXT, since_ms INTEGER, reason TEXT, first_complaint_ms INTEGER);
CREATE TABLE IF NOT EXISTS signals(login TEXT, time_ms INTEGER, kind TEXT, evidence TEXT, action TEXT);
CREATE INDEX IF NOT EXISTS signals_login ON signals(login, time_ms);
CREATE TABLE IF NOT EXISTS daily(login TEXT, day INTEGER, messages INTEGER, recipients INTEGER, complaints INTEGER, bounces INTEGER,
    PRIMARY KEY(login, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS networks(login TEXT, kind TEXT, value TEXT, first_ms INTEGER, PRIMARY KEY(login, kind, value)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS complaints(time_ms INTEGER, reporter TEXT, verdict TEXT, login TEXT, queue_id TEXT, reason TEXT);
CREATE INDEX IF NOT EXISTS complaints_time ON complaints(time_ms);
CREATE UNIQUE INDEX IF NOT EXISTS complaints_once ON complaints(queue_id) WHERE verdict = 'ours';
CREATE TABLE IF NOT EXISTS released(id TEXT PRIMARY KEY, time_ms INTEGER);
CREATE TABLE IF NOT EXISTS generation(n INTEGER NOT NULL);
INSERT INTO generation(n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM generation);
CREATE TRIGGER IF NOT EXISTS logins_insert AFTER INSERT ON logins BEGIN UPDATE generation SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS logins_update AFTER UPDATE ON logins BEGIN UPDATE generation SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS logins_delete AFTER DELETE ON logins BEGIN UPDATE generation SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS released_insert AFTER INSERT ON released BEGIN UPDATE generation SET n = n + 1; END;
CREATE TRIGGER IF NOT EXISTS released_delete AFTER DELETE ON released BEGIN UPDATE generation SET n = n + 1; END;
CREATE TABLE IF NOT EXISTS cursor(name TEXT PRIMARY KEY, value INTEGER);
";

/// A connection to the desk's database.
pub type Db = Connection;

/// The desk's database under `data_dir`.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("abuse").join("abuse.sqlite")
}

/// Opens the database with the index's and the desk's tables.
pub fn open_db(path: &Path) -> rusqlite::Result<Connection> {
    let c = index::open(path)?;
    c.execute_batch(STATE_SCHEMA)?;
    Ok(c)
}

/// Reports read per tick from the abuse mailbox at most.
const REPORTS_PER_TICK: usize = 200;
/// A report larger than this is not read (counted unparsed).
const MAX_REPORT: u64 = 10 * 1024 * 1024;
/// Days of a login's history its baseline averages.
const HISTORY_DAYS: i64 = 28;

pub struct Config {
    pub data_dir: PathBuf,
    pub hostname: String,
    pub retention: Duration,
    pub rules: Rules,
    /// The reply text of a locked login's AUTH (after 454 4.7.0).
    pub lock_text: String,
    /// Told of every hold and lock.
    pub notify: Option<String>,
    /// A Maildir (a directory with new/) or an mbox file of abuse reports.
    pub mailbox: Option<PathBuf>,
    /// Country and ASN of a login's address (the report's enrichment).
    pub enrich: Option<port25_report::enrich::Enricher>,
    pub reports_per_hour: u32,
}

/// A message for the notify address; the binary stores it (the desk
/// never sends mail itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// Stores a notice (set by the binary).
pub type NoticeFn = dyn Fn(Notice) + Send + Sync;

#[derive(Debug, Clone)]
struct InForce {
    action: Action,
}

/// A held login's message the index may not have yet.
struct Recent {
    login: String,
    /// When it was taken (ms), and when its index record was sent.
    at: i64,
    sent: index::Sent,
}

#[derive(Default)]
struct State {
    days: crate::FastMap<String, Day>,
    /// (day computed for, messages, recipients): the login's daily averages.
    baselines: crate::FastMap<String, (i64, f64, f64)>,
    actions: crate::FastMap<String, InForce>,
    /// Queue id -> its login, for mail of held and locked logins taken
    /// in the last moments: the index writer may not have stored it yet.
    /// Dropped once the index has it ([`Desk::forget_indexed`]).
    recent: crate::FastMap<String, Recent>,
    released: HashSet<String>,
    data_version: i64,
    generation: i64,
    /// Per login the networks, ASNs and countries the `networks` table
    /// has for it (read or written by this process; rows are never
    /// removed), so that a login from a known place, most logins, reads
    /// no database. At most [`NETWORKS_KNOWN`] in all; past that the table
    /// is asked.
    networks: HashMap<String, Vec<(&'static str, String)>>,
    networks_known: usize,
}

impl State {
    fn holds(&self, login: &str) -> bool {
        self.actions.get(login).is_some_and(|f| f.action >= Action::Hold)
    }

    fn any_hold(&self) -> bool {
        self.actions.values().any(|f| f.action >= Action::Hold)
    }

    fn knows_network(&self, login: &str, kind: &str, value: &str) -> bool {
        self.networks.get(login).is_some_and(|v| v.iter().any(|(k, x)| *k == kind && x == value))
    }

    fn remember_network(&mut self, login: &str, kind: &'static str, value: String) {
        if self.networks_known < NETWORKS_KNOWN && !self.knows_network(login, kind, &value) {
            self.networks.entry(login.to_owned()).or_default().push((kind, value));
            self.networks_known += 1;
        }
    }
}

/// Networks, ASNs and countries of logins remembered in memory at most
/// (a few MB); the `networks` table has them all.
const NETWORKS_KNOWN: usize = 100_000;

/// How long a held login's message stays in memory before the desk asks
/// whether the index has it (the writer commits every second).
const RECENT_MS: i64 = 5_000;
/// How long [`Desk::held`] waits for the index writer on a miss (the sync
/// ends its round at once; writing a round takes milliseconds).
const HELD_SYNC_WAIT: Duration = Duration::from_millis(500);

pub struct Desk {
    cfg: Config,
    index: Index,
    db: Mutex<Connection>,
    state: Mutex<State>,
    rate: Mutex<RateLimit>,
    notices: Mutex<Option<Box<NoticeFn>>>,
    /// When the desk's own tables were last pruned.
    pruned: Mutex<Option<std::time::Instant>>,
}

fn today() -> i64 {
    now_ms().div_euclid(86_400_000)
}

impl Desk {
    pub fn open(cfg: Config) -> rusqlite::Result<Arc<Desk>> {
        let path = db_path(&cfg.data_dir);
        let db = open_db(&path)?;
        let index = Index::start(&path, cfg.retention)?;
        let rate = RateLimit::new(cfg.reports_per_hour);
        let desk = Arc::new(Desk {
            cfg,
            index,
            db: Mutex::new(db),
            state: Mutex::new(State::default()),
            rate: Mutex::new(rate),
            notices: Mutex::new(None),
            pruned: Mutex::new(None),
        });
        desk.reload()?;
        Ok(desk)
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Where hold and lock notices go (the binary stores them as mail).
    pub fn on_notice(&self, f: Box<dyn Fn(Notice) + Send + Sync>) {
        *self.notices.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the actions in force and the released messages again, when
    /// another connection (the CLI) changed them.
    fn reload(&self) -> rusqlite::Result<()> {
        let db = self.db();
        let version: i64 = db.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        if self.state().data_version == version && version != 0 {
            return Ok(());
        }
        // The index writer changes data_version every round; the desk's
        // tables change only when someone acts.
        let generation: i64 = db.query_row("SELECT n FROM generation", [], |r| r.get(0))?;
        {
            let mut s = self.state();
            if s.data_version != 0 && s.generation == generation {
                s.data_version = version.max(1);
                return Ok(());
            }
        }
        let mut actions = crate::FastMap::default();
        {
            let mut st = db.prepare_cached("SELECT login, action FROM logins WHERE action IS NOT NULL")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (login, action) = row?;
                if let Some(action) = Action::parse(&action) {
                    actions.insert(login, InForce { action });
                }
            }
        }
        let released: HashSet<String> = db
            .prepare_cached("SELECT id FROM released")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut s = self.state();
        s.data_version = version.max(1);
        s.generation = generation;
        // A login released by the operator starts its day over: only new
        // evidence raises a signal again.
        let released_logins: Vec<String> = s.actions.keys().filter(|l| !actions.contains_key(*l)).cloned().collect();
        for l in released_logins {
            s.days.insert(l, Day::new(today()));
        }
        s.actions = actions;
        s.released = released;
        let State { recent, actions, .. } = &mut *s;
        recent.retain(|_, r| actions.get(&r.login).is_some_and(|f| f.action >= Action::Hold));
        Ok(())
    }

    /// Drops from memory the held mail the index has stored by now; what it
    /// has not (a record dropped when its queue was full) stays. The
    /// writer's progress says so for most without reading the database;
    /// the rest (something was lost since) is looked up once old enough.
    fn forget_indexed(&self) {
        let due: Vec<String> = {
            let mut s = self.state();
            s.recent.retain(|_, r| !self.index.written(&r.sent));
            let cutoff = now_ms() - RECENT_MS;
            s.recent.iter().filter(|(_, r)| r.at < cutoff).map(|(id, _)| id.clone()).collect()
        };
        if due.is_empty() {
            return;
        }
        let stored: Vec<String> = {
            let db = self.db();
            let Ok(mut st) = db.prepare_cached("SELECT 1 FROM messages WHERE id = ?1") else { return };
            due.into_iter().filter(|id| st.exists([id]).unwrap_or(false)).collect()
        };
        let mut s = self.state();
        for id in stored {
            s.recent.remove(&id);
        }
    }

    /// A login authenticated: indexed on its session; a network, ASN or
    /// country it never used raises a signal (once it has a history).
    /// Reads the login's history for the day too (once a day), so that
    /// [`Desk::submit`] need not.
    pub fn logged_in(&self, session: &str, login: &str, ip: IpAddr, tls: Option<&str>) {
        self.index.send_ref(RecordRef::Login { session, login });
        // Keyed as submission counts it (lower case).
        self.baseline(&login.to_lowercase());
        if let Some(v) = tls {
            self.index.send_ref(RecordRef::Tls { session, version: v });
        }
        let ip = ip.to_canonical();
        let mut seen: Vec<(Kind, &'static str, String)> = vec![(Kind::NewNetwork, "network", network_of(ip))];
        if let Some(e) = &self.cfg.enrich {
            let info = e.lookup(ip, today());
            if let Some(c) = info.country {
                seen.push((Kind::NewCountry, "country", port25_report::enrich::country_str(c)));
            }
            if let Some(a) = info.asns.first() {
                seen.push((Kind::NewAsn, "asn", format!("AS{a}")));
            }
        }
        // Where the login came from before: mostly remembered already.
        seen.retain(|(_, name, value)| !self.state().knows_network(login, name, value));
        let mut raised = Vec::new();
        let mut known_now = Vec::new();
        if !seen.is_empty() {
            let db = self.db();
            for (kind, name, value) in seen {
                let known: Vec<String> = match db
                    .prepare_cached("SELECT value FROM networks WHERE login = ?1 AND kind = ?2 LIMIT 50")
                    .and_then(|mut st| st.query_map(params![login, name], |r| r.get(0))?.collect())
                {
                    Ok(k) => k,
                    Err(e) => {
                        emit!(error, ev::ABUSE_STATE_FAILED, error = %e);
                        continue;
                    }
                };
                if known.contains(&value) {
                    known_now.push((name, value));
                    continue;
                }
                let stored = db.execute(
                    "INSERT OR IGNORE INTO networks(login, kind, value, first_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![login, name, value, now_ms()],
                );
                match stored {
                    Ok(_) => known_now.push((name, value.clone())),
                    Err(e) => emit!(error, ev::ABUSE_STATE_FAILED, error = %e),
                }
                if !known.is_empty() {
                    raised.push((
                        kind,
                        format!("login from {ip} ({name} {value}); before only from {}", known.join(", ")),
                    ));
                }
            }
        }
        if !known_now.is_empty() {
            let mut s = self.state();
            for (name, value) in known_now {
                s.remember_network(login, name, value);
            }
        }
        for (kind, evidence) in raised {
            self.raise(login, kind, evidence);
        }
    }

    /// The reply text when `login` is locked.
    pub fn locked(&self, login: &str) -> Option<String> {
        let s = self.state();
        (s.actions.get(login)?.action == Action::Lock).then(|| self.cfg.lock_text.clone())
    }

    /// A message from `login` is about to be stored: indexed with its
    /// Message-ID; counted; held when the login is (or now becomes) held.
    /// Blocks (the database) when it raises a signal; [`Desk::submit`] is
    /// the same without blocking.
    pub fn submitted(
        self: &Arc<Self>,
        session: &str,
        queue_id: &str,
        login: &str,
        message_id: Option<&str>,
        rcpts: &[String],
    ) {
        if let Some(rest) = self.submit(session, queue_id, login, message_id, rcpts) {
            rest();
        }
    }

    /// [`Desk::submitted`] without blocking: the message is indexed,
    /// counted in memory and marked held when its login is held; what
    /// would block comes back as a closure to run off the async workers
    /// before the message is stored: raising a signal (it writes the
    /// database and may hold this very message), or reading the login's
    /// history when no login of this day did (a session across midnight;
    /// [`Desk::logged_in`] reads it otherwise).
    pub fn submit(
        self: &Arc<Self>,
        session: &str,
        queue_id: &str,
        login: &str,
        message_id: Option<&str>,
        rcpts: &[String],
    ) -> Option<Box<dyn FnOnce() + Send>> {
        let now = now_ms();
        let day = now.div_euclid(86_400_000);
        let sent = self.index.send_ref_marked(RecordRef::Message {
            id: queue_id,
            session,
            time_ms: now,
            // A header line is at most 998 characters (RFC 5322 2.1.1).
            message_id: message_id.map(index::bare_message_id).filter(|m| m.len() <= 998),
            login: Some(login),
            sender: None,
            size: None,
        });
        // One lock: the baseline read today already, and the count.
        let counted = {
            let mut s = self.state();
            match s.baselines.get(login) {
                Some(&(d, m, r)) if d == day => Some(self.count_in(&mut s, day, login, rcpts, (m, r))),
                _ => None,
            }
        };
        let Some((raise, holds)) = counted else {
            let (desk, queue_id, login, rcpts) = (self.clone(), queue_id.to_owned(), login.to_owned(), rcpts.to_vec());
            return Some(Box::new(move || {
                let baseline = desk.baseline(&login);
                let (raise, _) = desk.count(&login, &rcpts, baseline);
                desk.raise_and_hold(&login, &queue_id, raise, sent);
            }));
        };
        if raise.is_empty() {
            // The usual case: nothing allocated beyond the index record,
            // one look at the state (counted and hold checked together).
            if holds {
                self.hold_if_held(login, queue_id, sent);
            }
            return None;
        }
        let (desk, queue_id, login) = (self.clone(), queue_id.to_owned(), login.to_owned());
        Some(Box::new(move || desk.raise_and_hold(&login, &queue_id, raise, sent)))
    }

    fn raise_and_hold(&self, login: &str, queue_id: &str, raise: Vec<(Kind, String)>, sent: index::Sent) {
        for (kind, evidence) in raise {
            self.raise(login, kind, evidence);
        }
        self.hold_if_held(login, queue_id, sent);
    }

    fn hold_if_held(&self, login: &str, queue_id: &str, sent: index::Sent) {
        let mut s = self.state();
        if s.holds(login) {
            s.recent.insert(queue_id.to_owned(), Recent { login: login.to_owned(), at: now_ms(), sent });
        }
    }

    /// Counts a message in the login's day; the signals it raises, and
    /// whether the login is held (or locked) now.
    fn count(&self, login: &str, rcpts: &[String], baseline: (f64, f64)) -> (Vec<(Kind, String)>, bool) {
        self.count_in(&mut self.state(), today(), login, rcpts, baseline)
    }

    /// [`Desk::count`] with the state locked and the day known.
    fn count_in(
        &self,
        s: &mut State,
        day: i64,
        login: &str,
        rcpts: &[String],
        baseline: (f64, f64),
    ) -> (Vec<(Kind, String)>, bool) {
        let mut raise = Vec::new();
        let holds = s.holds(login);
        // The login's key is allocated once a day, not per message.
        if !s.days.contains_key(login) {
            s.days.insert(login.to_owned(), Day::new(day));
        }
        let Some(d) = s.days.get_mut(login) else { return (raise, holds) };
        if d.day != day {
            *d = Day::new(day);
        }
        d.messages += 1;
        for r in rcpts {
            d.recipients.add(r);
        }
        let r = &self.cfg.rules;
        let recipients = d.recipients.estimate();
        if r.jump(recipients, baseline.1, r.recipients_per_day) && d.raise(Kind::Recipients) {
            raise.push((
                Kind::Recipients,
                format!(
                    "{recipients} distinct recipients today (UTC); own daily average {:.1}, jump above {}x",
                    baseline.1, r.jump_factor
                ),
            ));
        }
        if r.jump(d.messages, baseline.0, r.messages_per_day) && d.raise(Kind::Messages) {
            raise.push((
                Kind::Messages,
                format!(
                    "{} messages today (UTC); own daily average {:.1}, jump above {}x",
                    d.messages, baseline.0, r.jump_factor
                ),
            ));
        }
        (raise, holds)
    }

    /// The login's daily averages (messages, distinct recipients) over the
    /// days before today it sent on; read once a day per login.
    fn baseline(&self, login: &str) -> (f64, f64) {
        let day = today();
        if let Some(&(d, m, r)) = self.state().baselines.get(login) {
            if d == day {
                return (m, r);
            }
        }
        let row = self.db().query_row(
            "SELECT coalesce(avg(messages), 0), coalesce(avg(recipients), 0) FROM daily WHERE login = ?1 AND day >= ?2 AND day < ?3",
            params![login, day - HISTORY_DAYS, day],
            |r| Ok((r.get::<_, f64>(0)?, r.get::<_, f64>(1)?)),
        );
        let (m, r) = row.unwrap_or((0.0, 0.0));
        self.state().baselines.insert(login.to_owned(), (day, m, r));
        (m, r)
    }

    /// Whether the outbound queue must keep message `queue_id` for now.
    /// Free while no login is on hold; then one primary-key lookup in the
    /// index for the message's login. A lookup that fails holds the
    /// message (it is retried; mail of a held login must not slip out).
    ///
    /// A message the index has no row for may be one whose record the
    /// writer has not committed yet: [`Desk::submit`] sends it before the
    /// message is stored, so before the queue can ask, but a signal raised
    /// in between (after [`Desk::raise`]'s own sync, before its hold is in
    /// force) leaves such a message out of the held ones kept in memory.
    /// So a miss waits for the writer once (a round, only while a hold is
    /// in force) and asks again; a writer that does not answer in time
    /// holds the message, as a failed lookup does.
    pub fn held(&self, queue_id: &str) -> bool {
        {
            let s = self.state();
            if !s.any_hold() || s.released.contains(queue_id) {
                return false;
            }
            if let Some(r) = s.recent.get(queue_id) {
                return s.holds(&r.login);
            }
        }
        let asked = Instant::now();
        let login = match self.indexed_login(queue_id) {
            Ok(None) if !self.index.written_before(asked) => {
                if !self.index.sync(HELD_SYNC_WAIT) {
                    emit!(error, ev::ABUSE_STATE_FAILED, error = "the index writer did not answer; message kept");
                    return true;
                }
                self.indexed_login(queue_id)
            }
            other => other,
        };
        match login {
            Ok(login) => login.is_some_and(|l| self.state().holds(&l)),
            Err(e) => {
                emit!(error, ev::ABUSE_STATE_FAILED, error = %e);
                true
            }
        }
    }

    /// The login the index has for message `queue_id`.
    fn indexed_login(&self, queue_id: &str) -> rusqlite::Result<Option<String>> {
        let login: Option<Option<String>> = self
            .db()
            .prepare_cached("SELECT login FROM messages WHERE id = ?1")
            .and_then(|mut st| st.query_row([queue_id], |r| r.get(0)).optional())?;
        Ok(login.flatten())
    }

    /// Records a signal and takes its action (a stronger one than the
    /// action in force only).
    pub fn raise(&self, login: &str, kind: Kind, evidence: String) {
        let action = self.cfg.rules.action(kind);
        let now = now_ms();
        let current = self.state().actions.get(login).map(|f| f.action);
        let stronger = current.is_none_or(|c| action > c);
        {
            let db = self.db();
            let r = db.execute(
                "INSERT INTO signals(login, time_ms, kind, evidence, action) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![login, now, kind.name(), evidence, action.name()],
            );
            if let Err(e) = r {
                emit!(error, ev::ABUSE_STATE_FAILED, error = %e);
            }
            if stronger {
                let r = db.execute(
                    "INSERT INTO logins(login, action, since_ms, reason) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(login) DO UPDATE SET action = excluded.action, since_ms = excluded.since_ms, reason = excluded.reason",
                    params![login, action.name(), now, format!("{}: {evidence}", kind.name())],
                );
                if let Err(e) = r {
                    emit!(error, ev::ABUSE_STATE_FAILED, error = %e);
                }
            }
        }
        emit!(warn, ev::ABUSE_SIGNAL, user = %login, signal = kind.name(), action = action.name(), evidence = %evidence);
        if !stronger {
            return;
        }
        if action >= Action::Hold {
            // Everything this login sent so far must be in the index first
            // (held() asks it), or mail queued a moment ago would slip out.
            self.index.sync(Duration::from_secs(5));
        }
        self.state().actions.insert(login.to_owned(), InForce { action });
        let since_complaint = self
            .db()
            .query_row("SELECT first_complaint_ms FROM logins WHERE login = ?1", [login], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .ok()
            .flatten()
            .map(|t| (now - t).max(0) / 1000);
        emit!(warn, ev::ABUSE_ACTION, user = %login, action = action.name(), signal = kind.name(), seconds_since_first_complaint = since_complaint.unwrap_or(-1));
        if action >= Action::Hold {
            if let (Some(to), Some(f)) = (&self.cfg.notify, &*self.notices.lock().unwrap_or_else(|p| p.into_inner())) {
                let what = if action == Action::Lock { "locked" } else { "its outbound mail held" };
                f(Notice {
                    to: to.clone(),
                    subject: format!("port25: login {login} {what} ({})", kind.name()),
                    text: format!(
                        "The login {login} was {what} because of the signal {}:\r\n  {evidence}\r\n\r\nSee `port25 users explain {login}`; undo with `port25 users release {login}`.\r\n",
                        kind.name()
                    ),
                });
            }
        }
    }

    /// One tick (every second, from the binary): CLI changes, bounces,
    /// the abuse mailbox, the day's counts into the history.
    pub fn tick(&self) {
        if let Err(e) = self.reload() {
            emit!(error, ev::ABUSE_STATE_FAILED, error = %e);
        }
        self.forget_indexed();
        if let Err(e) = self.bounces() {
            emit!(error, ev::ABUSE_STATE_FAILED, error = %e);
        }
        if let Some(mb) = self.cfg.mailbox.clone() {
            self.read_mailbox(&mb);
        }
        self.save_days();
        self.prune();
    }

    /// Hourly: complaints, signals and history past the retention, and
    /// one-by-one releases of mail long gone, leave the database.
    fn prune(&self) {
        {
            let mut p = self.pruned.lock().unwrap_or_else(|p| p.into_inner());
            if p.is_some_and(|t| t.elapsed() < Duration::from_secs(3600)) {
                return;
            }
            *p = Some(std::time::Instant::now());
        }
        let cutoff = now_ms() - self.cfg.retention.as_millis() as i64;
        let db = self.db();
        let r = db
            .execute("DELETE FROM complaints WHERE time_ms < ?1", [cutoff])
            .and_then(|_| db.execute("DELETE FROM signals WHERE time_ms < ?1", [cutoff]))
            .and_then(|_| {
                db.execute(
                    "DELETE FROM daily WHERE day < ?1",
                    [cutoff.div_euclid(86_400_000).min(today() - HISTORY_DAYS)],
                )
            })
            .and_then(|_| db.execute("DELETE FROM released WHERE time_ms < ?1", [now_ms() - 8 * 86_400_000]));
        if let Err(e) = r {
            emit!(error, ev::ABUSE_STATE_FAILED, error = %e);
        }
    }

    fn cursor(db: &Connection, name: &str) -> i64 {
        db.query_row("SELECT value FROM cursor WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    fn set_cursor(db: &Connection, name: &str, v: i64) {
        let _ = db.execute("INSERT OR REPLACE INTO cursor(name, value) VALUES (?1, ?2)", params![name, v]);
    }

    /// Bounces of the logins' mail since the last tick, from the index.
    fn bounces(&self) -> rusqlite::Result<()> {
        let (counts, until) = {
            let db = self.db();
            let since = Self::cursor(&db, "bounces").max(now_ms() - 86_400_000);
            let until = now_ms() - 1;
            // `outcome IN (...)` as the index rcpts_bounced has it, word for
            // word: SQLite uses a partial index only for its own condition.
            let mut st = db.prepare_cached(
                "SELECT m.login, count(*) FROM rcpts r JOIN messages m ON m.id = r.id
                 WHERE r.time_ms > ?1 AND r.time_ms <= ?2 AND r.outcome IN ('bounced', 'expired') AND m.login IS NOT NULL GROUP BY m.login",
            )?;
            let counts: Vec<(String, i64)> = st
                .query_map(params![since, until], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            (counts, until)
        };
        for (login, n) in counts {
            let over = {
                let mut s = self.state();
                let d = s.days.entry(login.clone()).or_insert_with(|| Day::new(today()));
                d.bounces += n.max(0) as u64;
                (d.bounces >= self.cfg.rules.bounces_per_day && d.raise(Kind::Bounces)).then_some(d.bounces)
            };
            if let Some(b) = over {
                self.raise(
                    &login,
                    Kind::Bounces,
                    format!("{b} bounces today (UTC); the limit is {} a day", self.cfg.rules.bounces_per_day),
                );
            }
        }
        Self::set_cursor(&self.db(), "bounces", until);
        Ok(())
    }

    fn save_days(&self) {
        let days: Vec<(String, i64, u64, u64, u64, u64)> = self
            .state()
            .days
            .iter()
            .map(|(l, d)| (l.clone(), d.day, d.messages, d.recipients.estimate(), d.complaints, d.bounces))
            .collect();
        if days.is_empty() {
            return;
        }
        let mut db = self.db();
        let Ok(tx) = db.transaction() else { return };
        for (login, day, m, r, c, b) in days {
            let _ = tx.execute(
                "INSERT OR REPLACE INTO daily(login, day, messages, recipients, complaints, bounces) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![login, day, m as i64, r as i64, c as i64, b as i64],
            );
        }
        let _ = tx.commit();
        self.state().days.retain(|_, d| d.day == today());
    }

    /// Reads the reports waiting in the abuse mailbox.
    fn read_mailbox(&self, path: &Path) {
        let new = path.join("new");
        if new.is_dir() {
            let Ok(list) = std::fs::read_dir(&new) else { return };
            let mut files: Vec<PathBuf> =
                list.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
            files.sort();
            for f in files.into_iter().take(REPORTS_PER_TICK) {
                let raw = match std::fs::metadata(&f) {
                    Ok(m) if m.len() > MAX_REPORT => {
                        Err(format!("report of {} bytes is over the {MAX_REPORT}-byte limit", m.len()))
                    }
                    Ok(_) => std::fs::read(&f).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match raw {
                    Ok(raw) => {
                        self.complaint(&raw);
                    }
                    Err(why) => {
                        self.record_complaint("unknown", "unparsed", None, None, &why);
                    }
                }
                // Read once: moved to cur/ as seen.
                let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let cur = path.join("cur").join(format!("{}:2,S", name.split(':').next().unwrap_or(&name)));
                if std::fs::rename(&f, &cur).is_err() {
                    let _ = std::fs::remove_file(&f);
                }
            }
            return;
        }
        // An mbox: read on from where the last tick stopped.
        let Ok(meta) = std::fs::metadata(path) else { return };
        let key = format!("mbox:{}", path.display());
        let offset = Self::cursor(&self.db(), &key) as u64;
        let offset = if meta.len() < offset { 0 } else { offset };
        if meta.len() == offset {
            return;
        }
        use std::io::{Read, Seek};
        let Ok(mut file) = std::fs::File::open(path) else { return };
        if file.seek(std::io::SeekFrom::Start(offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if file.take(MAX_REPORT * 4).read_to_end(&mut buf).is_err() {
            return;
        }
        // Only whole messages: up to the last "From " line that follows a
        // blank line (the rest waits for its end to be written), split by
        // the report crate's mbox reader.
        let blank_before = |i: usize| i == 0 || buf[..i].ends_with(b"\n\n") || buf[..i].ends_with(b"\n\r\n");
        let starts: Vec<usize> = (0..buf.len())
            .filter(|&i| (i == 0 || buf[i - 1] == b'\n') && blank_before(i) && buf[i..].starts_with(b"From "))
            .collect();
        let complete_to = match starts.last() {
            Some(&last) if last > 0 => last,
            Some(_) if buf.ends_with(b"\n\n") || buf.ends_with(b"\r\n\r\n") => buf.len(),
            _ => return,
        };
        let mut whole = &buf[..complete_to];
        let _ = port25_report::complaints::mbox(&mut whole, "abuse", &mut |_, raw| {
            self.complaint(raw);
        });
        Self::set_cursor(&self.db(), &key, (offset + complete_to as u64) as i64);
    }

    /// One report from the abuse mailbox: rate-limited per reporter,
    /// parsed, attributed, counted. Returns the verdict's name.
    pub fn complaint(&self, raw: &[u8]) -> &'static str {
        let reporter = complaints::reporter(raw, &self.cfg.hostname);
        let now = (now_ms() / 1000) as u64;
        if !self.rate.lock().unwrap_or_else(|p| p.into_inner()).allow(&reporter, now) {
            self.record_complaint(
                &reporter,
                "rate_limited",
                None,
                None,
                &format!("over {} reports an hour from this reporter", self.cfg.reports_per_hour),
            );
            return "rate_limited";
        }
        let report = match complaints::read(raw) {
            Ok(r) => r,
            Err(why) => {
                self.record_complaint(&reporter, "unparsed", None, None, &why);
                return "unparsed";
            }
        };
        // The report may name a message accepted a moment ago (the index
        // writer commits every second): what was sent to the index before
        // is committed first, so that "not ours" never means "not written
        // yet". Reports are few; the sync ends the writer's round early.
        self.index.sync(Duration::from_secs(5));
        let verdict = {
            let reader = index::Reader::from_connection(
                match port25_sqlite::open_with_flags(
                    &db_path(&self.cfg.data_dir),
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                ) {
                    Ok(c) => c,
                    Err(e) => {
                        emit!(error, ev::ABUSE_STATE_FAILED, error = %e);
                        return "unparsed";
                    }
                },
            );
            complaints::attribute(
                &report,
                &self.cfg.hostname,
                |id| reader.sent_by(id).ok().flatten(),
                |d| reader.signed(d).ok().flatten(),
            )
        };
        match verdict {
            Verdict::NotOurs(why) => {
                self.record_complaint(&reporter, "not_ours", None, None, &why);
                "not_ours"
            }
            Verdict::Ours { login, queue_id } => {
                let kind = report.feedback_type.clone().unwrap_or_else(|| {
                    if report.arf {
                        "abuse".into()
                    } else {
                        "forwarded".into()
                    }
                });
                if !self.record_complaint(&reporter, "ours", Some(&login), Some(&queue_id), &kind) {
                    self.record_complaint(
                        &reporter,
                        "duplicate",
                        Some(&login),
                        Some(&queue_id),
                        "this message was reported before",
                    );
                    return "duplicate";
                }
                let _ = self.db().execute(
                    "INSERT INTO logins(login, first_complaint_ms) VALUES (?1, ?2)
                     ON CONFLICT(login) DO UPDATE SET first_complaint_ms = coalesce(first_complaint_ms, excluded.first_complaint_ms)",
                    params![login, now_ms()],
                );
                let over = {
                    let mut s = self.state();
                    let d = s.days.entry(login.clone()).or_insert_with(|| Day::new(today()));
                    d.complaints += 1;
                    (d.complaints >= self.cfg.rules.complaints_per_day && d.raise(Kind::Complaints))
                        .then_some(d.complaints)
                };
                if let Some(n) = over {
                    self.raise(
                        &login,
                        Kind::Complaints,
                        format!("{n} complaints today (UTC), the latest about queue id {queue_id} ({kind})"),
                    );
                }
                "ours"
            }
        }
    }

    /// Stores a complaint's verdict and logs it; false when it is a
    /// message counted before.
    fn record_complaint(
        &self,
        reporter: &str,
        verdict: &str,
        login: Option<&str>,
        queue_id: Option<&str>,
        reason: &str,
    ) -> bool {
        let r = self.db().execute(
            "INSERT INTO complaints(time_ms, reporter, verdict, login, queue_id, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![now_ms(), reporter, verdict, login, queue_id, reason],
        );
        if let Err(e) = &r {
            if !matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
            {
                emit!(error, ev::ABUSE_STATE_FAILED, error = %e);
            }
            return false;
        }
        emit!(info, ev::ABUSE_COMPLAINT, reporter = %reporter, verdict, user = login.unwrap_or(""), id = queue_id.unwrap_or(""), reason = %reason);
        true
    }

    /// Gauges for /metrics, read at scrape time.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        let (held, locked) = {
            let s = self.state();
            (
                s.actions.values().filter(|f| f.action == Action::Hold).count(),
                s.actions.values().filter(|f| f.action == Action::Lock).count(),
            )
        };
        out.push_str(
            "# HELP port25_abuse_logins Logins with an abuse action in force.\n# TYPE port25_abuse_logins gauge\n",
        );
        out.push_str(&format!(
            "port25_abuse_logins{{action=\"hold\"}} {held}\nport25_abuse_logins{{action=\"lock\"}} {locked}\n"
        ));
        let db = self.db();
        let day_start = today() * 86_400_000;
        out.push_str("# HELP port25_abuse_complaints_today Complaints received today (UTC) by verdict.\n# TYPE port25_abuse_complaints_today gauge\n");
        if let Ok(mut st) =
            db.prepare_cached("SELECT verdict, count(*) FROM complaints WHERE time_ms >= ?1 GROUP BY verdict")
        {
            if let Ok(rows) = st.query_map([day_start], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))) {
                for (v, n) in rows.flatten() {
                    out.push_str(&format!("port25_abuse_complaints_today{{verdict=\"{v}\"}} {n}\n"));
                }
            }
        }
        out.push_str(
            "# HELP port25_abuse_login_complaints_today Complaints about each login's mail today (UTC).\n# TYPE port25_abuse_login_complaints_today gauge\n",
        );
        if let Ok(mut st) =
            db.prepare_cached("SELECT login, count(*) FROM complaints WHERE time_ms >= ?1 AND verdict = 'ours' GROUP BY login ORDER BY 2 DESC LIMIT 100")
        {
            if let Ok(rows) = st.query_map([day_start], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))) {
                for (l, n) in rows.flatten() {
                    out.push_str(&format!("port25_abuse_login_complaints_today{{login=\"{}\"}} {n}\n", label(&l)));
                }
            }
        }
        out.push_str("# HELP port25_abuse_complaint_to_action_seconds Time from a login's first complaint to the action in force.\n# TYPE port25_abuse_complaint_to_action_seconds gauge\n");
        if let Ok(mut st) = db.prepare_cached("SELECT login, since_ms - first_complaint_ms FROM logins WHERE action IS NOT NULL AND first_complaint_ms IS NOT NULL AND since_ms >= first_complaint_ms LIMIT 100") {
            if let Ok(rows) = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))) {
                for (l, ms) in rows.flatten() {
                    out.push_str(&format!("port25_abuse_complaint_to_action_seconds{{login=\"{}\"}} {:.3}\n", label(&l), ms as f64 / 1000.0));
                }
            }
        }
        out.push_str(&format!("# HELP port25_abuse_index_dropped_total Index records dropped (writer behind).\n# TYPE port25_abuse_index_dropped_total counter\nport25_abuse_index_dropped_total {}\n", self.index.dropped()));
        out
    }
}

/// A login as the dashboard lists it.
#[derive(Debug, Clone, Serialize)]
pub struct LoginRow {
    pub login: String,
    pub action: Option<String>,
    pub since: Option<String>,
    pub reason: Option<String>,
    pub complaints_today: i64,
    pub to_action_secs: Option<i64>,
}

impl Desk {
    /// Logins with an action in force or complaints today (at most 200).
    pub fn logins(&self) -> Vec<LoginRow> {
        let db = self.db();
        let sql = "SELECT l.login, l.action, l.since_ms, l.reason, (SELECT count(*) FROM complaints c WHERE c.login = l.login AND c.verdict = 'ours' AND c.time_ms >= ?1),
                   CASE WHEN l.since_ms >= l.first_complaint_ms THEN (l.since_ms - l.first_complaint_ms) / 1000 END
                   FROM logins l WHERE l.action IS NOT NULL OR l.login IN (SELECT login FROM complaints WHERE verdict = 'ours' AND time_ms >= ?1)
                   ORDER BY l.since_ms DESC LIMIT 200";
        let rows = db.prepare_cached(sql).and_then(|mut st| {
            st.query_map([today() * 86_400_000], |r| {
                Ok(LoginRow {
                    login: r.get(0)?,
                    action: r.get(1)?,
                    since: r.get::<_, Option<i64>>(2)?.map(index::utc),
                    reason: r.get(3)?,
                    complaints_today: r.get(4)?,
                    to_action_secs: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        });
        rows.unwrap_or_else(|e| {
            emit!(error, ev::ABUSE_STATE_FAILED, error = %e);
            Vec::new()
        })
    }
}

/// A Prometheus label value: quotes, backslashes and line ends escaped.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Queue ids of `login`'s mail of the last week (what may still be queued).
/// What `port25 users explain` prints.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Explanation {
    pub login: String,
    pub action: Option<String>,
    pub since: Option<String>,
    pub reason: Option<String>,
    pub first_complaint: Option<String>,
    pub signals: Vec<SignalRow>,
    pub days: Vec<DayRow>,
    pub networks: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignalRow {
    pub time: String,
    pub signal: String,
    pub action: String,
    pub evidence: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayRow {
    pub day: String,
    pub messages: i64,
    pub recipients: i64,
    pub complaints: i64,
    pub bounces: i64,
}

pub fn explain(db: &Connection, login: &str) -> rusqlite::Result<Explanation> {
    let mut e = Explanation { login: login.to_owned(), ..Default::default() };
    if let Some((action, since, reason, first)) = db
        .query_row("SELECT action, since_ms, reason, first_complaint_ms FROM logins WHERE login = ?1", [login], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })
        .optional()?
    {
        e.action = action;
        e.since = since.map(index::utc);
        e.reason = reason;
        e.first_complaint = first.map(index::utc);
    }
    let mut st = db.prepare(
        "SELECT time_ms, kind, action, evidence FROM signals WHERE login = ?1 ORDER BY time_ms DESC LIMIT 100",
    )?;
    e.signals = st
        .query_map([login], |r| {
            Ok(SignalRow { time: index::utc(r.get(0)?), signal: r.get(1)?, action: r.get(2)?, evidence: r.get(3)? })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut st = db.prepare(
        "SELECT day, messages, recipients, complaints, bounces FROM daily WHERE login = ?1 ORDER BY day DESC LIMIT 28",
    )?;
    e.days = st
        .query_map([login], |r| {
            Ok(DayRow {
                day: port25_report::date::format_day(r.get(0)?),
                messages: r.get(1)?,
                recipients: r.get(2)?,
                complaints: r.get(3)?,
                bounces: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut st = db.prepare("SELECT kind, value, first_ms FROM networks WHERE login = ?1 ORDER BY first_ms")?;
    e.networks = st
        .query_map([login], |r| Ok((r.get(0)?, r.get(1)?, index::utc(r.get(2)?))))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(e)
}

/// Lifts the action on `login` (its held mail goes out unless deleted
/// first with `port25 queue delete`); the signals stay as history.
/// Returns the action that was in force.
pub fn release(db: &Connection, login: &str) -> rusqlite::Result<Option<String>> {
    let was: Option<String> =
        db.query_row("SELECT action FROM logins WHERE login = ?1", [login], |r| r.get(0)).optional()?.flatten();
    db.execute(
        "UPDATE logins SET action = NULL, since_ms = NULL, reason = NULL, first_complaint_ms = NULL WHERE login = ?1",
        [login],
    )?;
    db.execute("INSERT INTO signals(login, time_ms, kind, evidence, action) VALUES (?1, ?2, 'released', 'by the operator', 'none')", params![login, now_ms()])?;
    // Today's signals may be raised again only by new evidence: the day's
    // counts start over from the release.
    db.execute("DELETE FROM daily WHERE login = ?1 AND day = ?2", params![login, today()])?;
    Ok(was)
}

/// Lets one held message go (`port25 queue release ID`).
pub fn release_message(db: &Connection, queue_id: &str) -> rusqlite::Result<()> {
    db.execute("INSERT OR IGNORE INTO released(id, time_ms) VALUES (?1, ?2)", params![queue_id, now_ms()])?;
    Ok(())
}

/// Queue ids of the messages held now: those of logins on hold or locked,
/// not released one by one (`port25 queue held`).
pub fn held_messages(db: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut st = db.prepare(
        "SELECT m.id, m.login FROM messages m JOIN logins l ON l.login = m.login
         WHERE l.action IN ('hold', 'lock') AND m.time_ms >= ?1 AND m.id NOT IN (SELECT id FROM released) ORDER BY m.time_ms",
    )?;
    let rows = st.query_map([now_ms() - 7 * 86_400_000], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desk(dir: &Path, mailbox: &Path) -> Arc<Desk> {
        Desk::open(Config {
            data_dir: dir.to_owned(),
            hostname: "mx.example.net".into(),
            retention: Duration::from_secs(86400),
            rules: Rules::default(),
            lock_text: "locked".into(),
            notify: None,
            mailbox: Some(mailbox.to_owned()),
            enrich: None,
            reports_per_hour: 100,
        })
        .unwrap()
    }

    fn verdicts(d: &Desk) -> Vec<String> {
        d.db()
            .prepare("SELECT verdict || ' ' || reason FROM complaints ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn an_mbox_is_read_on_from_where_it_stopped_whole_messages_only() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("abuse.mbox");
        let report = |n: u32| {
            format!("From fbl@mail.example Mon Dec  1 10:00:00 2026\nFrom: fbl@mail.example\nSubject: {n}\n\nno quoted header {n}\n\n")
        };
        std::fs::write(&mbox, format!("{}{}", report(1), report(2))).unwrap();
        let d = desk(dir.path(), &mbox);
        d.tick();
        assert_eq!(verdicts(&d).len(), 1, "the second may still be written: {:?}", verdicts(&d));
        // Its end shows when the next one starts; a half-written third waits.
        let mut f = std::fs::OpenOptions::new().append(true).open(&mbox).unwrap();
        std::io::Write::write_all(&mut f, b"From x Mon Dec  1 10:00:01 2026\nFrom: x@y\nSubj").unwrap();
        d.tick();
        d.tick();
        let v = verdicts(&d);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().all(|v| v.starts_with("unparsed no multipart report and no quoted Received")), "{v:?}");
    }

    #[test]
    fn a_held_logins_mail_is_held_until_released_one_by_one_or_all() {
        let dir = tempfile::tempdir().unwrap();
        let d = desk(dir.path(), &dir.path().join("none"));
        d.submitted("S1", "S1A", "alice@example.net", Some("<m1@x>"), &["a@r.example".into()]);
        assert!(!d.held("S1A"));
        // Raised before the index writer has caught up: held all the same.
        d.raise("alice@example.net", Kind::Recipients, "test".into());
        assert!(d.held("S1A"), "mail queued before the signal is held too");
        d.submitted("S1", "S1B", "alice@example.net", None, &[]);
        assert!(d.held("S1B"));
        assert_eq!(d.locked("alice@example.net"), None, "hold is no lock");
        let cli = open_db(&db_path(dir.path())).unwrap();
        release_message(&cli, "S1A").unwrap();
        d.tick();
        assert!(!d.held("S1A") && d.held("S1B"));
        assert_eq!(release(&cli, "alice@example.net").unwrap().as_deref(), Some("hold"));
        d.tick();
        assert!(!d.held("S1B"));
        let e = explain(&cli, "alice@example.net").unwrap();
        assert_eq!(e.action, None);
        assert_eq!(e.signals.iter().map(|s| s.signal.as_str()).collect::<Vec<_>>(), ["released", "recipients"]);
    }

    #[test]
    fn submitting_blocks_only_to_raise_a_signal_and_memory_follows_the_logins_not_the_messages() {
        let dir = tempfile::tempdir().unwrap();
        let d = desk(dir.path(), &dir.path().join("none"));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        // A login's history is read when it logs in: its messages then
        // need nothing that blocks, until one crosses a limit.
        d.logged_in("S0", "Alice@Example.net", ip, None);
        for i in 0..299 {
            let rest = d.submit("S0", &format!("S0{i}"), "alice@example.net", None, &["a@r.example".into()]);
            assert!(rest.is_none(), "message {i} handed back work that blocks");
        }
        let rest = d.submit("S0", "S0X", "alice@example.net", None, &["a@r.example".into()]);
        let rest = rest.expect("the 300th message of the day raises the volume signal: that blocks");
        assert!(!d.held("S0X"), "not yet: the policy runs the rest before it stores the message");
        rest();
        assert!(d.held("S0X"), "the message that crossed the line is held");
        // No login before it this day (a session across midnight): the
        // history is read off the async workers, and counted all the same.
        let rest = d.submit("S1", "S1A", "bob@example.net", None, &["x@r.example".into()]);
        rest.expect("no history read yet for bob")();
        // Many messages from few logins: the desk keeps per login, not
        // per message (the held mail of held logins aside).
        for i in 0..3_000 {
            let login = format!("u{}@example.net", i % 12);
            if let Some(rest) = d.submit("S2", &format!("S2{i}"), &login, None, &[format!("r{i}@r.example")]) {
                rest();
            }
        }
        let s = d.state();
        assert_eq!((s.days.len(), s.baselines.len()), (14, 14), "alice, bob and twelve logins");
        assert!(s.recent.keys().all(|id| id.starts_with("S0")), "only alice's held mail, and only the last moments'");
    }

    #[test]
    fn mail_whose_record_the_writer_has_not_committed_is_held_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let d = desk(dir.path(), &dir.path().join("none"));
        d.raise("erin@example.net", Kind::Recipients, "test".into());
        // A message submitted after the signal's sync but before its hold
        // was in force: its record is on the way to the writer (a round is
        // a second) and the desk did not keep it in memory as held.
        d.index.send(index::Record::Message {
            id: "S5A".into(),
            session: "S5".into(),
            time_ms: now_ms(),
            message_id: None,
            login: Some("erin@example.net".into()),
            sender: None,
            size: None,
        });
        assert!(d.state().recent.is_empty());
        assert!(d.held("S5A"), "the queue asked before the writer's round ended: held all the same");
        // A message the index never heard of still goes, once the writer
        // has answered for it.
        assert!(!d.held("S5-unknown"));
    }

    #[test]
    fn a_held_logins_mail_leaves_memory_once_indexed_and_stays_held() {
        let dir = tempfile::tempdir().unwrap();
        let d = desk(dir.path(), &dir.path().join("none"));
        d.raise("carol@example.net", Kind::Recipients, "test".into());
        for i in 0..500 {
            d.submitted("S3", &format!("S3M{i}"), "carol@example.net", None, &["r@r.example".into()]);
        }
        d.submitted("S4", "S4M", "dave@example.net", None, &["r@r.example".into()]);
        assert_eq!(d.state().recent.len(), 500);
        // Once the index has them all, memory lets them go (the writer's
        // progress says so, no waiting)...
        assert!(d.index.sync(Duration::from_secs(5)));
        d.tick();
        assert!(d.state().recent.is_empty(), "memory holds no mail the index has");
        // ...and they are held all the same, read from the index; the
        // other login's mail is not.
        assert!((0..500).all(|i| d.held(&format!("S3M{i}"))));
        assert!(!d.held("S4M") && !d.held("unknown"));
        // The operator's release reaches the server through the triggers.
        let cli = open_db(&db_path(dir.path())).unwrap();
        release(&cli, "carol@example.net").unwrap();
        d.tick();
        assert!(!d.held("S3M0"));
    }
}
