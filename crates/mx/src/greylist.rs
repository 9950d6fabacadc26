//! Greylisting (RFC 6647), off by default (`[mx.greylist] enabled`).
//!
//! The first RCPT of a (client network, sender, recipient) triplet gets
//! `451 4.7.1`; the same triplet retried after `delay` is accepted, and
//! from then on the client network and sender domain are allowlisted for
//! `allowlist_days`: a sender that retried once is not delayed again.
//!
//! How the defaults avoid day-long delays (RFC 6647 4.1, 6): large senders
//! retry from pools of rotating addresses, and a triplet keyed on the
//! exact address would start again at each one. Here
//! - the client is its network (IPv4 /24, IPv6 /64, `ipv4_prefix` and
//!   `ipv6_prefix`), so a retry from a neighbour in the same pool counts;
//! - `delay` is 5 minutes (a typical MTA retries after 5 to 30 minutes),
//!   and a pending triplet lives `max_wait_hours` (24) before it has to
//!   start again, so a slow retry still passes;
//! - a sender whose MAIL FROM passes SPF is exempt (`exempt_spf_pass`):
//!   the domain has said the address is its own, which is what
//!   greylisting tried to learn, and the big pools all publish SPF;
//! - a client listed on a DNS allowlist (`dnswl`, list.dnswl.org by
//!   default, any 127.0.x.y answer but the 127.0.0.255 "query refused")
//!   is exempt;
//! - after one successful retry the network and sender domain are
//!   allowlisted for 35 days.
//!
//! Triplets live in SQLite (data_dir/greylist.sqlite); expired ones are
//! pruned every few minutes and the table holds at most `max_entries`
//! (the oldest pending triplets give way), so a flood of forged triplets
//! cannot grow it without bound.

use crate::auth::{Authenticator, Outcome, Sender};
use hickory_resolver::proto::rr::{RData, RecordType};
use rusqlite::{params, Connection, OptionalExtension};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub path: PathBuf,
    pub delay: Duration,
    pub max_wait: Duration,
    pub allowlist_for: Duration,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub exempt_spf_pass: bool,
    pub dnswl: Vec<String>,
    pub max_entries: usize,
}

/// The answer to one RCPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Accepted, and why (retried, allowlisted, exempt).
    Pass(String),
    /// 451: try again after this many seconds.
    Defer(u64),
    /// The database failed: 451 too (never accept what was not checked).
    Error(String),
}

pub struct Greylist {
    db: Arc<Mutex<Connection>>,
    settings: Settings,
    auth: Arc<Authenticator>,
    last_prune: AtomicU64,
}

const PRUNE_EVERY_SECS: u64 = 300;

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The client's network as text: `192.0.2.0/24`, `2001:db8:1:2::/64`.
pub fn network(ip: IpAddr, v4: u8, v6: u8) -> String {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let bits = u32::from(a) & u32::MAX.checked_shl(32 - u32::from(v4.min(32))).unwrap_or(0);
            format!("{}/{}", std::net::Ipv4Addr::from(bits), v4.min(32))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a) & u128::MAX.checked_shl(128 - u32::from(v6.min(128))).unwrap_or(0);
            format!("{}/{}", std::net::Ipv6Addr::from(bits), v6.min(128))
        }
    }
}

impl Greylist {
    /// Opens (creating) the triplet database. `auth` gives the resolver and
    /// SPF for the exemptions.
    pub fn open(settings: Settings, auth: Arc<Authenticator>) -> Result<Greylist, String> {
        let db = open_db(&settings.path)?;
        Ok(Greylist { db: Arc::new(Mutex::new(db)), settings, auth, last_prune: AtomicU64::new(0) })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The verdict on one recipient of a transaction.
    pub async fn check(&self, sender: &Sender<'_>, rcpt: &str) -> Answer {
        let net = network(sender.ip, self.settings.ipv4_prefix, self.settings.ipv6_prefix);
        let from = sender.mail_from.to_ascii_lowercase();
        let domain = from.rsplit_once('@').map(|(_, d)| d.to_owned()).unwrap_or_default();
        let rcpt = rcpt.to_ascii_lowercase();
        // What the database says, before any DNS question.
        let known = {
            let (db, net, from, domain, rcpt) =
                (self.db.clone(), net.clone(), from.clone(), domain.clone(), rcpt.clone());
            let delay = self.settings.delay.as_secs();
            let max_wait = self.settings.max_wait.as_secs();
            let allow = self.settings.allowlist_for.as_secs();
            tokio::task::spawn_blocking(move || lookup(&db, &net, &from, &domain, &rcpt, delay, max_wait, allow)).await
        };
        let state = match known {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Answer::Error(e),
            Err(e) => return Answer::Error(e.to_string()),
        };
        match state {
            State::Allowed => return Answer::Pass(format!("{net} and {domain:?} are allowlisted (retried before)")),
            State::Retried => return Answer::Pass(format!("retried after {}s", self.settings.delay.as_secs())),
            State::Wait(_) | State::New => {}
        }
        // Would be deferred: the exemptions (DNS) first.
        if let Some(why) = self.exempt(sender).await {
            return Answer::Pass(why);
        }
        let wait = match state {
            State::Wait(left) => left,
            _ => {
                let (db, max) = (self.db.clone(), self.settings.max_entries);
                let (max_wait, allow) = (self.settings.max_wait.as_secs(), self.settings.allowlist_for.as_secs());
                let prune = now().saturating_sub(self.last_prune.load(Ordering::Relaxed)) >= PRUNE_EVERY_SECS;
                if prune {
                    self.last_prune.store(now(), Ordering::Relaxed);
                }
                let inserted =
                    tokio::task::spawn_blocking(move || insert(&db, &net, &from, &rcpt, max, prune, max_wait, allow))
                        .await;
                match inserted {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Answer::Error(e),
                    Err(e) => return Answer::Error(e.to_string()),
                }
                self.settings.delay.as_secs()
            }
        };
        Answer::Defer(wait)
    }

    /// Why this sender is not greylisted, if it is not.
    async fn exempt(&self, sender: &Sender<'_>) -> Option<String> {
        let spf = async {
            if !self.settings.exempt_spf_pass || !sender.mail_from.contains('@') {
                return None;
            }
            let c = self.auth.spf(sender, Some(sender.mail_from)).await;
            (c.outcome == Outcome::Pass).then(|| format!("SPF pass: {}", c.reason))
        };
        let dnswl = async {
            for zone in &self.settings.dnswl {
                let name = format!("{}.{}.", reversed(sender.ip), zone.trim_end_matches('.'));
                let answer = tokio::time::timeout(
                    self.auth.settings().timeout,
                    self.auth.resolver().lookup(name, RecordType::A),
                )
                .await;
                if let Ok(Ok(lookup)) = answer {
                    let listed = lookup.answers().iter().any(|r| match &r.data {
                        // 127.0.0.255: dnswl.org's "query refused"; 127.255.255.x: RFC 5782 errors.
                        RData::A(a) => a.0.octets()[0] == 127 && a.0.octets()[1] == 0 && a.0.octets()[3] != 255,
                        _ => false,
                    });
                    if listed {
                        return Some(format!("{} is listed on {zone}", sender.ip));
                    }
                }
            }
            None
        };
        let (spf, dnswl) = tokio::join!(spf, dnswl);
        spf.or(dnswl)
    }
}

/// Opens (creating) the triplet database.
fn open_db(path: &std::path::Path) -> Result<Connection, String> {
    // Senders and recipients: port25's user only.
    port25_groupcommit::private::private_file(path)
        .map_err(|e| format!("greylist database {}: {e}", path.display()))?;
    let db = port25_sqlite::open(path).map_err(|e| format!("greylist database {}: {e}", path.display()))?;
    db.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=NORMAL;
         CREATE TABLE IF NOT EXISTS triplet (net TEXT NOT NULL, sender TEXT NOT NULL, rcpt TEXT NOT NULL,
             first_seen INTEGER NOT NULL, passed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (net, sender, rcpt));
         CREATE INDEX IF NOT EXISTS triplet_age ON triplet (passed, first_seen);
         CREATE TABLE IF NOT EXISTS allowed (net TEXT NOT NULL, domain TEXT NOT NULL, until INTEGER NOT NULL,
             PRIMARY KEY (net, domain));",
    )
    .map_err(|e| format!("greylist database {}: {e}", path.display()))?;
    Ok(db)
}

/// The DNSBL/DNSWL question name of an address (RFC 5782 2.1, 2.4).
pub fn reversed(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut labels = Vec::with_capacity(32);
            for b in a.octets().iter().rev() {
                labels.push(format!("{:x}", b & 0xF));
                labels.push(format!("{:x}", b >> 4));
            }
            labels.join(".")
        }
    }
}

enum State {
    Allowed,
    Retried,
    /// Seen, still this many seconds to wait.
    Wait(u64),
    New,
}

#[allow(clippy::too_many_arguments)]
fn lookup(
    db: &Mutex<Connection>,
    net: &str,
    from: &str,
    domain: &str,
    rcpt: &str,
    delay: u64,
    max_wait: u64,
    allow: u64,
) -> Result<State, String> {
    let db = db.lock().unwrap_or_else(|p| p.into_inner());
    let t = now();
    let e = |e: rusqlite::Error| format!("greylist database: {e}");
    let allowed: Option<i64> = db
        .query_row("SELECT until FROM allowed WHERE net = ?1 AND domain = ?2", params![net, domain], |r| r.get(0))
        .optional()
        .map_err(e)?;
    if allowed.is_some_and(|u| u as u64 > t) {
        return Ok(State::Allowed);
    }
    let seen: Option<(i64, i64)> = db
        .query_row(
            "SELECT first_seen, passed FROM triplet WHERE net = ?1 AND sender = ?2 AND rcpt = ?3",
            params![net, from, rcpt],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(e)?;
    let Some((first, passed)) = seen else { return Ok(State::New) };
    let age = t.saturating_sub(first as u64);
    if passed != 0 || (age >= delay && age <= max_wait) {
        db.execute(
            "UPDATE triplet SET passed = 1 WHERE net = ?1 AND sender = ?2 AND rcpt = ?3",
            params![net, from, rcpt],
        )
        .map_err(e)?;
        db.execute(
            "INSERT INTO allowed (net, domain, until) VALUES (?1, ?2, ?3) ON CONFLICT (net, domain) DO UPDATE SET until = excluded.until",
            params![net, domain, (t + allow) as i64],
        )
        .map_err(e)?;
        return Ok(State::Retried);
    }
    if age > max_wait {
        // Too late: start again.
        db.execute("DELETE FROM triplet WHERE net = ?1 AND sender = ?2 AND rcpt = ?3", params![net, from, rcpt])
            .map_err(e)?;
        return Ok(State::New);
    }
    Ok(State::Wait(delay - age))
}

#[allow(clippy::too_many_arguments)]
fn insert(
    db: &Mutex<Connection>,
    net: &str,
    from: &str,
    rcpt: &str,
    max: usize,
    prune: bool,
    max_wait: u64,
    allow: u64,
) -> Result<(), String> {
    let db = db.lock().unwrap_or_else(|p| p.into_inner());
    let t = now() as i64;
    let e = |e: rusqlite::Error| format!("greylist database: {e}");
    if prune {
        db.execute("DELETE FROM triplet WHERE passed = 0 AND first_seen < ?1", params![t - max_wait as i64])
            .map_err(e)?;
        db.execute("DELETE FROM triplet WHERE passed = 1 AND first_seen < ?1", params![t - allow as i64]).map_err(e)?;
        db.execute("DELETE FROM allowed WHERE until < ?1", params![t]).map_err(e)?;
    }
    let count: i64 = db.query_row("SELECT count(*) FROM triplet", [], |r| r.get(0)).map_err(e)?;
    if count as usize >= max {
        // Full: the oldest pending triplets give way.
        let excess = count as usize - max + 1;
        db.execute(
            "DELETE FROM triplet WHERE rowid IN (SELECT rowid FROM triplet WHERE passed = 0 ORDER BY first_seen LIMIT ?1)",
            params![excess.max(max / 100).max(1) as i64],
        )
        .map_err(e)?;
    }
    db.execute(
        "INSERT OR IGNORE INTO triplet (net, sender, rcpt, first_seen) VALUES (?1, ?2, ?3, ?4)",
        params![net, from, rcpt, t],
    )
    .map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_group_a_pool() {
        assert_eq!(network("192.0.2.77".parse().unwrap(), 24, 64), "192.0.2.0/24");
        assert_eq!(network("::ffff:192.0.2.77".parse().unwrap(), 24, 64), "192.0.2.0/24");
        assert_eq!(network("2001:db8:1:2:3:4:5:6".parse().unwrap(), 24, 64), "2001:db8:1:2::/64");
        assert_eq!(network("192.0.2.77".parse().unwrap(), 32, 128), "192.0.2.77/32");
        assert_eq!(network("192.0.2.77".parse().unwrap(), 0, 0), "0.0.0.0/0");
        assert_eq!(reversed("192.0.2.7".parse().unwrap()), "7.2.0.192");
    }

    #[test]
    fn triplets_wait_pass_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let db = Mutex::new(open_db(&dir.path().join("g.sqlite")).unwrap());
        let state = |rcpt: &str, delay| {
            lookup(&db, "192.0.2.0/24", "a@d.example", "d.example", rcpt, delay, 86400, 86400).unwrap()
        };
        assert!(matches!(state("r@x", 300), State::New));
        insert(&db, "192.0.2.0/24", "a@d.example", "r@x", 100, false, 86400, 86400).unwrap();
        assert!(matches!(state("r@x", 300), State::Wait(w) if w > 290 && w <= 300));
        // With no delay left the retry passes and allowlists network and domain.
        assert!(matches!(state("r@x", 0), State::Retried));
        assert!(matches!(state("other@x", 300), State::Allowed));
        // Never more than max_entries triplets: the oldest pending give way.
        for i in 0..250 {
            insert(&db, "198.51.100.0/24", &format!("s{i}@e.example"), "r@x", 100, i % 50 == 0, 86400, 86400).unwrap();
        }
        let n: i64 = db.lock().unwrap().query_row("SELECT count(*) FROM triplet", [], |r| r.get(0)).unwrap();
        assert!(n <= 100, "{n} triplets");
        // The passed one is kept.
        let passed: i64 =
            db.lock().unwrap().query_row("SELECT count(*) FROM triplet WHERE passed = 1", [], |r| r.get(0)).unwrap();
        assert_eq!(passed, 1);
    }
}
