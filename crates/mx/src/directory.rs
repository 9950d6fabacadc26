//! Does this recipient exist? The one question the MX asks at RCPT, so that
//! it answers there what delivery will do, and never accepts mail it would
//! have to bounce later (to a sender that may be forged: backscatter).
//!
//! A [`RecipientDirectory`] answers for a resolved address (lower case,
//! extension removed, a non-empty local part in a local domain): yes, no,
//! or "cannot tell now" (a server that is down or slow), which the MX turns
//! into a temporary 450 4.1.1, never into an acceptance. The directories
//! port25 has (the `[mx] recipients` lists here, `port25 users` accounts
//! and the LMTP server's own answer, wired in `port25 serve`) and those a
//! provider may add later (LDAP, SQL, Dovecot auth) sit behind the same
//! trait; [`AnyOf`] asks them in turn and [`Cached`] keeps the answers of
//! one that asks a server over the network.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exists {
    Yes,
    No,
    /// The directory could not answer now (why, for the log).
    CannotTell(String),
}

pub type Answer<'a> = Pin<Box<dyn Future<Output = Exists> + Send + 'a>>;

pub trait RecipientDirectory: Send + Sync {
    /// Whether `address` (resolved: `local@domain`, lower case, no
    /// extension, local part not empty) has a mailbox.
    fn exists<'a>(&'a self, address: &'a str) -> Answer<'a>;
}

/// Addresses known in advance: the `[mx] recipients` list and file (a
/// whole domain is `[mx] catch_all`, which the MX itself applies).
#[derive(Debug, Default)]
pub struct Listed {
    addresses: HashSet<String>,
}

impl Listed {
    pub fn new<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Listed {
        Listed { addresses: entries.into_iter().map(|e| e.as_ref().to_lowercase()).collect() }
    }

    pub fn contains(&self, address: &str) -> bool {
        self.addresses.contains(&address.to_lowercase())
    }
}

impl RecipientDirectory for Listed {
    fn exists<'a>(&'a self, address: &'a str) -> Answer<'a> {
        let found = self.contains(address);
        Box::pin(async move {
            if found {
                Exists::Yes
            } else {
                Exists::No
            }
        })
    }
}

/// Several directories asked in turn: yes as soon as one says yes; "cannot
/// tell" when none says yes and one could not answer (fail closed: the
/// client retries); no only when every one says no.
#[derive(Default, Clone)]
pub struct AnyOf(pub Vec<Arc<dyn RecipientDirectory>>);

impl RecipientDirectory for AnyOf {
    fn exists<'a>(&'a self, address: &'a str) -> Answer<'a> {
        Box::pin(async move {
            let mut unsure = None;
            for d in &self.0 {
                match d.exists(address).await {
                    Exists::Yes => return Exists::Yes,
                    Exists::No => {}
                    Exists::CannotTell(why) => unsure = unsure.or(Some(why)),
                }
            }
            unsure.map_or(Exists::No, Exists::CannotTell)
        })
    }
}

/// How long [`Cached`] keeps answers, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    pub positive_ttl: Duration,
    pub negative_ttl: Duration,
    /// At most this many answers are kept (older ones are dropped first).
    pub max_entries: usize,
}

/// Keeps another directory's yes and no answers for a while (Postfix's
/// address verification cache); "cannot tell" is never kept. Bounded: two
/// generations of at most `max_entries / 2` each; when the current one is
/// full it becomes the old one and the old one is dropped, so a dictionary
/// attack costs at most `max_entries` entries and O(1) per lookup.
pub struct Cached<D> {
    inner: D,
    settings: CacheSettings,
    generations: Mutex<[HashMap<String, (bool, Instant)>; 2]>,
}

impl<D: RecipientDirectory> Cached<D> {
    pub fn new(inner: D, settings: CacheSettings) -> Cached<D> {
        Cached { inner, settings, generations: Mutex::new([HashMap::new(), HashMap::new()]) }
    }

    fn lookup(&self, address: &str, now: Instant) -> Option<bool> {
        let g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        g.iter().find_map(|m| m.get(address)).filter(|(_, until)| *until > now).map(|(yes, _)| *yes)
    }

    fn remember(&self, address: &str, yes: bool, now: Instant) {
        let ttl = if yes { self.settings.positive_ttl } else { self.settings.negative_ttl };
        if ttl.is_zero() || self.settings.max_entries < 2 {
            return;
        }
        let mut g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        if g[0].len() >= self.settings.max_entries / 2 {
            g[1] = std::mem::take(&mut g[0]);
        }
        g[1].remove(address);
        g[0].insert(address.to_owned(), (yes, now + ttl));
    }

    /// The number of answers held (for tests).
    pub fn len(&self) -> usize {
        let g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        g[0].len() + g[1].len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<D: RecipientDirectory> RecipientDirectory for Cached<D> {
    fn exists<'a>(&'a self, address: &'a str) -> Answer<'a> {
        Box::pin(async move {
            if let Some(yes) = self.lookup(address, Instant::now()) {
                return if yes { Exists::Yes } else { Exists::No };
            }
            let answer = self.inner.exists(address).await;
            match answer {
                Exists::Yes => self.remember(address, true, Instant::now()),
                Exists::No => self.remember(address, false, Instant::now()),
                Exists::CannotTell(_) => {}
            }
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Knows "alice@example.net", cannot tell for "down@...", counts questions.
    struct Server(AtomicUsize);

    impl RecipientDirectory for Server {
        fn exists<'a>(&'a self, address: &'a str) -> Answer<'a> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match address {
                    "alice@example.net" => Exists::Yes,
                    a if a.starts_with("down@") => Exists::CannotTell("connection refused".into()),
                    _ => Exists::No,
                }
            })
        }
    }

    fn block<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn listed_addresses() {
        let l = Listed::new(["Alice@Example.net"]);
        assert!(l.contains("alice@example.net"));
        assert!(!l.contains("bob@example.net"));
        assert!(!l.contains("alice@example.net.evil"));
        assert_eq!(block(l.exists("bob@example.net")), Exists::No);
    }

    #[test]
    fn any_of_fails_closed() {
        let list: Arc<dyn RecipientDirectory> = Arc::new(Listed::new(["bob@example.net"]));
        let server: Arc<dyn RecipientDirectory> = Arc::new(Server(AtomicUsize::new(0)));
        let any = AnyOf(vec![list, server]);
        assert_eq!(block(any.exists("bob@example.net")), Exists::Yes);
        assert_eq!(block(any.exists("alice@example.net")), Exists::Yes);
        assert_eq!(block(any.exists("nobody@example.net")), Exists::No);
        assert!(matches!(block(any.exists("down@example.net")), Exists::CannotTell(_)));
        assert_eq!(block(AnyOf::default().exists("bob@example.net")), Exists::No, "no directory knows no one");
    }

    #[test]
    fn cache_keeps_yes_and_no_but_never_cannot_tell_and_stays_bounded() {
        let settings = CacheSettings {
            positive_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(60),
            max_entries: 100,
        };
        let c = Cached::new(Server(AtomicUsize::new(0)), settings);
        let asked = || c.inner.0.load(Ordering::SeqCst);
        assert_eq!(block(c.exists("alice@example.net")), Exists::Yes);
        assert_eq!(block(c.exists("alice@example.net")), Exists::Yes);
        assert_eq!(block(c.exists("nobody@example.net")), Exists::No);
        assert_eq!(block(c.exists("nobody@example.net")), Exists::No);
        assert_eq!(asked(), 2, "one question per address");
        assert!(matches!(block(c.exists("down@example.net")), Exists::CannotTell(_)));
        assert!(matches!(block(c.exists("down@example.net")), Exists::CannotTell(_)));
        assert_eq!(asked(), 4, "a server that could not answer is asked again");
        for i in 0..10_000 {
            block(c.exists(&format!("guess{i}@example.net")));
        }
        assert!(c.len() <= 100, "{} answers kept", c.len());
        assert_eq!(block(c.exists("guess9999@example.net")), Exists::No);
        assert_eq!(asked(), 4 + 10_000, "the newest answers are still there");
    }

    #[test]
    fn cache_answers_expire() {
        let settings =
            CacheSettings { positive_ttl: Duration::from_secs(60), negative_ttl: Duration::ZERO, max_entries: 100 };
        let c = Cached::new(Server(AtomicUsize::new(0)), settings);
        block(c.exists("nobody@example.net"));
        block(c.exists("nobody@example.net"));
        assert_eq!(c.inner.0.load(Ordering::SeqCst), 2, "a zero TTL keeps nothing");
        let now = Instant::now();
        c.remember("bob@example.net", true, now);
        assert_eq!(c.lookup("bob@example.net", now), Some(true));
        assert_eq!(c.lookup("bob@example.net", now + Duration::from_secs(61)), None);
    }
}
