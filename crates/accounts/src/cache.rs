//! The verified-password cache (as Dovecot's auth cache): argon2id costs
//! tens of milliseconds of CPU by design, which would cap a busy server at
//! a few dozen logins per second per core. After a successful check we keep
//! an HMAC-SHA256 of (stored hash, login, password) under a key that lives
//! only in this process's memory; a later login with the same password is
//! checked against it in microseconds. Nothing reversible is kept, a
//! password change (a new stored hash) misses the cache, entries expire,
//! and failures are never cached.

use ring::hmac;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct VerifiedCache {
    key: hmac::Key,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
}

fn message(hash: &str, login: &str, password: &str) -> Vec<u8> {
    [hash.as_bytes(), b"\0", login.as_bytes(), b"\0", password.as_bytes()].concat()
}

impl VerifiedCache {
    pub fn new(ttl: Duration, capacity: usize) -> VerifiedCache {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system random generator works");
        VerifiedCache { key, ttl, capacity, entries: Mutex::new(HashMap::new()) }
    }

    /// True when this exact password was verified against this exact hash
    /// within the time to live.
    pub fn hit(&self, hash: &str, login: &str, password: &str) -> bool {
        let entries = self.entries.lock().expect("cache lock");
        match entries.get(login) {
            Some((tag, at)) if at.elapsed() < self.ttl => {
                hmac::verify(&self.key, &message(hash, login, password), tag).is_ok()
            }
            _ => false,
        }
    }

    pub fn remember(&self, hash: &str, login: &str, password: &str) {
        let tag = hmac::sign(&self.key, &message(hash, login, password)).as_ref().to_vec();
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= self.capacity && !entries.contains_key(login) {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= self.capacity {
                // Still full of live entries: start over rather than grow.
                entries.clear();
            }
        }
        entries.insert(login.to_owned(), (tag, Instant::now()));
    }

    pub fn forget(&self, login: &str) {
        self.entries.lock().expect("cache lock").remove(login);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_only_the_same_password_and_hash_within_ttl() {
        let c = VerifiedCache::new(Duration::from_secs(60), 2);
        assert!(!c.hit("h1", "alice", "pw"));
        c.remember("h1", "alice", "pw");
        assert!(c.hit("h1", "alice", "pw"));
        assert!(!c.hit("h1", "alice", "pw2"));
        assert!(!c.hit("h2", "alice", "pw"), "a new stored hash misses");
        assert!(!c.hit("h1", "bob", "pw"));
        c.remember("h1", "bob", "x");
        c.remember("h1", "carol", "y");
        assert!(c.hit("h1", "carol", "y"), "capacity is bounded without losing the newest");
        c.forget("carol");
        assert!(!c.hit("h1", "carol", "y"));
        let short = VerifiedCache::new(Duration::from_millis(1), 10);
        short.remember("h", "a", "p");
        std::thread::sleep(Duration::from_millis(5));
        assert!(!short.hit("h", "a", "p"));
    }
}
