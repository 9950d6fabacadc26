//! Operator sign-in for the dashboard: accounts from the accounts store
//! with the operator flag (`port25 users operator LOGIN`), checked through
//! the same gate as SMTP AUTH (`port25_accounts::gate`: one brute-force
//! guard for both, and only operators' passwords are ever checked here, so
//! the form is no oracle for mail users' passwords); a random session
//! token in a cookie (HttpOnly: no script can read it; SameSite=Strict: no
//! other site can make the browser send it; Secure when `[http]
//! cookie_secure` says the dashboard is reached over HTTPS, never because
//! of a request header); sessions in memory (a restart signs everyone
//! out), each ending as soon as its login is deleted, loses the operator
//! flag or gets a new password (checked on every request); and a
//! per-client limit on sign-in attempts per minute on top of the guard.
//!
//! The client is the socket peer (IPv4-mapped addresses as IPv4) unless
//! the peer is one of `[http] trusted_proxies`: then the last address in
//! `Forwarded` / `X-Forwarded-For` that is not a trusted proxy.

use port25_accounts::guard::address_key;
use port25_accounts::Stamp;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "port25_session";

pub struct Sessions {
    lifetime: Duration,
    per_minute: u32,
    sessions: Mutex<HashMap<String, Session>>,
    attempts: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// A signed-in operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub login: String,
    /// The password it signed in with (see `Accounts::operator_stamp`).
    pub stamp: Stamp,
    expires: Instant,
}

/// A new 256-bit token, hex.
fn token() -> String {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).expect("the OS random number generator works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The client of a request: see the module. `headers` are only read when
/// `peer` is a trusted proxy; a header that names no usable address leaves
/// the proxy's own address (never one a client chose).
pub fn client_ip(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // RFC 7239 first; X-Forwarded-For only when there is no Forwarded.
    let mut hops: Vec<Option<IpAddr>> =
        headers.get_all("forwarded").iter().flat_map(|v| forwarded_for(v.as_bytes())).collect();
    if hops.is_empty() {
        hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("").split(',').map(|h| parse_hop(h.trim())).collect::<Vec<_>>())
            .collect();
    }
    // Right to left: each trusted proxy vouches for the hop before it.
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(&ip) => continue,
            Some(ip) => return ip,
            None => break,
        }
    }
    peer
}

/// The `for=` of each element of a Forwarded header (RFC 7239 §4).
fn forwarded_for(value: &[u8]) -> Vec<Option<IpAddr>> {
    let text = std::str::from_utf8(value).unwrap_or("");
    text.split(',')
        .filter(|e| !e.trim().is_empty())
        .map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| parse_hop(v.trim().trim_matches('"')))
            })?
        })
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`,
/// `2001:db8::1`, `[2001:db8::1]:4711`; `None` for `unknown`, `_hidden`, junk.
fn parse_hop(s: &str) -> Option<IpAddr> {
    let ip = if let Some(rest) = s.strip_prefix('[') {
        rest.split_once(']')?.0.parse().ok()?
    } else if let Ok(ip) = s.parse::<IpAddr>() {
        ip
    } else {
        s.parse::<std::net::SocketAddr>().ok()?.ip()
    };
    Some(ip.to_canonical())
}

/// A login as logged: a sign-in form may carry kilobytes.
pub fn loggable(login: &str) -> String {
    match login.chars().nth(80) {
        Some(_) => format!("{}… ({} bytes)", login.chars().take(80).collect::<String>(), login.len()),
        None => login.to_owned(),
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
        let q = all.entry(address_key(ip)).or_default();
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

    /// Starts a session for `login`, signed in with `stamp`; returns its token.
    pub fn start(&self, login: &str, stamp: Stamp, now: Instant) -> String {
        let t = token();
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.retain(|_, v| v.expires > now);
        s.insert(t.clone(), Session { login: login.to_owned(), stamp, expires: now + self.lifetime });
        t
    }

    /// A live session. The caller still checks its stamp against the
    /// accounts store (see the dashboard's `operator`).
    pub fn check(&self, token: &str, now: Instant) -> Option<Session> {
        let s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        s.get(token).filter(|v| v.expires > now).cloned()
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

/// The Set-Cookie value; `secure` from the configuration (`[http]
/// cookie_secure`), never from the request.
pub fn set_cookie(token: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
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
        // IPv4 clients of a dual-stack listener are not all one /64.
        let s = Sessions::new(Duration::from_secs(60), 1);
        assert!(s.attempt("::ffff:192.0.2.1".parse().unwrap(), t0).is_ok());
        assert!(s.attempt("::ffff:192.0.2.2".parse().unwrap(), t0).is_ok());
        assert_eq!(s.attempt("192.0.2.1".parse().unwrap(), t0), Err(60));
    }

    #[test]
    fn forwarded_headers_only_from_trusted_proxies() {
        use axum::http::{HeaderMap, HeaderValue};
        let trusted: Vec<ipnet::IpNet> = vec!["127.0.0.1/32".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, HeaderValue::from_str(v).unwrap());
            }
            h
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let xff = headers(&[("x-forwarded-for", "198.51.100.9, 203.0.113.7")]);
        assert_eq!(client_ip(ip("192.0.2.1"), &xff, &trusted), ip("192.0.2.1"), "a client's own header is ignored");
        assert_eq!(client_ip(ip("::ffff:192.0.2.1"), &xff, &trusted), ip("192.0.2.1"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), &xff, &trusted),
            ip("203.0.113.7"),
            "the hop the proxy saw, not what the client wrote before it"
        );
        assert_eq!(client_ip(ip("::ffff:127.0.0.1"), &xff, &trusted), ip("203.0.113.7"));
        let chain = headers(&[("x-forwarded-for", "203.0.113.7"), ("x-forwarded-for", "10.1.2.3")]);
        assert_eq!(client_ip(ip("127.0.0.1"), &chain, &trusted), ip("203.0.113.7"), "through two trusted proxies");
        let fwd = headers(&[
            ("forwarded", "for=198.51.100.1, for=\"[2001:db8::7]:4711\";proto=https"),
            ("x-forwarded-for", "203.0.113.7"),
        ]);
        assert_eq!(client_ip(ip("127.0.0.1"), &fwd, &trusted), ip("2001:db8::7"));
        let junk = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(client_ip(ip("127.0.0.1"), &junk, &trusted), ip("127.0.0.1"));
        assert_eq!(client_ip(ip("127.0.0.1"), &HeaderMap::new(), &trusted), ip("127.0.0.1"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), &xff, &[]),
            ip("127.0.0.1"),
            "no proxy configured: no header is believed"
        );
        assert_eq!(parse_hop("198.51.100.1:80"), Some(ip("198.51.100.1")));
    }

    /// Forwarded headers are attacker bytes when a proxy passes them on.
    #[test]
    fn forwarded_header_smoke_fuzz() {
        let pieces: [&[u8]; 12] = [
            b"for=",
            b"\"",
            b"[",
            b"]",
            b":",
            b",",
            b";",
            b"2001:db8::1",
            b"198.51.100.7",
            b"\xff\xfe",
            b"unknown",
            b"==",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            let mut v = Vec::new();
            for _ in 0..(x % 9) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.extend_from_slice(pieces[(x % pieces.len() as u64) as usize]);
            }
            x = x.wrapping_add(1);
            for hop in forwarded_for(&v).into_iter().flatten() {
                assert!(!matches!(hop, IpAddr::V6(a) if a.to_ipv4_mapped().is_some()), "hops are folded");
            }
            let _ = parse_hop(&String::from_utf8_lossy(&v));
        }
    }

    #[test]
    fn sessions_expire() {
        let s = Sessions::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        let stamp = port25_accounts::Stamp::of_hash("h");
        let tok = s.start("ops@example.net", stamp, t0);
        assert_eq!(s.check(&tok, t0).map(|s| (s.login, s.stamp)), Some(("ops@example.net".into(), stamp)));
        assert_eq!(token_from_cookies(&format!("a=b; {COOKIE}={tok}")), Some(tok.as_str()));
        assert_eq!(token_from_cookies("port25_session=../etc"), None);
        assert_eq!(s.check(&tok, t0 + Duration::from_secs(61)), None);
        s.end(&tok);
        assert_eq!(s.check(&tok, t0), None);
        assert!(set_cookie(&tok, Duration::from_secs(5), false).contains("HttpOnly; SameSite=Strict"));
    }
}
