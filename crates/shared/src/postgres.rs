//! The PostgreSQL backend, for providers whose directory already is
//! PostgreSQL: every operation is one round trip, a call of one of the
//! functions below (or one plain statement), with every value bound,
//! never pasted into SQL. Each function runs in its own transaction on the
//! server, takes transaction-scoped advisory locks on the keys it changes
//! (in key order, so two callers never deadlock) and reads the database's
//! clock (`now()`), so node clocks do not matter and two nodes never both
//! take the last place of a window.
//!
//! Three tables, created with the functions on first use (or beforehand by
//! the database owner with [`SCHEMA`], printed by `port25 shared schema`):
//! `port25_shared_key` (failure counts, locks, known devices: a number and
//! an expiry; and each sliding window's entry count, so a reservation
//! never counts rows), `port25_shared_entry` (sliding-window reservations
//! and open sessions: one row per entry, with its time and expiry) and
//! `port25_shared_usage` (the migration records). Every key and usage row
//! carries the configured prefix, so several deployments can share one
//! database. Rows expire: every query ignores what is past its expiry,
//! and each node deletes expired rows once a minute.
//!
//! A pool of `pool` connections (tokio-postgres pipelines the queries of
//! concurrent sessions on each), made again when one broke, at most every
//! 500 ms per connection; every operation is bounded by the timeout. The
//! connections commit with `synchronous_commit = off`: this is state that
//! may lose its last moments in a database crash, not mail.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, Statement};

use crate::{Full, Lock, LockRules, Pending, Scope, SharedState, Slot as SessionSlot, Unreachable, UseRecord, Window};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// libpq-style "host=... user=... dbname=..." or a postgresql:// URL.
    pub connection: String,
    /// The password, when not in `connection`.
    pub password: Option<String>,
    /// Connections in the pool.
    pub pool: usize,
    /// Per operation and per connection attempt.
    pub timeout: Duration,
    /// Every key starts with it.
    pub prefix: String,
}

/// The tables and functions, idempotent (`IF NOT EXISTS`, `OR REPLACE`).
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS port25_shared_key (
  key text PRIMARY KEY,
  n integer NOT NULL,
  expires timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS port25_shared_entry (
  key text NOT NULL,
  member text NOT NULL,
  at timestamptz NOT NULL,
  expires timestamptz NOT NULL,
  PRIMARY KEY (key, member)
);
CREATE INDEX IF NOT EXISTS port25_shared_entry_at ON port25_shared_entry (key, at);
CREATE INDEX IF NOT EXISTS port25_shared_key_expires ON port25_shared_key (expires);
CREATE INDEX IF NOT EXISTS port25_shared_entry_expires ON port25_shared_entry (expires);
CREATE TABLE IF NOT EXISTS port25_shared_usage (
  prefix text NOT NULL,
  login text NOT NULL,
  legacy boolean NOT NULL,
  last_seen bigint NOT NULL,
  last_ip text NOT NULL,
  last_port integer NOT NULL,
  uses bigint NOT NULL,
  PRIMARY KEY (prefix, login, legacy)
);

-- Milliseconds until t (0 when past).
CREATE OR REPLACE FUNCTION port25_shared_ms(t timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT greatest(0, ceil(extract(epoch FROM t - now()) * 1000))::bigint
$$;

-- {1, ms} the address is locked, {2, ms} the login is (and this address
-- is not one of its known devices), {0, 0} neither.
CREATE OR REPLACE FUNCTION port25_shared_locked(p_a_lock text, p_l_lock text, p_known text, p_with_login boolean)
RETURNS bigint[] LANGUAGE plpgsql STABLE AS $$
DECLARE t timestamptz;
BEGIN
  SELECT expires INTO t FROM port25_shared_key WHERE key = p_a_lock AND expires > now();
  IF FOUND THEN RETURN ARRAY[1, port25_shared_ms(t)]; END IF;
  IF p_with_login AND NOT EXISTS (SELECT 1 FROM port25_shared_key WHERE key = p_known AND expires > now()) THEN
    SELECT expires INTO t FROM port25_shared_key WHERE key = p_l_lock AND expires > now();
    IF FOUND THEN RETURN ARRAY[2, port25_shared_ms(t)]; END IF;
  END IF;
  RETURN ARRAY[0, 0];
END $$;

-- One failure counted under fail (within window_ms of the first); at
-- `after` failures the lock is set for lockout_ms and the count starts
-- over. A failure during a lock is not counted. Returns the count that
-- started a lock, or 0.
CREATE OR REPLACE FUNCTION port25_shared_fail(p_fail text, p_lock text, p_after integer, p_window_ms bigint, p_lockout_ms bigint)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE c integer;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_fail, 25));
  IF EXISTS (SELECT 1 FROM port25_shared_key WHERE key = p_lock AND expires > now()) THEN RETURN 0; END IF;
  INSERT INTO port25_shared_key AS k (key, n, expires)
    VALUES (p_fail, 1, now() + p_window_ms * interval '1 millisecond')
    ON CONFLICT (key) DO UPDATE SET
      n = CASE WHEN k.expires > now() THEN k.n + 1 ELSE 1 END,
      expires = CASE WHEN k.expires > now() THEN k.expires ELSE excluded.expires END
    RETURNING k.n INTO c;
  IF c >= p_after THEN
    INSERT INTO port25_shared_key (key, n, expires)
      VALUES (p_lock, c, now() + p_lockout_ms * interval '1 millisecond')
      ON CONFLICT (key) DO UPDATE SET n = excluded.n, expires = excluded.expires;
    DELETE FROM port25_shared_key WHERE key = p_fail;
    RETURN c;
  END IF;
  RETURN 0;
END $$;

CREATE OR REPLACE FUNCTION port25_shared_failed(
  p_a_fail text, p_a_lock text, p_l_fail text, p_l_lock text, p_with_login boolean,
  p_window_ms bigint, p_a_after integer, p_l_after integer, p_lockout_ms bigint)
RETURNS integer[] LANGUAGE plpgsql AS $$
DECLARE a integer; l integer := 0;
BEGIN
  a := port25_shared_fail(p_a_fail, p_a_lock, p_a_after, p_window_ms, p_lockout_ms);
  IF p_with_login THEN l := port25_shared_fail(p_l_fail, p_l_lock, p_l_after, p_window_ms, p_lockout_ms); END IF;
  RETURN ARRAY[a, l];
END $$;

-- A successful login: its failures are forgotten unless it is locked, and
-- the address is one of its known devices for known_ms.
CREATE OR REPLACE FUNCTION port25_shared_succeeded(p_l_fail text, p_l_lock text, p_known text, p_known_ms bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM port25_shared_key WHERE key = p_l_lock AND expires > now()) THEN
    DELETE FROM port25_shared_key WHERE key = p_l_fail;
  END IF;
  INSERT INTO port25_shared_key (key, n, expires) VALUES (p_known, 1, now() + p_known_ms * interval '1 millisecond')
    ON CONFLICT (key) DO UPDATE SET n = 1, expires = excluded.expires;
END $$;

-- A window's entry count is kept in port25_shared_key under the window's
-- own key (windows' keys never name a lock, a failure count or a known
-- device), with expires 'infinity' so that table's expiry never removes
-- it: it is read and changed only under the window key's advisory lock
-- (reserve, release, the sweep), so nothing outside that lock ever waits
-- on it, and it always equals the key's entries; no row means "count
-- them" (a database made before it, or a window left empty).

-- Under the key's advisory lock: deletes the window's entries older than
-- span_ms and returns how many are left, from the count row (made from
-- count(*) when missing, dropped when the window is empty).
CREATE OR REPLACE FUNCTION port25_shared_count(p_key text, p_span_ms bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE gone integer; c integer;
BEGIN
  DELETE FROM port25_shared_entry WHERE key = p_key AND at <= now() - p_span_ms * interval '1 millisecond';
  GET DIAGNOSTICS gone = ROW_COUNT;
  UPDATE port25_shared_key SET n = n - gone WHERE key = p_key RETURNING n INTO c;
  IF NOT FOUND THEN
    SELECT count(*) INTO c FROM port25_shared_entry WHERE key = p_key;
    IF c > 0 THEN
      INSERT INTO port25_shared_key (key, n, expires) VALUES (p_key, c, 'infinity')
        ON CONFLICT (key) DO UPDATE SET n = excluded.n, expires = excluded.expires;
    END IF;
  ELSIF c <= 0 OR NOT EXISTS (SELECT 1 FROM port25_shared_entry WHERE key = p_key) THEN
    -- Empty (one index probe): the row goes, and with it any drift an
    -- older node's plain DELETE of an entry left.
    DELETE FROM port25_shared_key WHERE key = p_key;
    c := 0;
  END IF;
  RETURN c;
END $$;

-- Under the key's advisory lock: `gone` entries of the window were
-- deleted (by a release or the sweep); its count row follows.
CREATE OR REPLACE FUNCTION port25_shared_uncount(p_key text, p_gone integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE c integer;
BEGIN
  IF p_gone > 0 THEN
    UPDATE port25_shared_key SET n = n - p_gone WHERE key = p_key RETURNING n INTO c;
    IF FOUND AND (c <= 0 OR NOT EXISTS (SELECT 1 FROM port25_shared_entry WHERE key = p_key)) THEN
      DELETE FROM port25_shared_key WHERE key = p_key;
    END IF;
  END IF;
END $$;

-- One entry `member` in every window (keys[i]: at most maxes[i] entries
-- younger than spans_ms[i]), all or none; member '' only checks. Returns
-- {0, 0}, or {i, ms until the oldest entry of the full window i leaves}.
-- The cost does not grow with the entries a window holds: expired ones
-- are deleted once each, the count is one row, the oldest one index probe.
CREATE OR REPLACE FUNCTION port25_shared_reserve(p_keys text[], p_spans_ms bigint[], p_maxes integer[], p_member text)
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE i integer; c integer; oldest timestamptz; added boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(k, 25)) FROM (SELECT DISTINCT unnest(p_keys) AS k ORDER BY 1) s;
  FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
    c := port25_shared_count(p_keys[i], p_spans_ms[i]);
    IF c >= p_maxes[i] THEN
      SELECT min(at) INTO oldest FROM port25_shared_entry WHERE key = p_keys[i];
      RETURN ARRAY[i, port25_shared_ms(oldest + p_spans_ms[i] * interval '1 millisecond')];
    END IF;
  END LOOP;
  IF p_member <> '' THEN
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
      INSERT INTO port25_shared_entry AS e (key, member, at, expires)
        VALUES (p_keys[i], p_member, now(), now() + p_spans_ms[i] * interval '1 millisecond')
        ON CONFLICT (key, member) DO UPDATE SET at = excluded.at, expires = excluded.expires
        RETURNING (e.xmax = 0) INTO added;
      IF added THEN
        INSERT INTO port25_shared_key AS k (key, n, expires) VALUES (p_keys[i], 1, 'infinity')
          ON CONFLICT (key) DO UPDATE SET n = k.n + 1;
      END IF;
    END LOOP;
  END IF;
  RETURN ARRAY[0, 0];
END $$;

-- Gives `member` back in every window (a transaction that was not
-- stored), under the keys' advisory locks like reserve.
CREATE OR REPLACE FUNCTION port25_shared_release(p_keys text[], p_member text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE k text; gone integer;
BEGIN
  FOR k IN SELECT DISTINCT unnest(p_keys) ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(hashtextextended(k, 25));
    DELETE FROM port25_shared_entry WHERE key = k AND member = p_member;
    GET DIAGNOSTICS gone = ROW_COUNT;
    PERFORM port25_shared_uncount(k, gone);
  END LOOP;
END $$;

-- One of at most max open sessions under key for session (forgotten after
-- ttl_ms if never left).
CREATE OR REPLACE FUNCTION port25_shared_enter(p_k text, p_session text, p_max integer, p_ttl_ms bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_k, 25));
  DELETE FROM port25_shared_entry WHERE key = p_k AND expires <= now();
  IF EXISTS (SELECT 1 FROM port25_shared_entry WHERE key = p_k AND member = p_session) THEN RETURN true; END IF;
  IF (SELECT count(*) FROM port25_shared_entry WHERE key = p_k) >= p_max THEN RETURN false; END IF;
  INSERT INTO port25_shared_entry (key, member, at, expires)
    VALUES (p_k, p_session, now(), now() + p_ttl_ms * interval '1 millisecond');
  RETURN true;
END $$;

-- A login's AUTH in one call: port25_shared_succeeded, then
-- port25_shared_enter's answer for its session slot.
CREATE OR REPLACE FUNCTION port25_shared_succeeded_enter(p_l_fail text, p_l_lock text, p_known text, p_known_ms bigint,
  p_k text, p_session text, p_max integer, p_ttl_ms bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM port25_shared_succeeded(p_l_fail, p_l_lock, p_known, p_known_ms);
  RETURN port25_shared_enter(p_k, p_session, p_max, p_ttl_ms);
END $$;

-- Expired rows: at most `batch` rows of port25_shared_key (not the
-- window counts: they never expire, see above), and the expired entries
-- of at most 32 keys among the first `batch` expired entries (each key's
-- under its advisory lock, so a window's count follows; a key busy right
-- now is skipped: its own next reservation deletes them). Returns the
-- rows deleted, at least `batch` when more keys may have expired entries
-- and this call made progress (call again).
CREATE OR REPLACE FUNCTION port25_shared_expire(p_batch integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE a bigint; b bigint := 0; gone integer; keys integer := 0; k text;
BEGIN
  DELETE FROM port25_shared_key WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM port25_shared_key WHERE expires <= now() LIMIT p_batch));
  GET DIAGNOSTICS a = ROW_COUNT;
  FOR k IN SELECT DISTINCT s.key FROM (
      SELECT e.key FROM port25_shared_entry e WHERE e.expires <= now() LIMIT p_batch) s LIMIT 32 LOOP
    keys := keys + 1;
    IF pg_try_advisory_xact_lock(hashtextextended(k, 25)) THEN
      DELETE FROM port25_shared_entry WHERE key = k AND expires <= now();
      GET DIAGNOSTICS gone = ROW_COUNT;
      PERFORM port25_shared_uncount(k, gone);
      b := b + gone;
    END IF;
  END LOOP;
  IF keys = 32 AND b > 0 THEN RETURN greatest(a + b, p_batch); END IF;
  RETURN a + b;
END $$;
"#;

/// What proves the schema is there, in its current version (a database
/// made before the window counts lacks `port25_shared_release` and
/// `port25_shared_succeeded_enter`).
const PRESENT: &str = "SELECT to_regprocedure('port25_shared_release(text[], text)') IS NOT NULL \
                       AND to_regprocedure('port25_shared_succeeded_enter(text, text, text, bigint, text, text, integer, bigint)') IS NOT NULL \
                       AND to_regprocedure('port25_shared_expire(integer)') IS NOT NULL \
                       AND to_regclass('port25_shared_usage') IS NOT NULL";

/// Every statement the operations run, prepared once per connection (so
/// an operation is one Bind/Execute round trip, never a Parse first).
const QUERIES: [&str; 11] = [
    "SELECT port25_shared_locked($1, $2, $3, $4)",
    "SELECT port25_shared_failed($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    "SELECT port25_shared_succeeded($1, $2, $3, $4)",
    "SELECT port25_shared_reserve($1, $2, $3, $4)",
    "SELECT port25_shared_release($1, $2)",
    "DELETE FROM port25_shared_entry WHERE key = $1 AND member = $2",
    "SELECT port25_shared_enter($1, $2, $3, $4)",
    "INSERT INTO port25_shared_usage AS u (prefix, login, legacy, last_seen, last_ip, last_port, uses) \
     VALUES ($1, $2, $3, $4, $5, $6, 1) ON CONFLICT (prefix, login, legacy) DO UPDATE SET \
     last_seen = excluded.last_seen, last_ip = excluded.last_ip, last_port = excluded.last_port, \
     uses = u.uses + 1",
    "SELECT login, legacy, last_seen, last_ip, last_port, uses FROM port25_shared_usage \
     WHERE prefix = $1 ORDER BY login, legacy",
    "SELECT port25_shared_expire($1)",
    "SELECT port25_shared_succeeded_enter($1, $2, $3, $4, $5, $6, $7, $8)",
];
const LOCKED: usize = 0;
const FAILED: usize = 1;
const SUCCEEDED: usize = 2;
const RESERVE: usize = 3;
const RELEASE: usize = 4;
const LEAVE: usize = 5;
const ENTER: usize = 6;
const RECORD: usize = 7;
const USAGE: usize = 8;
const EXPIRE: usize = 9;
const SUCCEEDED_ENTER: usize = 10;

/// One connection and its prepared statements.
struct Conn {
    client: Client,
    prepared: tokio::sync::OnceCell<Vec<Statement>>,
}

/// One pool slot: its connection, and when it last tried to connect.
#[derive(Default)]
struct Slot {
    conn: Option<Arc<Conn>>,
    tried: Option<Instant>,
}

pub struct Postgres {
    config: tokio_postgres::Config,
    slots: Vec<tokio::sync::Mutex<Slot>>,
    next: AtomicUsize,
    timeout: Duration,
    prefix: String,
    schema: tokio::sync::OnceCell<()>,
}

/// How often a broken slot tries to connect again.
const RETRY: Duration = Duration::from_millis(500);

/// The longest wait for the tables to be made.
const INIT_WAIT: Duration = Duration::from_secs(10);

/// Expired rows deleted per table and round of the sweep.
const SWEEP_BATCH: i32 = 10_000;

impl Postgres {
    /// The pool, not connected yet (a node starts while the database is
    /// down); a task deletes expired rows every minute while the returned
    /// value lives.
    pub fn new(c: &PostgresConfig) -> Result<Arc<Postgres>, String> {
        let mut config: tokio_postgres::Config =
            c.connection.parse().map_err(|e| format!("postgresql connection {:?}: {e}", c.connection))?;
        if let Some(p) = &c.password {
            config.password(p);
        }
        config.connect_timeout(c.timeout);
        config.application_name("port25-shared");
        // Counters, not mail: a commit need not wait for its WAL flush
        // (a database crash forgets the last fraction of a second of
        // counts, never corrupts them), which spares a disk flush per
        // reservation. Added to the options the connection string gives.
        let options = match config.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} -c synchronous_commit=off"),
            _ => "-c synchronous_commit=off".to_owned(),
        };
        config.options(&options);
        let pg = Arc::new(Postgres {
            config,
            slots: (0..c.pool.clamp(1, 64)).map(|_| Default::default()).collect(),
            next: AtomicUsize::new(0),
            timeout: c.timeout,
            prefix: c.prefix.clone(),
            schema: tokio::sync::OnceCell::new(),
        });
        let weak = Arc::downgrade(&pg);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                every.tick().await;
                loop {
                    every.tick().await;
                    let Some(pg) = weak.upgrade() else { return };
                    let _ = pg.sweep().await;
                }
            });
        }
        Ok(pg)
    }

    /// Creates the tables and functions unless they are there (under an
    /// advisory lock, so two nodes starting together do not race).
    /// Bounded by [`INIT_WAIT`] rather than the per-operation timeout.
    /// Then connects every slot of the pool and prepares its statements,
    /// so the first operations do not pay for it within their timeout.
    pub async fn init(&self) -> Result<(), Unreachable> {
        let warm = async {
            let conn = self.conn().await?;
            self.schema.get_or_try_init(|| self.create(&conn.client)).await?;
            for _ in 0..self.slots.len() {
                let conn = self.conn().await?;
                conn.prepared.get_or_try_init(|| prepare(&conn.client)).await?;
            }
            Ok(())
        };
        match tokio::time::timeout(INIT_WAIT.max(self.timeout), warm).await {
            Ok(r) => r,
            Err(_) => Err(Unreachable(format!(
                "postgresql: the shared-state tables and connections were not ready within {} s",
                INIT_WAIT.as_secs()
            ))),
        }
    }

    async fn create(&self, client: &Client) -> Result<(), Unreachable> {
        let present: bool = client.query_one(PRESENT, &[]).await.map_err(sql)?.try_get(0).map_err(sql)?;
        if present {
            return Ok(());
        }
        // One simple query: one implicit transaction, rolled back whole on
        // an error (e.g. a role without CREATE), the lock held to its end.
        client
            .batch_execute(&format!("SELECT pg_advisory_xact_lock(2525025); {SCHEMA}"))
            .await
            .map_err(|e| Unreachable(format!("postgresql: cannot create the shared-state tables: {e}")))
    }

    /// Deletes expired rows until none is left (batches, each bounded).
    pub async fn sweep(&self) -> Result<u64, Unreachable> {
        let mut total = 0;
        loop {
            let row = self.one(EXPIRE, &[&SWEEP_BATCH]).await?;
            let n: i64 = row.try_get(0).map_err(sql)?;
            total += n.max(0) as u64;
            if n < i64::from(SWEEP_BATCH) {
                return Ok(total);
            }
        }
    }

    async fn bounded<T>(&self, f: impl std::future::Future<Output = Result<T, Unreachable>>) -> Result<T, Unreachable> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(Unreachable(format!("postgresql: no answer within {} ms", self.timeout.as_millis()))),
        }
    }

    /// A connection from the pool (round robin).
    async fn conn(&self) -> Result<Arc<Conn>, Unreachable> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.bounded(async { Ok(self.slots[i].lock().await) }).await?;
        if let Some(c) = slot.conn.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(c.clone());
        }
        slot.conn = None;
        if slot.tried.is_some_and(|t| t.elapsed() < RETRY) {
            return Err(Unreachable("postgresql: not connected (retrying)".into()));
        }
        slot.tried = Some(Instant::now());
        let (client, connection) = self
            .bounded(async {
                self.config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| Unreachable(format!("postgresql: cannot connect: {e}")))
            })
            .await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let conn = Arc::new(Conn { client, prepared: tokio::sync::OnceCell::new() });
        slot.conn = Some(conn.clone());
        Ok(conn)
    }

    /// A connection and its statements, once the schema is known to be
    /// there.
    async fn ready(&self) -> Result<Arc<Conn>, Unreachable> {
        let conn = self.conn().await?;
        // Made by the first operation when init could not (the database
        // was down at start); a slow creation is cut off here and finishes
        // on the server, and the next operation finds it done.
        self.bounded(self.schema.get_or_try_init(|| self.create(&conn.client))).await?;
        self.bounded(conn.prepared.get_or_try_init(|| prepare(&conn.client))).await?;
        Ok(conn)
    }

    /// Rows of one prepared statement: the operations' single round trip.
    async fn rows(
        &self,
        which: usize,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, Unreachable> {
        let conn = self.ready().await?;
        let statement = conn.prepared.get().and_then(|p| p.get(which)).cloned();
        let statement = statement.ok_or_else(|| Unreachable("postgresql: a statement was not prepared".into()))?;
        self.bounded(async { conn.client.query(&statement, params).await.map_err(sql) }).await
    }

    async fn one(
        &self,
        which: usize,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<tokio_postgres::Row, Unreachable> {
        let mut rows = self.rows(which, params).await?;
        match rows.len() {
            1 => Ok(rows.remove(0)),
            n => Err(Unreachable(format!("postgresql: {n} rows where one was expected"))),
        }
    }

    async fn run(
        &self,
        which: usize,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<(), Unreachable> {
        self.rows(which, params).await.map(|_| ())
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        k.push_str(&parts.join(":"));
        k
    }
}

/// Every statement of [`QUERIES`], prepared on `client`.
async fn prepare(client: &Client) -> Result<Vec<Statement>, Unreachable> {
    let mut all = Vec::with_capacity(QUERIES.len());
    for q in QUERIES {
        all.push(client.prepare(q).await.map_err(sql)?);
    }
    Ok(all)
}

fn sql(e: tokio_postgres::Error) -> Unreachable {
    Unreachable(format!("postgresql: {e}"))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

fn count(n: u32) -> i32 {
    i32::try_from(n.max(1)).unwrap_or(i32::MAX)
}

fn pair(v: &[i64]) -> Result<(i64, i64), Unreachable> {
    match v {
        [a, b] => Ok((*a, *b)),
        _ => Err(Unreachable(format!("postgresql: a function answered {v:?}"))),
    }
}

impl SharedState for Postgres {
    fn kind(&self) -> &'static str {
        "postgresql"
    }

    fn locked<'a>(&'a self, address: &'a str, login: Option<&'a str>) -> Pending<'a, Option<Lock>> {
        Box::pin(async move {
            let l = login.unwrap_or("");
            let row = self
                .one(
                    LOCKED,
                    &[
                        &self.key(&["lock", "a", address]),
                        &self.key(&["lock", "l", l]),
                        &self.key(&["known", l, address]),
                        &login.is_some(),
                    ],
                )
                .await?;
            let v: Vec<i64> = row.try_get(0).map_err(sql)?;
            let (which, left) = pair(&v)?;
            let left = Duration::from_millis(left.max(0) as u64);
            Ok(match which {
                1 => Some((Scope::Address, left)),
                2 => Some((Scope::Login, left)),
                _ => None,
            })
        })
    }

    fn failed<'a>(
        &'a self,
        address: &'a str,
        login: Option<&'a str>,
        rules: LockRules,
    ) -> Pending<'a, Vec<(Scope, u32)>> {
        Box::pin(async move {
            let l = login.unwrap_or("");
            let row = self
                .one(
                    FAILED,
                    &[
                        &self.key(&["fail", "a", address]),
                        &self.key(&["lock", "a", address]),
                        &self.key(&["fail", "l", l]),
                        &self.key(&["lock", "l", l]),
                        &login.is_some(),
                        &ms(rules.window),
                        &count(rules.address_lock_after),
                        &count(rules.login_lock_after),
                        &ms(rules.lockout),
                    ],
                )
                .await?;
            let v: Vec<i32> = row.try_get(0).map_err(sql)?;
            let mut started = Vec::new();
            if let [a, l] = v[..] {
                if a > 0 {
                    started.push((Scope::Address, a as u32));
                }
                if l > 0 {
                    started.push((Scope::Login, l as u32));
                }
                Ok(started)
            } else {
                Err(Unreachable(format!("postgresql: port25_shared_failed answered {v:?}")))
            }
        })
    }

    fn succeeded<'a>(&'a self, address: &'a str, login: &'a str, rules: LockRules) -> Pending<'a, ()> {
        Box::pin(async move {
            self.one(
                SUCCEEDED,
                &[
                    &self.key(&["fail", "l", login]),
                    &self.key(&["lock", "l", login]),
                    &self.key(&["known", login, address]),
                    &ms(rules.known_for),
                ],
            )
            .await
            .map(|_| ())
        })
    }

    fn reserve<'a>(&'a self, windows: &'a [Window], member: Option<&'a str>) -> Pending<'a, Result<(), Full>> {
        Box::pin(async move {
            let windows: Vec<&Window> = windows.iter().filter(|w| w.max > 0).collect();
            if windows.is_empty() {
                return Ok(Ok(()));
            }
            let keys: Vec<String> = windows.iter().map(|w| self.key(&["w", &w.key])).collect();
            let spans: Vec<i64> = windows.iter().map(|w| ms(w.span)).collect();
            let maxes: Vec<i32> = windows.iter().map(|w| count(w.max)).collect();
            let row = self.one(RESERVE, &[&keys, &spans, &maxes, &member.unwrap_or("")]).await?;
            let v: Vec<i64> = row.try_get(0).map_err(sql)?;
            let (i, wait) = pair(&v)?;
            Ok(if i > 0 {
                Err(Full { index: i as usize - 1, retry_after: Duration::from_millis(wait.max(0) as u64) })
            } else {
                Ok(())
            })
        })
    }

    fn release<'a>(&'a self, keys: &'a [String], member: &'a str) -> Pending<'a, ()> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(());
            }
            let keys: Vec<String> = keys.iter().map(|k| self.key(&["w", k])).collect();
            self.run(RELEASE, &[&keys, &member]).await
        })
    }

    fn enter_session<'a>(&'a self, login: &'a str, session: &'a str, max: u32, ttl: Duration) -> Pending<'a, bool> {
        Box::pin(async move {
            let row = self.one(ENTER, &[&self.key(&["sessions", login]), &session, &count(max), &ms(ttl)]).await?;
            row.try_get(0).map_err(sql)
        })
    }

    fn succeeded_entering<'a>(
        &'a self,
        address: &'a str,
        login: &'a str,
        rules: LockRules,
        slot: SessionSlot<'a>,
    ) -> Pending<'a, bool> {
        Box::pin(async move {
            let row = self
                .one(
                    SUCCEEDED_ENTER,
                    &[
                        &self.key(&["fail", "l", login]),
                        &self.key(&["lock", "l", login]),
                        &self.key(&["known", login, address]),
                        &ms(rules.known_for),
                        &self.key(&["sessions", slot.login]),
                        &slot.session,
                        &count(slot.max),
                        &ms(slot.ttl),
                    ],
                )
                .await?;
            row.try_get(0).map_err(sql)
        })
    }

    fn leave_session<'a>(&'a self, login: &'a str, session: &'a str) -> Pending<'a, ()> {
        Box::pin(async move { self.run(LEAVE, &[&self.key(&["sessions", login]), &session]).await })
    }

    fn record_use<'a>(&'a self, login: &'a str, legacy: bool, ip: &'a str, port: u16, unix: i64) -> Pending<'a, ()> {
        Box::pin(async move { self.run(RECORD, &[&self.prefix, &login, &legacy, &unix, &ip, &i32::from(port)]).await })
    }

    fn usage(&self) -> Pending<'_, Vec<UseRecord>> {
        Box::pin(async move {
            // One query however many rows: bounded by twenty timeouts.
            let conn = self.ready().await?;
            let statement = conn.prepared.get().and_then(|p| p.get(USAGE)).cloned();
            let statement = statement.ok_or_else(|| Unreachable("postgresql: a statement was not prepared".into()))?;
            let rows = tokio::time::timeout(self.timeout * 20, conn.client.query(&statement, &[&self.prefix]))
                .await
                .map_err(|_| Unreachable("postgresql: the usage records did not arrive in time".into()))?
                .map_err(sql)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let port: i32 = r.try_get(4).map_err(sql)?;
                out.push(UseRecord {
                    login: r.try_get(0).map_err(sql)?,
                    legacy: r.try_get(1).map_err(sql)?,
                    last_seen: r.try_get(2).map_err(sql)?,
                    last_ip: r.try_get(3).map_err(sql)?,
                    last_port: u16::try_from(port).unwrap_or(0),
                    uses: r.try_get(5).map_err(sql)?,
                });
            }
            Ok(out)
        })
    }
}
