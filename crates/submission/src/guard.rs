//! Brute-force limits on AUTH, per client address and per login.
//!
//! Failures are counted in a window. Past `slow_after` failures every
//! attempt from that address or for that login waits a growing delay
//! (which also slows a guesser's parallel sessions); past `lock_after` the
//! address or the login is locked out for `lockout`, during which even the
//! right password is refused with 454 4.7.0.
//!
//! An attacker must not be able to lock a real user out forever: a user
//! lock ends after `lockout` like any other, attempts during a lock are not
//! counted (so they do not extend it), and a login keeps working from any
//! address it logged in from successfully within `known_for` (the user's
//! own devices), whatever happens to the login's counter elsewhere. The
//! per-address lock still applies there, so a guesser cannot hide behind a
//! known device's address. IPv6 clients are counted per /64, the block one
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Go ahead after waiting `delay`.
    Allowed {
        delay: Duration,
    },
    Locked {
        scope: Scope,
        remaining: Duration,
    },
}

/// A lock that a failure has just started; the caller records an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    pub scope: Scope,
    pub failures: u32,
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

impl Record {
    fn new(now: Instant) -> Record {
        Record { failures: 0, first: now, locked_until: None }
    }

    fn locked(&self, now: Instant) -> Option<Duration> {
        self.locked_until.filter(|&u| u > now).map(|u| u - now)
    }

    /// Counts one failure; true when it starts a lock.
    fn fail(&mut self, now: Instant, window: Duration, lock_after: u32, lockout: Duration) -> bool {
        if now.duration_since(self.first) > window || self.locked_until.is_some_and(|u| u <= now) {
            *self = Record::new(now);
        }
        self.failures += 1;
        if self.failures >= lock_after {
            self.locked_until = Some(now + lockout);
            return true;
        }
        false
    }

    fn live_failures(&self, now: Instant, window: Duration) -> u32 {
        if now.duration_since(self.first) > window {
            0
        } else {
            self.failures
        }
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

/// The key an address is counted under: itself, or its /64 for IPv6.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

impl AuthGuard {
    pub fn new(config: GuardConfig) -> AuthGuard {
        AuthGuard { config, state: Mutex::new(State::default()) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn delay(&self, failures: u32) -> Duration {
        let over = failures.saturating_sub(self.config.slow_after);
        (self.config.delay_step * over).min(self.config.max_delay)
    }

    /// May this login be tried from this address now, and after what delay?
    pub fn check(&self, ip: IpAddr, login: &str, now: Instant) -> Check {
        let ip = address_key(ip);
        let state = self.state();
        let window = self.config.window;
        let by_ip = state.addresses.get(&ip).copied();
        if let Some(remaining) = by_ip.and_then(|r| r.locked(now)) {
            return Check::Locked { scope: Scope::Address, remaining };
        }
        let known = state.known.get(&(login.to_owned(), ip)).is_some_and(|&t| now.duration_since(t) < self.config.known_for);
        let by_login = if known { None } else { state.logins.get(login).copied() };
        if let Some(remaining) = by_login.and_then(|r| r.locked(now)) {
            return Check::Locked { scope: Scope::Login, remaining };
        }
        let failures = by_ip.map_or(0, |r| r.live_failures(now, window)).max(by_login.map_or(0, |r| r.live_failures(now, window)));
        Check::Allowed { delay: self.delay(failures) }
    }

    /// Records a failed login; returns the locks it started.
    pub fn failure(&self, ip: IpAddr, login: &str, now: Instant) -> Vec<Lockout> {
        let ip = address_key(ip);
        let c = self.config.clone();
        let mut state = self.state();
        if state.addresses.len() > SWEEP_AT || state.logins.len() > SWEEP_AT {
            sweep(&mut state, now, &c);
        }
        let mut started = Vec::new();
        let r = state.addresses.entry(ip).or_insert_with(|| Record::new(now));
        if r.fail(now, c.window, c.ip_lock_after, c.lockout) {
            started.push(Lockout { scope: Scope::Address, failures: r.failures, duration: c.lockout });
        }
        // Logins are at most 255 bytes (accounts::check_login); a longer
        // made-up one is counted under its prefix.
        let key = login.get(..login.len().min(255)).unwrap_or(login);
        let r = state.logins.entry(key.to_owned()).or_insert_with(|| Record::new(now));
        if r.fail(now, c.window, c.user_lock_after, c.lockout) {
            started.push(Lockout { scope: Scope::Login, failures: r.failures, duration: c.lockout });
        }
        started
    }

    /// Records a successful login: the login's failures are forgotten and
    /// this address becomes one of its known devices. The address's own
    /// count stays, so a guesser with one valid account cannot reset it.
    pub fn success(&self, ip: IpAddr, login: &str, now: Instant) {
        let ip = address_key(ip);
        let mut state = self.state();
        if state.known.len() > SWEEP_AT {
            let known_for = self.config.known_for;
            state.known.retain(|_, t| now.duration_since(*t) < known_for);
        }
        if state.logins.get(login).is_some_and(|r| r.locked(now).is_none()) {
            state.logins.remove(login);
        }
        state.known.insert((login.to_owned(), ip), now);
    }
}

/// Forgets counts that no longer matter; if a flood of new addresses or
/// made-up logins still fills the maps, forgets every count that has not
/// become a lock, so memory and the cost of the next sweep stay bounded.
fn sweep(state: &mut State, now: Instant, c: &GuardConfig) {
    let stale = |r: &Record| r.locked(now).is_none() && now.duration_since(r.first) > c.window;
    state.addresses.retain(|_, r| !stale(r));
    state.logins.retain(|_, r| !stale(r));
    if state.addresses.len() > SWEEP_AT / 2 {
        state.addresses.retain(|_, r| r.locked(now).is_some());
    }
    if state.logins.len() > SWEEP_AT / 2 {
        state.logins.retain(|_, r| r.locked(now).is_some());
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

    #[test]
    fn slows_down_then_locks_the_address() {
        let g = AuthGuard::new(GuardConfig { user_lock_after: 100, ..config() });
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        let mut delays = Vec::new();
        for i in 0..5 {
            match g.check(a, &format!("user{i}"), t0) {
                Check::Allowed { delay } => delays.push(delay.as_secs()),
                other => panic!("{other:?}"),
            }
            assert!(g.failure(a, &format!("user{i}"), t0).is_empty());
        }
        assert_eq!(delays, vec![0, 0, 0, 1, 2]);
        let started = g.failure(a, "user5", t0);
        assert_eq!(started, vec![Lockout { scope: Scope::Address, failures: 6, duration: Duration::from_secs(300) }]);
        assert_eq!(g.check(a, "anyone", t0 + Duration::from_secs(10)), Check::Locked { scope: Scope::Address, remaining: Duration::from_secs(290) });
        assert!(matches!(g.check(ip("192.0.2.2"), "anyone", t0), Check::Allowed { .. }));
        assert!(matches!(g.check(a, "anyone", t0 + Duration::from_secs(301)), Check::Allowed { .. }), "the lock ends");
    }

    #[test]
    fn login_lock_spares_known_devices_and_ends() {
        let g = AuthGuard::new(config());
        let t0 = Instant::now();
        let home = ip("198.51.100.7");
        g.success(home, "alice", t0);
        // A distributed guesser: one failure from each of many addresses.
        for i in 0..4 {
            g.failure(ip(&format!("203.0.113.{i}")), "alice", t0);
        }
        assert!(matches!(g.check(ip("203.0.113.99"), "alice", t0), Check::Locked { scope: Scope::Login, .. }));
        assert!(matches!(g.check(home, "alice", t0), Check::Allowed { .. }), "alice's own device is not locked out");
        // Attempts during the lock are refused before counting, so they do
        // not extend it: after the lockout anyone may try again.
        let later = t0 + Duration::from_secs(301);
        assert!(matches!(g.check(ip("203.0.113.99"), "alice", later), Check::Allowed { .. }));
    }

    #[test]
    fn a_flood_of_made_up_logins_stays_bounded_and_keeps_the_locks() {
        let g = AuthGuard::new(GuardConfig { ip_lock_after: u32::MAX, ..config() });
        let t0 = Instant::now();
        for _ in 0..4 {
            g.failure(ip("192.0.2.1"), "alice", t0);
        }
        for i in 0..(SWEEP_AT as u32 + 10) {
            g.failure(IpAddr::V4((0x0a00_0000 + i).into()), &format!("u{i}"), t0);
        }
        let state = g.state();
        assert!(state.logins.len() < SWEEP_AT && state.addresses.len() < SWEEP_AT, "{} {}", state.logins.len(), state.addresses.len());
        assert!(state.logins.get("alice").is_some_and(|r| r.locked(t0).is_some()), "locks survive the sweep");
    }

    #[test]
    fn ipv6_counts_per_64_and_success_resets_the_login() {
        assert_eq!(address_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(address_key(ip("::ffff:192.0.2.9")), ip("192.0.2.9"));
        let g = AuthGuard::new(config());
        let t0 = Instant::now();
        for i in 1..=3 {
            g.failure(ip(&format!("2001:db8:1:2::{i}")), "bob", t0);
        }
        assert_eq!(g.check(ip("2001:db8:1:2::ffff"), "carol", t0), Check::Allowed { delay: Duration::from_secs(1) });
        g.success(ip("2001:db8:9::1"), "bob", t0);
        assert_eq!(g.check(ip("2001:db8:7::1"), "bob", t0), Check::Allowed { delay: Duration::ZERO });
    }
}
