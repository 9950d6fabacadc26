//! State shared by several port25 nodes behind one name: brute-force
//! failure counts and locks, sending-limit reservations, per-login session
//! caps and the migration report's usage records.
//!
//! Each node keeps its in-process state (the guard, the quota, the session
//! counts) as before: that is the one-node default and stays the first
//! check. When `[submission.shared]` names a Redis server, every decision
//! is also taken against the shared state, so two nodes together never
//! allow more than one would: a login's hourly limit holds across nodes, a
//! lock started on one node refuses the login on the others, and the
//! migration usage is one record per login however many nodes saw it.
//!
//! The seam is [`SharedState`], with two stores: Redis (every operation is
//! one Lua script) and PostgreSQL where that is the provider's backend
//! (every operation is one function call or statement). Either way an
//! operation is one round trip, atomic on the server with the server's
//! clock (node clocks do not matter), run over a fixed-size pool with a
//! short timeout. What happens
//! when the store does not answer is the operator's choice
//! ([`OnUnreachable`]): refuse (454 4.7.0) or fall back to the node's own
//! counters with a loud `port25.shared.unreachable` event.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use port25_events::{catalogue as ev, emit};

mod postgres;
mod redis;
mod redis_conn;
pub mod resp;
pub use postgres::{Postgres, PostgresConfig, SCHEMA as POSTGRES_SCHEMA};
pub use redis::{Redis, RedisConfig};

pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, Unreachable>> + Send + 'a>>;

/// The shared store did not answer (down, slow, refused the script).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which lock applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Address,
    Login,
}

/// A lock in force: whose, and how long it still holds.
pub type Lock = (Scope, Duration);

/// The brute-force limits, as the local guard has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockRules {
    pub window: Duration,
    pub address_lock_after: u32,
    pub login_lock_after: u32,
    pub lockout: Duration,
    pub known_for: Duration,
}

/// One sliding window a reservation counts in: at most `max` entries
/// younger than `span` under `key` (e.g. "rph:alice@example.org").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub key: String,
    pub span: Duration,
    pub max: u32,
}

/// A window is full: its index in the request and when its oldest entry
/// leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    pub index: usize,
    pub retry_after: Duration,
}

/// One session slot to take, as [`SharedState::enter_session`] has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot<'a> {
    pub login: &'a str,
    pub session: &'a str,
    pub max: u32,
    pub ttl: Duration,
}

/// One migration usage record (the accounts' `migration::Use` fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseRecord {
    pub login: String,
    pub legacy: bool,
    pub last_seen: i64,
    pub last_ip: String,
    pub last_port: u16,
    pub uses: i64,
}

/// The shared store. Keys are the callers' (logins already normalised,
/// addresses already folded to their counting key).
pub trait SharedState: Send + Sync {
    /// "redis": for the log.
    fn kind(&self) -> &'static str;

    /// The lock that refuses an attempt now, if any: the address's, or the
    /// login's unless `login` succeeded from `address` within `known_for`.
    fn locked<'a>(&'a self, address: &'a str, login: Option<&'a str>) -> Pending<'a, Option<Lock>>;

    /// Counts a failed attempt; returns the locks it started (with the
    /// failure count that started each).
    fn failed<'a>(
        &'a self,
        address: &'a str,
        login: Option<&'a str>,
        rules: LockRules,
    ) -> Pending<'a, Vec<(Scope, u32)>>;

    /// A successful login: its failures are forgotten (never an active
    /// lock) and `address` becomes one of its known devices.
    fn succeeded<'a>(&'a self, address: &'a str, login: &'a str, rules: LockRules) -> Pending<'a, ()>;

    /// Reserves one entry named `member` in every window, all or none;
    /// `member: None` only checks.
    fn reserve<'a>(&'a self, windows: &'a [Window], member: Option<&'a str>) -> Pending<'a, Result<(), Full>>;

    /// Gives entries back (a transaction that was not stored).
    fn release<'a>(&'a self, keys: &'a [String], member: &'a str) -> Pending<'a, ()>;

    /// Holds one of a login's at most `max` sessions for `session`
    /// (forgotten after `ttl` if never left, e.g. a node that died).
    fn enter_session<'a>(&'a self, login: &'a str, session: &'a str, max: u32, ttl: Duration) -> Pending<'a, bool>;

    fn leave_session<'a>(&'a self, login: &'a str, session: &'a str) -> Pending<'a, ()>;

    /// A successful login that then takes a session slot: `succeeded`
    /// followed by `enter_session` for `slot`, answering what the latter
    /// does. One round trip where the store can (Redis: one script);
    /// this default makes the two calls.
    fn succeeded_entering<'a>(
        &'a self,
        address: &'a str,
        login: &'a str,
        rules: LockRules,
        slot: Slot<'a>,
    ) -> Pending<'a, bool> {
        Box::pin(async move {
            self.succeeded(address, login, rules).await?;
            self.enter_session(slot.login, slot.session, slot.max, slot.ttl).await
        })
    }

    /// `locked`, then `failed` unless a lock refuses: the lock in force
    /// (the attempt is not counted), or the locks this failure started.
    /// After the password was checked, so that a lock and a wrong
    /// password answer alike (one round trip where the store can; this
    /// default makes the two calls).
    fn failed_unless_locked<'a>(
        &'a self,
        address: &'a str,
        login: Option<&'a str>,
        rules: LockRules,
    ) -> Pending<'a, Result<Vec<(Scope, u32)>, Lock>> {
        Box::pin(async move {
            if let Some(lock) = self.locked(address, login).await? {
                return Ok(Err(lock));
            }
            Ok(Ok(self.failed(address, login, rules).await?))
        })
    }

    /// `locked`, then `succeeded` unless a lock refuses (nothing is
    /// recorded then).
    fn succeeded_unless_locked<'a>(
        &'a self,
        address: &'a str,
        login: &'a str,
        rules: LockRules,
    ) -> Pending<'a, Result<(), Lock>> {
        Box::pin(async move {
            if let Some(lock) = self.locked(address, Some(login)).await? {
                return Ok(Err(lock));
            }
            Ok(Ok(self.succeeded(address, login, rules).await?))
        })
    }

    /// `locked`, then `succeeded_entering` unless a lock refuses: a
    /// login's AUTH after its password was found right, in one round trip
    /// where the store can (Redis: one script).
    fn succeeded_entering_unless_locked<'a>(
        &'a self,
        address: &'a str,
        login: &'a str,
        rules: LockRules,
        slot: Slot<'a>,
    ) -> Pending<'a, Result<bool, Lock>> {
        Box::pin(async move {
            if let Some(lock) = self.locked(address, Some(login)).await? {
                return Ok(Err(lock));
            }
            Ok(Ok(self.succeeded_entering(address, login, rules, slot).await?))
        })
    }

    /// Records a use for the migration report (one record per login and
    /// kind, whichever node saw it).
    fn record_use<'a>(&'a self, login: &'a str, legacy: bool, ip: &'a str, port: u16, unix: i64) -> Pending<'a, ()>;

    /// Every usage record.
    fn usage(&self) -> Pending<'_, Vec<UseRecord>>;
}

/// What a node does when the shared store does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnreachable {
    /// Refuse what needs the shared state: AUTH and MAIL get 454 4.7.0.
    /// Limits hold across nodes whatever happens; mail waits while the
    /// store is down.
    FailClosed,
    /// Decide with the node's own counters (each node then allows its own
    /// limit) and log `port25.shared.unreachable` at error level.
    Local,
}

impl OnUnreachable {
    pub fn name(self) -> &'static str {
        match self {
            OnUnreachable::FailClosed => "fail_closed",
            OnUnreachable::Local => "local",
        }
    }
}

/// A node's handle on the shared store: the backend, the policy for when
/// it does not answer, and the node's tag (unique per process, so two
/// nodes' session ids never collide in the store).
#[derive(Clone)]
pub struct Shared {
    backend: Arc<dyn SharedState>,
    policy: OnUnreachable,
    node: Arc<str>,
    seq: Arc<AtomicU64>,
    last_event: Arc<std::sync::Mutex<Option<Instant>>>,
    suppressed: Arc<AtomicU64>,
}

/// At most one unreachable event per this interval (the rest are counted
/// in the next one's `suppressed`): a store down under load must not
/// flood the log.
const EVENT_EVERY: Duration = Duration::from_secs(5);

impl Shared {
    pub fn new(backend: Arc<dyn SharedState>, policy: OnUnreachable) -> Shared {
        let node = format!("{:x}-{:x}", std::process::id(), random());
        Shared {
            backend,
            policy,
            node: node.into(),
            seq: Arc::default(),
            last_event: Arc::default(),
            suppressed: Arc::default(),
        }
    }

    pub fn policy(&self) -> OnUnreachable {
        self.policy
    }

    pub fn backend(&self) -> &Arc<dyn SharedState> {
        &self.backend
    }

    /// A name unique across nodes for one reservation of `session`.
    pub fn member(&self, session: &str) -> String {
        format!("{}:{session}:{}", self.node, self.seq.fetch_add(1, Ordering::Relaxed))
    }

    /// A session's name in the store.
    pub fn session_name(&self, session: &str) -> String {
        format!("{}:{session}", self.node)
    }

    /// The backend's answer, or for an unreachable store: `Err` when
    /// failing closed, `local` (the node decides alone) otherwise; either
    /// way a loud event.
    pub fn settle<T>(
        &self,
        operation: &'static str,
        answer: Result<T, Unreachable>,
        local: T,
    ) -> Result<T, Unreachable> {
        match answer {
            Ok(v) => Ok(v),
            Err(e) => {
                self.unreachable(operation, &e);
                match self.policy {
                    OnUnreachable::FailClosed => Err(e),
                    OnUnreachable::Local => Ok(local),
                }
            }
        }
    }

    fn unreachable(&self, operation: &'static str, e: &Unreachable) {
        let now = Instant::now();
        {
            let mut last = self.last_event.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| now.duration_since(t) < EVENT_EVERY) {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            *last = Some(now);
        }
        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
        emit!(
            error,
            ev::SHARED_UNREACHABLE,
            backend = self.backend.kind(),
            operation,
            policy = self.policy.name(),
            error = %e,
            suppressed
        );
    }
}

/// A process-unique number without a random-number crate: the std hasher's
/// per-process random keys over the time.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}
