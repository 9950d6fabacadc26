//! Operator sign-in for the dashboard: accounts from the accounts store
//! with the operator flag (`port25 users operator LOGIN`), a random session
//! token in a cookie (HttpOnly: no script can read it; SameSite=Strict: no
//! other site can make the browser send it), sessions in memory (a restart
//! signs everyone out), and a per-address limit on sign-in attempts so the
//! form cannot be used to guess passwords faster than SMTP AUTH can.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "port25_session";

pub struct Sessions {
    lifetime: Duration,
    per_minute: u32,
    sessions: Mutex<HashMap<String, (String, Instant)>>,
    attempts: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// A new 256-bit token, hex.
fn token() -> String {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).expect("the OS random number generator works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The key attempts are counted under: the address, or its /64 for IPv6
/// (one subscriber usually has a whole /64).
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl Sessions {
    pub fn new(lifetime: Duration, per_minute: u32) -> Sessions {
        Sessions { lifetime, per_minute, sessions: Mutex::default(), attempts: Mutex::default() }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Counts a sign-in attempt from `ip`; `Err(seconds to wait)` when the
    /// address has used up its attempts for the last minute.
    pub fn attempt(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut all = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        // Forget quiet addresses so the map cannot grow without bound.
        if all.len() > 10_000 {
            all.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < Duration::from_secs(60)));
        }
        let q = all.entry(bucket(ip)).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60)) {
            q.pop_front();
        }
        if q.len() >= self.per_minute as usize {
            let oldest = *q.front().expect("not empty: len >= per_minute >= 1");
            return Err(60u64.saturating_sub(now.duration_since(oldest).as_secs()).max(1));
        }
        q.push_back(now);
        Ok(())
    }

    /// Starts a session for `login`; returns its token.
    pub fn start(&self, login: &str, now: Instant) -> String {
        let t = token();
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.retain(|_, (_, exp)| *exp > now);
        s.insert(t.clone(), (login.to_owned(), now + self.lifetime));
        t
    }

    /// The login of a live session.
    pub fn check(&self, token: &str, now: Instant) -> Option<String> {
        let s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.get(token).filter(|(_, exp)| *exp > now).map(|(l, _)| l.clone())
    }

    pub fn end(&self, token: &str) {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(token);
    }
}

/// The session token from a Cookie header value.
pub fn token_from_cookies(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The Set-Cookie value; `secure` when the request came over HTTPS (a TLS
/// proxy in front says so with X-Forwarded-Proto).
pub fn set_cookie(token: &str, max_age: Duration, secure: bool) -> String {
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}", max_age.as_secs(), if secure { "; Secure" } else { "" })
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_per_address_and_slash_64() {
        let s = Sessions::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        assert!(s.attempt(a, t0).is_ok() && s.attempt(b, t0).is_ok() && s.attempt(a, t0).is_ok());
        assert_eq!(s.attempt(b, t0 + Duration::from_secs(10)), Err(50));
        assert!(s.attempt("192.0.2.1".parse().unwrap(), t0).is_ok());
        assert!(s.attempt(a, t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn sessions_expire() {
        let s = Sessions::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        let tok = s.start("ops@example.net", t0);
        assert_eq!(s.check(&tok, t0), Some("ops@example.net".into()));
        assert_eq!(token_from_cookies(&format!("a=b; {COOKIE}={tok}")), Some(tok.as_str()));
        assert_eq!(token_from_cookies("port25_session=../etc"), None);
        assert_eq!(s.check(&tok, t0 + Duration::from_secs(61)), None);
        s.end(&tok);
        assert_eq!(s.check(&tok, t0), None);
        assert!(set_cookie(&tok, Duration::from_secs(5), false).contains("HttpOnly; SameSite=Strict"));
    }
}
