//! The one way a password from the network is checked: SMTP AUTH (every
//! submission listener, legacy AUTH on 25) and the dashboard sign-in both
//! call [`Gate::attempt`], so they share one brute-force [`guard`] (the same
//! login and address are counted once, whichever door is knocked on) and
//! the bounds that keep a flood of logins from exhausting the machine:
//!
//! - an attempt is reserved in the guard in the same step that checks the
//!   locks, and counted as a failure or success when its check ends, so
//!   parallel attempts never verify more passwords than the lock allows;
//!   when failures and pending attempts have reached the lock, an attempt
//!   waits (at most `verification_wait`) for the pending ones to end: if
//!   they were right it goes on, if they locked the login it is refused;
//! - at most `max_verifications` password checks run at once (argon2id
//!   takes 19 MiB and tens of ms each); an attempt waits at most
//!   `verification_wait` for a slot, then is answered "try again later"
//!   (454), never accepted;
//! - at most `in_flight_per_address` attempts per client address (IPv6 per
//!   /64, IPv4-mapped as IPv4) are in progress at once; more are answered
//!   454 at once.
//!
//! Refused before any password is checked, counted against the address and
//! never against a login: a malformed login (empty, over 255 bytes, with a
//! space, control character or ':'), which no account can have, and an
//! authorization identity (AUTH PLAIN's authzid) that is not the login
//! itself (acting for another user is not supported).
//!
//! With a [`RemoteDirectory`] ([`Gate::with_directory`]), submission
//! logins are checked there instead of in the SQLite accounts, under the
//! same guard and bounds, within `directory_timeout`: a directory that is
//! down, slow or answers garbage gives [`Outcome::Error`] (454), never an
//! accepted login, and is not counted as a failure of the login. The
//! dashboard's operators are always the SQLite accounts'.
//!
//! With shared state ([`Gate::with_shared`], several nodes behind one
//! name), failures are also counted in the shared store and its locks
//! read, after the local guard's own bookkeeping and in the same round
//! trip as the failure or the success: a lock started on any node refuses
//! the login on every node, with the same answer whatever the password
//! was. A store that does not answer gives 454 (fail closed) or leaves the
//! local guard alone to decide, as configured.
//!
//! [`guard`]: crate::guard

use crate::guard::{self, AuthGuard, Finish, GuardConfig, Lockout, Refusal, Reservation, Scope};
use crate::remote::{Checked, Credentials, RemoteDirectory};
use crate::{normalize_login, Accounts, Stamp, Verdict};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateConfig {
    pub guard: GuardConfig,
    /// Password checks that may run at once, process-wide.
    pub max_verifications: usize,
    /// How long an attempt waits for a free check before 454.
    pub verification_wait: Duration,
    /// Attempts in progress at once per client address (/64).
    pub in_flight_per_address: u32,
}

impl Default for GateConfig {
    fn default() -> GateConfig {
        GateConfig {
            guard: GuardConfig::default(),
            max_verifications: 4,
            verification_wait: Duration::from_secs(5),
            in_flight_per_address: 8,
        }
    }
}

/// Who asks: submission accepts any account, the dashboard operators only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Submission,
    Dashboard,
}

pub struct Attempt<'a> {
    pub ip: IpAddr,
    pub login: &'a str,
    /// AUTH PLAIN's authorization identity, when the client sent one.
    pub authzid: Option<&'a str>,
    pub password: &'a str,
    pub purpose: Purpose,
    /// The client talked TLS (a remote directory may want to know).
    pub secured: bool,
}

/// A valid login the shared store has not been told about yet (see
/// [`Gate::attempt_deferring`]): its failures are to be forgotten there and
/// the address known as its device.
pub struct SharedSuccess {
    shared: port25_shared::Shared,
    address: String,
    login: String,
    rules: port25_shared::LockRules,
}

/// A lock the shared store holds on a login or an address, as the guard
/// names it.
pub type SharedLock = (Scope, Duration);

impl SharedSuccess {
    /// Tells the store unless a lock there refuses the login (then nothing
    /// is recorded and the lock is returned); `Err` when the store does
    /// not answer and the node fails closed.
    pub async fn record(self) -> Result<Option<SharedLock>, port25_shared::Unreachable> {
        let answer = self.shared.backend().succeeded_unless_locked(&self.address, &self.login, self.rules).await;
        let answer = self.shared.settle("succeeded", answer, Ok(()))?;
        Ok(answer.err().map(|(scope, left)| (scope_of(scope), left)))
    }

    /// [`SharedSuccess::record`] when there is a success to tell.
    pub async fn record_any(success: Option<SharedSuccess>) -> Result<Option<SharedLock>, port25_shared::Unreachable> {
        match success {
            Some(success) => success.record().await,
            None => Ok(None),
        }
    }

    /// Tells the store and takes `slot` in the same round trip, unless a
    /// lock there refuses the login: whether the slot was had (`Ok(Ok)`),
    /// the lock (`Ok(Err)`), or `Err` for an unreachable store when
    /// failing closed (see [`port25_shared::Shared::settle`]).
    pub async fn record_entering(
        self,
        slot: port25_shared::Slot<'_>,
    ) -> Result<Result<bool, SharedLock>, port25_shared::Unreachable> {
        let answer =
            self.shared.backend().succeeded_entering_unless_locked(&self.address, &self.login, self.rules, slot).await;
        let answer = self.shared.settle("enter_session", answer, Ok(true))?;
        Ok(answer.map_err(|(scope, left)| (scope_of(scope), left)))
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The password is right; `login` in its stored form; `stamp` for the
    /// dashboard (see [`Accounts::operator_stamp`]); `addresses` what a
    /// remote directory says it may send as (`None`: ask the accounts).
    Valid { login: String, stamp: Option<Stamp>, addresses: Option<Vec<String>> },
    /// Wrong (535): `reason` for the log; `locks` this failure started.
    Refused { reason: &'static str, locks: Vec<Lockout> },
    /// Locked out (454).
    Locked { scope: Scope, remaining: Duration },
    /// Not checked now, try again later (454): `reason` for the log.
    Busy { reason: &'static str },
    /// The account database or the directory failed or was too slow (454).
    Error(String),
}

/// Counters for `/metrics`-style checks and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateStats {
    /// Password checks run.
    pub verifications: u64,
    /// The most that ran at once.
    pub peak_verifications: usize,
}

pub struct Gate {
    accounts: Arc<Accounts>,
    /// Submission logins are checked there when set.
    remote: Option<(Arc<dyn RemoteDirectory>, Duration)>,
    guard: Arc<AuthGuard>,
    slots: Arc<tokio::sync::Semaphore>,
    wait: Duration,
    per_address: u32,
    in_flight: Arc<Mutex<HashMap<IpAddr, u32>>>,
    /// Woken whenever a reservation ends.
    ended: Arc<tokio::sync::Notify>,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    verifications: Arc<AtomicU64>,
    /// Locks and failures shared with other nodes, when configured.
    shared: Option<(port25_shared::Shared, port25_shared::LockRules)>,
}

/// An attempt in progress from one address (/64); leaves on drop.
struct InFlight {
    map: Arc<Mutex<HashMap<IpAddr, u32>>>,
    key: IpAddr,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// A reservation that is given back uncounted if the attempt is dropped
/// before its check ends (a client gone, a shutdown).
struct Held {
    guard: Arc<AuthGuard>,
    ended: Arc<tokio::sync::Notify>,
    reservation: Option<Reservation>,
}

impl Held {
    fn finish(mut self, how: Finish) -> Vec<Lockout> {
        let r = self.reservation.take().expect("finished once");
        let locks = self.guard.finish(r, how, Instant::now());
        self.ended.notify_waiters();
        locks
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(r) = self.reservation.take() {
            let _ = self.guard.finish(r, Finish::Cancelled, Instant::now());
            self.ended.notify_waiters();
        }
    }
}

const UNREACHABLE: &str = "the shared state is unreachable (fail closed)";

fn scope_of(s: port25_shared::Scope) -> Scope {
    match s {
        port25_shared::Scope::Address => Scope::Address,
        port25_shared::Scope::Login => Scope::Login,
    }
}

/// One check running; counted for [`GateStats`].
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    pub fn new(accounts: Arc<Accounts>, config: GateConfig) -> Gate {
        Gate {
            accounts,
            remote: None,
            guard: Arc::new(AuthGuard::new(config.guard)),
            slots: Arc::new(tokio::sync::Semaphore::new(config.max_verifications.max(1))),
            wait: config.verification_wait,
            per_address: config.in_flight_per_address.max(1),
            in_flight: Arc::default(),
            ended: Arc::default(),
            running: Arc::default(),
            peak: Arc::default(),
            verifications: Arc::default(),
            shared: None,
        }
    }

    /// Locks and failures also kept in `shared` (see the module).
    pub fn with_shared(mut self, shared: port25_shared::Shared) -> Gate {
        let c = self.guard.config();
        let rules = port25_shared::LockRules {
            window: c.window,
            address_lock_after: c.ip_lock_after,
            login_lock_after: c.user_lock_after,
            lockout: c.lockout,
            known_for: c.known_for,
        };
        self.shared = Some((shared, rules));
        self
    }

    /// Submission logins checked by `directory`, each answer awaited at
    /// most `timeout`.
    pub fn with_directory(mut self, directory: Arc<dyn RemoteDirectory>, timeout: Duration) -> Gate {
        self.remote = Some((directory, timeout));
        self
    }

    /// The remote directory submission logins are checked by, if any.
    pub fn directory(&self) -> Option<&Arc<dyn RemoteDirectory>> {
        self.remote.as_ref().map(|(d, _)| d)
    }

    pub fn accounts(&self) -> &Arc<Accounts> {
        &self.accounts
    }

    pub fn stats(&self) -> GateStats {
        GateStats {
            verifications: self.verifications.load(Ordering::SeqCst),
            peak_verifications: self.peak.load(Ordering::SeqCst),
        }
    }

    fn enter(&self, ip: IpAddr) -> Option<InFlight> {
        let key = guard::address_key(ip);
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key).or_insert(0);
        if *n >= self.per_address {
            return None;
        }
        *n += 1;
        Some(InFlight { map: self.in_flight.clone(), key })
    }

    /// Checks one login attempt; see the module for the rules.
    pub async fn attempt(&self, a: Attempt<'_>) -> Outcome {
        let (outcome, success) = self.attempt_deferring(a).await;
        match SharedSuccess::record_any(success).await {
            Ok(None) => outcome,
            Ok(Some((scope, remaining))) => Outcome::Locked { scope, remaining },
            Err(_) => Outcome::Busy { reason: UNREACHABLE },
        }
    }

    /// As [`Gate::attempt`], but a valid login's success is not told to
    /// the shared store yet: the caller does it with what it does next
    /// (submission takes the login's session slot in the same round trip)
    /// and must do it, whatever it answers the client; a lock the store
    /// holds refuses the login then (see [`SharedSuccess`]).
    ///
    /// The shared locks are read after the password is checked, in the
    /// same round trip that counts the failure or records the success:
    /// one round trip per attempt, not two. A lock therefore answers the
    /// same (454) whether the password was right or wrong, and a node
    /// checks at most its own guard's `user_lock_after` wrong passwords of
    /// a login locked in the store (per failure window) before its own
    /// lock refuses them without a check.
    pub async fn attempt_deferring(&self, a: Attempt<'_>) -> (Outcome, Option<SharedSuccess>) {
        let Some((shared, rules)) = &self.shared else { return (self.attempt_here(a).await, None) };
        let address = guard::address_key(a.ip).to_string();
        let login = normalize_login(a.login).ok();
        let mut outcome = self.attempt_here(a).await;
        let mut success = None;
        match &mut outcome {
            Outcome::Refused { locks, .. } => {
                let answer = shared.backend().failed_unless_locked(&address, login.as_deref(), *rules).await;
                match shared.settle("failed", answer, Ok(Vec::new())) {
                    Ok(Ok(started)) => {
                        for (scope, failures) in started {
                            let scope = scope_of(scope);
                            if !locks.iter().any(|l| l.scope == scope) {
                                locks.push(Lockout { scope, failures, duration: rules.lockout });
                            }
                        }
                    }
                    Ok(Err((scope, remaining))) => outcome = Outcome::Locked { scope: scope_of(scope), remaining },
                    // A lock cannot be ruled out: answered as a lock or a
                    // right password would be when failing closed.
                    Err(_) => outcome = Outcome::Busy { reason: UNREACHABLE },
                }
            }
            Outcome::Valid { .. } => {
                success = login.map(|login| SharedSuccess { shared: shared.clone(), address, login, rules: *rules });
            }
            _ => {}
        }
        (outcome, success)
    }

    async fn attempt_here(&self, a: Attempt<'_>) -> Outcome {
        let Some(_in_flight) = self.enter(a.ip) else {
            return Outcome::Busy { reason: "too many logins in progress from this address" };
        };
        let login = normalize_login(a.login).ok();
        let early = match (&login, a.authzid) {
            (None, _) => Some("malformed login (empty, over 255 bytes, or with a space, a control character or ':')"),
            (Some(l), Some(z)) if normalize_login(z).ok().as_ref() != Some(l) => {
                Some("authorization identity differs from the login")
            }
            _ => None,
        };
        let key = if early.is_some() { None } else { login.as_deref() };
        let deadline = tokio::time::Instant::now() + self.wait;
        let reservation = loop {
            // Registered before the check, so an end in between is not missed.
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let scope = match self.guard.reserve(a.ip, key, Instant::now()) {
                Ok(r) => break r,
                Err(Refusal::Locked { scope, remaining }) => return Outcome::Locked { scope, remaining },
                Err(Refusal::Pending { scope }) => scope,
            };
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return Outcome::Busy {
                    reason: match scope {
                        Scope::Address => "failed and pending logins from this address have reached the lock",
                        Scope::Login => "failed and pending attempts for this login have reached the lock",
                    },
                };
            }
        };
        let delay = reservation.delay;
        let held = Held { guard: self.guard.clone(), ended: self.ended.clone(), reservation: Some(reservation) };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(reason) = early {
            return Outcome::Refused { reason, locks: held.finish(Finish::Failure) };
        }
        let permit = match tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => return Outcome::Busy { reason: "every password check is busy" },
        };
        let login = login.expect("checked above");
        if let (Some((directory, timeout)), Purpose::Submission) = (&self.remote, a.purpose) {
            return self.remote_check(directory.clone(), *timeout, permit, held, login, a).await;
        }
        let password = a.password.to_owned();
        let purpose = a.purpose;
        let (accounts, running, peak, count) =
            (self.accounts.clone(), self.running.clone(), self.peak.clone(), self.verifications.clone());
        // The check and its bookkeeping finish even if the session goes
        // away meanwhile: the failure is counted, the slot held until done.
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let now_running = running.fetch_add(1, Ordering::SeqCst) + 1;
            let _running = Running(&running);
            peak.fetch_max(now_running, Ordering::SeqCst);
            count.fetch_add(1, Ordering::SeqCst);
            let checked = match purpose {
                Purpose::Submission => accounts.verify(&login, &password).map(|v| (v, None)),
                Purpose::Dashboard => accounts.verify_operator(&login, &password),
            };
            let how = match &checked {
                Ok((Verdict::Valid { .. }, _)) => Finish::Success,
                Ok(_) => Finish::Failure,
                Err(_) => Finish::Cancelled,
            };
            let locks = held.finish(how);
            (login, checked, locks)
        });
        match task.await {
            Ok((login, Ok((Verdict::Valid { .. }, stamp)), _)) => Outcome::Valid { login, stamp, addresses: None },
            Ok((_, Ok((Verdict::WrongPassword, _)), locks)) => Outcome::Refused { reason: "wrong password", locks },
            Ok((_, Ok((Verdict::UnknownUser, _)), locks)) => Outcome::Refused {
                reason: if purpose == Purpose::Dashboard {
                    "unknown login or not an operator"
                } else {
                    "unknown login"
                },
                locks,
            },
            Ok((_, Err(e), _)) => Outcome::Error(e.to_string()),
            Err(e) => Outcome::Error(format!("the password check failed: {e}")),
        }
    }

    /// A submission login checked by the remote directory. Like the local
    /// check it runs in a task of its own, so the failure is counted and
    /// the slot held until the directory answered (or the time is up) even
    /// when the session goes away. Down, slow or garbled: an error (454),
    /// not counted against the login.
    async fn remote_check(
        &self,
        directory: Arc<dyn RemoteDirectory>,
        timeout: Duration,
        permit: tokio::sync::OwnedSemaphorePermit,
        held: Held,
        login: String,
        a: Attempt<'_>,
    ) -> Outcome {
        let (password, client, secured) = (a.password.to_owned(), a.ip, a.secured);
        let (running, peak, count) = (self.running.clone(), self.peak.clone(), self.verifications.clone());
        let task = tokio::spawn(async move {
            let _permit = permit;
            let now_running = running.fetch_add(1, Ordering::SeqCst) + 1;
            let _running = Running(&running);
            peak.fetch_max(now_running, Ordering::SeqCst);
            count.fetch_add(1, Ordering::SeqCst);
            let credentials = Credentials { login: &login, password: &password, client, secured };
            let checked = match tokio::time::timeout(timeout, directory.verify(credentials)).await {
                Ok(Ok(c)) => Ok(c),
                Ok(Err(e)) => Err(format!("{} directory: {e}", directory.kind())),
                Err(_) => Err(format!("{} directory: no answer within {} ms", directory.kind(), timeout.as_millis())),
            };
            let how = match &checked {
                Ok(Checked::Valid { .. }) => Finish::Success,
                Ok(_) => Finish::Failure,
                Err(_) => Finish::Cancelled,
            };
            (checked, held.finish(how))
        });
        match task.await {
            Ok((Ok(Checked::Valid { login, addresses, .. }), _)) => {
                Outcome::Valid { login, stamp: None, addresses: Some(addresses) }
            }
            Ok((Ok(Checked::WrongPassword), locks)) => Outcome::Refused { reason: "wrong password", locks },
            Ok((Ok(Checked::UnknownUser), locks)) => Outcome::Refused { reason: "unknown login", locks },
            Ok((Err(e), _)) => Outcome::Error(e),
            Err(e) => Outcome::Error(format!("the password check failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(dir: &std::path::Path, config: GateConfig) -> Arc<Gate> {
        let a = Accounts::open(&dir.join("a.db"), None).unwrap();
        a.add("alice@x.example", "right", &[]).unwrap();
        a.add("ops@x.example", "ops pw", &[]).unwrap();
        a.set_operator("ops@x.example", true).unwrap();
        Arc::new(Gate::new(Arc::new(a), config))
    }

    fn attempt<'a>(ip: &str, login: &'a str, password: &'a str) -> Attempt<'a> {
        Attempt { ip: ip.parse().unwrap(), login, authzid: None, password, purpose: Purpose::Submission, secured: true }
    }

    /// Issue 13 item 5: a hundred parallel wrong passwords from one address
    /// for one login. The lock engages after exactly the configured count,
    /// every failure recorded is a password checked, and no more checks run
    /// at once than the bound.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_attempts_verify_no_more_than_the_lock_and_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let config = GateConfig {
            guard: GuardConfig { slow_after: 100, user_lock_after: 10, ip_lock_after: 1000, ..GuardConfig::default() },
            max_verifications: 2,
            in_flight_per_address: 1000,
            verification_wait: Duration::from_secs(60),
        };
        let g = gate(dir.path(), config);
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let g = g.clone();
                tokio::spawn(
                    async move { g.attempt(attempt("192.0.2.1", "alice@x.example", &format!("guess {i}"))).await },
                )
            })
            .collect();
        let (mut refused, mut busy, mut locks) = (0, 0, Vec::new());
        for t in tasks {
            match t.await.unwrap() {
                Outcome::Refused { reason: "wrong password", locks: l } => {
                    refused += 1;
                    locks.extend(l);
                }
                Outcome::Busy { .. } | Outcome::Locked { .. } => busy += 1,
                other => panic!("{other:?}"),
            }
        }
        let stats = g.stats();
        assert_eq!((refused, busy), (10, 90));
        assert_eq!(stats.verifications, 10, "every check is a recorded failure");
        assert!(stats.peak_verifications <= 2, "{stats:?}");
        assert_eq!(locks.len(), 1);
        assert_eq!(locks[0].scope, Scope::Login);
        let locked = g.attempt(attempt("192.0.2.1", "alice@x.example", "right")).await;
        assert!(matches!(locked, Outcome::Locked { scope: Scope::Login, .. }), "{locked:?}");
    }

    /// Right passwords in parallel, more than the lock: the later ones wait
    /// for the pending ones instead of being refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_right_passwords_wait_for_the_pending_ones() {
        let dir = tempfile::tempdir().unwrap();
        let config = GateConfig {
            guard: GuardConfig { user_lock_after: 3, ..GuardConfig::default() },
            in_flight_per_address: 100,
            ..GateConfig::default()
        };
        let g = gate(dir.path(), config);
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let g = g.clone();
                tokio::spawn(
                    async move { g.attempt(attempt(&format!("192.0.2.{i}"), "alice@x.example", "right")).await },
                )
            })
            .collect();
        for t in tasks {
            assert!(matches!(t.await.unwrap(), Outcome::Valid { .. }));
        }
    }

    #[tokio::test]
    async fn per_address_cap_and_a_full_gate_answer_busy_never_accept() {
        let dir = tempfile::tempdir().unwrap();
        let config = GateConfig {
            max_verifications: 1,
            in_flight_per_address: 1,
            verification_wait: Duration::from_millis(1),
            ..GateConfig::default()
        };
        let g = gate(dir.path(), config);
        // Hold the only slot; the attempt that waits for it gives up.
        let held = g.slots.clone().acquire_owned().await.unwrap();
        let busy = g.attempt(attempt("2001:db8::1", "alice@x.example", "right")).await;
        assert_eq!(busy, Outcome::Busy { reason: "every password check is busy" });
        drop(held);
        let _inside = g.enter("2001:db8::2".parse().unwrap()).unwrap();
        let busy = g.attempt(attempt("2001:db8::3", "alice@x.example", "right")).await;
        assert_eq!(busy, Outcome::Busy { reason: "too many logins in progress from this address" }, "one /64");
        let ok = g.attempt(attempt("::ffff:192.0.2.7", "ALICE@x.example", "right")).await;
        assert_eq!(ok, Outcome::Valid { login: "alice@x.example".into(), stamp: None, addresses: None });
        assert_eq!(g.stats().verifications, 1, "busy attempts check nothing");
    }

    /// Issue 13 item 12: ten AUTH PLAIN with authzid "victim" used to lock
    /// the victim out without a single check; a login over 255 bytes was
    /// truncated in one place and not in the other.
    #[tokio::test]
    async fn mismatched_authzid_and_overlong_logins_are_refused_unchecked_and_never_count_against_a_login() {
        let dir = tempfile::tempdir().unwrap();
        let config = GateConfig {
            guard: GuardConfig { slow_after: 100, user_lock_after: 3, ip_lock_after: 1000, ..GuardConfig::default() },
            ..GateConfig::default()
        };
        let g = gate(dir.path(), config);
        let long = format!("{}@x.example", "a".repeat(300));
        for _ in 0..20 {
            let a = Attempt { authzid: Some("alice@x.example"), ..attempt("192.0.2.9", "mallory@x.example", "x") };
            assert!(matches!(
                g.attempt(a).await,
                Outcome::Refused { reason: "authorization identity differs from the login", .. }
            ));
            let a = Attempt { authzid: Some("mallory@x.example"), ..attempt("192.0.2.9", "alice@x.example", "x") };
            assert!(matches!(
                g.attempt(a).await,
                Outcome::Refused { reason: "authorization identity differs from the login", .. }
            ));
            assert!(
                matches!(g.attempt(attempt("192.0.2.9", &long, "x")).await, Outcome::Refused { reason, .. } if reason.starts_with("malformed"))
            );
        }
        assert_eq!(g.stats().verifications, 0, "nothing hashed");
        let same = Attempt { authzid: Some("Alice@x.example"), ..attempt("198.51.100.1", "alice@x.example", "right") };
        assert!(
            matches!(g.attempt(same).await, Outcome::Valid { .. }),
            "an authzid equal to the login is fine, and alice is not locked"
        );
    }

    #[tokio::test]
    async fn the_dashboard_checks_operators_only_and_shares_the_guard() {
        let dir = tempfile::tempdir().unwrap();
        let config = GateConfig {
            guard: GuardConfig { slow_after: 100, user_lock_after: 2, ..GuardConfig::default() },
            ..GateConfig::default()
        };
        let g = gate(dir.path(), config);
        let dash = |login, password| Attempt { purpose: Purpose::Dashboard, ..attempt("192.0.2.1", login, password) };
        let r = g.attempt(dash("alice@x.example", "right")).await;
        assert!(matches!(r, Outcome::Refused { reason: "unknown login or not an operator", .. }), "{r:?}");
        assert!(matches!(g.attempt(dash("ops@x.example", "ops pw")).await, Outcome::Valid { stamp: Some(_), .. }));
        // One failure on the form, one over SMTP: the login is locked for both.
        assert!(matches!(g.attempt(dash("ops@x.example", "x")).await, Outcome::Refused { .. }));
        assert!(matches!(g.attempt(attempt("203.0.113.5", "ops@x.example", "y")).await, Outcome::Refused { .. }));
        assert!(
            matches!(g.attempt(dash("ops@x.example", "ops pw")).await, Outcome::Valid { .. }),
            "192.0.2.1 is a known device now"
        );
        assert!(matches!(
            g.attempt(attempt("203.0.113.6", "ops@x.example", "ops pw")).await,
            Outcome::Locked { scope: Scope::Login, .. }
        ));
    }
}
