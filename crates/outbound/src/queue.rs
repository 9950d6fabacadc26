//! The scheduler: which recipient is tried when, over which connection.
//!
//! Every open recipient of the outbound spool is an entry with its state
//! (attempts, next attempt, last reply). Entries that are due are grouped
//! by recipient domain (or the smarthost) and by message, so one
//! transaction carries all recipients of a message at that domain. Each
//! domain's route is looked up ([`crate::route`]), then its jobs wait at
//! the MX address they go to ([`crate::dest`]): every address has a job
//! queue and at most `connections_per_destination` connection tasks
//! ([`crate::connection`]), which take jobs one after another over the same
//! connection, whichever domain they are for. Results come back here:
//! delivered and bounced recipients are journaled as finished, deferred
//! ones get their next attempt by exponential backoff with jitter until
//! `max_lifetime`, when they are bounced as expired.

use crate::bounce::DsnStore;
use crate::client::ConnectFailure;
use crate::client::Verdict;
use crate::connection::{connection, Ctx};
use crate::control::{self, Control};
use crate::dest::{Dests, Job, Target};
use crate::dns::Dns;
use crate::dnssec::Security;
use crate::dsn::{self, Kind, RcptReport};
use crate::journal::{Journal, Record};
use crate::route::Candidate;
use crate::settings::Settings;
use crate::state::{HistoryLine, Outcome, RcptState};
use crate::tls_policy::{policy_for, TlsPolicy};
use crate::tls_rpt::PolicyDesc;
use crate::Enqueuer;
use port25_events as ev;
use port25_events::emit;
use port25_spool::{BatchRef, Spool, SpooledMessage};
use port25_wire::mta_sts::Mode;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Entry {
    seq: u64,
    m: usize,
    r: usize,
    msg: Arc<SpooledMessage>,
    state: RcptState,
    due_ms: u64,
    in_flight: bool,
    /// Kept back by `Settings::holds`; out of the heap until let go.
    held: bool,
}

pub(crate) enum Event {
    Results {
        results: Vec<(u64, Verdict)>,
        remote: Option<String>,
    },
    /// The route lookup for `domain` ended.
    Routed {
        domain: String,
        jobs: Vec<Job>,
        route: Result<Vec<Candidate>, Verdict>,
        /// The domain's MTA-STS policy, when it has one in force.
        sts: Option<(TlsPolicy, Arc<PolicyDesc>)>,
    },
    Closed {
        target: Target,
        failure: Option<ConnectFailure>,
        /// It closed to give its slot to a waiting destination.
        yielded: bool,
    },
    /// A bounce was stored (or is not needed): finish these; else retry later.
    Bounced {
        finished: Vec<(u64, Outcome, String)>,
        stored: bool,
    },
}

pub struct Queue {
    settings: Arc<Settings>,
    ctx: Arc<Ctx>,
    events: mpsc::UnboundedSender<Event>,
    journal: Journal,
    /// Where DSNs go: the local spool or back into this queue.
    dsns: DsnStore,
    root: PathBuf,
    /// This queue's own spool, where committed batches are read from.
    spool: Spool,
    entries: HashMap<u64, Entry>,
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    dests: Dests,
    next_id: u64,
    hold: bool,
    /// Entries kept back by `Settings::holds` (0: `unhold` has nothing to do).
    held: usize,
}

pub(crate) fn domain_of(rcpt: &str) -> String {
    rcpt.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default()
}

fn unix(ms: u64) -> u64 {
    ms / 1000
}

impl Queue {
    /// Reads a committed batch and queues its open recipients. (This queue
    /// keeps the messages it schedules in memory; local delivery does not.)
    fn add_batch(&mut self, batch: BatchRef) {
        let batch = match self.spool.load(batch) {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(e) => {
                // It stays on disk and is read again at the next start.
                emit!(error, ev::SPOOL_READ_FAILED, batch = batch.seq, error = %e);
                return;
            }
        };
        let states = crate::journal::read_states(&self.root, batch.seq);
        let now = port25_time::unix_millis();
        let mut open = 0;
        for (m, msg) in batch.messages.iter().enumerate() {
            if !batch.recovered {
                let dkim = crate::dkim::content_digest(&msg.content).unwrap_or_default();
                emit!(info, ev::OUTBOUND_QUEUED, id = %msg.id, from = %msg.from, rcpts = msg.rcpts.len(), size = msg.content.len(), dkim = %dkim);
            }
            for r in 0..msg.rcpts.len() {
                if batch.done.contains(&(m, r)) {
                    continue;
                }
                open += 1;
                let state = states.get(&(m, r)).cloned().unwrap_or_default();
                let due_ms = state.next_attempt.saturating_mul(1000).max(now);
                let id = self.next_id;
                self.next_id += 1;
                self.entries.insert(
                    id,
                    Entry { seq: batch.seq, m, r, msg: msg.clone(), state, due_ms, in_flight: false, held: false },
                );
                self.heap.push(Reverse((due_ms, id)));
            }
        }
        self.journal.send(Record::Register { seq: batch.seq, open });
    }

    /// Groups every due entry into jobs (one per message and domain) and
    /// looks up each domain's route; `routed` then queues them.
    fn dispatch(&mut self) {
        if self.hold || self.ctx.stopping.is_cancelled() {
            return;
        }
        let now = port25_time::unix_millis();
        let mut grouped: HashMap<(String, u64, usize), Job> = HashMap::new();
        while let Some(Reverse((due, id))) = self.heap.peek().copied() {
            if due > now {
                break;
            }
            self.heap.pop();
            let Some(e) = self.entries.get_mut(&id) else { continue };
            if e.due_ms != due || e.in_flight {
                continue;
            }
            if self.settings.holds.held(&e.msg.id) {
                if !e.held {
                    e.held = true;
                    self.held += 1;
                    emit!(info, ev::OUTBOUND_HELD, id = %e.msg.id);
                }
                continue;
            }
            e.in_flight = true;
            let domain = match &self.settings.smarthost {
                Some(_) => "[smarthost]".to_owned(),
                None => domain_of(&e.msg.rcpts[e.r]),
            };
            let job = grouped.entry((domain.clone(), e.seq, e.m)).or_insert_with(|| Job {
                msg: e.msg.clone(),
                entries: Vec::new(),
                domain,
                policy: TlsPolicy::Opportunistic,
                route: Arc::from([]),
                next: 0,
                failure: None,
                sts: None,
            });
            job.entries.push((id, e.r));
        }
        let mut by_domain: HashMap<String, Vec<Job>> = HashMap::new();
        for ((domain, _, _), job) in grouped {
            by_domain.entry(domain).or_default().push(job);
        }
        for (domain, jobs) in by_domain {
            let ctx = self.ctx.clone();
            tokio::spawn(async move {
                let route = crate::route::lookup(&ctx.settings, &ctx.dns, &domain).await;
                let (route, sts) = sts_route(&ctx, &domain, route).await;
                let route = dane_route(&ctx, &domain, route).await;
                let _ = ctx.events.send(Event::Routed { domain, jobs, route, sts });
            });
        }
    }

    fn policy(&self, domain: &str) -> TlsPolicy {
        match &self.settings.smarthost {
            Some(h) if h.require_tls || h.auth.is_some() => TlsPolicy::Verified,
            Some(_) => TlsPolicy::VerifiedIfOffered,
            None => policy_for(domain, &self.settings.require_tls),
        }
    }

    /// A domain's route is known: its jobs wait at their first candidate,
    /// or get the lookup's verdict.
    fn routed(
        &mut self,
        domain: &str,
        jobs: Vec<Job>,
        route: Result<Vec<Candidate>, Verdict>,
        sts: Option<(TlsPolicy, Arc<PolicyDesc>)>,
    ) {
        match route {
            Ok(candidates) => {
                let policy = self.policy(domain);
                // MTA-STS enforce is stricter than require_tls (a verified
                // certificate); testing is not, so require_tls wins there.
                let (policy, sts) = match sts {
                    Some((TlsPolicy::StsTesting, _)) if policy == TlsPolicy::Required => (policy, None),
                    Some((p, desc)) => (p, Some(desc)),
                    None => (policy, None),
                };
                let route = Arc::<[Candidate]>::from(candidates);
                let jobs =
                    jobs.into_iter().map(|j| Job { route: route.clone(), policy, sts: sts.clone(), ..j }).collect();
                let touched = self.place(jobs);
                self.fill(touched);
            }
            Err(verdict) => {
                let results =
                    jobs.iter().flat_map(|j| j.entries.iter().map(|(id, _)| (*id, verdict.clone()))).collect();
                self.results(results, None);
            }
        }
    }

    /// Queues jobs at their current candidate and returns those targets
    /// (the caller starts connections); a job with no candidate left is
    /// deferred with the last connection failure.
    fn place(&mut self, jobs: Vec<Job>) -> Vec<Target> {
        let mut touched = Vec::new();
        let mut deferred = Vec::new();
        for job in jobs {
            match self.dests.push(job) {
                Ok(target) => touched.push(target),
                Err(job) => {
                    let (reason, tls) = job.failure.clone().unwrap_or_else(|| ("no host to connect to".into(), false));
                    let status = if tls { "4.7.5" } else { "4.4.1" };
                    let verdict = Verdict::Deferred { reply: format!("451 {status} {reason}"), status: status.into() };
                    deferred.extend(job.entries.iter().map(|(id, _)| (*id, verdict.clone())));
                }
            }
        }
        touched.sort_by_key(|t| (t.addr, t.policy));
        touched.dedup();
        if !deferred.is_empty() {
            self.results(deferred, None);
        }
        touched
    }

    /// Hands free connection slots to `targets`, one connection at a time
    /// and in turn (`Dests::in_turn`: those without a connection first,
    /// then the one waiting longest), round after round until the slots
    /// run out or none wants another. One at a time, not all a
    /// destination wants at once, so that a busy destination cannot take
    /// a slot it has just freed while another waits with no connection.
    fn fill(&mut self, mut targets: Vec<Target>) {
        self.dests.in_turn(&mut targets);
        // Each destination given a connection went to the back of the
        // line, in this order: the next round is in turn too.
        while !targets.is_empty() && self.dests.connections() < self.settings.max_connections.max(1) {
            targets.retain(|t| self.open_one(t));
        }
    }

    /// Starts one more connection to `target` if a slot is free and the
    /// destination wants one: one per messages_per_connection jobs, fewer
    /// where connecting failed lately (dest.rs: no reconnect storm).
    fn open_one(&mut self, target: &Target) -> bool {
        // Stopping: connections finish, no new one starts (jobs stay on disk).
        // Every slot taken: a destination left without any connection is
        // counted in `Event` handling, and idle connections give theirs
        // up (connection.rs, Slots).
        if self.ctx.stopping.is_cancelled() || self.dests.connections() >= self.settings.max_connections.max(1) {
            return false;
        }
        let limit = self.settings.connections_per_destination;
        let per = self.settings.messages_per_connection.max(1);
        let Some(d) = self.dests.get_mut(target) else { return false };
        let wanted = d.allowed(d.shared.pending().div_ceil(per), limit, Instant::now());
        if d.active >= wanted {
            return false;
        }
        let (ctx, shared, host, target) = (self.ctx.clone(), d.shared.clone(), d.host.clone(), *target);
        self.dests.opened(&target);
        tokio::spawn(async move {
            // The session runs as a task of its own so that a panic in it
            // still ends in `Closed`: the queue frees a slot only there, and
            // a lost `Closed` would keep the slot until the next start.
            let session = tokio::spawn({
                let (ctx, shared, host) = (ctx.clone(), shared.clone(), host.clone());
                async move { connection(&ctx, &target, &host, &shared).await }
            });
            let (failure, yielded) = match session.await {
                Ok(Ok(yielded)) => (None, yielded),
                Ok(Err(f)) => (Some(f), false),
                Err(e) => {
                    emit!(error, ev::OUTBOUND_CONNECTION_PANICKED, destination = %shared.domains(), host = %host, address = %target.addr.ip(), error = %e);
                    (None, false)
                }
            };
            let _ = ctx.events.send(Event::Closed { target, failure, yielded });
        });
        true
    }

    fn finish(&mut self, id: u64, outcome: Outcome, reply: String) {
        let Some(e) = self.entries.remove(&id) else { return };
        if e.held {
            self.held -= 1;
        }
        let history = HistoryLine {
            time: port25_time::unix_secs(),
            id: e.msg.id.clone(),
            rcpt: e.msg.rcpts[e.r].clone(),
            outcome,
            reply,
        };
        self.journal.send(Record::Finished { seq: e.seq, m: e.m, r: e.r, history });
    }

    fn results(&mut self, results: Vec<(u64, Verdict)>, remote: Option<String>) {
        let now = port25_time::unix_millis();
        type Group = (Arc<SpooledMessage>, Vec<(u64, RcptReport, Outcome)>);
        let mut bounces: HashMap<(u64, usize), Group> = HashMap::new();
        let mut warnings: HashMap<(u64, usize), (Arc<SpooledMessage>, Vec<RcptReport>)> = HashMap::new();
        for (id, verdict) in results {
            let Some(e) = self.entries.get_mut(&id) else { continue };
            e.in_flight = false;
            e.state.attempts += 1;
            let to = e.msg.rcpts[e.r].clone();
            match verdict {
                Verdict::Delivered(reply) => {
                    emit!(info, ev::OUTBOUND_DELIVERED, id = %e.msg.id, to = %to, host = remote.as_deref().unwrap_or(""), reply = %reply, attempts = e.state.attempts);
                    self.finish(id, Outcome::Delivered, reply);
                }
                Verdict::Failed { reply, status } => {
                    emit!(warn, ev::OUTBOUND_BOUNCED, id = %e.msg.id, to = %to, reply = %reply, attempts = e.state.attempts);
                    let report = RcptReport { rcpt: to, status, remote_mta: remote.clone(), diagnostic: reply };
                    bounces.entry((e.seq, e.m)).or_insert_with(|| (e.msg.clone(), Vec::new())).1.push((
                        id,
                        report,
                        Outcome::Bounced,
                    ));
                }
                Verdict::Deferred { reply, status } => {
                    let age = Duration::from_secs(unix(now).saturating_sub(e.msg.received_at));
                    if age >= self.settings.max_lifetime {
                        let diagnostic = format!(
                            "{reply} (gave up: not delivered within {})",
                            dsn::span(self.settings.max_lifetime)
                        );
                        emit!(warn, ev::OUTBOUND_BOUNCED, id = %e.msg.id, to = %to, reply = %diagnostic, attempts = e.state.attempts, expired = true);
                        let report =
                            RcptReport { rcpt: to, status: "4.4.7".into(), remote_mta: remote.clone(), diagnostic };
                        bounces.entry((e.seq, e.m)).or_insert_with(|| (e.msg.clone(), Vec::new())).1.push((
                            id,
                            report,
                            Outcome::Expired,
                        ));
                        continue;
                    }
                    let delay = self.settings.backoff.delay(e.state.attempts, fastrand::f64());
                    e.due_ms = now + delay.as_millis() as u64;
                    e.state.next_attempt = e.due_ms.div_ceil(1000);
                    e.state.last_reply = reply.clone();
                    emit!(info, ev::OUTBOUND_DEFERRED, id = %e.msg.id, to = %to, reason = %reply, attempts = e.state.attempts, retry_in = delay.as_secs());
                    if let Some(after) = self.settings.delay_warning {
                        if !e.state.warned && age >= after && !e.msg.from.is_empty() {
                            e.state.warned = true;
                            let report = RcptReport { rcpt: to, status, remote_mta: remote.clone(), diagnostic: reply };
                            warnings.entry((e.seq, e.m)).or_insert_with(|| (e.msg.clone(), Vec::new())).1.push(report);
                        }
                    }
                    self.heap.push(Reverse((e.due_ms, id)));
                    self.journal.send(Record::State { seq: e.seq, m: e.m, r: e.r, state: e.state.clone() });
                }
            }
        }
        for (_, (msg, list)) in bounces {
            for (id, _, _) in &list {
                // Not dispatched again while its DSN is being stored.
                if let Some(e) = self.entries.get_mut(id) {
                    e.in_flight = true;
                }
            }
            let reports: Vec<RcptReport> = list.iter().map(|(_, r, _)| r.clone()).collect();
            let dsn = (!msg.from.is_empty()).then(|| self.dsn_message(&msg, Kind::Failed, &reports));
            let finished = list.into_iter().map(|(id, r, o)| (id, o, r.diagnostic)).collect();
            self.spawn_dsn(msg, dsn, reports.len(), Some(finished));
        }
        for (_, (msg, reports)) in warnings {
            let until = msg.received_at + self.settings.max_lifetime.as_secs();
            let dsn = self.dsn_message(&msg, Kind::Delayed { until }, &reports);
            self.spawn_dsn(msg, Some(dsn), reports.len(), None);
        }
    }

    fn dsn_message(&self, msg: &SpooledMessage, kind: Kind, reports: &[RcptReport]) -> SpooledMessage {
        crate::bounce::dsn_message(&self.settings.hostname, msg, kind, reports, port25_time::unix_secs())
    }

    /// Stores a DSN (a local sender's by local delivery, others through
    /// this queue); for bounces (`finished`), the recipients are finished
    /// only after the DSN is stored, so a crash repeats a DSN rather than
    /// losing it.
    fn spawn_dsn(
        &self,
        msg: Arc<SpooledMessage>,
        dsn: Option<SpooledMessage>,
        count: usize,
        finished: Option<Vec<(u64, Outcome, String)>>,
    ) {
        let (store, events) = (self.dsns.clone(), self.events.clone());
        let kind = if finished.is_some() { "failed" } else { "delayed" };
        tokio::spawn(async move {
            let stored = store.send(&msg.id, dsn, kind, count).await.is_ok();
            if let Some(finished) = finished {
                let _ = events.send(Event::Bounced { finished, stored });
            }
        });
    }

    fn bounced(&mut self, finished: Vec<(u64, Outcome, String)>, stored: bool) {
        for (id, outcome, reply) in finished {
            if stored {
                self.finish(id, outcome, reply);
            } else if let Some(e) = self.entries.get_mut(&id) {
                // Try the DSN again later, through a new attempt.
                e.in_flight = false;
                e.due_ms = port25_time::unix_millis() + self.settings.backoff.first.as_millis() as u64;
                self.heap.push(Reverse((e.due_ms, id)));
            }
        }
    }

    fn stats(&self) {
        let now = port25_time::unix_secs();
        let messages: std::collections::HashSet<(u64, usize)> = self.entries.values().map(|e| (e.seq, e.m)).collect();
        let oldest = self.entries.values().map(|e| now.saturating_sub(e.msg.received_at)).max().unwrap_or(0);
        let deferred = self.entries.values().filter(|e| e.state.attempts > 0).count();
        let attempts: u64 = self.entries.values().map(|e| u64::from(e.state.attempts)).sum();
        let connections = self.dests.connections();
        emit!(
            info,
            ev::OUTBOUND_STATS,
            recipients = self.entries.len(),
            messages = messages.len(),
            deferred,
            oldest_secs = oldest,
            attempts,
            connections,
            hold = self.hold
        );
    }

    /// Held entries that are held no more are due now.
    fn unhold(&mut self) {
        if self.held == 0 {
            return;
        }
        let now = port25_time::unix_millis();
        for (id, e) in self.entries.iter_mut() {
            if e.held && !self.settings.holds.held(&e.msg.id) {
                e.held = false;
                self.held -= 1;
                e.due_ms = now;
                self.heap.push(Reverse((now, *id)));
            }
        }
    }

    /// Operator commands left by `port25 queue` in `control/`.
    fn control(&mut self) {
        self.unhold();
        for (text, command) in control::take(&self.root) {
            let matched = match command {
                Some(Control::Flush) => self.retry_now(None),
                Some(Control::Retry(id)) => self.retry_now(Some(&id)),
                Some(Control::Delete(id)) => {
                    let ids: Vec<u64> = self
                        .entries
                        .iter()
                        .filter(|(_, e)| !e.in_flight && e.msg.id == id)
                        .map(|(id, _)| *id)
                        .collect();
                    for &id in &ids {
                        self.finish(id, Outcome::Deleted, "deleted by the operator".into());
                    }
                    ids.len()
                }
                Some(Control::Hold) => {
                    self.hold = true;
                    0
                }
                Some(Control::Release) => {
                    self.hold = false;
                    0
                }
                None => 0,
            };
            emit!(info, ev::OUTBOUND_CONTROL, command = %text, recipients = matched);
        }
    }

    /// Makes the recipients not in flight (of one message, or all) due
    /// now; returns how many.
    fn retry_now(&mut self, message: Option<&str>) -> usize {
        let now = port25_time::unix_millis();
        let mut matched = 0;
        for (id, e) in self.entries.iter_mut() {
            if !e.in_flight && message.is_none_or(|m| m == e.msg.id) {
                e.due_ms = now;
                self.heap.push(Reverse((now, *id)));
                matched += 1;
            }
        }
        matched
    }
}

/// Applies the domain's MTA-STS policy (crate::mta_sts) to its route:
/// under `enforce` only the MX hosts the policy names stay, and a domain
/// left with none is deferred (4.7.5), never sent elsewhere; under
/// `testing` every MX stays and those not named are reported (TLS-RPT).
/// The smarthost (one server the operator chose and verifies) is exempt.
async fn sts_route(
    ctx: &Ctx,
    domain: &str,
    route: Result<Vec<Candidate>, Verdict>,
) -> (Result<Vec<Candidate>, Verdict>, Option<(TlsPolicy, Arc<PolicyDesc>)>) {
    let (Some(sts), None, Ok(candidates)) = (&ctx.settings.sts, &ctx.settings.smarthost, &route) else {
        return (route, None);
    };
    let found = sts.lookup(&ctx.dns, domain).await;
    let desc = found
        .policy
        .as_ref()
        .map(|p| Arc::new(PolicyDesc { policy_type: "sts", policy_string: p.lines(), mx_host: p.mx.clone() }));
    if let (Some(failure), Some(reports)) = (&found.failure, &ctx.reports) {
        let none = PolicyDesc { policy_type: "no-policy-found", policy_string: Vec::new(), mx_host: Vec::new() };
        let f = crate::tls_rpt::Failure {
            result_type: failure.result_type,
            receiving_mx_hostname: None,
            receiving_ip: None,
            sending_mta_ip: None,
            additional_information: &failure.reason,
        };
        reports.failure(domain, desc.as_deref().unwrap_or(&none), &f);
    }
    let (Some(policy), Some(desc)) = (found.policy, desc) else { return (route, None) };
    let mode = if policy.mode == Mode::Enforce { TlsPolicy::Sts } else { TlsPolicy::StsTesting };
    let mut hosts: Vec<&str> = candidates.iter().filter(|c| !policy.allows(&c.host)).map(|c| c.host.as_str()).collect();
    hosts.dedup();
    for host in &hosts {
        let why = format!("MX {host} is not in the MTA-STS policy of {domain} (mx: {})", policy.mx.join(", "));
        let addr = candidates.iter().find(|c| c.host == *host).map(|c| c.addr);
        emit!(warn, ev::OUTBOUND_TLS_POLICY_FAILED, destination = %domain, policy = "sts", mode = policy.mode.as_str(), result = "validation-failure", host = %host, address = %addr.map(|a| a.ip().to_string()).unwrap_or_default(), reason = %why);
        if let Some(reports) = &ctx.reports {
            let f = crate::tls_rpt::Failure {
                result_type: "validation-failure",
                receiving_mx_hostname: Some(host),
                receiving_ip: addr.map(|a| a.ip()),
                sending_mta_ip: None,
                additional_information: &why,
            };
            reports.failure(domain, &desc, &f);
        }
    }
    if mode == TlsPolicy::StsTesting {
        return (route, Some((mode, desc)));
    }
    let allowed: Vec<Candidate> = candidates.iter().filter(|c| policy.allows(&c.host)).cloned().collect();
    if allowed.is_empty() {
        let reply = format!(
            "451 4.7.5 no MX of {domain} is named by its MTA-STS policy (mx: {}): not sent elsewhere",
            policy.mx.join(", ")
        );
        return (Err(Verdict::Deferred { reply, status: "4.7.5".into() }), None);
    }
    (Ok(allowed), Some((mode, desc)))
}

/// Applies DANE (RFC 7672 §2.2) to a domain's route: when its MX answer
/// is DNSSEC-secure, each MX host's TLSA records (`_25._tcp.HOST`) are
/// looked up, validated too; a host with usable records from a secure
/// answer gets them (its candidates are then [`TlsPolicy::Dane`]). A bogus
/// MX answer defers the domain (4.7.5); a bogus or failed TLSA lookup
/// drops that host (the others are tried; none left: deferred); an
/// insecure answer, or records none of which is usable, leave the host
/// as it was (MTA-STS if any, else opportunistic TLS). With a secure MX
/// answer, hosts the validated answer does not name are dropped (the
/// route came from a lookup without validation). The smarthost is exempt.
async fn dane_route(
    ctx: &Ctx,
    domain: &str,
    route: Result<Vec<Candidate>, Verdict>,
) -> Result<Vec<Candidate>, Verdict> {
    let (Some(dnssec), None, Ok(candidates)) = (&ctx.dns.dnssec, &ctx.settings.smarthost, &route) else {
        return route;
    };
    let defer = |reason: String| Verdict::Deferred { reply: format!("451 4.7.5 {reason}"), status: "4.7.5".into() };
    let report = |host: Option<&str>, result: &'static str, why: &str| {
        emit!(warn, ev::OUTBOUND_TLS_POLICY_FAILED, destination = %domain, policy = "tlsa", mode = "dane", result = result, host = host.unwrap_or(""), address = "", reason = %why);
        if let Some(reports) = &ctx.reports {
            let desc = PolicyDesc { policy_type: "tlsa", policy_string: Vec::new(), mx_host: Vec::new() };
            let f = crate::tls_rpt::Failure {
                result_type: result,
                receiving_mx_hostname: host,
                receiving_ip: None,
                sending_mta_ip: None,
                additional_information: why,
            };
            reports.failure(domain, &desc, &f);
        }
    };
    if !dnssec.validating().await {
        return route;
    }
    let mx = match dnssec.mx(domain).await {
        Ok(mx) => mx,
        Err(f) => return Err(Verdict::Deferred { reply: format!("451 4.4.3 {}", f.reason), status: "4.4.3".into() }),
    };
    match mx.security {
        Security::Insecure => return route,
        Security::Bogus(why) => {
            report(None, "dnssec-invalid", &why);
            return Err(defer(format!("the MX records of {domain} fail DNSSEC validation ({why}): not sent")));
        }
        Security::Secure => {}
    }
    let mut hosts: Vec<String> = candidates.iter().map(|c| c.host.to_ascii_lowercase()).collect();
    hosts.dedup();
    let mut out = Vec::new();
    let mut last = None;
    for host in hosts {
        if !mx.records.contains(&host) {
            last = Some(format!("MX {host} of {domain} is not in its DNSSEC-validated MX records"));
            continue;
        }
        let dane = match dnssec.tlsa(&host).await {
            Err(f) => {
                report(Some(&host), "tlsa-invalid", &f.reason);
                last = Some(f.reason);
                continue;
            }
            Ok(t) => match t.security {
                Security::Bogus(why) => {
                    report(Some(&host), "dnssec-invalid", &why);
                    last = Some(format!("the TLSA records of {host} fail DNSSEC validation ({why})"));
                    continue;
                }
                Security::Secure if t.records.iter().any(crate::dane::Tlsa::usable) => {
                    let records: Vec<crate::dane::Tlsa> = t.records.into_iter().filter(|r| r.usable()).collect();
                    emit!(info, ev::OUTBOUND_DANE, destination = %domain, host = %host, records = records.len());
                    let desc = PolicyDesc {
                        policy_type: "tlsa",
                        policy_string: records.iter().map(crate::dane::Tlsa::presentation).collect(),
                        mx_host: vec![host.clone()],
                    };
                    Some(Arc::new(crate::dane::DaneHost {
                        records,
                        names: vec![host.clone(), domain.to_ascii_lowercase()],
                        desc: Arc::new(desc),
                    }))
                }
                _ => None,
            },
        };
        out.extend(
            candidates
                .iter()
                .filter(|c| c.host.eq_ignore_ascii_case(&host))
                .map(|c| Candidate { dane: dane.clone(), ..c.clone() }),
        );
    }
    if out.is_empty() {
        let why = last.unwrap_or_else(|| format!("no MX host of {domain} is usable"));
        return Err(defer(format!("{why}: not sent")));
    }
    Ok(out)
}

/// Runs the queue until `shutdown`; then lets connections finish the
/// message they are sending and makes every record durable.
pub async fn run(
    settings: Arc<Settings>,
    dns: Dns,
    outbound: Enqueuer,
    recovered: Vec<BatchRef>,
    mut ready: mpsc::UnboundedReceiver<BatchRef>,
    dsns: DsnStore,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let root = outbound.spool().dir().to_owned();
    control::create_dir(&root)?;
    let spool = outbound.spool().clone();
    let journal = Journal::start(spool.clone())?;
    let (events, mut event_rx) = mpsc::unbounded_channel();
    let stopping = CancellationToken::new();
    let ctx = Arc::new(Ctx {
        settings: settings.clone(),
        dns,
        events: events.clone(),
        stopping: stopping.clone(),
        slots: Default::default(),
        reports: settings.tls_rpt.clone(),
    });
    let mut q = Queue {
        hold: settings.hold,
        dsns,
        settings,
        ctx,
        events,
        journal,
        root,
        spool: spool.clone(),
        entries: HashMap::new(),
        heap: BinaryHeap::new(),
        dests: Dests::default(),
        next_id: 0,
        held: 0,
    };
    for b in recovered {
        q.add_batch(b);
    }
    if let Some(reports) = q.settings.tls_rpt.clone() {
        // Finished days' TLS-RPT reports go out at start and every hour.
        let (dns, outbound, stop) = (q.ctx.dns.clone(), outbound.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut hourly = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = hourly.tick() => reports.send_finished(&dns, &outbound).await,
                }
            }
        });
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut stats = tokio::time::interval(q.settings.stats_interval);
    loop {
        q.dispatch();
        let wait = q
            .heap
            .peek()
            .map(|Reverse((due, _))| Duration::from_millis(due.saturating_sub(port25_time::unix_millis())))
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(e) = event_rx.recv() => q.event(e),
            Some(b) = ready.recv() => q.add_batch(b),
            _ = tokio::time::sleep(wait) => {}
            _ = tick.tick() => q.control(),
            _ = stats.tick() => q.stats(),
        }
    }
    // Stop: running connections end after their current message.
    stopping.cancel();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while q.dests.connections() > 0 {
        match tokio::time::timeout_at(deadline, event_rx.recv()).await {
            Ok(Some(e)) => q.event(e),
            _ => break,
        }
    }
    q.journal.sync().await;
    Ok(())
}

impl Queue {
    fn event(&mut self, e: Event) {
        match e {
            Event::Results { results, remote } => self.results(results, remote),
            Event::Bounced { finished, stored } => self.bounced(finished, stored),
            Event::Routed { domain, jobs, route, sts } => {
                self.routed(&domain, jobs, route, sts);
                self.ctx.slots.set_starved(self.dests.starved());
            }
            Event::Closed { target, failure, yielded } => {
                if yielded {
                    self.ctx.slots.yielded();
                }
                let moved = self.dests.closed(&target, failure, Instant::now());
                // Jobs that move on to their next address wait there in
                // turn with the others.
                self.place(moved);
                // A slot is free: it goes to the destinations still
                // waiting, in turn (not to the moved jobs first).
                let waiting = self.dests.waiting();
                self.fill(waiting);
                self.dests.prune(Instant::now());
                self.ctx.slots.set_starved(self.dests.starved());
            }
        }
    }
}
