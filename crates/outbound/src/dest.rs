//! Where routed jobs wait: one queue per MX address (and TLS policy), not
//! per recipient domain, so that domains served by the same host share its
//! connections and its limit of `connections_per_destination` (as Postfix
//! reuses a connection by IP address). A job waits at its route's first
//! candidate; when connecting there fails, every job waiting there moves
//! on to its own next candidate, so a domain whose first MX is down joins
//! the connection another domain already has to its second.
//!
//! When connecting to an address fails while other connections to it
//! work (an MX that limits connections per client and greets the extra
//! ones with 421), the jobs stay for those, and the address's limit drops
//! to the number that work: no new connection is opened there until
//! [`PROBE_PAUSE`] has passed, then one more at a time. This is Postfix's
//! per-destination concurrency feedback (lower on a connection or
//! greeting failure, never below one; raise on success, with
//! hysteresis), with the hysteresis counted in time rather than in
//! deliveries, so that failed attempts come at most one per pause
//! however fast the working connections deliver — not at network speed.
//!
//! Free connection slots (`max_connections`, all addresses together) go
//! round-robin ([`Dests::in_turn`]), as Postfix's queue manager rotates
//! its list of destinations: a destination that waits with no connection
//! at all comes before one that has connections and wants more, and
//! among equals the one that has waited longest since it was last served
//! comes first, so a busy destination cannot take back every slot it
//! frees while another has mail and no connection.

use crate::client::ConnectFailure;
use crate::route::Candidate;
use crate::tls_policy::TlsPolicy;
use port25_spool::SpooledMessage;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// After a failed connection to an address, how long before one more
/// connection than those that work is tried there. Not a setting: a few
/// seconds bound the failed attempts (one per pause) and still let a
/// remote that recovered get its parallelism back within minutes.
pub(crate) const PROBE_PAUSE: Duration = Duration::from_secs(10);

/// Where a connection goes. A session that ended up without TLS must not
/// carry mail of a require-TLS domain, hence the policy in the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    pub addr: SocketAddr,
    pub policy: TlsPolicy,
}

/// All recipients of one message at one domain: one transaction.
pub(crate) struct Job {
    pub msg: Arc<SpooledMessage>,
    /// (entry id, recipient index in msg.rcpts)
    pub entries: Vec<(u64, usize)>,
    /// The recipient domain, or "[smarthost]".
    pub domain: String,
    pub policy: TlsPolicy,
    /// Where it may go, in order, and which candidate it waits for.
    pub route: Arc<[Candidate]>,
    pub next: usize,
    /// Why the candidates before `next` failed: the last reason, and
    /// whether any failed for TLS (then it is deferred with 4.7.5).
    pub failure: Option<(String, bool)>,
    /// The domain's MTA-STS policy as TLS-RPT reports it, when it has one.
    pub sts: Option<Arc<crate::tls_rpt::PolicyDesc>>,
}

impl Job {
    pub fn target(&self) -> Option<Target> {
        self.route
            .get(self.next)
            .map(|c| Target { addr: c.addr, policy: if c.dane.is_some() { TlsPolicy::Dane } else { self.policy } })
    }

    /// DANE for the MX this job is at, when its TLSA records apply.
    pub fn dane(&self) -> Option<Arc<crate::dane::DaneHost>> {
        self.route.get(self.next).and_then(|c| c.dane.clone())
    }

    /// The policy TLS-RPT counts this job's sessions under: DANE's for an
    /// MX with TLSA records (DANE takes precedence), else MTA-STS's.
    pub fn reported(&self) -> Option<Arc<crate::tls_rpt::PolicyDesc>> {
        self.dane().map(|d| d.desc.clone()).or_else(|| self.sts.clone())
    }

    /// The name of the MX this job is at, as its domain's MX record says.
    pub fn mx_host(&self) -> &str {
        self.route.get(self.next).map_or("", |c| c.host.as_str())
    }
}

/// What the connection tasks of one target share with the scheduler.
#[derive(Default)]
pub(crate) struct Shared {
    pub jobs: Mutex<VecDeque<Job>>,
    /// Wakes an idle connection when a job arrives.
    pub wake: Notify,
    /// Connections that got past EHLO (and STARTTLS) and are alive.
    pub connected: AtomicUsize,
}

impl Shared {
    pub fn take(&self) -> Option<Job> {
        self.jobs.lock().expect("jobs lock").pop_front()
    }

    pub fn pending(&self) -> usize {
        self.jobs.lock().expect("jobs lock").len()
    }

    /// The domains of the waiting jobs that have an MTA-STS policy, each
    /// once, with the policy (TLS-RPT counts a failed connection for each).
    pub fn sts_domains(&self) -> Vec<(String, Arc<crate::tls_rpt::PolicyDesc>)> {
        let mut d: Vec<(String, Arc<crate::tls_rpt::PolicyDesc>)> = self
            .jobs
            .lock()
            .expect("jobs lock")
            .iter()
            .filter_map(|j| Some((j.domain.clone(), j.reported()?)))
            .collect();
        d.sort_by(|a, b| a.0.cmp(&b.0));
        d.dedup_by(|a, b| a.0 == b.0);
        d
    }

    /// DANE for this address, as the first waiting job's MX has it (every
    /// job at a [`TlsPolicy::Dane`] target has its own; the session is
    /// checked again for each).
    pub fn first_dane(&self) -> Option<Arc<crate::dane::DaneHost>> {
        self.jobs.lock().expect("jobs lock").front().and_then(Job::dane)
    }

    /// The domains of the waiting jobs, for events.
    pub fn domains(&self) -> String {
        let mut d: Vec<String> = self.jobs.lock().expect("jobs lock").iter().map(|j| j.domain.clone()).collect();
        d.sort();
        d.dedup();
        d.join(",")
    }
}

pub(crate) struct Dest {
    pub shared: Arc<Shared>,
    /// The MX name of the first job that came here, for SNI and the
    /// connection's events (results name each job's own MX).
    pub host: String,
    /// Connection tasks running (connecting, sending or idle).
    pub active: usize,
    /// Set by a failed connection: (how many may be open, until when no
    /// more may be tried).
    throttle: Option<(usize, Instant)>,
    /// Its place in the line for connection slots: when (a tick of
    /// `Dests::turns`) it last got a slot, lost a connection, or started
    /// waiting with neither jobs nor connections before. The lowest has
    /// waited longest.
    turn: u64,
}

impl Dest {
    /// How many of the `wanted` connections (at most `max`) may be open
    /// now: all, unless a failed connection lowered the limit; one more
    /// each time `PROBE_PAUSE` has passed and the limit is in the way.
    pub fn allowed(&mut self, wanted: usize, max: usize, now: Instant) -> usize {
        let Some((limit, until)) = &mut self.throttle else { return wanted.min(max) };
        if wanted > *limit && now >= *until {
            *limit += 1;
            *until = now + PROBE_PAUSE;
        }
        if *limit >= max {
            self.throttle = None;
            return wanted.min(max);
        }
        wanted.min(*limit)
    }
}

#[derive(Default)]
pub(crate) struct Dests {
    map: HashMap<Target, Dest>,
    /// Counts up: the source of `Dest::turn`.
    turns: u64,
    /// Connection slots taken, all targets together (at most
    /// `max_connections`): the sum of every `Dest::active`, kept as it
    /// changes. The queue counts slots here rather than with a semaphore
    /// that the connection tasks release, so a slot becomes free only when
    /// the queue handles its `Closed` event, where it is handed on: a
    /// destination whose route lookup ends in between cannot take it first.
    open: usize,
}

impl Dests {
    /// Queues a job at its current candidate; gives it back when it has
    /// none left.
    // The job comes back by value only when it has no candidate left (once
    // per job at most): boxing it for that would cost an allocation on
    // every push.
    #[allow(clippy::result_large_err)]
    pub fn push(&mut self, job: Job) -> Result<Target, Job> {
        let Some(target) = job.target() else { return Err(job) };
        let host = job.mx_host().to_owned();
        self.turns += 1;
        let d = self.map.entry(target).or_insert_with(|| Dest {
            shared: Arc::default(),
            host,
            active: 0,
            throttle: None,
            turn: 0,
        });
        if d.active == 0 && d.shared.pending() == 0 {
            // It starts waiting now, whenever it was last served.
            d.turn = self.turns;
        }
        d.shared.jobs.lock().expect("jobs lock").push_back(job);
        d.shared.wake.notify_one();
        Ok(target)
    }

    pub fn get_mut(&mut self, target: &Target) -> Option<&mut Dest> {
        self.map.get_mut(target)
    }

    /// A connection to `target` starts: it has one more, and goes to the
    /// back of the line for the next slot.
    pub fn opened(&mut self, target: &Target) {
        self.turns += 1;
        self.open += 1;
        if let Some(d) = self.map.get_mut(target) {
            d.active += 1;
            d.turn = self.turns;
        }
    }

    /// A connection task of `target` ended. When it could not connect,
    /// the address takes no more connections than those that work for a
    /// while, and when no other connection to it works or is still being
    /// set up, the jobs waiting there are given back, each to move on to
    /// its next candidate.
    pub fn closed(&mut self, target: &Target, failure: Option<ConnectFailure>, now: Instant) -> Vec<Job> {
        self.open -= 1;
        let Some(d) = self.map.get_mut(target) else { return Vec::new() };
        d.active -= 1;
        // The slot it frees goes to those that have waited longer.
        self.turns += 1;
        d.turn = self.turns;
        let mut moved = Vec::new();
        if let Some(f) = failure {
            d.throttle = Some((d.shared.connected.load(Ordering::SeqCst).max(1), now + PROBE_PAUSE));
            if d.active == 0 {
                let mut jobs = d.shared.jobs.lock().expect("jobs lock");
                while let Some(mut job) = jobs.pop_front() {
                    let tls = f.tls || job.failure.as_ref().is_some_and(|(_, t)| *t);
                    job.failure = Some((f.reason.clone(), tls));
                    job.next += 1;
                    moved.push(job);
                }
            }
        }
        moved
    }

    /// Targets with jobs waiting, in turn.
    pub fn waiting(&self) -> Vec<Target> {
        let mut waiting = self.map.iter().filter(|(_, d)| d.shared.pending() > 0).map(|(t, _)| *t).collect::<Vec<_>>();
        self.in_turn(&mut waiting);
        waiting
    }

    /// Puts `targets` in the order in which they get free connection
    /// slots: those without any connection first, then those that have
    /// some; in each, the one that has waited longest first (not the
    /// map's order, in which a busy destination could come first at
    /// every slot it frees).
    pub fn in_turn(&self, targets: &mut [Target]) {
        targets.sort_by_key(|t| self.map.get(t).map(|d| (d.active > 0, d.turn)));
    }

    /// Targets with jobs but no connection at all: after
    /// `Queue::fill`, those that found every slot taken.
    pub fn starved(&self) -> usize {
        self.map.values().filter(|d| d.active == 0 && d.shared.pending() > 0).count()
    }

    /// Forgets targets with neither connections nor jobs (but remembers a
    /// lowered limit until its pause is over).
    pub fn prune(&mut self, now: Instant) {
        self.map
            .retain(|_, d| d.active > 0 || d.shared.pending() > 0 || d.throttle.is_some_and(|(_, until)| now < until));
    }

    /// Connection tasks running, all targets together.
    pub fn connections(&self) -> usize {
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, domain: &str, route: &Arc<[Candidate]>) -> Job {
        let msg = Arc::new(SpooledMessage {
            id: "M".into(),
            received_at: 0,
            peer: "p".into(),
            helo: "h".into(),
            from: "a@example.net".into(),
            rcpts: vec![format!("x@{domain}")],
            content: Vec::new(),
            from_mx: false,
        });
        Job {
            msg,
            entries: vec![(id, 0)],
            domain: domain.into(),
            policy: TlsPolicy::Opportunistic,
            route: route.clone(),
            next: 0,
            failure: None,
            sts: None,
        }
    }

    #[test]
    fn domains_share_an_address_and_move_on_together_when_it_fails() {
        let c = |host: &str, a: &str| Candidate { host: host.into(), addr: a.parse().unwrap(), dane: None };
        let one: Arc<[Candidate]> = Arc::from([c("mx1", "127.0.0.1:25"), c("mx2", "127.0.0.2:25")]);
        let two: Arc<[Candidate]> = Arc::from([c("mx1", "127.0.0.1:25")]);
        let mut d = Dests::default();
        let t1 = d.push(job(1, "one.example", &one)).ok().unwrap();
        assert_eq!(d.push(job(2, "two.example", &two)).ok().unwrap(), t1, "same address, same queue");
        assert_eq!(d.waiting(), vec![t1]);
        d.opened(&t1);
        d.opened(&t1);
        let failure =
            || Some(ConnectFailure { reason: "refused".into(), tls: false, retry_cleartext: false, result: None });
        // Another connection to the address works: the jobs stay for it.
        d.get_mut(&t1).unwrap().shared.connected.store(1, Ordering::SeqCst);
        let now = Instant::now();
        assert!(d.closed(&t1, failure(), now).is_empty());
        d.get_mut(&t1).unwrap().shared.connected.store(0, Ordering::SeqCst);
        let moved = d.closed(&t1, failure(), now);
        assert_eq!(moved.len(), 2);
        assert!(moved.iter().all(|j| j.next == 1 && j.failure == Some(("refused".into(), false))));
        let mut moved = moved.into_iter();
        let to_mx2 = d.push(moved.next().unwrap()).ok().unwrap();
        assert_eq!(to_mx2.addr, "127.0.0.2:25".parse().unwrap());
        assert!(d.push(moved.next().unwrap()).is_err(), "two.example has no other MX");
        d.prune(now);
        assert_eq!(d.waiting(), vec![to_mx2]);
    }

    #[test]
    fn free_slots_go_first_to_destinations_without_a_connection_then_round_robin() {
        let at = |a: &str| -> Arc<[Candidate]> {
            Arc::from([Candidate { host: "mx".into(), addr: a.parse().unwrap(), dane: None }])
        };
        let mut d = Dests::default();
        // A destination that had mail once and has nothing left now (kept,
        // as one whose limit was lowered is).
        let late = d.push(job(9, "late.example", &at("127.0.0.9:25"))).ok().unwrap();
        d.get_mut(&late).unwrap().shared.jobs.lock().unwrap().clear();
        // A busy destination with two connections and jobs for more.
        let busy = d.push(job(1, "busy.example", &at("127.0.0.1:25"))).ok().unwrap();
        d.push(job(2, "busy.example", &at("127.0.0.1:25"))).ok().unwrap();
        d.opened(&busy);
        d.opened(&busy);
        // Then three destinations with mail, in this order, and no slot.
        let others: Vec<Target> =
            (2..5).map(|i| d.push(job(i, "other.example", &at(&format!("127.0.0.{i}:25")))).ok().unwrap()).collect();
        assert_eq!(
            d.waiting(),
            [others[0], others[1], others[2], busy],
            "without a connection first, in the order they came"
        );
        // The busy one frees a slot: it goes behind them all the same.
        assert!(d.closed(&busy, None, Instant::now()).is_empty());
        assert_eq!(d.waiting(), [others[0], others[1], others[2], busy]);
        // The first gets it: now it has a connection, and it is the one
        // served last.
        d.opened(&others[0]);
        assert_eq!(d.waiting(), [others[1], others[2], busy, others[0]]);
        // A connection of the busy one closes: the other that has one has
        // waited longer for another.
        d.opened(&busy);
        assert_eq!(d.waiting(), [others[1], others[2], others[0], busy]);
        // The one that had nothing left gets new mail: it waits from now
        // on, after those that waited before, not from when it came first.
        d.push(job(10, "late.example", &at("127.0.0.9:25"))).ok().unwrap();
        assert_eq!(d.waiting(), [others[1], others[2], late, others[0], busy]);
    }

    #[test]
    fn a_failed_connection_holds_the_address_to_those_that_work_then_probes_one_more_per_pause() {
        let one: Arc<[Candidate]> =
            Arc::from([Candidate { host: "mx1".into(), addr: "127.0.0.1:25".parse().unwrap(), dane: None }]);
        let mut d = Dests::default();
        let t = d.push(job(1, "one.example", &one)).ok().unwrap();
        let now = Instant::now();
        assert_eq!(d.get_mut(&t).unwrap().allowed(9, 4, now), 4, "no failure: up to the maximum");
        // Three connections; one works, another is greeted with 421.
        for _ in 0..3 {
            d.opened(&t);
        }
        d.get_mut(&t).unwrap().shared.connected.store(1, Ordering::SeqCst);
        let failure =
            || Some(ConnectFailure { reason: "421".into(), tls: false, retry_cleartext: false, result: None });
        assert!(d.closed(&t, failure(), now).is_empty(), "one still works and one is connecting: the jobs stay");
        let dest = d.get_mut(&t).unwrap();
        assert_eq!(dest.allowed(9, 4, now), 1, "only as many as work");
        assert_eq!(dest.allowed(9, 4, now + PROBE_PAUSE / 2), 1);
        let later = now + PROBE_PAUSE;
        assert_eq!(dest.allowed(1, 4, later), 1, "not needed: the limit stays");
        assert_eq!(dest.allowed(9, 4, later), 2, "one more after the pause");
        assert_eq!(dest.allowed(9, 4, later), 2, "and only one per pause");
        // The probe fails too: back to those that work.
        assert!(d.closed(&t, failure(), later).is_empty());
        assert_eq!(d.get_mut(&t).unwrap().allowed(9, 4, later), 1);
        let dest = d.get_mut(&t).unwrap();
        let mut at = later;
        for n in 2..=4 {
            at += PROBE_PAUSE;
            assert_eq!(dest.allowed(9, 4, at), n);
        }
        assert!(dest.throttle.is_none(), "back at the maximum: no throttle left");
        // Pruned only after its pause: a new job finds the lowered limit.
        d.get_mut(&t).unwrap().shared.jobs.lock().unwrap().clear();
        // The last of the three connections fails too.
        assert!(d.closed(&t, failure(), at).is_empty());
        d.prune(at);
        assert_eq!(d.get_mut(&t).unwrap().allowed(9, 4, at), 1);
        d.prune(at + PROBE_PAUSE);
        assert!(d.get_mut(&t).is_none());
    }
}
