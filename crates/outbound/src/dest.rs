//! Where routed jobs wait: one queue per MX address (and TLS policy), not
//! per recipient domain, so that domains served by the same host share its
//! connections and its limit of `connections_per_destination` (as Postfix
//! reuses a connection by IP address). A job waits at its route's first
//! candidate; when connecting there fails, every job waiting there moves
//! on to its own next candidate, so a domain whose first MX is down joins
//! the connection another domain already has to its second.

use crate::client::ConnectFailure;
use crate::route::Candidate;
use crate::tls_policy::TlsPolicy;
use port25_queue::SpooledMessage;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

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
}

impl Job {
    pub fn target(&self) -> Option<Target> {
        self.route.get(self.next).map(|c| Target { addr: c.addr, policy: self.policy })
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
}

#[derive(Default)]
pub(crate) struct Dests {
    map: HashMap<Target, Dest>,
}

impl Dests {
    /// Queues a job at its current candidate; gives it back when it has
    /// none left.
    pub fn push(&mut self, job: Job) -> Result<Target, Job> {
        let Some(target) = job.target() else { return Err(job) };
        let host = job.mx_host().to_owned();
        let d = self.map.entry(target).or_insert_with(|| Dest { shared: Arc::default(), host, active: 0 });
        d.shared.jobs.lock().expect("jobs lock").push_back(job);
        d.shared.wake.notify_one();
        Ok(target)
    }

    pub fn get_mut(&mut self, target: &Target) -> Option<&mut Dest> {
        self.map.get_mut(target)
    }

    /// A connection task of `target` ended. When it could not connect and
    /// no other connection to that address works, the jobs waiting there
    /// are given back, each to move on to its next candidate.
    pub fn closed(&mut self, target: &Target, failure: Option<ConnectFailure>) -> Vec<Job> {
        let Some(d) = self.map.get_mut(target) else { return Vec::new() };
        d.active -= 1;
        let mut moved = Vec::new();
        if let Some(f) = failure {
            if d.shared.connected.load(Ordering::SeqCst) == 0 {
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

    /// Targets with jobs waiting.
    pub fn waiting(&self) -> Vec<Target> {
        self.map.iter().filter(|(_, d)| d.shared.pending() > 0).map(|(t, _)| *t).collect()
    }

    /// Forgets targets with neither connections nor jobs.
    pub fn prune(&mut self) {
        self.map.retain(|_, d| d.active > 0 || d.shared.pending() > 0);
    }

    pub fn connections(&self) -> usize {
        self.map.values().map(|d| d.active).sum()
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
        });
        Job { msg, entries: vec![(id, 0)], domain: domain.into(), policy: TlsPolicy::Opportunistic, route: route.clone(), next: 0, failure: None }
    }

    #[test]
    fn domains_share_an_address_and_move_on_together_when_it_fails() {
        let c = |host: &str, a: &str| Candidate { host: host.into(), addr: a.parse().unwrap() };
        let one: Arc<[Candidate]> = Arc::from([c("mx1", "127.0.0.1:25"), c("mx2", "127.0.0.2:25")]);
        let two: Arc<[Candidate]> = Arc::from([c("mx1", "127.0.0.1:25")]);
        let mut d = Dests::default();
        let t1 = d.push(job(1, "one.example", &one)).ok().unwrap();
        assert_eq!(d.push(job(2, "two.example", &two)).ok().unwrap(), t1, "same address, same queue");
        assert_eq!(d.waiting(), vec![t1]);
        d.get_mut(&t1).unwrap().active = 2;
        let failure = || Some(ConnectFailure { reason: "refused".into(), tls: false, retry_cleartext: false });
        // Another connection to the address works: the jobs stay for it.
        d.get_mut(&t1).unwrap().shared.connected.store(1, Ordering::SeqCst);
        assert!(d.closed(&t1, failure()).is_empty());
        d.get_mut(&t1).unwrap().shared.connected.store(0, Ordering::SeqCst);
        let moved = d.closed(&t1, failure());
        assert_eq!(moved.len(), 2);
        assert!(moved.iter().all(|j| j.next == 1 && j.failure == Some(("refused".into(), false))));
        let mut moved = moved.into_iter();
        let to_mx2 = d.push(moved.next().unwrap()).ok().unwrap();
        assert_eq!(to_mx2.addr, "127.0.0.2:25".parse().unwrap());
        assert!(d.push(moved.next().unwrap()).is_err(), "two.example has no other MX");
        d.prune();
        assert_eq!(d.waiting(), vec![to_mx2]);
    }
}
