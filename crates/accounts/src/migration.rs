//! The migration report (the seeds' first phase): before access networks
//! block port 25, a provider moves at least 90% of its active users to
//! submission on 587/465. From the recorded uses (per login: last use on
//! 587/465, last legacy use on 25 with its client address), per domain:
//! active users in the last N days, how many submit only on 587/465, the
//! share, whether the threshold is met, and who is still on 25.
//!
//! Pure: records and the time in, the report out.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub login: String,
    /// True for authenticated submission on port 25 (legacy).
    pub legacy: bool,
    /// Unix seconds.
    pub last_seen: i64,
    pub last_ip: String,
    pub last_port: u16,
    pub uses: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StillOn25 {
    pub login: String,
    pub last_ip: String,
    pub last_seen: i64,
    /// Also seen on 587/465 in the window (half-way there).
    pub also_on_submission: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DomainReport {
    pub domain: String,
    pub active: usize,
    pub submission_only: usize,
    /// submission_only / active, in percent (100 when nobody is active).
    pub share: f64,
    pub threshold_met: bool,
    pub still_on_25: Vec<StillOn25>,
}

/// The domain a login belongs to: after its last '@', or "(no domain)".
pub fn domain_of(login: &str) -> String {
    login.rsplit_once('@').map(|(_, d)| d.to_lowercase()).unwrap_or_else(|| "(no domain)".into())
}

/// Per login: (its last use on 587/465, its last legacy use on 25).
type Logins<'a> = std::collections::BTreeMap<&'a str, (Option<&'a Use>, Option<&'a Use>)>;

pub fn report(uses: &[Use], now: i64, days: u32, threshold: f64) -> Vec<DomainReport> {
    let since = now - i64::from(days) * 86400;
    let mut by_domain: std::collections::BTreeMap<String, Logins> = Default::default();
    for u in uses.iter().filter(|u| u.last_seen >= since) {
        let entry = by_domain.entry(domain_of(&u.login)).or_default().entry(u.login.as_str()).or_default();
        if u.legacy {
            entry.1 = Some(u);
        } else {
            entry.0 = Some(u);
        }
    }
    by_domain
        .into_iter()
        .map(|(domain, users)| {
            let active = users.len();
            let still_on_25: Vec<StillOn25> = users
                .iter()
                .filter_map(|(login, (sub, legacy))| {
                    legacy.map(|l| StillOn25 {
                        login: login.to_string(),
                        last_ip: l.last_ip.clone(),
                        last_seen: l.last_seen,
                        also_on_submission: sub.is_some(),
                    })
                })
                .collect();
            let submission_only = active - still_on_25.len();
            let share = if active == 0 { 100.0 } else { submission_only as f64 * 100.0 / active as f64 };
            DomainReport { domain, active, submission_only, share, threshold_met: share >= threshold, still_on_25 }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(login: &str, legacy: bool, days_ago: i64, ip: &str) -> Use {
        Use {
            login: login.into(),
            legacy,
            last_seen: 1_000_000_000 - days_ago * 86400,
            last_ip: ip.into(),
            last_port: if legacy { 25 } else { 587 },
            uses: 1,
        }
    }

    #[test]
    fn recorded_history_with_known_answers() {
        let now = 1_000_000_000;
        let mut uses = Vec::new();
        // example.net: 10 active users, 9 only on 587/465, one on both.
        for i in 0..9 {
            uses.push(u(&format!("user{i}@example.net"), false, 1, "198.51.100.1"));
        }
        uses.push(u("mixed@example.net", false, 2, "198.51.100.2"));
        uses.push(u("mixed@example.net", true, 3, "203.0.113.9"));
        // A user last seen 40 days ago does not count as active.
        uses.push(u("gone@example.net", true, 40, "203.0.113.10"));
        // example.org: 4 active, 2 still on 25 only.
        uses.push(u("a@example.org", false, 0, "192.0.2.1"));
        uses.push(u("b@example.org", false, 5, "192.0.2.2"));
        uses.push(u("c@example.org", true, 6, "192.0.2.3"));
        uses.push(u("d@example.org", true, 29, "192.0.2.4"));
        let r = report(&uses, now, 30, 90.0);
        assert_eq!(r.len(), 2);
        let net = &r[0];
        assert_eq!(
            (net.domain.as_str(), net.active, net.submission_only, net.share, net.threshold_met),
            ("example.net", 10, 9, 90.0, true)
        );
        assert_eq!(
            net.still_on_25,
            vec![StillOn25 {
                login: "mixed@example.net".into(),
                last_ip: "203.0.113.9".into(),
                last_seen: now - 3 * 86400,
                also_on_submission: true
            }]
        );
        let org = &r[1];
        assert_eq!(
            (org.domain.as_str(), org.active, org.submission_only, org.share, org.threshold_met),
            ("example.org", 4, 2, 50.0, false)
        );
        let logins: Vec<&str> = org.still_on_25.iter().map(|s| s.login.as_str()).collect();
        assert_eq!(logins, vec!["c@example.org", "d@example.org"]);
        // A shorter window: d@ is no longer active, the share rises.
        let r = report(&uses, now, 7, 90.0);
        assert_eq!((r[1].active, r[1].submission_only), (3, 2));
        assert_eq!(domain_of("role"), "(no domain)");
    }
}
