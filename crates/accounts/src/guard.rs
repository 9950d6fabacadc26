//! Brute-force limits on logins (SMTP AUTH and the dashboard share one),
//! per client address and per login.
//!
//! Failures are counted in a window. Past `slow_after` failures every
//! attempt from that address or for that login waits a growing delay
//! (which also slows a guesser's parallel sessions); past `lock_after` the
//! address or the login is locked out for `lockout`, during which even the
//! right password is refused with 454 4.7.0.
//!
//! An attempt is *reserved* in the same step that checks the locks
//! ([`AuthGuard::reserve`]) and counted as pending until its verification
//! ends ([`AuthGuard::finish`]): the check counts failures plus pending
//! attempts, so a thousand parallel attempts cannot all pass the check
//! before the first failure is recorded. No more attempts than the lock
//! allows are ever verified: once failures and pending attempts reach it,
//! further attempts are refused (454) without a password check.
//!
//! An attacker must not be able to lock a real user out forever: a user
//! lock ends after `lockout` like any other, attempts during a lock are not
//! counted (so they do not extend it), and a login keeps working from any
//! address it logged in from successfully within `known_for` (the user's
//! own devices), whatever happens to the login's counter elsewhere. The
//! per-address lock still applies there, so a guesser cannot hide behind a
//! known device's address. An active lock is never cleared before its end,
//! whatever the failure window says. IPv4-mapped IPv6 addresses count as
//! the IPv4 address; IPv6 clients are counted per /64, the block one
//! subscriber usually gets.
//!
//! Pure bookkeeping with the time passed in, so tests control the clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfig {
    /// Failures are counted over this window (and forgotten after it).
    pub window: Duration,
    /// Failures (per address or per login) before attempts are delayed.
    pub slow_after: u32,
    /// Added delay per failure past `slow_after`, up to `max_delay`.
    pub delay_step: Duration,
    pub max_delay: Duration,
    pub ip_lock_after: u32,
    pub user_lock_after: u32,
    pub lockout: Duration,
    /// How long a successful (login, address) pair stays exempt from the
    /// login's lock.
    pub known_for: Duration,
}

impl Default for GuardConfig {
    fn default() -> GuardConfig {
        GuardConfig {
            window: Duration::from_secs(15 * 60),
            slow_after: 3,
            delay_step: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            ip_lock_after: 20,
            user_lock_after: 10,
            lockout: Duration::from_secs(15 * 60),
            known_for: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Address,
    Login,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Address => "address",
            Scope::Login => "login",
        }
    }
}

/// Why an attempt may not go ahead now (454 4.7.0, no password check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address or the login is locked out for `remaining`.
    Locked { scope: Scope, remaining: Duration },
    /// Failures plus attempts still being verified have reached the lock:
    /// one more could only be verified past it.
    Pending { scope: Scope },
}

/// A lock that a failure has just started; the caller records an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    pub scope: Scope,
    pub failures: u32,
    pub duration: Duration,
}

/// An attempt counted as pending; give it back with [`AuthGuard::finish`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a reservation is pending until finish() gives it back"]
pub struct Reservation {
    ip: IpAddr,
    login: Option<String>,
    /// Wait this long before verifying.
    pub delay: Duration,
}

/// How a reserved attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Wrong password, unknown login, or a login refused before any check
    /// (counted as a failure).
    Failure,
    Success,
    /// Never decided (a database error, no verification slot): not counted.
    Cancelled,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    /// Reserved attempts not finished yet.
    pending: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

impl Record {
    fn new(now: Instant) -> Record {
        Record { failures: 0, pending: 0, first: now, locked_until: None }
    }

    fn locked(&self, now: Instant) -> Option<Duration> {
        self.locked_until.filter(|&u| u > now).map(|u| u - now)
    }

    /// Counts one failure; true when it starts a lock. A failure that ends
    /// during a lock is not counted (it would extend the lock), and the
    /// count starts over only once the window has passed *and* no lock is
    /// active: the window never shortens a lock.
    fn fail(&mut self, now: Instant, window: Duration, lock_after: u32, lockout: Duration) -> bool {
        if self.locked(now).is_some() {
            return false;
        }
        if self.failures == 0 || self.locked_until.is_some() || now.duration_since(self.first) > window {
            self.failures = 0;
            self.first = now;
            self.locked_until = None;
        }
        self.failures += 1;
        if self.failures >= lock_after {
            self.locked_until = Some(now + lockout);
            return true;
        }
        false
    }

    fn live_failures(&self, now: Instant, window: Duration) -> u32 {
        if self.locked_until.is_some_and(|u| u <= now) || now.duration_since(self.first) > window {
            0
        } else {
            self.failures
        }
    }

    /// Nothing left to remember.
    fn idle(&self, now: Instant, window: Duration) -> bool {
        self.pending == 0 && self.locked(now).is_none() && self.live_failures(now, window) == 0
    }
}

/// Entries kept per map before stale ones are swept.
const SWEEP_AT: usize = 100_000;

#[derive(Default)]
struct State {
    addresses: HashMap<IpAddr, Record>,
    logins: HashMap<String, Record>,
    known: HashMap<(String, IpAddr), Instant>,
}

pub struct AuthGuard {
    config: GuardConfig,
    state: Mutex<State>,
}

/// The key an address is counted under: itself (an IPv4-mapped IPv6
/// address as its IPv4 address), or its /64 for IPv6.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

impl AuthGuard {
    pub fn new(config: GuardConfig) -> AuthGuard {
        AuthGuard { config, state: Mutex::new(State::default()) }
    }

    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn delay(&self, failures: u32) -> Duration {
        let over = failures.saturating_sub(self.config.slow_after);
        (self.config.delay_step * over).min(self.config.max_delay)
    }

    /// Checks the locks and, in the same step, reserves the attempt:
    /// until [`finish`](Self::finish) it counts toward the locks of the
    /// address and of `login` (`None`: a login that cannot exist, counted
    /// against the address only). Logins are at most 255 bytes
    /// ([`crate::normalize_login`] refuses longer ones before this).
    pub fn reserve(&self, ip: IpAddr, login: Option<&str>, now: Instant) -> Result<Reservation, Refusal> {
        let ip = address_key(ip);
        let c = &self.config;
        let mut state = self.state();
        if state.addresses.len() > SWEEP_AT || state.logins.len() > SWEEP_AT {
            sweep(&mut state, now, c);
        }
        let by_ip = state.addresses.get(&ip).copied().unwrap_or_else(|| Record::new(now));
        if let Some(remaining) = by_ip.locked(now) {
            return Err(Refusal::Locked { scope: Scope::Address, remaining });
        }
        let ip_count = by_ip.live_failures(now, c.window) + by_ip.pending;
        if ip_count >= c.ip_lock_after {
            return Err(Refusal::Pending { scope: Scope::Address });
        }
        let mut count = ip_count;
        if let Some(login) = login {
            let known = state.known.get(&(login.to_owned(), ip)).is_some_and(|&t| now.duration_since(t) < c.known_for);
            let by_login = state.logins.get(login).copied().unwrap_or_else(|| Record::new(now));
            if !known {
                if let Some(remaining) = by_login.locked(now) {
                    return Err(Refusal::Locked { scope: Scope::Login, remaining });
                }
                let login_count = by_login.live_failures(now, c.window) + by_login.pending;
                if login_count >= c.user_lock_after {
                    return Err(Refusal::Pending { scope: Scope::Login });
                }
                count = count.max(login_count);
            }
            state.logins.entry(login.to_owned()).or_insert(by_login).pending += 1;
        }
        state.addresses.entry(ip).or_insert(by_ip).pending += 1;
        Ok(Reservation { ip, login: login.map(str::to_owned), delay: self.delay(count) })
    }

    /// Ends a reserved attempt; returns the locks a failure started.
    pub fn finish(&self, r: Reservation, how: Finish, now: Instant) -> Vec<Lockout> {
        let c = &self.config;
        let mut state = self.state();
        let mut started = Vec::new();
        if let Some(rec) = state.addresses.get_mut(&r.ip) {
            rec.pending = rec.pending.saturating_sub(1);
            if how == Finish::Failure && rec.fail(now, c.window, c.ip_lock_after, c.lockout) {
                started.push(Lockout { scope: Scope::Address, failures: rec.failures, duration: c.lockout });
            }
            if rec.idle(now, c.window) {
                state.addresses.remove(&r.ip);
            }
        }
        let Some(login) = r.login else { return started };
        if let Some(rec) = state.logins.get_mut(&login) {
            rec.pending = rec.pending.saturating_sub(1);
            match how {
                Finish::Failure if rec.fail(now, c.window, c.user_lock_after, c.lockout) => {
                    started.push(Lockout { scope: Scope::Login, failures: rec.failures, duration: c.lockout });
                }
                // The login's failures are forgotten (never an active lock);
                // the address's count stays, so a guesser with one valid
                // account cannot reset it.
                Finish::Success if rec.locked(now).is_none() => {
                    *rec = Record { pending: rec.pending, ..Record::new(now) }
                }
                _ => {}
            }
            if rec.idle(now, c.window) {
                state.logins.remove(&login);
            }
        }
        if how == Finish::Success {
            // This address becomes one of the login's known devices.
            if state.known.len() > SWEEP_AT {
                let known_for = c.known_for;
                state.known.retain(|_, t| now.duration_since(*t) < known_for);
            }
            state.known.insert((login, r.ip), now);
        }
        started
    }
}

/// Forgets counts that no longer matter; if a flood of new addresses or
/// made-up logins still fills the maps, forgets every count that is not a
/// lock or a pending attempt, so memory and the cost of the next sweep
/// stay bounded (pending attempts are bounded by the in-flight caps).
fn sweep(state: &mut State, now: Instant, c: &GuardConfig) {
    state.addresses.retain(|_, r| !r.idle(now, c.window));
    state.logins.retain(|_, r| !r.idle(now, c.window));
    let keep = |r: &Record| r.locked(now).is_some() || r.pending > 0;
    if state.addresses.len() > SWEEP_AT / 2 {
        state.addresses.retain(|_, r| keep(r));
    }
    if state.logins.len() > SWEEP_AT / 2 {
        state.logins.retain(|_, r| keep(r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GuardConfig {
        GuardConfig {
            window: Duration::from_secs(600),
            slow_after: 2,
            delay_step: Duration::from_secs(1),
            max_delay: Duration::from_secs(3),
            ip_lock_after: 6,
            user_lock_after: 4,
            lockout: Duration::from_secs(300),
            known_for: Duration::from_secs(86400),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// One whole attempt that fails.
    fn fail(g: &AuthGuard, a: IpAddr, login: &str, now: Instant) -> Vec<Lockout> {
        let r = g.reserve(a, Some(login), now).expect("allowed");
        g.finish(r, Finish::Failure, now)
    }

    /// Alice logs in from home, then four addresses fail for her: her login
    /// is locked everywhere but at home.
    fn lock_alice_but_home(g: &AuthGuard, now: Instant) -> IpAddr {
        let home = ip("198.51.100.7");
        let r = g.reserve(home, Some("alice"), now).unwrap();
        let _ = g.finish(r, Finish::Success, now);
        // A distributed guesser: one failure from each of many addresses.
        for i in 0..4 {
            fail(g, ip(&format!("203.0.113.{i}")), "alice", now);
        }
        home
    }

    fn delay(g: &AuthGuard, a: IpAddr, login: &str, now: Instant) -> Result<u64, Refusal> {
        let r = g.reserve(a, Some(login), now)?;
        let d = r.delay.as_secs();
        let _ = g.finish(r, Finish::Cancelled, now);
        Ok(d)
    }

    #[test]
    fn slows_down_then_locks_the_address() {
        let g = AuthGuard::new(GuardConfig { user_lock_after: 100, ..config() });
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        let mut delays = Vec::new();
        for i in 0..5 {
            delays.push(delay(&g, a, &format!("user{i}"), t0).unwrap());
            assert!(fail(&g, a, &format!("user{i}"), t0).is_empty());
        }
        assert_eq!(delays, vec![0, 0, 0, 1, 2]);
        let started = fail(&g, a, "user5", t0);
        assert_eq!(started, vec![Lockout { scope: Scope::Address, failures: 6, duration: Duration::from_secs(300) }]);
        let locked = Refusal::Locked { scope: Scope::Address, remaining: Duration::from_secs(290) };
        assert_eq!(g.reserve(a, Some("anyone"), t0 + Duration::from_secs(10)), Err(locked));
        assert!(g.reserve(ip("192.0.2.2"), Some("anyone"), t0).is_ok());
        assert!(g.reserve(a, Some("anyone"), t0 + Duration::from_secs(301)).is_ok(), "the lock ends");
    }

    /// The race of issue 13 item 5: every parallel attempt used to pass the
    /// check before the first failure was recorded. Reserved attempts count,
    /// so exactly `user_lock_after` of them may be verified.
    #[test]
    fn parallel_attempts_are_reserved_up_to_the_lock() {
        let g = AuthGuard::new(GuardConfig { ip_lock_after: 1000, ..config() });
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        let mut reserved = Vec::new();
        let mut refused = 0;
        for _ in 0..100 {
            match g.reserve(a, Some("victim"), t0) {
                Ok(r) => reserved.push(r),
                Err(Refusal::Pending { scope: Scope::Login }) => refused += 1,
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!((reserved.len(), refused), (4, 96));
        let delays: Vec<u64> = reserved.iter().map(|r| r.delay.as_secs()).collect();
        assert_eq!(delays, vec![0, 0, 0, 1], "pending attempts slow the next ones like failures");
        let locks: Vec<Lockout> = reserved.into_iter().flat_map(|r| g.finish(r, Finish::Failure, t0)).collect();
        assert_eq!(locks, vec![Lockout { scope: Scope::Login, failures: 4, duration: Duration::from_secs(300) }]);
        assert!(matches!(g.reserve(a, Some("victim"), t0), Err(Refusal::Locked { scope: Scope::Login, .. })));
        // Cancelled attempts give their place back without counting.
        let g = AuthGuard::new(config());
        let r = g.reserve(a, Some("bob"), t0).unwrap();
        let _ = g.finish(r, Finish::Cancelled, t0);
        assert!(g.state().logins.is_empty() && g.state().addresses.is_empty(), "nothing left behind");
    }

    #[test]
    fn login_lock_spares_known_devices_and_ends() {
        let g = AuthGuard::new(config());
        let t0 = Instant::now();
        let home = lock_alice_but_home(&g, t0);
        assert!(matches!(
            g.reserve(ip("203.0.113.99"), Some("alice"), t0),
            Err(Refusal::Locked { scope: Scope::Login, .. })
        ));
        assert!(g.reserve(home, Some("alice"), t0).is_ok(), "alice's own device is not locked out");
        // Attempts during the lock are refused before counting, so they do
        // not extend it: after the lockout anyone may try again.
        let later = t0 + Duration::from_secs(301);
        assert!(g.reserve(ip("203.0.113.99"), Some("alice"), later).is_ok());
    }

    /// Issue 13 item 12: a lock outlives the failure window. Failures from
    /// a known device (which may try while the login is locked) after the
    /// window used to start the count over and clear the lock.
    #[test]
    fn an_active_lock_is_never_cleared_early() {
        let c = GuardConfig { window: Duration::from_secs(60), lockout: Duration::from_secs(900), ..config() };
        let g = AuthGuard::new(c);
        let t0 = Instant::now();
        let home = lock_alice_but_home(&g, t0);
        let t1 = t0 + Duration::from_secs(120);
        assert!(g.finish(g.reserve(home, Some("alice"), t1).unwrap(), Finish::Failure, t1).is_empty());
        let r = g.finish(g.reserve(home, Some("alice"), t1).unwrap(), Finish::Success, t1);
        assert!(r.is_empty());
        assert_eq!(
            g.reserve(ip("203.0.113.99"), Some("alice"), t1),
            Err(Refusal::Locked { scope: Scope::Login, remaining: Duration::from_secs(780) }),
            "neither a failure past the window nor a success ends the lock"
        );
        assert!(g.reserve(ip("203.0.113.99"), Some("alice"), t0 + Duration::from_secs(901)).is_ok());
    }

    #[test]
    fn logins_that_cannot_exist_count_against_the_address_only() {
        let g = AuthGuard::new(config());
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..5 {
            let r = g.reserve(a, None, t0).unwrap();
            assert!(g.finish(r, Finish::Failure, t0).is_empty());
        }
        assert!(g.state().logins.is_empty());
        assert_eq!(g.finish(g.reserve(a, None, t0).unwrap(), Finish::Failure, t0)[0].scope, Scope::Address);
    }

    #[test]
    fn a_flood_of_made_up_logins_stays_bounded_and_keeps_the_locks() {
        let g = AuthGuard::new(GuardConfig { ip_lock_after: u32::MAX, ..config() });
        let t0 = Instant::now();
        for _ in 0..4 {
            fail(&g, ip("192.0.2.1"), "alice", t0);
        }
        for i in 0..(SWEEP_AT as u32 + 10) {
            fail(&g, IpAddr::V4((0x0a00_0000 + i).into()), &format!("u{i}"), t0);
        }
        let state = g.state();
        assert!(
            state.logins.len() < SWEEP_AT && state.addresses.len() < SWEEP_AT,
            "{} {}",
            state.logins.len(),
            state.addresses.len()
        );
        assert!(state.logins.get("alice").is_some_and(|r| r.locked(t0).is_some()), "locks survive the sweep");
    }

    #[test]
    fn ipv6_counts_per_64_and_success_resets_the_login() {
        assert_eq!(address_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(address_key(ip("::ffff:192.0.2.9")), ip("192.0.2.9"));
        let g = AuthGuard::new(config());
        let t0 = Instant::now();
        for i in 1..=3 {
            fail(&g, ip(&format!("2001:db8:1:2::{i}")), "bob", t0);
        }
        assert_eq!(delay(&g, ip("2001:db8:1:2::ffff"), "carol", t0), Ok(1));
        let r = g.reserve(ip("2001:db8:9::1"), Some("bob"), t0).unwrap();
        let _ = g.finish(r, Finish::Success, t0);
        assert_eq!(delay(&g, ip("2001:db8:7::1"), "bob", t0), Ok(0));
        // An IPv4 client on a dual-stack listener is the same client.
        for _ in 0..3 {
            fail(&g, ip("::ffff:198.51.100.1"), "x", t0);
        }
        assert_eq!(delay(&g, ip("198.51.100.1"), "y", t0), Ok(1));
    }
}
